"""Torch reference of NLLLoss (oracle code: torch computes here only to judge)."""

import torch.nn.functional as F

from ..ops import nll
from .references import register_reference


def _nll(input, target, weight, ignore_index, reduction):
    return F.nll_loss(input, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction)


register_reference(nll.NLLLoss, _nll)
