"""Joins: ``cat`` and ``stack``.

Forward allocates the output and copies each input into its slice (a ``narrow`` or
``select`` view of the output: metadata only) with the strided copy kernel, which also
casts an input to the promoted dtype: one launch per non-empty input. A single
multi-tensor launch would need each input's pointer, sizes and strides in a device-side
table (a host-to-device copy per call, itself about the cost of a launch) and a grid sized
for the largest input; for the handful of inputs small networks join, one launch per input
through the existing launcher is as fast and much simpler.

Backward: out[slice_i] = x_i, so dL/dx_i = dL/dout[slice_i], the same slice of the output
gradient: a view, no launch. The engine copies it only where it must (a leaf keeping it as
its ``.grad`` gets a contiguous copy; another node reads it through its strides); an input
of another dtype gets it cast back with the copy kernel.
"""

from __future__ import annotations

import numbers

import torch

from ..autograd.function import Function
from ..kernels import copy as copy_kernels
from ..kernels._checks import DTypeError, OutOfRangeError, ShapeError, check_same_device, dtype_name
from .._device import check_device
from ..tensor import Tensor


def _tensor_list(op: str, tensors) -> list:
    """``tensors`` as a list of tg Tensors (torch tensors on our device are wrapped)."""
    if isinstance(tensors, (Tensor, torch.Tensor)) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}(): argument 'tensors' must be a tuple or list of Tensors, not "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}(): expected a non-empty list of Tensors")
    out = []
    for i, t in enumerate(tensors):
        if isinstance(t, torch.Tensor):
            check_device(t, f"element {i} of the tensors given to {op}()")
            t = Tensor._wrap(t)
        elif not isinstance(t, Tensor):
            raise TypeError(f"{op}(): expected Tensor as element {i} in argument 0, but got "
                            f"{type(t).__name__}")
        out.append(t)
    check_same_device(op, **{f"tensor {i}": t._data for i, t in enumerate(out)})
    return out


def _result_dtype(op: str, tensors: list) -> torch.dtype:
    """torch's promotion over every input (the skipped empty ones too)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype not in copy_kernels.COPY_DTYPES:
        listed = ", ".join(dtype_name(t.dtype) for t in tensors)
        raise DTypeError(f"{op}: inputs of dtypes {listed} promote to {dtype_name(dtype)}, "
                         "which tritongrad has no kernels for; convert them first")
    return dtype


def _dim(op: str, dim: int, ndim: int) -> int:
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{op}(): argument 'dim' must be int, not {type(dim).__name__}")
    dim = int(dim)
    if not -ndim <= dim < ndim:
        raise OutOfRangeError(f"{op}: Dimension out of range (expected to be in range of "
                              f"[{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


def _skipped(t: Tensor) -> bool:
    """torch's legacy rule: a 1-D tensor with no elements is left out of cat (its shape
    need not match), though its dtype still takes part in promotion."""
    return t.ndim == 1 and t.numel() == 0


def _grad_piece(view: torch.Tensor, dtype: torch.dtype) -> Tensor:
    """A slice of the output gradient for an input of ``dtype``: the view itself, or
    cast to the input's dtype (the copy kernel) when cat promoted it."""
    return Tensor._wrap(view if view.dtype == dtype else copy_kernels.copy(view, dtype))


class Cat(Function):
    """out = cat(tensors, dim). Backward: each input's gradient is its slice of grad."""

    @staticmethod
    def forward(ctx, dim: int, *tensors: Tensor) -> Tensor:
        dtype = _result_dtype("cat", tensors)
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise ShapeError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                                 "concatenated")
        kept = [(i, t) for i, t in enumerate(tensors) if not _skipped(t)]
        ctx.dtypes = [t.dtype for t in tensors]
        ctx.pieces = [None] * len(tensors)  # (offset, size) along dim; None: skipped
        device = tensors[0].device
        if not kept:
            ctx.dim = 0
            return Tensor._wrap(torch.empty((0,), dtype=dtype, device=device))
        first_index, first = kept[0]
        dim = _dim("cat", dim, first.ndim)
        ctx.dim = dim
        for i, t in kept[1:]:
            if t.ndim != first.ndim:
                raise ShapeError(f"cat: Tensors must have same number of dimensions: got "
                                 f"{first.ndim} and {t.ndim} (shapes {list(first.shape)} at "
                                 f"position {first_index} and {list(t.shape)} at position {i})")
            for d in range(first.ndim):
                if d != dim and t.shape[d] != first.shape[d]:
                    raise ShapeError(
                        f"cat: Sizes of tensors must match except in dimension {dim}. Expected "
                        f"size {first.shape[d]} but got size {t.shape[d]} for tensor number {i} "
                        f"in the list (shapes {list(first.shape)} and {list(t.shape)})")
        shape = list(first.shape)
        shape[dim] = sum(t.shape[dim] for _, t in kept)
        out = torch.empty(shape, dtype=dtype, device=device)
        offset = 0
        for i, t in kept:
            size = t.shape[dim]
            ctx.pieces[i] = (offset, size)
            copy_kernels.copy_into(out.narrow(dim, offset, size), t._data)
            offset += size
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grads = []
        for need, piece, dtype in zip(ctx.needs_input_grad[1:], ctx.pieces, ctx.dtypes):
            if not need:
                grads.append(None)
            elif piece is None:  # a skipped empty input: an empty gradient
                grads.append(Tensor._wrap(torch.empty((0,), dtype=dtype, device=grad.device)))
            else:
                grads.append(_grad_piece(grad._data.narrow(ctx.dim, *piece), dtype))
        return (None, *grads)


class Stack(Function):
    """out = stack(tensors, dim): out.select(dim, i) = tensors[i]. Backward: each input's
    gradient is grad.select(dim, i)."""

    @staticmethod
    def forward(ctx, dim: int, *tensors: Tensor) -> Tensor:
        dtype = _result_dtype("stack", tensors)
        first = tensors[0]
        for i, t in enumerate(tensors[1:], start=1):
            if tuple(t.shape) != tuple(first.shape):
                raise ShapeError(f"stack expects each tensor to be equal size, but got "
                                 f"{list(first.shape)} at entry 0 and {list(t.shape)} at "
                                 f"entry {i}")
        dim = _dim("stack", dim, first.ndim + 1)
        ctx.dim = dim
        ctx.dtypes = [t.dtype for t in tensors]
        shape = list(first.shape)
        shape.insert(dim, len(tensors))
        out = torch.empty(shape, dtype=dtype, device=first.device)
        for i, t in enumerate(tensors):
            copy_kernels.copy_into(out.select(dim, i), t._data)
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grads = [_grad_piece(grad._data.select(ctx.dim, i), dtype) if need else None
                 for i, (need, dtype) in enumerate(zip(ctx.needs_input_grad[1:], ctx.dtypes))]
        return (None, *grads)


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate ``tensors`` along ``dim`` (torch.cat): shapes must match except in
    ``dim``; dtypes promote as torch's; a 1-D empty tensor is skipped (torch's legacy rule)."""
    return Cat.apply(dim, *_tensor_list("cat", tensors))


def stack(tensors, dim: int = 0) -> Tensor:
    """Join equally shaped ``tensors`` along a new dimension ``dim`` (torch.stack)."""
    return Stack.apply(dim, *_tensor_list("stack", tensors))

