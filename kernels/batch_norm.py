"""Batch normalization over (N, C, *spatial) inputs, per channel: forward (training with
batch statistics and the running-statistics update, or eval with the running statistics)
and backward.

Layout: each channel c is a row; its M = N * prod(spatial) elements are read as n_outer x
n_inner with two strides (moments.py's layout): when the batch and spatial dims merge into
one stride (an (N, C) input, a channels-last one, N = 1) n_outer = 1, else n_outer = N and
n_inner = the spatial dims (merged; a layout where they do not merge is copied once). y and
dx take x's own strides (an input that is not dense, a slice say, is copied first, so they
can), so one stride triple serves x, y and dx; dy is read through its own strides. Tiles
are [channels, BLOCK_O batch entries x BLOCK_C spatial indices]: BLOCK_O > 1 where the
channels' spatial slabs are too small to fill a tile (``_plan``).

Forward, training: moments.py's shifted per-split (mean, M2) of each channel (one read of
x), then one small launch merges the splits (batch_norm_stats_kernel):
    mean = sum x / M,  var = M2 / M (biased: it normalizes),
    running_mean = (1 - momentum) running_mean + momentum mean,
    running_var  = (1 - momentum) running_var + momentum M2 / (M - 1)   (unbiased)
written in place, then y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps). Eval:
the last step only, with the running statistics. Statistics are fp32 (fp64 for fp64).

Backward, per channel, with x_hat = (x - mean) rstd, y = w x_hat + b, g = dL/dy:
  eval (mean and var are constants): dx = w rstd g.
  training (mean and var are of this batch, over the channel's M elements):
    d x_hat_j / d x_k = rstd (delta_jk - 1/M) + (x_j - mean) d rstd / d x_k
    d rstd / d x_k = -rstd^3 (x_k - mean) / M   (d var / d x_k = 2 (x_k - mean) / M; the
        d mean / d x_k term carries sum_j (x_j - mean) = 0)
    => d x_hat_j / d x_k = rstd (delta_jk - 1/M - x_hat_j x_hat_k / M)
    => dx_k = w sum_j g_j d x_hat_j / d x_k
            = (w rstd / M) (M g_k - sum_j g_j - x_hat_k sum_j g_j x_hat_j)
  both: dw = sum g x_hat, db = sum g (over the channel's elements).
The sums take one read of dy (and x) into per-split partials, and a small launch adds the
splits in a fixed order (deterministic, no atomics), writing dw, db and the sums dx needs;
a third launch writes dx.

Dtypes follow torch (2.13, CPU): weight, bias, running_mean and running_var (those given)
share one dtype, x's, or fp32 for an fp16 / bf16 x. y and dx come in x's dtype, dw and db
in the parameters'.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    DTypeError,
    ShapeError,
    check_same_device,
    check_same_dtype,
    check_tensor,
    check_writable,
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .copy import _is_dense, contiguous, copy_into
from .elementwise import div_rn, upcast
from .moments import (
    ELEMENTWISE_TILE,
    TILE,
    merge_blocks,
    merge_moments,
    plan_splits,
    row_moments,
    split_bounds,
    stats_dtype,
    stats_type,
)
from .reduction import _blocks, _single_stride

OP = "batch_norm"
HALF_DTYPES = (torch.float16, torch.bfloat16)


@triton.jit
def rstd_of(var, eps):
    """1 / sqrt(var + eps) in var's dtype (fp32 or fp64; eps an fp64 number), each step
    correctly rounded (elementwise's div_rn and sqrt_rn, inlined: the interpreter pays about
    3 ms for every nested @triton.jit call)."""
    if var.dtype == tl.float64:
        out = 1.0 / tl.sqrt(var + eps)
    else:
        root = tl.sqrt_rn(var + tl.full(var.shape, eps, tl.float64).to(tl.float32))
        out = tl.div_rn(tl.full(root.shape, 1.0, tl.float32), root)
    return out


@triton.jit
def batch_norm_stats_kernel(
    mean_ptr, var_ptr, running_mean_ptr, running_var_ptr, mean_part_ptr, m2_part_ptr, x_ptr,
    momentum: tl.float64,
    n_rows, n_splits, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
    stride_xr,
    UPDATE_RUNNING: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """Each channel's batch mean and biased variance from moments_kernel's partials, and
    the running statistics' update in place (module docstring).

    mean_ptr, var_ptr: (n_rows,) fp32 (fp64 for fp64 x), written.
    running_mean_ptr, running_var_ptr: (n_rows,) contiguous, the parameters' dtype, read and
        written when UPDATE_RUNNING (otherwise any tensor, never touched).
    mean_part_ptr, m2_part_ptr: (n_rows, n_splits <= BLOCK_S) contiguous, moments_kernel's
        partials of x - x[r, 0, 0]; x_ptr is read for that shift only (rows stride stride_xr).
    The split arguments are those moments_kernel ran with; M = n_outer * n_inner >= 2.
    """
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    mean, m2 = merge_moments(mean_part_ptr, m2_part_ptr, x_ptr, rows, row_mask, n_splits,
                             n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
                             stride_xr, BLOCK_S)
    count = tl.zeros([BLOCK_R], dtype=m2.dtype) + (n_outer * n_inner).to(m2.dtype)
    tl.store(mean_ptr + rows, mean, mask=row_mask)
    tl.store(var_ptr + rows, div_rn(m2, count), mask=row_mask)
    if UPDATE_RUNNING:
        running_mean = tl.load(running_mean_ptr + rows, mask=row_mask, other=0.0).to(m2.dtype)
        running_var = tl.load(running_var_ptr + rows, mask=row_mask, other=0.0).to(m2.dtype)
        rate = tl.full([], momentum, tl.float64).to(m2.dtype)
        keep = tl.full([], 1.0 - momentum, tl.float64).to(m2.dtype)
        running_mean = keep * running_mean + rate * mean
        running_var = keep * running_var + rate * div_rn(m2, count - 1.0)
        tl.store(running_mean_ptr + rows,
                 cast_to(running_mean, running_mean_ptr.dtype.element_ty), mask=row_mask)
        tl.store(running_var_ptr + rows,
                 cast_to(running_var, running_var_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def batch_norm_fwd_kernel(
    y_ptr, x_ptr, mean_ptr, var_ptr, w_ptr, b_ptr, eps: tl.float64,
    n_rows, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
    stride_r, stride_o, stride_i,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps), per channel (row).

    y_ptr, x_ptr: (n_rows, n_outer, n_inner), the same strides (stride_r, stride_o,
        stride_i); y in x's dtype. The grid's (row block, split) cover them as
        moments_kernel's do, in the same [BLOCK_R, BLOCK_O x BLOCK_C] tiles.
    mean_ptr, var_ptr: (n_rows,) contiguous: the batch's (fp32, fp64 for fp64) or the
        running statistics (the parameters' dtype).
    w_ptr, b_ptr: (n_rows,) contiguous, read when HAS_WEIGHT / HAS_BIAS (otherwise any
        tensor, never touched).
    """
    pid_r = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    outer_start, outer_end, inner_start, inner_end = split_bounds(
        pid_s, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits)
    mean = upcast(tl.load(mean_ptr + rows, mask=row_mask, other=0.0))  # fp64 for fp64 x
    var = tl.load(var_ptr + rows, mask=row_mask, other=0.0).to(mean.dtype)
    scale = rstd_of(var, eps)
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + rows, mask=row_mask, other=0.0).to(mean.dtype)
    if HAS_BIAS:
        shift = tl.load(b_ptr + rows, mask=row_mask, other=0.0).to(mean.dtype)
    cols = tl.arange(0, BLOCK_O * BLOCK_C)
    col_outer = (cols // BLOCK_C).to(tl.int64)
    col_inner = (cols % BLOCK_C).to(tl.int64)
    offsets = rows[:, None] * stride_r
    for outer in range(outer_start, outer_end, BLOCK_O):
        o = outer + col_outer
        for start in range(inner_start, inner_end, BLOCK_C):
            i = start + col_inner
            mask = row_mask[:, None] & ((o < outer_end) & (i < inner_end))[None, :]
            at = offsets + (o * stride_o + i * stride_i)[None, :]
            x = tl.load(x_ptr + at, mask=mask, other=0.0).to(mean.dtype)
            y = (x - mean[:, None]) * scale[:, None]
            if HAS_BIAS:
                y = y + shift[:, None]
            tl.store(y_ptr + at, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def batch_norm_grad_sums_kernel(
    g_part_ptr, gxc_part_ptr, dy_ptr, x_ptr, mean_ptr,
    n_rows, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
    stride_r, stride_o, stride_i, stride_dyr, stride_dyo, stride_dyi,
    READ_X: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Per (channel r, split s): g_part[r, s] = sum dy, and when READ_X gxc_part[r, s] =
    sum dy (x - mean[r]), over the split's elements (a tile of running sums, then a tree:
    a fixed order).

    g_part_ptr, gxc_part_ptr: (n_rows, n_splits) contiguous fp32 (fp64 for fp64);
        gxc_part written when READ_X (otherwise any tensor).
    dy_ptr: (n_rows, n_outer, n_inner), strides (stride_dyr, stride_dyo, stride_dyi).
    x_ptr: the forward's input, strides (stride_r, stride_o, stride_i), read when READ_X.
    mean_ptr: (n_rows,) contiguous, the mean the forward normalized with (any float dtype).
    The grid and tiles walk the layout as moments_kernel's do.
    """
    pid_r = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    n_splits = tl.num_programs(1)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    outer_start, outer_end, inner_start, inner_end = split_bounds(
        pid_s, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits)
    acc_g = tl.zeros([BLOCK_R, BLOCK_O * BLOCK_C], dtype=g_part_ptr.dtype.element_ty)
    acc_gxc = tl.zeros([BLOCK_R, BLOCK_O * BLOCK_C], dtype=g_part_ptr.dtype.element_ty)
    if READ_X:
        mean = tl.load(mean_ptr + rows, mask=row_mask, other=0.0).to(acc_g.dtype)
    cols = tl.arange(0, BLOCK_O * BLOCK_C)
    col_outer = (cols // BLOCK_C).to(tl.int64)
    col_inner = (cols % BLOCK_C).to(tl.int64)
    dy_rows = dy_ptr + rows[:, None] * stride_dyr
    x_rows = x_ptr + rows[:, None] * stride_r
    for outer in range(outer_start, outer_end, BLOCK_O):
        o = outer + col_outer
        for start in range(inner_start, inner_end, BLOCK_C):
            i = start + col_inner
            mask = row_mask[:, None] & ((o < outer_end) & (i < inner_end))[None, :]
            at_dy = o * stride_dyo + i * stride_dyi
            at_x = o * stride_o + i * stride_i
            dy = tl.load(dy_rows + at_dy[None, :], mask=mask, other=0.0).to(acc_g.dtype)
            acc_g += dy
            if READ_X:
                x = tl.load(x_rows + at_x[None, :], mask=mask, other=0.0).to(acc_g.dtype)
                acc_gxc += tl.where(mask, dy * (x - mean[:, None]), 0.0)
    out = rows * n_splits + pid_s
    tl.store(g_part_ptr + out, tl.sum(acc_g, axis=1), mask=row_mask)
    if READ_X:
        tl.store(gxc_part_ptr + out, tl.sum(acc_gxc, axis=1), mask=row_mask)


@triton.jit
def batch_norm_bwd_reduce_kernel(
    dw_ptr, db_ptr, sum_g_ptr, sum_gxhat_ptr, g_part_ptr, gxc_part_ptr, var_ptr,
    eps: tl.float64, n_rows, n_splits,
    COMPUTE_DW: tl.constexpr, COMPUTE_DB: tl.constexpr, WRITE_SUMS: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """Adds batch_norm_grad_sums_kernel's partials over the splits, in a fixed order:
    sum_g = sum dy, sum_gxhat = rstd sum dy (x - mean), per channel.

    dw_ptr, db_ptr: (n_rows,) the parameters' dtype: dw = sum_gxhat (COMPUTE_DW), db =
        sum_g (COMPUTE_DB). sum_g_ptr, sum_gxhat_ptr: (n_rows,) fp32 (fp64), written for
        the training dx when WRITE_SUMS. g_part_ptr, gxc_part_ptr: (n_rows, n_splits)
        contiguous (gxc read when COMPUTE_DW or WRITE_SUMS). var_ptr: (n_rows,) the
        variance the forward normalized with. Unused pointers may be any tensor.
    """
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    splits = tl.arange(0, BLOCK_S).to(tl.int64)
    mask = row_mask[:, None] & (splits < n_splits)[None, :]
    offsets = rows[:, None] * n_splits + splits[None, :]
    sum_g = tl.sum(tl.load(g_part_ptr + offsets, mask=mask, other=0.0), axis=1)
    if COMPUTE_DB:
        tl.store(db_ptr + rows, cast_to(sum_g, db_ptr.dtype.element_ty), mask=row_mask)
    if COMPUTE_DW or WRITE_SUMS:
        sum_gxc = tl.sum(tl.load(gxc_part_ptr + offsets, mask=mask, other=0.0), axis=1)
        var = tl.load(var_ptr + rows, mask=row_mask, other=0.0).to(sum_gxc.dtype)
        sum_gxhat = sum_gxc * rstd_of(var, eps)
        if COMPUTE_DW:
            tl.store(dw_ptr + rows, cast_to(sum_gxhat, dw_ptr.dtype.element_ty), mask=row_mask)
        if WRITE_SUMS:
            tl.store(sum_g_ptr + rows, sum_g, mask=row_mask)
            tl.store(sum_gxhat_ptr + rows, sum_gxhat, mask=row_mask)


@triton.jit
def batch_norm_bwd_kernel(
    dx_ptr, dy_ptr, x_ptr, mean_ptr, var_ptr, w_ptr, sum_g_ptr, sum_gxhat_ptr,
    eps: tl.float64,
    n_rows, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
    stride_r, stride_o, stride_i, stride_dyr, stride_dyo, stride_dyi,
    TRAINING: tl.constexpr, HAS_WEIGHT: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """dx (module docstring): TRAINING, w rstd (g - sum_g / M - x_hat sum_gxhat / M);
    otherwise w rstd g.

    dx_ptr: (n_rows, n_outer, n_inner), x's strides (stride_r, stride_o, stride_i), x's
        dtype. dy_ptr: strides (stride_dyr, stride_dyo, stride_dyi). x_ptr: the forward's
        input, read when TRAINING. mean_ptr, var_ptr: (n_rows,) the statistics the forward
        normalized with. w_ptr: (n_rows,) read when HAS_WEIGHT. sum_g_ptr, sum_gxhat_ptr:
        (n_rows,) fp32 (fp64) from batch_norm_bwd_reduce_kernel, read when TRAINING.
        Unused pointers may be any tensor. The grid and tiles walk the layout as
        moments_kernel's do.
    """
    pid_r = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    outer_start, outer_end, inner_start, inner_end = split_bounds(
        pid_s, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits)
    var = upcast(tl.load(var_ptr + rows, mask=row_mask, other=0.0))  # fp64 for fp64 x
    rstd = rstd_of(var, eps)
    scale = rstd
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + rows, mask=row_mask, other=0.0).to(var.dtype)
    if TRAINING:
        mean = tl.load(mean_ptr + rows, mask=row_mask, other=0.0).to(var.dtype)
        count = tl.zeros([BLOCK_R], dtype=var.dtype) + (n_outer * n_inner).to(var.dtype)
        mean_g = div_rn(tl.load(sum_g_ptr + rows, mask=row_mask, other=0.0), count)
        mean_gxhat = div_rn(tl.load(sum_gxhat_ptr + rows, mask=row_mask, other=0.0), count)
    cols = tl.arange(0, BLOCK_O * BLOCK_C)
    col_outer = (cols // BLOCK_C).to(tl.int64)
    col_inner = (cols % BLOCK_C).to(tl.int64)
    offsets = rows[:, None] * stride_r
    dy_rows = dy_ptr + rows[:, None] * stride_dyr
    for outer in range(outer_start, outer_end, BLOCK_O):
        o = outer + col_outer
        for start in range(inner_start, inner_end, BLOCK_C):
            i = start + col_inner
            mask = row_mask[:, None] & ((o < outer_end) & (i < inner_end))[None, :]
            at = offsets + (o * stride_o + i * stride_i)[None, :]
            at_dy = o * stride_dyo + i * stride_dyi
            g = tl.load(dy_rows + at_dy[None, :], mask=mask, other=0.0).to(var.dtype)
            if TRAINING:
                x = tl.load(x_ptr + at, mask=mask, other=0.0).to(var.dtype)
                x_hat = (x - mean[:, None]) * rstd[:, None]
                g = g - mean_g[:, None] - x_hat * mean_gxhat[:, None]
            dx = scale[:, None] * g
            tl.store(dx_ptr + at, cast_to(dx, dx_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers


def _size_str(shape) -> str:
    return f"torch.Size([{', '.join(str(int(s)) for s in shape)}])"


def check_batch_norm_args(x: torch.Tensor, running_mean, running_var, weight, bias,
                          training: bool) -> None:
    """Every check of batch_norm's arguments, before any launch, with torch's errors (in
    meaning), naming shapes, dtypes and devices."""
    check_tensor(OP, "input", x, FLOAT_DTYPES)
    if x.dim() < 2:
        raise ShapeError(f"{OP}: expected an input of shape (N, C) or (N, C, *), got shape "
                         f"{tuple(x.shape)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{OP}: running_mean and running_var must either both be None or "
                         "neither be None")
    if not training and running_mean is None:
        raise RuntimeError(f"{OP}: running_mean must be defined in evaluation mode")
    channels = x.shape[1]
    params = {}
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is None:
            continue
        check_tensor(OP, name, t, FLOAT_DTYPES)
        if t.numel() != channels:
            raise ShapeError(f"{OP}: {name} should contain {channels} elements not "
                             f"{t.numel()} (input shape {tuple(x.shape)}, {name} shape "
                             f"{tuple(t.shape)})")
        params[name] = t
    if params:
        check_same_device(OP, input=x, **params)
        dtypes = {t.dtype for t in params.values()}
        param_dtype = next(iter(dtypes))
        if len(dtypes) > 1 or not (param_dtype == x.dtype or (
                x.dtype in HALF_DTYPES and param_dtype == torch.float32)):
            listed = ", ".join(f"{n} {dtype_name(t.dtype)}" for n, t in params.items())
            raise DTypeError(f"{OP}: mixed dtypes: input {dtype_name(x.dtype)}, {listed}; "
                             "weight, bias and the running statistics must share the input's "
                             "dtype (or be float32 for a float16 / bfloat16 input), as in torch")
    if training:
        size = x.shape[0]
        for s in x.shape[2:]:
            size *= s
        if size == 1:
            raise ShapeError(f"Expected more than 1 value per channel when training, got "
                             f"input size {_size_str(x.shape)}")
        if running_mean is not None:
            for name, t in (("running_mean", running_mean), ("running_var", running_var)):
                check_writable(OP, name, t)


def _grouping(t: torch.Tensor, merged: bool) -> tuple | None:
    """(stride_r, stride_o, stride_i) of t (N, C, *spatial) read as channels x n_outer x
    n_inner: merged, the batch and spatial dims as one strided dim (n_outer = 1); else
    the batch dim, then the spatial dims as one. None when those dims do not merge."""
    shape, strides = list(t.shape), list(t.stride())
    if merged:
        reduced = [0] + list(range(2, t.dim()))
        inner = _single_stride([shape[d] for d in reduced], [strides[d] for d in reduced])
        return None if inner is None else (strides[1], 0, inner)
    inner = _single_stride(shape[2:], strides[2:])
    return None if inner is None else (strides[1], strides[0], inner)


def _layout(x: torch.Tensor) -> tuple[torch.Tensor, bool, tuple, int, int]:
    """(x, merged, strides, n_outer, n_inner): x made dense (a copy where it is not: y and
    dx take its strides) and read in the first grouping its dims allow (a copy to
    contiguous, which always takes the second, where neither does)."""
    if not _is_dense(x):
        x = contiguous(x)
    strides = _grouping(x, True)
    merged = strides is not None
    if not merged:
        strides = _grouping(x, False)
        if strides is None:
            x = contiguous(x)
            strides = _grouping(x, False)
    spatial = 1
    for s in x.shape[2:]:
        spatial *= s
    if merged:
        return x, True, strides, 1, x.shape[0] * spatial
    return x, False, strides, x.shape[0], spatial


class _Walk(NamedTuple):
    """How a kernel walks the (channels, n_outer, n_inner) layout: [block_r, block_o x
    block_c] tiles and plan_splits' plan for them."""

    block_r: int
    block_o: int
    block_c: int
    plan: tuple

    def sizes(self, n_outer: int, n_inner: int) -> tuple:
        """The kernels' (n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits)
        arguments."""
        return (n_outer, n_inner, *self.plan[1:])

    def constexprs(self) -> dict:
        return {"BLOCK_R": self.block_r, "BLOCK_O": self.block_o, "BLOCK_C": self.block_c}


def _plan(x: torch.Tensor, strides: tuple, n_outer: int, n_inner: int, tile: int) -> tuple:
    """(walk, grid) of the (channels, n_outer, n_inner) layout, in tiles of about ``tile``
    elements (moments.TILE for the statistics, ELEMENTWISE_TILE for the gradient sums, y
    and dx). Where the channels' spatial slabs (all channels x n_inner) do not fill a tile
    ((N, C, L) with few channels and a small L, say), one tile takes several batch entries
    (BLOCK_O of them): full tiles, and under the interpreter several times fewer loop
    steps, where one batch entry a tile would leave most lanes masked. Packed tiles hold at
    most ELEMENTWISE_TILE elements: the statistics' bf16 moments_kernel spilled 4 B at
    4 x 64 x 8 in the sm_90 build."""
    channels = x.shape[1]
    rows_p2, inner_p2 = triton.next_power_of_2(channels), triton.next_power_of_2(n_inner)
    packed_tile = min(tile, ELEMENTWISE_TILE)
    if n_outer > 1 and rows_p2 * inner_p2 <= packed_tile // 2:
        block_r, block_c = rows_p2, inner_p2
        block_o = min(packed_tile // (rows_p2 * inner_p2), triton.next_power_of_2(n_outer))
    else:
        rows_contiguous = strides[0] == 1 and strides[2] != 1 and channels > 1
        block_r, block_c = _blocks(channels, n_inner, rows_contiguous, tile)
        block_o = 1
    plan = plan_splits(channels, n_outer, n_inner, block_r, block_c, block_o)
    return _Walk(block_r, block_o, block_c, plan), (cdiv(channels, block_r), plan[0])


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    """A per-channel tensor as (C,) contiguous (the kernels index it flat)."""
    if t is None:
        return None
    return t.reshape(-1) if t.is_contiguous() else contiguous(t).reshape(-1)


def batch_norm_fwd(
    x: torch.Tensor,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, var): torch.nn.functional.batch_norm. y in x's dtype and shape (x's strides
    where x is dense); mean and var are what y was normalized with, for the backward:
    training, the batch's mean and biased variance per channel, (C,) fp32 (fp64 for fp64),
    with running_mean / running_var (when given) updated in place; eval, running_mean and
    running_var themselves. Three launches in training, one in eval."""
    check_batch_norm_args(x, running_mean, running_var, weight, bias, training)
    channels = x.shape[1]
    if not training:
        mean, var = _flat(running_mean), _flat(running_var)
    else:
        mean = torch.empty((channels,), dtype=stats_dtype(x.dtype), device=x.device)
        var = torch.empty((channels,), dtype=stats_dtype(x.dtype), device=x.device)
    if x.numel() == 0:  # no elements: nothing to normalize, running statistics untouched
        return torch.empty(x.shape, dtype=x.dtype, device=x.device), mean, var
    x, _, strides, n_outer, n_inner = _layout(x)
    numel = x.numel()
    if training:
        walk, _ = _plan(x, strides, n_outer, n_inner, TILE)
        plan = walk.plan
        mean_part, m2_part = row_moments(x, channels, n_outer, n_inner, strides,
                                         (walk.block_r, walk.block_o, walk.block_c), plan)
        update = running_mean is not None
        # running stats are written in place: a non-contiguous one is updated through a
        # contiguous copy, written back (a rare layout: module buffers are contiguous)
        rm = _flat(running_mean) if update else mean
        rv = _flat(running_var) if update else var
        merge_r, block_s = merge_blocks(channels, plan[0], mean_part.dtype)
        launch(batch_norm_stats_kernel, (cdiv(channels, merge_r),), mean, var, rm, rv,
               mean_part, m2_part, x, float(momentum), channels, plan[0], n_outer, n_inner,
               *plan[1:], strides[0], UPDATE_RUNNING=update, BLOCK_R=merge_r,
               BLOCK_S=block_s, flops=8 * mean_part.numel(),
               bytes_moved=2 * mean_part.numel() * mean_part.element_size()
               + channels * (2 * mean.element_size() + 4 * rm.element_size()))
        if update:
            for given, flat in ((running_mean, rm), (running_var, rv)):
                if flat.data_ptr() != given.data_ptr() or not given.is_contiguous():
                    copy_into(given, flat.view(given.shape))
    y = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
    w, b = _flat(weight), _flat(bias)
    walk, grid = _plan(x, strides, n_outer, n_inner, ELEMENTWISE_TILE)
    launch(batch_norm_fwd_kernel, grid, y, x, mean, var,
           x if w is None else w, x if b is None else b, float(eps),
           channels, *walk.sizes(n_outer, n_inner), *strides, HAS_WEIGHT=w is not None,
           HAS_BIAS=b is not None, **walk.constexprs(),
           flops=3 * numel, bytes_moved=2 * numel * x.element_size()
           + 4 * channels * mean.element_size())
    return y, mean, var


def batch_norm_bwd(
    grad: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    eps: float = 1e-5,
    need_input: bool = True,
    need_weight: bool = True,
    need_bias: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(dx, dw, db) of batch_norm_fwd from the upstream ``grad`` (x's shape and dtype, any
    strides), the forward's input x and the (mean, var) it returned. dx in x's dtype and
    shape (x's strides where x is dense), dw and db in the parameters' dtype and shape; each
    None where not asked for (or where there is no such parameter). ``bias`` is read for
    its dtype and shape only. Up to three launches: the per-channel sums (when dw, db or a
    training dx needs them), their merge, and dx."""
    op = OP + " backward"
    check_tensor(op, "input", x, FLOAT_DTYPES)
    check_tensor(op, "grad", grad, FLOAT_DTYPES)
    if tuple(grad.shape) != tuple(x.shape):
        raise ShapeError(f"{op}: grad shape {tuple(grad.shape)} != input shape "
                         f"{tuple(x.shape)}")
    check_same_dtype(op, input=x, grad=grad)
    check_batch_norm_args(x, None if training else mean, None if training else var, weight,
                          bias, training)
    channels = x.shape[1]
    for name, stat in (("mean", mean), ("var", var)):
        check_tensor(op, name, stat, FLOAT_DTYPES)
        if stat.numel() != channels:
            raise ShapeError(f"{op}: {name} should contain {channels} elements, got shape "
                             f"{tuple(stat.shape)}")
    check_same_device(op, grad=grad, input=x, mean=mean, var=var)
    need_weight = need_weight and weight is not None
    need_bias = need_bias and bias is not None
    device = x.device
    # no elements: zero parameter gradients, as torch
    alloc = torch.zeros if x.numel() == 0 else torch.empty
    dw = alloc(weight.shape, dtype=weight.dtype, device=device) if need_weight else None
    db = alloc(bias.shape, dtype=bias.dtype, device=device) if need_bias else None
    if x.numel() == 0:
        dx = torch.empty(x.shape, dtype=x.dtype, device=device) if need_input else None
        return dx, dw, db
    x, merged, strides, n_outer, n_inner = _layout(x)
    dy_strides = _grouping(grad, merged)
    if dy_strides is None:  # dy read in x's layout: laid out like x first (our copy kernel)
        dy = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=device)
        copy_into(dy, grad)
        grad, dy_strides = dy, strides
    numel = x.numel()
    mean, var = _flat(mean), _flat(var)
    acc_dtype = stats_dtype(x.dtype)
    sum_g = sum_gxhat = None
    if need_weight or need_bias or (training and need_input):
        read_x = need_weight or (training and need_input)
        # two accumulator tiles: the elementwise tile (moments.py's register note)
        walk, grid = _plan(x, strides, n_outer, n_inner, ELEMENTWISE_TILE)
        n_splits = walk.plan[0]
        g_part = torch.empty((channels, n_splits), dtype=acc_dtype, device=device)
        gxc_part = torch.empty_like(g_part) if read_x else g_part
        launch(batch_norm_grad_sums_kernel, grid, g_part, gxc_part, grad, x, mean, channels,
               *walk.sizes(n_outer, n_inner), *strides, *dy_strides, READ_X=read_x,
               **walk.constexprs(),
               flops=(3 if read_x else 1) * numel,
               bytes_moved=(2 if read_x else 1) * numel * x.element_size()
               + g_part.numel() * g_part.element_size() * (2 if read_x else 1))
        write_sums = training and need_input
        if write_sums:
            sum_g = torch.empty((channels,), dtype=acc_dtype, device=device)
            sum_gxhat = torch.empty((channels,), dtype=acc_dtype, device=device)
        merge_r, block_s = merge_blocks(channels, n_splits, acc_dtype)
        launch(batch_norm_bwd_reduce_kernel, (cdiv(channels, merge_r),),
               g_part if dw is None else dw, g_part if db is None else db,
               g_part if sum_g is None else sum_g, g_part if sum_gxhat is None else sum_gxhat,
               g_part, gxc_part, var, float(eps), channels, n_splits,
               COMPUTE_DW=need_weight, COMPUTE_DB=need_bias, WRITE_SUMS=write_sums,
               BLOCK_R=merge_r, BLOCK_S=block_s, flops=2 * g_part.numel(),
               bytes_moved=2 * g_part.numel() * g_part.element_size()
               + 4 * channels * g_part.element_size())
    dx = None
    if need_input:
        dx = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=device)
        w = _flat(weight)
        walk, grid = _plan(x, strides, n_outer, n_inner, ELEMENTWISE_TILE)
        # unused pointers get a tensor of the dtype a used one would have (fewer variants)
        sums = torch.empty((0,), dtype=acc_dtype, device=device) if sum_g is None else None
        launch(batch_norm_bwd_kernel, grid, dx, grad, x, mean, var, x if w is None else w,
               sums if sum_g is None else sum_g, sums if sum_gxhat is None else sum_gxhat,
               float(eps), channels, *walk.sizes(n_outer, n_inner), *strides, *dy_strides,
               TRAINING=training, HAS_WEIGHT=w is not None, **walk.constexprs(),
               flops=(6 if training else 2) * numel,
               bytes_moved=(3 if training else 2) * numel * x.element_size()
               + 6 * channels * mean.element_size())
    return dx, dw, db


