"""LayerNorm over the trailing ``normalized_shape`` dims: forward and backward.

x is seen as rows (the leading dims, flattened) by columns (the normalized dims, N of
them), read through two strides (reduction's ``rows_and_columns``: contiguous inputs,
row slices and transposes are read in place; layouts whose normalized dims do not merge
into one stride are copied once by our copy kernel, in forward and again in backward).

Forward, per row, in fp32 (fp64 for fp64 input):
    mu = mean(x),  var = mean((x - mu)^2) (biased, as torch),  rstd = 1 / sqrt(var + eps)
    x_hat = (x - mu) * rstd,  y = x_hat * w + b
mean and rstd are saved, fp32 (fp64 for fp64), shape (rows,). Statistics are taken of
x - k, k = the row's first element (shifted data; mean = k + mean(x - k)): a constant row
then has x - k = 0 exactly, so its mean is exact, its variance 0 and y = b, as torch's
Welford gives. Without the shift, sum(x) / N of a constant row rounds (9 columns of 100.3:
mean off by 7.6e-6, y = 2.4e-3 where torch gives 0; with eps = 1e-12, y was O(1)).
  - rows of up to MAX_BLOCK_C columns (SINGLE_BLOCK): the row stays in registers, so the
    exact two-pass form (the mean, then the mean square of the centred values) costs one
    read of x; it never cancels as E[x^2] - E[x]^2 does for rows far from zero.
  - wider rows: each column block's own mean and M2 = sum((x - mean_block)^2) come
    two-pass from registers, and blocks merge by Welford's pairwise update (Chan et al.):
        n = n_a + n_b,  d = mean_b - mean_a,  mean = mean_a + d n_b / n,
        M2 = M2_a + M2_b + d^2 n_a n_b / n
    so statistics take one read of x however wide the row (a second read writes y),
    with no cancellation.

Backward, with g = dy * w (g = dy without weight) and the saved mu, rstd:
    dL/dx_hat_j = g_j
    d x_hat_j / d x_k = rstd (delta_jk - 1/N) + (x_j - mu) d rstd / d x_k
    d rstd / d x_k = -1/2 (var + eps)^(-3/2) d var / d x_k = -rstd^3 (x_k - mu) / N
        (d var / d x_k = 2 (x_k - mu) / N: the d mu / d x_k term carries sum_j (x_j - mu) = 0)
    => d x_hat_j / d x_k = rstd (delta_jk - 1/N - x_hat_j x_hat_k / N)
    => dx_k = sum_j g_j d x_hat_j / d x_k = rstd (g_k - mean(g) - x_hat_k mean(g x_hat))
    dw_j = sum_rows dy_j x_hat_j,   db_j = sum_rows dy_j
One kernel computes dx row by row and each program's partial dw / db over its own rows
into an (n_programs, N) fp32 (fp64 for fp64) buffer, written once per program and column,
no atomics; a second kernel sums those partials over programs in a fixed order, so dw and
db are deterministic. Rows of one block are read once for all three; wider rows take two
passes for dx (the row sums, then dx) and a third, column block by column block, for the
partials. Flags (constexprs) skip whatever nobody asked a gradient of.

Weight and bias follow torch (2.13, CPU): both (when given) share one dtype, which is x's
dtype or, for fp16 / bf16 x, fp32 with a weight present ("mixed dtype"). y and dx come in
x's dtype, dw and db in the parameters'.
"""

from __future__ import annotations

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
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import contiguous
from .elementwise import div_rn, scalar_like, sqrt_rn, upcast
from .reduction import rows_and_columns

OP = "layer_norm"
HALF_DTYPES = (torch.float16, torch.bfloat16)
# Columns per block: wider rows loop over blocks (Welford merge in forward, three passes in
# backward). A [BLOCK_R, BLOCK_C] tile holds at most TILE elements: short rows share a
# program, several rows to a tile. The interpreter runs programs one after another (about
# 0.5 ms each, whatever their size), so blocks are big and programs few there.
MAX_BLOCK_C = 4096
TILE = 8192 if interpreting() else 4096
# Programs of the backward (each writes one row of partials); two per SM on an H100/H200
# (132 SMs). Untuned: no GPU measurement yet. The forward runs one row block a program on
# a GPU; under the interpreter both run at most INTERPRETER_PROGRAMS programs that loop.
BWD_PROGRAMS = 264
INTERPRETER_PROGRAMS = 4
SUM_BLOCK_P = 32  # partial rows per step of the partial-sum kernel


