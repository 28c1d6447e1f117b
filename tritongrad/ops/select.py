"""Selection: ``where``, ``masked_fill`` (a ``where`` with the fill value as one operand)
and ``clamp``/``clip``, with torch's dtype rules for Python-number operands.

A number operand is rounded into the result's dtype as torch converts it: an integer
wraps into an integer dtype's range (uint8: -1 -> 255), and a value that cannot be
converted (300 for uint8; 70000 for fp16 in clamp and masked_fill) raises torch's
"value cannot be converted to type ... without overflow".
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch

from .._device import check_device
from ..autograd.function import Function
from ..kernels import select as sel
from ..kernels._checks import DTypeError, ShapeError, UnsupportedError, dtype_name
from ..kernels.reduction import sum_to_shape
from ..tensor import Tensor
from .elementwise import _category, _result_dtype

DEFAULT_FLOAT = torch.float32  # torch's default dtype: what a float scalar makes an integer tensor
EXACT_INT_LIMIT = sel.EXACT_INT_LIMIT


def _wrap_to(grad: torch.Tensor, shape) -> Tensor:
    return Tensor._wrap(sum_to_shape(grad, tuple(shape)))


class Where(Function):
    """out = condition ? input : other, broadcasting the three; input and other are
    tensors of one dtype or Python numbers (already in the result's dtype range).

    d out/d input = [condition], d out/d other = [not condition]: each operand's gradient
    is the upstream gradient where it was selected, 0 elsewhere, summed back over the
    dims it was broadcast along (one backward launch for both, plus those sums)."""

    @staticmethod
    def forward(ctx, condition: Tensor, input, other) -> Tensor:
        ctx.save_for_backward(condition)
        ctx.shapes = tuple(tuple(t.shape) if isinstance(t, Tensor) else None
                           for t in (input, other))
        a = input._data if isinstance(input, Tensor) else input
        b = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(sel.where(condition._data, a, b))

    @staticmethod
    def backward(ctx, grad: Tensor):
        (condition,) = ctx.saved_tensors
        _, need_a, need_b = ctx.needs_input_grad
        grad_a, grad_b = sel.where_bwd(grad._data, condition._data, need_a, need_b)
        return (None,
                _wrap_to(grad_a, ctx.shapes[0]) if need_a else None,
                _wrap_to(grad_b, ctx.shapes[1]) if need_b else None)


class Clamp(Function):
    """y = min(max(x, lo), hi) for Python-number bounds (None: not applied).

    dy/dx = 1 where lo <= x <= hi (both boundaries count as inside, as in torch), else 0:
    grad_x = grad * [lo <= x <= hi], from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, lo: float | None, hi: float | None) -> Tensor:
        ctx.bounds = (lo, hi)
        ctx.save_for_backward(x)
        return Tensor._wrap(sel.clamp(x._data, lo, hi))

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return Tensor._wrap(sel.clamp_bwd(grad._data, x._data, *ctx.bounds)), None, None


# --- operands, dtypes and number conversion --------------------------------------------------


def _tensor(op: str, name: str, value) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, torch.Tensor):
        check_device(value, f"{name} of {op}")
        return Tensor._wrap(value)
    raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")


def _operand(op: str, name: str, value):
    """A Tensor, or a Python (or numpy) real number."""
    if isinstance(value, (Tensor, torch.Tensor)):
        return _tensor(op, name, value)
    if isinstance(value, numbers.Real):
        return value
    raise TypeError(f"{op}: {name} must be a Tensor or a real number, got "
                    f"{type(value).__name__}")


def _number_dtype(value) -> torch.dtype:
    """The dtype torch gives a Python number in type promotion."""
    if isinstance(value, bool):
        return torch.bool
    if isinstance(value, numbers.Integral):
        return torch.int64
    return DEFAULT_FLOAT


def _with_number(dtype: torch.dtype, value) -> torch.dtype:
    """torch's result dtype of a ``dtype`` tensor and a number: the tensor's, unless the
    number is of a higher category (an integer tensor with a float number: the default float
    dtype; a bool tensor with an integer: int64)."""
    number = _number_dtype(value)
    return number if _category(number) > _category(dtype) else dtype