# ----------------------------------------------------------------------------- compile specs

_SPLIT_SIG = {"n_rows": "i64", "n_outer": "i64", "n_inner": "i64", "outer_per_split": "i64",
              "inner_per_split": "i64", "n_inner_splits": "i64"}
_LAYOUT_SIG = {"stride_r": "i64", "stride_o": "i64", "stride_i": "i64"}
_DY_SIG = {"stride_dyr": "i64", "stride_dyo": "i64", "stride_dyi": "i64"}
# (x dtype, parameter dtype): every pairing torch allows
PAIRINGS = [("fp32", "fp32"), ("fp16", "fp16"), ("bf16", "bf16"), ("fp64", "fp64"),
            ("fp16", "fp32"), ("bf16", "fp32")]
# (BLOCK_R, BLOCK_O, BLOCK_C): NCHW (one channel a tile), BN1d (channels along memory), and
# few channels with small spatial dims (several batch entries a tile)
NCHW, BN1D, PACKED = (1, 1, ELEMENTWISE_TILE), (256, 1, 4), (4, 32, 8)


def _specs() -> list[CompileSpec]:
    """Each kernel in each dtype pairing, with the statistics of training (fp32 / fp64) and
    of eval (the running ones, in the parameters' dtype), in the NCHW walk; the BN1d and
    packed walks in fp32 and bf16; and each other flag variant in fp32 and bf16. A dtype
    changes only loads, upcasts and stores, which the first set covers."""
    specs = []
    for x_t, p_t in PAIRINGS:
        stats = stats_type(x_t)
        for update in (True, False):
            if update or x_t in ("fp32", "bf16"):
                specs.append(_stats_spec(x_t, p_t if update else stats, update))
        for mv in sorted({stats, p_t}):
            specs.append(_fwd_spec(x_t, p_t, mv, True, True, NCHW))
            specs.append(_sums_spec(x_t, mv, True, NCHW))
        for training in (True, False):
            specs.append(_dx_spec(x_t, p_t, stats if training else p_t, training, True, NCHW))
        specs.append(_reduce_spec(stats, p_t, True, True, True))
    for x_t in ("fp32", "bf16"):
        for walk in (BN1D, PACKED):
            specs.append(_fwd_spec(x_t, x_t, "fp32", True, True, walk))
            specs.append(_sums_spec(x_t, "fp32", True, walk))
            for training in (True, False):
                specs.append(_dx_spec(x_t, x_t, "fp32" if training else x_t, training, True,
                                      walk))
        for has_w, has_b in ((True, False), (False, True), (False, False)):
            specs.append(_fwd_spec(x_t, x_t, "fp32", has_w, has_b, (16, 1, 64)))
        specs.append(_sums_spec(x_t, "fp32", False, (16, 1, 64)))
        for training in (True, False):
            specs.append(_dx_spec(x_t, x_t, "fp32", training, False, (16, 1, 64)))
        # (COMPUTE_DW, COMPUTE_DB, WRITE_SUMS) as the launcher combines them
        for flags in ((True, False, False), (False, True, False), (True, True, False),
                      (False, False, True), (False, True, True), (True, False, True)):
            specs.append(_reduce_spec("fp32", x_t, *flags))
    unique = {(spec.kernel, spec.label): spec for spec in reversed(specs)}  # pairings overlap
    return list(reversed(unique.values()))


