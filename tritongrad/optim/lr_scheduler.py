"""torch's module name for the schedulers: ``tg.optim.lr_scheduler.StepLR`` as in torch."""

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

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "ExponentialLR", "MultiStepLR",
           "LambdaLR", "MultiplicativeLR", "LinearLR", "ConstantLR", "OneCycleLR",
           "SequentialLR", "ReduceLROnPlateau"]
