"""Sum and mean over any set of dims, the backward of broadcasting (sum_to_shape), and
argmax.

A reduction is seen as a 2-D problem: the kept dims are rows, the reduced dims are
columns. When each group merges into a single strided dim (true for contiguous
inputs reduced over trailing or leading dims, transposes, and slices), the kernel
reads x through those two strides; otherwise (say dims (0, 2) of a 3-D tensor) one
extra launch copies x permuted to (kept..., reduced...) so that both groups merge.

Accumulation is fp32 (fp64 for fp64 input), in a BLOCK_R x BLOCK_C tile whose lanes
are summed by a tree at the end, with no atomics, so results are deterministic.
With few rows and many columns (a full reduction, say) the columns are split over
programs writing fp32 partials, and a second launch of the same kernel sums those.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    OutOfRangeError,
    ShapeError,
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
def argmax_kernel(
    out_ptr, x_ptr, n_rows, n_cols, stride_xr, stride_xc,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out[r] = the first column c of row r holding its maximum, as torch.argmax: a NaN
    counts as larger than everything (the first NaN wins), and ties go to the first.

    out_ptr: (n_rows,) int64. x_ptr: (n_rows, n_cols >= 1), strides (stride_xr, stride_xc),
    any float or integer dtype.
    Per tile: the first NaN column if any, else the first column equal to the tile's max
    (NaN lanes excluded); a later tile replaces the running answer only with a NaN (when
    none was seen) or a strictly larger max, so the first occurrence is kept.
    """
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < n_rows
    row_ptrs = x_ptr + rows[:, None] * stride_xr
    # compared exactly: halves in fp32, fp32/fp64 as they are, integers in int64
    if x_ptr.dtype.element_ty.is_int():
        best = tl.zeros([BLOCK_R], dtype=tl.int64)  # replaced by the first tile's max
        lowest = -9223372036854775808
    else:
        best = upcast(tl.zeros([BLOCK_R], dtype=x_ptr.dtype.element_ty))
        lowest = float("-inf")
    best_idx = tl.zeros([BLOCK_R], dtype=tl.int64)
    seen_nan = tl.zeros([BLOCK_R], dtype=tl.int1)
    for start in range(0, n_cols, BLOCK_C):
        cols = start + tl.arange(0, BLOCK_C).to(tl.int64)
        mask = row_mask[:, None] & (cols < n_cols)[None, :]
        x = tl.load(row_ptrs + cols[None, :] * stride_xc, mask=mask).to(best.dtype)
        is_nan = (x != x) & mask
        valid = mask & ~is_nan
        last = tl.zeros_like(cols) + n_cols  # "no such column"
        nan_idx = tl.min(tl.where(is_nan, cols[None, :], last[None, :]), axis=1)
        tile_max = tl.max(tl.where(valid, x, lowest), axis=1)
        at_max = valid & (x == tile_max[:, None])
        max_idx = tl.min(tl.where(at_max, cols[None, :], last[None, :]), axis=1)
        has_nan = nan_idx < n_cols
        has_max = max_idx < n_cols
        better = has_max & ((start == 0) | (tile_max > best))
        take = ~seen_nan & (has_nan | better)
        best_idx = tl.where(take, tl.where(has_nan, nan_idx, max_idx), best_idx)
        best = tl.where(~seen_nan & better, tile_max, best)
        seen_nan = seen_nan | has_nan
    tl.store(out_ptr + rows, best_idx, mask=row_mask)


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


def _launch_sum(out: torch.Tensor, x: torch.Tensor, n_rows: int, n_cols: int,
                stride_xr: int, stride_xc: int, divisor: float) -> None:
    """out (contiguous, n_rows) = row sums of the strided (n_rows, n_cols) view of x,
    divided by ``divisor``; split into two launches when rows are too few to fill a GPU."""
    rows_contiguous = stride_xr == 1 and stride_xc != 1 and n_rows > 1
    block_r, block_c = _blocks(n_rows, n_cols, rows_contiguous)
    n_row_blocks = cdiv(n_rows, block_r)
    n_splits = 1
    if n_row_blocks < TARGET_PROGRAMS:
        n_splits = max(1, min(cdiv(TARGET_PROGRAMS, n_row_blocks),
                              n_cols // (MIN_ITERS_PER_SPLIT * block_c)))
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


def argmax(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Indices (int64) of the first maximum along ``dim``, or of the flattened tensor when
    dim is None, as torch.argmax (a NaN is the maximum). One launch (plus a copy when the
    kept dims do not merge into one stride)."""
    op = "argmax"
    check_tensor(op, "x", x, FLOAT_DTYPES + INTEGER_DTYPES)
    if dim is None:
        reduced, kept = list(range(x.dim())), []
        out_shape = [1] * x.dim() if keepdim else []
    else:
        (d,) = _normalize_dims(op, dim, x.dim()) or [0]  # a 0-d tensor: dim 0
        reduced, kept = [d] if x.dim() else [], [k for k in range(x.dim()) if k != d]
        out_shape = [1 if k == d else x.shape[k] for k in range(x.dim())] if keepdim \
            else [x.shape[k] for k in kept]
    if x.numel() == 0 and (dim is None or not x.dim() or x.shape[reduced[0]] == 0):
        where = "" if dim is None else f" dim {reduced[0] if reduced else 0}"
        raise ShapeError(f"{op}(): Expected reduction{where} to have non-zero size "
                         f"(input shape {tuple(x.shape)})")
    out = torch.empty(out_shape, dtype=torch.int64, device=x.device)
    if out.numel() == 0:
        return out
    x, n_rows, n_cols, stride_r, stride_c = rows_and_columns(x, kept, reduced)
    block_r, block_c = _blocks(n_rows, n_cols, stride_r == 1 and stride_c != 1 and n_rows > 1,
                               tile=ARGMAX_TILE)
    launch(argmax_kernel, (cdiv(n_rows, block_r),), out, x, n_rows, n_cols, stride_r, stride_c,
           BLOCK_R=block_r, BLOCK_C=block_c, flops=n_rows * n_cols,
           bytes_moved=n_rows * n_cols * x.element_size() + n_rows * 8)
    return out


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
    for x_t, block_r, block_c in [("fp32", 1, ARGMAX_TILE), ("bf16", 16, 64), ("i64", 64, 16)]:
        sig = {"out_ptr": "*i64", "x_ptr": "*" + x_t, "n_rows": "i64", "n_cols": "i64",
               "stride_xr": "i64", "stride_xc": "i64", "BLOCK_R": "constexpr",
               "BLOCK_C": "constexpr"}
        specs.append(CompileSpec(argmax_kernel, sig, {"BLOCK_R": block_r, "BLOCK_C": block_c},
                                 f"{x_t}-{block_r}x{block_c}"))
    return specs


COMPILE_SPECS = _specs()