def _walk_constexprs(walk: tuple) -> dict:
    return {"BLOCK_R": walk[0], "BLOCK_O": walk[1], "BLOCK_C": walk[2]}


def _walk_label(walk: tuple) -> str:
    return "x".join(str(b) for b in walk)


def _stats_spec(x_t: str, running_t: str, update: bool) -> CompileSpec:
    stats = stats_type(x_t)
    sig = {"mean_ptr": "*" + stats, "var_ptr": "*" + stats, "running_mean_ptr": "*" + running_t,
           "running_var_ptr": "*" + running_t, "mean_part_ptr": "*" + stats,
           "m2_part_ptr": "*" + stats, "x_ptr": "*" + x_t, "momentum": "fp64",
           "n_rows": "i64", "n_splits": "i64", "n_outer": "i64", "n_inner": "i64",
           "outer_per_split": "i64", "inner_per_split": "i64", "n_inner_splits": "i64",
           "stride_xr": "i64", "UPDATE_RUNNING": "constexpr", "BLOCK_R": "constexpr",
           "BLOCK_S": "constexpr"}
    return CompileSpec(batch_norm_stats_kernel, sig,
                       {"UPDATE_RUNNING": update, "BLOCK_R": 8 if x_t == "fp64" else 16,
                        "BLOCK_S": 256}, f"x={x_t},running={running_t},update={update}")


