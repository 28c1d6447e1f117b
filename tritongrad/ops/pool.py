"""2-D pooling, as torch's ``F.max_pool2d``, ``F.avg_pool2d`` and ``F.adaptive_avg_pool2d``
on (N, C, H, W) or (C, H, W) input. ``kernels/pool.py`` has the windows and derives each
backward: max routes dy to the saved argmax index, average spreads dy / divisor over the
window; both gather per input element (deterministic: no atomics)."""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels import pool as pool_kernels
from ..tensor import Tensor
from .loss import _tensor


class MaxPool2d(Function):
    """(y, indices) = max_pool2d(x): y is x at the saved flat index of each window's first
    maximum (NaN wins), so the gradient reaches those indices only. indices are int64
    (no gradient) and saved: changing them in place fails the backward, as in torch."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool):
        y, indices = pool_kernels.max_pool2d_fwd(x._data, kernel_size, stride, padding,
                                                 dilation, ceil_mode)
        indices = Tensor._wrap(indices)
        ctx.save_for_backward(indices)
        ctx.input_shape = tuple(x.shape)
        ctx.window = (kernel_size, stride, padding, dilation, ceil_mode)
        ctx.set_materialize_grads(False)  # the indices never get a gradient
        return Tensor._wrap(y), indices

    @staticmethod
    def backward(ctx, grad_y: Tensor | None, grad_indices=None):
        (indices,) = ctx.saved_tensors
        none = (None,) * 5
        if grad_y is None or not ctx.needs_input_grad[0]:
            return (None,) + none
        dx = pool_kernels.max_pool2d_bwd(grad_y._data, indices._data, ctx.input_shape,
                                         *ctx.window)
        return (Tensor._wrap(dx),) + none


class AvgPool2d(Function):
    """y = avg_pool2d(x): each output is its window's sum over torch's divisor, so each
    input gets dy / divisor from every window that holds it. Nothing is saved."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel_size, stride, padding, ceil_mode: bool,
                count_include_pad: bool, divisor_override) -> Tensor:
        args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        y = pool_kernels.avg_pool2d_fwd(x._data, *args)
        ctx.input_shape, ctx.args = tuple(x.shape), args
        return Tensor._wrap(y)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        none = (None,) * 6
        if not ctx.needs_input_grad[0]:
            return (None,) + none
        dx = pool_kernels.avg_pool2d_bwd(grad_y._data, ctx.input_shape, *ctx.args)
        return (Tensor._wrap(dx),) + none


class AdaptiveAvgPool2d(Function):
    """y = adaptive_avg_pool2d(x, output_size): output (i, j) averages rows
    [floor(i H / OH), ceil((i+1) H / OH)) and the same columns of W; each input gets
    dy / (window height * width) from every window that holds it. Nothing is saved."""

    @staticmethod
    def forward(ctx, x: Tensor, output_size) -> Tensor:
        y = pool_kernels.adaptive_avg_pool2d_fwd(x._data, output_size)
        ctx.input_shape = tuple(x.shape)
        return Tensor._wrap(y)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None
        dx = pool_kernels.adaptive_avg_pool2d_bwd(grad_y._data, ctx.input_shape)
        return Tensor._wrap(dx), None


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """``torch.nn.functional.max_pool2d``: the maximum of each kernel_size window (stride
    defaults to kernel_size; padding is -inf; dilation spaces the taps). With
    return_indices, also the int64 flat h*W + w index of each maximum, as torch's."""
    input = _tensor(input, "input", pool_kernels.MAX_OP)
    y, indices = MaxPool2d.apply(input, kernel_size, stride, padding, dilation,
                                 bool(ceil_mode))
    return (y, indices) if return_indices else y


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """``torch.nn.functional.avg_pool2d``: the mean of each kernel_size window, with torch's
    divisor (divisor_override; else the window clipped to the padded input when
    count_include_pad, or its real elements otherwise)."""
    input = _tensor(input, "input", pool_kernels.AVG_OP)
    return AvgPool2d.apply(input, kernel_size, stride, padding, bool(ceil_mode),
                           bool(count_include_pad), divisor_override)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool2d``: an output of ``output_size`` (an int or
    a pair; None keeps that input size), each the mean of torch's adaptive window."""
    input = _tensor(input, "input", pool_kernels.ADAPTIVE_OP)
    return AdaptiveAvgPool2d.apply(input, output_size)
