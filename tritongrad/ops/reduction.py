"""sum and mean over all elements or given dims, with keepdim; the max / min family (max and
min with or without a dim, amax, amin) with torch's gradients, and argmin. The backward
derivations sit above the kernels in ``tritongrad/kernels/reduction.py``.

This module defines ``sum``, ``max`` and ``min``, so Python's builtins of those names are
not used in it.
"""

from __future__ import annotations

from collections import namedtuple

import torch

from ..autograd.function import Function
from ..kernels import copy as copy_kernels
from ..kernels import elementwise as ew
from ..kernels import reduction as red
from ..kernels._checks import OutOfRangeError, ShapeError
from ..tensor import Tensor
from . import elementwise


def _dims(x: Tensor, dim) -> tuple | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    ndim = x.ndim or 1  # a 0-d tensor takes dim 0 or -1
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


# --- max / min -------------------------------------------------------------------------------

# What max(dim) and min(dim) return, as torch.return_types.max / .min: a tuple that unpacks
# as (values, indices) and names its fields.
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])


class MaxDim(Function):
    """(values, indices) = max(x, dim) (or min): values[r] = x[r, indices[r]], so the
    gradient reaches the returned index only: gx = zeros with g scattered at the indices."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int, keepdim: bool, is_min: bool):
        values, indices = red.max_dim(x._data, dim, keepdim, is_min)
        indices = Tensor._wrap(indices)
        ctx.save_for_backward(indices)  # as torch: changing them in place fails backward
        ctx.input_shape, ctx.dim, ctx.keepdim = tuple(x.shape), dim, keepdim
        ctx.set_materialize_grads(False)  # the int64 indices never get a gradient
        return Tensor._wrap(values), indices

    @staticmethod
    def backward(ctx, grad_values: Tensor | None, grad_indices=None):
        (indices,) = ctx.saved_tensors
        if grad_values is None or not ctx.needs_input_grad[0]:
            return None, None, None, None
        grad_x = red.max_dim_bwd(grad_values._data, indices._data, ctx.input_shape, ctx.dim,
                                 ctx.keepdim)
        return Tensor._wrap(grad_x), None, None, None


class AMax(Function):
    """y = amax(x, dims) (or amin): the gradient is split evenly among the elements equal
    to their slice's result, g / count at each; a NaN result makes its slice's gradient
    NaN, as torch."""

    @staticmethod
    def forward(ctx, x: Tensor, dims, keepdim: bool, is_min: bool) -> Tensor:
        y = Tensor._wrap(red.amax(x._data, dims, keepdim, is_min))
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, y = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        grad_x = red.amax_bwd(grad._data, x._data, y._data, ctx.dims, ctx.keepdim)
        return Tensor._wrap(grad_x), None, None, None


class MaxAll(Function):
    """y = x.max() (or x.min()), over every element: the gradient is split evenly among
    the elements equal to y, and a NaN result is shared by every NaN element, as torch."""

    @staticmethod
    def forward(ctx, x: Tensor, is_min: bool) -> Tensor:
        y = Tensor._wrap(red.amax(x._data, None, False, is_min, op="min" if is_min else "max"))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, y = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        grad_x = red.amax_bwd(grad._data, x._data, y._data, None, False, nan_ties=True)
        return Tensor._wrap(grad_x), None


def _max_or_min(x: Tensor, dim, keepdim: bool, is_min: bool):
    if isinstance(dim, Tensor):  # torch.max(input, other): the element-wise maximum
        if keepdim:
            raise TypeError(f"{'min' if is_min else 'max'}(input, other) takes no keepdim")
        return (elementwise.minimum if is_min else elementwise.maximum)(x, dim)
    if dim is None:
        if keepdim:
            raise TypeError(f"{'min' if is_min else 'max'}(): keepdim needs a dim")
        return MaxAll.apply(x, is_min)
    values, indices = MaxDim.apply(x, dim, bool(keepdim), is_min)
    return (min_result if is_min else max_result)(values, indices)


def max(x: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A001
    """x.max(): the largest element, 0-d (NaN if any). x.max(dim, keepdim): the named
    tuple (values, indices) of the first maximum along dim. x.max(other) with a tensor:
    tg.maximum(x, other). All as torch.max."""
    return _max_or_min(x, dim, keepdim, False)


def min(x: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A001
    """x.min(), (values, indices) = x.min(dim, keepdim), or x.min(other) =
    tg.minimum(x, other), as torch.min."""
    return _max_or_min(x, dim, keepdim, True)


def _dims_arg(dim):
    return tuple(dim) if isinstance(dim, (tuple, list)) else dim


def amax(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """The maximum over ``dim`` (an int or a tuple; (): every dim), as torch.amax."""
    return AMax.apply(x, _dims_arg(dim), bool(keepdim), False)


def amin(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """The minimum over ``dim`` (an int or a tuple; (): every dim), as torch.amin."""
    return AMax.apply(x, _dims_arg(dim), bool(keepdim), True)


def _any_or_all(x: Tensor, dim, keepdim: bool, is_all: bool) -> Tensor:
    """Whether any (all) elements over ``dim`` are non-zero, as a bool tensor (uint8 for a
    uint8 x, as torch): amax (amin) of x != 0 (a NaN counts as non-zero, as in torch). Over
    nothing, False (True)."""
    op = "all" if is_all else "any"
    out_dtype = torch.uint8 if x.dtype == torch.uint8 else torch.bool
    dims = () if dim is None else _dims_arg(dim)
    reduced = red._normalize_dims(op, dims, x.ndim)
    if x.ndim and 0 in [x.shape[d] for d in reduced]:  # (this module shadows any())
        if keepdim:
            shape = tuple(1 if d in reduced else s for d, s in enumerate(x.shape))
        else:
            shape = tuple(s for d, s in enumerate(x.shape) if d not in reduced)
        return Tensor._wrap(copy_kernels.full(shape, is_all, out_dtype, x._data.device))
    nonzero = x.detach() if x.dtype == torch.bool else x.detach() != 0
    result = (amin if is_all else amax)(nonzero, dims, keepdim)
    if out_dtype != torch.bool:
        result = Tensor._wrap(copy_kernels.copy(result._data, out_dtype))
    return result


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """torch.any: True where some element over ``dim`` (None: all) is non-zero."""
    return _any_or_all(x, dim, keepdim, False)


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """torch.all: True where every element over ``dim`` (None: all) is non-zero."""
    return _any_or_all(x, dim, keepdim, True)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index (int64) of the first minimum along ``dim``, or of the flattened tensor when
    dim is None; a NaN counts as the minimum, as in torch. No gradient."""
    return Tensor._wrap(red.argmin(x._data, dim, keepdim))
