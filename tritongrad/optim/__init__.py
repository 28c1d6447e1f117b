"""``tg.optim``: SGD, Adam and AdamW as fused multi-tensor kernels (one launch per parameter
group and dtype), and torch's learning-rate schedulers (``tg.optim.lr_scheduler``)."""

from . import lr_scheduler  # noqa: F401  (torch's module name)
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .scheduler import (  # noqa: F401
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiplicativeLR,
    MultiStepLR,
    StepLR,
)
from .scheduler_policies import OneCycleLR, ReduceLROnPlateau, SequentialLR  # noqa: F401
from .sgd import SGD  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR",
           "lr_scheduler", "ExponentialLR", "MultiStepLR", "LambdaLR", "MultiplicativeLR",
           "LinearLR", "ConstantLR", "OneCycleLR", "SequentialLR", "ReduceLROnPlateau"]