def _overflow(op: str, value, dtype: torch.dtype) -> DTypeError:
    return DTypeError(f"{op}: value cannot be converted to type {dtype_name(dtype)} without "
                      f"overflow (got {value!r})")


def _number_in(op: str, value, dtype: torch.dtype, check_float: bool) -> float:
    """``value`` converted to ``dtype`` as torch converts a Python number, as the float the
    kernel takes (exact: integers are within 2**53). Integers wrap into an integer dtype
    (c10 lets an unsigned type take negatives down to -max: uint8 -1 -> 255); floats into an
    integer dtype truncate. ``check_float``: also refuse a finite value beyond a float
    dtype's range, as torch's clamp and masked_fill do (where never refuses one: torch's
    rounds 70000 to inf in fp16, though it refuses 1e300 for fp32)."""
    if dtype == torch.bool:
        return 1.0 if value else 0.0
    if dtype.is_floating_point:
        result = float(value)
        if check_float and math.isfinite(result) and abs(result) > torch.finfo(dtype).max:
            raise _overflow(op, value, dtype)
        return result
    info = torch.iinfo(dtype)
    if isinstance(value, numbers.Integral):
        integer = int(value)
        lowest = -info.max if info.min == 0 else info.min
        if not lowest <= integer <= info.max:
            raise _overflow(op, value, dtype)
    else:
        real = float(value)
        if not math.isfinite(real) or not info.min <= real <= info.max:
            raise _overflow(op, value, dtype)
        integer = math.trunc(real)
    if abs(integer) > EXACT_INT_LIMIT:
        raise DTypeError(f"{op}: integer values beyond 2^53 are not supported for a "
                         f"{dtype_name(dtype)} tensor (got {value!r}): the kernels take "
                         "numbers as fp64 arguments; use a tensor operand")
    return float((integer - info.min) % 2**info.bits + info.min)


def _check_dtype(op: str, dtype: torch.dtype, what: str) -> None:
    if dtype not in sel.WHERE_DTYPES:
        raise DTypeError(f"{op}: {what} promote to {dtype_name(dtype)}, which tritongrad has no "
                         f"kernels for; supported: "
                         f"{', '.join(dtype_name(d) for d in sel.WHERE_DTYPES)}")


def _in_dtype(op: str, value, dtype: torch.dtype, check_float: bool = False):
    if isinstance(value, Tensor):
        return value if value.dtype == dtype else value.to(dtype)
    return _number_in(op, value, dtype, check_float)


# --- user-facing functions ---------------------------------------------------------------------


def where(condition, input=None, other=None) -> Tensor:
    """``input`` where ``condition`` is True, else ``other`` (torch.where): broadcasting the
    three, in torch's promoted dtype; input and other may be Python numbers."""
    if input is None or other is None:
        raise TypeError("where(condition) alone (torch.nonzero(condition, as_tuple=True)) is "
                        "not supported; pass input and other: where(condition, input, other)")
    condition = _tensor("where", "condition", condition)
    if condition.dtype == torch.uint8:
        # torch still takes a uint8 condition (nonzero is True), with this warning
        warnings.warn("where received a uint8 condition tensor. This behavior is deprecated "
                      "and will be removed in a future version of PyTorch. Use a boolean "
                      "condition instead.", UserWarning, stacklevel=2)
        condition = condition.to(torch.bool)
    if condition.dtype != torch.bool:
        raise DTypeError(f"where expected condition to be a boolean tensor, but got a tensor "
                         f"with dtype {dtype_name(condition.dtype)}")
    a = _operand("where", "input", input)
    b = _operand("where", "other", other)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        dtype = _result_dtype(a, b)
    elif isinstance(a, Tensor):
        dtype = _with_number(a.dtype, b)
    elif isinstance(b, Tensor):
        dtype = _with_number(b.dtype, a)
    else:
        dtype = torch.promote_types(_number_dtype(a), _number_dtype(b))
    _check_dtype("where", dtype, f"input ({_describe(a)}) and other ({_describe(b)})")
    a, b = _in_dtype("where", a, dtype), _in_dtype("where", b, dtype)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return Tensor._wrap(sel.where(condition._data, a, b, dtype))  # nothing to differentiate
    return Where.apply(condition, a, b)


