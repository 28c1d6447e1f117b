"""Matrix products: ``matmul``, ``linear`` and the fused ``linear_relu``.

All three run on the one matmul kernel (``tritongrad.kernels.matmul``). Backward
passes hand it transposed *views* (``b.transpose(-1, -2)``), which it reads
through their strides, so no operand is copied to be transposed.

VJPs, for C = A B (per batch) with upstream gradient dC:
    dA = dC B^T        dB = A^T dC
A 2-D operand broadcast over a batch fed every batch, so its gradient is the sum of
the per-batch terms:
    B broadcast (3-D A):  dB = sum_b A[b]^T dC[b] = A_rows^T dC_rows, one 2-D product
                          with the batch folded into the reduction (K' = batch * M);
    A broadcast (3-D B):  dA = sum_b dC[b] B[b]^T = dC_(M, B*N) B_(B*N, K), again one 2-D
                          product over the folded (batch, column) pairs (as torch does);
                          this needs dC laid out as (M, B, N), one copy kernel.
Summing per-batch products instead would round each one to fp16/bf16 first, and
drifted past the bf16 tolerance from torch at batch 3.

Linear, Y = X W^T + b (X: (R, in) after folding leading dims, W: (out, in)):
    dX = dY W      dW = dY^T X      db = sum_rows dY
and db comes out of the dW launch: the kernel's ``bias_grad_out`` writes the row
sums of its A operand, dY^T.

LinearReLU, H = relu(Z), Z = X W^T + b: dZ = dH * [H > 0] (H > 0 iff Z > 0), so
    dX = dZ W      dW = dZ^T X      db = sum_rows dZ
and dZ is never materialised: both matmuls load dH with ``a_relu_mask=H`` (the
transposed view H^T for dW), two launches in all, with no separate ReLU backward.
"""

from __future__ import annotations

import math

import torch

from .. import backends
from ..autograd.function import Function
from ..kernels import copy as copy_kernels
from ..kernels import reduction as reduction_kernels
from ..kernels._checks import ShapeError
from ..kernels.matmul import matmul as kernel_matmul
from ..tensor import Tensor


def mm(a: torch.Tensor, b: torch.Tensor, **options) -> torch.Tensor:
    """The matmul kernel, with TF32 as ``tg.backends.matmul.allow_tf32`` says now."""
    return kernel_matmul(a, b, allow_tf32=backends.matmul.allow_tf32, **options)


