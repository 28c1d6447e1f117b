"""Views: reshape, transpose, permute, (un)squeeze, expand, basic indexing.

A view's forward is metadata only (torch's view of the same storage); its
backward maps the gradient back to the input's shape. Only ``expand``
(summing over broadcast dims) and ``getitem`` (scattering into zeros) launch
kernels in backward.
"""

from __future__ import annotations

import numbers

import torch

from ..autograd.function import Function
from ..kernels import copy as copy_kernels
from ..kernels._checks import OutOfRangeError, ShapeError
from ..tensor import Tensor


def shape_arg(shape) -> tuple:
    """Accept f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
        return tuple(shape[0])
    return tuple(shape)


def reshaped(data: torch.Tensor, shape) -> torch.Tensor:
    """``data`` viewed as ``shape``; when its strides cannot express that, a
    contiguous copy first (our copy kernel, never torch's)."""
    try:
        return data.view(shape)
    except RuntimeError:
        return copy_kernels.copy(data).view(shape)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x: Tensor, shape: tuple) -> Tensor:
        ctx.input_shape = tuple(x.shape)
        try:
            return Tensor._wrap(reshaped(x._data, shape))
        except RuntimeError as error:
            raise ShapeError(f"reshape: shape {list(shape)} is invalid for input of size "
                             f"{x.numel()} (shape {list(x.shape)})") from error

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(reshaped(grad._data, ctx.input_shape)), None


class View(Function):
    """Like reshape, but never copies: a view torch cannot express is an error."""

    @staticmethod
    def forward(ctx, x: Tensor, shape: tuple) -> Tensor:
        ctx.input_shape = tuple(x.shape)
        try:
            return Tensor._wrap(x._data.view(shape))
        except RuntimeError as error:
            raise ShapeError(f"view: cannot view shape {list(x.shape)} (strides "
                             f"{list(x.stride())}) as {list(shape)}: {error}. Use .reshape().") from None

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(reshaped(grad._data, ctx.input_shape)), None


class Permute(Function):
    """y = x.permute(dims); backward permutes the gradient by the inverse."""

    @staticmethod
    def forward(ctx, x: Tensor, dims: tuple) -> Tensor:
        if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
            raise ShapeError(f"permute: dims {list(dims)} are not a permutation of "
                             f"{x.ndim} dims (shape {list(x.shape)})")
        dims = tuple(d % x.ndim for d in dims)
        ctx.inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
        return Tensor._wrap(x._data.permute(dims))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(grad._data.permute(ctx.inverse)), None


class Transpose(Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim0: int, dim1: int) -> Tensor:
        ctx.dims = (dim0, dim1)
        return Tensor._wrap(x._data.transpose(dim0, dim1))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(grad._data.transpose(*ctx.dims)), None, None


class Expand(Function):
    """y = x broadcast to ``shape`` (stride 0). Backward: sum the gradient over
    the broadcast dims, since each x element fed every y element in them."""

    @staticmethod
    def forward(ctx, x: Tensor, shape: tuple) -> Tensor:
        ctx.input_shape = tuple(x.shape)
        try:
            return Tensor._wrap(x._data.expand(shape))
        except RuntimeError:
            raise ShapeError(f"expand: shape {list(x.shape)} cannot be expanded to "
                             f"{list(shape)}") from None

    @staticmethod
    def backward(ctx, grad: Tensor):
        from ..kernels.reduction import sum_to_shape

        return Tensor._wrap(sum_to_shape(grad._data, ctx.input_shape)), None


def normalize_index(index):
    """Basic indexing only (ints, slices, None, Ellipsis): those are views. Anything
    torch reads as advanced indexing (a tensor, list, range, numpy array, or a bool)
    gives torch a *copy*, so getitem's backward and ``__setitem__`` would write into
    that copy and lose the gradient or the write: refused. ``True`` is ``None`` (a new
    dim of size 1), as in torch."""
    is_tuple = isinstance(index, tuple)
    items = list(index) if is_tuple else [index]
    for i, item in enumerate(items):
        if item is True:
            items[i] = None
        elif item is None or item is Ellipsis or isinstance(item, slice):
            if isinstance(item, slice) and item.step is not None and item.step <= 0:
                raise ValueError("step must be greater than zero")
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
            items[i] = int(item)
        else:
            raise TypeError(
                "tritongrad indexes with ints, slices, None and ..., or, when reading, with "
                "one integer tensor or list alongside full slices (x[idx], x[:, idx]); "
                "assignment through an index tensor, boolean masks and "
                f"mixed or several index tensors are not supported (got a {type(item).__name__} "
                "in this index)"
            )
    return tuple(items) if is_tuple else items[0]


class GetItem(Function):
    """y = x[index] (a view). Backward: a zero tensor of x's shape with the
    gradient written into the same view: only the selected elements get one."""

    @staticmethod
    def forward(ctx, x: Tensor, index) -> Tensor:
        ctx.input_shape = tuple(x.shape)
        ctx.index = index
        try:
            return Tensor._wrap(x._data[index])
        except IndexError as error:
            raise OutOfRangeError(f"index {index!r} is out of range for shape "
                                  f"{list(x.shape)}: {error}") from None

    @staticmethod
    def backward(ctx, grad: Tensor):
        full = torch.zeros(ctx.input_shape, dtype=grad.dtype, device=grad.device)
        copy_kernels.copy_into(full[ctx.index], grad._data)
        return Tensor._wrap(full), None


