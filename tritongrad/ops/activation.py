"""Activations: ReLU, softmax and log_softmax; tanh, sigmoid, GELU, SiLU and Mish; leaky ReLU,
ELU, softplus, hardtanh and ReLU6.

relu(x) = max(x, 0) with NaN kept (as torch.relu). Its VJP uses only the output:
d relu(x)/dx = [x > 0] = [y > 0], so dx = dy * [y > 0]; the kernel writes it as
torch's ``threshold_backward`` does (``y <= 0 ? 0 : dy``). Saving y rather than x
lets a following op share the same buffer. Inside Linear layers ReLU is fused into
the matmul instead (``tritongrad.ops.matmul.linear_relu``).

tanh, sigmoid, GELU, SiLU, Mish, leaky ReLU, ELU, softplus and hardtanh run on one kernel
family (``kernels/activation.py``, which derives each VJP; the last four pass their
parameters as kernel scalars). tanh and sigmoid save their output (dy/dx = 1 - y^2,
y (1 - y)); the others save their input, as torch's backwards read it.

``inplace=True`` (F.relu, F.silu, F.leaky_relu, F.elu, F.hardtanh, F.relu6, F.mish and the
modules' flag) is accepted for torch compatibility and ignored: the result is always a new
tensor and the input is left unchanged, as nn.ReLU(inplace=True) and F.dropout do.
"""

from __future__ import annotations

import torch

from ..autograd.function import Function
from ..kernels.activation import SAVES_OUTPUT, activation_bwd, activation_fwd
from ..kernels._checks import DTypeError
from ..kernels.relu import relu_bwd, relu_fwd
from ..kernels.softmax import softmax_bwd, softmax_fwd
from ..tensor import Tensor


class ReLU(Function):
    """y = relu(x), elementwise; any input strides, contiguous output."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = Tensor._wrap(relu_fwd(x._data))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (out,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None,)
        return (Tensor._wrap(relu_bwd(grad_out._data, out._data)),)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) elementwise (NaN stays NaN). ``inplace`` is accepted for torch
    compatibility (``F.relu(x, inplace=True)``) and ignored: the result is always a new
    tensor, as nn.ReLU(inplace=True) and F.dropout's are."""
    return ReLU.apply(x)


class Softmax(Function):
    """y = softmax(x) (log_softmax when ``log``) along ``dim``. Both backwards need only y
    (kernels/softmax.py derives them): gx = y (g - sum g y), or g - exp(y) sum g."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int, log: bool) -> Tensor:
        ctx.dim, ctx.log = dim, log
        out = Tensor._wrap(softmax_fwd(x._data, dim, log))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (out,) = ctx.saved_tensors
        return Tensor._wrap(softmax_bwd(grad_out._data, out._data, ctx.dim, ctx.log)), None, None


def _softmax(x: Tensor, dim, dtype, log: bool) -> Tensor:
    name = "log_softmax" if log else "softmax"
    if dim is None:
        raise TypeError(f"{name}(): pass dim= (torch's implicit choice of dim is deprecated)")
    if dtype is not None:
        x = x.to(dtype)  # as torch: the input is cast before the op
    elif not x.is_floating_point():
        raise TypeError(f"{name}(): expected a floating point input, got {x.dtype} "
                        "(pass dtype= to cast it first)")
    return Softmax.apply(x, int(dim), log)


def softmax(x: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum exp(x) along ``dim``, as torch.softmax (``dtype`` casts x first)."""
    return _softmax(x, dim, dtype, log=False)


def log_softmax(x: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """x - log sum exp(x) along ``dim``, as torch.log_softmax (``dtype`` casts x first)."""
    return _softmax(x, dim, dtype, log=True)


def _smooth_forward(ctx, x: Tensor, op: str, *params: float) -> Tensor:
    """y = op(x) (``params``: the op's scalars, kernels.activation.PARAMS), saving y or x for
    the backward (SAVES_OUTPUT says which)."""
    ctx.op, ctx.params = op, params
    out = Tensor._wrap(activation_fwd(x._data, op, *params))
    ctx.save_for_backward(out if SAVES_OUTPUT[op] else x)
    return out


class _SmoothBackward:
    """The backward of every activation on kernels/activation.py (whose forward is
    _smooth_forward): the input's gradient from ctx.op, ctx.params and the saved tensor,
    then None for each of forward's other arguments (the op's parameters). A mixin, not a
    Function: every Function subclass is an op with its own reference and parity case."""

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (saved,) = ctx.saved_tensors
        n_other = len(ctx.needs_input_grad) - 1
        if not ctx.needs_input_grad[0]:
            return (None,) * (1 + n_other)
        grad_x = Tensor._wrap(activation_bwd(grad_out._data, saved._data, ctx.op, *ctx.params))
        return (grad_x,) + (None,) * n_other


class Tanh(_SmoothBackward, Function):
    """y = tanh(x); backward 1 - y^2 from the saved output."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return _smooth_forward(ctx, x, "tanh")


class Sigmoid(_SmoothBackward, Function):
    """y = 1 / (1 + exp(-x)); backward y (1 - y) from the saved output."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return _smooth_forward(ctx, x, "sigmoid")


class GELU(_SmoothBackward, Function):
    """y = x Phi(x) (``approximate='none'``) or x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
    (``'tanh'``); backward from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, approximate: str) -> Tensor:
        return _smooth_forward(ctx, x, _gelu_op(approximate))


class SiLU(_SmoothBackward, Function):
    """y = x sigmoid(x); backward s (1 + x (1 - s)) from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return _smooth_forward(ctx, x, "silu")


class Mish(_SmoothBackward, Function):
    """y = x tanh(softplus(x)); backward T + x s(x) (1 - T^2) from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return _smooth_forward(ctx, x, "mish")


class LeakyReLU(_SmoothBackward, Function):
    """y = x for x > 0, else negative_slope * x; backward 1 or negative_slope (the slope at
    x == 0, as torch) from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, negative_slope: float) -> Tensor:
        return _smooth_forward(ctx, x, "leaky_relu", negative_slope)


