"""Fused softmax cross-entropy: loss and logits gradient in one pass over the logits.

For a row x (C logits), target class t and label smoothing eps:
  lse    = log sum_c exp(x_c)
  loss   = (1 - eps) * (lse - x_t) + eps * (lse - mean_c x_c)
This is torch's definition: the smoothed target distribution is
q = (1 - eps) * onehot(t) + eps / C, and loss = -sum_c q_c * log_softmax(x)_c.

Gradient (derived from the same form, with p = softmax(x) = exp(x - lse)):
  d lse / d x_c = p_c,  d x_t / d x_c = [c == t],  d mean(x) / d x_c = 1 / C
  d loss / d x_c = (1 - eps) * (p_c - [c == t]) + eps * (p_c - 1/C)
                 = p_c - (1 - eps) * [c == t] - eps / C
With class weights w (torch's ``weight``), as torch defines them:
  loss   = (1 - eps) * w_t * (lse - x_t) + (eps / C) * sum_c w_c * (lse - x_c)
  d loss / d x_c = p_c * ((1 - eps) * w_t + eps * sum_c' w_c' / C)
                   - (1 - eps) * w_t * [c == t] - (eps / C) * w_c
and 'mean' divides by the summed target weights of the valid rows instead of their count.
When that sum W is 0 torch divides anyway, and so do we. Its nll gradient on a valid row is
g_t = -w_t / W at the target (inf or NaN) and 0 elsewhere; log_softmax's backward then gives
g_c - p_c sum g = -p_c g_t off the target (+-inf, NaN when p_c w_t = 0) and g_t - p_t g_t =
inf - inf = NaN at it. Our form p_c w_t / W gives the same off the target, so the kernel
only writes the target's NaN. With smoothing, the smoothing term's -w_c eps / (C W) mixes
infinities of both signs, or NaN, into sum g: the whole valid row is NaN. Ignored rows keep
gradient 0, and the loss is sum / 0: +-inf, or NaN for 0 / 0. One difference: with
smoothing, torch divides its nll and smoothing sums separately, so its loss is NaN where
their signs differ (or the nll sum is 0); ours divides their total, +-inf.
The forward kernel writes this gradient into its own new buffer while the row is in
registers. Backward is then one scaling launch: by grad_output / n_valid ('mean':
d(sum_r loss_r / n_valid) / d loss_r = 1 / n_valid), by grad_output ('sum'), or by
grad_output[r] per row ('none'). With ``prescale`` ('mean'), a one-program kernel counts
n_valid first and the row kernel writes the gradient already divided by it, so that
when grad_output is known to be 1 (``loss.backward()`` on the loss itself) backward has
nothing left to do: the logits gradient costs one write, in the forward.

The row kernel keeps a running max m and running sum s of exp(x - m) over
column blocks (online softmax), so any C works; with C <= MAX_BLOCK_C the row
is one block and the logits are read once. Wider rows read the logits a second
time for the gradient pass; that read mostly hits L2, since the row was read
moments before. Rows whose target is ignore_index read nothing and get loss 0
and gradient 0.

Label range is a value check, so it runs on the device: the row kernel sets an
int32 flag for a label outside [0, C) that is not ignore_index;
``check_labels=True`` reads the flag (one host sync) and, only when it is set, runs
first_bad_label_kernel to name the first offending label in row order, as torch does,
and raises. Pass ``check_labels=False`` to keep the forward free of syncs when
benchmarking; a bad label then gives a NaN loss for its row (never an
out-of-bounds read).

Infinities and NaN follow torch: -inf on a non-target class is fine, -inf on
the target gives an inf loss, a row that is all -inf or holds a NaN (or +inf)
gives NaN. One difference: an ignored row holding a NaN or +inf gets gradient 0
here, where torch's log_softmax backward turns the whole row into NaN (its loss is
0 in both).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    DTypeError,
    LayoutError,
    OutOfRangeError,
    ShapeError,
    check_same_device,
    check_tensor,
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import contiguous
from .elementwise import scalar_like, upcast

OP = "cross_entropy"
# fp64 logits are computed in fp64 (gradcheck); the others in fp32.
LOGIT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
REDUCTIONS = ("mean", "sum", "none")
MODE_SUM, MODE_MEAN, MODE_NONE = 0, 1, 2
_MODES = {"sum": MODE_SUM, "mean": MODE_MEAN, "none": MODE_NONE}

# Widest column block. Measured on an H200 (perf/explore.py, 2026-11-28, N=8192, C=32768
# bf16, forward + backward): a whole row in registers (32768: 32 warps, one program per SM)
# 0.767 ms; blocks of 16384 / 8192 / 4096 / 2048: 0.858 / 0.719 / 0.708 / 0.720 ms. Eight
# small programs per SM hide memory latency better than one that reads its row once, and
# the second read comes from L2. Under the interpreter one block per row is fastest.
MAX_BLOCK_C = 32768 if interpreting() else 4096
REDUCE_BLOCK = 1024
SCALE_BLOCK = 2048


@triton.jit
def first_bad_label_kernel(
    label_ptr, target_ptr, n_rows, n_cols, ignore_index, stride_target, BLOCK: tl.constexpr,
):
    """label[0] = the first label, in row order, outside [0, n_cols) that is not
    ignore_index; one program, launched only once the flag says there is one.

    label_ptr: (1,) int64. target_ptr: (N,) int64 with stride stride_target.
    """
    offs = tl.arange(0, BLOCK).to(tl.int64)
    first = n_rows.to(tl.int64)
    for start in range(0, n_rows, BLOCK):
        rows = start + offs
        in_rows = rows < n_rows
        t = tl.load(target_ptr + rows * stride_target, mask=in_rows, other=0)
        bad = in_rows & (t != ignore_index) & ((t < 0) | (t >= n_cols))
        first = tl.minimum(first, tl.min(tl.where(bad, rows, n_rows), axis=0))
    first = tl.minimum(first, n_rows - 1)  # in bounds even if called with no bad row
    tl.store(label_ptr, tl.load(target_ptr + first * stride_target))


@triton.jit
def finish_grad(grad, cols, active, row_scale, nan_col, nan_all, HAS_WEIGHT: tl.constexpr):
    """A jit helper: a row's gradient block scaled by row_scale (0 on ignored rows); with
    HAS_WEIGHT, NaN at column nan_col, or everywhere when nan_all (a zero 'mean' divisor)."""
    grad = tl.where(active, grad * row_scale, 0.0)
    if HAS_WEIGHT:
        grad = tl.where(cols == nan_col, float("nan"), grad)
        grad = tl.where(nan_all, float("nan"), grad)
    return grad


@triton.jit
def cross_entropy_fwd_kernel(
    loss_ptr, grad_ptr, err_flag_ptr, logits_ptr, target_ptr, weight_ptr, n_valid_ptr,
    n_cols, ignore_index, label_smoothing: tl.float64,
    stride_logits_row, stride_logits_col, stride_grad_row, stride_target,
    BLOCK_C: tl.constexpr, SINGLE_BLOCK: tl.constexpr, COMPUTE_GRAD: tl.constexpr,
    HAS_SMOOTHING: tl.constexpr, READ_DIVISOR: tl.constexpr, PRESCALE: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
):
    """Per-row loss and (optionally) unscaled logits gradient; one program per row.

    loss_ptr: (N,) row losses, contiguous (the compute dtype, or the logits dtype for 'none').
    grad_ptr: (N, C) gradient, row stride stride_grad_row, column stride 1;
        written only when COMPUTE_GRAD (otherwise any pointer).
    err_flag_ptr: (1,) int32, set to 1 by a row whose label is out of range (which label
        is found on the error path only, by first_bad_label_kernel).
    logits_ptr: (N, C) fp32/fp16/bf16/fp64 with strides (stride_logits_row, stride_logits_col).
    target_ptr: (N,) int64 class indices with stride stride_target.
    weight_ptr: (C,) contiguous class weights, read when HAS_WEIGHT (otherwise any pointer).
    n_valid_ptr: 0-d count of non-ignored rows (int64), or with HAS_WEIGHT their summed
        target weights (the compute dtype): the 'mean' divisor, read when READ_DIVISOR.
        PRESCALE divides the gradient by it. A divisor of 0 is applied either way, as torch
        applies it (see the module docstring); a count of 0 means every row is ignored:
        gradient 0.
    n_cols: C. ignore_index: label whose row is skipped (may be negative).
    label_smoothing: eps in [0, 1], rounded to the compute dtype; HAS_SMOOTHING is eps > 0.
    BLOCK_C: column block (power of two); SINGLE_BLOCK: C <= BLOCK_C.
    Arithmetic is fp32 (fp64 for fp64 logits: gradcheck), the compute dtype.
    """
    row = tl.program_id(0).to(tl.int64)
    target = tl.load(target_ptr + row * stride_target)
    active = target != ignore_index
    in_range = (target >= 0) & (target < n_cols)
    bad = active & ((target < 0) | (target >= n_cols))
    tl.store(err_flag_ptr, 1, mask=bad)

    logits_row = logits_ptr + row * stride_logits_row
    grad_row = grad_ptr + row * stride_grad_row
    cols = tl.arange(0, BLOCK_C).to(tl.int64)  # column offsets of a column-major view pass 2**31
    # Ignored rows load nothing (all lanes masked; results zeroed below). A column
    # limit rather than `mask & active`: the interpreter rejects a block mask
    # combined with a scalar one.
    load_cols = tl.where(active, n_cols, 0)
    # An out-of-range label (only when the host skips the check) reads nothing: NaN loss.
    x_target = upcast(tl.load(logits_row + target * stride_logits_col, mask=active & in_range,
                              other=float("nan")))
    label_smoothing = scalar_like(label_smoothing, x_target)

    if SINGLE_BLOCK:
        col_mask = cols < n_cols
        x = upcast(tl.load(logits_row + cols * stride_logits_col, mask=cols < load_cols,
                           other=float("-inf")))
        row_max = tl.max(x, axis=0)
        # All -inf: shift by 0 so exp gives 0 (not exp(nan)); lse = -inf then gives NaN
        # loss as torch. A NaN or +inf makes the sum NaN, which reaches every output.
        shift = tl.where(row_max == float("-inf"), 0.0, row_max)
        sum_exp = tl.sum(tl.exp(x - shift), axis=0)
        if HAS_SMOOTHING:
            if HAS_WEIGHT:
                w = upcast(tl.load(weight_ptr + cols, mask=col_mask, other=0.0))
                sum_x = tl.sum(w * tl.where(col_mask, x, 0.0), axis=0)
                sum_w = tl.sum(w, axis=0)
            else:
                sum_x = tl.sum(tl.where(col_mask, x, 0.0), axis=0)
    else:
        running_max = tl.full((), float("-inf"), x_target.dtype)
        sum_exp = tl.zeros((), x_target.dtype)
        sum_x = tl.zeros((), x_target.dtype)  # sum_c x_c, or with HAS_WEIGHT sum_c w_c x_c
        sum_w = tl.zeros((), x_target.dtype)
        for start in range(0, n_cols, BLOCK_C):
            c = start + cols
            col_mask = c < n_cols
            x = upcast(tl.load(logits_row + c * stride_logits_col, mask=c < load_cols,
                               other=float("-inf")))
            new_max = tl.maximum(running_max, tl.max(x, axis=0))
            # sum_exp holds sum exp(x - old shift); rescale it to the new shift. While the
            # running max is still -inf, sum_exp is 0 (or NaN): rescale by exp(0) = 1, never
            # by exp(0 - shift), which overflows to inf for shift < -88 and makes 0 * inf = NaN.
            shift = tl.where(new_max == float("-inf"), 0.0, new_max)
            old_shift = tl.where(running_max == float("-inf"), shift, running_max)
            sum_exp = sum_exp * tl.exp(old_shift - shift) + tl.sum(tl.exp(x - shift), axis=0)
            running_max = new_max
            if HAS_SMOOTHING:
                if HAS_WEIGHT:
                    w = upcast(tl.load(weight_ptr + c, mask=col_mask, other=0.0))
                    sum_x += tl.sum(w * tl.where(col_mask, x, 0.0), axis=0)
                    sum_w += tl.sum(w, axis=0)
                else:
                    sum_x += tl.sum(tl.where(col_mask, x, 0.0), axis=0)
        shift = tl.where(running_max == float("-inf"), 0.0, running_max)
    # Ignored rows have sum_exp 0; log(1) keeps them quiet (their outputs are zeroed).
    lse = shift + tl.log(tl.where(active, sum_exp, 1.0))

    loss = lse - x_target
    if HAS_WEIGHT:
        # Weighted (torch): nll = w_t (lse - x_t); the smoothing term is
        # (1/C) sum_c w_c (lse - x_c) = (sum_w lse - sum_c w_c x_c) / C.
        w_target = upcast(tl.load(weight_ptr + target, mask=active & in_range, other=0.0))
        loss = w_target * loss
        if HAS_SMOOTHING:
            loss = (1.0 - label_smoothing) * loss \
                + label_smoothing * (sum_w * lse - sum_x) / n_cols
    elif HAS_SMOOTHING:
        # Gated by a constexpr: with eps == 0 a -inf logit would make 0 * inf = NaN.
        loss = (1.0 - label_smoothing) * loss + label_smoothing * (lse - sum_x / n_cols)
    loss = tl.where(active, loss, 0.0)
    tl.store(loss_ptr + row, cast_to(loss, loss_ptr.dtype.element_ty))

    if COMPUTE_GRAD:
        target_weight = 1.0 - label_smoothing
        uniform = label_smoothing / n_cols
        if HAS_WEIGHT:
            # d loss / d x_c = (1-eps) w_t (p_c - [c == t]) + (eps/C) (sum_w p_c - w_c)
            #               = p_c p_scale - (1-eps) w_t [c == t] - (eps/C) w_c
            target_weight = target_weight * w_target
            p_scale = target_weight
            if HAS_SMOOTHING:
                p_scale += uniform * sum_w
        row_scale = tl.where(active, 1.0, 0.0)
        nan_all = row < 0  # False: with a zero weighted divisor, the whole row is NaN
        nan_col = tl.full((), -1, tl.int64)  # ...or the target column only
        if READ_DIVISOR:
            n_valid = tl.load(n_valid_ptr).to(x_target.dtype)
            # != 0: summed class weights may be negative, as torch allows
            zero = n_valid == 0
            if PRESCALE:
                row_scale = row_scale / tl.where(zero, 1.0, n_valid)
            row_scale = tl.where(zero & active, float("inf"), row_scale)
            if HAS_SMOOTHING:
                nan_all = zero & active
            else:
                nan_col = tl.where(zero & active, target, -1)
        if SINGLE_BLOCK:
            # x is still in registers: the logits are read once.
            if HAS_WEIGHT:
                grad = tl.exp(x - lse) * p_scale - tl.where(cols == target, target_weight, 0.0)
                if HAS_SMOOTHING:
                    grad -= uniform * w
            else:
                grad = tl.exp(x - lse) - tl.where(cols == target, target_weight, 0.0) - uniform
            grad = finish_grad(grad, cols, active, row_scale, nan_col, nan_all, HAS_WEIGHT)
            tl.store(grad_row + cols, cast_to(grad, grad_ptr.dtype.element_ty), mask=col_mask)
        else:
            for start in range(0, n_cols, BLOCK_C):
                c = start + cols
                col_mask = c < n_cols
                x = upcast(tl.load(logits_row + c * stride_logits_col, mask=c < load_cols,
                                   other=float("-inf")))
                if HAS_WEIGHT:
                    grad = tl.exp(x - lse) * p_scale - tl.where(c == target, target_weight, 0.0)
                    if HAS_SMOOTHING:
                        w = upcast(tl.load(weight_ptr + c, mask=col_mask, other=0.0))
                        grad -= uniform * w
                else:
                    grad = tl.exp(x - lse) - tl.where(c == target, target_weight, 0.0) - uniform
                grad = finish_grad(grad, c, active, row_scale, nan_col, nan_all, HAS_WEIGHT)
                tl.store(grad_row + c, cast_to(grad, grad_ptr.dtype.element_ty), mask=col_mask)


@triton.jit
def valid_weight(targets, weights, idx, mask, n_cols, ignore_index, stride_target,
                 HAS_WEIGHT: tl.constexpr):
    """A jit helper: per row idx, 1 (int64) if its target is not ignore_index, else 0; with
    HAS_WEIGHT the target's class weight (fp32, fp64 for fp64 weights) instead of 1 (0 for
    an out-of-range label, which the label check reports)."""
    target = tl.load(targets + idx.to(tl.int64) * stride_target, mask=mask, other=0)
    valid = mask & (target != ignore_index)
    if HAS_WEIGHT:
        in_range = (target >= 0) & (target < n_cols)
        result = upcast(tl.load(weights + target, mask=valid & in_range, other=0.0))
    else:
        result = valid.to(tl.int64)
    return result


@triton.jit
def count_valid_kernel(
    n_valid_ptr, target_ptr, weight_ptr, n_rows, n_cols, ignore_index, stride_target,
    BLOCK: tl.constexpr, HAS_WEIGHT: tl.constexpr,
):
    """n_valid = #(target != ignore_index), or with HAS_WEIGHT the sum of those rows'
    target weights (torch's 'mean' divisor); one program (before the row kernel, which
    divides the 'mean' gradient by it). n_valid_ptr: 0-d int64 (with HAS_WEIGHT fp32, fp64
    for fp64 weights); target_ptr: (N,) int64; weight_ptr: (C,) class weights."""
    offs = tl.arange(0, BLOCK)
    count = tl.zeros([BLOCK], dtype=n_valid_ptr.dtype.element_ty)
    for start in range(0, n_rows, BLOCK):
        idx = start + offs
        count += valid_weight(target_ptr, weight_ptr, idx, idx < n_rows, n_cols, ignore_index,
                              stride_target, HAS_WEIGHT)
    tl.store(n_valid_ptr, tl.sum(count, axis=0))


@triton.jit
def cross_entropy_reduce_kernel(
    loss_ptr, n_valid_ptr, row_loss_ptr, target_ptr, weight_ptr,
    n_rows, n_cols, ignore_index, stride_target,
    BLOCK: tl.constexpr, MEAN: tl.constexpr, HAS_WEIGHT: tl.constexpr,
):
    """loss = sum_r row_loss[r] (divided by n_valid when MEAN); n_valid = #(target != ignore),
    or with HAS_WEIGHT the sum of those rows' target weights.

    One program, adding blocks in a fixed order (deterministic, no atomics).
    loss_ptr: 0-d, the logits dtype. n_valid_ptr: 0-d int64 (with HAS_WEIGHT fp32, fp64 for
    fp64 weights). row_loss_ptr: (N,) contiguous (0 for ignored rows), fp32 (fp64 for fp64
    logits): the dtype summed in. target_ptr: (N,) int64, stride
    stride_target. weight_ptr: (C,) class weights. 'mean' over zero valid rows is NaN,
    as torch; over nonzero rows whose target weights sum to 0, +-inf (NaN for 0 / 0).
    """
    offs = tl.arange(0, BLOCK)
    total = upcast(tl.zeros([BLOCK], dtype=row_loss_ptr.dtype.element_ty))
    count = tl.zeros([BLOCK], dtype=n_valid_ptr.dtype.element_ty)
    for start in range(0, n_rows, BLOCK):
        idx = start + offs
        mask = idx < n_rows
        total += upcast(tl.load(row_loss_ptr + idx, mask=mask, other=0.0))
        count += valid_weight(target_ptr, weight_ptr, idx, mask, n_cols, ignore_index,
                              stride_target, HAS_WEIGHT)
    loss = tl.sum(total, axis=0)
    n_valid = tl.sum(count, axis=0)
    if MEAN:
        # over a zero divisor torch gives sum / 0: NaN for 0 / 0 (every row ignored), else +-inf
        loss = tl.where(n_valid == 0, loss * float("inf"), loss / n_valid.to(loss.dtype))
    tl.store(loss_ptr, cast_to(loss, loss_ptr.dtype.element_ty))
    tl.store(n_valid_ptr, n_valid)


@triton.jit
def cross_entropy_bwd_kernel(
    out_ptr, grad_logits_ptr, grad_output_ptr, n_valid_ptr,
    numel, n_cols, stride_grad_output,
    BLOCK: tl.constexpr, MODE: tl.constexpr,
):
    """out = grad_logits * scale, element-wise over a contiguous buffer.

    MODE 0 ('sum'): scale = grad_output[()]; MODE 1 ('mean'): grad_output[()] / n_valid[()]
    (grad_output alone when n_valid == 0: every row was ignored, so grad_logits is all
    zero, or a zero weighted divisor, which the row kernel already applied);
    MODE 2 ('none'): scale = grad_output[row], row = index // n_cols, with grad_output
    (N,) of stride stride_grad_output.
    out_ptr, grad_logits_ptr: numel contiguous elements. n_valid_ptr: 0-d int64 (MODE 1).
    Arithmetic is fp32 (fp64 when grad_logits is fp64).
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    grad = upcast(tl.load(grad_logits_ptr + offs, mask=mask, other=0.0))
    if MODE == 2:
        row = offs // n_cols
        scale = tl.load(grad_output_ptr + row * stride_grad_output, mask=mask,
                        other=0.0).to(grad.dtype)
    else:
        scale = tl.load(grad_output_ptr).to(grad.dtype)
        if MODE == 1:
            n_valid = tl.load(n_valid_ptr).to(grad.dtype)
            scale = tl.where(n_valid != 0, scale / n_valid, scale)
    tl.store(out_ptr + offs, cast_to(grad * scale, out_ptr.dtype.element_ty), mask=mask)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute (and keep row losses and weighted divisors) in for
    logits of ``dtype``: fp64 for fp64, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{OP}: {reduction!r} is not a valid value for reduction; "
                         f"expected one of {REDUCTIONS}")


