"""Elementwise arithmetic with broadcasting and torch's dtype promotion.

Forward kernels read both operands through their (broadcast, stride-0)
strides; the backward of a broadcast operand sums the gradient over the
broadcast dims (``sum_to_shape``), since that operand fed every element there.
"""

from __future__ import annotations

import numbers

import torch

from ..autograd.function import Function
from ..kernels import elementwise as ew
from ..kernels._checks import INTEGER_DTYPES, DTypeError, ShapeError
from ..kernels.reduction import sum_to_shape
from ..tensor import Tensor, _as_tensor


def _wrap_to(grad: torch.Tensor, shape) -> Tensor:
    return Tensor._wrap(sum_to_shape(grad, tuple(shape)))


class Add(Function):
    """c = a + b: dc/da = dc/db = 1."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.shapes = (a.shape, b.shape)
        return Tensor._wrap(ew.binary("add", a._data, b._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        need_a, need_b = ctx.needs_input_grad
        return (_wrap_to(grad._data, ctx.shapes[0]) if need_a else None,
                _wrap_to(grad._data, ctx.shapes[1]) if need_b else None)


class Sub(Function):
    """c = a - b: dc/da = 1, dc/db = -1."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.shapes = (a.shape, b.shape)
        return Tensor._wrap(ew.binary("sub", a._data, b._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        need_a, need_b = ctx.needs_input_grad
        grad_b = None
        if need_b:
            grad_b = _wrap_to(ew.unary("neg", grad._data), ctx.shapes[1])
        return (_wrap_to(grad._data, ctx.shapes[0]) if need_a else None), grad_b


class Mul(Function):
    """c = a * b: dc/da = b, dc/db = a (one fused backward launch for both)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return Tensor._wrap(ew.binary("mul", a._data, b._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a, grad_b = ew.mul_bwd(grad._data, a._data, b._data, need_a, need_b)
        return (_wrap_to(grad_a, a.shape) if need_a else None,
                _wrap_to(grad_b, b.shape) if need_b else None)


class Div(Function):
    """c = a / b: dc/da = 1/b, dc/db = -a/b^2 (one fused backward launch)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return Tensor._wrap(ew.binary("div", a._data, b._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a, grad_b = ew.div_bwd(grad._data, a._data, b._data, need_a, need_b)
        return (_wrap_to(grad_a, a.shape) if need_a else None,
                _wrap_to(grad_b, b.shape) if need_b else None)


class ScalarOp(Function):
    """c = a op s (or s op a when ``reverse``) for a Python scalar s.

    Gradients: add: 1; sub: 1 (reversed: -1); mul: s; div: 1/s
    (reversed, c = s/a: -s/a^2 = s * d(a^-1)/da); pow: s * a^(s-1)
    (reversed, c = s^a: c * ln s)."""

    @staticmethod
    def forward(ctx, a: Tensor, op: str, scalar: float, reverse: bool) -> Tensor:
        ctx.op, ctx.scalar, ctx.reverse = op, scalar, reverse
        out = Tensor._wrap(ew.binary_scalar(op, a._data, scalar, reverse=reverse))
        if op == "pow" and reverse:
            ctx.save_for_backward(out)
        elif op == "pow" or (op == "div" and reverse):
            ctx.save_for_backward(a)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        op, s, reverse = ctx.op, ctx.scalar, ctx.reverse
        g = grad._data
        if op == "add":
            result = g
        elif op == "sub":
            result = ew.unary("neg", g) if reverse else g
        elif op == "mul":
            result = ew.binary_scalar("mul", g, s)
        elif op == "div" and not reverse:
            result = ew.binary_scalar("div", g, s)
        elif op == "div":
            (a,) = ctx.saved_tensors
            result = ew.binary_scalar("mul", ew.pow_scalar_bwd(g, a._data, -1.0), s)
        elif op == "pow" and not reverse:
            (a,) = ctx.saved_tensors
            result = ew.pow_scalar_bwd(g, a._data, s)
        else:  # s ** a
            (out,) = ctx.saved_tensors
            result = ew.rpow_scalar_bwd(g, out._data, s)
        return Tensor._wrap(result), None, None, None


class Neg(Function):
    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        return Tensor._wrap(ew.unary("neg", a._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(ew.unary("neg", grad._data))


class Exp(Function):
    """y = e^x: dy/dx = y (saved output, no recomputation)."""

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        out = Tensor._wrap(ew.unary("exp", a._data))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (out,) = ctx.saved_tensors
        return Tensor._wrap(ew.binary("mul", grad._data, out._data))


class Log(Function):
    """y = ln x: dy/dx = 1/x."""

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        ctx.save_for_backward(a)
        return Tensor._wrap(ew.unary("log", a._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        (a,) = ctx.saved_tensors
        return Tensor._wrap(ew.binary("div", grad._data, a._data))


class Sqrt(Function):
    """y = sqrt(x): dy/dx = 1 / (2 y)."""

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        out = Tensor._wrap(ew.unary("sqrt", a._data))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (out,) = ctx.saved_tensors
        return Tensor._wrap(ew.binary_scalar("mul", ew.binary("div", grad._data, out._data), 0.5))


class Abs(Function):
    """y = |x|: dy/dx = sgn(x), 0 at x == 0 (and at NaN), as torch."""

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        ctx.save_for_backward(a)
        return Tensor._wrap(ew.unary("abs", a._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        (a,) = ctx.saved_tensors
        return Tensor._wrap(ew.abs_bwd(grad._data, a._data))


class Maximum(Function):
    """c = maximum(a, b): dc/da = [a > b], dc/db = [a < b], 1/2 each on ties (torch's
    choice); both gradients from one launch, summed back over broadcast dims."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return Tensor._wrap(ew.binary("maximum", a._data, b._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _max_min_backward(ctx, grad, "maximum")


class Minimum(Function):
    """c = minimum(a, b): dc/da = [a < b], dc/db = [a > b], 1/2 each on ties."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return Tensor._wrap(ew.binary("minimum", a._data, b._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _max_min_backward(ctx, grad, "minimum")


def _max_min_backward(ctx, grad: Tensor, op: str):
    a, b = ctx.saved_tensors
    need_a, need_b = ctx.needs_input_grad
    grad_a, grad_b = ew.max_min_bwd(op, grad._data, a._data, b._data, need_a, need_b)
    return (_wrap_to(grad_a, a.shape) if need_a else None,
            _wrap_to(grad_b, b.shape) if need_b else None)


# --- dtype promotion and the user-facing functions -----------------------------------------


def _category(dtype: torch.dtype) -> int:
    """torch's promotion categories: bool < integer < float."""
    return 2 if dtype.is_floating_point else (0 if dtype == torch.bool else 1)


def _result_dtype(a: Tensor, b: Tensor) -> torch.dtype:
    """torch's rule: a 0-d tensor raises the dtype of a dimensioned one only when it is of a
    higher category (a 0-d int64 beside an fp16 tensor leaves fp16; beside bool, int64)."""
    if a.ndim == 0 and b.ndim > 0 and _category(a.dtype) <= _category(b.dtype):
        return b.dtype
    if b.ndim == 0 and a.ndim > 0 and _category(b.dtype) <= _category(a.dtype):
        return a.dtype
    return torch.promote_types(a.dtype, b.dtype)


def _promoted(op: str, a: Tensor, b: Tensor) -> tuple:
    """Both operands in torch's result dtype; true division of integers computes in fp32,
    as torch's (the default float dtype)."""
    dtype = _result_dtype(a, b)
    if not dtype.is_floating_point:
        if op == "div":
            dtype = torch.float32
        elif dtype not in INTEGER_DTYPES:
            raise DTypeError(f"{op}: arithmetic on {a.dtype} and {b.dtype} tensors (result "
                             f"{dtype}) is not supported; convert with .long() or .float()")
    return (a if a.dtype == dtype else a.to(dtype)), (b if b.dtype == dtype else b.to(dtype))


def _float_operand(a: Tensor) -> Tensor:
    return a if a.is_floating_point() else a.to(torch.float32)


def check_int_scalar(op: str, a: Tensor, scalar) -> None:
    """An integer scalar for an integer tensor reaches the kernel as an fp64 argument:
    exact up to 2^53, so a larger one is refused rather than rounded (2^53 + 1 -> 2^53)."""
    if (isinstance(scalar, numbers.Integral) and not a.is_floating_point()
            and not -2**53 <= int(scalar) <= 2**53):  # not abs(): shadowed below
        raise DTypeError(f"{op}: integer scalars beyond 2^53 are not supported with a "
                         f"{a.dtype} tensor (got {int(scalar)}); use a tensor operand")


def check_no_bool_subtraction(a, b) -> None:
    """torch refuses - with a bool operand (tensor or Python bool)."""
    if any(isinstance(v, bool) or (isinstance(v, Tensor) and v.dtype == torch.bool)
           for v in (a, b)):
        raise DTypeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                         "If you are trying to invert a mask, use the `~` or `logical_not()` "
                         "operator instead.")


def _scalar_operand(op: str, a: Tensor, scalar) -> Tensor:
    """a as the scalar op computes it: an integer tensor with an integer scalar stays
    integer for the ops that are exact on integers and for comparisons (a bool tensor
    becomes int64, as torch promotes it); everything else computes in a float dtype."""
    check_int_scalar(op, a, scalar)
    if isinstance(scalar, numbers.Integral) and op in ("add", "sub", "mul", "pow") + ew.COMPARISONS:
        if a.dtype in INTEGER_DTYPES:
            return a
        if a.dtype == torch.bool:
            return a.to(torch.int64)
    return _float_operand(a)


def _binary(op: str, a, b, function: type) -> Tensor:
    if isinstance(b, numbers.Number) and not isinstance(b, bool):
        return ScalarOp.apply(_scalar_operand(op, a, b), op, float(b), False)
    b = _as_tensor(b, a)
    if op in ("add", "mul") and _result_dtype(a, b) == torch.bool:
        # torch: + of bools is logical or, * logical and: exact in int64, then != 0
        return function.apply(a.to(torch.int64), b.to(torch.int64)).to(torch.bool)
    a, b = _promoted(op, a, b)
    return function.apply(a, b)


def add(a: Tensor, b) -> Tensor:
    return _binary("add", a, b, Add)


def sub(a: Tensor, b) -> Tensor:
    check_no_bool_subtraction(a, b)
    return _binary("sub", a, b, Sub)


def mul(a: Tensor, b) -> Tensor:
    return _binary("mul", a, b, Mul)


def div(a: Tensor, b) -> Tensor:
    return _binary("div", a, b, Div)


def rsub(a: Tensor, scalar) -> Tensor:
    check_no_bool_subtraction(a, scalar)
    if isinstance(scalar, numbers.Number):
        return ScalarOp.apply(_scalar_operand("sub", a, scalar), "sub", float(scalar), True)
    return sub(_as_tensor(scalar, a), a)


def rdiv(a: Tensor, scalar) -> Tensor:
    if isinstance(scalar, numbers.Number):
        return ScalarOp.apply(_float_operand(a), "div", float(scalar), True)
    return div(_as_tensor(scalar, a), a)


def pow(a: Tensor, exponent) -> Tensor:
    if not isinstance(exponent, numbers.Number):
        raise TypeError("tritongrad supports tensor ** python-number only "
                        f"(got an exponent of type {type(exponent).__name__})")
    return ScalarOp.apply(_scalar_operand("pow", a, exponent), "pow", float(exponent), False)


def rpow(a: Tensor, base) -> Tensor:
    if not isinstance(base, numbers.Number):
        raise TypeError(f"unsupported base of type {type(base).__name__} for ** with a Tensor")
    return ScalarOp.apply(_scalar_operand("pow", a, base), "pow", float(base), True)


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def exp(a: Tensor) -> Tensor:
    return Exp.apply(_float_operand(a))


def log(a: Tensor) -> Tensor:
    return Log.apply(_float_operand(a))


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(_float_operand(a))


def abs(a: Tensor) -> Tensor:
    """|a| (integers exactly, forward only; torch has no abs of bool)."""
    return Abs.apply(a)


def _max_min(op: str, a: Tensor, b: Tensor, function: type) -> Tensor:
    for name, value in (("input", a), ("other", b)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not "
                            f"{type(value).__name__}")
    if _result_dtype(a, b) == torch.bool:
        # of bools, maximum is logical or and minimum logical and: exact in int64
        return function.apply(a.to(torch.int64), b.to(torch.int64)).to(torch.bool)
    a, b = _promoted(op, a, b)
    return function.apply(a, b)


def maximum(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise maximum with broadcasting and torch's promotion; NaN propagates."""
    return _max_min("maximum", a, b, Maximum)


def minimum(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise minimum with broadcasting and torch's promotion; NaN propagates."""
    return _max_min("minimum", a, b, Minimum)


def inplace(target: Tensor, op: str, other, alpha: float = 1.0) -> Tensor:
    """``target op= other`` by a kernel writing through target's strides."""
    target._check_inplace(other)
    if op == "sub":
        check_no_bool_subtraction(target, other)
    if target.dtype == torch.bool and op in ("add", "mul") and (
            isinstance(other, bool) or getattr(other, "dtype", None) == torch.bool):
        # torch: bool += bool is logical or, *= logical and (alpha only scales a nonzero
        # value, which stays True): out of place as _binary computes it, then copied in
        from ..kernels.copy import copy_into

        result = _binary(op, target, other if alpha else False, Add if op == "add" else Mul)
        if result.shape != target.shape:
            raise ShapeError(f"{op}_: output with shape {list(target.shape)} doesn't match "
                             f"the broadcast shape {list(result.shape)}")
        copy_into(target._data, result._data)
        target._bump_version()
        return target
    if isinstance(other, numbers.Number) and not isinstance(other, bool):
        check_int_scalar(f"{op}_", target, other)
        if not target.is_floating_point() and not isinstance(other, numbers.Integral):
            raise DTypeError(f"{op}_: result type Float can't be cast to the desired output "
                             f"type {target.dtype}")
        value = float(other) * (alpha if op in ("add", "sub") else 1.0)
        ew.binary_scalar(op, target._data, value, out=target._data)
    else:
        other = _as_tensor(other, target)
        data = other._data
        if data.is_floating_point() and not target.is_floating_point():
            raise DTypeError(f"{op}_: result type {data.dtype} can't be cast to the desired "
                             f"output type {target.dtype}")
        if data.dtype != target.dtype:
            from ..kernels.copy import copy

            data = copy(data, target.dtype)
        ew.binary(op, target._data, data, out=target._data, alpha=alpha)
    target._bump_version()
    return target
