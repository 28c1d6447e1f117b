"""Elementwise activations over any strided input: tanh, sigmoid, GELU (exact erf form and
tanh approximation), SiLU, Mish, and the parametrized leaky ReLU, ELU, softplus and hardtanh
(ReLU6 is hardtanh(0, 6)), forward and backward.

One kernel per direction; the ``OP`` constexpr picks the function, so each (OP, dtype)
compiles to its own specialization with no runtime branch. Inputs are read through their
strides (as relu does); outputs are contiguous. fp16/bf16 compute in fp32 and round once
(``cast_to``); fp64 stays fp64 (gradcheck).

Forward, and the derivative each backward multiplies the upstream gradient by:
    tanh:      y = tanh(x)                    dy/dx = 1 - tanh(x)^2 = 1 - y^2
    sigmoid:   y = s(x) = 1 / (1 + e^-x)      dy/dx = e^-x / (1 + e^-x)^2 = s(x) (1 - s(x))
                                                    = y (1 - y)
    gelu:      y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 (the normal CDF)
               dy/dx = Phi(x) + x Phi'(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi)
    gelu_tanh: y = x (1 + T) / 2, T = tanh(u), u = k (x + c x^3), k = sqrt(2/pi), c = 0.044715
               dy/dx = (1 + T) / 2 + (x / 2) dT/dx,
               dT/dx = (1 - T^2) du/dx = (1 - T^2) k (1 + 3 c x^2)
    silu:      y = x s(x)
               dy/dx = s(x) + x s(x) (1 - s(x)) = s(x) (1 + x (1 - s(x)))
    mish:      y = x T, T = tanh(sp(x)), sp(x) = ln(1 + e^x)
               dy/dx = T + x (1 - T^2) sp'(x) = T + x s(x) (1 - T^2)
The parametrized ones take two host scalars (PARAMS names them; fp64 arguments, rounded to
fp32 for the non-fp64 dtypes as torch's opmath does):
    leaky_relu (a = negative_slope):
               y = x for x > 0, else a x          dy/dx = 1 for x > 0, else a (a at 0)
    elu (a = alpha):
               y = x for x > 0, else a (e^x - 1)  dy/dx = 1 for x > 0, else a e^x (a at 0)
    softplus (b = beta, t = threshold):
               y = x where b x > t (linear), else sp(b x) / b
               dy/dx = 1 where b x > t, else sp'(b x) = s(b x)
    hardtanh (lo = min_val, hi = max_val):
               y = min(max(x, lo), hi)            dy/dx = 1 for lo < x < hi, else 0 (0 at both
                                                  bounds, and 1 at NaN, as torch)
What backward reads (``SAVES_OUTPUT``): tanh and sigmoid have derivatives written in y
alone, so they save the output (as torch's tanh_backward / sigmoid_backward do; x can be
freed). GELU and SiLU are not monotonic (minima near x = -0.75 and x = -1.28), so y does
not determine x and their backward reads the saved input, as torch's gelu_backward /
silu_backward do; so do Mish and the parametrized ones (as torch's backwards: hardtanh and
leaky ReLU are flat or not one-to-one for some parameters, and ELU's x-form is torch's).

Numerics (torch's formulas where they are safe, so results agree to the last bits):
- e^z is only ever taken of z <= 0 (e^-|x|, e^-2|x|, e^(-x^2/2)), so nothing
  overflows: sigmoid(-100) is 3.7e-44 (torch 0 on CPU), tanh(+-50) is +-1, silu(-1000) is -0.
- tanh(|x|) = (1 - t) / (1 + t), t = e^-2|x|, loses bits to cancellation for small |x|;
  there (|x| < 0.55 in fp32 math, < 0.1 in fp64) the Taylor series through x^17 is within
  2 ulp.
- gelu_tanh's backward: for finite |x| > ~1.8e19, x^2 overflows fp32 where 1 - T^2 is 0;
  torch's 0 * inf gives NaN there, we drop the vanishing term (the limit, and torch's own
  fp64 result). At x = +-inf (and for every op at NaN) the NaNs are torch's.
- gelu(+inf) is +inf, as torch's fp64 and fp16 paths and its scalar formula give (torch's
  vectorized CPU fp32/bf16 path gives NaN there).
- sp(z) = ln(1 + e^z) is computed as max(z, 0) + log1p(e^-|z|), which never overflows;
  its derivative s(z) as _sigmoid. torch's formulas (log1p(exp(z)) and
  grad * e^z / (e^z + 1)) overflow to inf and NaN when z > ~88 (fp32) is not cut off by
  softplus's threshold (a threshold raised above 88, or Mish); there ours stay finite (the
  limit: sp(z) = z, derivative 1). Everywhere else they agree to rounding, as do the
  infinities and NaNs (Mish(-inf) = -inf * 0 = NaN, as torch).
- ELU's e^x - 1 is expm1 (unary_math.expm1), accurate near 0 as torch's.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import FLOAT_DTYPES, check_backward_pair, check_tensor
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, flat_layout, offsets_of
from .elementwise import div_rn, scalar_like, upcast
from .unary_math import expm1, log1p

ACTIVATIONS = ("tanh", "sigmoid", "gelu", "gelu_tanh", "silu", "mish", "leaky_relu", "elu",
               "softplus", "hardtanh")
SAVES_OUTPUT = {"tanh": True, "sigmoid": True, "gelu": False, "gelu_tanh": False, "silu": False,
                "mish": False, "leaky_relu": False, "elu": False, "softplus": False,
                "hardtanh": False}
# The host scalars (param1, param2) each op reads; the others take neither.
PARAMS = {"leaky_relu": ("negative_slope",), "elu": ("alpha",),
          "softplus": ("beta", "threshold"), "hardtanh": ("min_val", "max_val")}
# Analytic counts per element (a transcendental counts one), for the profiler's TFLOP/s.
FWD_FLOPS = {"tanh": 6, "sigmoid": 5, "gelu": 5, "gelu_tanh": 14, "silu": 6, "mish": 16,
             "leaky_relu": 2, "elu": 8, "softplus": 10, "hardtanh": 2}
BWD_FLOPS = {"tanh": 3, "sigmoid": 3, "gelu": 9, "gelu_tanh": 22, "silu": 9, "mish": 24,
             "leaky_relu": 2, "elu": 4, "softplus": 7, "hardtanh": 3}

# Under the interpreter each program costs ~0.5 ms whatever its size: use few, large ones.
ACTIVATION_BLOCK = 8192 if interpreting() else 1024


@triton.jit
def _sigmoid(x):
    """1 / (1 + e^-x) from e^-|x| <= 1 (no overflow): 1 / (1 + z) for x >= 0, z / (1 + z)
    below; NaN stays NaN."""
    z = tl.exp(-tl.abs(x))
    one = tl.zeros_like(x) + 1.0
    return div_rn(tl.where(x >= 0, one, z), one + z)


@triton.jit
def _tanh(x):
    """tanh(x) = sign(x) (1 - t) / (1 + t), t = e^-2|x| <= 1 (no overflow); for small |x|
    (1 - t cancels there) the Taylor series through x^17, whose next term (2.4e-4 x^19) is
    below 1e-8 relative for |x| < 0.55 in fp32 math and below 1e-21 for |x| < 0.1 in fp64
    (fp64 without it lost relative accuracy: tanh(1e-12) off by 2e-5, tanh(1e-17) = 0).
    Signed zero and NaN pass through."""
    ax = tl.abs(x)
    t = tl.exp(-2.0 * ax)
    magnitude = div_rn(1.0 - t, 1.0 + t)
    y = tl.where(x < 0, -magnitude, magnitude)
    if x.dtype == tl.float64:
        in_series = ax < 0.1
    else:
        in_series = ax < 0.55
    small = tl.where(in_series, x, 0.0)  # keeps the series away from overflow
    x2 = small * small
    series = 6404582.0 / 10854718875.0
    series = series * x2 - 929569.0 / 638512875.0
    series = series * x2 + 21844.0 / 6081075.0
    series = series * x2 - 1382.0 / 155925.0
    series = series * x2 + 62.0 / 2835.0
    series = series * x2 - 17.0 / 315.0
    series = series * x2 + 2.0 / 15.0
    series = series * x2 - 1.0 / 3.0
    series = series * x2 + 1.0
    return tl.where(in_series, small * series, y)  # x * series keeps tanh(-0) = -0


@triton.jit
def _softplus(z):
    """ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|): no overflow for large z; NaN stays NaN."""
    return tl.where(z > 0, z, 0.0) + log1p(tl.exp(-tl.abs(z)))


@triton.jit
def _activation(x, p1, p2, OP: tl.constexpr):
    """The forward y = OP(x) in x's (fp32 or fp64) precision, p1 and p2 the op's PARAMS in
    that precision; see the module docstring."""
    if OP == "tanh":
        y = _tanh(x)
    elif OP == "sigmoid":
        y = _sigmoid(x)
    elif OP == "gelu":
        y = x * 0.5 * (1.0 + tl.math.erf(x * 0.7071067811865476))  # torch's order
    elif OP == "gelu_tanh":
        inner = 0.7978845608028654 * (x + 0.044715 * (x * x * x))
        y = 0.5 * x * (1.0 + _tanh(inner))
    elif OP == "silu":
        y = x * _sigmoid(x)
    elif OP == "mish":
        y = x * _tanh(_softplus(x))
    elif OP == "leaky_relu":
        y = tl.where(x > 0, x, x * p1)  # NaN * slope stays NaN
    elif OP == "elu":
        # x < 0, not x <= 0: at +-0 torch returns x itself (its sign included)
        y = tl.where(x < 0, expm1(x) * p1, x)
    elif OP == "softplus":
        z = x * p1
        y = tl.where(z > p2, x, div_rn(_softplus(z), tl.zeros_like(x) + p1))
    else:  # "hardtanh": comparisons, not tl.maximum/minimum, so NaN stays NaN
        y = tl.where(x < p1, p1, tl.where(x > p2, p2, x))
    return y


@triton.jit
def _activation_grad(grad_y, saved, p1, p2, OP: tl.constexpr):
    """grad_x = grad_y * dy/dx from the saved tensor (y for tanh and sigmoid, else x), in
    torch's order of operations; the module docstring derives each."""
    if OP == "tanh":
        grad_x = grad_y * (1.0 - saved * saved)
    elif OP == "sigmoid":
        grad_x = grad_y * ((1.0 - saved) * saved)
    elif OP == "gelu":
        cdf = 0.5 * (1.0 + tl.math.erf(saved * 0.7071067811865476))
        pdf = tl.exp(-0.5 * saved * saved) * 0.3989422804014327  # 1 / sqrt(2 pi)
        grad_x = grad_y * (cdf + saved * pdf)
    elif OP == "gelu_tanh":
        x_sq = saved * saved
        tanh_inner = _tanh(0.7978845608028654 * (saved + 0.044715 * (x_sq * saved)))
        sech_sq = 1.0 - tanh_inner * tanh_inner
        inner_derivative = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x_sq)
        # where sech_sq is 0, x_sq may be inf: 0 * inf must not make a NaN for finite x
        # (x * 0.0 keeps torch's NaN at x = +-inf)
        tail = tl.where(sech_sq == 0.0, saved * 0.0, 0.5 * saved * sech_sq * inner_derivative)
        grad_x = grad_y * (0.5 * (1.0 + tanh_inner) + tail)
    elif OP == "silu":
        sig = _sigmoid(saved)
        grad_x = grad_y * (sig * (1.0 + saved * (1.0 - sig)))
    elif OP == "mish":
        tanh_sp = _tanh(_softplus(saved))
        grad_x = grad_y * (tanh_sp + saved * _sigmoid(saved) * (1.0 - tanh_sp * tanh_sp))
    elif OP == "leaky_relu":
        grad_x = tl.where(saved > 0, grad_y, grad_y * p1)
    elif OP == "elu":
        grad_x = tl.where(saved <= 0, grad_y * p1 * tl.exp(saved), grad_y)
    elif OP == "softplus":
        z = saved * p1
        grad_x = tl.where(z > p2, grad_y, grad_y * _sigmoid(z))
    else:  # "hardtanh": 0 at and beyond the bounds; NaN compares False and passes grad
        grad_x = tl.where((saved <= p1) | (saved >= p2), 0.0, grad_y)
    return grad_x


