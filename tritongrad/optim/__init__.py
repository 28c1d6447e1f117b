"""``tg.optim``: SGD, Adam and AdamW as fused multi-tensor kernels (one launch per parameter
group and dtype), and torch's learning-rate schedulers (``tg.optim.lr_scheduler``)."""

from . import lr_scheduler  # noqa: F401  (torch's module name)
from .adam import Adam, AdamW  # noqa: F401
from .lr_scheduler import *  # noqa: F401,F403  (every scheduler, as tg.optim.StepLR too)
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", *lr_scheduler.__all__]
