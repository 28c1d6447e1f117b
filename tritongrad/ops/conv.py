"""2-D convolution, unfold and fold, as torch's ``F.conv2d``, ``F.unfold`` and ``F.fold``.

The convolution is im2col plus our matmul kernel. For an image x (N, C, H, W), a weight
(O, C/g, KH, KW) in g groups (Cg = C/g input and Og = O/g output channels a group) and
L = H_OUT W_OUT output positions, with cols = unfold(x) (kernels/conv.py), group k of
columns cols_k (N, Cg KH KW, L) and weight rows W_k (Og, Cg KH KW):

    forward:  Y[n, group k] = W_k cols_k[n] + b_k
              computed transposed, Y^T[n] (L, Og) = cols_k[n]^T W_k^T + b_k, so that the
              bias is the matmul's column epilogue; the kernel writes straight into the
              (N, O, H_OUT, W_OUT) output through a transposed view, and cols are laid out
              (N, L, C KH KW) (each output position's patch contiguous) for that product.

VJPs (dY: (N, O, L)), each a linear map's transpose:
    dcols_k[n] = W_k^T dY_k[n]                   (Cg KH KW, L), then dx = fold(dcols):
                                                 unfold's transpose (kernels/conv.py).
                                                 dcols stay fp32 (fp64 for fp64) so the
                                                 fold rounds once into x's dtype.
    dW_k = sum_n dY_k[n] cols_k[n]^T = dY_k (Og, N L) @ cols_k (N L, Cg KH KW)
                                                 one product with the batch folded into its
                                                 K (deterministic: no per-batch partials),
                                                 all groups in one batched launch; dY laid
                                                 out (O, N, L) by one copy kernel.
    db = sum over n, l of dY                     the row sums of that product's A operand
                                                 (the matmul's bias_grad_out) when g = 1,
                                                 else our sum kernel over the same copy.
The columns are not kept from forward (C KH KW times the image's memory): backward
unfolds x again when the weight's gradient is wanted, as torch's CPU convolution does.
Gradients nobody asked for (ctx.needs_input_grad) are not computed.

padding='same' pads d (K - 1) in total, half of it (rounded down) at the top/left and the
rest at the bottom/right, as torch; the kernels take the two edges separately.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch

from ..autograd.function import Function
from ..kernels import conv as conv_kernels
from ..kernels import reduction as reduction_kernels
from ..kernels._checks import (
    FLOAT_DTYPES,
    DTypeError,
    ShapeError,
    check_same_device,
    check_tensor,
    dtype_name,
)
from ..tensor import Tensor
from .matmul import _view_or_copy, mm

OP = "conv2d"


def _sizes(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _tensor_arg(op: str, name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Geometry:
    """A convolution's parameters, normalized: (height, width) pairs; ``pad`` at the
    top/left edges and ``pad_end`` at the bottom/right ones."""

    kernel: tuple
    stride: tuple
    pad: tuple
    pad_end: tuple
    dilation: tuple
    groups: int
    out_size: tuple  # (H_OUT, W_OUT)

    def patch_rows(self, x: torch.Tensor) -> torch.Tensor:
        """x's patches as rows, (N, L, C KH KW): our unfold writes torch's (N, C KH KW, L)
        columns through the transposed view."""
        batch, channels = x.shape[:2]
        rows = torch.empty((batch, self.out_size[0] * self.out_size[1],
                            channels * self.kernel[0] * self.kernel[1]),
                           dtype=x.dtype, device=x.device)
        conv_kernels.unfold(x, self.kernel, self.dilation, self.pad, self.stride,
                            padding_end=self.pad_end, out=rows.transpose(1, 2))
        return rows

    def fold(self, cols: torch.Tensor, image_size: tuple, out_dtype: torch.dtype
             ) -> torch.Tensor:
        return conv_kernels.fold(cols, image_size, self.kernel, self.dilation, self.pad,
                                 self.stride, padding_end=self.pad_end, out_dtype=out_dtype)


def _padding(padding, kernel: tuple, stride: tuple, dilation: tuple) -> tuple[tuple, tuple]:
    """(pad at top/left, pad at bottom/right) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(f"{OP}: Invalid padding string: {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"{OP}: padding='same' is not supported for strided convolutions")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        begin = tuple(t // 2 for t in total)
        return begin, tuple(t - b for t, b in zip(total, begin))
    pad = conv_kernels.pair(OP, "padding", padding, 0)
    return pad, pad


def conv_geometry(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride,
                  padding, dilation, groups) -> Geometry:
    """Check conv2d's arguments (x already 4-D) with torch's messages; nothing launched."""
    stride = conv_kernels.pair(OP, "stride", stride, 1)
    dilation = conv_kernels.pair(OP, "dilation", dilation, 1)
    try:
        groups = operator.index(groups)
    except TypeError:
        raise TypeError(f"{OP}(): argument 'groups' must be int, not "
                        f"{type(groups).__name__}") from None
    if groups < 1:
        raise ValueError(f"{OP}: non-positive groups is not supported, got groups={groups}")
    out_channels, in_per_group, kh, kw = weight.shape
    pad, pad_end = _padding(padding, (kh, kw), stride, dilation)
    if out_channels % groups != 0:
        raise ShapeError(
            f"{OP}: Given groups={groups}, expected weight to be divisible by {groups} at "
            f"dimension 0, but got weight of size {_sizes(weight.shape)} instead"
        )
    if x.shape[1] != in_per_group * groups:
        raise ShapeError(
            f"{OP}: Given groups={groups}, weight of size {_sizes(weight.shape)}, expected "
            f"input{_sizes(x.shape)} to have {in_per_group * groups} channels, but got "
            f"{x.shape[1]} channels instead"
        )
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(
            f"{OP}: Given weight of size {_sizes(weight.shape)}, expected bias to be "
            f"1-dimensional with {out_channels} elements, but got bias of size "
            f"{_sizes(bias.shape)} instead"
        )
    padded = [size + b + e for size, b, e in zip(x.shape[2:], pad, pad_end)]
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, (kh, kw))]
    if any(r > p for r, p in zip(reach, padded)):
        raise ShapeError(
            f"{OP}: Calculated padded input size per channel: ({padded[0]} x {padded[1]}). "
            f"Kernel size: ({reach[0]} x {reach[1]}). Kernel size can't be greater than "
            "actual input size"
        )
    out_size = tuple(conv_kernels.blocks_along(size, k, d, b, e, s) for size, k, d, b, e, s
                     in zip(x.shape[2:], (kh, kw), dilation, pad, pad_end, stride))
    return Geometry((kh, kw), stride, pad, pad_end, dilation, groups, out_size)


