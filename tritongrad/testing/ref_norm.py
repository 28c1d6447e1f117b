"""Torch references of Norm and ClipNorm (oracle code: torch computes here only to judge)."""

from __future__ import annotations

import torch

from ..ops import norm as norm_ops
from .references import register_reference


def norm_reference(x: torch.Tensor, p: float, dim: int | None = None,
                   keepdim: bool = False) -> torch.Tensor:
    return torch.linalg.vector_norm(x, p, dim=dim, keepdim=keepdim)


def clip_norm_reference(x: torch.Tensor, max_norm: float, dim: int | None = None) -> torch.Tensor:
    """x * clamp(max_norm / ||x||, max=1), in fp32 like the kernel (fp64 for fp64), cast back
    to x.dtype.

    Through clamp's backward this is exactly the two-sided derivative of the kernel:
    g where n < max_norm, (c/n)(g - x (x.g)/n^2) where n > max_norm (avoid n = 0 and
    n == max_norm in parity tests: torch's clamp/division give NaN / the other side there)."""
    xc = x.to(torch.promote_types(x.dtype, torch.float32))
    n = torch.linalg.vector_norm(xc, 2, dim=dim, keepdim=dim is not None)
    return (xc * torch.clamp(max_norm / n, max=1.0)).to(x.dtype)


register_reference(norm_ops.Norm, norm_reference)
register_reference(norm_ops.ClipNorm, clip_norm_reference)