class ELU(_SmoothBackward, Function):
    """y = x for x > 0, else alpha (e^x - 1); backward 1 or alpha e^x (alpha at x == 0, as
    torch) from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:
        return _smooth_forward(ctx, x, "elu", alpha)


class Softplus(_SmoothBackward, Function):
    """y = ln(1 + e^(beta x)) / beta, or x where beta x > threshold; backward
    sigmoid(beta x), or 1 there, from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, beta: float, threshold: float) -> Tensor:
        return _smooth_forward(ctx, x, "softplus", beta, threshold)


class Hardtanh(_SmoothBackward, Function):
    """y = min(max(x, min_val), max_val); backward 1 strictly between the bounds, 0 at and
    beyond them (as torch), from the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, min_val: float, max_val: float) -> Tensor:
        return _smooth_forward(ctx, x, "hardtanh", min_val, max_val)


def _gelu_op(approximate: str) -> str:
    """The kernel OP for torch's ``approximate`` argument (torch's error otherwise)."""
    if approximate == "none":
        return "gelu"
    if approximate == "tanh":
        return "gelu_tanh"
    raise RuntimeError(f"approximate argument must be either none or tanh. (got {approximate!r})")


def check_gelu_approximate(approximate: str) -> str:
    """``approximate`` if it is one torch accepts ('none' or 'tanh'), else torch's
    RuntimeError."""
    _gelu_op(approximate)
    return approximate


def tanh(x: Tensor) -> Tensor:
    """tanh(x) elementwise."""
    return Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)) elementwise, without overflow for large |x|."""
    return Sigmoid.apply(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) elementwise (Phi the standard normal CDF), or its tanh approximation with
    ``approximate='tanh'``, as torch.nn.functional.gelu."""
    return GELU.apply(x, check_gelu_approximate(approximate))


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x) elementwise (swish), as torch.nn.functional.silu; ``inplace`` as in
    relu (accepted, ignored: a new tensor)."""
    return SiLU.apply(x)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x)) elementwise, as torch.nn.functional.mish; ``inplace`` as in relu
    (accepted, ignored: a new tensor)."""
    return Mish.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, else negative_slope * x, as torch.nn.functional.leaky_relu (gradient
    negative_slope at 0); ``inplace`` as in relu (accepted, ignored: a new tensor)."""
    return LeakyReLU.apply(x, float(negative_slope))


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha (e^x - 1), as torch.nn.functional.elu (gradient alpha at 0);
    ``inplace`` as in relu (accepted, ignored: a new tensor)."""
    return ELU.apply(x, float(alpha))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """ln(1 + e^(beta x)) / beta, and x itself where beta x > threshold (torch's rule), as
    torch.nn.functional.softplus; computed without overflow (kernels/activation.py)."""
    return Softplus.apply(x, float(beta), float(threshold))


def check_hardtanh_bounds(min_val: float, max_val: float) -> None:
    """torch's check of F.hardtanh's bounds (equal bounds are allowed)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val "
                         f"(min_val={min_val}, max_val={max_val})")


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val], as torch.nn.functional.hardtanh (NaN stays NaN; the
    gradient is 1 strictly inside, 0 at the bounds). An integer x stays integer, clamped to
    the bounds truncated to integers, as torch does. ``inplace`` as in relu (accepted,
    ignored: a new tensor)."""
    check_hardtanh_bounds(min_val, max_val)
    if not x.is_floating_point():
        from .select import clamp

        if x.dtype == torch.bool:
            raise DTypeError("hardtanh: Bool inputs not supported for hardtanh (input has "
                             "dtype bool)")
        if x.dtype == torch.uint8 and min_val < 0:
            raise DTypeError("hardtanh: cannot do hardtanh on an unsigned type with negative "
                             f"limits (uint8 input, min_val={min_val})")
        return clamp(x, int(min_val), int(max_val))
    return Hardtanh.apply(x, float(min_val), float(max_val))


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6), as torch.nn.functional.relu6: hardtanh(x, 0, 6) (gradient 0 at 0
    and 6). ``inplace`` as in relu (accepted, ignored: a new tensor)."""
    return hardtanh(x, 0, 6)
