"""Gathers by an integer index: ``torch.gather`` (``kernels/gather.py``), and
``index_select`` / indexing with an integer tensor or list (``x[idx]``, ``x[:, idx]``),
which are row gathers run on the embedding kernels (``kernels/embedding.py``).

Index values are checked on the device; the host reads the flag once per call and raises
torch's message, unless ``tritongrad.ops.loss.CHECK_LABELS`` is False (then an out-of-range
index gives NaN, never an out-of-bounds read), as for cross-entropy's labels.
"""

from __future__ import annotations

import numbers

import torch

from ..autograd.function import Function
from ..kernels import embedding as embedding_kernels
from ..kernels import gather as gather_kernels
from ..kernels._checks import OutOfRangeError, ShapeError
from ..autograd.grad_mode import no_grad
from ..kernels import copy as copy_kernels
from ..tensor import Tensor
from . import loss as _loss


class Gather(Function):
    """out = x gathered along ``dim`` by ``index``; gx scatters g back, summing where
    indices repeat (derivation in kernels/gather.py)."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int, index: Tensor) -> Tensor:
        out = gather_kernels.gather_fwd(x._data, dim, index._data,
                                        check_indices=_loss.CHECK_LABELS)
        ctx.dim = dim % max(x.ndim, 1)
        ctx.input_shape = tuple(x.shape)
        ctx.save_for_backward(index)
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (index,) = ctx.saved_tensors
        gx = gather_kernels.gather_bwd(grad._data, index._data, ctx.dim, ctx.input_shape)
        return Tensor._wrap(gx), None, None


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """torch.gather(x, dim, index): out[..., i, ...] = x[..., index[..., i, ...], ...] along
    ``dim``; index is int64 with x's rank, no larger than x off ``dim``. Differentiable in x."""
    return Gather.apply(x, int(dim), _as_index(index, "gather"))


def _as_index(index, op: str) -> Tensor:
    if isinstance(index, Tensor):
        return index
    if isinstance(index, (list, tuple)):
        from ..creation import tensor
        return tensor(index, dtype=torch.int64)
    raise TypeError(f"{op}: index must be a tensor, got {type(index).__name__}")


class IndexSelect(Function):
    """out = the slices of x along ``dim`` named by a 1-D index: the gather kernel with the
    index expanded (stride 0) over the other dims. Backward: the slices' gradients summed
    back onto the slice each came from (indices may repeat), as the embedding backward
    sums rows: grad viewed as (len(index), rest) rows, scattered into (size, rest)."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int, index: Tensor, op: str,
                wrap_negative: bool) -> Tensor:
        shape = [1] * x.ndim
        shape[dim] = index.numel()
        out_shape = list(x.shape)
        out_shape[dim] = index.numel()
        expanded = index._data.reshape(shape).expand(out_shape)  # metadata only
        out = gather_kernels.gather_fwd(x._data, dim, expanded, check_indices=_loss.CHECK_LABELS,
                                        wrap_negative=wrap_negative, op=op)
        ctx.dim, ctx.size, ctx.wrap_negative = dim, x.shape[dim], wrap_negative
        ctx.save_for_backward(index)
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if not ctx.needs_input_grad[0]:
            return (None,) * 5
        (index,) = ctx.saved_tensors
        if ctx.wrap_negative:
            from .select import where
            with no_grad():
                index = where(index < 0, index + ctx.size, index)
        dim = ctx.dim
        moved = grad._data.movedim(dim, 0)  # a view
        rest = tuple(moved.shape[1:])
        n_rest = 1  # explicit, not -1: an empty index leaves (0, -1) ambiguous
        for size in rest:
            n_rest *= size
        rows = moved.reshape(moved.shape[0], n_rest) if moved.is_contiguous() else \
            copy_kernels.copy(moved).reshape(moved.shape[0], n_rest)
        grad_rows = embedding_kernels.embedding_bwd(rows, index._data.reshape(-1), ctx.size,
                                                    None, False)
        gx = grad_rows.reshape((ctx.size,) + rest).movedim(0, dim)  # views
        return Tensor._wrap(gx), None, None, None, None


def index_select(x: Tensor, dim: int, index, op: str = "index_select",
                 wrap_negative: bool = False) -> Tensor:
    """torch.index_select(x, dim, index): the slices of x along ``dim`` named by the 1-D (or
    0-d) int64/int32 ``index``, in that order; the result has len(index) there. With
    ``wrap_negative`` (indexing's rule) -size <= i < 0 counts from the end."""
    index = _as_index(index, op)
    if index.ndim > 1:
        raise ShapeError(f"{op}(): Index is supposed to be a vector, got shape "
                         f"{tuple(index.shape)}")
    if x.ndim == 0:
        raise ShapeError(f"{op}(): a 0-d tensor has no dimension to select along")
    if not -x.ndim <= dim < x.ndim:
        raise OutOfRangeError(f"{op}(): Dimension out of range (expected to be in range of "
                              f"[{-x.ndim}, {x.ndim - 1}], but got {dim})")
    return IndexSelect.apply(x, dim % x.ndim, index, op, wrap_negative)


def index_with_tensor(x: Tensor, index) -> Tensor | None:
    """x[index] where ``index`` holds exactly one integer tensor (any rank: a 0-d one drops
    the dim) or flat list (advanced indexing along one dim) and otherwise only full slices
    ``:`` / ``...``; None when the index has another form (getitem then handles it or
    refuses it)."""
    items = index if isinstance(index, tuple) else (index,)
    picks = [i for i, item in enumerate(items) if _is_integer_array(item)]
    if len(picks) != 1:
        return None
    others = [item for i, item in enumerate(items) if i != picks[0]]
    if not all(item is Ellipsis or item == slice(None) for item in others):
        return None
    if sum(item is Ellipsis for item in items) > 1:
        return None
    before = picks[0]
    if Ellipsis in items[:before]:
        dim = x.ndim - (len(items) - before)
    else:
        dim = before
    tensor_index = _as_index(items[picks[0]], "index")
    if not 0 <= dim < x.ndim:
        raise OutOfRangeError(f"too many indices for tensor of dimension {x.ndim}")
    if tensor_index.ndim == 1:
        return index_select(x, dim, tensor_index, op="index", wrap_negative=True)
    # as torch: a 0-d index drops the dim (as an int would), an N-d one puts its shape there
    picked = index_select(x, dim, tensor_index.reshape(tensor_index.numel()), op="index",
                          wrap_negative=True)
    return picked.reshape(tuple(x.shape[:dim]) + tuple(tensor_index.shape)
                          + tuple(x.shape[dim + 1:]))


def _is_integer_array(item) -> bool:
    if isinstance(item, Tensor):
        return item.dtype in (torch.int64, torch.int32)
    if isinstance(item, list):
        return all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in item)
    return False