def _check_conv_tensors(x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    check_tensor(OP, "input", x._data, FLOAT_DTYPES)
    check_tensor(OP, "weight", weight._data)
    if x.dim() not in (3, 4):
        raise ShapeError(f"{OP}: Expected 3D (unbatched) or 4D (batched) input to conv2d, but "
                         f"got input of size: {_sizes(x.shape)}")
    if weight.dim() != 4:
        raise ShapeError(f"{OP}: expected a 4-D weight (out_channels, in_channels / groups, "
                         f"kH, kW), but got weight of size {_sizes(weight.shape)}")
    if weight.dtype != x.dtype:
        raise DTypeError(f"{OP}: Input type ({dtype_name(x.dtype)}) and weight type "
                         f"({dtype_name(weight.dtype)}) should be the same")
    if bias is not None:
        check_tensor(OP, "bias", bias._data)
        if bias.dtype != x.dtype:
            raise DTypeError(f"{OP}: Input type ({dtype_name(x.dtype)}) and bias type "
                             f"({dtype_name(bias.dtype)}) should be the same")
        check_same_device(OP, input=x._data, bias=bias._data)
    check_same_device(OP, input=x._data, weight=weight._data)


class Conv2d(Function):
    """y = conv2d(x, weight, bias): im2col (our unfold kernel) and our matmul, forward and
    backward (see the module docstring). Saves x when the weight's gradient is wanted and
    the weight when the input's is."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                padding=0, dilation=1, groups=1) -> Tensor:
        x = _tensor_arg(OP, "input", x)
        weight = _tensor_arg(OP, "weight", weight)
        if bias is not None:
            bias = _tensor_arg(OP, "bias", bias)
        _check_conv_tensors(x, weight, bias)
        x4 = x._data if x.dim() == 4 else x._data.unsqueeze(0)
        w, b = weight._data, None if bias is None else bias._data
        geo = conv_geometry(x4, w, b, stride, padding, dilation, groups)
        batch = x4.shape[0]
        out_channels = w.shape[0]
        h_out, w_out = geo.out_size
        positions = h_out * w_out
        patch = math.prod(w.shape[1:])  # Cg KH KW
        out_group = out_channels // geo.groups

        cols = geo.patch_rows(x4)  # (N, L, C KH KW)
        y = torch.empty((batch, out_channels, h_out, w_out), dtype=x4.dtype, device=x4.device)
        y_t = y.view(batch, out_channels, positions).transpose(1, 2)  # (N, L, O)
        w2 = _view_or_copy(w, (out_channels, patch))
        for k in range(geo.groups):
            rows, chans = slice(k * out_group, (k + 1) * out_group), slice(k * patch,
                                                                            (k + 1) * patch)
            mm(cols[:, :, chans], w2[rows].T, bias=None if b is None else b[rows],
               out=y_t[:, :, rows])

        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.geo, ctx.x_shape, ctx.unbatched = geo, tuple(x4.shape), x.dim() == 3
        ctx.save_for_backward(x if need_w else None, weight if need_x else None)
        return Tensor._wrap(y if x.dim() == 4 else y[0])

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        geo = ctx.geo
        batch, channels, height, width = ctx.x_shape
        grad = grad_out._data if not ctx.unbatched else grad_out._data.unsqueeze(0)
        out_channels = grad.shape[1]
        positions = geo.out_size[0] * geo.out_size[1]
        out_group = out_channels // geo.groups
        dtype, device = grad.dtype, grad.device
        grad_x = grad_w = grad_b = None

        if need_x:  # dcols_k[n] = W_k^T dY_k[n] in fp32 (fp64), then dx = fold(dcols)
            w = weight._data
            patch = math.prod(w.shape[1:])
            w2 = _view_or_copy(w, (out_channels, patch))
            dy = _view_or_copy(grad, (batch, out_channels, positions))
            acc_dtype = torch.float64 if dtype == torch.float64 else torch.float32
            grad_cols = torch.empty((batch, channels * geo.kernel[0] * geo.kernel[1],
                                     positions), dtype=acc_dtype, device=device)
            for k in range(geo.groups):
                rows, chans = slice(k * out_group, (k + 1) * out_group), slice(k * patch,
                                                                                (k + 1) * patch)
                mm(w2[rows].T, dy[:, rows], out=grad_cols[:, chans])
            grad_x = geo.fold(grad_cols, (height, width), dtype)
            if ctx.unbatched:
                grad_x = grad_x[0]
            grad_x = Tensor._wrap(grad_x)

        if need_w or need_b:
            # dY as (O, N L): the batch folded into the products' K (one copy kernel unless
            # the layout already allows the view, as for N = 1)
            dy_rows = _view_or_copy(grad.permute(1, 0, 2, 3), (out_channels, batch * positions))
            if need_b and geo.groups == 1 and need_w:
                grad_b = torch.empty((out_channels,), dtype=dtype, device=device)
            if need_w:  # dW_k = dY_k (Og, N L) @ cols_k (N L, Cg KH KW), every k in one launch
                cols = geo.patch_rows(x._data if not ctx.unbatched else x._data.unsqueeze(0))
                patch = cols.shape[2] // geo.groups
                cols_g = cols.view(batch * positions, geo.groups, patch).permute(1, 0, 2)
                grad_w = torch.empty((out_channels, channels // geo.groups, *geo.kernel),
                                     dtype=dtype, device=device)
                mm(dy_rows.view(geo.groups, out_group, batch * positions), cols_g,
                   out=grad_w.view(geo.groups, out_group, patch), bias_grad_out=grad_b)
                grad_w = Tensor._wrap(grad_w)
            if need_b and grad_b is None:  # db = sum over (n, l) of dY
                grad_b = reduction_kernels.sum(dy_rows, 1)
            if grad_b is not None:
                grad_b = Tensor._wrap(grad_b)
        return grad_x, grad_w, grad_b, None, None, None, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv2d``: input (N, C, H, W) or unbatched (C, H, W), weight
    (O, C / groups, kH, kW), bias (O,) or None; stride, padding and dilation an int or a
    (height, width) pair; padding also 'valid' or 'same' (stride 1 only, as torch)."""
    return Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)


