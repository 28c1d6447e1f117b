"""Torch references of the loss Functions (oracle code: torch computes here only to judge)."""

import torch.nn.functional as F

from ..ops import loss
from .references import register_reference


def _mse(input, target, reduction):
    return F.mse_loss(input, target, reduction=reduction)


def _cross_entropy(logits, target, ignore_index, reduction, label_smoothing, compute_grad=True,
                   weight=None):
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


def _linear_cross_entropy(hidden, weight, target, bias, ignore_index, reduction, label_smoothing,
                          compute_grad=True):
    return F.cross_entropy(F.linear(hidden, weight, bias), target, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


register_reference(loss.MSELoss, _mse)
register_reference(loss.L1Loss, lambda input, target, reduction:
                   F.l1_loss(input, target, reduction=reduction))
register_reference(loss.CrossEntropy, _cross_entropy)
register_reference(loss.LinearCrossEntropy, _linear_cross_entropy)
