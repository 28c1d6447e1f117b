"""Torch references of the join and selection Functions: cat, stack, where, clamp."""

import torch

from ..ops import join, select
from .references import register_reference

for cls, fn in {
    join.Cat: lambda dim, *tensors: torch.cat(tensors, dim),
    join.Stack: lambda dim, *tensors: torch.stack(tensors, dim),
    select.Where: torch.where,
    select.Clamp: lambda x, lo, hi: torch.clamp(x, lo, hi),
}.items():
    register_reference(cls, fn)