def _describe(value) -> str:
    return dtype_name(value.dtype) if isinstance(value, Tensor) else type(value).__name__


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """x with ``value`` where ``mask`` is True (torch's Tensor.masked_fill): the result has
    x's dtype and the broadcast shape of x and mask; a 0-d tensor ``value`` gets a gradient
    (the sum of the upstream gradient where the mask is True)."""
    mask = _tensor("masked_fill", "mask", mask)
    if mask.dtype != torch.bool:
        raise DTypeError(f"masked_fill only supports boolean masks, but got mask with dtype "
                         f"{dtype_name(mask.dtype)}")
    _check_dtype("masked_fill", x.dtype, f"x ({dtype_name(x.dtype)})")
    value = _operand("masked_fill", "value", value)
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ShapeError(f"masked_fill only supports a 0-dimensional value tensor, but got "
                         f"tensor with {value.ndim} dimension(s) (shape {list(value.shape)}).")
    if isinstance(value, Tensor) and not x.dtype.is_floating_point:
        # torch fills with value.item(), converted (and range-checked) as a Python number:
        # NaN or -2.5 into uint8 raise rather than wrap. The result is an integer or bool
        # tensor, so no gradient reaches value.
        value = value.item()
    return Where.apply(mask, _in_dtype("masked_fill", value, x.dtype, check_float=True), x)


def _clamp_args(op: str, x: Tensor, lo, hi) -> tuple:
    """(result dtype, lo, hi): the bounds as floats in that dtype (None stays None)."""
    for name, bound in (("min", lo), ("max", hi)):
        if isinstance(bound, (Tensor, torch.Tensor)):
            raise UnsupportedError(
                f"{op}: tensor {name} bounds are not supported; pass a Python number, or "
                f"use tg.where (e.g. tg.where(x < {name}, {name}, x) for a tensor min)")
        if bound is not None and not isinstance(bound, numbers.Real):
            raise TypeError(f"{op}: {name} must be a real number or None, got "
                            f"{type(bound).__name__}")
    bounds = [b for b in (lo, hi) if b is not None]
    if not bounds:
        raise ValueError(f"{op}: At least one of 'min' or 'max' must not be None")
    dtype = x.dtype
    for bound in bounds:
        dtype = _with_number(dtype, bound)
    if dtype == torch.bool:
        raise DTypeError(f'{op}: "clamp" is not implemented for bool tensors with bool bounds')
    _check_dtype(op, dtype, f"x ({dtype_name(x.dtype)}) and its bounds")
    # torch returns all-NaN for a NaN bound without converting the other one, so a bound
    # beyond the dtype's range (70000 for fp16) is refused only when neither is NaN
    check = not any(not isinstance(b, numbers.Integral) and math.isnan(b) for b in bounds)
    lo = None if lo is None else _number_in(op, lo, dtype, check_float=check)
    hi = None if hi is None else _number_in(op, hi, dtype, check_float=check)
    return dtype, lo, hi


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Each element of x bounded to [min, max] (torch.clamp; either bound may be None). An
    integer x with a float bound computes in fp32; NaN in x or in a bound propagates; the
    gradient passes where min <= x <= max."""
    dtype, lo, hi = _clamp_args("clamp", x, min, max)
    return Clamp.apply(x if x.dtype == dtype else x.to(dtype), lo, hi)


clip = clamp


def clamp_(x: Tensor, min=None, max=None) -> Tensor:
    """In-place clamp, written through x's strides (not differentiable, as tritongrad's
    other in-place ops)."""
    dtype, lo, hi = _clamp_args("clamp_", x, min, max)
    if dtype != x.dtype:
        raise DTypeError(f"clamp_: result type {dtype_name(dtype)} can't be cast to the desired "
                         f"output type {dtype_name(x.dtype)}")
    x._check_inplace()
    sel.clamp(x._data, lo, hi, out=x._data)
    x._bump_version()
    return x