@triton.jit
def activation_fwd_kernel(
    x_ptr, y_ptr, param1: tl.float64, param2: tl.float64,
    numel, size1, size2, size3, size4, size5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """y[i] = OP(x[i]) for row-major index i of a (padded) 6-D shape.

    x_ptr: input of any strides (x_s0..x_s5, int64 offsets).
    y_ptr: contiguous output of numel elements, same dtype as x.
    param1, param2: the op's PARAMS (negative_slope, alpha, beta and threshold, min_val
        and max_val); unused by the others.
    numel: element count; size1..size5: trailing sizes of the merged 6-D shape.
    OP: one of ACTIVATIONS. FLAT: the layout merged to one dim (see copy.offsets_of).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       x_s0, x_s1, x_s2, x_s3, x_s4, x_s5, FLAT)
    x = upcast(tl.load(x_ptr + x_off, mask=mask, other=0.0))
    y = _activation(x, scalar_like(param1, x), scalar_like(param2, x), OP)
    tl.store(y_ptr + linear, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def activation_bwd_kernel(
    grad_y_ptr, saved_ptr, grad_x_ptr, param1: tl.float64, param2: tl.float64,
    numel, size1, size2, size3, size4, size5,
    gy_s0, gy_s1, gy_s2, gy_s3, gy_s4, gy_s5,
    sv_s0, sv_s1, sv_s2, sv_s3, sv_s4, sv_s5,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """grad_x[i] = grad_y[i] * OP'(x[i]) (module docstring).

    grad_y_ptr: upstream gradient, any strides (gy_s*).
    saved_ptr: the forward output y for tanh and sigmoid, the input x otherwise
    (SAVES_OUTPUT); any strides (sv_s*), same shape and dtype.
    grad_x_ptr: contiguous output of numel elements.
    param1, param2, numel, size1..size5, OP, FLAT: as in activation_fwd_kernel.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    gy_off = offsets_of(linear, size1, size2, size3, size4, size5,
                        gy_s0, gy_s1, gy_s2, gy_s3, gy_s4, gy_s5, FLAT)
    sv_off = offsets_of(linear, size1, size2, size3, size4, size5,
                        sv_s0, sv_s1, sv_s2, sv_s3, sv_s4, sv_s5, FLAT)
    grad_y = upcast(tl.load(grad_y_ptr + gy_off, mask=mask, other=0.0))
    saved = upcast(tl.load(saved_ptr + sv_off, mask=mask, other=0.0))
    grad_x = _activation_grad(grad_y, saved, scalar_like(param1, saved),
                              scalar_like(param2, saved), OP)
    tl.store(grad_x_ptr + linear, cast_to(grad_x, grad_x_ptr.dtype.element_ty), mask=mask)


def _check_op(op: str) -> None:
    if op not in ACTIVATIONS:
        raise ValueError(f"activation: unknown op {op!r}; expected one of {', '.join(ACTIVATIONS)}")


def _params(op: str, params: tuple) -> tuple[float, float]:
    """The (param1, param2) kernel arguments: exactly the scalars PARAMS[op] names."""
    names = PARAMS.get(op, ())
    if len(params) != len(names):
        wanted = ", ".join(names) or "none"
        raise TypeError(f"{op}: takes {len(names)} scalar parameter(s) ({wanted}), got "
                        f"{len(params)}")
    values = [float(p) for p in params]
    return tuple(values + [0.0] * (2 - len(values)))


def activation_fwd(x: torch.Tensor, op: str, *params: float) -> torch.Tensor:
    """``op``(x) (one of ACTIVATIONS) as a new contiguous tensor of x's dtype; x may have
    any strides. ``params``: the op's scalars, in PARAMS order (leaky_relu: negative_slope;
    elu: alpha; softplus: beta, threshold; hardtanh: min_val, max_val)."""
    _check_op(op)
    param1, param2 = _params(op, params)
    check_tensor(op, "input", x, FLOAT_DTYPES)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    numel = x.numel()
    if numel == 0:
        return y
    sizes, (x_strides,), flat = flat_layout(x.shape, x.stride())
    launch(
        activation_fwd_kernel, (cdiv(numel, ACTIVATION_BLOCK),), x, y, param1, param2, numel,
        *sizes[1:], *x_strides, OP=op, FLAT=flat, BLOCK=ACTIVATION_BLOCK,
        flops=FWD_FLOPS[op] * numel, bytes_moved=2 * numel * x.element_size(),
    )
    return y


def activation_bwd(grad_out: torch.Tensor, saved: torch.Tensor, op: str,
                   *params: float) -> torch.Tensor:
    """The gradient of ``op`` w.r.t. its input, as a new contiguous tensor.

    grad_out: the upstream gradient. saved: the forward output for tanh and sigmoid, the
    forward input for the others (``SAVES_OUTPUT[op]``). Same shape and dtype, any strides.
    params: the forward's scalars, as in activation_fwd.
    """
    _check_op(op)
    param1, param2 = _params(op, params)
    name = f"{op}_backward"
    saved_name = "output" if SAVES_OUTPUT[op] else "input"
    check_backward_pair(name, grad_out, saved, saved_name, FLOAT_DTYPES)
    grad_in = torch.empty(saved.shape, dtype=saved.dtype, device=saved.device)
    numel = saved.numel()
    if numel == 0:
        return grad_in
    sizes, (gy_strides, sv_strides), flat = flat_layout(saved.shape, grad_out.stride(),
                                                        saved.stride())
    launch(
        activation_bwd_kernel, (cdiv(numel, ACTIVATION_BLOCK),), grad_out, saved, grad_in,
        param1, param2, numel, *sizes[1:], *gy_strides, *sv_strides, OP=op, FLAT=flat,
        BLOCK=ACTIVATION_BLOCK,
        flops=BWD_FLOPS[op] * numel, bytes_moved=3 * numel * saved.element_size(),
    )
    return grad_in


def _specs() -> list[CompileSpec]:
    """Every OP in every dtype, both directions (the math differs per OP, and fp64 takes
    its own paths: erf and exp in fp64, a narrower tanh series)."""
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    modes = {"OP": "constexpr", "FLAT": "constexpr", "BLOCK": "constexpr"}
    specs = []
    for k, (dt, op) in enumerate((dt, op) for dt in ("fp32", "fp16", "bf16", "fp64")
                                 for op in ACTIVATIONS):
        ptr = "*" + dt
        constexprs = {"OP": op, "FLAT": k % 2 == 0, "BLOCK": 1024}
        fwd_sig = {"x_ptr": ptr, "y_ptr": ptr, "param1": "fp64", "param2": "fp64", **sizes,
                   **{f"x_s{i}": "i64" for i in range(MAX_DIMS)}, **modes}
        specs.append(CompileSpec(activation_fwd_kernel, fwd_sig, constexprs, f"{dt},{op}"))
        bwd_sig = {"grad_y_ptr": ptr, "saved_ptr": ptr, "grad_x_ptr": ptr, "param1": "fp64",
                   "param2": "fp64", **sizes,
                   **{f"gy_s{i}": "i64" for i in range(MAX_DIMS)},
                   **{f"sv_s{i}": "i64" for i in range(MAX_DIMS)}, **modes}
        specs.append(CompileSpec(activation_bwd_kernel, bwd_sig, constexprs, f"{dt},{op}"))
    return specs


COMPILE_SPECS = _specs()
