"""torch's module name for the schedulers: ``tg.optim.lr_scheduler.StepLR`` as in torch."""

from .scheduler import CosineAnnealingLR, LRScheduler, StepLR  # noqa: F401

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR"]
