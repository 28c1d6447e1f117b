"""Torch references and parity cases of conv2d, unfold and fold (oracle code: torch computes
here only to judge)."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..ops import conv as conv_ops
from .references import register_reference


def _wide(t):
    return t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t


def _exact(t):
    return None if t is None else t.double()


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv2d in fp64 for every float dtype, rounded once into x's dtype (the casts are
    differentiable, so every gradient is formed in fp64 and rounded once). The kernels
    compute in fp32 and round once; so does this, up to fp32's own rounding.
      - fp16 / bf16: torch's own fp16 CPU backward is less exact. For x (4, 8, 12, 12), a
        16x8x3x3 weight and padding 1, its dx was 0.0134 from the fp64 value (ours 0.0039)
        and its dweight 0.043 (ours 0.029), past the table's fp16 tolerance between them.
      - fp32: on a GPU, torch's cuDNN convolutions take TF32 inputs by default
        (torch.backends.cudnn.allow_tf32, read again by the backward), while ours are
        IEEE fp32 unless tg.backends.matmul.allow_tf32; fp64 has no TF32 mode."""
    with warnings.catch_warnings():  # torch's note that 'same' may pad a copy of x
        warnings.filterwarnings("ignore", message="Using padding='same'")
        y = F.conv2d(_exact(x), _exact(weight), _exact(bias), stride, padding, dilation, groups)
    return y.to(x.dtype)


def unfold_reference(x, kernel_size, dilation=1, padding=0, stride=1):
    """F.unfold (a copy: exact in any dtype) through fp32 for fp16 / bf16, so that its
    backward, a fold, sums in fp32 and rounds once, as the fold kernel does. torch's own
    fp16 CPU fold adds in fp16: 5.9e-3 from ours on x (2, 3, 7, 9) with a 3x3 kernel."""
    return F.unfold(_wide(x), kernel_size, dilation, padding, stride).to(x.dtype)


def fold_reference(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """F.fold summed in fp32 for fp16 / bf16 and rounded once, as the kernel sums."""
    return F.fold(_wide(cols), output_size, kernel_size, dilation, padding, stride).to(cols.dtype)


register_reference(conv_ops.Conv2d, conv2d_reference)
register_reference(conv_ops.Unfold, unfold_reference)
register_reference(conv_ops.Fold, fold_reference)


def conv_cases() -> list:
    """Parity cases of conv2d (3x3 with bias, stride 2 / padding 1 / dilation 2 with a 2x3
    kernel, 1x1 unbatched without bias, padding='same' in two groups, a channels-last
    input), unfold and fold, for ``testing/cases.py``'s built-in families."""
    from .cases import ParityCase, randn, spec

    def conv_args(s, d, g):
        x_shape, w_shape = s.shapes[0], s.shapes[1]
        if s.option("layout") == "NHWC":  # a channels-last view of an NCHW shape
            n, c, h, w = x_shape
            x = randn(g, (n, h, w, c)).permute(0, 3, 1, 2)
        else:
            x = randn(g, x_shape)
        weight = randn(g, w_shape) * 0.3
        bias = randn(g, s.shapes[2]) if len(s.shapes) > 2 else None
        return (x, weight, bias, s.option("stride", 1), s.option("padding", 0),
                s.option("dilation", 1), s.option("groups", 1))

    conv_specs = (
        spec((2, 3, 7, 9), (4, 3, 3, 3), (4,)),
        spec((2, 3, 7, 9), (4, 3, 2, 3), (4,), stride=2, padding=1, dilation=2),
        spec((3, 7, 9), (5, 3, 1, 1)),
        spec((1, 4, 6, 5), (6, 2, 3, 2), (6,), padding="same", groups=2),
        spec((2, 3, 5, 6), (4, 3, 3, 3), (4,), padding=(1, 0), layout="NHWC"),
    )

    def unfold_args(s, d, g):
        return (randn(g, s.shapes[0]), s.option("kernel"), s.option("dilation", 1),
                s.option("padding", 0), s.option("stride", 1))

    def fold_args(s, d, g):
        return (randn(g, s.shapes[0]), s.option("size"), s.option("kernel"),
                s.option("dilation", 1), s.option("padding", 0), s.option("stride", 1))

    return [
        ParityCase("conv2d", conv_ops.Conv2d, conv_args, conv_specs,
                   gradcheck_spec=spec((1, 1, 3, 3), (2, 1, 2, 2), (2,), padding=1)),
        ParityCase("unfold", conv_ops.Unfold, unfold_args,
                   (spec((2, 3, 7, 9), kernel=3, padding=1),
                    spec((3, 7, 9), kernel=(2, 3), dilation=2, stride=(2, 1))),
                   gradcheck_spec=spec((1, 1, 3, 3), kernel=2, padding=1)),
        # 3x3 blocks, stride 1, padding 1 on 7x9: 63 blocks; (2, 3) dilated 2, stride 2: 3 x 3 = 9
        ParityCase("fold", conv_ops.Fold, fold_args,
                   (spec((2, 27, 63), size=(7, 9), kernel=3, padding=1),
                    spec((12, 9), size=(7, 9), kernel=(2, 3), dilation=2, stride=2)),
                   gradcheck_spec=spec((1, 4, 4), size=(3, 3), kernel=2)),
    ]
