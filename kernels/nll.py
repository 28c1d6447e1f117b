"""Negative log-likelihood loss (torch's ``nll_loss``) over (N, C) inputs (log-probabilities).

For row r with target t_r and class weights w (w = 1 without ``weight``):
  loss_r = -w_{t_r} * input[r, t_r]        (0 when t_r == ignore_index)
'sum' adds the rows; 'mean' divides that sum by W = sum over valid rows of w_{t_r} (their
count when unweighted), as torch does.

Gradient. loss_r depends on input[r, c] only at c = t_r, with d loss_r / d input[r, t_r] =
-w_{t_r}, so for an upstream gradient g:
  'none': d L / d input[r, c] = -w_{t_r} g_r       [c == t_r]
  'sum':  d L / d input[r, c] = -w_{t_r} g         [c == t_r]
  'mean': d L / d input[r, c] = w_{t_r} * -(g / W) [c == t_r]   (d (S / W) / d loss_r = 1 / W)
and 0 elsewhere and on ignored rows. The 'mean' form is torch's own order of operations
(its backward scales by -(g / W), then by w_t), so a zero divisor gives torch's results with
no special case: W == 0 with valid rows (weights summing to 0) gives -+inf at their targets
(NaN where w_t == 0: 0 * inf), and W == 0 because every row is ignored gives 0 everywhere
(no target column is hit). The loss is then sum / 0: +-inf, or NaN for 0 / 0
(cross_entropy_reduce applies it).

Forward reads one element per row, input[r, t_r] (through the input's strides: any layout is
read in place), never the whole row. Label range is a value check done on the device, as in
kernels/cross_entropy.py: the row kernel sets an int32 flag for a label outside [0, C) that is
not ignore_index, and raise_on_label_errors (one host sync) names the first bad label in row
order. With check_labels=False a bad label's row loss is NaN (never an out-of-bounds read).
The reduction is cross_entropy_reduce: one program, fixed order, deterministic.

Backward is one launch over the (N, C) gradient, each element written exactly once by one
program (deterministic, no atomics): the target column gets its value, every other column 0.
Zero-fill + scatter would write the same N*C bytes (the memset) plus a second launch; one
launch keeps the output a plain torch.empty and puts all of its bytes in the profiler.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import ShapeError, check_tensor
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import contiguous
from .cross_entropy import (
    LOGIT_DTYPES,
    REDUCTIONS,
    check_target,
    check_weight,
    compute_dtype,
    cross_entropy_reduce,
    new_label_errors,
    raise_on_label_errors,
)
from .elementwise import upcast

OP = "nll_loss"
MODE_SUM, MODE_MEAN, MODE_NONE = 0, 1, 2
_MODES = {"sum": MODE_SUM, "mean": MODE_MEAN, "none": MODE_NONE}

# Rows per forward program: each row is one gathered element, so a program takes many rows.
# Under the interpreter, few large programs (each costs ~0.5 ms however small).
FWD_BLOCK_N = 4096 if interpreting() else 1024
# Backward tiles: BLOCK_C = min(next_pow2(C), BWD_MAX_BLOCK_C) columns by
# BWD_TILE // BLOCK_C rows. A write-only kernel: 4096 elements (16 KB of fp32) per program
# keeps many programs per SM on the GPU. Not yet tuned on a GPU.
BWD_MAX_BLOCK_C = 4096 if interpreting() else 1024
BWD_TILE = 65536 if interpreting() else 4096


@triton.jit
def nll_fwd_kernel(
    row_loss_ptr, err_flag_ptr, input_ptr, target_ptr, weight_ptr,
    n_rows, n_cols, ignore_index,
    stride_input_row, stride_input_col, stride_target,
    BLOCK_N: tl.constexpr, HAS_WEIGHT: tl.constexpr,
):
    """row_loss[r] = -w[t_r] * input[r, t_r] (0 on ignored rows); one program per BLOCK_N rows.

    row_loss_ptr: (N,) contiguous (fp32, fp64 for fp64 input; the input dtype for 'none').
    err_flag_ptr: (1,) int32, set to 1 when a row's label is outside [0, C) and not
        ignore_index (which label: first_bad_label_kernel, on the error path only).
    input_ptr: (N, C) fp32/fp16/bf16/fp64 with strides (stride_input_row, stride_input_col).
    target_ptr: (N,) int64 class indices with stride stride_target.
    weight_ptr: (C,) contiguous class weights, read when HAS_WEIGHT (otherwise any pointer).
    n_rows: N. n_cols: C. ignore_index: label whose row is skipped (may be negative or in range).
    Arithmetic is fp32 (fp64 for fp64 input).
    """
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N).to(tl.int64)
    row_mask = rows < n_rows
    target = tl.load(target_ptr + rows * stride_target, mask=row_mask, other=ignore_index)
    active = row_mask & (target != ignore_index)
    in_range = (target >= 0) & (target < n_cols)
    bad = active & ((target < 0) | (target >= n_cols))
    tl.store(err_flag_ptr, 1, mask=tl.max(bad.to(tl.int32), axis=0) > 0)

    # The one element each row needs; an out-of-range label reads nothing: NaN loss.
    picked = active & in_range
    x_target = upcast(tl.load(input_ptr + rows * stride_input_row + target * stride_input_col,
                              mask=picked, other=float("nan")))
    if HAS_WEIGHT:
        w_target = upcast(tl.load(weight_ptr + target, mask=picked, other=0.0))
        loss = -(w_target * x_target)
    else:
        loss = -x_target
    loss = tl.where(active, loss, 0.0)
    tl.store(row_loss_ptr + rows, cast_to(loss, row_loss_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def nll_bwd_kernel(
    grad_input_ptr, grad_output_ptr, target_ptr, weight_ptr, divisor_ptr,
    n_rows, n_cols, ignore_index,
    stride_grad_row, stride_target, stride_grad_output,
    BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, MODE: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
):
    """grad_input[r, c] = w[t_r] * -(scale_r) at c == t_r, 0 elsewhere and on ignored rows
    (derivation in the module docstring); one program per (BLOCK_N, BLOCK_C) tile.

    grad_input_ptr: (N, C) with row stride stride_grad_row, column stride 1.
    grad_output_ptr: MODE 0 ('sum'): 0-d, scale = g; MODE 1 ('mean'): 0-d, scale = g / W
        with W = divisor_ptr[()] (int64 count, or summed target weights in the compute
        dtype; 0 divides as torch does); MODE 2 ('none'): (N,) with stride
        stride_grad_output, scale_r = g[r].
    target_ptr: (N,) int64 with stride stride_target. weight_ptr: (C,) contiguous class
    weights, read when HAS_WEIGHT (otherwise any pointer).
    Arithmetic is fp32 (fp64 for an fp64 grad_input), the compute dtype.
    """
    pid_n = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1).to(tl.int64)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N).to(tl.int64)
    cols = pid_c * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
    row_mask = rows < n_rows
    col_mask = cols < n_cols
    target = tl.load(target_ptr + rows * stride_target, mask=row_mask, other=ignore_index)
    active = row_mask & (target != ignore_index)
    ACC: tl.constexpr = tl.float64 if grad_input_ptr.dtype.element_ty == tl.float64 \
        else tl.float32
    if MODE == 2:
        scale = tl.load(grad_output_ptr + rows * stride_grad_output, mask=row_mask,
                        other=0.0).to(ACC)
    else:
        scale = tl.zeros([BLOCK_N], ACC) + tl.load(grad_output_ptr).to(ACC)
        if MODE == 1:
            scale = scale / tl.load(divisor_ptr).to(ACC)
    row_grad = -scale
    if HAS_WEIGHT:
        in_range = (target >= 0) & (target < n_cols)
        w_target = tl.load(weight_ptr + target, mask=active & in_range, other=0.0)
        row_grad = w_target.to(ACC) * row_grad
    hit = active[:, None] & (cols[None, :] == target[:, None])
    grad = tl.where(hit, row_grad[:, None], 0.0)
    tl.store(grad_input_ptr + rows[:, None] * stride_grad_row + cols[None, :],
             cast_to(grad, grad_input_ptr.dtype.element_ty),
             mask=row_mask[:, None] & col_mask[None, :])


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{OP}: {reduction!r} is not a valid value for reduction; "
                         f"expected one of {REDUCTIONS}")


def nll_fwd(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    check_labels: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torch's nll_loss of (N, C) ``input`` against (N,) int64 ``target``.

    Returns (loss, divisor): loss is 0-d for 'mean'/'sum' and (N,) for 'none', in the input
    dtype; divisor is the 0-d 'mean' divisor (int64 count of valid rows, or with ``weight``
    the sum of their target weights, fp32 or fp64 for fp64), also returned for 'sum', None
    for 'none'. fp64 input is computed in fp64, the others in fp32.
    ``weight``: optional (C,) class weights in the input's dtype. Input of any strides is read in place.
    check_labels=True syncs once to raise OutOfRangeError on a label outside [0, C);
    check_labels=False skips the sync (a bad label's row loss is then NaN)."""
    _check_reduction(reduction)
    check_tensor(OP, "input", input, LOGIT_DTYPES, ndims=(2,))
    check_target(input, target, OP)
    check_weight(input, weight, OP)
    if weight is not None and not weight.is_contiguous():
        weight = contiguous(weight)  # the kernels (and the reduce) index it as a flat array
    n_rows, n_cols = input.shape
    if n_cols == 0 and n_rows:
        raise ShapeError(f"{OP}: input of shape {tuple(input.shape)} has no classes")
    row_dtype = input.dtype if reduction == "none" else compute_dtype(input.dtype)
    row_loss = torch.empty((n_rows,), dtype=row_dtype, device=input.device)
    if n_rows:
        errors = new_label_errors(input.device)
        launch(nll_fwd_kernel, (cdiv(n_rows, FWD_BLOCK_N),),
               row_loss, errors[0], input, target, weight if weight is not None else target,
               n_rows, n_cols, int(ignore_index), input.stride(0), input.stride(1),
               target.stride(0), BLOCK_N=FWD_BLOCK_N, HAS_WEIGHT=weight is not None,
               flops=n_rows * (1 + int(weight is not None)),
               bytes_moved=n_rows * (target.element_size() + input.element_size()
                                     + row_loss.element_size()
                                     + (weight.element_size() if weight is not None else 0)))
        if check_labels:
            raise_on_label_errors(errors, target, n_cols, ignore_index, OP)
    if reduction == "none":
        return row_loss, None
    return cross_entropy_reduce(row_loss, target, ignore_index, reduction, input.dtype, weight)