def reshape(x: Tensor, shape: tuple) -> Tensor:
    return Reshape.apply(x, shape)


def view(x: Tensor, shape: tuple) -> Tensor:
    return View.apply(x, shape)


def _dim(op: str, dim: int, ndim: int) -> int:
    """``dim`` in [0, ndim) (a 0-d tensor takes dims 0 and -1, as in torch)."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise OutOfRangeError(f"{op}: Dimension out of range (expected to be in range of "
                              f"[{-size}, {size - 1}], but got {dim})")
    return dim % size


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    start, end = _dim("flatten", start_dim, x.ndim), _dim("flatten", end_dim, x.ndim)
    if start > end:
        raise ValueError(f"flatten() has invalid args: start_dim ({start_dim}) cannot come "
                         f"after end_dim ({end_dim}) for a {x.ndim}-D tensor")
    if x.ndim == 0:
        return reshape(x, (1,))
    merged = 1
    for size in x.shape[start:end + 1]:
        merged *= size
    return reshape(x, tuple(x.shape[:start]) + (merged,) + tuple(x.shape[end + 1:]))


def permute(x: Tensor, dims: tuple) -> Tensor:
    return Permute.apply(x, dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    return Transpose.apply(x, dim0, dim1)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise OutOfRangeError(f"unsqueeze: dim {dim} out of range for a {x.ndim}-D tensor")
    dim = dim % (x.ndim + 1)
    return reshape(x, tuple(x.shape[:dim]) + (1,) + tuple(x.shape[dim:]))


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dim = _dim("squeeze", dim, x.ndim)
        shape = tuple(s for i, s in enumerate(x.shape) if not (i == dim and s == 1))
    return reshape(x, shape)


def expand(x: Tensor, shape: tuple) -> Tensor:
    new_dims = len(shape) - x.ndim
    if any(s == -1 for s in shape[:max(new_dims, 0)]):
        raise ShapeError(f"expand: -1 is not allowed in a leading, non-existing dimension "
                         f"(shape {list(x.shape)} to {list(shape)})")
    shape = tuple(x.shape[i - new_dims] if s == -1 else s for i, s in enumerate(shape))
    return Expand.apply(x, shape)


def getitem(x: Tensor, index) -> Tensor:
    from .gather import index_with_tensor  # gather's module builds on these views

    picked = index_with_tensor(x, index)  # x[idx], x[:, idx]: an integer tensor or list
    if picked is not None:
        return picked
    return GetItem.apply(x, normalize_index(index))


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """torch.split: views of x along ``dim``, of ``split_size_or_sections`` elements each
    (an int: the last may be smaller) or of the listed sizes (which must add up to the
    dim's size). Each piece is a slice of x, so gradients flow back through getitem."""
    if x.ndim == 0:
        raise ShapeError("split: split expects at least a 1-dimensional tensor")
    dim = _dim("split", dim, x.ndim)
    size = x.shape[dim]
    if isinstance(split_size_or_sections, numbers.Integral):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and size != 0):
            raise ValueError(f"split: split_size can only be 0 if dimension size is 0, and "
                             f"must be non-negative; got split_size={step} for size {size} "
                             f"at dimension {dim}")
        # an empty dim still gives one (empty) piece, as torch
        sizes = [min(step, size - start) for start in range(0, size, step)] if size else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                             f"(input tensor's size at dimension {dim}), but got "
                             f"split_sizes={sizes}")
    pieces, start = [], 0
    for length in sizes:
        index = (slice(None),) * dim + (slice(start, start + length),)
        pieces.append(getitem(x, index))
        start += length
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """torch.chunk: ``chunks`` views along ``dim`` of ceil(size / chunks) elements each
    (fewer pieces when the size runs out first, as torch)."""
    if chunks <= 0:
        raise ValueError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if x.ndim == 0:
        raise ShapeError("chunk: chunk expects at least a 1-dimensional tensor")
    size = x.shape[_dim("chunk", dim, x.ndim)]
    if size == 0:  # torch gives ``chunks`` empty pieces
        return split(x, [0] * chunks, dim)
    return split(x, -(-size // chunks), dim)


def repeat(x: Tensor, sizes: tuple) -> Tensor:
    """torch's Tensor.repeat: x tiled ``sizes[i]`` times along each dim (leading sizes add
    dims). An expand of x viewed as (1, s0, 1, s1, ...) to (r0, s0, r1, s1, ...), then a
    reshape (our copy kernel); backward is the expand's sum over the repeats."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: Number of dimensions of repeat dims ({len(sizes)}) can "
                         f"not be smaller than number of dimensions of tensor ({x.ndim})")
    if any(s < 0 for s in sizes):
        raise ValueError(f"repeat: Trying to create tensor with negative dimension: {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    interleaved_one = tuple(v for s in shape for v in (1, s))
    interleaved = tuple(v for r, s in zip(sizes, shape) for v in (r, s))
    tiled = expand(reshape(x, interleaved_one), interleaved)
    return reshape(tiled, tuple(r * s for r, s in zip(sizes, shape)))
