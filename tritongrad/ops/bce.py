"""Binary cross-entropy with logits (``kernels/bce.py``): the forward writes the loss and
the input and target gradients in one pass; backward is one scaling launch, or none."""

from __future__ import annotations

import torch

from ..autograd import is_implicit_seed
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..kernels import bce
from ..kernels._checks import UnsupportedError
from ..tensor import Tensor
from .loss import _tensor, _wrap, legacy_reduction

OP = bce.OP


class BCEWithLogits(Function):
    """loss_i = w_i [(1 - t_i) x_i + l_i sp(-x_i)], l_i = 1 + (p_i - 1) t_i, reduced by
    mean/sum/none (derivation in kernels/bce.py):
      d loss_i / d x_i = w_i [l_i sigma(x_i) - p_i t_i],
      d loss_i / d t_i = w_i [p_i sp(-x_i) - sp(x_i)].
    Forward writes both (each only when wanted) into buffers private to the node, already
    divided by N for 'mean' (fp16 excepted: 1/N pushes them into fp16's subnormals, as in
    CrossEntropy, so fp16 divides in backward). Backward multiplies them by grad; when grad
    is backward()'s own implicit one and the graph is being freed, it returns the buffers
    themselves. weight and pos_weight are constants."""

    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, weight: Tensor | None,
                pos_weight: Tensor | None, reduction: str, compute_grad: bool = True) -> Tensor:
        need_input = compute_grad and ctx.needs_input_grad[0]
        need_target = compute_grad and ctx.needs_input_grad[1]
        ctx.reduction = reduction
        ctx.prescaled = input.dtype != torch.float16
        loss, grad_input, grad_target = bce.bce_with_logits_fwd(
            input._data, target._data, None if weight is None else weight._data,
            None if pos_weight is None else pos_weight._data, reduction,
            need_input=need_input, need_target=need_target, prescale=ctx.prescaled)
        numel = input.numel()
        # What backward still multiplies by: 1/N of an undivided 'mean'.
        ctx.scale = 1.0 / numel if reduction == "mean" and not ctx.prescaled and numel else 1.0
        if need_input or need_target:
            ctx.save_private(_wrap(grad_input), _wrap(grad_target))
        return Tensor._wrap(loss)

    @staticmethod
    def backward(ctx, grad: Tensor):
        none = (None,) * 4
        if ctx.reduction != "none" and ctx.prescaled and is_implicit_seed(grad):
            # The buffers are d loss / d input and d loss / d target themselves.
            given = (ctx.take_private(0), ctx.take_private(1))
            if any(g is not None for g in given):
                return given + none
        grad_input, grad_target = ctx.private_tensors
        out_input, out_target = bce.bce_with_logits_bwd(
            grad._data, None if grad_input is None else grad_input._data,
            None if grad_target is None else grad_target._data, ctx.reduction, ctx.scale)
        return (_wrap(out_input), _wrap(out_target)) + none


def _constant(value, name: str) -> Tensor | None:
    if value is None:
        return None
    value = _tensor(value, name, OP)
    if value.requires_grad:
        raise UnsupportedError(f"{OP}: the derivative for '{name}' is not implemented; "
                               f"pass {name}.detach()")
    return value


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` with torch's arguments in
    torch's order: input and target of the same shape (target in [0, 1], soft labels fine,
    differentiable), ``weight`` broadcast to input, ``pos_weight`` (usually (C,)) broadcast
    over the last dim. ``size_average``/``reduce`` are torch's deprecated spellings of
    ``reduction``."""
    input = _tensor(input, "input", OP)
    target = _tensor(target, "target", OP)
    weight = _constant(weight, "weight")
    pos_weight = _constant(pos_weight, "pos_weight")
    reduction = legacy_reduction(size_average, reduce, reduction)
    compute_grad = is_grad_enabled() and (input.requires_grad or target.requires_grad)
    return BCEWithLogits.apply(input, target, weight, pos_weight, reduction, compute_grad)
