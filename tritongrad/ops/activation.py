"""Activations: ReLU, softmax and log_softmax.

relu(x) = max(x, 0) with NaN kept (as torch.relu). Its VJP uses only the output:
d relu(x)/dx = [x > 0] = [y > 0], so dx = dy * [y > 0]; the kernel writes it as
torch's ``threshold_backward`` does (``y <= 0 ? 0 : dy``). Saving y rather than x
lets a following op share the same buffer. Inside Linear layers ReLU is fused into
the matmul instead (``tritongrad.ops.matmul.linear_relu``).
"""

from __future__ import annotations

from ..autograd.function import Function
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


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise (NaN stays NaN)."""
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
