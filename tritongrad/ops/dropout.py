"""Dropout: y = x * keep / (1 - p), keep_i = (U_i >= p) with U_i from the Philox generator.

The mask is never stored. ``seed_offset`` (a device int64 ``[seed, offset]``) names it:
value i uses Philox(seed, offset + i), so forward and backward regenerate the same mask
from those two numbers (``kernels/random.py``). The Function is therefore a pure
function of ``(x, p, seed_offset)``: the same three inputs always give the same output,
which the torch reference (``testing/ref_nn.py``) relies on.

VJP: y_i = x_i * keep_i * s with s = 1/(1-p) is linear in x_i, so
    grad_x_i = grad_y_i * keep_i * s
the same kernel applied to the incoming gradient with the same mask. For p = 1 every
element is dropped (s is taken as 0: y = 0 and grad_x = 0, as torch).
"""

from __future__ import annotations

import torch

from ..autograd.function import Function
from ..kernels import random as random_kernels
from ..random import rng_state_tensor
from ..tensor import Tensor


class Dropout(Function):
    """y = x * mask(seed_offset) / (1 - p); backward reuses the mask of ``seed_offset``."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float, seed_offset: torch.Tensor | Tensor,
                precomputed: torch.Tensor | None = None) -> Tensor:
        # ``precomputed``: y already produced by dropout_fwd (the functional draws the
        # mask and applies it in one launch); otherwise apply the mask of seed_offset.
        if isinstance(seed_offset, Tensor):  # the parity tools pass every tensor as a Tensor
            seed_offset = seed_offset._data
        ctx.p, ctx.seed_offset = p, seed_offset
        if precomputed is not None:
            return Tensor._wrap(precomputed)
        # dropout_bwd is "apply the mask of seed_offset, scaled": exactly the forward too.
        return Tensor._wrap(random_kernels.dropout_bwd(x._data, p, seed_offset))

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = Tensor._wrap(random_kernels.dropout_bwd(grad._data, ctx.p, ctx.seed_offset))
        return grad_x, None, None, None


def check_dropout_p(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.dropout``: in training, zero each element with probability
    ``p`` and scale the rest by 1/(1-p); otherwise return ``x`` unchanged.

    The mask comes from the global generator (``tg.manual_seed``, ``tg.get_rng_state``),
    which advances by ``x.numel()``. ``inplace`` is accepted for torch compatibility
    and ignored: the result is always a new tensor."""
    p = check_dropout_p(p)
    if not training:
        return x
    # One launch draws the mask, applies it and snapshots the [seed, offset] it used;
    # a second advances the generator. The snapshot is all backward needs.
    y, seed_offset = random_kernels.dropout_fwd(x._data, p, rng_state_tensor())
    return Dropout.apply(x, p, seed_offset, precomputed=y)
