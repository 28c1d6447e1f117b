"""Activations: ReLU.

relu(x) = max(x, 0) with NaN kept (as torch.relu). Its VJP uses only the output:
d relu(x)/dx = [x > 0] = [y > 0], so dx = dy * [y > 0]; the kernel writes it as
torch's ``threshold_backward`` does (``y <= 0 ? 0 : dy``). Saving y rather than x
lets a following op share the same buffer. Inside Linear layers ReLU is fused into
the matmul instead (``tritongrad.ops.matmul.linear_relu``).
"""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels.relu import relu_bwd, relu_fwd
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
