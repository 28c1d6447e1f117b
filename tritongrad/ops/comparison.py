"""Comparisons (==, !=, <, <=, >, >=) and argmax. Their results (bool, int64) carry no
gradient, as in torch: they are plain tensors without a grad_fn."""

from __future__ import annotations

import numbers

import torch

from ..kernels import elementwise as ew
from ..kernels import reduction as red
from ..tensor import Tensor, _as_tensor
from .elementwise import _result_dtype, _scalar_operand


def compare(op: str, a: Tensor, other):
    """``a OP other`` elementwise, broadcasting, in torch's promoted dtype; NotImplemented
    for an operand that is neither a number nor a tensor (so ``x == None`` is False)."""
    if isinstance(other, numbers.Number):
        # as arithmetic promotes (a float scalar makes an integer tensor fp32); a Python bool
        # compares with a bool tensor as it is
        a = a if isinstance(other, bool) else _scalar_operand(op, a, other)
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