def _fwd_spec(x_t: str, p_t: str, mean_t: str, has_w: bool, has_b: bool,
              walk: tuple) -> CompileSpec:
    sig = {"y_ptr": "*" + x_t, "x_ptr": "*" + x_t, "mean_ptr": "*" + mean_t,
           "var_ptr": "*" + mean_t, "w_ptr": "*" + (p_t if has_w else x_t),
           "b_ptr": "*" + (p_t if has_b else x_t), "eps": "fp64", **_SPLIT_SIG,
           **_LAYOUT_SIG, "HAS_WEIGHT": "constexpr", "HAS_BIAS": "constexpr",
           "BLOCK_R": "constexpr", "BLOCK_O": "constexpr", "BLOCK_C": "constexpr"}
    return CompileSpec(batch_norm_fwd_kernel, sig,
                       {"HAS_WEIGHT": has_w, "HAS_BIAS": has_b, **_walk_constexprs(walk)},
                       f"x={x_t},params={p_t},stats={mean_t},w={has_w},b={has_b},"
                       f"{_walk_label(walk)}")


def _sums_spec(x_t: str, mean_t: str, read_x: bool, walk: tuple) -> CompileSpec:
    acc = stats_type(x_t)
    sig = {"g_part_ptr": "*" + acc, "gxc_part_ptr": "*" + acc, "dy_ptr": "*" + x_t,
           "x_ptr": "*" + x_t, "mean_ptr": "*" + mean_t, **_SPLIT_SIG, **_LAYOUT_SIG,
           **_DY_SIG, "READ_X": "constexpr", "BLOCK_R": "constexpr", "BLOCK_O": "constexpr",
           "BLOCK_C": "constexpr"}
    return CompileSpec(batch_norm_grad_sums_kernel, sig,
                       {"READ_X": read_x, **_walk_constexprs(walk)},
                       f"x={x_t},mean={mean_t},read_x={read_x},{_walk_label(walk)}")


