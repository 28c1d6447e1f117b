"""Layer normalization over the trailing ``normalized_shape`` dims, as torch's
``F.layer_norm``: y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased
variance. ``kernels/layer_norm.py`` derives the backward:
dx = rstd (g - mean(g) - x_hat mean(g x_hat)) with g = dy * weight, dweight = sum over rows
of dy * x_hat, dbias = sum over rows of dy (deterministic: no atomics)."""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels.layer_norm import layer_norm_bwd, layer_norm_fwd, normalized_shape_tuple
from ..tensor import Tensor


def _data(t: Tensor | None):
    return None if t is None else t._data


class LayerNorm(Function):
    """y = layer_norm(x) over the last ``len(normalized_shape)`` dims of x; forward saves x,
    weight and the per-row mean and rstd (fp32; fp64 for fp64)."""

    @staticmethod
    def forward(ctx, x: Tensor, normalized_shape: tuple, weight: Tensor | None = None,
                bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
        y, mean, rstd = layer_norm_fwd(x._data, normalized_shape, _data(weight), _data(bias),
                                       eps)
        ctx.normalized_shape = normalized_shape
        ctx.bias = None if bias is None else bias._data  # read for its dtype only
        ctx.save_for_backward(x, weight)
        ctx.save_private(Tensor._wrap(mean), Tensor._wrap(rstd))  # ours: nobody writes them
        return Tensor._wrap(y)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        mean, rstd = ctx.private_tensors
        need_x, _, need_w, need_b, _ = ctx.needs_input_grad
        dx, dw, db = layer_norm_bwd(grad_out._data, x._data, mean._data, rstd._data,
                                    ctx.normalized_shape, _data(weight), ctx.bias,
                                    need_input=need_x, need_weight=need_w, need_bias=need_b)
        wrap = [None if t is None else Tensor._wrap(t) for t in (dx, dw, db)]
        return wrap[0], None, wrap[1], wrap[2], None


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims of x, then scale by ``weight``
    and shift by ``bias`` (each optional, of shape ``normalized_shape``), as
    ``torch.nn.functional.layer_norm``. An int ``normalized_shape`` means one dim."""
    return LayerNorm.apply(x, normalized_shape_tuple(normalized_shape), weight, bias,
                           float(eps))