def check_target(logits: torch.Tensor, target: torch.Tensor, op: str = OP) -> None:
    """Metadata checks of a (N,) int64 target against (N, C) logits, before any launch;
    ``op`` names the op in the messages (nll_loss shares these checks)."""
    check_tensor(op, "target", target)
    if target.dtype != torch.int64:
        raise DTypeError(f"{op}: expected target dtype to be Long (int64), but got "
                         f"{dtype_name(target.dtype)}")
    if target.dim() != 1:
        raise ShapeError(f"{op}: target must be 1-D (N,) class indices, got shape "
                         f"{tuple(target.shape)}")
    if target.shape[0] != logits.shape[0]:
        raise ShapeError(f"{op}: Expected input batch_size ({logits.shape[0]}) to match "
                         f"target batch_size ({target.shape[0]}).")
    check_same_device(op, logits=logits, target=target)


def check_weight(logits: torch.Tensor, weight: torch.Tensor | None, op: str = OP) -> None:
    """Metadata checks of optional (C,) class weights, before any launch."""
    if weight is None:
        return
    check_tensor(op, "weight", weight, LOGIT_DTYPES, ndims=(1,))
    if weight.dtype != logits.dtype:  # torch: "expected scalar type Float but found Half"
        raise DTypeError(f"{op}: expected weight dtype {dtype_name(logits.dtype)} (the "
                         f"input's), but got {dtype_name(weight.dtype)}")
    if weight.shape[0] != logits.shape[1]:
        raise ShapeError(f"{op}: weight tensor should be defined either for all "
                         f"{logits.shape[1]} classes or no classes but got weight tensor of "
                         f"shape: [{weight.shape[0]}]")
    check_same_device(op, logits=logits, weight=weight)


