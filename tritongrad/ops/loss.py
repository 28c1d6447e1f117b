"""Losses: mean squared error, fused softmax cross-entropy, and linear + cross-entropy.

Cross-entropy computes the logits gradient in its forward pass (one read of the
logits, see ``kernels/cross_entropy.py``); its backward is one scaling launch.

``CHECK_LABELS`` (default True): cross-entropy checks labels on the device and
the host reads the result flag once per forward (a sync) to raise
``OutOfRangeError("Target 10 is out of bounds.")``. Set
``tritongrad.ops.loss.CHECK_LABELS = False`` when benchmarking to drop that sync;
a bad label then gives a NaN loss for its row instead of an error. The same switch
turns off every such read: nll_loss's labels and F.embedding's indices (a NaN row) too.
"""

from __future__ import annotations

import torch

from ..autograd import is_implicit_seed
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..kernels import cross_entropy as ce
from ..kernels._checks import DTypeError, ShapeError, UnsupportedError
from ..kernels._launch import cdiv
from ..kernels.copy import copy as copy_kernel
from ..kernels.mse import l1_bwd, l1_fwd, mse_bwd, mse_fwd
from ..tensor import Tensor
from .matmul import mm

CHECK_LABELS = True

# Rows per chunk in linear_cross_entropy; None picks about N*H/C rows, so a chunk of
# logits takes about as much memory as the hidden states. Tests set it to force chunking.
LINEAR_CE_CHUNK_ROWS: int | None = None


def _tensor(value, name: str, op: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, torch.Tensor):
        from ..creation import from_torch

        return from_torch(value)
    raise DTypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """torch's mapping of the deprecated size_average/reduce flags onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _wrap(data: torch.Tensor | None) -> Tensor | None:
    return None if data is None else Tensor._wrap(data)


def _pointwise_loss_forward(ctx, launcher, input: Tensor, target: Tensor,
                            reduction: str) -> Tensor:
    """MSE and L1 share kernels (kernels/mse.py): save both inputs, launch the forward."""
    ctx.reduction = reduction
    ctx.save_for_backward(input, target)
    return Tensor._wrap(launcher(input._data, target._data, reduction))


def _pointwise_loss_backward(ctx, launcher, grad: Tensor):
    """Both gradients from one launch of ``launcher``, skipping what nobody needs."""
    input, target = ctx.saved_tensors
    grad_input, grad_target = launcher(grad._data, input._data, target._data, ctx.reduction,
                                       need_input=ctx.needs_input_grad[0],
                                       need_target=ctx.needs_input_grad[1])
    return _wrap(grad_input), _wrap(grad_target), None


class MSELoss(Function):
    """loss = reduce((input - target)^2). With d = input - target and s = 1/N for
    'mean' (1 for 'sum'): dloss/dinput = 2 s d * grad, dloss/dtarget = -dloss/dinput
    ('none': grad is per element). Both gradients come from one kernel."""

    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        return _pointwise_loss_forward(ctx, mse_fwd, input, target, reduction)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _pointwise_loss_backward(ctx, mse_bwd, grad)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Mean squared error, as ``torch.nn.functional.mse_loss``, with torch's arguments in
    torch's order (shapes must match exactly)."""
    input = _tensor(input, "input", "mse_loss")
    target = _tensor(target, "target", "mse_loss")
    return MSELoss.apply(input, target, legacy_reduction(size_average, reduce, reduction))


class L1Loss(Function):
    """loss = reduce(|input - target|). With d = input - target and s = 1/N for 'mean'
    (1 for 'sum'): dloss/dinput = s sgn(d) * grad (0 where d == 0, as torch),
    dloss/dtarget = -dloss/dinput. The MSE kernels with their L1 mode."""

    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        return _pointwise_loss_forward(ctx, l1_fwd, input, target, reduction)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _pointwise_loss_backward(ctx, l1_bwd, grad)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    """Mean absolute error, as ``torch.nn.functional.l1_loss`` (shapes must match exactly)."""
    input = _tensor(input, "input", "l1_loss")
    target = _tensor(target, "target", "l1_loss")
    return L1Loss.apply(input, target, legacy_reduction(size_average, reduce, reduction))


