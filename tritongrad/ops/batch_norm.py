"""Batch normalization over the channel dim of (N, C) and (N, C, *) inputs, as torch's
``F.batch_norm``: training normalizes with the batch's mean and biased variance and updates
running_mean / running_var in place (running_var with the unbiased variance); eval uses the
running statistics. ``kernels/batch_norm.py`` derives the backward:
dx = (w rstd / M) (M g - sum(g) - x_hat sum(g x_hat)) in training, w rstd g in eval;
dweight = sum(g x_hat), dbias = sum(g) (deterministic: no atomics)."""

from __future__ import annotations

import numbers

from ..autograd.function import Function
from ..kernels.batch_norm import batch_norm_bwd, batch_norm_fwd
from ..tensor import Tensor


def _data(t: Tensor | None):
    return None if t is None else t._data


def _wrap(t):
    return None if t is None else Tensor._wrap(t)


class BatchNorm(Function):
    """y = batch_norm(x, ...); training saves x, weight and the batch's mean and variance
    (fp32; fp64 for fp64), eval saves x, weight and the running statistics (a change to
    them in place before backward is an error, as torch)."""

    @staticmethod
    def forward(ctx, x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
                eps: float) -> Tensor:
        y, mean, var = batch_norm_fwd(x._data, _data(running_mean), _data(running_var),
                                      _data(weight), _data(bias), training, momentum, eps)
        if training and running_mean is not None and x.numel() > 0:  # written in place
            running_mean._bump_version()
            running_var._bump_version()
        ctx.training, ctx.eps = training, eps
        ctx.bias = _data(bias)  # read for its dtype only
        if training:
            ctx.save_for_backward(x, weight)
            ctx.save_private(Tensor._wrap(mean), Tensor._wrap(var))  # ours: nobody writes them
        else:
            ctx.save_for_backward(x, weight, running_mean, running_var)
        return Tensor._wrap(y)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if ctx.training:
            x, weight = ctx.saved_tensors
            mean, var = ctx.private_tensors
        else:
            x, weight, mean, var = ctx.saved_tensors
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        dx, dw, db = batch_norm_bwd(grad_out._data, x._data, mean._data, var._data,
                                    _data(weight), ctx.bias, ctx.training, ctx.eps,
                                    need_input=need_x, need_weight=need_w, need_bias=need_b)
        return _wrap(dx), None, None, _wrap(dw), _wrap(db), None, None, None


def _check_tensor_arg(name: str, value, optional: bool = True) -> None:
    if (value is None and optional) or isinstance(value, Tensor):
        return
    raise TypeError(f"batch_norm(): argument '{name}' must be Tensor, not "
                    f"{type(value).__name__}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) of ``input`` (N, C, *), then scale by ``weight`` and
    shift by ``bias`` (each optional, (C,)), as ``torch.nn.functional.batch_norm``. In
    training the batch's statistics normalize, and running_mean / running_var (when given)
    move towards them by ``momentum`` in place; in eval the running statistics normalize."""
    _check_tensor_arg("input", input, optional=False)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _check_tensor_arg(name, value)
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"batch_norm(): argument 'momentum' must be float, not "
                        f"{type(momentum).__name__}")
    # torch's F.batch_norm's eps checks (torch checks the batch size first; the kernels
    # check it here, after these)
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    return BatchNorm.apply(input, running_mean, running_var, weight, bias, bool(training),
                           float(momentum), float(eps))