def new_label_errors(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A zeroed (int32 flag, int64 offending label) pair for cross_entropy_rows."""
    return (torch.zeros((1,), dtype=torch.int32, device=device),
            torch.zeros((1,), dtype=torch.int64, device=device))


def raise_on_label_errors(errors: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor,
                          n_cols: int, ignore_index: int, op: str = OP) -> None:
    """Read the device flag (one host sync); if a row set it, find the first offending
    label in row order (one more launch, on this error path only) and raise torch's
    OutOfRangeError for it, prefixed with ``op``. Rows race to set the flag, so it cannot
    say which one."""
    flag, label = errors
    if int(flag.item()):
        launch(first_bad_label_kernel, (1,), label, target, target.shape[0], n_cols,
               int(ignore_index), target.stride(0), BLOCK=REDUCE_BLOCK,
               flops=target.shape[0], bytes_moved=target.shape[0] * target.element_size())
        raise OutOfRangeError(f"{op}: Target {int(label.item())} is out of bounds.")


def cross_entropy_rows(
    logits: torch.Tensor,
    target: torch.Tensor,
    row_loss: torch.Tensor,
    grad_logits: torch.Tensor | None,
    errors: tuple[torch.Tensor, torch.Tensor],
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    n_valid: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    divide: bool = True,
) -> None:
    """Launch the row kernel into given buffers: row_loss (N,) contiguous (any float
    dtype), grad_logits (N, C) with column stride 1 or None, errors from new_label_errors.
    With ``n_valid`` (0-d on the device, from count_valid) the gradient comes out
    divided by it; with ``divide=False`` only a zero divisor is applied (torch's non-finite
    gradient, see the module docstring), and backward divides by a nonzero one.
    ``weight``: optional (C,) class weights. No host sync. The building
    block of cross_entropy_fwd and of chunked callers."""
    check_tensor(OP, "logits", logits, LOGIT_DTYPES, ndims=(2,))
    check_target(logits, target)
    check_weight(logits, weight)
    if weight is not None and not weight.is_contiguous():
        raise LayoutError(f"{OP}: weight must be contiguous here, got strides "
                          f"{tuple(weight.stride())}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{OP}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    n_rows, n_cols = logits.shape
    if n_cols == 0 and n_rows:
        raise ShapeError(f"{OP}: logits of shape {tuple(logits.shape)} have no classes")
    if tuple(row_loss.shape) != (n_rows,) or not row_loss.is_contiguous():
        raise LayoutError(f"{OP}: row_loss must be a contiguous ({n_rows},) buffer, got shape "
                          f"{tuple(row_loss.shape)} strides {tuple(row_loss.stride())}")
    if grad_logits is not None:
        if (tuple(grad_logits.shape) != (n_rows, n_cols)
                or (n_cols > 1 and grad_logits.stride(1) != 1)):
            raise LayoutError(f"{OP}: grad_logits must be ({n_rows}, {n_cols}) with column "
                              f"stride 1, got shape {tuple(grad_logits.shape)} strides "
                              f"{tuple(grad_logits.stride())}")
    if n_rows == 0:
        return
    block_c = min(triton.next_power_of_2(n_cols), MAX_BLOCK_C)
    single_block = n_cols <= block_c
    compute_grad = grad_logits is not None
    elem = logits.element_size()
    # Logits reads: once when the row fits a block, else twice when the gradient is
    # written (statistics pass, then gradient pass).
    logit_reads = 1 if single_block or not compute_grad else 2
    smoothing = label_smoothing > 0.0
    read_divisor = n_valid is not None and compute_grad
    prescale = read_divisor and divide
    launch(
        cross_entropy_fwd_kernel, (n_rows,),
        row_loss, grad_logits if compute_grad else logits, errors[0], logits, target,
        weight if weight is not None else target, n_valid if read_divisor else errors[1],
        n_cols, int(ignore_index), float(label_smoothing),
        logits.stride(0), logits.stride(1),
        grad_logits.stride(0) if compute_grad else 0, target.stride(0),
        BLOCK_C=block_c, SINGLE_BLOCK=single_block, COMPUTE_GRAD=compute_grad,
        HAS_SMOOTHING=smoothing, READ_DIVISOR=read_divisor, PRESCALE=prescale,
        HAS_WEIGHT=weight is not None,
        num_warps=min(32, max(4, block_c // 512)),
        flops=n_rows * n_cols * (4 + int(smoothing) + 4 * int(compute_grad)),
        bytes_moved=n_rows * n_cols * elem * (logit_reads + int(compute_grad))
        + n_rows * (target.element_size() + row_loss.element_size()),
    )


def count_valid(target: torch.Tensor, ignore_index: int = -100,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """0-d int64 count of labels that are not ignore_index, or with (C,) class ``weight``
    the sum of their weights (fp32; fp64 for fp64 weights); one single-program launch."""
    weighted = weight is not None
    n_valid = torch.empty((), dtype=compute_dtype(weight.dtype) if weighted else torch.int64,
                          device=target.device)
    n_rows = target.shape[0]
    launch(count_valid_kernel, (1,), n_valid, target, weight if weighted else target, n_rows,
           weight.shape[0] if weighted else 0, int(ignore_index),
           target.stride(0) if n_rows else 1, BLOCK=REDUCE_BLOCK, HAS_WEIGHT=weighted,
           flops=n_rows, bytes_moved=n_rows * target.element_size() * (1 + int(weighted)) + 8)
    return n_valid


def cross_entropy_reduce(
    row_loss: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    dtype: torch.dtype = torch.float32,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, n_valid): 0-d loss in ``dtype`` (sum, or sum / n_valid for 'mean') and the
    0-d int64 count of rows whose target is not ignore_index (with class ``weight``: the
    sum of their target weights, fp32 or fp64 for fp64 weights, torch's 'mean' divisor).
    row_loss (fp32, fp64 for fp64 logits) is summed in its own dtype. One single-program
    launch."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{OP}: cross_entropy_reduce takes 'mean' or 'sum', got {reduction!r}")
    n_rows = row_loss.shape[0]
    weighted = weight is not None
    loss = torch.empty((), dtype=dtype, device=row_loss.device)
    n_valid = torch.empty((), dtype=compute_dtype(weight.dtype) if weighted else torch.int64,
                          device=row_loss.device)
    launch(cross_entropy_reduce_kernel, (1,), loss, n_valid, row_loss, target,
           weight if weighted else target, n_rows, weight.shape[0] if weighted else 0,
           int(ignore_index), target.stride(0) if n_rows else 1,
           BLOCK=REDUCE_BLOCK, MEAN=reduction == "mean", HAS_WEIGHT=weighted,
           flops=2 * n_rows,
           bytes_moved=n_rows * (row_loss.element_size() + target.element_size()) + 16)
    return loss, n_valid


def cross_entropy_fwd(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    compute_grad: bool = True,
    check_labels: bool = True,
    prescale: bool = False,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Softmax cross-entropy of (N, C) logits against (N,) int64 labels.

    Returns (loss, grad_logits, n_valid): loss is 0-d for 'mean'/'sum' and (N,) for
    'none', in the logits dtype; grad_logits is the unscaled (N, C) gradient
    p - (1-eps) onehot - eps/C (zero on ignored rows) in a new buffer, or None when
    compute_grad is False; n_valid is the 0-d int64 count of non-ignored rows (None
    for 'none'). With ``prescale`` and 'mean', grad_logits comes already divided by
    n_valid: it is then d loss / d logits itself, and cross_entropy_bwd(..., 'sum')
    scales it by grad_output alone. check_labels=True syncs once to raise OutOfRangeError on a label
    outside [0, C); check_labels=False skips the sync (for benchmarking).
    Logits of any strides are read in place; arithmetic is fp32 (fp64 for fp64 logits).
    ``weight``: optional (C,) class weights in the logits' dtype, as torch's: each row's loss
    and gradient are scaled by its target's weight (the smoothing term by every class's), and
    'mean' divides by the summed target weights of the valid rows (n_valid is then that sum,
    fp32 or fp64).
    """
    _check_reduction(reduction)
    check_tensor(OP, "logits", logits, LOGIT_DTYPES, ndims=(2,))
    check_target(logits, target)
    check_weight(logits, weight)
    if weight is not None and not weight.is_contiguous():
        weight = contiguous(weight)  # the kernels index it as a flat array
    n_rows, n_cols = logits.shape
    device = logits.device
    row_dtype = logits.dtype if reduction == "none" else compute_dtype(logits.dtype)
    row_loss = torch.empty((n_rows,), dtype=row_dtype, device=device)
    grad_logits = torch.empty((n_rows, n_cols), dtype=logits.dtype, device=device) \
        if compute_grad else None
    errors = new_label_errors(device)
    # The row kernel reads the 'mean' divisor to divide by it (prescale), and with class
    # weights also to apply a zero divisor as torch does (the count is then 0 only when
    # every row is ignored, and the gradient is 0 without it).
    n_valid = count_valid(target, ignore_index, weight) \
        if (prescale or weight is not None) and compute_grad and reduction == "mean" \
        and n_rows else None
    cross_entropy_rows(logits, target, row_loss, grad_logits, errors, ignore_index,
                       label_smoothing, n_valid=n_valid, weight=weight, divide=prescale)
    if check_labels and n_rows:
        raise_on_label_errors(errors, target, n_cols, ignore_index)
    if reduction == "none":
        return row_loss, grad_logits, None
    loss, n_valid = cross_entropy_reduce(row_loss, target, ignore_index, reduction, logits.dtype,
                                         weight)
    return loss, grad_logits, n_valid


def cross_entropy_bwd(
    grad_output: torch.Tensor,
    grad_logits: torch.Tensor,
    n_valid: torch.Tensor | None,
    reduction: str = "mean",
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """grad_logits scaled by grad_output (/ n_valid for 'mean'), into a new buffer.

    grad_output is 0-d for 'mean'/'sum' (read on the device, with n_valid) and (N,)
    for 'none' (grad_logits must then be (N, C)). For 'mean'/'sum' grad_logits may be
    any shape, so chunked callers can scale other unscaled gradients the same way.
    grad_logits itself is never written (retain_graph keeps working).
    """
    _check_reduction(reduction)
    check_tensor(OP, "grad_output", grad_output, LOGIT_DTYPES)
    check_tensor(OP, "grad_logits", grad_logits, LOGIT_DTYPES)
    check_same_device(OP, grad_output=grad_output, grad_logits=grad_logits)
    mode = _MODES[reduction]
    n_cols = grad_logits.shape[-1] if grad_logits.dim() else 1
    if mode == MODE_NONE:
        if grad_logits.dim() != 2 or tuple(grad_output.shape) != (grad_logits.shape[0],):
            raise ShapeError(f"{OP} backward: reduction='none' needs grad_output (N,) and "
                             f"grad_logits (N, C), got {tuple(grad_output.shape)} and "
                             f"{tuple(grad_logits.shape)}")
    elif grad_output.dim() != 0:
        raise ShapeError(f"{OP} backward: reduction={reduction!r} needs a 0-d grad_output, "
                         f"got shape {tuple(grad_output.shape)}")
    if mode == MODE_MEAN:
        if n_valid is None:
            raise ValueError(f"{OP} backward: reduction='mean' needs n_valid")
        check_tensor(OP, "n_valid", n_valid, (torch.int64, torch.float32, torch.float64))
    grad_logits = contiguous(grad_logits)  # the kernel walks it flat; ours are contiguous
    out = torch.empty(grad_logits.shape, dtype=out_dtype or grad_logits.dtype,
                      device=grad_logits.device)
    numel = grad_logits.numel()
    if numel == 0:
        return out
    launch(cross_entropy_bwd_kernel, (cdiv(numel, SCALE_BLOCK),),
           out, grad_logits, grad_output, n_valid if mode == MODE_MEAN else grad_output,
           numel, n_cols, grad_output.stride(0) if mode == MODE_NONE else 0,
           BLOCK=SCALE_BLOCK, MODE=mode,
           flops=numel, bytes_moved=numel * (grad_logits.element_size() + out.element_size()))
    return out


def _specs():
    specs = [CompileSpec(first_bad_label_kernel,
                         {"label_ptr": "*i64", "target_ptr": "*i64", "n_rows": "i32",
                          "n_cols": "i32", "ignore_index": "i64", "stride_target": "i64",
                          "BLOCK": "constexpr"}, {"BLOCK": REDUCE_BLOCK})]
    for dt in ("fp32", "bf16", "fp16", "fp64"):
        acc = "fp64" if dt == "fp64" else "fp32"  # row losses, weighted divisors
        for single, compute_grad, smoothing, prescale, weighted in [
                (True, True, False, True, False), (False, True, True, True, False),
                (True, False, True, False, False), (False, False, False, False, False),
                (True, True, True, True, True), (False, True, True, False, True),
                (False, True, False, True, True)]:
            read_divisor = prescale or (weighted and compute_grad)  # 'mean', as users get it
            sig = {"loss_ptr": "*" + acc, "grad_ptr": "*" + dt, "err_flag_ptr": "*i32",
                   "logits_ptr": "*" + dt, "target_ptr": "*i64",
                   "weight_ptr": "*" + (dt if weighted else "i64"),
                   "n_valid_ptr": "*" + acc if weighted else "*i64", "n_cols": "i32",
                   "ignore_index": "i64", "label_smoothing": "fp64",
                   "stride_logits_row": "i64", "stride_logits_col": "i64",
                   "stride_grad_row": "i64", "stride_target": "i64",
                   "BLOCK_C": "constexpr", "SINGLE_BLOCK": "constexpr",
                   "COMPUTE_GRAD": "constexpr", "HAS_SMOOTHING": "constexpr",
                   "READ_DIVISOR": "constexpr", "PRESCALE": "constexpr",
                   "HAS_WEIGHT": "constexpr"}
            const = {"BLOCK_C": 1024 if single else MAX_BLOCK_C, "SINGLE_BLOCK": single,
                     "COMPUTE_GRAD": compute_grad, "HAS_SMOOTHING": smoothing,
                     "READ_DIVISOR": read_divisor, "PRESCALE": prescale,
                     "HAS_WEIGHT": weighted}
            specs.append(CompileSpec(cross_entropy_fwd_kernel, sig, const,
                                     f"{dt},single={single},grad={compute_grad},"
                                     f"smooth={smoothing},prescale={prescale},weight={weighted}"))
        for weighted in (False, True):
            specs.append(CompileSpec(
                cross_entropy_reduce_kernel,
                {"loss_ptr": "*" + dt, "n_valid_ptr": "*" + acc if weighted else "*i64",
                 "row_loss_ptr": "*" + acc, "target_ptr": "*i64",
                 "weight_ptr": "*" + (dt if weighted else "i64"), "n_rows": "i32",
                 "n_cols": "i32", "ignore_index": "i64", "stride_target": "i64",
                 "BLOCK": "constexpr", "MEAN": "constexpr", "HAS_WEIGHT": "constexpr"},
                {"BLOCK": REDUCE_BLOCK, "MEAN": True, "HAS_WEIGHT": weighted},
                f"{dt},weight={weighted}"))
        for mode in (MODE_SUM, MODE_MEAN, MODE_NONE):
            specs.append(CompileSpec(
                cross_entropy_bwd_kernel,
                {"out_ptr": "*" + dt, "grad_logits_ptr": "*" + dt, "grad_output_ptr": "*" + dt,
                 "n_valid_ptr": "*" + acc if mode == MODE_MEAN else "*i64", "numel": "i64",
                 "n_cols": "i64", "stride_grad_output": "i64", "BLOCK": "constexpr",
                 "MODE": "constexpr"},
                {"BLOCK": SCALE_BLOCK, "MODE": mode}, f"{dt},mode={mode}"))
    for weighted, acc in ((False, "fp32"), (True, "fp32"), (True, "fp64")):
        specs.append(CompileSpec(
            count_valid_kernel,
            {"n_valid_ptr": "*" + acc if weighted else "*i64", "target_ptr": "*i64",
             "weight_ptr": "*" + acc if weighted else "*i64", "n_rows": "i32",
             "n_cols": "i32", "ignore_index": "i64", "stride_target": "i64",
             "BLOCK": "constexpr", "HAS_WEIGHT": "constexpr"},
            {"BLOCK": REDUCE_BLOCK, "HAS_WEIGHT": weighted},
            f"weight={weighted}" + (",fp64" if acc == "fp64" else "")))
    return specs


COMPILE_SPECS = _specs()
