"""Sum and mean over any set of dims, the backward of broadcasting (sum_to_shape), and the
max / min family (max and min with or without a dim, amax, amin, argmax, argmin) with its
backward.

A reduction is seen as a 2-D problem: the kept dims are rows, the reduced dims are
columns. When each group merges into a single strided dim (true for contiguous
inputs reduced over trailing or leading dims, transposes, and slices), the kernel
reads x through those two strides; otherwise (say dims (0, 2) of a 3-D tensor) one
extra launch copies x permuted to (kept..., reduced...) so that both groups merge.

Accumulation is fp32 (fp64 for fp64 input), in a BLOCK_R x BLOCK_C tile whose lanes
are summed by a tree at the end, with no atomics, so results are deterministic.
With few rows and many columns (a full reduction, say) the columns are split over
programs writing fp32 partials, and a second launch of the same kernel sums those. The
max/min family splits the same way: each split writes its first extreme and that
column, and a second launch of the same kernel picks among the splits.
"""

from __future__ import annotations

import operator

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    OutOfRangeError,
    ShapeError,
    check_same_device,
    check_tensor,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .copy import copy, merged_layout
from .elementwise import div_rn, scalar_like, upcast

TILE = 4096  # elements per program per iteration: 32 fp32 values per thread at 4 warps
MAX_BLOCK_R_CONTIGUOUS_ROWS = 256
TARGET_PROGRAMS = 264  # two per SM on an H100/H200 (132 SMs)
MIN_ITERS_PER_SPLIT = 4  # split columns only while each program still loops this often
# argmax keeps a value, an int64 index and masks per element: a 4096 tile of int64 spilled
# registers in the sm_90 build (255 registers, 100 B of spills); 1024 does not
ARGMAX_TILE = 1024
# the max/min backward keeps x, the ties and a per-row share live: a 4096 tile of 256 rows
# spilled in the sm_90 build (255 registers, 352 B of spills); 2048 does not (206 at most)
MINMAX_BWD_TILE = 2048
COUNT_BLOCK_S = 256  # split counts a max/min backward program adds per step (<= 264 splits)


