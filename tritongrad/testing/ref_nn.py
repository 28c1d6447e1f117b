"""Torch references of the nn Functions (oracle code: torch computes here only to judge).

Dropout: torch's generator cannot reproduce our Philox mask, so the reference takes the
mask from the same ``seed_offset`` the Function receives: it asks our dropout kernel to
apply that mask to a tensor of ones (``keep_i = out_i != 0``) and then does everything
else in torch: the scaling by 1/(1-p), the rounding to x's dtype, and (through torch
autograd) the gradient. Parity therefore checks that forward and backward apply the
*same* mask with the right scale; the mask's own statistics (about 1-p kept, fresh
masks per call, reproducible under ``tg.manual_seed``) are tested in tests/test_nn.py.
"""

from __future__ import annotations

import torch

from ..kernels import random as random_kernels
from ..ops import dropout as dropout_ops
from .references import register_reference


def keep_mask(shape: tuple, p: float, seed_offset: torch.Tensor) -> torch.Tensor:
    """The boolean keep-mask that ``seed_offset`` selects for a tensor of ``shape``."""
    seed_offset = seed_offset.torch() if hasattr(seed_offset, "torch") else seed_offset
    if p >= 1.0:
        return torch.zeros(shape, dtype=torch.bool, device=seed_offset.device)
    ones = torch.ones(shape, dtype=torch.float32, device=seed_offset.device)
    return random_kernels.dropout_bwd(ones, p, seed_offset) != 0


def _dropout(x: torch.Tensor, p: float, seed_offset: torch.Tensor, precomputed=None):
    keep = keep_mask(tuple(x.shape), p, seed_offset)
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    # fp32 math (fp64 for fp64), one rounding to x's dtype: what the kernel does
    wide = x.to(torch.promote_types(x.dtype, torch.float32))
    return (wide * (keep.to(wide.dtype) * scale)).to(x.dtype)  # torch's product with its mask


register_reference(dropout_ops.Dropout, _dropout)


def nn_cases() -> list:
    """Parity cases of the nn Functions, for ``testing/cases.py``'s built-in families."""
    from .cases import ParityCase, randn, spec

    def dropout_args(s, d, g):
        # a fixed [seed, offset] keeps the rows reproducible; the int64 state is not
        # differentiable, so only x gets a gradient
        seed_offset = torch.tensor([s.option("seed"), s.option("offset")], dtype=torch.int64)
        return randn(g, s.shapes[0]), s.option("p"), seed_offset

    return [
        ParityCase("dropout", dropout_ops.Dropout, dropout_args,
                   (spec((7, 13), p=0.5, seed=1, offset=0),
                    spec((3, 5, 11), p=0.2, seed=7, offset=12345),
                    spec((1, 9), p=0.0, seed=3, offset=0))),
    ]
