"""Negative log-likelihood loss (``kernels/nll.py``): torch's ``F.nll_loss`` on (N, C)
log-probabilities and (N,) int64 class labels."""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels import nll
from ..kernels._checks import ShapeError, UnsupportedError
from ..tensor import Tensor
from . import loss as _loss
from .loss import _tensor, _wrap, legacy_reduction

OP = nll.OP


class NLLLoss(Function):
    """loss_r = -w_{t_r} input[r, t_r] (0 on ignored rows), reduced by mean (over the valid
    rows' summed target weights W) / sum / none. d loss / d input[r, c] = -w_{t_r} g
    (g / W for 'mean', g_r for 'none') at c == t_r and 0 elsewhere (derivation in
    kernels/nll.py). Forward reads one element per row and needs nothing saved but the
    labels, the weights and W; backward writes the (N, C) gradient in one launch.
    weight is a constant."""

    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                reduction: str) -> Tensor:
        loss, divisor = nll.nll_fwd(input._data, target._data,
                                    None if weight is None else weight._data, ignore_index,
                                    reduction, check_labels=_loss.CHECK_LABELS)
        ctx.reduction, ctx.ignore_index = reduction, ignore_index
        ctx.n_cols, ctx.input_dtype = input.shape[1], input.dtype
        ctx.save_for_backward(target, weight, _wrap(divisor))
        return Tensor._wrap(loss)

    @staticmethod
    def backward(ctx, grad: Tensor):
        none = (None,) * 4
        if not ctx.needs_input_grad[0]:
            return (None,) + none
        target, weight, divisor = ctx.saved_tensors
        grad_input = nll.nll_bwd(grad._data, target._data,
                                 None if weight is None else weight._data,
                                 None if divisor is None else divisor._data, ctx.n_cols,
                                 ctx.ignore_index, ctx.reduction, out_dtype=ctx.input_dtype)
        return (Tensor._wrap(grad_input),) + none


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """``torch.nn.functional.nll_loss`` for (N, C) input (log-probabilities, e.g. from
    ``log_softmax``) and (N,) int64 class labels (or torch's unbatched (C,) input with a 0-d
    label: a 0-d loss), with torch's arguments in torch's order
    (``size_average``/``reduce`` are torch's deprecated spellings of ``reduction``).
    ``weight``: (C,) class weights, a constant (no gradient flows to it, as in torch)."""
    input = _tensor(input, "input", OP)
    target = _tensor(target, "target", OP)
    if weight is not None:
        weight = _tensor(weight, "weight", OP)
        if weight.requires_grad:
            raise UnsupportedError(f"{OP}: the derivative for 'weight' is not implemented "
                                   f"(as in torch); pass weight.detach()")
    reduction = legacy_reduction(size_average, reduce, reduction)
    if input.ndim == 1 and target.ndim <= 1:
        # torch's unbatched form: (C,) input with a 0-d (or (1,)) target is one row, and the
        # loss is 0-d for every reduction. Views, so the gradient flows back to (C,).
        if target.ndim == 1 and target.shape[0] != 1:
            raise ShapeError(f"{OP}: For 1D input, 1D target must have size 1, but got "
                             f"target size: {target.shape[0]}")
        loss = NLLLoss.apply(input.reshape(1, input.shape[0]), target.reshape(1), weight,
                             int(ignore_index), reduction)
        return loss.reshape(()) if reduction == "none" else loss
    return NLLLoss.apply(input, target, weight, int(ignore_index), reduction)