class CrossEntropy(Function):
    """Softmax cross-entropy of (N, C) logits against (N,) int64 labels.

    loss_r = (1-eps)(lse_r - x_{r,t_r}) + eps (lse_r - mean_c x_{r,c}), 0 on ignored rows;
    dloss_r/dx_{r,c} = softmax(x_r)_c - (1-eps)[c == t_r] - eps/C. The forward kernel
    writes that gradient into a buffer private to the node, already divided by n_valid for
    'mean' (a count kernel runs first), so for 'mean' and 'sum' it is d loss / d logits.
    Backward multiplies it by grad (grad[r] per row for 'none') into a new buffer, so
    retain_graph works; when grad is backward()'s own implicit one and the graph is being
    freed, backward returns the buffer itself: the gradient costs no launch at all.

    fp16 logits keep the undivided gradient and divide in backward: p / n_valid falls
    below fp16's smallest normal (6e-5) for common N and C, and a loss-scaled backward
    ((loss * S).backward(), the usual fp16 recipe) would then scale zeros and subnormals.
    bf16 has fp32's exponent range, so dividing first costs it nothing."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, ignore_index: int, reduction: str,
                label_smoothing: float, compute_grad: bool = True,
                weight: Tensor | None = None) -> Tensor:
        ctx.reduction = reduction
        ctx.prescaled = logits.dtype != torch.float16
        loss, grad_logits, n_valid = ce.cross_entropy_fwd(
            logits._data, target._data, ignore_index, reduction, label_smoothing,
            compute_grad=compute_grad, check_labels=CHECK_LABELS, prescale=ctx.prescaled,
            weight=None if weight is None else weight._data)
        if compute_grad:
            ctx.save_private(Tensor._wrap(grad_logits),
                             None if ctx.prescaled or n_valid is None else _wrap(n_valid))
        return Tensor._wrap(loss)

    @staticmethod
    def backward(ctx, grad: Tensor):
        none = (None,) * 6
        if ctx.reduction != "none" and ctx.prescaled and is_implicit_seed(grad):
            given = ctx.take_private(0)  # d loss / d logits itself, times one
            if given is not None:
                return (given,) + none
        grad_logits, n_valid = ctx.private_tensors
        mode = ctx.reduction
        if ctx.prescaled and mode != "none":
            mode = "sum"  # the buffer is d loss / d logits: scale by grad alone
        scaled = ce.cross_entropy_bwd(grad._data, grad_logits._data,
                                      None if n_valid is None else n_valid._data, mode)
        return (Tensor._wrap(scaled),) + none


def cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """``torch.nn.functional.cross_entropy`` for (N, C) logits and (N,) int64 class labels,
    with torch's arguments in torch's order (``size_average``/``reduce`` are torch's
    deprecated spellings of ``reduction``). ``weight``: (C,) class weights, a constant (no
    gradient flows to it, as in torch)."""
    logits = _tensor(logits, "logits", "cross_entropy")
    target = _tensor(target, "target", "cross_entropy")
    if weight is not None:
        weight = _tensor(weight, "weight", "cross_entropy")
        if weight.requires_grad:
            raise UnsupportedError("cross_entropy: the derivative for 'weight' is not "
                                   "implemented (as in torch); pass weight.detach()")
    reduction = legacy_reduction(size_average, reduce, reduction)
    # Only build the gradient buffer when a backward can happen.
    compute_grad = logits.requires_grad and is_grad_enabled()
    return CrossEntropy.apply(logits, target, int(ignore_index), reduction,
                              float(label_smoothing), compute_grad, weight)


class LinearCrossEntropy(Function):
    """cross_entropy(hidden @ weight.T + bias, target) without ever holding the (N, C) logits.

    Rows go in chunks. Per chunk: logits = h W^T + b (matmul), the cross-entropy kernel
    gives the row losses and G = dloss/dlogits (unscaled), then at once
      dh = G W            (logits = h W^T  ->  dlogits/dh contracts over C)
      dW += G^T h         (summed over every chunk's rows)
      db += sum_rows G    (row sums from the dW matmul, bias_grad_out)
    so forward leaves unscaled gradients and backward only scales them by grad / n_valid
    ('mean', with the global count of valid rows) or grad ('sum'). For 'none' the scale
    differs per row and comes only with backward, so backward recomputes each chunk's
    logits and G instead (forward then computes losses only)."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None,
                ignore_index: int, reduction: str, label_smoothing: float,
                compute_grad: bool = True) -> Tensor:
        h, w, t = hidden._data, weight._data, target._data
        b = None if bias is None else bias._data
        _check_linear_ce(h, w, t, b, reduction)
        ctx.reduction, ctx.ignore_index, ctx.label_smoothing = reduction, ignore_index, \
            label_smoothing
        n_rows, n_cols = h.shape[0], w.shape[0]
        acc_dtype = ce.compute_dtype(h.dtype)  # fp32, fp64 for fp64
        row_dtype = h.dtype if reduction == "none" else acc_dtype
        row_loss = torch.empty((n_rows,), dtype=row_dtype, device=h.device)
        errors = ce.new_label_errors(h.device)
        needs = ctx.needs_input_grad
        need_hidden = compute_grad and needs[0]
        need_weight = compute_grad and needs[1]
        need_bias = compute_grad and bias is not None and needs[3]
        eager_grads = reduction != "none" and (need_hidden or need_weight or need_bias)
        grad_hidden = torch.empty(h.shape, dtype=h.dtype, device=h.device) \
            if eager_grads and need_hidden else None
        # Accumulated over chunks: kept in fp32 (fp64 for fp64), cast to the parameter dtype
        # when scaled.
        grad_weight = torch.zeros(w.shape, dtype=acc_dtype, device=h.device) \
            if eager_grads and (need_weight or need_bias) else None
        grad_bias = torch.zeros((n_cols,), dtype=acc_dtype, device=h.device) \
            if eager_grads and need_bias else None
        _chunked_pass(h, w, t, b, ignore_index, label_smoothing, errors, row_loss=row_loss,
                      grad_hidden=grad_hidden, grad_weight=grad_weight, grad_bias=grad_bias,
                      want_grad=eager_grads)
        if CHECK_LABELS and n_rows:
            ce.raise_on_label_errors(errors, t, n_cols, ignore_index)
        if reduction == "none":
            if compute_grad:
                ctx.save_for_backward(hidden, weight, target, bias)
            return Tensor._wrap(row_loss)
        loss, n_valid = ce.cross_entropy_reduce(row_loss, t, ignore_index, reduction, h.dtype)
        if eager_grads:
            ctx.save_for_backward(_wrap(grad_hidden), _wrap(grad_weight), _wrap(grad_bias),
                                  Tensor._wrap(n_valid))
            ctx.param_dtypes = (h.dtype, w.dtype, None if b is None else b.dtype)
        return Tensor._wrap(loss)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if ctx.reduction == "none":
            return LinearCrossEntropy._backward_none(ctx, grad)
        grad_hidden, grad_weight, grad_bias, n_valid = ctx.saved_tensors
        needs = ctx.needs_input_grad
        hidden_dtype, weight_dtype, bias_dtype = ctx.param_dtypes

        def scaled(unscaled: Tensor | None, want: bool, dtype):
            if unscaled is None or not want:
                return None
            return Tensor._wrap(ce.cross_entropy_bwd(grad._data, unscaled._data, n_valid._data,
                                                     ctx.reduction, out_dtype=dtype))

        return (scaled(grad_hidden, needs[0], hidden_dtype),
                scaled(grad_weight, needs[1], weight_dtype), None,
                scaled(grad_bias, len(needs) > 3 and needs[3], bias_dtype),
                None, None, None, None)

    @staticmethod
    def _backward_none(ctx, grad: Tensor):
        hidden, weight, target, bias = ctx.saved_tensors
        h, w, t = hidden._data, weight._data, target._data
        b = None if bias is None else bias._data
        needs = ctx.needs_input_grad
        need_bias = b is not None and needs[3]
        grad_hidden = torch.empty(h.shape, dtype=h.dtype, device=h.device) if needs[0] else None
        acc_dtype = ce.compute_dtype(h.dtype)
        grad_weight = torch.zeros(w.shape, dtype=acc_dtype, device=h.device) \
            if needs[1] or need_bias else None
        grad_bias = torch.zeros((w.shape[0],), dtype=acc_dtype, device=h.device) \
            if need_bias else None
        # Labels were checked in forward.
        _chunked_pass(h, w, t, b, ctx.ignore_index, ctx.label_smoothing,
                      ce.new_label_errors(h.device), row_loss=None, grad_hidden=grad_hidden,
                      grad_weight=grad_weight, grad_bias=grad_bias, want_grad=True,
                      row_scale=grad._data)
        return (_wrap(grad_hidden),
                _wrap(copy_kernel(grad_weight, w.dtype)) if needs[1] else None, None,
                _wrap(copy_kernel(grad_bias, b.dtype)) if need_bias else None,
                None, None, None, None)