def _dx_spec(x_t: str, p_t: str, mean_t: str, training: bool, has_w: bool,
             walk: tuple) -> CompileSpec:
    acc = stats_type(x_t)
    sig = {"dx_ptr": "*" + x_t, "dy_ptr": "*" + x_t, "x_ptr": "*" + x_t,
           "mean_ptr": "*" + mean_t, "var_ptr": "*" + mean_t,
           "w_ptr": "*" + (p_t if has_w else x_t), "sum_g_ptr": "*" + acc,
           "sum_gxhat_ptr": "*" + acc, "eps": "fp64", **_SPLIT_SIG, **_LAYOUT_SIG, **_DY_SIG,
           "TRAINING": "constexpr", "HAS_WEIGHT": "constexpr", "BLOCK_R": "constexpr",
           "BLOCK_O": "constexpr", "BLOCK_C": "constexpr"}
    return CompileSpec(batch_norm_bwd_kernel, sig,
                       {"TRAINING": training, "HAS_WEIGHT": has_w, **_walk_constexprs(walk)},
                       f"x={x_t},params={p_t},stats={mean_t},training={training},w={has_w},"
                       f"{_walk_label(walk)}")


def _reduce_spec(acc: str, p_t: str, dw: bool, db: bool, sums: bool) -> CompileSpec:
    sig = {"dw_ptr": "*" + (p_t if dw else acc), "db_ptr": "*" + (p_t if db else acc),
           "sum_g_ptr": "*" + acc, "sum_gxhat_ptr": "*" + acc, "g_part_ptr": "*" + acc,
           "gxc_part_ptr": "*" + acc, "var_ptr": "*" + acc, "eps": "fp64", "n_rows": "i64",
           "n_splits": "i64", "COMPUTE_DW": "constexpr", "COMPUTE_DB": "constexpr",
           "WRITE_SUMS": "constexpr", "BLOCK_R": "constexpr", "BLOCK_S": "constexpr"}
    return CompileSpec(batch_norm_bwd_reduce_kernel, sig,
                       {"COMPUTE_DW": dw, "COMPUTE_DB": db, "WRITE_SUMS": sums,
                        "BLOCK_R": 8 if acc == "fp64" else 16, "BLOCK_S": 256},
                       f"acc={acc},params={p_t},dw={dw},db={db},sums={sums}")


COMPILE_SPECS = _specs()
