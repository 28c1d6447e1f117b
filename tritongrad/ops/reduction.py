"""sum and mean over all elements or given dims, with keepdim."""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels import copy as copy_kernels
from ..kernels import elementwise as ew
from ..kernels import reduction as red
from ..kernels._checks import OutOfRangeError, ShapeError
from ..tensor import Tensor


def _dims(x: Tensor, dim) -> tuple | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    ndim = max(x.ndim, 1)
    for d in dims:
        if not -ndim <= d < ndim:
            raise OutOfRangeError(
                f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                f"but got {d}) for shape {list(x.shape)}"
            )
    normalized = [d % ndim for d in dims]
    for d in set(normalized):
        if normalized.count(d) > 1:
            raise ShapeError(f"dim {d} appears multiple times in the list of dims "
                             f"(dims {list(dims)}, shape {list(x.shape)})")
    if x.ndim == 0 or not normalized:
        # dim=() reduces every dim, as in torch; a 0-d tensor takes dim 0 or -1 (identity)
        return None
    return tuple(sorted(normalized))


def _grad_view(grad: Tensor, input_shape: tuple, dims, keepdim: bool):
    """The output gradient as a stride-0 view of the input's shape: every
    input element in a reduced group receives its group's gradient."""
    data = grad._data
    if not keepdim:
        shape = list(data.shape)
        for d in (range(len(input_shape)) if dims is None else dims):
            shape.insert(d, 1)
        data = data.reshape(shape) if data.is_contiguous() else copy_kernels.copy(data).reshape(shape)
    return data.expand(input_shape)


class Sum(Function):
    """y = Σ_{reduced dims} x: dy/dx = 1, so dL/dx is dL/dy broadcast back."""

    @staticmethod
    def forward(ctx, x: Tensor, dims, keepdim: bool) -> Tensor:
        ctx.input_shape, ctx.dims, ctx.keepdim = tuple(x.shape), dims, keepdim
        return Tensor._wrap(red.sum(x._data, dims, keepdim))

    @staticmethod
    def backward(ctx, grad: Tensor):
        view = _grad_view(grad, ctx.input_shape, ctx.dims, ctx.keepdim)
        return Tensor._wrap(copy_kernels.copy(view)), None, None


class Mean(Function):
    """y = Σ x / n: dL/dx = dL/dy / n broadcast back (one launch: the scaling
    kernel reads the stride-0 view directly)."""

    @staticmethod
    def forward(ctx, x: Tensor, dims, keepdim: bool) -> Tensor:
        ctx.input_shape, ctx.dims, ctx.keepdim = tuple(x.shape), dims, keepdim
        count = 1
        for d in (range(x.ndim) if dims is None else dims):
            count *= x.shape[d]
        ctx.count = count
        return Tensor._wrap(red.sum(x._data, dims, keepdim, mean=True))

    @staticmethod
    def backward(ctx, grad: Tensor):
        view = _grad_view(grad, ctx.input_shape, ctx.dims, ctx.keepdim)
        scale = 1.0 / ctx.count if ctx.count else float("nan")
        return Tensor._wrap(ew.binary_scalar("mul", view, scale)), None, None


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Sum.apply(x, _dims(x, dim), keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Mean.apply(x, _dims(x, dim), keepdim)