def _check_linear_ce(h, w, t, b, reduction) -> None:
    op = "linear_cross_entropy"
    if reduction not in ce.REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; "
                         f"expected one of {ce.REDUCTIONS}")
    if h.dim() != 2 or w.dim() != 2:
        raise ShapeError(f"{op}: hidden must be (N, H) and weight (C, H), got "
                         f"{tuple(h.shape)} and {tuple(w.shape)}")
    if h.shape[1] != w.shape[1]:
        raise ShapeError(f"{op}: hidden {tuple(h.shape)} and weight {tuple(w.shape)} need the "
                         f"same hidden size (last dim)")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ShapeError(f"{op}: bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
    ce.check_target(h, t)  # dtype and batch size, before any launch


def _chunk_rows(n_rows: int, n_cols: int, hidden_size: int) -> int:
    if LINEAR_CE_CHUNK_ROWS is not None:
        return max(1, LINEAR_CE_CHUNK_ROWS)
    return max(1, min(n_rows, cdiv(n_rows, cdiv(n_cols, max(hidden_size, 1)))))


def _chunked_pass(h, w, t, b, ignore_index, label_smoothing, errors, *, row_loss, grad_hidden,
                  grad_weight, grad_bias, want_grad, row_scale=None) -> None:
    """One pass over row chunks: logits, row losses (into row_loss when given) and, when
    want_grad, the chunk's G (times row_scale[r] per row when given) pushed into
    grad_hidden (written), grad_weight and grad_bias (accumulated)."""
    n_rows, n_cols = h.shape[0], w.shape[0]
    chunk = _chunk_rows(n_rows, n_cols, h.shape[1])
    weight_t = w.T  # a view: matmul reads strides
    scratch_loss = torch.empty((min(chunk, n_rows),), dtype=ce.compute_dtype(h.dtype),
                               device=h.device) if row_loss is None else None
    grad_buffer = torch.empty((min(chunk, n_rows), n_cols), dtype=h.dtype, device=h.device) \
        if want_grad else None
    for start in range(0, n_rows, chunk):
        end = min(start + chunk, n_rows)
        h_chunk, t_chunk = h[start:end], t[start:end]
        logits = mm(h_chunk, weight_t, bias=b)
        grad_chunk = grad_buffer[: end - start] if want_grad else None
        losses = row_loss[start:end] if row_loss is not None else scratch_loss[: end - start]
        ce.cross_entropy_rows(logits, t_chunk, losses, grad_chunk, errors, ignore_index,
                              label_smoothing)
        if not want_grad:
            continue
        if row_scale is not None:  # 'none': dloss/dlogits_r = grad[r] * G_r
            grad_chunk = ce.cross_entropy_bwd(row_scale[start:end], grad_chunk, None, "none")
        if grad_hidden is not None:
            mm(grad_chunk, w, out=grad_hidden[start:end])
        if grad_weight is not None:
            mm(grad_chunk.T, h_chunk, out=grad_weight, accumulate=True,
                   bias_grad_out=grad_bias)


def linear_cross_entropy(hidden: Tensor, weight: Tensor, target: Tensor,
                         bias: Tensor | None = None, ignore_index: int = -100,
                         reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """cross_entropy(hidden @ weight.T + bias, target) with the (N, C) logits computed
    chunk by chunk and never stored whole. hidden (N, H), weight (C, H), bias (C,),
    target (N,) int64. Gradients equal the unfused path's."""
    op = "linear_cross_entropy"
    hidden = _tensor(hidden, "hidden", op)
    weight = _tensor(weight, "weight", op)
    target = _tensor(target, "target", op)
    bias = None if bias is None else _tensor(bias, "bias", op)
    compute_grad = is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (hidden, weight, bias))
    return LinearCrossEntropy.apply(hidden, weight, target, bias, int(ignore_index), reduction,
                                    float(label_smoothing), compute_grad)