def _bwd_blocks(n_cols: int) -> tuple[int, int]:
    block_c = min(triton.next_power_of_2(max(n_cols, 1)), BWD_MAX_BLOCK_C)
    return max(1, BWD_TILE // block_c), block_c


def nll_bwd(
    grad_output: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    divisor: torch.Tensor | None,
    n_cols: int,
    ignore_index: int = -100,
    reduction: str = "mean",
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """d loss / d input, a new contiguous (N, C) tensor in ``out_dtype``: -w_t * grad_output
    (divided by ``divisor`` for 'mean'; grad_output[r] per row for 'none') at each valid
    row's target column, 0 elsewhere. ``divisor``: nll_fwd's, needed for 'mean'."""
    _check_reduction(reduction)
    check_tensor(OP, "grad_output", grad_output, LOGIT_DTYPES)
    check_tensor(OP, "target", target, (torch.int64,), ndims=(1,))
    n_rows = target.shape[0]
    if weight is not None:
        check_tensor(OP, "weight", weight, LOGIT_DTYPES, ndims=(1,))
        if weight.shape[0] != n_cols:
            raise ShapeError(f"{OP} backward: weight has {weight.shape[0]} classes, "
                             f"expected {n_cols}")
        weight = contiguous(weight)
    mode = _MODES[reduction]
    if mode == MODE_NONE:
        if tuple(grad_output.shape) != (n_rows,):
            raise ShapeError(f"{OP} backward: reduction='none' needs grad_output of shape "
                             f"({n_rows},), got {tuple(grad_output.shape)}")
    elif grad_output.dim() != 0:
        raise ShapeError(f"{OP} backward: reduction={reduction!r} needs a 0-d grad_output, "
                         f"got shape {tuple(grad_output.shape)}")
    if mode == MODE_MEAN:
        if divisor is None:
            raise ValueError(f"{OP} backward: reduction='mean' needs the divisor")
        check_tensor(OP, "divisor", divisor, (torch.int64, torch.float32, torch.float64))
    grad_input = torch.empty((n_rows, n_cols), dtype=out_dtype, device=target.device)
    if grad_input.numel() == 0:
        return grad_input
    block_n, block_c = _bwd_blocks(n_cols)
    launch(nll_bwd_kernel, (cdiv(n_rows, block_n), cdiv(n_cols, block_c)),
           grad_input, grad_output, target, weight if weight is not None else target,
           divisor if mode == MODE_MEAN else target,
           n_rows, n_cols, int(ignore_index), grad_input.stride(0), target.stride(0),
           grad_output.stride(0) if mode == MODE_NONE else 0,
           BLOCK_N=block_n, BLOCK_C=block_c, MODE=mode, HAS_WEIGHT=weight is not None,
           flops=n_rows * 2,
           bytes_moved=grad_input.numel() * grad_input.element_size()
           + n_rows * target.element_size() * cdiv(n_cols, block_c))
    return grad_input


def _specs():
    specs = []
    for dt in ("fp32", "bf16", "fp16", "fp64"):
        acc = "fp64" if dt == "fp64" else "fp32"
        for weighted in (False, True):
            # 'mean'/'sum' rows in fp32 (fp64 for fp64), 'none' in the input's
            for row_dtype in dict.fromkeys((acc, dt)):
                specs.append(CompileSpec(
                    nll_fwd_kernel,
                    {"row_loss_ptr": "*" + row_dtype, "err_flag_ptr": "*i32",
                     "input_ptr": "*" + dt, "target_ptr": "*i64",
                     "weight_ptr": "*" + (dt if weighted else "i64"), "n_rows": "i32",
                     "n_cols": "i32", "ignore_index": "i64", "stride_input_row": "i64",
                     "stride_input_col": "i64", "stride_target": "i64",
                     "BLOCK_N": "constexpr", "HAS_WEIGHT": "constexpr"},
                    {"BLOCK_N": FWD_BLOCK_N, "HAS_WEIGHT": weighted},
                    f"{dt},rows={row_dtype},weight={weighted}"))
            for mode in (MODE_SUM, MODE_MEAN, MODE_NONE):
                for block_c in (16, BWD_MAX_BLOCK_C):
                    specs.append(CompileSpec(
                        nll_bwd_kernel,
                        {"grad_input_ptr": "*" + dt, "grad_output_ptr": "*" + dt,
                         "target_ptr": "*i64", "weight_ptr": "*" + (dt if weighted else "i64"),
                         "divisor_ptr": "*" + (acc if weighted else "i64")
                         if mode == MODE_MEAN else "*i64",
                         "n_rows": "i32", "n_cols": "i32", "ignore_index": "i64",
                         "stride_grad_row": "i64", "stride_target": "i64",
                         "stride_grad_output": "i64", "BLOCK_N": "constexpr",
                         "BLOCK_C": "constexpr", "MODE": "constexpr",
                         "HAS_WEIGHT": "constexpr"},
                        {"BLOCK_N": max(1, BWD_TILE // block_c), "BLOCK_C": block_c,
                         "MODE": mode, "HAS_WEIGHT": weighted},
                        f"{dt},mode={mode},weight={weighted},block_c={block_c}"))
    return specs


COMPILE_SPECS = _specs()
