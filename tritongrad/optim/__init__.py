"""``tg.optim``: SGD, Adam and AdamW as fused multi-tensor kernels (one launch per parameter
group and dtype), and the StepLR and CosineAnnealingLR schedulers, with torch's API."""

from . import lr_scheduler  # noqa: F401  (torch's module name)
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .scheduler import CosineAnnealingLR, LRScheduler, StepLR  # noqa: F401
from .sgd import SGD  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR",
           "lr_scheduler"]
