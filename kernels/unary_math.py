"""Unary math beside exp/log/sqrt/abs (elementwise.py): log1p, expm1, rsqrt, reciprocal,
sin, cos, log2, log10, and the piecewise-constant sign, floor, ceil, round, trunc.

A sibling of ``elementwise.unary_kernel`` (that file holds the arithmetic family and is
near its size limit): one forward kernel and one backward kernel, the op a constexpr
string, so each (op, dtype) compiles to straight-line code. The forward reads x through
its strides and writes ``out`` through its own (``out`` may be ``x``: the in-place
``x.floor_()``); the backward writes a contiguous gradient. Math runs in fp32, fp64 for
fp64, and rounds once into the output dtype. Integer and bool inputs of the float ops are
converted in the kernel (no cast launch): torch.sin of an int64 tensor is float32.

Forward, and the derivative each backward multiplies the upstream gradient by (torch's
derivatives.yaml, in its order of operations; the saved tensor is y where the
derivative is a function of y):
    log1p:      y = ln(1 + x)       grad / (x + 1)                        (saves x)
    expm1:      y = e^x - 1         grad * (y + 1)                        (saves y)
    rsqrt:      y = x^-1/2          dy/dx = -x^-3/2 / 2 = -y^3 / 2:
                                    -0.5 * grad * y^3                     (saves y)
    reciprocal: y = 1 / x           dy/dx = -1 / x^2 = -y^2: -grad * (y y) (saves y)
    sin:        y = sin x           grad * cos x                          (saves x)
    cos:        y = cos x           grad * -sin x                         (saves x)
    log2:       y = ln x / ln 2     grad / (x ln 2)                       (saves x)
    log10:      y = ln x / ln 10    grad / (x ln 10)                      (saves x)
    sign, floor, ceil, round, trunc: piecewise constant, so the gradient is 0 everywhere
    (torch returns zeros, even for a NaN grad): no backward kernel, the caller allocates
    zeros.

Numerics:
- log1p and expm1 never form 1 + x or e^x - 1 and keep the rounding: Goldberg's
  log1p(x) = ln(u) * x / (u - 1), u = 1 + x (the division cancels u's rounding error),
  and Kahan's expm1(x) = (u - 1) * x / ln(u), u = e^x. Both are exact to a few ulp for
  tiny |x| (log1p(1e-10) = 1e-10, not 0) and keep -0.0; the infinities are special-cased
  (inf / inf would be NaN).
- rsqrt is 1 / sqrt(x), both correctly rounded (torch's CPU formula; tl.rsqrt compiles
  to rsqrt.approx).
- floor and ceil are corrected by one where the hardware result is on the wrong side of
  x: sm_90's fp32 floor/ceil flush subnormal inputs to zero (cvt.rmi.ftz), which would
  make floor(-1e-40) = -0.0 instead of -1.
- round is half to even (torch's nearbyint) from floor: r = floor(x), d = x - r (exact for
  every fp32/fp64 x, Sterbenz), r + 1 when d > 1/2 or d == 1/2 and r is odd; a zero result
  takes x's sign (round(-0.3) = -0.0).
- sign is (x > 0) - (x < 0), torch's formula: sign(NaN) = 0 and sign(-0.0) = +0.0.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    DTypeError,
    check_backward_pair,
    check_tensor,
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, flat_layout, offsets_of
from .elementwise import _check_out, div_rn, sqrt_rn, upcast

FLOAT_MATH_OPS = ("log1p", "expm1", "rsqrt", "reciprocal", "sin", "cos", "log2", "log10")
# piecewise constant: exact on integers (which keep their dtype), gradient 0
STEP_OPS = ("sign", "floor", "ceil", "round", "trunc")
MATH_OPS = FLOAT_MATH_OPS + STEP_OPS
SAVES_OUTPUT = {"log1p": False, "expm1": True, "rsqrt": True, "reciprocal": True,
                "sin": False, "cos": False, "log2": False, "log10": False}
# Analytic counts per element (a transcendental counts one), for the profiler.
FWD_FLOPS = {"log1p": 5, "expm1": 6, "rsqrt": 2, "reciprocal": 1, "sin": 1, "cos": 1,
             "log2": 1, "log10": 2, "sign": 3, "floor": 3, "ceil": 3, "round": 12, "trunc": 7}
BWD_FLOPS = {"log1p": 2, "expm1": 2, "rsqrt": 4, "reciprocal": 3, "sin": 2, "cos": 3,
             "log2": 2, "log10": 2}

# Under the interpreter each program costs ~0.5 ms whatever its size: use few, large ones.
UNARY_MATH_BLOCK = 8192 if interpreting() else 1024


@triton.jit
def log1p(x):
    """ln(1 + x) in x's (fp32 or fp64) precision, accurate for tiny |x| (Goldberg: with
    u = 1 + x rounded, ln(u) * x / (u - 1) cancels u's rounding error; x itself when
    u == 1). log1p(-1) = -inf, below -1 NaN, +inf stays +inf, -0.0 stays -0.0."""
    u = 1.0 + x
    exact = u == 1.0
    ratio = div_rn(x, tl.where(exact, 1.0, u - 1.0))
    y = tl.where(exact, x, tl.log(u) * ratio)
    return tl.where(x == float("inf"), x, y)  # inf / inf would be NaN


@triton.jit
def expm1(x):
    """e^x - 1 in x's (fp32 or fp64) precision, accurate for tiny |x| (Kahan: with
    u = e^x rounded, (u - 1) * x / ln(u); x itself when u == 1, -1 when u - 1 == -1).
    expm1(-inf) = -1, overflow gives +inf, -0.0 stays -0.0."""
    u = tl.exp(x)
    um1 = u - 1.0
    safe_log = tl.where((u == 1.0) | (um1 == -1.0), 1.0, tl.log(u))
    y = um1 * div_rn(x, safe_log)
    y = tl.where(um1 == -1.0, -1.0, y)
    y = tl.where(u == 1.0, x, y)
    return tl.where(u == float("inf"), u, y)  # inf * x / inf would be NaN


@triton.jit
def floor_exact(x):
    """floor(x), also for subnormal x on a GPU whose floor flushes them to zero."""
    r = tl.floor(x)
    return tl.where(r > x, r - 1.0, r)


@triton.jit
def ceil_exact(x):
    """ceil(x), also for subnormal x on a GPU whose ceil flushes them to zero."""
    r = tl.ceil(x)
    return tl.where(r < x, r + 1.0, r)


@triton.jit
def round_half_even(x):
    """x rounded to the nearest integer, ties to even, as torch.round (module docstring).
    inf and NaN pass through (d = inf - inf is NaN, so no correction applies)."""
    r = floor_exact(x)
    d = x - r
    half = r * 0.5
    r_is_odd = tl.floor(half) != half
    r = tl.where((d > 0.5) | ((d == 0.5) & r_is_odd), r + 1.0, r)
    return tl.where(r == 0.0, x * 0.0, r)  # a zero takes x's sign: round(-0.3) = -0.0


@triton.jit
def _math_forward(x, OP: tl.constexpr):
    """y = OP(x) for a float x (fp32 or fp64), or an integer x for the STEP_OPS."""
    if x.dtype.is_int():
        if OP == "sign":
            y = (x > 0).to(x.dtype) - (x < 0).to(x.dtype)
        else:  # floor, ceil, round, trunc: integers already are
            y = x
    elif OP == "log1p":
        y = log1p(x)
    elif OP == "expm1":
        y = expm1(x)
    elif OP == "rsqrt":
        y = div_rn(tl.zeros_like(x) + 1.0, sqrt_rn(x))
    elif OP == "reciprocal":
        y = div_rn(tl.zeros_like(x) + 1.0, x)
    elif OP == "sin":
        y = tl.sin(x)
    elif OP == "cos":
        y = tl.cos(x)
    elif OP == "log2":
        y = tl.log2(x)
    elif OP == "log10":
        y = tl.log(x) * 0.4342944819032518  # 1 / ln 10
    elif OP == "sign":
        y = (x > 0).to(x.dtype) - (x < 0).to(x.dtype)
    elif OP == "floor":
        y = floor_exact(x)
    elif OP == "ceil":
        y = ceil_exact(x)
    elif OP == "round":
        y = round_half_even(x)
    else:  # "trunc"
        y = tl.where(x < 0, ceil_exact(x), floor_exact(x))
    return y


@triton.jit
def _math_grad(grad, saved, OP: tl.constexpr):
    """grad_x = grad * OP'(x) from the saved x or y (module docstring), in torch's order."""
    if OP == "log1p":
        grad_x = div_rn(grad, saved + 1.0)
    elif OP == "expm1":
        grad_x = grad * (saved + 1.0)
    elif OP == "rsqrt":
        grad_x = -0.5 * grad * (saved * saved * saved)
    elif OP == "reciprocal":
        grad_x = -grad * (saved * saved)
    elif OP == "sin":
        grad_x = grad * tl.cos(saved)
    elif OP == "cos":
        grad_x = grad * -tl.sin(saved)
    elif OP == "log2":
        grad_x = div_rn(grad, saved * 0.6931471805599453)  # ln 2
    else:  # "log10"
        grad_x = div_rn(grad, saved * 2.302585092994046)  # ln 10
    return grad_x


@triton.jit
def unary_math_kernel(
    out_ptr, x_ptr,
    numel, size1, size2, size3, size4, size5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    out_s0, out_s1, out_s2, out_s3, out_s4, out_s5,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[i] = OP(x[i]) over a (merged, padded) 6-D shape.

    out_ptr: the result, same shape as x, any non-overlapping strides (out_s*); it may
        alias x exactly (in place). A float dtype for FLOAT_MATH_OPS (an integer or bool
        x is converted after loading); x's own dtype for STEP_OPS.
    x_ptr: the input, any strides (x_s*; int64 offsets).
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    OP: one of MATH_OPS. FLAT: the layout merged to one dim (see copy.offsets_of).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       x_s0, x_s1, x_s2, x_s3, x_s4, x_s5, FLAT)
    out_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         out_s0, out_s1, out_s2, out_s3, out_s4, out_s5, FLAT)
    x = upcast(tl.load(x_ptr + x_off, mask=mask, other=1))
    if out_ptr.dtype.element_ty.is_floating() and x.dtype.is_int():
        x = x.to(tl.float32)  # torch.sin(int tensor) is float32
    y = _math_forward(x, OP)
    tl.store(out_ptr + out_off, cast_to(y, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def unary_math_bwd_kernel(
    grad_x_ptr, grad_ptr, saved_ptr,
    numel, size1, size2, size3, size4, size5,
    g_s0, g_s1, g_s2, g_s3, g_s4, g_s5,
    sv_s0, sv_s1, sv_s2, sv_s3, sv_s4, sv_s5,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """grad_x[i] = grad[i] * OP'(x[i]) (module docstring), for OP in FLOAT_MATH_OPS.

    grad_x_ptr: contiguous output of numel elements, the dtype of grad and saved.
    grad_ptr: upstream gradient, any strides (g_s*).
    saved_ptr: the forward output y where SAVES_OUTPUT[OP], else the input x; same
        shape and float dtype, any strides (sv_s*).
    numel, size1..size5, FLAT: as in unary_math_kernel.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    g_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       g_s0, g_s1, g_s2, g_s3, g_s4, g_s5, FLAT)
    sv_off = offsets_of(linear, size1, size2, size3, size4, size5,
                        sv_s0, sv_s1, sv_s2, sv_s3, sv_s4, sv_s5, FLAT)
    grad = upcast(tl.load(grad_ptr + g_off, mask=mask, other=0.0))
    saved = upcast(tl.load(saved_ptr + sv_off, mask=mask, other=1.0))
    grad_x = _math_grad(grad, saved, OP)
    tl.store(grad_x_ptr + linear, cast_to(grad_x, grad_x_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers


def _check_op(op: str, ops: tuple) -> None:
    if op not in ops:
        raise ValueError(f"unary_math: unknown op {op!r}; expected one of {', '.join(ops)}")


def result_dtype(op: str, dtype: torch.dtype, name: str | None = None) -> torch.dtype:
    """torch's result dtype of ``op`` on a ``dtype`` tensor: floats keep theirs; the float
    ops make integers and bool float32 (the default float dtype), the step ops keep
    integers; floor, ceil, round and trunc of bool are refused, as torch does. (sign of
    bool is bool in torch, which the caller handles: there is nothing to compute.) ``name``:
    the op's name in the error (``floor_`` for the in-place form)."""
    _check_op(op, MATH_OPS)
    if dtype in FLOAT_DTYPES:
        return dtype
    if op in FLOAT_MATH_OPS and dtype in INTEGER_DTYPES + (torch.bool,):
        return torch.float32
    if op in STEP_OPS and dtype in INTEGER_DTYPES:
        return dtype
    allowed = FLOAT_DTYPES + INTEGER_DTYPES + (() if op in STEP_OPS else (torch.bool,))
    raise DTypeError(f"{name or op}: input has dtype {dtype_name(dtype)}; supported: "
                     f"{', '.join(dtype_name(d) for d in allowed)}")


def unary_math(op: str, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``op``(x) for op in MATH_OPS, into a new contiguous tensor of torch's result dtype
    (``result_dtype``), or into ``out`` (that dtype; any non-overlapping view of x's shape,
    possibly x itself)."""
    check_tensor(op, "input", x)
    dtype = result_dtype(op, x.dtype)
    if out is None:
        out = torch.empty(x.shape, dtype=dtype, device=x.device)
    else:
        _check_out(op, out, x, dtypes=(dtype,))
    numel = out.numel()
    if numel == 0:
        return out
    sizes, (x_strides, out_strides), flat = flat_layout(out.shape, x.stride(), out.stride())
    launch(
        unary_math_kernel, (cdiv(numel, UNARY_MATH_BLOCK),), out, x, numel, *sizes[1:],
        *x_strides, *out_strides, OP=op, FLAT=flat, BLOCK=UNARY_MATH_BLOCK,
        flops=FWD_FLOPS[op] * numel,
        bytes_moved=numel * (x.element_size() + out.element_size()),
    )
    return out


def unary_math_bwd(op: str, grad: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """The gradient of ``op`` (one of FLOAT_MATH_OPS) w.r.t. its input, as a new contiguous
    tensor. grad: the upstream gradient; saved: the forward output where
    ``SAVES_OUTPUT[op]``, else the forward input. Same shape and float dtype, any strides."""
    _check_op(op, FLOAT_MATH_OPS)
    name = f"{op}_backward"
    check_backward_pair(name, grad, saved, "output" if SAVES_OUTPUT[op] else "input",
                        FLOAT_DTYPES)
    grad_x = torch.empty(saved.shape, dtype=saved.dtype, device=saved.device)
    numel = saved.numel()
    if numel == 0:
        return grad_x
    sizes, (g_strides, sv_strides), flat = flat_layout(saved.shape, grad.stride(),
                                                        saved.stride())
    launch(
        unary_math_bwd_kernel, (cdiv(numel, UNARY_MATH_BLOCK),), grad_x, grad, saved, numel,
        *sizes[1:], *g_strides, *sv_strides, OP=op, FLAT=flat, BLOCK=UNARY_MATH_BLOCK,
        flops=BWD_FLOPS[op] * numel, bytes_moved=3 * numel * saved.element_size(),
    )
    return grad_x


def _specs() -> list[CompileSpec]:
    """Every op in fp32, bf16 and fp64 (fp64 takes its own libdevice paths; bf16 the
    rounding store); the step ops on integers; the float ops from int64 and bool inputs
    (the in-kernel conversion); every backward in the float dtypes."""
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    modes = {"OP": "constexpr", "FLAT": "constexpr", "BLOCK": "constexpr"}

    def strides(*prefixes: str) -> dict:
        return {f"{p}_s{i}": "i64" for p in prefixes for i in range(MAX_DIMS)}

    forward = [(dt, dt, op) for dt in ("fp32", "bf16", "fp64") for op in MATH_OPS]
    forward += [("fp16", "fp16", op) for op in ("log1p", "expm1", "round", "sin")]
    forward += [(dt, dt, op) for dt in ("i64", "u8", "i8") for op in STEP_OPS]
    forward += [("i64", "fp32", "sin"), ("i1", "fp32", "log1p"), ("u8", "fp32", "rsqrt"),
                ("i32", "fp32", "expm1")]
    specs = []
    for k, (x_dt, out_dt, op) in enumerate(forward):
        sig = {"out_ptr": "*" + out_dt, "x_ptr": "*" + x_dt, **sizes, **strides("x", "out"),
               **modes}
        constexprs = {"OP": op, "FLAT": k % 2 == 0, "BLOCK": 1024}
        specs.append(CompileSpec(unary_math_kernel, sig, constexprs, f"{x_dt}->{out_dt},{op}"))
    for k, (dt, op) in enumerate((dt, op) for dt in ("fp32", "fp16", "bf16", "fp64")
                                 for op in FLOAT_MATH_OPS):
        ptr = "*" + dt
        sig = {"grad_x_ptr": ptr, "grad_ptr": ptr, "saved_ptr": ptr, **sizes,
               **strides("g", "sv"), **modes}
        constexprs = {"OP": op, "FLAT": k % 2 == 1, "BLOCK": 1024}
        specs.append(CompileSpec(unary_math_bwd_kernel, sig, constexprs, f"{dt},{op}"))
    return specs


COMPILE_SPECS = _specs()
