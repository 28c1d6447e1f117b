"""Comparisons (==, !=, <, <=, >, >=) and argmax. Their results (bool, int64) carry no
gradient, as in torch: they are plain tensors without a grad_fn."""

from __future__ import annotations

import numbers

import torch

from ..kernels import elementwise as ew
from ..kernels import reduction as red
from ..tensor import Tensor, _as_tensor
from .elementwise import _result_dtype, check_int_scalar


def _scalar_operand(a: Tensor, scalar) -> Tensor:
    """a in the dtype torch compares it with ``scalar`` in: a float scalar makes an integer
    or bool tensor fp32, an integer scalar makes a bool tensor int64."""
    if isinstance(scalar, bool):
        return a
    check_int_scalar("comparison", a, scalar)
    if isinstance(scalar, numbers.Integral):
        return a.to(torch.int64) if a.dtype == torch.bool else a
    return a if a.is_floating_point() else a.to(torch.float32)


def compare(op: str, a: Tensor, other):
    """``a OP other`` elementwise, broadcasting, in torch's promoted dtype; NotImplemented
    for an operand that is neither a number nor a tensor (so ``x == None`` is False)."""
    if isinstance(other, numbers.Number):
        a = _scalar_operand(a, other)
        return Tensor._wrap(ew.comparison_scalar(op, a._data, float(other)))
    if not isinstance(other, (Tensor, torch.Tensor)):
        return NotImplemented
    b = _as_tensor(other, a)
    dtype = _result_dtype(a, b)
    if dtype == torch.int16:  # int8 against uint8: int64 holds both exactly, and has kernels
        dtype = torch.int64
    a = a if a.dtype == dtype else a.to(dtype)
    b = b if b.dtype == dtype else b.to(dtype)
    return Tensor._wrap(ew.comparison(op, a._data, b._data))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index (int64) of the first maximum along ``dim``, or of the flattened tensor when
    dim is None; a NaN counts as the maximum, as in torch."""
    return Tensor._wrap(red.argmax(x._data, dim, keepdim))
