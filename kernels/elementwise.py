"""Element-wise arithmetic: tensor-tensor, tensor-scalar, unary, and the fused
backward kernels of mul, div, maximum/minimum, abs and pow-by-a-scalar.

Three kernels serve every op (the op is a constexpr string, so each op compiles
to straight-line code): ``binary_kernel`` (two strided inputs), ``unary_kernel``
(one strided input and a scalar) and ``binary_bwd_kernel`` (both operands' gradients
in one launch). Inputs are read through their strides, broadcast dims with stride 0, so
no view is copied first. Math runs in fp32 (fp64 for fp64 tensors), and the result
is rounded once into the output's dtype.

Scalars are kernel arguments typed fp64 (the ``tl.float64`` annotation; triton would
otherwise type a Python float as fp32), so an fp64 tensor sees the scalar's exact
value, and other tensors see it rounded to fp32 as torch's opmath does. The annotation
must be ``tl.float64``, not the string ``"fp64"``: under ``from __future__ import
annotations`` the string becomes ``"'fp64'"``, which triton does not recognise (it then
types the argument fp32 on a GPU; the interpreter hides this).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    DTypeError,
    LayoutError,
    ShapeError,
    check_same_device,
    check_same_dtype,
    check_tensor,
    check_writable,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .copy import MAX_DIMS, flat_layout, offsets_of

BLOCK = 1024
BINARY_OPS = ("add", "sub", "mul", "div", "maximum", "minimum")
INTEGER_OPS = ("add", "sub", "mul", "rsub", "neg", "abs", "pow", "rpow",
               "maximum", "minimum")  # exact on integers
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")  # -> bool tensors
COMPARABLE_DTYPES = FLOAT_DTYPES + INTEGER_DTYPES + (torch.bool,)
SCALAR_OPS = ("add", "sub", "mul", "div", "pow")
UNARY_OPS = ("neg", "exp", "log", "sqrt", "abs")


@triton.jit
def upcast(x):
    """fp64 and integers stay as they are; every other float becomes fp32 (bf16 arithmetic
    is wrong under the interpreter, and fp32 is what the GPU should compute in)."""
    if x.dtype == tl.float64 or x.dtype.is_int():
        out = x
    else:
        out = x.to(tl.float32)
    return out


@triton.jit
def scalar_like(value, like):
    """The host scalar ``value`` (an fp64 argument) in ``like``'s dtype. tl.full, not
    zeros + value: 0.0 + -0.0 is +0.0, and torch keeps a -0.0 operand's sign."""
    return tl.full([], value, tl.float64).to(like.dtype)


@triton.jit
def scalar_in(value, dtype: tl.constexpr, BLOCK: tl.constexpr):
    """A block of the host scalar ``value`` (an fp64 argument) rounded into ``dtype``, as
    torch casts a Python number to a tensor's dtype (fp64 -> fp32 -> fp16/bf16, see
    cast_to), then upcast like a loaded value."""
    # tl.full, not zeros + value: 0.0 + -0.0 is +0.0, and torch keeps a -0.0 number's sign
    filled = tl.full([BLOCK], value, tl.float64)
    return upcast(cast_to(filled, dtype))


@triton.jit
def div_rn(a, b):
    """a / b correctly rounded, like torch (tl.div_rn takes only fp32; fp64 division
    is always correctly rounded)."""
    if a.dtype == tl.float64:
        out = a / b
    else:
        out = tl.div_rn(a, b)
    return out


@triton.jit
def sqrt_rn(x):
    """sqrt(x) correctly rounded, like torch (tl.sqrt_rn takes only fp32)."""
    if x.dtype == tl.float64:
        out = tl.sqrt(x)
    else:
        out = tl.sqrt_rn(x)
    return out


