"""Unary math with torch's dtype rules: log1p, expm1, rsqrt, reciprocal, square, sign,
floor, ceil, round, trunc, sin, cos, log2, log10, and their in-place forms.

Forward and backward run on ``kernels/unary_math.py`` (which derives each VJP), except
square, which is ``x ** 2`` as in torch (its backward is pow's, 2 x grad). dtypes as
torch: the float ops give float32 for integer and bool inputs (converted inside the
kernel), sign/floor/ceil/round/trunc keep an integer dtype (sign of bool is bool; the
others refuse bool), square keeps integers and makes bool int64. sign, floor, ceil,
round and trunc are piecewise constant: their gradient is zeros, as torch's.
"""

from __future__ import annotations

import torch

from ..autograd.function import Function
from ..kernels._checks import DTypeError, UnsupportedError, dtype_name
from ..kernels.unary_math import (
    FLOAT_MATH_OPS,
    SAVES_OUTPUT,
    result_dtype,
    unary_math,
    unary_math_bwd,
)
from ..tensor import Tensor
from . import elementwise as _elementwise


class UnaryMath(Function):
    """y = op(x) for op in kernels.unary_math.MATH_OPS. Backward: grad * op'(x) from the
    saved x or y (SAVES_OUTPUT) for the float ops; zeros for the piecewise-constant ones."""

    @staticmethod
    def forward(ctx, x: Tensor, op: str) -> Tensor:
        ctx.op = op
        out = Tensor._wrap(unary_math(op, x._data))
        if op in FLOAT_MATH_OPS:
            ctx.save_for_backward(out if SAVES_OUTPUT[op] else x)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None
        if ctx.op not in FLOAT_MATH_OPS:
            # d/dx of a step function is 0 wherever it exists; torch's zeros_like(grad)
            zeros = torch.zeros(grad.shape, dtype=grad.dtype, device=grad.device)
            return Tensor._wrap(zeros), None
        (saved,) = ctx.saved_tensors
        return Tensor._wrap(unary_math_bwd(ctx.op, grad._data, saved._data)), None


def log1p(x: Tensor) -> Tensor:
    """ln(1 + x), accurate for tiny |x|."""
    return UnaryMath.apply(x, "log1p")


def expm1(x: Tensor) -> Tensor:
    """e^x - 1, accurate for tiny |x|."""
    return UnaryMath.apply(x, "expm1")


def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x)."""
    return UnaryMath.apply(x, "rsqrt")


def reciprocal(x: Tensor) -> Tensor:
    """1 / x."""
    return UnaryMath.apply(x, "reciprocal")


def sin(x: Tensor) -> Tensor:
    """sin(x), x in radians."""
    return UnaryMath.apply(x, "sin")


def cos(x: Tensor) -> Tensor:
    """cos(x), x in radians."""
    return UnaryMath.apply(x, "cos")


def log2(x: Tensor) -> Tensor:
    """The base-2 logarithm."""
    return UnaryMath.apply(x, "log2")


def log10(x: Tensor) -> Tensor:
    """The base-10 logarithm."""
    return UnaryMath.apply(x, "log10")


def square(x: Tensor) -> Tensor:
    """x * x, as torch.square: x ** 2 (integers exact and wrapping, bool becomes int64;
    gradient 2 x grad)."""
    return _elementwise.pow(x, 2)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of x ((x > 0) - (x < 0): 0 for -0.0 and NaN, as torch);
    integers keep their dtype and bool stays bool. Gradient 0."""
    if x.dtype == torch.bool:
        return x.clone()  # torch: sign of a bool is the bool itself
    return UnaryMath.apply(x, "sign")


def floor(x: Tensor) -> Tensor:
    """The largest integer <= x (integer tensors: a copy). Gradient 0."""
    return UnaryMath.apply(x, "floor")


def ceil(x: Tensor) -> Tensor:
    """The smallest integer >= x (integer tensors: a copy). Gradient 0."""
    return UnaryMath.apply(x, "ceil")


def trunc(x: Tensor) -> Tensor:
    """x rounded toward zero (integer tensors: a copy). Gradient 0."""
    return UnaryMath.apply(x, "trunc")


def _check_decimals(name: str, decimals: int) -> None:
    if decimals != 0:
        raise UnsupportedError(f"{name}: decimals={decimals!r} is not supported (tritongrad "
                               "rounds to integers only, decimals=0)")


def round(x: Tensor, decimals: int = 0) -> Tensor:
    """x rounded to the nearest integer, halves to even (torch.round: 0.5 -> 0, 1.5 -> 2,
    -0.5 -> -0.0); integer tensors: a copy. Gradient 0. Only ``decimals=0``."""
    _check_decimals("round", decimals)
    return UnaryMath.apply(x, "round")


def unary_inplace(x: Tensor, op: str, decimals: int = 0) -> Tensor:
    """``x.op_()``: op(x) written through x's strides. As torch, the result must keep x's
    dtype (``int_tensor.sin_()`` is refused); not differentiable, as tritongrad's other
    in-place ops."""
    name = op + "_"
    _check_decimals(name, decimals)
    if op == "sign" and x.dtype == torch.bool:
        x._check_inplace()
        return x  # the sign of a bool is itself
    dtype = result_dtype(op, x.dtype, name)
    if dtype != x.dtype:
        raise DTypeError(f"{name}: result type {dtype_name(dtype)} can't be cast to the "
                         f"desired output type {dtype_name(x.dtype)}")
    x._check_inplace()
    unary_math(op, x._data, out=x._data)
    x._bump_version()
    return x


def square_(x: Tensor) -> Tensor:
    """``x.square_()``: x ** 2 in place (an integer x wraps; a bool x is refused, as torch)."""
    if x.dtype == torch.bool:
        raise DTypeError("square_: result type int64 can't be cast to the desired output "
                         "type bool")
    return _elementwise.inplace(x, "pow", 2)