@triton.jit
def sum_kernel(
    out_ptr, x_ptr, divisor: tl.float64,
    n_rows, n_cols, cols_per_split,
    stride_xr, stride_xc, stride_or, stride_os,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[r, s] = sum(x[r, c] for c in split s) / divisor (integers and bools: the int64
    sum, undivided).

    out_ptr: (n_rows, n_splits), strides (stride_or, stride_os); the grid's axis 1
        is the split index s (one split: out is (n_rows,)).
    x_ptr: (n_rows, n_cols), strides (stride_xr, stride_xc), any dtype.
    divisor: 1 for a sum, the column count for a mean (0 gives NaN, as torch).
    cols_per_split: columns per split, a multiple of BLOCK_C (n_cols for one split).
    """
    pid_r = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < n_rows
    col_start = pid_s * cols_per_split
    col_end = tl.minimum(col_start + cols_per_split, n_cols)
    if x_ptr.dtype.element_ty == tl.float64:
        acc = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float64)
    elif x_ptr.dtype.element_ty.is_int():  # integers and bools: exact, in int64 (as torch)
        acc = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.int64)
    else:
        acc = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float32)
    row_ptrs = x_ptr + rows[:, None] * stride_xr
    for start in range(col_start, col_end, BLOCK_C):
        cols = start + tl.arange(0, BLOCK_C)
        mask = row_mask[:, None] & (cols < col_end)[None, :]
        x = tl.load(row_ptrs + cols[None, :] * stride_xc, mask=mask, other=0.0)
        acc += upcast(x).to(acc.dtype)
    total = tl.sum(acc, axis=1)
    if not x_ptr.dtype.element_ty.is_int():  # an integer sum is never divided
        total = div_rn(total, tl.zeros_like(total) + scalar_like(divisor, total))
    out_ptrs = out_ptr + rows * stride_or + pid_s * stride_os
    tl.store(out_ptrs, cast_to(total, out_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def minmax_kernel(
    idx_ptr, val_ptr, x_ptr, map_ptr, n_rows, n_cols, cols_per_split,
    stride_xr, stride_xc, stride_or, stride_os, stride_mr,
    IS_MIN: tl.constexpr, WRITE_INDEX: tl.constexpr, WRITE_VALUE: tl.constexpr,
    MAP_INDEX: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """For each row r, the first column c holding the row's maximum (IS_MIN: minimum), as
    torch's argmax / max(dim) on the CPU: a NaN wins over every number (the first NaN), and
    ties go to the first column. Writes that index and/or the element x[r, c] itself.

    idx_ptr: (n_rows, n_splits) int64, strides (stride_or, stride_os), written when
        WRITE_INDEX; the grid's axis 1 is the split s, which covers columns
        [s * cols_per_split, (s + 1) * cols_per_split) (one split: cols_per_split = n_cols).
    val_ptr: like idx_ptr, x's dtype, written when WRITE_VALUE: x[r, idx[r]] exactly as
        stored (NaN where a NaN won), so max, amax and friends need no cast.
    x_ptr: (n_rows, n_cols >= 1), strides (stride_xr, stride_xc), any float, integer or
        bool dtype. An unused output pointer may be any tensor; it is never touched.
    map_ptr: (n_rows, n_cols) int64, row stride stride_mr, read when MAP_INDEX: the index
        written is map[r, c] instead of c. A split reduction's second pass runs on the
        (n_rows, n_splits) values the first wrote, mapping the winning split back to the
        column the first pass found in it; splits are in column order, so the first
        occurrence is still the one kept.
    Per tile: the first NaN column if any, else the first column equal to the tile's
    extreme (NaN lanes excluded); a later tile replaces the running answer only with a NaN
    (when none was seen) or a strictly better extreme, so the first occurrence is kept.
    """
    pid = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < n_rows
    col_start = pid_s * cols_per_split
    col_end = tl.minimum(col_start + cols_per_split, n_cols)
    row_ptrs = x_ptr + rows[:, None] * stride_xr
    # compared exactly: halves in fp32, fp32/fp64 as they are, integers and bools in int64;
    # masked and NaN lanes hold the identity of the reduction
    if x_ptr.dtype.element_ty.is_int():
        best = tl.zeros([BLOCK_R], dtype=tl.int64)  # replaced by the first tile's extreme
        if IS_MIN:
            identity = 9223372036854775807
        else:
            identity = -9223372036854775808
    else:
        best = upcast(tl.zeros([BLOCK_R], dtype=x_ptr.dtype.element_ty))
        if IS_MIN:
            identity = float("inf")
        else:
            identity = float("-inf")
    best_idx = tl.zeros([BLOCK_R], dtype=tl.int64)
    seen_nan = tl.zeros([BLOCK_R], dtype=tl.int1)
    for start in range(col_start, col_end, BLOCK_C):
        cols = start + tl.arange(0, BLOCK_C).to(tl.int64)
        mask = row_mask[:, None] & (cols < col_end)[None, :]
        x = tl.load(row_ptrs + cols[None, :] * stride_xc, mask=mask, other=0).to(best.dtype)
        is_nan = (x != x) & mask
        valid = mask & ~is_nan
        last = tl.zeros_like(cols) + n_cols  # "no such column"
        nan_idx = tl.min(tl.where(is_nan, cols[None, :], last[None, :]), axis=1)
        if IS_MIN:
            tile_best = tl.min(tl.where(valid, x, identity), axis=1)
            improves = tile_best < best
        else:
            tile_best = tl.max(tl.where(valid, x, identity), axis=1)
            improves = tile_best > best
        at_best = valid & (x == tile_best[:, None])
        best_col = tl.min(tl.where(at_best, cols[None, :], last[None, :]), axis=1)
        has_nan = nan_idx < n_cols
        has_best = best_col < n_cols
        better = has_best & ((start == col_start) | improves)
        take = ~seen_nan & (has_nan | better)
        best_idx = tl.where(take, tl.where(has_nan, nan_idx, best_col), best_idx)
        best = tl.where(~seen_nan & better, tile_best, best)
        seen_nan = seen_nan | has_nan
    out_offsets = rows * stride_or + pid_s * stride_os
    if WRITE_VALUE:
        # a gather of one element per row: an exact copy in x's own dtype (no cast)
        value = tl.load(x_ptr + rows * stride_xr + best_idx * stride_xc, mask=row_mask)
        tl.store(val_ptr + out_offsets, value, mask=row_mask)
    if WRITE_INDEX:
        if MAP_INDEX:
            best_idx = tl.load(map_ptr + rows * stride_mr + best_idx, mask=row_mask, other=0)
        tl.store(idx_ptr + out_offsets, best_idx, mask=row_mask)


# Backward of the max/min family, per row r of the (rows, columns) layout (g[r] the
# incoming gradient of the row's result y[r]):
#   max(dim) / min(dim) return y[r] = x[r, i_r] with i_r the returned index, so
#       dy[r]/dx[r, c] = [c == i_r]  =>  gx[r, c] = g[r] if c == i_r else 0
#       (torch's value_selecting_reduction_backward: the gradient goes to that index only).
#   max() / min() over everything, and amax / amin: y[r] = x[r, c] for every tied column c,
#       a kink where torch takes the subgradient that splits g evenly among the ties:
#       tie[r, c] = (x[r, c] == y[r]), count[r] = sum_c tie[r, c], gx = tie * g / count.
#       NaN results differ, following torch's two formulas:
#       - max()/min() (evenly_distribute_backward): a NaN result ties with every NaN
#         element, and gx = where(tie, g / count, 0);
#       - amax/amin (scale_grad_by_count): NaN == NaN is false, so count = 0 and
#         gx = (g / count) * tie is NaN across the whole row (g / 0 * 0).
#   The count comes from a first pass over the row in the same program, so each backward
#   is one launch. With few rows and many columns the columns are split over programs
#   (grid axis 1) as in the forward: modes 1 and 2 then take two launches, one writing
#   each split's tie count, one adding a row's counts and writing gx.
@triton.jit
def minmax_bwd_kernel(
    gx_ptr, count_ptr, g_ptr, x_ptr, ref_ptr,
    n_rows, n_cols, cols_per_split, n_splits,
    stride_gxr, stride_gxc, stride_gr, stride_xr, stride_xc, stride_refr,
    MODE: tl.constexpr, COUNTS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """gx of a max/min-family reduction over the columns of each row (derivation above).

    gx_ptr: (n_rows, n_cols) output, strides (stride_gxr, stride_gxc), the gradient's dtype.
    g_ptr: (n_rows,) incoming gradient, stride stride_gr (0 for a broadcast one).
    x_ptr: (n_rows, n_cols) forward input, strides (stride_xr, stride_xc); unused in MODE 0.
    ref_ptr: (n_rows,) stride stride_refr: MODE 0, the int64 indices max(dim) returned;
        MODE 1 and 2, the forward result y (x's dtype).
    MODE: 0 max(dim)/min(dim), 1 max()/min() (NaN ties NaN), 2 amax/amin.
    The grid's axis 1 is the split s, covering columns [s * cols_per_split, (s + 1) *
    cols_per_split) (one split: cols_per_split = n_cols). COUNTS (modes 1, 2):
    0 counts the row's ties in this program (one split); 1 only writes this split's
    count to count_ptr[r, s] ((n_rows, n_splits) int32, row-major); 2 adds a row's
    n_splits counts (BLOCK_S at a time) from count_ptr, then writes gx. Otherwise
    count_ptr is any tensor, never touched.
    """
    pid = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < n_rows
    col_start = pid_s * cols_per_split
    col_end = tl.minimum(col_start + cols_per_split, n_cols)
    g = upcast(tl.load(g_ptr + rows * stride_gr, mask=row_mask, other=0.0))
    ref = tl.load(ref_ptr + rows * stride_refr, mask=row_mask, other=0)
    x_rows = x_ptr + rows[:, None] * stride_xr
    if MODE != 0:
        y = upcast(ref)[:, None]
        if COUNTS == 2:
            splits = tl.arange(0, BLOCK_S)
            counts = tl.zeros([BLOCK_R, BLOCK_S], dtype=tl.int32)
            for s_start in range(0, n_splits, BLOCK_S):
                s_mask = row_mask[:, None] & ((s_start + splits) < n_splits)[None, :]
                counts += tl.load(count_ptr + rows[:, None] * n_splits + s_start
                                  + splits[None, :], mask=s_mask, other=0)
            count = tl.sum(counts, axis=1)
        else:
            ties = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.int32)
            for start in range(col_start, col_end, BLOCK_C):
                cols = start + tl.arange(0, BLOCK_C).to(tl.int64)
                mask = row_mask[:, None] & (cols < col_end)[None, :]
                x = upcast(tl.load(x_rows + cols[None, :] * stride_xc, mask=mask, other=0.0))
                tie = x == y
                if MODE == 1:
                    tie = tie | ((x != x) & (y != y))
                ties += (tie & mask).to(tl.int32)
            count = tl.sum(ties, axis=1)
            if COUNTS == 1:
                tl.store(count_ptr + rows * n_splits + pid_s, count, mask=row_mask)
                return
        share = div_rn(g, count.to(g.dtype))[:, None]  # g / 0: +-inf or NaN, as torch
    gx_rows = gx_ptr + rows[:, None] * stride_gxr
    for start in range(col_start, col_end, BLOCK_C):
        cols = start + tl.arange(0, BLOCK_C).to(tl.int64)
        mask = row_mask[:, None] & (cols < col_end)[None, :]
        if MODE == 0:
            gx = tl.where(cols[None, :] == ref[:, None], g[:, None], 0.0)
        else:
            x = upcast(tl.load(x_rows + cols[None, :] * stride_xc, mask=mask, other=0.0))
            tie = x == y
            if MODE == 1:
                gx = tl.where(tie | ((x != x) & (y != y)), share, 0.0)
            else:
                gx = share * tie.to(share.dtype)
        tl.store(gx_rows + cols[None, :] * stride_gxc, cast_to(gx, gx_ptr.dtype.element_ty),
                 mask=mask)


# ----------------------------------------------------------------------------- launchers


def _blocks(n_rows: int, n_cols: int, rows_contiguous: bool, tile: int = TILE
            ) -> tuple[int, int]:
    """(BLOCK_R, BLOCK_C): a tile of about ``tile`` elements, long along the axis that is
    contiguous in memory so that loads coalesce."""
    cols_p2 = triton.next_power_of_2(max(n_cols, 1))
    rows_p2 = triton.next_power_of_2(max(n_rows, 1))
    if rows_contiguous:
        block_r = min(rows_p2, MAX_BLOCK_R_CONTIGUOUS_ROWS)
        return block_r, min(cols_p2, max(1, tile // block_r))
    block_c = min(cols_p2, tile)
    return min(rows_p2, max(1, tile // block_c)), block_c


def _n_splits(n_row_blocks: int, n_cols: int, block_c: int) -> int:
    """How many programs share each row block's columns: enough to fill a GPU when row
    blocks are few, while each program still loops over MIN_ITERS_PER_SPLIT tiles."""
    if n_row_blocks >= TARGET_PROGRAMS:
        return 1
    return max(1, min(cdiv(TARGET_PROGRAMS, n_row_blocks),
                      n_cols // (MIN_ITERS_PER_SPLIT * block_c)))


def _launch_sum(out: torch.Tensor, x: torch.Tensor, n_rows: int, n_cols: int,
                stride_xr: int, stride_xc: int, divisor: float) -> None:
    """out (contiguous, n_rows) = row sums of the strided (n_rows, n_cols) view of x,
    divided by ``divisor``; split into two launches when rows are too few to fill a GPU."""
    rows_contiguous = stride_xr == 1 and stride_xc != 1 and n_rows > 1
    block_r, block_c = _blocks(n_rows, n_cols, rows_contiguous)
    n_row_blocks = cdiv(n_rows, block_r)
    n_splits = _n_splits(n_row_blocks, n_cols, block_c)
    read_bytes = n_rows * n_cols * x.element_size()
    if n_splits == 1:
        launch(sum_kernel, (n_row_blocks, 1), out, x, float(divisor), n_rows, n_cols, n_cols,
               stride_xr, stride_xc, 1, 0, BLOCK_R=block_r, BLOCK_C=block_c,
               flops=n_rows * n_cols, bytes_moved=read_bytes + n_rows * out.element_size())
        return
    cols_per_split = cdiv(cdiv(n_cols, n_splits), block_c) * block_c
    n_splits = cdiv(n_cols, cols_per_split)
    if x.is_floating_point():
        acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    else:
        acc_dtype = torch.int64
    partial = torch.empty((n_rows, n_splits), dtype=acc_dtype, device=x.device)
    launch(sum_kernel, (n_row_blocks, n_splits), partial, x, 1.0, n_rows, n_cols,
           cols_per_split, stride_xr, stride_xc, n_splits, 1, BLOCK_R=block_r, BLOCK_C=block_c,
           flops=n_rows * n_cols, bytes_moved=read_bytes + partial.numel() * partial.element_size())
    block_r, block_c = _blocks(n_rows, n_splits, False)
    launch(sum_kernel, (cdiv(n_rows, block_r), 1), out, partial, float(divisor), n_rows,
           n_splits, n_splits, n_splits, 1, 1, 0, BLOCK_R=block_r, BLOCK_C=block_c,
           flops=partial.numel(),
           bytes_moved=partial.numel() * partial.element_size() + n_rows * out.element_size())


def _single_stride(sizes: list[int], strides: list[int]) -> int | None:
    """The stride of the one dim that (sizes, strides) merges into, or None when they
    do not merge into one dim."""
    try:
        merged_sizes, (merged_strides,) = merged_layout(sizes, strides)
    except ShapeError:
        return None
    if any(s != 1 for s in merged_sizes[:-1]):
        return None
    return merged_strides[-1]


def _normalize_dims(op: str, dims, ndim: int) -> list[int]:
    if dims is None:
        return list(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    rank = max(ndim, 1)  # a 0-d tensor takes dim 0 or -1, as in torch
    normalized = []
    for d in dims:
        if not -rank <= d < rank:
            raise OutOfRangeError(
                f"{op}: Dimension out of range (expected to be in range of [{-rank}, "
                f"{rank - 1}], but got {d})"
            )
        d = d % rank
        if d in normalized:
            raise ShapeError(f"{op}: dim {d} appears multiple times in the list of dims")
        normalized.append(d)
    if not normalized:  # dims=() reduces everything, as torch.sum(x, dim=()) does
        return list(range(ndim))
    return sorted(d for d in normalized if d < ndim)


def sum(  # noqa: A001 - the op's name
    x: torch.Tensor,
    dims: int | tuple[int, ...] | list[int] | None = None,
    keepdim: bool = False,
    mean: bool = False,
) -> torch.Tensor:
    """Sum (or mean) of x over ``dims`` (None or (): all dims), any strides, in x's dtype;
    a sum of integers or bools is exact, in int64, as torch's.

    Empty reductions give 0 for a sum and NaN for a mean, as torch."""
    op = "mean" if mean else "sum"
    check_tensor(op, "x", x, FLOAT_DTYPES if mean else FLOAT_DTYPES + INTEGER_DTYPES + (torch.bool,))
    out_dtype = x.dtype if x.is_floating_point() else torch.int64
    reduced = _normalize_dims(op, dims, x.dim())
    kept = [d for d in range(x.dim()) if d not in reduced]
    shape, strides = list(x.shape), list(x.stride())
    if keepdim:
        out_shape = [1 if d in reduced else shape[d] for d in range(x.dim())]
    else:
        out_shape = [shape[d] for d in kept]
    out = torch.empty(out_shape, dtype=out_dtype, device=x.device)
    if out.numel() == 0:
        return out
    x, n_rows, n_cols, stride_r, stride_c = rows_and_columns(x, kept, reduced)
    _launch_sum(out, x, n_rows, n_cols, stride_r, stride_c, float(n_cols) if mean else 1.0)
    return out


def rows_and_columns(x: torch.Tensor, kept: list[int], reduced: list[int]) -> tuple:
    """(x, n_rows, n_cols, stride_r, stride_c): x as a strided 2-D view, the kept dims as
    rows and the reduced dims as columns (row-major within each group)."""
    shape, strides = list(x.shape), list(x.stride())
    n_rows = 1
    for d in kept:
        n_rows *= shape[d]
    n_cols = 1
    for d in reduced:
        n_cols *= shape[d]
    stride_r = _single_stride([shape[d] for d in kept], [strides[d] for d in kept])
    stride_c = _single_stride([shape[d] for d in reduced], [strides[d] for d in reduced])
    if stride_r is None or stride_c is None:
        # Kept or reduced dims are interleaved in memory (e.g. dims (0, 2) of a 3-D
        # tensor): one extra launch lays x out as (kept..., reduced...) contiguously.
        x = copy(x.permute(*kept, *reduced))
        stride_r, stride_c = n_cols, 1
    return x, n_rows, n_cols, stride_r, stride_c


# ----------------------------------------------------------------------------- max / min

MINMAX_DTYPES = FLOAT_DTYPES + INTEGER_DTYPES + (torch.bool,)
ARG_DTYPES = FLOAT_DTYPES + INTEGER_DTYPES  # torch's argmax / argmin refuse bool input
BWD_MODES = {"index": 0, "even": 1, "amax": 2}  # minmax_bwd_kernel's MODE


def _single_dim(op: str, dim) -> int:
    """dim as an int: max(dim), min(dim), argmax and argmin take one dim, not a tuple."""
    try:
        return operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}(): dim must be an int, got {dim!r}") from None


def _reduction_dims(op: str, shape, dims, keepdim: bool) -> tuple[list, list, list]:
    """(reduced, kept, out_shape) of a reduction of ``shape`` over ``dims`` (None or ():
    every dim; a 0-d tensor takes dim 0 or -1 and reduces nothing)."""
    shape = list(shape)
    reduced = _normalize_dims(op, dims, len(shape))
    kept = [d for d in range(len(shape)) if d not in reduced]
    if keepdim:
        out_shape = [1 if d in reduced else shape[d] for d in range(len(shape))]
    else:
        out_shape = [shape[d] for d in kept]
    return reduced, kept, out_shape


def _check_nonempty(op: str, x: torch.Tensor, reduced: list, dim_given: bool) -> None:
    """A max or min over no elements has no value: torch raises, and so do we."""
    if x.numel() != 0:
        return
    if not dim_given:
        raise ShapeError(f"{op}(): Expected reduction dim to be specified for input.numel() "
                         f"== 0 (input shape {tuple(x.shape)}). Specify the reduction dim "
                         "with the 'dim' argument.")
    for d in reduced:
        if x.shape[d] == 0:
            raise ShapeError(f"{op}(): Expected reduction dim {d} to have non-zero size "
                             f"(input shape {tuple(x.shape)})")


def _minmax(x: torch.Tensor, reduced: list, kept: list, out_shape: list, is_min: bool,
            want_values: bool, want_indices: bool) -> tuple:
    """(values or None, indices or None) of the max (or min) of x over ``reduced``: one
    launch, plus a copy when the kept or reduced dims do not merge into one stride."""
    values = torch.empty(out_shape, dtype=x.dtype, device=x.device) if want_values else None
    indices = (torch.empty(out_shape, dtype=torch.int64, device=x.device) if want_indices
               else None)
    out = values if want_values else indices
    if out.numel() == 0:
        return values, indices
    x, n_rows, n_cols, stride_r, stride_c = rows_and_columns(x, kept, reduced)
    block_r, block_c = _blocks(n_rows, n_cols, stride_r == 1 and stride_c != 1 and n_rows > 1,
                               tile=ARGMAX_TILE)
    n_row_blocks = cdiv(n_rows, block_r)
    n_splits = _n_splits(n_row_blocks, n_cols, block_c)
    written = (x.element_size() if want_values else 0) + (8 if want_indices else 0)
    read_bytes = n_rows * n_cols * x.element_size()
    if n_splits == 1:
        launch(minmax_kernel, (n_row_blocks, 1), indices if want_indices else out,
               values if want_values else out, x, x, n_rows, n_cols, n_cols,
               stride_r, stride_c, 1, 0, 0,
               IS_MIN=is_min, WRITE_INDEX=want_indices, WRITE_VALUE=want_values,
               MAP_INDEX=False, BLOCK_R=block_r, BLOCK_C=block_c, flops=n_rows * n_cols,
               bytes_moved=read_bytes + n_rows * written)
        return values, indices
    # Few rows and many columns (x.max(), say): each split finds its own first extreme
    # (value and column), then one program per row block picks among the splits.
    cols_per_split = cdiv(cdiv(n_cols, n_splits), block_c) * block_c
    n_splits = cdiv(n_cols, cols_per_split)
    part_values = torch.empty((n_rows, n_splits), dtype=x.dtype, device=x.device)
    part_indices = torch.empty((n_rows, n_splits), dtype=torch.int64, device=x.device)
    part_bytes = part_values.numel() * (x.element_size() + 8)
    launch(minmax_kernel, (n_row_blocks, n_splits), part_indices, part_values, x, x,
           n_rows, n_cols, cols_per_split, stride_r, stride_c, n_splits, 1, 0,
           IS_MIN=is_min, WRITE_INDEX=True, WRITE_VALUE=True, MAP_INDEX=False,
           BLOCK_R=block_r, BLOCK_C=block_c, flops=n_rows * n_cols,
           bytes_moved=read_bytes + part_bytes)
    block_r, block_c = _blocks(n_rows, n_splits, False, tile=ARGMAX_TILE)
    launch(minmax_kernel, (cdiv(n_rows, block_r), 1), indices if want_indices else out,
           values if want_values else out, part_values, part_indices, n_rows, n_splits,
           n_splits, n_splits, 1, 1, 0, n_splits,
           IS_MIN=is_min, WRITE_INDEX=want_indices, WRITE_VALUE=want_values,
           MAP_INDEX=True, BLOCK_R=block_r, BLOCK_C=block_c, flops=part_values.numel(),
           bytes_moved=part_bytes + n_rows * written)
    return values, indices


def _arg_extreme(op: str, x: torch.Tensor, dim, keepdim: bool, is_min: bool) -> torch.Tensor:
    check_tensor(op, "x", x, ARG_DTYPES)
    dim = None if dim is None else _single_dim(op, dim)
    reduced, kept, out_shape = _reduction_dims(op, x.shape, dim, keepdim)
    _check_nonempty(op, x, reduced, dim is not None)
    return _minmax(x, reduced, kept, out_shape, is_min, False, True)[1]


def argmax(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Indices (int64) of the first maximum along ``dim``, or of the flattened tensor when
    dim is None, as torch.argmax (a NaN is the maximum). One launch (plus a copy when the
    kept dims do not merge into one stride)."""
    return _arg_extreme("argmax", x, dim, keepdim, False)


def argmin(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Indices (int64) of the first minimum, as torch.argmin (a NaN is the minimum)."""
    return _arg_extreme("argmin", x, dim, keepdim, True)


def max_dim(x: torch.Tensor, dim: int, keepdim: bool = False,
            is_min: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of torch.max(x, dim) (is_min: torch.min): the first maximum of
    each slice along ``dim`` and its int64 index, in one launch; a NaN wins (the first
    one), ties go to the first index, as torch on the CPU. Integers and bools exact."""
    op = "min" if is_min else "max"
    check_tensor(op, "x", x, MINMAX_DTYPES)
    dim = _single_dim(op, dim)
    reduced, kept, out_shape = _reduction_dims(op, x.shape, dim, keepdim)
    _check_nonempty(op, x, reduced, True)
    return _minmax(x, reduced, kept, out_shape, is_min, True, True)


def amax(x: torch.Tensor, dims: int | tuple[int, ...] | list[int] | None = None,
         keepdim: bool = False, is_min: bool = False, op: str | None = None) -> torch.Tensor:
    """torch.amax(x, dims, keepdim) (is_min: amin) over an int or tuple of dims (None or
    (): every dim), in x's dtype; NaN propagates. With dims None it is also x.max() and
    x.min(), which ``op`` names in error messages. One launch (plus a copy when the dims
    interleave)."""
    op = op or ("amin" if is_min else "amax")
    check_tensor(op, "x", x, MINMAX_DTYPES)
    reduced, kept, out_shape = _reduction_dims(op, x.shape, dims, keepdim)
    dim_given = dims is not None and (not isinstance(dims, (tuple, list)) or len(dims) > 0)
    _check_nonempty(op, x, reduced, dim_given)
    return _minmax(x, reduced, kept, out_shape, is_min, True, False)[0]


def _row_view(t: torch.Tensor, kept_sizes: list, kept_dims: list) -> tuple[torch.Tensor, int]:
    """(t, stride) with t's dims ``kept_dims`` walked as one strided dim of the kept sizes;
    a copy (one launch) when they do not merge, e.g. a gradient broadcast along one dim."""
    stride = _single_stride(kept_sizes, [t.stride(d) for d in kept_dims])
    if stride is None:
        t = copy(t)
        stride = _single_stride(kept_sizes, [t.stride(d) for d in kept_dims])
    return t, stride


def input_grad_buffer(input_shape: list, kept: list, reduced: list, dtype: torch.dtype,
                      device) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(gx, target, stride_r, stride_c): a new gradient of the input's shape, and the tensor
    a kernel writes it through as rows (kept dims) x columns (reduced dims) with those two
    strides. Where the reduced dims interleave with kept ones (say dim 1 of a 3-D tensor),
    target is a contiguous (kept..., reduced...) buffer and gx that buffer permuted back to
    the input's dim order, a view with other strides, as a permute's gradient is (no extra
    launch)."""
    gx = torch.empty(input_shape, dtype=dtype, device=device)
    stride_r = _single_stride([input_shape[d] for d in kept], [gx.stride(d) for d in kept])
    stride_c = _single_stride([input_shape[d] for d in reduced], [gx.stride(d) for d in reduced])
    if stride_r is not None and stride_c is not None:
        return gx, gx, stride_r, stride_c
    order = kept + reduced
    target = torch.empty([input_shape[d] for d in order], dtype=dtype, device=device)
    n_cols = 1
    for d in reduced:
        n_cols *= input_shape[d]
    return target.permute(*sorted(range(len(order)), key=order.__getitem__)), target, n_cols, 1


def _check_result(op: str, name: str, t: torch.Tensor, out_shape: list,
                  dtype: torch.dtype) -> None:
    check_tensor(op, name, t, (dtype,))
    if list(t.shape) != out_shape:
        raise ShapeError(f"{op}: {name} has shape {tuple(t.shape)}, but the reduction's "
                         f"result has shape {tuple(out_shape)}")


def _minmax_bwd(op: str, mode: str, grad: torch.Tensor, x: torch.Tensor | None,
                ref: torch.Tensor, input_shape, dims, keepdim: bool) -> torch.Tensor:
    """Checks, then one minmax_bwd_kernel launch (mode: a BWD_MODES key; ref: the indices
    for "index", else the forward result), plus a copy of x, grad or ref only where their
    kept or reduced dims do not merge into one stride."""
    input_shape = list(input_shape)
    reduced, kept, out_shape = _reduction_dims(op, input_shape, dims, keepdim)
    check_tensor(op, "grad", grad, FLOAT_DTYPES)
    _check_result(op, "grad", grad, out_shape, grad.dtype)
    if mode == "index":
        _check_result(op, "indices", ref, out_shape, torch.int64)
        check_same_device(op, grad=grad, indices=ref)
    else:
        check_tensor(op, "x", x, (grad.dtype,))
        if list(x.shape) != input_shape:
            raise ShapeError(f"{op}: x has shape {tuple(x.shape)}, expected "
                             f"{tuple(input_shape)}")
        _check_result(op, "result", ref, out_shape, grad.dtype)
        check_same_device(op, grad=grad, x=x, result=ref)
    gx = torch.empty(input_shape, dtype=grad.dtype, device=grad.device)
    if gx.numel() == 0:
        return gx
    kept_sizes = [input_shape[d] for d in kept]
    n_rows, n_cols = 1, 1
    for d in kept:
        n_rows *= input_shape[d]
    for d in reduced:
        n_cols *= input_shape[d]
    gx, target, stride_gxr, stride_gxc = input_grad_buffer(input_shape, kept, reduced,
                                                           grad.dtype, grad.device)
    result_dims = kept if keepdim else list(range(len(kept)))
    grad, stride_g = _row_view(grad, kept_sizes, result_dims)
    ref, stride_ref = _row_view(ref, kept_sizes, result_dims)
    if mode == "index":
        x, stride_xr, stride_xc = target, 0, 0  # unread
        rows_contiguous = stride_gxr == 1 and stride_gxc != 1 and n_rows > 1
        flops, read_bytes = n_rows * n_cols, 0
    else:
        x, _, _, stride_xr, stride_xc = rows_and_columns(x, kept, reduced)
        rows_contiguous = stride_xr == 1 and stride_xc != 1 and n_rows > 1
        flops, read_bytes = 3 * n_rows * n_cols, 2 * n_rows * n_cols * x.element_size()
    block_r, block_c = _blocks(n_rows, n_cols, rows_contiguous, tile=MINMAX_BWD_TILE)
    n_row_blocks = cdiv(n_rows, block_r)
    n_splits = _n_splits(n_row_blocks, n_cols, block_c)
    cols_per_split = cdiv(cdiv(n_cols, n_splits), block_c) * block_c
    n_splits = cdiv(n_cols, cols_per_split)
    args = (grad, x, ref, n_rows, n_cols, cols_per_split, n_splits, stride_gxr, stride_gxc,
            stride_g, stride_xr, stride_xc, stride_ref)
    small_bytes = n_rows * (grad.element_size() + ref.element_size())
    written = n_rows * n_cols * gx.element_size()
    if n_splits == 1 or mode == "index":
        launch(minmax_bwd_kernel, (n_row_blocks, n_splits), target, target, *args,
               MODE=BWD_MODES[mode], COUNTS=0, BLOCK_R=block_r, BLOCK_C=block_c, BLOCK_S=1,
               flops=flops, bytes_moved=read_bytes + small_bytes + written)
        return gx
    counts = torch.empty((n_rows, n_splits), dtype=torch.int32, device=grad.device)
    launch(minmax_bwd_kernel, (n_row_blocks, n_splits), target, counts, *args,
           MODE=BWD_MODES[mode], COUNTS=1, BLOCK_R=block_r, BLOCK_C=block_c, BLOCK_S=1,
           flops=flops // 2, bytes_moved=read_bytes // 2 + small_bytes + 4 * counts.numel())
    launch(minmax_bwd_kernel, (n_row_blocks, n_splits), target, counts, *args,
           MODE=BWD_MODES[mode], COUNTS=2, BLOCK_R=block_r, BLOCK_C=block_c,
           BLOCK_S=min(triton.next_power_of_2(n_splits), COUNT_BLOCK_S),
           flops=flops // 2, bytes_moved=read_bytes // 2 + small_bytes + written
           + 4 * counts.numel() * n_splits)
    return gx


def max_dim_bwd(grad: torch.Tensor, indices: torch.Tensor, input_shape, dim: int,
                keepdim: bool) -> torch.Tensor:
    """Gradient of x for (values, indices) = max(x, dim) or min(x, dim): ``grad`` (the
    values' gradient) goes to the returned index of each slice, zeros elsewhere. One
    launch, which never reads x."""
    dim = _single_dim("max_dim_bwd", dim)
    return _minmax_bwd("max_dim_bwd", "index", grad, None, indices, input_shape, dim, keepdim)


def amax_bwd(grad: torch.Tensor, x: torch.Tensor, result: torch.Tensor, dims,
             keepdim: bool, nan_ties: bool = False) -> torch.Tensor:
    """Gradient of x for result = amax(x, dims, keepdim) (or amin): ``grad`` split evenly
    among the elements equal to their slice's result. nan_ties: the rule of x.max() and
    x.min() without a dim, where a NaN result ties with every NaN; without it (amax, amin)
    a NaN result makes its slice's gradient NaN, as torch. One launch."""
    check_tensor("amax_bwd", "x", x, FLOAT_DTYPES)
    return _minmax_bwd("amax_bwd", "even" if nan_ties else "amax", grad, x, result, x.shape,
                       dims, keepdim)


def sum_to_shape(grad: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Reduce a gradient of a broadcast result back to the input's ``shape``: sum the
    leading dims grad has in excess, and the dims where ``shape`` has 1 and grad not.
    Returns grad itself when the shapes already match."""
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.dim() - len(shape)
    if lead < 0 or any(s not in (1, g) for s, g in zip(shape, grad.shape[lead:])):
        raise ShapeError(
            f"sum_to_shape: a gradient of shape {tuple(grad.shape)} is not a broadcast of "
            f"shape {shape}"
        )
    dims = [i for i in range(lead) if grad.shape[i] != 1] + [
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1
    ]
    if not dims:  # only leading size-1 dims differ: dropping them is a view
        return grad.view(shape)
    return sum(grad, dims, keepdim=True).view(shape)


def _specs() -> list[CompileSpec]:
    specs = []
    for x_t, out_t, block_r, block_c in [("fp32", "fp32", 1, TILE), ("bf16", "bf16", 16, 256),
                                         ("fp16", "fp32", 256, 16), ("fp64", "fp64", 4, 1024),
                                         ("fp32", "fp16", 32, 128), ("i64", "i64", 1, TILE),
                                         ("i1", "i64", 16, 256), ("u8", "i64", 256, 16)]:
        sig = {"out_ptr": "*" + out_t, "x_ptr": "*" + x_t, "divisor": "fp64",
               "n_rows": "i64", "n_cols": "i64", "cols_per_split": "i64",
               "stride_xr": "i64", "stride_xc": "i64", "stride_or": "i64", "stride_os": "i64",
               "BLOCK_R": "constexpr", "BLOCK_C": "constexpr"}
        specs.append(CompileSpec(sum_kernel, sig, {"BLOCK_R": block_r, "BLOCK_C": block_c},
                                 f"{x_t}->{out_t}-{block_r}x{block_c}"))
    # (x dtype, IS_MIN, WRITE_INDEX, WRITE_VALUE, BLOCK_R, BLOCK_C): argmax, argmin, max(dim),
    # amax, on floats, integers and bools
    for x_t, is_min, write_index, write_value, block_r, block_c in [
            ("fp32", False, True, False, 1, ARGMAX_TILE), ("bf16", True, True, False, 16, 64),
            ("i64", False, True, False, 64, 16), ("fp16", True, True, True, 4, 256),
            ("fp32", False, False, True, 256, 4), ("i1", False, True, True, 1, ARGMAX_TILE),
            ("u8", True, False, True, 16, 64), ("fp64", False, True, True, 1, ARGMAX_TILE)]:
        for map_index in (False, True):
            sig = {"idx_ptr": "*i64", "val_ptr": "*" + x_t, "x_ptr": "*" + x_t,
                   "map_ptr": "*i64" if map_index else "*" + x_t, "n_rows": "i64",
                   "n_cols": "i64", "cols_per_split": "i64", "stride_xr": "i64",
                   "stride_xc": "i64", "stride_or": "i64", "stride_os": "i64",
                   "stride_mr": "i64", "IS_MIN": "constexpr", "WRITE_INDEX": "constexpr",
                   "WRITE_VALUE": "constexpr", "MAP_INDEX": "constexpr",
                   "BLOCK_R": "constexpr", "BLOCK_C": "constexpr"}
            constexprs = {"IS_MIN": is_min, "WRITE_INDEX": write_index,
                          "WRITE_VALUE": write_value, "MAP_INDEX": map_index,
                          "BLOCK_R": block_r, "BLOCK_C": block_c}
            specs.append(CompileSpec(
                minmax_kernel, sig, constexprs,
                f"{x_t}-{'min' if is_min else 'max'}-index{int(write_index)}"
                f"-value{int(write_value)}-map{int(map_index)}-{block_r}x{block_c}"))
    # (dtype, MODE, BLOCK_R, BLOCK_C): each mode, rows along or across memory
    for t, mode, block_r, block_c in [("fp32", 0, 1, MINMAX_BWD_TILE), ("bf16", 0, 256, 8),
                                      ("fp32", 1, 1, MINMAX_BWD_TILE), ("fp16", 1, 8, 256),
                                      ("fp32", 2, 256, 8), ("bf16", 2, 1, MINMAX_BWD_TILE),
                                      ("fp64", 2, 4, 512)]:
        for counts in ((0,) if mode == 0 else (0, 1, 2)):
            sig = {"gx_ptr": "*" + t, "count_ptr": "*i32" if counts else "*" + t,
                   "g_ptr": "*" + t, "x_ptr": "*" + t,
                   "ref_ptr": "*i64" if mode == 0 else "*" + t, "n_rows": "i64",
                   "n_cols": "i64", "cols_per_split": "i64", "n_splits": "i64",
                   "stride_gxr": "i64", "stride_gxc": "i64", "stride_gr": "i64",
                   "stride_xr": "i64", "stride_xc": "i64", "stride_refr": "i64",
                   "MODE": "constexpr", "COUNTS": "constexpr", "BLOCK_R": "constexpr",
                   "BLOCK_C": "constexpr", "BLOCK_S": "constexpr"}
            block_s = COUNT_BLOCK_S if counts == 2 else 1
            specs.append(CompileSpec(minmax_bwd_kernel, sig,
                                     {"MODE": mode, "COUNTS": counts, "BLOCK_R": block_r,
                                      "BLOCK_C": block_c, "BLOCK_S": block_s},
                                     f"{t}-mode{mode}-counts{counts}-{block_r}x{block_c}"))
    return specs


COMPILE_SPECS = _specs()