@triton.jit
def pow_fp(base, exponent, SCALAR_EXPONENT: tl.constexpr):
    """base ** exponent elementwise (tensors of one shape), with C/torch semantics.

    General case: |base| ** e = exp2(e * log2|base|), times (-1) ** e for a
    negative base (-0.0 included) and an odd integer e. A finite negative base with
    a non-integer e keeps its sign inside log2, which gives NaN, as pow does.
    Exact forms for the exponents torch special-cases (2, 3, 1, -1, -2) match it bit
    for bit, and pow(x, 0) = pow(1, y) = pow(-1, +-inf) = 1, NaN too. torch computes
    x ** 0.5 and x ** -0.5 as sqrt and rsqrt only for a scalar exponent
    (SCALAR_EXPONENT), which differs from pow at -0.0 and -inf."""
    inf = float("inf")
    recip = div_rn(tl.zeros_like(base) + 1.0, base)
    is_negative = (base < 0) | ((base == 0) & (recip < 0))
    is_int = tl.floor(exponent) == exponent
    half = exponent * 0.5
    is_odd = is_int & (tl.floor(half) != half)
    log_arg = tl.where(is_int | (base == -inf), tl.abs(base), base)
    magnitude = tl.exp2(exponent * tl.log2(log_arg))
    result = tl.where(is_negative & is_odd, -magnitude, magnitude)
    result = tl.where(exponent == 2.0, base * base, result)
    result = tl.where(exponent == 3.0, base * base * base, result)
    result = tl.where(exponent == 1.0, base, result)
    if SCALAR_EXPONENT:
        root = sqrt_rn(base)
        result = tl.where(exponent == 0.5, root, result)
        result = tl.where(exponent == -0.5, div_rn(tl.zeros_like(base) + 1.0, root), result)
    result = tl.where(exponent == -1.0, recip, result)
    result = tl.where(exponent == -2.0, div_rn(tl.zeros_like(base) + 1.0, base * base), result)
    is_one = (exponent == 0.0) | (base == 1.0) | ((base == -1.0) & (tl.abs(exponent) == inf))
    return tl.where(is_one, 1.0, result)


@triton.jit
def compare(a, b, OP: tl.constexpr):
    """a OP b for OP in COMPARISONS (IEEE: every comparison with NaN is False but 'ne')."""
    if OP == "eq":
        result = a == b
    elif OP == "ne":
        result = a != b
    elif OP == "lt":
        result = a < b
    elif OP == "le":
        result = a <= b
    elif OP == "gt":
        result = a > b
    else:
        result = a >= b
    return result


@triton.jit
def int_pow(base, n):
    """base ** n elementwise for integer tensors of one shape and dtype, by squaring:
    base ** n = prod of base ** (2^k) over the set bits k of n. Every product is in the
    integer type and wraps on overflow. A negative n gives what torch's integer pow gives:
    1 for base 1, +-1 for base -1 (by n's parity), else 0."""
    result = tl.zeros_like(base) + 1
    square = base
    e = tl.where(n < 0, 0, n)
    while tl.max(e, axis=0) > 0:
        result = tl.where((e % 2) == 1, result * square, result)
        square = square * square
        e = e // 2
    if base.dtype.is_int_signed():
        odd = (n % 2) != 0
        negative = tl.where(base == 1, 1, tl.where(base == -1, tl.where(odd, -1, 1), 0))
        result = tl.where(n < 0, negative.to(result.dtype), result)
    return result