def _view_or_copy(t: torch.Tensor, shape: tuple) -> torch.Tensor:
    """``t.view(shape)`` when t's strides allow it, else a contiguous copy (one copy
    kernel) viewed as ``shape``: a 3-D input whose batch and row strides do not line
    up, for example."""
    try:
        return t.view(shape)
    except RuntimeError:
        return copy_kernels.copy(t).view(shape)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(*, F) -> (R, F), folding every leading dim into rows."""
    return t if t.dim() == 2 else _view_or_copy(t, (math.prod(t.shape[:-1]), t.shape[-1]))


class MatMul(Function):
    """C = A @ B for 2-D and batched 3-D operands (a 2-D one broadcasts)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return Tensor._wrap(mm(a._data, b._data))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        a_data, b_data, grad = a._data, b._data, grad_out._data
        grad_a = grad_b = None
        if need_a:
            if a_data.dim() == 2 and b_data.dim() == 3:
                # A was broadcast: sum_b dC[b] B[b]^T, one product over (batch, column) pairs
                batch, rows, cols = grad.shape
                grad_mbn = _view_or_copy(grad.permute(1, 0, 2), (rows, batch * cols))
                grad_a = mm(grad_mbn, _rows(b_data.transpose(-1, -2)))
            else:
                grad_a = mm(grad, b_data.transpose(-1, -2))  # dA = dC B^T
            grad_a = Tensor._wrap(grad_a)
        if need_b:
            if b_data.dim() == 2 and a_data.dim() == 3:
                # B was broadcast: sum_b A[b]^T dC[b], one product over the folded rows
                grad_b = mm(_rows(a_data).T, _rows(grad))
            else:
                grad_b = mm(a_data.transpose(-1, -2), grad)  # dB = A^T dC
            grad_b = Tensor._wrap(grad_b)
        return grad_a, grad_b


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b``: (M, K) or (B, M, K) times (K, N) or (B, K, N)."""
    return MatMul.apply(a, b)


def _check_linear(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if weight.dim() != 2:
        raise ShapeError(f"{op}: weight must be 2-D (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"{op}: expected input with {weight.shape[1]} features (weight of shape "
            f"{tuple(weight.shape)}), got input of shape {tuple(x.shape)} with "
            f"{x.shape[-1] if x.dim() else 0} features"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ShapeError(f"{op}: expected bias of shape ({weight.shape[0]},), got "
                         f"{tuple(bias.shape)}")


class Linear(Function):
    """y = x W^T + b over the last dim of x (any number of leading dims)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        _check_linear("linear", x, weight, bias)
        rows = _rows(x._data)
        out = mm(rows, weight._data.T, bias=None if bias is None else bias._data)
        ctx.save_for_backward(Tensor._wrap(rows), weight)
        ctx.x_shape = tuple(x.shape)
        return Tensor._wrap(out.view(*x.shape[:-1], weight.shape[0]))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        rows, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad = _rows(grad_out._data)  # dY: (R, out)
        w = weight._data
        grad_x = grad_w = grad_b = None
        if need_b:
            grad_b = torch.empty(w.shape[0], dtype=w.dtype, device=w.device)
        if need_w:  # dW = dY^T X, and db = row sums of dY^T in the same launch
            grad_w = Tensor._wrap(mm(grad.T, rows._data, bias_grad_out=grad_b))
        elif need_b:
            grad_b = reduction_kernels.sum(grad, 0)
        if need_x:  # dX = dY W
            grad_x = Tensor._wrap(mm(grad, w).view(ctx.x_shape))
        return grad_x, grad_w, None if grad_b is None else Tensor._wrap(grad_b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``, weight of shape (out_features, in_features) as in torch."""
    return Linear.apply(x, weight, bias)


class LinearReLU(Function):
    """h = relu(x W^T + b) in one launch; its backward is two launches (see module doc)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        _check_linear("linear_relu", x, weight, bias)
        rows = _rows(x._data)
        hidden = mm(rows, weight._data.T, bias=None if bias is None else bias._data, relu=True)
        ctx.save_for_backward(Tensor._wrap(rows), weight, Tensor._wrap(hidden))
        ctx.x_shape = tuple(x.shape)
        return Tensor._wrap(hidden.view(*x.shape[:-1], weight.shape[0]))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        rows, weight, hidden = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad = _rows(grad_out._data)  # dH: (R, out); dZ = dH * [H > 0] is never stored
        h, x_rows, w = hidden._data, rows._data, weight._data
        grad_x = grad_w = grad_b = None
        if need_b:
            grad_b = torch.empty(w.shape[0], dtype=w.dtype, device=w.device)
        if need_w:  # dW = dZ^T X and db = row sums of dZ^T, one launch
            grad_w = Tensor._wrap(mm(grad.T, x_rows, a_relu_mask=h.T, bias_grad_out=grad_b))
        elif need_b:
            # only db: the same kernel over zero columns computes just the masked row sums
            mm(grad.T, x_rows[:, :0], a_relu_mask=h.T, bias_grad_out=grad_b)
        if need_x:  # dX = dZ W
            grad_x = Tensor._wrap(mm(grad, w, a_relu_mask=h).view(ctx.x_shape))
        return grad_x, grad_w, None if grad_b is None else Tensor._wrap(grad_b)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``relu(x @ weight.T + bias)`` fused: one forward launch, two backward launches."""
    return LinearReLU.apply(x, weight, bias)
