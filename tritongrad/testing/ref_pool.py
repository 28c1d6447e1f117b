"""Torch references and parity cases of 2-D pooling (oracle code: torch computes here only
to judge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops import pool as pool_ops
from .references import register_reference


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


# fp16 / bf16 go through torch in fp32 (the casts are differentiable, so each gradient is
# summed in fp32 and rounded once), as the kernels compute: torch's own half CPU backward
# adds overlapping windows' gradients in the half dtype, rounding at every add.


def max_pool2d_reference(x: torch.Tensor, kernel_size, stride, padding, dilation,
                         ceil_mode: bool):
    """(y, indices) of F.max_pool2d(..., return_indices=True). The max is exact, and fp32
    compares the same rounded values, so the indices are torch's in every dtype."""
    y, indices = F.max_pool2d(_wide(x), kernel_size, stride, padding, dilation, ceil_mode,
                              return_indices=True)
    return y.to(x.dtype), indices


def avg_pool2d_reference(x: torch.Tensor, kernel_size, stride, padding, ceil_mode: bool,
                         count_include_pad: bool, divisor_override) -> torch.Tensor:
    y = F.avg_pool2d(_wide(x), kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)
    return y.to(x.dtype)


def adaptive_avg_pool2d_reference(x: torch.Tensor, output_size) -> torch.Tensor:
    return F.adaptive_avg_pool2d(_wide(x), output_size).to(x.dtype)


register_reference(pool_ops.MaxPool2d, max_pool2d_reference)
register_reference(pool_ops.AvgPool2d, avg_pool2d_reference)
register_reference(pool_ops.AdaptiveAvgPool2d, adaptive_avg_pool2d_reference)


def pool_cases() -> list:
    """Parity cases of the three pooling Functions, for ``testing/cases.py``'s built-in
    families: odd sizes (7x9), kernels 2 and 3, strides 1 and 2, padding, ceil mode,
    dilation (max), overlapping windows, unbatched and channels-last inputs."""
    from .cases import ParityCase, randn, spec

    def x_arg(s, g):
        shape = s.shapes[0]
        if s.option("layout") == "CL":  # channels-last: (N, H, W, C) memory, permuted
            n, c, h, w = shape
            return randn(g, (n, h, w, c)).permute(0, 3, 1, 2)
        return randn(g, shape)

    def max_args(s, d, g):
        return (x_arg(s, g), s.option("k"), s.option("s"), s.option("p", 0),
                s.option("d", 1), s.option("ceil", False))

    def avg_args(s, d, g):
        return (x_arg(s, g), s.option("k"), s.option("s"), s.option("p", 0),
                s.option("ceil", False), s.option("include", True), s.option("div"))

    def adaptive_args(s, d, g):
        return x_arg(s, g), s.option("out")

    max_specs = (spec((2, 3, 7, 9), k=2), spec((1, 3, 7, 9), k=3, s=1, p=1),
                 spec((3, 7, 9), k=(3, 2), s=2, p=1, ceil=True),
                 spec((2, 3, 9, 7), k=3, s=(2, 1), p=1, d=2, layout="CL"))
    avg_specs = (spec((2, 3, 7, 9), k=2), spec((1, 3, 7, 9), k=3, s=1, p=1),
                 spec((3, 7, 9), k=3, s=2, p=1, ceil=True, include=False),
                 spec((2, 3, 9, 7), k=(2, 3), s=2, p=1, div=5, layout="CL"))
    adaptive_specs = (spec((2, 3, 7, 9), out=(3, 4)), spec((3, 7, 9), out=1),
                      spec((2, 3, 9, 7), out=(None, 10), layout="CL"))
    return [
        ParityCase("max_pool2d", pool_ops.MaxPool2d, max_args, max_specs,
                   gradcheck_spec=spec((1, 2, 5, 4), k=3, s=1, p=1)),
        ParityCase("avg_pool2d", pool_ops.AvgPool2d, avg_args, avg_specs,
                   gradcheck_spec=spec((1, 2, 5, 4), k=3, s=2, p=1, ceil=True)),
        ParityCase("adaptive_avg_pool2d", pool_ops.AdaptiveAvgPool2d, adaptive_args,
                   adaptive_specs, gradcheck_spec=spec((1, 2, 5, 4), out=(3, 3))),
    ]
