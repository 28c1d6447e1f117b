"""Torch references and parity cases of var, std and batch norm (oracle code: torch
computes here only to judge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops import batch_norm as batch_norm_ops
from ..ops import moments as moment_ops
from .references import register_reference


def _wide(t):
    return t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t


def var_reference(x: torch.Tensor, dims, correction: float, keepdim: bool) -> torch.Tensor:
    """torch.var in fp32 for fp16 / bf16 input (the casts are differentiable, so the
    gradient is formed in fp32 and rounded once), as the kernels compute; torch's own half
    backward rounds (2 / dof) g (x - mean) step by step in half."""
    return torch.var(_wide(x), dim=dims, correction=correction, keepdim=keepdim).to(x.dtype)


def std_reference(x: torch.Tensor, dims, correction: float, keepdim: bool) -> torch.Tensor:
    """torch.std, in fp32 for fp16 / bf16 input (see var_reference)."""
    return torch.std(_wide(x), dim=dims, correction=correction, keepdim=keepdim).to(x.dtype)


def batch_norm_reference(x: torch.Tensor, running_mean, running_var, weight=None, bias=None,
                         training: bool = False, momentum: float = 0.1,
                         eps: float = 1e-5) -> torch.Tensor:
    """F.batch_norm, in fp32 for fp16 / bf16 tensors (see var_reference), on copies of the
    running statistics: a reference judges y and the gradients and changes nothing."""
    stats = [None if t is None else _wide(t).detach().clone()
             for t in (running_mean, running_var)]
    y = F.batch_norm(_wide(x), stats[0], stats[1], _wide(weight), _wide(bias), training,
                     momentum, eps)
    return y.to(x.dtype)


register_reference(moment_ops.Var, var_reference)
register_reference(moment_ops.Std, std_reference)
register_reference(batch_norm_ops.BatchNorm, batch_norm_reference)


def moments_cases() -> list:
    """Parity cases of var, std and batch norm, for ``testing/cases.py``'s built-in
    families: every element, one dim, two dims with keepdim, corrections 0, 1 and 2, a
    transposed input; batch norm in training and eval, (N, C), (N, C, L) and (N, C, H, W),
    with and without affine parameters."""
    from .cases import ParityCase, _transposed, positive, randn, spec
    from .parity import constant

    def x_arg(s, g):
        x = _transposed(g, s.shapes[0]) if s.option("layout") == "T" else randn(g, s.shapes[0])
        return x * 2.0 + 0.5

    def var_args(s, d, g):
        return x_arg(s, g), s.option("dims"), s.option("correction", 1.0), \
            s.option("keepdim", False)

    var_specs = (spec((7, 13), dims=None), spec((7, 13), dims=(1,), correction=0.0),
                 spec((3, 4, 5), dims=(0, 2), keepdim=True),
                 spec((13, 7), dims=(0,), layout="T", correction=2.0))

    def batch_norm_args(s, d, g):
        shape = s.shapes[0]
        channels = shape[1]
        affine = s.option("affine", True)
        weight = randn(g, (channels,)) * 0.5 + 1.0 if affine else None
        bias = randn(g, (channels,)) if affine else None
        running_mean = constant(randn(g, (channels,)))
        running_var = constant(positive(g, (channels,)))
        return (x_arg(s, g), running_mean, running_var, weight, bias,
                s.option("training", True), 0.1, 1e-5)

    batch_norm_specs = (spec((9, 5)), spec((4, 3, 7), training=False),
                        spec((2, 3, 4, 5), affine=False), spec((5, 6), layout="T"),
                        spec((2, 3, 4, 5), training=False))
    return [
        ParityCase("var", moment_ops.Var, var_args, var_specs,
                   gradcheck_spec=spec((3, 4), dims=(1,))),
        ParityCase("std", moment_ops.Std, var_args, var_specs,
                   gradcheck_spec=spec((3, 4), dims=None)),
        ParityCase("batch_norm", batch_norm_ops.BatchNorm, batch_norm_args, batch_norm_specs,
                   gradcheck_spec=spec((4, 3, 2))),
    ]