# ----------------------------------------------------------------------------- unfold / fold


class Unfold(Function):
    """cols = unfold(x) (kernels/conv.py); its VJP is fold, the transpose of unfold."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
        x = _tensor_arg("unfold", "input", x)
        if x.dim() not in (3, 4):
            raise ShapeError(f"unfold: Input Error: Only 3D or 4D input Tensors are supported "
                             f"(got {x.dim()}D, size {_sizes(x.shape)})")
        x4 = x._data if x.dim() == 4 else x._data.unsqueeze(0)
        cols = conv_kernels.unfold(x4, kernel_size, dilation, padding, stride)
        ctx.args = (kernel_size, dilation, padding, stride)
        ctx.image_size, ctx.unbatched = tuple(x4.shape[2:]), x.dim() == 3
        return Tensor._wrap(cols if x.dim() == 4 else cols[0])

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        grad = grad_out._data if not ctx.unbatched else grad_out._data.unsqueeze(0)
        grad_x = conv_kernels.fold(grad, ctx.image_size, *ctx.args)
        return (Tensor._wrap(grad_x if not ctx.unbatched else grad_x[0]),
                None, None, None, None)


class Fold(Function):
    """x = fold(cols) (kernels/conv.py); its VJP is unfold, the transpose of fold."""

    @staticmethod
    def forward(ctx, cols: Tensor, output_size, kernel_size, dilation=1, padding=0,
                stride=1) -> Tensor:
        cols = _tensor_arg("fold", "input", cols)
        if cols.dim() not in (2, 3):
            raise ShapeError(
                "fold: Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch "
                f"size and non-zero dimensions for input, but got: {_sizes(cols.shape)}")
        cols3 = cols._data if cols.dim() == 3 else cols._data.unsqueeze(0)
        x = conv_kernels.fold(cols3, output_size, kernel_size, dilation, padding, stride)
        ctx.args = (kernel_size, dilation, padding, stride)
        ctx.unbatched = cols.dim() == 2
        return Tensor._wrap(x if cols.dim() == 3 else x[0])

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        grad = grad_out._data if not ctx.unbatched else grad_out._data.unsqueeze(0)
        grad_cols = conv_kernels.unfold(grad, *ctx.args)
        return (Tensor._wrap(grad_cols if not ctx.unbatched else grad_cols[0]),) + (None,) * 5


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``torch.nn.functional.unfold``: the sliding blocks of an (N, C, H, W) or (C, H, W)
    image as columns, (N, C kH kW, L) or (C kH kW, L)."""
    return Unfold.apply(input, kernel_size, dilation, padding, stride)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``torch.nn.functional.fold``: columns (N, C kH kW, L) or (C kH kW, L) summed back into
    an (N, C, H, W) or (C, H, W) image of spatial size ``output_size``."""
    return Fold.apply(input, output_size, kernel_size, dilation, padding, stride)