@triton.jit
def layer_norm_fwd_kernel(
    y_ptr, mean_ptr, rstd_ptr, x_ptr, w_ptr, b_ptr,
    n_rows, n_cols, rows_per_program, eps: tl.float64,
    stride_xr, stride_xc,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """y = (x - mean) * rstd * w + b for rows [pid * rows_per_program, + rows_per_program).

    y_ptr: (n_rows, n_cols) contiguous, x's dtype. mean_ptr, rstd_ptr: (n_rows,) fp32
    (fp64 for fp64 x). x_ptr: (n_rows, n_cols), strides (stride_xr, stride_xc), any float
    dtype. w_ptr, b_ptr: (n_cols,) contiguous, read when HAS_WEIGHT / HAS_BIAS (otherwise
    any tensor, never touched). eps: added to the variance. rows_per_program: a multiple
    of BLOCK_R. SINGLE_BLOCK: n_cols <= BLOCK_C (the row stays in registers).
    """
    pid = tl.program_id(0).to(tl.int64)
    row_start = pid * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    cols = tl.arange(0, BLOCK_C).to(tl.int64)
    if SINGLE_BLOCK:
        col_mask = cols < n_cols
        if HAS_WEIGHT:
            w = upcast(tl.load(w_ptr + cols, mask=col_mask, other=0.0))
        if HAS_BIAS:
            b = upcast(tl.load(b_ptr + cols, mask=col_mask, other=0.0))
    for start in range(row_start, row_end, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R).to(tl.int64)
        row_mask = rows < row_end
        x_rows = x_ptr + rows[:, None] * stride_xr
        y_rows = y_ptr + rows[:, None] * n_cols
        # statistics of x - shift, shift = the row's first element (see the docstring):
        # a constant row gets its mean exactly and variance 0, as torch's Welford does
        shift = upcast(tl.load(x_ptr + rows * stride_xr, mask=row_mask, other=0.0))
        if SINGLE_BLOCK:
            mask = row_mask[:, None] & col_mask[None, :]
            x = upcast(tl.load(x_rows + cols[None, :] * stride_xc, mask=mask, other=0.0))
            x = tl.where(mask, x - shift[:, None], 0.0)
            mean = tl.sum(x, axis=1)
            mean = div_rn(mean, tl.zeros_like(mean) + n_cols)
            centred = tl.where(mask, x - mean[:, None], 0.0)
            var = tl.sum(centred * centred, axis=1)
            var = div_rn(var, tl.zeros_like(var) + n_cols)
        else:
            # Welford's pairwise merge of per-block (mean, M2), see the module docstring
            mean = tl.zeros_like(shift)
            m2 = tl.zeros_like(mean)
            for col_start in range(0, n_cols, BLOCK_C):
                c = col_start + cols
                mask = row_mask[:, None] & (c < n_cols)[None, :]
                x = upcast(tl.load(x_rows + c[None, :] * stride_xc, mask=mask, other=0.0))
                x = tl.where(mask, x - shift[:, None], 0.0)
                n_seen = tl.zeros_like(mean) + col_start  # columns merged so far
                n_block = tl.zeros_like(mean) + tl.minimum(n_cols - col_start, BLOCK_C)
                n_total = n_seen + n_block
                block_mean = div_rn(tl.sum(x, axis=1), n_block)
                centred = tl.where(mask, x - block_mean[:, None], 0.0)
                block_m2 = tl.sum(centred * centred, axis=1)
                delta = block_mean - mean
                mean = mean + delta * div_rn(n_block, n_total)
                m2 = m2 + block_m2 + delta * delta * div_rn(n_seen * n_block, n_total)
            var = div_rn(m2, tl.zeros_like(m2) + n_cols)
        rstd = div_rn(tl.zeros_like(var) + 1.0, sqrt_rn(var + scalar_like(eps, var)))
        tl.store(mean_ptr + rows, shift + mean, mask=row_mask)
        tl.store(rstd_ptr + rows, rstd, mask=row_mask)
        if SINGLE_BLOCK:
            y = centred * rstd[:, None]
            if HAS_WEIGHT:
                y = y * w[None, :]
            if HAS_BIAS:
                y = y + b[None, :]
            tl.store(y_rows + cols[None, :], cast_to(y, y_ptr.dtype.element_ty), mask=mask)
        else:
            for col_start in range(0, n_cols, BLOCK_C):
                c = col_start + cols
                in_cols = c < n_cols
                mask = row_mask[:, None] & in_cols[None, :]
                x = upcast(tl.load(x_rows + c[None, :] * stride_xc, mask=mask, other=0.0))
                y = ((x - shift[:, None]) - mean[:, None]) * rstd[:, None]
                if HAS_WEIGHT:
                    y = y * upcast(tl.load(w_ptr + c, mask=in_cols, other=0.0))[None, :]
                if HAS_BIAS:
                    y = y + upcast(tl.load(b_ptr + c, mask=in_cols, other=0.0))[None, :]
                tl.store(y_rows + c[None, :], cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def layer_norm_bwd_kernel(
    dx_ptr, dw_partial_ptr, db_partial_ptr, dy_ptr, x_ptr, w_ptr, mean_ptr, rstd_ptr,
    n_rows, n_cols, rows_per_program,
    stride_dyr, stride_dyc, stride_xr, stride_xc,
    HAS_WEIGHT: tl.constexpr, COMPUTE_DX: tl.constexpr, COMPUTE_DW: tl.constexpr,
    COMPUTE_DB: tl.constexpr, SINGLE_BLOCK: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """dx for rows [pid * rows_per_program, + rows_per_program), and this program's
    partial dw and db over those rows (see the module docstring for the math).

    dx_ptr: (n_rows, n_cols) contiguous, x's dtype, written when COMPUTE_DX.
    dw_partial_ptr, db_partial_ptr: (n_programs, n_cols) contiguous fp32 (fp64 for fp64);
        row pid written (once) when COMPUTE_DW / COMPUTE_DB.
    dy_ptr: (n_rows, n_cols), strides (stride_dyr, stride_dyc). x_ptr: the forward's
    input, strides (stride_xr, stride_xc). w_ptr: (n_cols,) contiguous, read when
    HAS_WEIGHT. mean_ptr, rstd_ptr: (n_rows,), as the forward saved them.
    Unused pointers may be any tensor; they are never touched.
    SINGLE_BLOCK: n_cols <= BLOCK_C; the tile is read once for dx, dw and db. Otherwise dx
    takes two passes over the columns (the row sums, then dx), and dw / db a third,
    column block by column block over this program's rows, so that each partial is
    written once instead of read, added to and written back once per row block.
    """
    pid = tl.program_id(0).to(tl.int64)
    row_start = pid * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    cols = tl.arange(0, BLOCK_C).to(tl.int64)
    if x_ptr.dtype.element_ty == tl.float64:
        dw_acc = tl.zeros([BLOCK_C], dtype=tl.float64)
    else:
        dw_acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    db_acc = tl.zeros_like(dw_acc)
    if SINGLE_BLOCK:
        col_mask = cols < n_cols
        if HAS_WEIGHT:
            w = upcast(tl.load(w_ptr + cols, mask=col_mask, other=0.0))
        for start in range(row_start, row_end, BLOCK_R):
            rows = start + tl.arange(0, BLOCK_R).to(tl.int64)
            row_mask = rows < row_end
            mask = row_mask[:, None] & col_mask[None, :]
            # masked lanes load 0 (rows: mean 0, rstd 0), so they add nothing below
            dy = upcast(tl.load(dy_ptr + rows[:, None] * stride_dyr + cols[None, :] * stride_dyc,
                                mask=mask, other=0.0))
            if COMPUTE_DX or COMPUTE_DW:
                x = upcast(tl.load(x_ptr + rows[:, None] * stride_xr + cols[None, :] * stride_xc,
                                   mask=mask, other=0.0))
                mean = tl.load(mean_ptr + rows, mask=row_mask, other=0.0)
                rstd = tl.load(rstd_ptr + rows, mask=row_mask, other=0.0)
                x_hat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
            if COMPUTE_DX:
                g = dy
                if HAS_WEIGHT:
                    g = dy * w[None, :]
                mean_g = tl.sum(g, axis=1)
                mean_g = div_rn(mean_g, tl.zeros_like(mean_g) + n_cols)
                mean_gx = tl.sum(g * x_hat, axis=1)
                mean_gx = div_rn(mean_gx, tl.zeros_like(mean_gx) + n_cols)
                dx = rstd[:, None] * (g - mean_g[:, None] - x_hat * mean_gx[:, None])
                tl.store(dx_ptr + rows[:, None] * n_cols + cols[None, :],
                         cast_to(dx, dx_ptr.dtype.element_ty), mask=mask)
            if COMPUTE_DW:
                dw_acc += tl.sum(dy * x_hat, axis=0)
            if COMPUTE_DB:
                db_acc += tl.sum(dy, axis=0)
        if COMPUTE_DW:
            tl.store(dw_partial_ptr + pid * n_cols + cols, dw_acc, mask=col_mask)
        if COMPUTE_DB:
            tl.store(db_partial_ptr + pid * n_cols + cols, db_acc, mask=col_mask)
    else:
        if COMPUTE_DX:
            for start in range(row_start, row_end, BLOCK_R):
                rows = start + tl.arange(0, BLOCK_R).to(tl.int64)
                row_mask = rows < row_end
                mean = tl.load(mean_ptr + rows, mask=row_mask, other=0.0)
                rstd = tl.load(rstd_ptr + rows, mask=row_mask, other=0.0)
                dy_rows = dy_ptr + rows[:, None] * stride_dyr
                x_rows = x_ptr + rows[:, None] * stride_xr
                sum_g = tl.zeros_like(mean)
                sum_gx = tl.zeros_like(mean)
                for col_start in range(0, n_cols, BLOCK_C):  # pass 1: sum(g), sum(g x_hat)
                    c = col_start + cols
                    in_cols = c < n_cols
                    mask = row_mask[:, None] & in_cols[None, :]
                    g = upcast(tl.load(dy_rows + c[None, :] * stride_dyc, mask=mask, other=0.0))
                    if HAS_WEIGHT:
                        g = g * upcast(tl.load(w_ptr + c, mask=in_cols, other=0.0))[None, :]
                    x = upcast(tl.load(x_rows + c[None, :] * stride_xc, mask=mask, other=0.0))
                    x_hat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
                    sum_g += tl.sum(g, axis=1)
                    sum_gx += tl.sum(g * x_hat, axis=1)
                mean_g = div_rn(sum_g, tl.zeros_like(sum_g) + n_cols)
                mean_gx = div_rn(sum_gx, tl.zeros_like(sum_gx) + n_cols)
                for col_start in range(0, n_cols, BLOCK_C):  # pass 2: dx
                    c = col_start + cols
                    in_cols = c < n_cols
                    mask = row_mask[:, None] & in_cols[None, :]
                    g = upcast(tl.load(dy_rows + c[None, :] * stride_dyc, mask=mask, other=0.0))
                    if HAS_WEIGHT:
                        g = g * upcast(tl.load(w_ptr + c, mask=in_cols, other=0.0))[None, :]
                    x = upcast(tl.load(x_rows + c[None, :] * stride_xc, mask=mask, other=0.0))
                    x_hat = (x - mean[:, None]) * rstd[:, None]
                    dx = rstd[:, None] * (g - mean_g[:, None] - x_hat * mean_gx[:, None])
                    tl.store(dx_ptr + rows[:, None] * n_cols + c[None, :],
                             cast_to(dx, dx_ptr.dtype.element_ty), mask=mask)
        if COMPUTE_DW or COMPUTE_DB:
            for col_start in range(0, n_cols, BLOCK_C):  # pass 3: this program's dw, db
                c = col_start + cols
                in_cols = c < n_cols
                dw_acc = tl.zeros_like(dw_acc)
                db_acc = tl.zeros_like(db_acc)
                for start in range(row_start, row_end, BLOCK_R):
                    rows = start + tl.arange(0, BLOCK_R).to(tl.int64)
                    row_mask = rows < row_end
                    mask = row_mask[:, None] & in_cols[None, :]
                    dy = upcast(tl.load(dy_ptr + rows[:, None] * stride_dyr
                                        + c[None, :] * stride_dyc, mask=mask, other=0.0))
                    if COMPUTE_DW:
                        x = upcast(tl.load(x_ptr + rows[:, None] * stride_xr
                                           + c[None, :] * stride_xc, mask=mask, other=0.0))
                        mean = tl.load(mean_ptr + rows, mask=row_mask, other=0.0)
                        rstd = tl.load(rstd_ptr + rows, mask=row_mask, other=0.0)
                        x_hat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
                        dw_acc += tl.sum(dy * x_hat, axis=0)
                    if COMPUTE_DB:
                        db_acc += tl.sum(dy, axis=0)
                if COMPUTE_DW:
                    tl.store(dw_partial_ptr + pid * n_cols + c, dw_acc, mask=in_cols)
                if COMPUTE_DB:
                    tl.store(db_partial_ptr + pid * n_cols + c, db_acc, mask=in_cols)


@triton.jit
def layer_norm_sum_partials_kernel(
    dw_ptr, db_ptr, dw_partial_ptr, db_partial_ptr, n_partials, n_cols,
    COMPUTE_DW: tl.constexpr, COMPUTE_DB: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """dw[c] = sum_p dw_partial[p, c] and db[c] = sum_p db_partial[p, c] for the column
    block pid, in a fixed order (a [BLOCK_P, BLOCK_C] running tile, then a tree over its
    BLOCK_P lanes): the same result on every run.

    dw_ptr, db_ptr: (n_cols,) in the parameters' dtype, written when COMPUTE_DW /
    COMPUTE_DB. dw_partial_ptr, db_partial_ptr: (n_partials, n_cols) contiguous fp32
    (fp64 for fp64). Unused pointers may be any tensor.
    """
    pid = tl.program_id(0).to(tl.int64)
    cols = pid * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
    col_mask = cols < n_cols
    parts = tl.arange(0, BLOCK_P).to(tl.int64)
    if dw_partial_ptr.dtype.element_ty == tl.float64:
        dw_acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float64)
    else:
        dw_acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    db_acc = tl.zeros_like(dw_acc)
    for start in range(0, n_partials, BLOCK_P):
        p = start + parts
        mask = (p < n_partials)[:, None] & col_mask[None, :]
        offsets = p[:, None] * n_cols + cols[None, :]
        if COMPUTE_DW:
            dw_acc += tl.load(dw_partial_ptr + offsets, mask=mask, other=0.0)
        if COMPUTE_DB:
            db_acc += tl.load(db_partial_ptr + offsets, mask=mask, other=0.0)
    if COMPUTE_DW:
        tl.store(dw_ptr + cols, cast_to(tl.sum(dw_acc, axis=0), dw_ptr.dtype.element_ty),
                 mask=col_mask)
    if COMPUTE_DB:
        tl.store(db_ptr + cols, cast_to(tl.sum(db_acc, axis=0), db_ptr.dtype.element_ty),
                 mask=col_mask)


# ----------------------------------------------------------------------------- launchers


def _shape_list(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def normalized_shape_tuple(normalized_shape) -> tuple:
    """``normalized_shape`` as a tuple of ints (an int means one dim, as nn.LayerNorm)."""
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    if isinstance(normalized_shape, str):  # iterable, but not a shape
        normalized_shape = None
    try:
        shape = tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise TypeError(f"{OP}(): normalized_shape must be an int or a tuple of ints, got "
                        f"{normalized_shape!r}") from None
    return shape


def _check_param(name: str, param: torch.Tensor | None, normalized_shape: tuple) -> None:
    if param is None:
        return
    check_tensor(OP, name, param, FLOAT_DTYPES)
    if tuple(param.shape) != normalized_shape:
        raise ShapeError(f"{OP}: Expected {name} to be of same shape as normalized_shape, but "
                         f"got {name} of shape {_shape_list(param.shape)} and normalized_shape "
                         f"= {_shape_list(normalized_shape)}")


def check_layer_norm_args(x: torch.Tensor, normalized_shape, weight: torch.Tensor | None,
                          bias: torch.Tensor | None) -> tuple:
    """Every check of layer_norm's arguments, before any launch; returns normalized_shape
    as a tuple. Raises torch's errors (in meaning), naming shapes, dtypes and devices."""
    check_tensor(OP, "input", x, FLOAT_DTYPES)
    normalized_shape = normalized_shape_tuple(normalized_shape)
    if not normalized_shape:
        raise ShapeError(f"{OP}: Expected normalized_shape to be at least 1-dimensional, i.e., "
                         "containing at least one element, but got normalized_shape = []")
    k = len(normalized_shape)
    if x.dim() < k or tuple(x.shape[x.dim() - k:]) != normalized_shape:
        expected = ", ".join(["*"] + [str(s) for s in normalized_shape])
        raise ShapeError(f"{OP}: Given normalized_shape={_shape_list(normalized_shape)}, "
                         f"expected input with shape [{expected}], but got input of "
                         f"size{_shape_list(x.shape)}")
    _check_param("weight", weight, normalized_shape)
    _check_param("bias", bias, normalized_shape)
    params = {name: p for name, p in (("weight", weight), ("bias", bias)) if p is not None}
    if params:
        check_same_device(OP, input=x, **params)
        dtypes = {p.dtype for p in params.values()}
        param_dtype = next(iter(dtypes))
        mixed_ok = x.dtype in HALF_DTYPES and param_dtype == torch.float32 \
            and weight is not None
        if len(dtypes) > 1 or not (param_dtype == x.dtype or mixed_ok):
            listed = ", ".join(f"{n} {dtype_name(p.dtype)}" for n, p in params.items())
            raise DTypeError(f"{OP}: mixed dtypes: input {dtype_name(x.dtype)}, {listed}; "
                             "weight and bias must share the input's dtype (or be float32, "
                             "with a weight, for a float16 / bfloat16 input), as in torch")
    return normalized_shape


def _rows(t: torch.Tensor, n_norm_dims: int) -> tuple[torch.Tensor, int, int, int, int]:
    """(t, n_rows, n_cols, stride_r, stride_c): t as rows x the last n_norm_dims dims."""
    kept = list(range(t.dim() - n_norm_dims))
    return rows_and_columns(t, kept, list(range(t.dim() - n_norm_dims, t.dim())))


def _flat_param(p: torch.Tensor | None) -> torch.Tensor | None:
    """A parameter as (n_cols,): the kernels index it as a flat array, so a non-contiguous
    one is copied first (our copy kernel)."""
    if p is None:
        return None
    return contiguous(p).reshape(-1) if not p.is_contiguous() else p.reshape(-1)


def _blocks(n_rows: int, n_cols: int) -> tuple[int, int, bool]:
    """(BLOCK_R, BLOCK_C, SINGLE_BLOCK) for rows of n_cols columns."""
    block_c = min(triton.next_power_of_2(max(n_cols, 1)), MAX_BLOCK_C)
    block_r = max(1, min(TILE // block_c, triton.next_power_of_2(max(n_rows, 1))))
    return block_r, block_c, n_cols <= block_c


def _programs(n_rows: int, block_r: int, max_programs: int) -> tuple[int, int]:
    """(n_programs, rows_per_program): row blocks shared out as evenly as they go, at most
    max_programs programs, none empty."""
    n_row_blocks = cdiv(n_rows, block_r)
    blocks_per_program = cdiv(n_row_blocks, min(n_row_blocks, max_programs))
    return cdiv(n_row_blocks, blocks_per_program), blocks_per_program * block_r


def _num_warps(block_r: int, block_c: int) -> int:
    """Warps for a [block_r, block_c] tile: 256 elements a warp, 4 to 16 warps. Measured in
    the sm_90 build (cuobjdump -res-usage, bf16, unit column stride): a 4096 tile at 8 warps
    took 229 registers in the backward (255 with a column loop), at 16 warps 125 (128)."""
    return min(16, max(4, block_r * block_c // 256))


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def layer_norm_fwd(
    x: torch.Tensor,
    normalized_shape,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, rstd): y = layer_norm(x) over the trailing ``normalized_shape`` dims, in
    x's dtype and shape (contiguous); mean and rstd of each row, fp32 (fp64 for fp64),
    shape (rows,), for the backward. x may have any strides."""
    normalized_shape = check_layer_norm_args(x, normalized_shape, weight, bias)
    rows, n_rows, n_cols, stride_r, stride_c = _rows(x, len(normalized_shape))
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    stats_dtype = _stats_dtype(x.dtype)
    mean = torch.empty((n_rows,), dtype=stats_dtype, device=x.device)
    rstd = torch.empty((n_rows,), dtype=stats_dtype, device=x.device)
    if n_rows == 0 or n_cols == 0:  # nothing to normalize (and nothing backward reads)
        return y, mean, rstd
    w, b = _flat_param(weight), _flat_param(bias)
    block_r, block_c, single = _blocks(n_rows, n_cols)
    max_programs = INTERPRETER_PROGRAMS if interpreting() else cdiv(n_rows, block_r)
    n_programs, rows_per_program = _programs(n_rows, block_r, max_programs)
    numel = n_rows * n_cols
    param_bytes = sum(p.numel() * p.element_size() for p in (w, b) if p is not None)
    launch(layer_norm_fwd_kernel, (n_programs,), y, mean, rstd, rows,
           x if w is None else w, x if b is None else b,
           n_rows, n_cols, rows_per_program, float(eps), stride_r, stride_c,
           HAS_WEIGHT=w is not None, HAS_BIAS=b is not None, SINGLE_BLOCK=single,
           BLOCK_R=block_r, BLOCK_C=block_c, num_warps=_num_warps(block_r, block_c),
           flops=8 * numel,
           bytes_moved=(2 if single else 3) * numel * x.element_size() + param_bytes
           + 2 * n_rows * mean.element_size())
    return y, mean, rstd


def layer_norm_bwd(
    grad: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    normalized_shape,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    need_input: bool = True,
    need_weight: bool = True,
    need_bias: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(dx, dw, db) of layer_norm_fwd from the upstream ``grad`` (x's shape and dtype, any
    strides), the forward's input x and its saved mean and rstd. dx comes in x's dtype and
    shape, dw and db in the parameters' dtype and shape; each is None where not asked for
    (or where there is no such parameter). ``bias`` is read for its dtype only."""
    normalized_shape = check_layer_norm_args(x, normalized_shape, weight, bias)
    op = OP + " backward"
    check_tensor(op, "grad", grad, FLOAT_DTYPES)
    if tuple(grad.shape) != tuple(x.shape):
        raise ShapeError(f"{op}: grad shape {tuple(grad.shape)} != input shape "
                         f"{tuple(x.shape)}")
    check_same_dtype(op, input=x, grad=grad)
    check_same_device(op, grad=grad, input=x, mean=mean, rstd=rstd)
    n_cols = 1
    for size in normalized_shape:
        n_cols *= size
    n_rows = 1
    for size in x.shape[:x.dim() - len(normalized_shape)]:
        n_rows *= size
    stats_dtype = _stats_dtype(x.dtype)
    for name, stat in (("mean", mean), ("rstd", rstd)):
        if tuple(stat.shape) != (n_rows,) or stat.dtype != stats_dtype \
                or not stat.is_contiguous():
            raise ShapeError(f"{op}: {name} must be contiguous ({n_rows},) "
                             f"{dtype_name(stats_dtype)} as layer_norm_fwd saved it, got "
                             f"{tuple(stat.shape)} {dtype_name(stat.dtype)}")
    need_weight = need_weight and weight is not None
    need_bias = need_bias and bias is not None
    device = x.device
    dx = torch.empty(x.shape, dtype=x.dtype, device=device) if need_input else None
    dw = db = None
    if n_rows == 0:  # no rows: zero parameter gradients, as torch
        if need_weight:
            dw = torch.zeros(normalized_shape, dtype=weight.dtype, device=device)
        if need_bias:
            db = torch.zeros(normalized_shape, dtype=bias.dtype, device=device)
        return dx, dw, db
    if need_weight:
        dw = torch.empty(normalized_shape, dtype=weight.dtype, device=device)
    if need_bias:
        db = torch.empty(normalized_shape, dtype=bias.dtype, device=device)
    if n_cols == 0 or not (need_input or need_weight or need_bias):
        return dx, dw, db
    rows, _, _, stride_xr, stride_xc = _rows(x, len(normalized_shape))
    dy, _, _, stride_dyr, stride_dyc = _rows(grad, len(normalized_shape))
    has_weight = weight is not None and need_input  # w only enters dx
    w = _flat_param(weight) if has_weight else None
    block_r, block_c, single = _blocks(n_rows, n_cols)
    max_programs = INTERPRETER_PROGRAMS if interpreting() else BWD_PROGRAMS
    n_programs, rows_per_program = _programs(n_rows, block_r, max_programs)
    dw_partial = torch.empty((n_programs, n_cols), dtype=stats_dtype, device=device) \
        if need_weight else None
    db_partial = torch.empty((n_programs, n_cols), dtype=stats_dtype, device=device) \
        if need_bias else None
    numel = n_rows * n_cols
    passes = 1 if single else (2 if need_input else 0) + (1 if need_weight or need_bias else 0)
    # an unused pointer gets a tensor of the same dtype as a used one where there is one
    # (fewer compiled variants); the kernel never touches it
    any_partial = dw_partial if dw_partial is not None else db_partial
    if any_partial is None:
        any_partial = rows
    launch(layer_norm_bwd_kernel, (n_programs,),
           x if dx is None else dx, any_partial if dw_partial is None else dw_partial,
           any_partial if db_partial is None else db_partial, dy, rows,
           x if w is None else w, mean, rstd,
           n_rows, n_cols, rows_per_program, stride_dyr, stride_dyc, stride_xr, stride_xc,
           HAS_WEIGHT=has_weight, COMPUTE_DX=need_input, COMPUTE_DW=need_weight,
           COMPUTE_DB=need_bias, SINGLE_BLOCK=single, BLOCK_R=block_r, BLOCK_C=block_c,
           num_warps=_num_warps(block_r, block_c),
           flops=12 * numel,
           bytes_moved=passes * 2 * numel * x.element_size()
           + (numel * x.element_size() if need_input else 0)
           + (int(need_weight) + int(need_bias)) * n_programs * n_cols * 4)
    if need_weight or need_bias:
        block_p = min(SUM_BLOCK_P, triton.next_power_of_2(n_programs))
        sum_block_c = min(triton.next_power_of_2(n_cols), max(1, TILE // block_p))
        launch(layer_norm_sum_partials_kernel, (cdiv(n_cols, sum_block_c),),
               db if dw is None else dw, dw if db is None else db, any_partial if
               dw_partial is None else dw_partial, any_partial if db_partial is None
               else db_partial, n_programs, n_cols,
               COMPUTE_DW=need_weight, COMPUTE_DB=need_bias, BLOCK_P=block_p,
               BLOCK_C=sum_block_c, num_warps=_num_warps(block_p, sum_block_c),
               flops=(int(need_weight) + int(need_bias)) * n_programs * n_cols,
               bytes_moved=(int(need_weight) + int(need_bias)) * (n_programs + 1) * n_cols * 4)
    return dx, dw, db


def _fwd_spec(x_dt: str, p_dt: str, has_w: bool, has_b: bool, single: bool) -> CompileSpec:
    stats = "fp64" if x_dt == "fp64" else "fp32"
    block_r, block_c = (16, 256) if single else (1, MAX_BLOCK_C)
    sig = {"y_ptr": "*" + x_dt, "mean_ptr": "*" + stats, "rstd_ptr": "*" + stats,
           "x_ptr": "*" + x_dt, "w_ptr": "*" + (p_dt if has_w else x_dt),
           "b_ptr": "*" + (p_dt if has_b else x_dt), "n_rows": "i64", "n_cols": "i64",
           "rows_per_program": "i64", "eps": "fp64", "stride_xr": "i64", "stride_xc": "i64",
           "HAS_WEIGHT": "constexpr", "HAS_BIAS": "constexpr", "SINGLE_BLOCK": "constexpr",
           "BLOCK_R": "constexpr", "BLOCK_C": "constexpr"}
    return CompileSpec(layer_norm_fwd_kernel, sig,
                       {"HAS_WEIGHT": has_w, "HAS_BIAS": has_b, "SINGLE_BLOCK": single,
                        "BLOCK_R": block_r, "BLOCK_C": block_c},
                       f"x={x_dt},params={p_dt},w={has_w},b={has_b},single={single}")


def _bwd_spec(x_dt: str, p_dt: str, has_w: bool, dx: bool, dw: bool, db: bool,
              single: bool) -> CompileSpec:
    stats = "fp64" if x_dt == "fp64" else "fp32"
    partial = stats if dw or db else x_dt  # as the launcher passes unused pointers
    block_r, block_c = (16, 256) if single else (1, MAX_BLOCK_C)
    sig = {"dx_ptr": "*" + x_dt, "dw_partial_ptr": "*" + partial,
           "db_partial_ptr": "*" + partial, "dy_ptr": "*" + x_dt, "x_ptr": "*" + x_dt,
           "w_ptr": "*" + (p_dt if has_w else x_dt), "mean_ptr": "*" + stats,
           "rstd_ptr": "*" + stats, "n_rows": "i64", "n_cols": "i64",
           "rows_per_program": "i64", "stride_dyr": "i64", "stride_dyc": "i64",
           "stride_xr": "i64", "stride_xc": "i64", "HAS_WEIGHT": "constexpr",
           "COMPUTE_DX": "constexpr", "COMPUTE_DW": "constexpr", "COMPUTE_DB": "constexpr",
           "SINGLE_BLOCK": "constexpr", "BLOCK_R": "constexpr", "BLOCK_C": "constexpr"}
    return CompileSpec(layer_norm_bwd_kernel, sig,
                       {"HAS_WEIGHT": has_w, "COMPUTE_DX": dx, "COMPUTE_DW": dw,
                        "COMPUTE_DB": db, "SINGLE_BLOCK": single, "BLOCK_R": block_r,
                        "BLOCK_C": block_c},
                       f"x={x_dt},params={p_dt},w={has_w},dx={dx},dw={dw},db={db},"
                       f"single={single}")


def _sum_spec(p_dt: str, dw: bool, db: bool) -> CompileSpec:
    stats = "fp64" if p_dt == "fp64" else "fp32"
    sig = {"dw_ptr": "*" + p_dt, "db_ptr": "*" + p_dt, "dw_partial_ptr": "*" + stats,
           "db_partial_ptr": "*" + stats, "n_partials": "i64", "n_cols": "i64",
           "COMPUTE_DW": "constexpr", "COMPUTE_DB": "constexpr", "BLOCK_P": "constexpr",
           "BLOCK_C": "constexpr"}
    return CompileSpec(layer_norm_sum_partials_kernel, sig,
                       {"COMPUTE_DW": dw, "COMPUTE_DB": db, "BLOCK_P": SUM_BLOCK_P,
                        "BLOCK_C": 128}, f"params={p_dt},dw={dw},db={db}")


def _specs() -> list[CompileSpec]:
    """Each kernel in each dtype pairing users get (x's dtype; fp32 parameters with fp16 /
    bf16 x), with weight and bias and every gradient, one block and column loop; and every
    other constexpr variant the launchers pass, in fp32 (one block) and bf16 (column loop).
    A dtype changes only loads, upcasts and cast_to stores, which the first set covers, so
    the full product (152 specs, about 110 s to build) would add compile time, not coverage.
    """
    pairings = [("fp32", "fp32"), ("fp16", "fp16"), ("bf16", "bf16"), ("fp64", "fp64"),
                ("fp16", "fp32"), ("bf16", "fp32")]
    specs = []
    for x_dt, p_dt in pairings:
        for single in (True, False):
            specs.append(_fwd_spec(x_dt, p_dt, True, True, single))
            specs.append(_bwd_spec(x_dt, p_dt, True, True, True, True, single))
    # (HAS_WEIGHT, HAS_BIAS) of the forward
    for has_w, has_b in [(True, False), (False, True), (False, False)]:
        specs.append(_fwd_spec("fp32", "fp32", has_w, has_b, True))
        specs.append(_fwd_spec("bf16", "bf16", has_w, has_b, False))
    # (HAS_WEIGHT, COMPUTE_DX, COMPUTE_DW, COMPUTE_DB) of the backward: w is read only for
    # dx, and dw exists only with a weight
    variants = [(True, True, True, False), (True, True, False, True),
                (True, True, False, False), (False, True, False, True),
                (False, True, False, False), (False, False, True, True),
                (False, False, True, False), (False, False, False, True)]
    for has_w, dx, dw, db in variants:
        specs.append(_bwd_spec("fp32", "fp32", has_w, dx, dw, db, True))
        specs.append(_bwd_spec("bf16", "bf16", has_w, dx, dw, db, False))
    specs.append(_bwd_spec("bf16", "fp32", False, False, True, True, True))  # mixed, no dx
    for p_dt in ("fp32", "fp16", "bf16", "fp64"):
        specs.append(_sum_spec(p_dt, True, True))
    specs += [_sum_spec("fp32", True, False), _sum_spec("bf16", False, True)]
    return specs


COMPILE_SPECS = _specs()
