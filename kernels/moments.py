"""Variance and standard deviation over any set of dims (torch.var / torch.std, with torch's
``correction``), forward and backward; and the per-row moments that batch norm shares.

Layout: rows x columns as reduction.py's ``rows_and_columns`` (the kept dims are rows, the
reduced dims columns; dims that do not merge into one stride are copied once). The moments
kernel reads a row's columns as n_outer x n_inner with two strides: var and std take
n_outer = 1; batch norm takes the batch dim and the spatial dims of a channel, which
seldom merge into one stride (NCHW), without a copy.

Forward, per row, in fp32 (fp64 for fp64 input):
  - statistics are of x - k, with k the row's first element (shifted data; mean = k +
    mean(x - k)): a constant row then has x - k = 0 exactly, so its variance is exactly 0,
    as torch's (fp64) Welford gives, and std's gradient takes torch's std == 0 branch;
  - each column block's own mean and M2 = sum((x - mean_block)^2) come two-pass from
    registers, and blocks merge by Chan's pairwise update:
        n = n_a + n_b,  d = mean_b - mean_a,  mean = mean_a + d n_b / n,
        M2 = M2_a + M2_b + d^2 n_a n_b / n
    so the statistics take one read of x with no cancellation (never E[x^2] - E[x]^2);
  - var = M2 / max(0, N - correction), std = sqrt(var), as torch: over no degrees of
    freedom M2 > 0 gives inf and M2 = 0 gives NaN (0 / 0).
Few rows with many columns (a full reduction, say) split the columns over programs, as
reduction.py's sum does: each split writes its shifted (mean, M2), and a second launch
merges them by the parallel form of the same update (exact, every term non-negative):
    N = sum_s n_s,  mean = sum_s n_s mean_s / N,  M2 = sum_s M2_s + sum_s n_s (mean_s - mean)^2
in a fixed order, so results are deterministic (no atomics).

Backward, with mu the row's mean and dof = N - correction:
    var = sum_j (x_j - mu)^2 / dof
    d var / d x_k = 2 (x_k - mu) / dof - (2 / dof) sum_j (x_j - mu) d mu / d x_k
                  = 2 (x_k - mu) / dof          (sum_j (x_j - mu) = 0)
    std = sqrt(var): d std / d x_k = d var / d x_k / (2 std)
    => gx = (2 / dof) g' (x - mu), g' = g for var, g / (2 std) for std (0 where std == 0,
       as torch's masked_fill).
torch's own edge, kept: with no dim given (or a 0-d input) and dof <= 0 it returns
gx = g' * (NaN where x == mu, else inf); with dims given, 2 / dof is used as it is (inf
for dof = 0, negative below).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import FLOAT_DTYPES, ShapeError, check_same_device, check_tensor, dtype_name
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .copy import fill_
from .elementwise import div_rn, sqrt_rn, upcast
from .reduction import (
    _blocks,
    _n_splits,
    _reduction_dims,
    _row_view,
    input_grad_buffer,
    rows_and_columns,
)

# Elements per [BLOCK_R, BLOCK_C] tile. The sm_90 build at 4 warps (ptxas -v on the
# compile specs' PTX): moments_kernel with 256 x 16 bf16 tiles took 255 registers and 1032 B
# of spills at 4096 elements, 235 and none at 2048; the elementwise kernels (the backward
# here, batch norm's y and dx), which keep several int64 offset tiles live, took 254
# registers at 2048 (256 x 8) and at most 64 at 1024. They are memory-bound: a smaller tile
# only means more loop iterations. Batch norm's gradient sums keep two accumulator tiles:
# 256 x 8 fp64 spilled 476 B, so they take the elementwise tile.
TILE = 2048
ELEMENTWISE_TILE = 1024
# [BLOCK_R, BLOCK_S] partials per merge program; fp64 takes half (batch norm's merge, 16 x
# 256 fp64, spilled 28 B)
MERGE_TILE = 4096


@triton.jit
def split_bounds(split, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits):
    """(outer_start, outer_end, inner_start, inner_end): split ``split`` (a program's pid_s,
    or a tile of split indices) covers outer indices [outer_start, outer_end) and inner
    indices [inner_start, inner_end), as plan_splits cut them: split = so * n_inner_splits
    + si takes outer [so * outer_per_split, + outer_per_split) and inner [si *
    inner_per_split, + inner_per_split), clipped to n_outer and n_inner."""
    outer_start = (split // n_inner_splits) * outer_per_split
    outer_end = tl.minimum(outer_start + outer_per_split, n_outer)
    inner_start = (split % n_inner_splits) * inner_per_split
    inner_end = tl.minimum(inner_start + inner_per_split, n_inner)
    return outer_start, outer_end, inner_start, inner_end


@triton.jit
def moments_kernel(
    out_ptr, mean_ptr, m2_ptr, x_ptr, dof: tl.float64,
    n_rows, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
    stride_xr, stride_xo, stride_xi,
    FINAL: tl.constexpr, TAKE_SQRT: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Mean and M2 of each row's columns in split pid_s (see the module docstring).

    x_ptr: (n_rows, n_outer, n_inner), strides (stride_xr, stride_xo, stride_xi), any float
        dtype; a row's columns are its n_outer x n_inner >= 1 elements, walked in tiles of
        BLOCK_R rows x BLOCK_O outer x BLOCK_C inner indices (laid out flat as
        BLOCK_O * BLOCK_C columns: BLOCK_O > 1 packs several outer indices into a tile
        where n_inner is too small to fill one; BLOCK_C and BLOCK_O are powers of two, so
        a column's (outer, inner) pair is a shift and a mask, no division).
    Split s (grid axis 1) covers outer indices [so * outer_per_split, + outer_per_split)
    and inner indices [si * inner_per_split, + inner_per_split), so = s // n_inner_splits,
    si = s % n_inner_splits (one split: n_outer, n_inner and 1).
    FINAL (one split): out_ptr (n_rows,) in its dtype gets var = M2 / dof (std when
        TAKE_SQRT; dof = max(0, N - correction), an fp64 number), mean_ptr (n_rows,) the
        mean, fp32 (fp64 for fp64 x); m2_ptr is unused (any tensor).
    Otherwise: mean_ptr and m2_ptr, (n_rows, n_splits) contiguous fp32 (fp64), get the
        split's mean of x - k (k = x[r, 0, 0], the row's shift) and its M2; out_ptr unused.
    """
    pid_r = tl.program_id(0).to(tl.int64)
    pid_s = tl.program_id(1).to(tl.int64)
    n_splits = tl.num_programs(1)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    outer_start, outer_end, inner_start, inner_end = split_bounds(
        pid_s, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits)
    cols = tl.arange(0, BLOCK_O * BLOCK_C)
    col_outer = (cols // BLOCK_C).to(tl.int64)
    col_inner = (cols % BLOCK_C).to(tl.int64)
    # the shift: each row's first element (a constant row gets variance exactly 0)
    shift = upcast(tl.load(x_ptr + rows * stride_xr, mask=row_mask, other=0.0))
    # Loops call no @triton.jit helper: the interpreter re-patches the language on every
    # such call (about 3 ms each, measured), so loads convert with .to(shift.dtype) (fp32,
    # fp64 for fp64) and the merge weights divide as plain scalars.
    mean = tl.zeros([BLOCK_R], dtype=shift.dtype)  # of x - shift, over the columns so far
    m2 = tl.zeros([BLOCK_R], dtype=shift.dtype)
    n_seen = tl.zeros([BLOCK_R], dtype=shift.dtype)
    x_rows = x_ptr + rows[:, None] * stride_xr
    for outer in range(outer_start, outer_end, BLOCK_O):
        o = outer + col_outer
        for start in range(inner_start, inner_end, BLOCK_C):
            i = start + col_inner
            mask = row_mask[:, None] & ((o < outer_end) & (i < inner_end))[None, :]
            at = o * stride_xo + i * stride_xi
            x = tl.load(x_rows + at[None, :], mask=mask, other=0.0).to(shift.dtype)
            x = tl.where(mask, x - shift[:, None], 0.0)
            n_block = (tl.minimum(outer_end - outer, BLOCK_O)
                       * tl.minimum(inner_end - start, BLOCK_C)).to(shift.dtype)
            n_total = n_seen + n_block
            block_mean = tl.sum(x, axis=1) / n_block
            centred = tl.where(mask, x - block_mean[:, None], 0.0)
            block_m2 = tl.sum(centred * centred, axis=1)
            delta = block_mean - mean  # Chan's merge, see the module docstring
            mean = mean + delta * (n_block / n_total)
            m2 = m2 + block_m2 + delta * delta * (n_seen * n_block / n_total)
            n_seen = n_total
    if FINAL:
        store_var(out_ptr, mean_ptr, rows, row_mask, shift + mean, m2, dof, TAKE_SQRT)
    else:
        tl.store(mean_ptr + rows * n_splits + pid_s, mean, mask=row_mask)
        tl.store(m2_ptr + rows * n_splits + pid_s, m2, mask=row_mask)


@triton.jit
def merge_moments(mean_parts, m2_parts, x, rows, row_mask, n_splits, n_outer, n_inner,
                  outer_per_split, inner_per_split, n_inner_splits, stride_xr,
                  BLOCK_S: tl.constexpr):
    """(mean, M2) of each of ``rows`` (row_mask: those < n_rows) from moments_kernel's
    per-split partials, by the parallel update of the module docstring. mean_parts,
    m2_parts: pointers to the (n_rows, n_splits <= BLOCK_S) contiguous fp32 (fp64)
    partials, of x - x[r, 0, 0]; x: the pointer moments_kernel read (rows stride
    stride_xr), read here for that shift only, which the mean gets back. The split
    arguments are those moments_kernel ran with."""
    splits = tl.arange(0, BLOCK_S).to(tl.int64)
    mask = row_mask[:, None] & (splits < n_splits)[None, :]
    offsets = rows[:, None] * n_splits + splits[None, :]
    part_mean = tl.load(mean_parts + offsets, mask=mask, other=0.0)
    part_m2 = tl.load(m2_parts + offsets, mask=mask, other=0.0)
    # each split's element count, as moments_kernel cut them
    outer_start, outer_end, inner_start, inner_end = split_bounds(
        splits, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits)
    count = ((outer_end - outer_start) * (inner_end - inner_start)).to(part_mean.dtype)
    count = tl.where(mask, count[None, :], 0.0)
    weighted = tl.sum(part_mean * count, axis=1)
    mean = weighted / (n_outer * n_inner).to(weighted.dtype)
    centred = tl.where(mask, part_mean - mean[:, None], 0.0)
    m2 = tl.sum(part_m2, axis=1) + tl.sum(count * centred * centred, axis=1)
    shift = tl.load(x + rows * stride_xr, mask=row_mask, other=0.0).to(mean.dtype)
    return shift + mean, m2


@triton.jit
def store_var(out, mean_out, rows, row_mask, mean, m2, dof, TAKE_SQRT: tl.constexpr):
    """A var / std's last step (moments_kernel's FINAL and moments_merge_kernel): out[rows]
    = M2 / dof (its sqrt when TAKE_SQRT) in out's dtype and mean_out[rows] = mean, both
    pointers to (n_rows,) tensors."""
    var = div_rn(m2, tl.full(m2.shape, dof, tl.float64).to(m2.dtype))
    if TAKE_SQRT:
        var = sqrt_rn(var)
    tl.store(out + rows, cast_to(var, out.dtype.element_ty), mask=row_mask)
    tl.store(mean_out + rows, mean, mask=row_mask)


@triton.jit
def moments_merge_kernel(
    out_ptr, mean_ptr, mean_part_ptr, m2_part_ptr, x_ptr, dof: tl.float64,
    n_rows, n_splits, n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
    stride_xr,
    TAKE_SQRT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """The second launch of a split var / std: out (n_rows,) gets M2 / dof (its sqrt when
    TAKE_SQRT) in out's dtype, mean (n_rows,) fp32 (fp64) the mean, from the partials
    mean_part, m2_part ((n_rows, n_splits <= BLOCK_S) contiguous) that moments_kernel wrote
    over x_ptr (read here for each row's shift x[r, 0, 0] only; rows stride stride_xr). The
    split arguments are those moments_kernel ran with."""
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    mean, m2 = merge_moments(mean_part_ptr, m2_part_ptr, x_ptr, rows, row_mask, n_splits,
                             n_outer, n_inner, outer_per_split, inner_per_split, n_inner_splits,
                             stride_xr, BLOCK_S)
    store_var(out_ptr, mean_ptr, rows, row_mask, mean, m2, dof, TAKE_SQRT)


@triton.jit
def moments_bwd_kernel(
    gx_ptr, g_ptr, x_ptr, mean_ptr, std_ptr, two_over_dof: tl.float64,
    n_rows, n_cols,
    stride_gxr, stride_gxc, stride_gr, stride_xr, stride_xc, stride_stdr,
    TAKE_SQRT: tl.constexpr, DEGENERATE: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """gx of var (std when TAKE_SQRT) over the columns of each row (derivation in the
    module docstring): gx = (2 / dof) g' (x - mu); DEGENERATE (torch's no-dim case with
    dof <= 0): gx = g' * (NaN where x == mu, else inf).

    gx_ptr: (n_rows, n_cols) output, strides (stride_gxr, stride_gxc), x's dtype.
    g_ptr: (n_rows,) incoming gradient, stride stride_gr (0 for a broadcast one).
    x_ptr: (n_rows, n_cols) the forward's input, strides (stride_xr, stride_xc).
    mean_ptr: (n_rows,) contiguous, the forward's mean, fp32 (fp64 for fp64).
    std_ptr: (n_rows,) stride stride_stdr, std's forward result (x's dtype), read when
        TAKE_SQRT (otherwise any tensor). two_over_dof: 2 / (N - correction), inf for 0.
    """
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_mask = rows < n_rows
    g = upcast(tl.load(g_ptr + rows * stride_gr, mask=row_mask, other=0.0))
    mean = tl.load(mean_ptr + rows, mask=row_mask, other=0.0).to(g.dtype)
    if TAKE_SQRT:
        std = tl.load(std_ptr + rows * stride_stdr, mask=row_mask, other=1.0).to(g.dtype)
        g = tl.where(std == 0, 0.0, div_rn(g, std * 2.0))
    coef = tl.full([], two_over_dof, tl.float64).to(g.dtype) * g
    x_rows = x_ptr + rows[:, None] * stride_xr
    gx_rows = gx_ptr + rows[:, None] * stride_gxr
    cols = tl.arange(0, BLOCK_C).to(tl.int64)
    for start in range(0, n_cols, BLOCK_C):
        c = start + cols
        mask = row_mask[:, None] & (c < n_cols)[None, :]
        x = tl.load(x_rows + c[None, :] * stride_xc, mask=mask, other=0.0).to(g.dtype)
        if DEGENERATE:
            gx = g[:, None] * tl.where(x == mean[:, None], float("nan"), float("inf"))
        else:
            gx = coef[:, None] * (x - mean[:, None])
        tl.store(gx_rows + c[None, :] * stride_gxc, cast_to(gx, gx_ptr.dtype.element_ty),
                 mask=mask)


# ----------------------------------------------------------------------------- launchers


def stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are kept in: fp64 for fp64, fp32 for every other float."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def stats_type(x_type: str) -> str:
    """stats_dtype as a compile-spec type string ("fp64" for "fp64", else "fp32")."""
    return "fp64" if x_type == "fp64" else "fp32"


def plan_splits(n_rows: int, n_outer: int, n_inner: int, block_r: int, block_c: int,
                block_o: int = 1) -> tuple[int, int, int, int]:
    """(n_splits, outer_per_split, inner_per_split, n_inner_splits) for moments_kernel and
    the kernels that walk the same layout in [block_r, block_o x block_c] tiles: as many
    programs per row block as reduction's sum would take for these tiles, cut along the
    outer dim (in whole tiles) while it has enough indices, else along the inner dim too
    (in whole column blocks)."""
    n_blocks = cdiv(n_outer, block_o) * cdiv(n_inner, block_c)  # tiles of one row
    want = _n_splits(cdiv(n_rows, block_r), n_blocks * block_c, block_c)
    if want <= 1:
        return 1, n_outer, n_inner, 1
    if want * block_o <= n_outer:
        outer_per_split = cdiv(cdiv(n_outer, want), block_o) * block_o
        return cdiv(n_outer, outer_per_split), outer_per_split, n_inner, 1
    if block_o > 1:  # the inner dim fits one tile: one tile of outer indices a split
        return cdiv(n_outer, block_o), block_o, n_inner, 1
    inner_per_split = cdiv(cdiv(n_inner, cdiv(want, n_outer)), block_c) * block_c
    n_inner_splits = cdiv(n_inner, inner_per_split)
    return n_outer * n_inner_splits, 1, inner_per_split, n_inner_splits


def merge_blocks(n_rows: int, n_splits: int, dtype: torch.dtype) -> tuple[int, int]:
    """(BLOCK_R, BLOCK_S) of a kernel that merges (n_rows, n_splits) partials of ``dtype``
    in one tile per row block."""
    block_s = triton.next_power_of_2(n_splits)
    tile = MERGE_TILE // 2 if dtype == torch.float64 else MERGE_TILE
    return max(1, min(triton.next_power_of_2(n_rows), tile // block_s)), block_s


def row_moments(x: torch.Tensor, n_rows: int, n_outer: int, n_inner: int, strides: tuple,
                blocks: tuple, plan: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_part, m2_part): moments_kernel's per-split partials of the (n_rows, n_outer,
    n_inner) view of x with strides (stride_r, stride_o, stride_i), each (n_rows, n_splits)
    contiguous, fp32 (fp64 for fp64), for merge_moments. blocks: (BLOCK_R, BLOCK_O,
    BLOCK_C); plan: plan_splits' answer for them. Checked inputs only (var_fwd's and batch
    norm's launchers)."""
    dtype = stats_dtype(x.dtype)
    mean_part = torch.empty((n_rows, plan[0]), dtype=dtype, device=x.device)
    m2_part = torch.empty((n_rows, plan[0]), dtype=dtype, device=x.device)
    numel = n_rows * n_outer * n_inner
    block_r, block_o, block_c = blocks
    launch(moments_kernel, (cdiv(n_rows, block_r), plan[0]), mean_part, mean_part, m2_part,
           x, 0.0, n_rows, n_outer, n_inner, *plan[1:], *strides,
           FINAL=False, TAKE_SQRT=False, BLOCK_R=block_r, BLOCK_O=block_o, BLOCK_C=block_c,
           flops=6 * numel,
           bytes_moved=numel * x.element_size() + 2 * mean_part.numel() * mean_part.element_size())
    return mean_part, m2_part


def _dof(n_cols: int, correction: float) -> float:
    return max(0.0, n_cols - float(correction))


def var_fwd(x: torch.Tensor, dims=None, correction: float = 1.0, keepdim: bool = False,
            take_sqrt: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, mean): torch.var(x, dims, correction=, keepdim=) (torch.std when take_sqrt) in
    x's dtype, and each result's mean as the backward wants it: (rows,) contiguous fp32
    (fp64 for fp64), rows in the result's order. dims: an int, a sequence, or None / ()
    for every dim. x may have any strides. One launch (two when few rows have many
    columns; plus a copy when the kept or reduced dims do not merge into one stride)."""
    op = "std" if take_sqrt else "var"
    check_tensor(op, "input", x, FLOAT_DTYPES)
    reduced, kept, out_shape = _reduction_dims(op, x.shape, dims, keepdim)
    out = torch.empty(out_shape, dtype=x.dtype, device=x.device)
    n_rows = out.numel()
    mean = torch.empty((n_rows,), dtype=stats_dtype(x.dtype), device=x.device)
    if n_rows == 0:
        return out, mean
    if x.numel() == 0:  # no elements in any row: NaN, as torch (whatever the correction)
        fill_(out, float("nan"))
        return out, mean
    x, n_rows, n_cols, stride_r, stride_c = rows_and_columns(x, kept, reduced)
    dof = _dof(n_cols, correction)
    rows_contiguous = stride_r == 1 and stride_c != 1 and n_rows > 1
    block_r, block_c = _blocks(n_rows, n_cols, rows_contiguous, TILE)
    plan = plan_splits(n_rows, 1, n_cols, block_r, block_c)
    read_bytes = n_rows * n_cols * x.element_size()
    if plan[0] == 1:
        launch(moments_kernel, (cdiv(n_rows, block_r), 1), out, mean, mean, x, dof,
               n_rows, 1, n_cols, 1, n_cols, 1, stride_r, 0, stride_c,
               FINAL=True, TAKE_SQRT=take_sqrt, BLOCK_R=block_r, BLOCK_O=1, BLOCK_C=block_c,
               flops=6 * n_rows * n_cols,
               bytes_moved=read_bytes + n_rows * (out.element_size() + mean.element_size()))
        return out, mean
    mean_part, m2_part = row_moments(x, n_rows, 1, n_cols, (stride_r, 0, stride_c),
                                     (block_r, 1, block_c), plan)
    block_r, block_s = merge_blocks(n_rows, plan[0], mean_part.dtype)
    launch(moments_merge_kernel, (cdiv(n_rows, block_r),), out, mean, mean_part, m2_part, x,
           dof, n_rows, plan[0], 1, n_cols, *plan[1:], stride_r,
           TAKE_SQRT=take_sqrt, BLOCK_R=block_r, BLOCK_S=block_s,
           flops=6 * mean_part.numel(),
           bytes_moved=2 * mean_part.numel() * mean_part.element_size()
           + n_rows * (out.element_size() + mean.element_size() + x.element_size()))
    return out, mean


def var_bwd(grad: torch.Tensor, x: torch.Tensor, mean: torch.Tensor,
            result: torch.Tensor | None, dims=None, correction: float = 1.0,
            keepdim: bool = False, take_sqrt: bool = False) -> torch.Tensor:
    """Gradient of x for out = var_fwd(x, dims, correction, keepdim, take_sqrt), from the
    upstream ``grad`` (out's shape and dtype, any strides), the forward's ``mean`` and, for
    std, its ``result``. dims None (not ()) is torch's "no dim given", whose dof <= 0
    gradient differs (module docstring); a 0-d x counts as no dim. One launch (plus a copy
    of x, grad or result where their dims do not merge into one stride)."""
    op = ("std" if take_sqrt else "var") + " backward"
    check_tensor(op, "input", x, FLOAT_DTYPES)
    no_dim = dims is None or x.dim() == 0
    reduced, kept, out_shape = _reduction_dims(op, x.shape, dims, keepdim)
    check_tensor(op, "grad", grad, (x.dtype,))
    if list(grad.shape) != out_shape:
        raise ShapeError(f"{op}: grad has shape {tuple(grad.shape)}, but the result has "
                         f"shape {tuple(out_shape)}")
    n_rows, n_cols = 1, 1
    for d in kept:
        n_rows *= x.shape[d]
    for d in reduced:
        n_cols *= x.shape[d]
    dtype = stats_dtype(x.dtype)
    if tuple(mean.shape) != (n_rows,) or mean.dtype != dtype or not mean.is_contiguous():
        raise ShapeError(f"{op}: mean must be contiguous ({n_rows},) {dtype_name(dtype)} as "
                         f"var_fwd returned it, got {tuple(mean.shape)} "
                         f"{dtype_name(mean.dtype)}")
    tensors = {"grad": grad, "input": x, "mean": mean}
    if take_sqrt:
        check_tensor(op, "result", result, (x.dtype,))
        if list(result.shape) != out_shape:
            raise ShapeError(f"{op}: result has shape {tuple(result.shape)}, expected "
                             f"{tuple(out_shape)}")
        tensors["result"] = result
    check_same_device(op, **tensors)
    input_shape = list(x.shape)
    if x.numel() == 0:
        return torch.empty(input_shape, dtype=x.dtype, device=x.device)
    gx, target, stride_gxr, stride_gxc = input_grad_buffer(input_shape, kept, reduced,
                                                           x.dtype, x.device)
    kept_sizes = [input_shape[d] for d in kept]
    result_dims = kept if keepdim else list(range(len(kept)))
    grad, stride_g = _row_view(grad, kept_sizes, result_dims)
    std, stride_std = (_row_view(result, kept_sizes, result_dims) if take_sqrt
                       else (grad, 0))
    x, _, _, stride_xr, stride_xc = rows_and_columns(x, kept, reduced)
    dof = n_cols - float(correction)
    two_over_dof = 2.0 / dof if dof != 0 else float("inf")
    rows_contiguous = stride_xr == 1 and stride_xc != 1 and n_rows > 1
    block_r, block_c = _blocks(n_rows, n_cols, rows_contiguous, ELEMENTWISE_TILE)
    launch(moments_bwd_kernel, (cdiv(n_rows, block_r),), target, grad, x, mean, std,
           two_over_dof, n_rows, n_cols, stride_gxr, stride_gxc, stride_g, stride_xr, stride_xc,
           stride_std, TAKE_SQRT=take_sqrt, DEGENERATE=no_dim and dof <= 0,
           BLOCK_R=block_r, BLOCK_C=block_c, flops=2 * n_rows * n_cols,
           bytes_moved=2 * n_rows * n_cols * x.element_size()
           + n_rows * (2 * x.element_size() + mean.element_size()))
    return gx


def _specs() -> list[CompileSpec]:
    specs = []
    # (x dtype, FINAL, TAKE_SQRT, BLOCK_R, BLOCK_O, BLOCK_C): var and std in one split, rows
    # along and across memory, and the partials of a split (also batch norm's, several
    # batch entries a tile or one)
    for x_t, final, sqrt, block_r, block_o, block_c in [
            ("fp32", True, False, 1, 1, TILE), ("fp16", True, True, 16, 1, 128),
            ("bf16", True, False, 256, 1, 8), ("fp64", True, True, 4, 1, 512),
            ("fp32", False, False, 1, 1, TILE), ("bf16", False, False, 256, 1, 8),
            ("fp16", False, False, 16, 1, 128), ("fp64", False, False, 4, 1, 512),
            ("fp32", False, False, 4, 32, 8), ("bf16", False, False, 4, 32, 8),
            ("fp64", False, False, 4, 16, 8)]:
        stats = stats_type(x_t)
        sig = {"out_ptr": "*" + (x_t if final else stats), "mean_ptr": "*" + stats,
               "m2_ptr": "*" + stats, "x_ptr": "*" + x_t, "dof": "fp64", "n_rows": "i64",
               "n_outer": "i64", "n_inner": "i64", "outer_per_split": "i64",
               "inner_per_split": "i64", "n_inner_splits": "i64", "stride_xr": "i64",
               "stride_xo": "i64", "stride_xi": "i64", "FINAL": "constexpr",
               "TAKE_SQRT": "constexpr", "BLOCK_R": "constexpr", "BLOCK_O": "constexpr",
               "BLOCK_C": "constexpr"}
        specs.append(CompileSpec(moments_kernel, sig,
                                 {"FINAL": final, "TAKE_SQRT": sqrt, "BLOCK_R": block_r,
                                  "BLOCK_O": block_o, "BLOCK_C": block_c},
                                 f"{x_t}-final{int(final)}-sqrt{int(sqrt)}"
                                 f"-{block_r}x{block_o}x{block_c}"))
    for x_t, sqrt, block_r, block_s in [("fp32", False, 1, 512), ("bf16", True, 16, 256),
                                        ("fp16", False, 128, 32), ("fp64", True, 4, 512)]:
        stats = stats_type(x_t)
        sig = {"out_ptr": "*" + x_t, "mean_ptr": "*" + stats, "mean_part_ptr": "*" + stats,
               "m2_part_ptr": "*" + stats, "x_ptr": "*" + x_t, "dof": "fp64",
               "n_rows": "i64", "n_splits": "i64", "n_outer": "i64", "n_inner": "i64",
               "outer_per_split": "i64", "inner_per_split": "i64", "n_inner_splits": "i64",
               "stride_xr": "i64", "TAKE_SQRT": "constexpr", "BLOCK_R": "constexpr",
               "BLOCK_S": "constexpr"}
        specs.append(CompileSpec(moments_merge_kernel, sig,
                                 {"TAKE_SQRT": sqrt, "BLOCK_R": block_r, "BLOCK_S": block_s},
                                 f"{x_t}-sqrt{int(sqrt)}-{block_r}x{block_s}"))
    for x_t, sqrt, degenerate, block_r, block_c in [
            ("fp32", False, False, 1, ELEMENTWISE_TILE), ("fp32", True, False, 256, 4),
            ("bf16", True, False, 16, 64), ("fp16", False, True, 1, ELEMENTWISE_TILE),
            ("fp64", True, True, 4, 256), ("bf16", False, False, 256, 4)]:
        stats = stats_type(x_t)
        sig = {"gx_ptr": "*" + x_t, "g_ptr": "*" + x_t, "x_ptr": "*" + x_t,
               "mean_ptr": "*" + stats, "std_ptr": "*" + x_t, "two_over_dof": "fp64",
               "n_rows": "i64", "n_cols": "i64", "stride_gxr": "i64", "stride_gxc": "i64",
               "stride_gr": "i64", "stride_xr": "i64", "stride_xc": "i64",
               "stride_stdr": "i64", "TAKE_SQRT": "constexpr", "DEGENERATE": "constexpr",
               "BLOCK_R": "constexpr", "BLOCK_C": "constexpr"}
        specs.append(CompileSpec(moments_bwd_kernel, sig,
                                 {"TAKE_SQRT": sqrt, "DEGENERATE": degenerate,
                                  "BLOCK_R": block_r, "BLOCK_C": block_c},
                                 f"{x_t}-sqrt{int(sqrt)}-degenerate{int(degenerate)}"
                                 f"-{block_r}x{block_c}"))
    return specs


COMPILE_SPECS = _specs()
