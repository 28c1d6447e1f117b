"""Differentiable vector norms: ``norm`` (p = 2 or inf, over all elements or one dim) and
``clip_norm`` (rescale x so that its 2-norm is at most max_norm). The backward derivations
sit above the kernels in ``tritongrad/kernels/norm.py``."""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels import norm as norm_kernels
from ..tensor import Tensor


class Norm(Function):
    """n = ||x||_p; dn/dx = x / n for p = 2 (0 at n = 0), and for p = inf the gradient is
    split equally among the elements of largest |x| (torch's rule)."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float, dim: int | None, keepdim: bool) -> Tensor:
        out = Tensor._wrap(norm_kernels.norm_fwd(x._data, p, dim, keepdim))
        ctx.save_for_backward(x, out)
        ctx.p, ctx.dim, ctx.keepdim = p, dim, keepdim
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, out = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = Tensor._wrap(norm_kernels.norm_bwd(grad_out._data, x._data, out._data,
                                                        ctx.p, ctx.dim, ctx.keepdim))
        return grad_x, None, None, None


class ClipNorm(Function):
    """y = x * min(1, max_norm / ||x||_2): gx = g where ||x|| <= max_norm, else
    (c/n)(g - x (x.g)/n^2)."""

    @staticmethod
    def forward(ctx, x: Tensor, max_norm: float, dim: int | None) -> Tensor:
        y, norms = norm_kernels.clip_norm_fwd(x._data, max_norm, dim)
        ctx.save_for_backward(x)
        ctx.norms = norms  # fp32, private to this node: nobody else can write it
        ctx.max_norm, ctx.dim = max_norm, dim
        return Tensor._wrap(y)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (x,) = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = Tensor._wrap(norm_kernels.clip_norm_bwd(grad_y._data, x._data, ctx.norms,
                                                             ctx.max_norm, ctx.dim))
        return grad_x, None, None


def norm(x: Tensor, p=2, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """The p-norm of x (p = 2, 'fro' or inf) over all elements (dim None) or along ``dim``,
    as torch.linalg.vector_norm; the result has x's dtype."""
    return Norm.apply(x, norm_kernels._norm_order(p), dim, bool(keepdim))


def clip_norm(x: Tensor, max_norm: float, dim: int | None = None) -> Tensor:
    """x scaled by min(1, max_norm / ||x||_2), over all of x (dim None) or per slice along
    ``dim``; a zero x is returned unchanged."""
    return ClipNorm.apply(x, float(max_norm), dim)