@triton.jit
def binary_kernel(
    out_ptr, a_ptr, b_ptr, alpha: tl.float64,
    numel, size1, size2, size3, size4, size5,
    a_s0, a_s1, a_s2, a_s3, a_s4, a_s5,
    b_s0, b_s1, b_s2, b_s3, b_s4, b_s5,
    out_s0, out_s1, out_s2, out_s3, out_s4, out_s5,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[i] = a[i] OP b[i] over a (merged, padded) 6-D broadcast shape.

    out_ptr, a_ptr, b_ptr: tensors of that shape read/written through their strides
        (a_s*, b_s*, out_s*; 0 on broadcast dims); out may alias a or b exactly.
    alpha: "add"/"sub" compute a +- alpha * b; for "pow_bwd" the exponent e; for
        "rpow_bwd" ln(s) of the scalar base s.
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    OP: "add", "sub", "mul", "div", "maximum", "minimum", "pow_bwd" (a = grad, b = x,
        see pow_scalar_bwd), "rpow_bwd" (a = grad, b = s ** x, see rpow_scalar_bwd) or
        "abs_bwd" (a = grad, b = x, see abs_bwd).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    a_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       a_s0, a_s1, a_s2, a_s3, a_s4, a_s5, FLAT)
    b_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       b_s0, b_s1, b_s2, b_s3, b_s4, b_s5, FLAT)
    out_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         out_s0, out_s1, out_s2, out_s3, out_s4, out_s5, FLAT)
    a = upcast(tl.load(a_ptr + a_off, mask=mask, other=0.0))
    b = upcast(tl.load(b_ptr + b_off, mask=mask, other=1.0))
    scalar = scalar_like(alpha, a)
    if OP == "add":
        result = a + scalar * b
    elif OP == "sub":
        result = a - scalar * b
    elif OP == "mul":
        result = a * b
    elif OP == "div":
        result = div_rn(a, b)
    elif OP == "maximum":
        # as torch: NaN in either operand gives NaN (tl.maximum would drop it); a tie
        # keeps a (maximum(-0.0, 0.0) is -0.0)
        result = tl.where((a < b) | (b != b), b, a)
    elif OP == "minimum":
        result = tl.where((b < a) | (b != b), b, a)
    elif OP == "eq" or OP == "ne" or OP == "lt" or OP == "le" or OP == "gt" or OP == "ge":
        result = compare(a, b, OP)
    elif OP == "abs_bwd":
        # |x| = x * sgn(x), so d|x|/dx = sgn(x) (x != 0); torch takes sgn(0) = 0 and
        # sgn(NaN) = 0 too: grad_x = grad * sgn(x), a product so a NaN/inf grad stays
        # NaN (inf * 0) as in torch.
        sgn = (b > 0).to(a.dtype) - (b < 0).to(a.dtype)
        result = a * sgn
    elif OP == "rpow_bwd":
        # d/dx s**x = s**x * ln s, so grad_x = grad * (out * ln s), in torch's order. For
        # s = 0, ln s = -inf, and torch zeroes the gradient where x >= 0: there out = 0**x
        # is 0 or 1 (0 * -inf would be NaN). x < 0 gives out = inf, so -inf; NaN stays NaN.
        zero_base_flat = ((tl.zeros_like(b) + scalar) == float("-inf")) & (b <= 1.0)
        result = a * tl.where(zero_base_flat, 0.0, b * scalar)
    else:
        # d/dx x**e = e * x**(e-1), so grad_x = grad * e * x**(e-1). torch masks e == 0
        # to a zero gradient (where x**-1 would make 0 * inf = NaN at x = 0); e = 0.5
        # and e = -1 give +-inf at x = 0, as in torch.
        exponent_m1 = tl.zeros_like(b) + (scalar - 1.0)
        result = tl.where(scalar == 0.0, 0.0, a * scalar * pow_fp(b, exponent_m1, True))
    tl.store(out_ptr + out_off, cast_to(result, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def unary_kernel(
    out_ptr, x_ptr, scalar: tl.float64,
    numel, size1, size2, size3, size4, size5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    out_s0, out_s1, out_s2, out_s3, out_s4, out_s5,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[i] = OP(x[i]) or x[i] OP scalar, over a (merged, padded) 6-D shape.

    out_ptr, x_ptr: same shape, any strides (x_s*, out_s*); out may alias x exactly.
    scalar: the host scalar s of the scalar ops (unused by the unary ones).
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    OP: "neg", "exp", "log", "sqrt", "abs", or x-op-s "add", "sub", "mul", "div",
        "pow", or s-op-x "rsub", "rdiv", "rpow"; for integer x, "ipow" and "ripow" are
        the exact integer powers (see int_pow).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       x_s0, x_s1, x_s2, x_s3, x_s4, x_s5, FLAT)
    out_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         out_s0, out_s1, out_s2, out_s3, out_s4, out_s5, FLAT)
    x = upcast(tl.load(x_ptr + x_off, mask=mask, other=1.0))
    s = scalar_like(scalar, x)
    # s as a block for the helpers; tl.full keeps a -0.0 scalar's sign (zeros + s would not:
    # x / -0.0 must be -inf for x > 0, as torch)
    s_block = tl.full(x.shape, s, x.dtype)
    if OP == "neg":
        result = -x
    elif OP == "exp":
        result = tl.exp(x)
    elif OP == "log":
        result = tl.log(x)
    elif OP == "sqrt":
        result = sqrt_rn(x)
    elif OP == "abs":
        result = tl.abs(x)
    elif OP == "add":
        result = x + s
    elif OP == "sub":
        result = x - s
    elif OP == "rsub":
        result = s - x
    elif OP == "mul":
        result = x * s
    elif OP == "div":
        result = div_rn(x, s_block)
    elif OP == "rdiv":
        result = div_rn(s_block, x)
    elif OP == "pow":
        result = pow_fp(x, s_block, True)
    elif OP == "eq" or OP == "ne" or OP == "lt" or OP == "le" or OP == "gt" or OP == "ge":
        # torch compares against the scalar rounded to x's own dtype (fp16 0.1 == 0.1)
        result = compare(x, scalar_in(scalar, x_ptr.dtype.element_ty, BLOCK), OP)
    elif OP == "ipow":  # integer x ** integer s
        result = int_pow(x, s_block)
    elif OP == "ripow":  # integer s ** integer x
        result = int_pow(s_block, x)
    else:  # "rpow"
        result = pow_fp(s_block, x, False)
    tl.store(out_ptr + out_off, cast_to(result, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def binary_bwd_kernel(
    grad_a_ptr, grad_b_ptr, grad_ptr, a_ptr, b_ptr,
    numel, size1, size2, size3, size4, size5,
    g_s0, g_s1, g_s2, g_s3, g_s4, g_s5,
    a_s0, a_s1, a_s2, a_s3, a_s4, a_s5,
    b_s0, b_s1, b_s2, b_s3, b_s4, b_s5,
    OP: tl.constexpr, NEED_A: tl.constexpr, NEED_B: tl.constexpr,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Both input gradients of out = a OP b, over the broadcast shape.

    grad_a_ptr, grad_b_ptr: contiguous outputs of the broadcast shape (written only
        when NEED_A / NEED_B); the caller sums them back to a's and b's shapes.
    grad_ptr: upstream gradient of the broadcast shape, strides g_s*.
    a_ptr, b_ptr: the forward inputs, expanded to the broadcast shape (strides a_s*, b_s*).
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    OP: "mul", "div", "maximum" or "minimum".
    """
    # mul: out = a * b      -> d out/da = b,    d out/db = a
    #      grad_a = grad * b, grad_b = grad * a
    # div: out = a * b**-1  -> d out/da = 1/b,  d out/db = -a * b**-2
    #      grad_a = grad / b, grad_b = -grad * a / b**2 = -(grad / b) * a / b
    # maximum: out = a where a > b, b where a < b, so d out/da = [a > b], d out/db = [a < b].
    #      At a tie torch splits the subgradient evenly: d out/da = d out/db = 1/2. With NaN
    #      in either operand no comparison holds, and torch's formula
    #        grad_a = where(a == b, grad / 2, grad).masked_fill(a < b, 0)
    #        grad_b = where(a == b, grad / 2, grad).masked_fill(a > b, 0)
    #      passes the whole grad to both. minimum is the same with < and > swapped. Computed
    #      as grad * 0.5 and where(), never grad * 0, so a NaN grad only reaches unmasked slots.
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    g_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       g_s0, g_s1, g_s2, g_s3, g_s4, g_s5, FLAT)
    grad = upcast(tl.load(grad_ptr + g_off, mask=mask, other=0.0))
    b_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       b_s0, b_s1, b_s2, b_s3, b_s4, b_s5, FLAT)
    b = upcast(tl.load(b_ptr + b_off, mask=mask, other=1.0))
    if OP == "mul" or OP == "div":
        if OP == "mul":
            grad_for_a = grad * b
        else:
            grad_for_a = div_rn(grad, b)  # grad / b, also the first factor of grad_b
        if NEED_A:
            tl.store(grad_a_ptr + linear, cast_to(grad_for_a, grad_a_ptr.dtype.element_ty),
                     mask=mask)
        if NEED_B:  # a is read only when its partner's gradient needs it
            a_off = offsets_of(linear, size1, size2, size3, size4, size5,
                               a_s0, a_s1, a_s2, a_s3, a_s4, a_s5, FLAT)
            a = upcast(tl.load(a_ptr + a_off, mask=mask, other=0.0))
            if OP == "mul":
                grad_b = grad * a
            else:
                grad_b = -div_rn(grad_for_a * a, b)
            tl.store(grad_b_ptr + linear, cast_to(grad_b, grad_b_ptr.dtype.element_ty),
                     mask=mask)
    else:
        a_off = offsets_of(linear, size1, size2, size3, size4, size5,
                           a_s0, a_s1, a_s2, a_s3, a_s4, a_s5, FLAT)
        a = upcast(tl.load(a_ptr + a_off, mask=mask, other=1.0))
        shared = tl.where(a == b, grad * 0.5, grad)
        if OP == "maximum":
            a_loses = a < b
            b_loses = a > b
        else:
            a_loses = a > b
            b_loses = a < b
        if NEED_A:
            tl.store(grad_a_ptr + linear,
                     cast_to(tl.where(a_loses, 0.0, shared), grad_a_ptr.dtype.element_ty),
                     mask=mask)
        if NEED_B:
            tl.store(grad_b_ptr + linear,
                     cast_to(tl.where(b_loses, 0.0, shared), grad_b_ptr.dtype.element_ty),
                     mask=mask)


# ----------------------------------------------------------------------------- launchers


def _broadcast(op: str, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a and b expanded (stride 0, metadata only) to their broadcast shape."""
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ShapeError(
            f"{op}: The size of tensor a {tuple(a.shape)} must match the size of tensor b "
            f"{tuple(b.shape)} where neither is 1: the shapes cannot be broadcast together"
        ) from None
    return a.expand(shape), b.expand(shape)


def _memory_span(t: torch.Tensor) -> tuple[int, int]:
    """(first, last) byte addresses that t's elements occupy."""
    low = high = 0
    for size, stride in zip(t.shape, t.stride()):
        if stride < 0:
            low += stride * (size - 1)
        else:
            high += stride * (size - 1)
    return t.data_ptr() + low * t.element_size(), t.data_ptr() + (high + 1) * t.element_size() - 1


def _check_out(op: str, out: torch.Tensor, *inputs: torch.Tensor,
               dtypes: tuple = FLOAT_DTYPES) -> None:
    """out has the result's shape (the inputs come expanded to it), can be written without
    self-collision, and overlaps no input except one it aliases exactly (same address
    and strides: an in-place op)."""
    shape = inputs[0].shape
    check_tensor(op, "out", out, dtypes)
    check_same_device(op, out=out, input=inputs[0])
    if tuple(out.shape) != tuple(shape):
        raise ShapeError(
            f"{op}: output with shape {tuple(out.shape)} doesn't match the broadcast shape "
            f"{tuple(shape)}"
        )
    check_writable(op, "out", out)
    if out.numel() == 0:
        return
    out_lo, out_hi = _memory_span(out)
    for t in inputs:
        lo, hi = _memory_span(t)
        same_view = t.data_ptr() == out.data_ptr() and all(
            st == so for st, so, size in zip(t.stride(), out.stride(), shape) if size > 1
        )
        if lo <= out_hi and out_lo <= hi and not same_view:
            raise LayoutError(
                f"{op}: unsupported operation: the output (shape {tuple(out.shape)}, strides "
                f"{tuple(out.stride())}) partially overlaps an input (strides "
                f"{tuple(t.stride())}); some elements would be read after being written. "
                "Call .clone() on the input first."
            )


def _layout(shape, *tensors: torch.Tensor) -> tuple[list, list, bool]:
    """(sizes, [strides per tensor], FLAT) for tensors of one shape."""
    return flat_layout(shape, *(t.stride() for t in tensors))


def binary(
    op: str,
    a: torch.Tensor,
    b: torch.Tensor,
    out: torch.Tensor | None = None,
    alpha: float = 1.0,
) -> torch.Tensor:
    """a OP b for OP in add, sub, mul, div, maximum, minimum (add/sub: a +- alpha * b),
    broadcasting a
    against b; into a new contiguous tensor, or into ``out`` (any non-overlapping
    view of the broadcast shape, possibly ``a`` itself; a float dtype other than a's
    gets the result rounded into it) when given."""
    if op not in BINARY_OPS:
        raise ValueError(f"binary: op must be one of {BINARY_OPS}, got {op!r}")
    dtypes = _dtypes_for(op)
    check_tensor(op, "a", a, dtypes)
    check_tensor(op, "b", b, dtypes)
    check_same_device(op, a=a, b=b)
    check_same_dtype(op, a=a, b=b)
    if not a.is_floating_point() and not float(alpha).is_integer():
        raise DTypeError(f"{op}: alpha must be an integer for {a.dtype} tensors, got {alpha!r}")
    a_full, b_full = _broadcast(op, a, b)
    if out is None:
        out = torch.empty(a_full.shape, dtype=a.dtype, device=a.device)
    else:
        _check_out(op, out, a_full, b_full, dtypes=dtypes)
    _binary_launch(op, a, b, a_full, b_full, out, alpha)
    return out


def _binary_launch(op: str, a: torch.Tensor, b: torch.Tensor, a_full: torch.Tensor,
                   b_full: torch.Tensor, out: torch.Tensor, alpha: float = 1.0) -> None:
    numel = out.numel()
    if numel == 0:
        return
    in_bytes = a.numel() * a.element_size() + b.numel() * b.element_size()
    sizes, (a_st, b_st, out_st), flat = _layout(out.shape, a_full, b_full, out)
    launch(
        binary_kernel, (cdiv(numel, BLOCK),), out, a_full, b_full, float(alpha), numel,
        *sizes[1:], *a_st, *b_st, *out_st, OP=op, FLAT=flat, BLOCK=BLOCK,
        flops=numel * (2 if op in ("add", "sub") and alpha != 1 else 1),
        bytes_moved=in_bytes + numel * out.element_size(),
    )


def comparison(op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a OP b for OP in eq, ne, lt, le, gt, ge, broadcasting a against b (one dtype):
    a new bool tensor."""
    if op not in COMPARISONS:
        raise ValueError(f"comparison: op must be one of {COMPARISONS}, got {op!r}")
    check_tensor(op, "a", a, COMPARABLE_DTYPES)
    check_tensor(op, "b", b, COMPARABLE_DTYPES)
    check_same_device(op, a=a, b=b)
    check_same_dtype(op, a=a, b=b)
    a_full, b_full = _broadcast(op, a, b)
    out = torch.empty(a_full.shape, dtype=torch.bool, device=a.device)
    _binary_launch(op, a, b, a_full, b_full, out)
    return out


def comparison_scalar(op: str, a: torch.Tensor, scalar: float) -> torch.Tensor:
    """a OP scalar for OP in eq, ne, lt, le, gt, ge: a new bool tensor. The scalar is
    rounded to a's float dtype as torch does (an integer or bool ``a`` takes integers,
    0 and 1 for bool)."""
    if op not in COMPARISONS:
        raise ValueError(f"comparison: op must be one of {COMPARISONS}, got {op!r}")
    if a.dtype == torch.bool and scalar not in (0.0, 1.0):
        raise DTypeError(f"{op}: a bool tensor compares with 0 or 1 only, got {scalar!r}")
    return _unary_launch(op, a, scalar, None, 1, out_dtype=torch.bool)


def _wrapped(value: int, dtype: torch.dtype) -> float:
    """``value`` cast to an integer dtype as torch casts a Python int scalar: modulo 2^bits
    (uint8: 300 -> 44, -1 -> 255). Done here because a kernel's float -> int conversion of an
    out-of-range value is undefined on a GPU."""
    info = torch.iinfo(dtype)
    return float((value - info.min) % 2**info.bits + info.min)


def _dtypes_for(op: str) -> tuple:
    if op in COMPARISONS:
        return COMPARABLE_DTYPES
    return FLOAT_DTYPES + INTEGER_DTYPES if op in INTEGER_OPS else FLOAT_DTYPES


def _unary_launch(op: str, x: torch.Tensor, scalar: float, out: torch.Tensor | None,
                  flops_per_element: int, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    dtypes = _dtypes_for(op)
    check_tensor(op, "x", x, dtypes)
    if not x.is_floating_point():
        if not (float(scalar).is_integer() and abs(scalar) <= 2**53):
            raise DTypeError(f"{op}: an integer tensor ({x.dtype}) takes integer scalars up to "
                             f"2^53 exactly; got {scalar!r}")
        if op != "pow" and x.dtype != torch.bool:
            scalar = _wrapped(int(scalar), x.dtype)
        if op == "rpow":
            op = "ripow"
        elif op == "pow":
            if scalar < 0:
                raise ValueError(f"{op}: Integers to negative integer powers are not allowed "
                                 f"(a {x.dtype} tensor ** {scalar:g})")
            op = "ipow"
    if out is None:
        out = torch.empty(x.shape, dtype=out_dtype or x.dtype, device=x.device)
    else:
        _check_out(op, out, x, dtypes=dtypes)
    numel = out.numel()
    if numel == 0:
        return out
    sizes, (x_st, out_st), flat = _layout(out.shape, x, out)
    launch(
        unary_kernel, (cdiv(numel, BLOCK),), out, x, float(scalar), numel, *sizes[1:],
        *x_st, *out_st, OP=op, FLAT=flat, BLOCK=BLOCK, flops=numel * flops_per_element,
        bytes_moved=numel * (x.element_size() + out.element_size()),
    )
    return out


def binary_scalar(
    op: str,
    a: torch.Tensor,
    scalar: float,
    reverse: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """a OP scalar (or scalar OP a when ``reverse``) for OP in add, sub, mul, div, pow;
    into a new contiguous tensor or into ``out`` (which may be ``a``)."""
    if op not in SCALAR_OPS:
        raise ValueError(f"binary_scalar: op must be one of {SCALAR_OPS}, got {op!r}")
    kernel_op = op
    if reverse and op in ("sub", "div", "pow"):
        kernel_op = "r" + op
    return _unary_launch(kernel_op, a, scalar, out, 10 if op == "pow" else 1)


def unary(op: str, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """OP(x) for OP in neg, exp, log, sqrt, abs; into a new tensor or ``out``."""
    if op not in UNARY_OPS:
        raise ValueError(f"unary: op must be one of {UNARY_OPS}, got {op!r}")
    return _unary_launch(op, x, 0.0, out, 1)


def _scalar_pow_bwd(name: str, op: str, grad: torch.Tensor, saved: torch.Tensor,
                    saved_name: str, alpha: float, flops_per_element: int) -> torch.Tensor:
    check_tensor(name, "grad", grad, FLOAT_DTYPES)
    check_tensor(name, saved_name, saved, FLOAT_DTYPES)
    check_same_device(name, grad=grad, **{saved_name: saved})
    check_same_dtype(name, grad=grad, **{saved_name: saved})
    if tuple(grad.shape) != tuple(saved.shape):
        raise ShapeError(f"{name}: grad shape {tuple(grad.shape)} != {saved_name} shape "
                         f"{tuple(saved.shape)}")
    out = torch.empty(saved.shape, dtype=saved.dtype, device=saved.device)
    numel = out.numel()
    if numel == 0:
        return out
    sizes, (g_st, s_st, out_st), flat = _layout(out.shape, grad, saved, out)
    launch(
        binary_kernel, (cdiv(numel, BLOCK),), out, grad, saved, float(alpha), numel,
        *sizes[1:], *g_st, *s_st, *out_st, OP=op, FLAT=flat, BLOCK=BLOCK,
        flops=numel * flops_per_element, bytes_moved=numel * 3 * saved.element_size(),
    )
    return out


def pow_scalar_bwd(grad: torch.Tensor, x: torch.Tensor, exponent: float) -> torch.Tensor:
    """grad_x = grad * e * x ** (e - 1) for out = x ** e (0 where e == 0, as torch)."""
    return _scalar_pow_bwd("pow_backward", "pow_bwd", grad, x, "x", exponent, 12)


def rpow_scalar_bwd(grad: torch.Tensor, out: torch.Tensor, base: float) -> torch.Tensor:
    """grad_x = grad * (out * ln(base)) for out = base ** x, from the saved ``out``; as
    torch: 0 where x >= 0 when base == 0, NaN for a negative base."""
    if base > 0:
        log_base = math.log(base)
    elif base == 0:
        log_base = float("-inf")
    else:
        log_base = float("nan")
    return _scalar_pow_bwd("pow_backward", "rpow_bwd", grad, out, "out", log_base, 3)


def _mul_div_bwd(op: str, grad: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 need_a: bool, need_b: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Both gradients of a two-operand op (mul, div, maximum, minimum) in one launch of
    binary_bwd_kernel."""
    name = f"{op}_backward"
    for arg, t in (("grad", grad), ("a", a), ("b", b)):
        check_tensor(name, arg, t, FLOAT_DTYPES)
    check_same_device(name, grad=grad, a=a, b=b)
    check_same_dtype(name, grad=grad, a=a, b=b)
    a_full, b_full = _broadcast(name, a, b)
    if tuple(grad.shape) != tuple(a_full.shape):
        raise ShapeError(f"{name}: grad shape {tuple(grad.shape)} != broadcast shape "
                         f"{tuple(a_full.shape)} of a {tuple(a.shape)} and b {tuple(b.shape)}")
    grad_a = torch.empty(grad.shape, dtype=grad.dtype, device=grad.device) if need_a else None
    grad_b = torch.empty(grad.shape, dtype=grad.dtype, device=grad.device) if need_b else None
    numel = grad.numel()
    if numel == 0 or not (need_a or need_b):
        return grad_a, grad_b
    sizes, (g_st, a_st, b_st), flat = _layout(grad.shape, grad, a_full, b_full)
    element = grad.element_size()
    n_out = int(need_a) + int(need_b)
    launch(
        binary_bwd_kernel, (cdiv(numel, BLOCK),),
        grad_a if need_a else grad_b, grad_b if need_b else grad_a, grad, a_full, b_full,
        numel, *sizes[1:], *g_st, *a_st, *b_st,
        OP=op, NEED_A=need_a, NEED_B=need_b, FLAT=flat, BLOCK=BLOCK,
        flops=numel * n_out * (1 if op == "mul" else 2),
        bytes_moved=element * (numel * (1 + n_out) + b.numel()
                               + a.numel() * (need_b or op in ("maximum", "minimum"))),
    )
    return grad_a, grad_b


def mul_bwd(grad: torch.Tensor, a: torch.Tensor, b: torch.Tensor, need_a: bool = True,
            need_b: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(grad * b, grad * a) over the broadcast shape, in one launch; None where not needed."""
    return _mul_div_bwd("mul", grad, a, b, need_a, need_b)


def div_bwd(grad: torch.Tensor, a: torch.Tensor, b: torch.Tensor, need_a: bool = True,
            need_b: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(grad / b, -grad * a / b**2) over the broadcast shape, in one launch; None where
    not needed."""
    return _mul_div_bwd("div", grad, a, b, need_a, need_b)


def max_min_bwd(op: str, grad: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                need_a: bool = True, need_b: bool = True
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of maximum(a, b) / minimum(a, b) (op) over the broadcast shape, in one
    launch: grad where that operand wins, grad / 2 on ties, 0 where it loses (as torch)."""
    if op not in ("maximum", "minimum"):
        raise ValueError(f"max_min_bwd: op must be 'maximum' or 'minimum', got {op!r}")
    return _mul_div_bwd(op, grad, a, b, need_a, need_b)


def abs_bwd(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad_x = grad * sgn(x) for out = |x| (0 where x is 0 or NaN, as torch)."""
    return _scalar_pow_bwd("abs_backward", "abs_bwd", grad, x, "x", 0.0, 3)


def _specs() -> list[CompileSpec]:
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}

    def strides(*prefixes: str) -> dict:
        return {f"{p}_s{i}": "i64" for p in prefixes for i in range(MAX_DIMS)}

    specs = []
    for dtype, op, flat in [("fp32", "add", True), ("bf16", "sub", False), ("fp16", "mul", True),
                            ("fp64", "div", False), ("fp32", "pow_bwd", False),
                            ("fp64", "pow_bwd", True), ("bf16", "rpow_bwd", True),
                            ("fp32", "rpow_bwd", False), ("i64", "add", True), ("i32", "sub", False),
                            ("i8", "mul", True), ("fp32", "maximum", False),
                            ("bf16", "minimum", True), ("fp64", "maximum", True),
                            ("i32", "minimum", False), ("u8", "maximum", True),
                            ("fp16", "abs_bwd", False), ("fp64", "abs_bwd", True)]:
        sig = {"out_ptr": "*" + dtype, "a_ptr": "*" + dtype, "b_ptr": "*" + dtype,
               "alpha": "fp64", **sizes, **strides("a", "b", "out"),
               "OP": "constexpr", "FLAT": "constexpr", "BLOCK": "constexpr"}
        specs.append(CompileSpec(binary_kernel, sig, {"OP": op, "FLAT": flat, "BLOCK": BLOCK},
                                 f"{op}-{dtype}-{'flat' if flat else 'strided'}"))
    for dtype, op, flat in [("fp32", "eq", True), ("bf16", "lt", False), ("i64", "ge", True),
                            ("i1", "ne", False)]:
        sig = {"out_ptr": "*i1", "a_ptr": "*" + dtype, "b_ptr": "*" + dtype,
               "alpha": "fp64", **sizes, **strides("a", "b", "out"),
               "OP": "constexpr", "FLAT": "constexpr", "BLOCK": "constexpr"}
        specs.append(CompileSpec(binary_kernel, sig, {"OP": op, "FLAT": flat, "BLOCK": BLOCK},
                                 f"{op}-{dtype}-{'flat' if flat else 'strided'}"))
    for dtype, op in [("fp16", "le"), ("u8", "gt"), ("i1", "eq")]:
        sig = {"out_ptr": "*i1", "x_ptr": "*" + dtype, "scalar": "fp64", **sizes,
               **strides("x", "out"), "OP": "constexpr", "FLAT": "constexpr",
               "BLOCK": "constexpr"}
        specs.append(CompileSpec(unary_kernel, sig, {"OP": op, "FLAT": True, "BLOCK": BLOCK},
                                 f"{op}-{dtype}-scalar"))
    unary_ops = UNARY_OPS + ("add", "sub", "rsub", "mul", "div", "rdiv", "pow", "rpow")
    for i, op in enumerate(unary_ops):
        for dtype in ("bf16", "fp64"):
            sig = {"out_ptr": "*" + dtype, "x_ptr": "*" + dtype, "scalar": "fp64", **sizes,
                   **strides("x", "out"), "OP": "constexpr", "FLAT": "constexpr",
                   "BLOCK": "constexpr"}
            flat = i % 2 == 0
            specs.append(CompileSpec(unary_kernel, sig, {"OP": op, "FLAT": flat, "BLOCK": BLOCK},
                                     f"{op}-{dtype}"))
    for op in ("neg", "abs", "add", "sub", "rsub", "mul", "ipow", "ripow"):
        for dtype in ("i64", "u8"):
            sig = {"out_ptr": "*" + dtype, "x_ptr": "*" + dtype, "scalar": "fp64", **sizes,
                   **strides("x", "out"), "OP": "constexpr", "FLAT": "constexpr",
                   "BLOCK": "constexpr"}
            specs.append(CompileSpec(unary_kernel, sig, {"OP": op, "FLAT": True, "BLOCK": BLOCK},
                                     f"{op}-{dtype}"))
    for dtype, op, need_a, need_b, flat in [
            ("fp32", "mul", True, True, False), ("bf16", "div", True, True, False),
            ("fp16", "div", False, True, False), ("fp64", "mul", True, False, False),
            ("fp32", "maximum", True, True, False), ("bf16", "minimum", True, False, True),
            ("fp16", "maximum", False, True, True), ("fp64", "minimum", True, True, False)]:
        sig = {"grad_a_ptr": "*" + dtype, "grad_b_ptr": "*" + dtype, "grad_ptr": "*" + dtype,
               "a_ptr": "*" + dtype, "b_ptr": "*" + dtype, **sizes, **strides("g", "a", "b"),
               "OP": "constexpr", "NEED_A": "constexpr", "NEED_B": "constexpr",
               "FLAT": "constexpr", "BLOCK": "constexpr"}
        constexprs = {"OP": op, "NEED_A": need_a, "NEED_B": need_b, "FLAT": flat, "BLOCK": BLOCK}
        specs.append(CompileSpec(binary_bwd_kernel, sig, constexprs,
                                 f"{op}-{dtype}-{int(need_a)}{int(need_b)}"))
    return specs


COMPILE_SPECS = _specs()
