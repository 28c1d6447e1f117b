"""Embedding lookup (torch's ``F.embedding``): a row gather forward, a deterministic
scatter-add backward.

Forward, for indices idx (any shape, flattened to N entries) and weight W (V, D):
    out[n, :] = W[idx[n], :]
read through W's strides (any layout is read in place) into a new (N, D) tensor in W's dtype.

Index range is a value check, so it runs on the device, as cross-entropy checks its labels
(kernels/cross_entropy.py): the forward kernel sets an int32 flag for an index outside
[0, V), and ``check_indices=True`` reads it (one host sync) and raises torch's
"index out of range in self" before the output is handed out. ``check_indices=False``
(tritongrad.ops.loss.CHECK_LABELS off: benchmarks, CUDA graph capture) skips the sync; a bad
index then gives a NaN row (never an out-of-bounds read), and backward skips it.

Backward. out[n, d] = W[idx[n], d], so d out[n, d] / d W[v, d'] = [idx[n] == v] [d == d'] and
    dW[v, :] = sum_{n : idx[n] == v} dY[n, :]       (0 for rows no index names)
and dW[padding_idx, :] = 0 (torch's padding_idx: that row never learns). With
``scale_grad_by_freq`` each row's sum is divided by the number of times its index occurs
(torch divides each term by that count before adding; here the sum is divided once).

Deterministic, no atomics: the (V, D) accumulator is split between programs so that every
element has exactly one writer. Program (c, r) owns columns [c BLOCK_D, (c + 1) BLOCK_D) of the
rows v with v % n_owners == r, and walks all indices in order, BLOCK_N at a time. Inside a
tile, indices repeat: with S[j, k] = [idx[j] == idx[k]] (both owned), the dot S @ dY gives
every lane j the tile's whole sum for its row, and only each row's first lane in the tile
adds it to the accumulator (a read, an add, a write). Tiles run in index order in one
program, so every row sums its terms in the same order on every run. A barrier between
tiles makes one tile's writes visible to the threads of the next (a row's lanes may fall to
other threads). Accumulation is fp32 (fp64 for fp64): fp32 and fp64 weights accumulate in
dW itself; fp16 / bf16 ones (and scale_grad_by_freq) go through an fp32 buffer and a second
kernel that divides by the count and rounds once into W's dtype.

On a GPU each program reads every index (N * 8 bytes, from L2 after the first) and runs
N / BLOCK_N dependent tile steps; the owners split spreads rows over programs. Untuned: no
GPU measurement yet. A sort of the indices followed by one segment sum per row would
need fewer steps; this form needs no sort kernel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    DTypeError,
    OutOfRangeError,
    ShapeError,
    check_same_device,
    check_tensor,
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import contiguous
from .elementwise import div_rn, upcast

OP = "embedding"
INDEX_DTYPES = (torch.int64, torch.int32)
OUT_OF_RANGE = "index out of range in self"  # torch's message, word for word

# Forward tiles: BLOCK_D = min(next_pow2(D), FWD_MAX_BLOCK_D) columns by FWD_TILE // BLOCK_D
# rows. A gather is pure data movement; under the interpreter few big programs (about
# 0.5 ms each, whatever their size). Not yet tuned on a GPU.
FWD_MAX_BLOCK_D = 4096 if interpreting() else 256
FWD_TILE = 65536 if interpreting() else 4096
# Backward: BWD_BLOCK_N indices per tile step (the S @ dY dot is BLOCK_N x BLOCK_N x
# BLOCK_D, so small tiles keep its FMAs few; tl.dot needs 16 or more), columns per program
# up to BWD_MAX_BLOCK_D, and owner programs per column block until about BWD_PROGRAMS
# programs run (two per SM of an H100/H200), at most BWD_MAX_OWNERS. The interpreter runs
# one owner and big blocks. Not yet tuned on a GPU.
BWD_BLOCK_N = 128 if interpreting() else 32
BWD_MAX_BLOCK_D = 1024 if interpreting() else 128
BWD_PROGRAMS = 1 if interpreting() else 264
BWD_MAX_OWNERS = 64
FINISH_TILE = 65536 if interpreting() else 4096


@triton.jit
def embedding_fwd_kernel(
    out_ptr, err_flag_ptr, weight_ptr, idx_ptr,
    n_indices, n_embeddings, n_cols,
    stride_idx, stride_wv, stride_wd,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """out[n, d] = weight[idx[n], d] for one (BLOCK_N, BLOCK_D) tile.

    out_ptr: (N, D) contiguous, weight's dtype. err_flag_ptr: (1,) int32, set to 1 when an
    index of the tile is outside [0, V) (that row is written NaN, nothing is read for it).
    weight_ptr: (V, D) float, strides (stride_wv, stride_wd). idx_ptr: (N,) int64 or int32,
    stride stride_idx. n_indices: N. n_embeddings: V. n_cols: D.
    """
    pid_n = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1).to(tl.int64)
    n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N).to(tl.int64)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)
    in_n = n < n_indices
    col_mask = cols < n_cols
    idx = tl.load(idx_ptr + n * stride_idx, mask=in_n, other=0).to(tl.int64)
    in_range = (idx >= 0) & (idx < n_embeddings)
    bad = in_n & ((idx < 0) | (idx >= n_embeddings))
    tl.store(err_flag_ptr, 1, mask=tl.max(bad.to(tl.int32), axis=0) > 0)
    read = (in_n & in_range)[:, None] & col_mask[None, :]
    rows = upcast(tl.load(weight_ptr + idx[:, None] * stride_wv + cols[None, :] * stride_wd,
                          mask=read, other=float("nan")))
    tl.store(out_ptr + n[:, None] * n_cols + cols[None, :],
             cast_to(rows, out_ptr.dtype.element_ty), mask=in_n[:, None] & col_mask[None, :])


@triton.jit
def embedding_bwd_kernel(
    acc_ptr, count_ptr, dy_ptr, idx_ptr,
    n_indices, n_embeddings, n_cols, padding_idx,
    stride_dyn, stride_dyd, stride_idx,
    COUNT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """acc[v, cols] += sum of dy[n, cols] over n with idx[n] == v, for this program's
    columns (block program_id(0)) and rows (v % num_programs(1) == program_id(1)), in index
    order (see the module docstring). Indices outside [0, V) and padding_idx add nothing.

    acc_ptr: (V, D) contiguous, fp32 (fp64 for fp64 dy), zero before the launch.
    count_ptr: (V,) int32, zero before the launch; with COUNT, count[v] += occurrences of v
        (written by the column-block-0 programs only). Otherwise any tensor, never touched.
    dy_ptr: (N, D) float, strides (stride_dyn, stride_dyd). idx_ptr: (N,) int64 or int32,
    stride stride_idx. padding_idx: the row that gets no gradient (-1 for none).
    """
    pid_d = tl.program_id(0).to(tl.int64)
    owner = tl.program_id(1).to(tl.int64)
    n_owners = tl.num_programs(1).to(tl.int64)
    lanes = tl.arange(0, BLOCK_N)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)
    col_mask = cols < n_cols
    for start in range(0, n_indices, BLOCK_N):
        n = start + lanes.to(tl.int64)
        in_n = n < n_indices
        idx = tl.load(idx_ptr + n * stride_idx, mask=in_n, other=-1).to(tl.int64)
        owned = (in_n & (idx >= 0) & (idx < n_embeddings) & (idx != padding_idx)
                 & (idx % n_owners == owner))
        if tl.max(owned.to(tl.int32), axis=0) > 0:
            dy = upcast(tl.load(dy_ptr + n[:, None] * stride_dyn + cols[None, :] * stride_dyd,
                                mask=owned[:, None] & col_mask[None, :], other=0.0))
            same = (idx[:, None] == idx[None, :]) & owned[:, None] & owned[None, :]
            # lane j: the tile's sum for row idx[j]. 0/1 weights, so every product is exact.
            if dy.dtype == tl.float64:
                group = tl.dot(same.to(tl.float64), dy, input_precision="ieee",
                               out_dtype=tl.float64)
            else:
                group = tl.dot(same.to(tl.float32), dy, input_precision="ieee",
                               out_dtype=tl.float32)
            earlier = same & (lanes[None, :] < lanes[:, None])
            first = owned & (tl.max(earlier.to(tl.int32), axis=1) == 0)
            mask = first[:, None] & col_mask[None, :]
            rows = acc_ptr + idx[:, None] * n_cols + cols[None, :]
            old = tl.load(rows, mask=mask, other=0.0)
            tl.store(rows, old + group, mask=mask)
            if COUNT:
                if pid_d == 0:  # one column block counts for all
                    occurrences = tl.sum(same.to(tl.int32), axis=1)
                    seen = tl.load(count_ptr + idx, mask=first, other=0)
                    tl.store(count_ptr + idx, seen + occurrences, mask=first)
        # the next tile may read rows this one wrote, from other threads
        tl.debug_barrier()


@triton.jit
def embedding_bwd_finish_kernel(
    dw_ptr, acc_ptr, count_ptr, n_rows, n_cols,
    SCALE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """dw = acc (divided by count[v] on row v with SCALE; rows never named stay 0), rounded
    once into dw's dtype; one (BLOCK_R, BLOCK_D) tile per program.

    dw_ptr: (V, D) contiguous, weight's dtype (may be acc itself). acc_ptr: (V, D)
    contiguous fp32 (fp64 for fp64). count_ptr: (V,) int32, read with SCALE (otherwise any
    tensor, never touched).
    """
    pid_r = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1).to(tl.int64)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)
    row_mask = rows < n_rows
    mask = row_mask[:, None] & (cols < n_cols)[None, :]
    offsets = rows[:, None] * n_cols + cols[None, :]
    grad = tl.load(acc_ptr + offsets, mask=mask, other=0.0)
    if SCALE:
        count = tl.load(count_ptr + rows, mask=row_mask, other=1)
        count = tl.maximum(count, 1).to(grad.dtype)  # a row never named has sum 0
        grad = div_rn(grad, tl.zeros_like(grad) + count[:, None])
    tl.store(dw_ptr + offsets, cast_to(grad, dw_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers


def check_indices_tensor(indices: torch.Tensor) -> None:
    check_tensor(OP, "indices", indices)
    if indices.dtype not in INDEX_DTYPES:
        raise DTypeError(f"{OP}: Expected tensor for argument #1 'indices' to have one of the "
                         f"following scalar types: Long, Int; but got "
                         f"{dtype_name(indices.dtype)} instead")


def check_embedding_args(weight: torch.Tensor, indices: torch.Tensor) -> None:
    """Metadata checks of F.embedding's tensors, before any launch (torch's messages)."""
    check_indices_tensor(indices)
    check_tensor(OP, "weight", weight, FLOAT_DTYPES)
    if weight.dim() != 2:
        raise ShapeError(f"{OP}: 'weight' must be 2-D, got shape {tuple(weight.shape)}")
    check_same_device(OP, weight=weight, indices=indices)


def normalize_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    """torch's rule: a padding_idx in [-V, V), negative ones counted from the end."""
    if padding_idx is None:
        return None
    padding_idx = int(padding_idx)
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise OutOfRangeError(f"{OP}: Padding_idx must be within num_embeddings (got "
                              f"padding_idx={padding_idx} for {num_embeddings} embeddings)")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def flat_indices(indices: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(indices as (N,), its stride): a view when the dims merge into one stride, else a
    contiguous copy by our copy kernel (one launch; a transposed 2-D index, say)."""
    if indices.dim() == 0:
        return indices.view(1), 1
    try:
        flat = indices.view(-1)
    except RuntimeError:
        flat = contiguous(indices).view(-1)
    return flat, flat.stride(0)


def _rows_view(t: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    """t (..., n_cols) as (n_rows, n_cols): a view when its leading dims merge, else a copy."""
    try:
        return t.view(n_rows, n_cols)
    except RuntimeError:
        return contiguous(t).view(n_rows, n_cols)


def new_index_error_flag(device: torch.device) -> torch.Tensor:
    """A zeroed (1,) int32 flag for embedding_fwd_kernel."""
    return torch.zeros((1,), dtype=torch.int32, device=device)


def raise_on_index_errors(flag: torch.Tensor) -> None:
    """Read the device flag (one host sync) and raise torch's error if an index set it."""
    if int(flag.item()):
        raise OutOfRangeError(f"{OP}: {OUT_OF_RANGE}")


def _fwd_blocks(n_indices: int, n_cols: int) -> tuple[int, int]:
    block_d = min(triton.next_power_of_2(max(n_cols, 1)), FWD_MAX_BLOCK_D)
    block_n = max(1, FWD_TILE // block_d)
    if interpreting():  # no bigger than the work: the interpreter pays per element too
        block_n = min(block_n, triton.next_power_of_2(max(n_indices, 1)))
    return block_n, block_d


def embedding_fwd(weight: torch.Tensor, indices: torch.Tensor,
                  check_indices: bool = True) -> torch.Tensor:
    """torch's F.embedding(indices, weight): a new contiguous tensor of shape
    indices.shape + (D,) in weight's dtype. ``indices``: int64 or int32, any shape and
    strides; ``weight``: (V, D) float, any strides (read in place). check_indices=True syncs
    once to raise torch's IndexError-style OutOfRangeError for an index outside [0, V)."""
    check_embedding_args(weight, indices)
    n_embeddings, n_cols = weight.shape
    out = torch.empty(tuple(indices.shape) + (n_cols,), dtype=weight.dtype,
                      device=weight.device)
    n_indices = indices.numel()
    if n_indices == 0:
        return out
    idx, stride_idx = flat_indices(indices)
    flag = new_index_error_flag(weight.device)
    block_n, block_d = _fwd_blocks(n_indices, n_cols)
    # at least one column program, so that D == 0 still checks the indices
    grid = (cdiv(n_indices, block_n), max(1, cdiv(n_cols, block_d)))
    launch(embedding_fwd_kernel, grid, out, flag, weight, idx,
           n_indices, n_embeddings, n_cols, stride_idx, weight.stride(0), weight.stride(1),
           BLOCK_N=block_n, BLOCK_D=block_d, flops=0,  # a gather: data movement only
           bytes_moved=n_indices * (idx.element_size() * grid[1]
                                    + 2 * n_cols * weight.element_size()))
    if check_indices:
        raise_on_index_errors(flag)
    return out


def _bwd_blocks(n_indices: int, n_cols: int) -> tuple[int, int, int]:
    block_d = min(max(16, triton.next_power_of_2(max(n_cols, 1))), BWD_MAX_BLOCK_D)
    block_n = BWD_BLOCK_N
    if interpreting():
        block_n = min(block_n, max(16, triton.next_power_of_2(n_indices)))
    owners = max(1, min(BWD_MAX_OWNERS, cdiv(BWD_PROGRAMS, cdiv(n_cols, block_d))))
    return block_n, block_d, owners


def embedding_bwd(grad_output: torch.Tensor, indices: torch.Tensor, num_embeddings: int,
                  padding_idx: int | None = None,
                  scale_grad_by_freq: bool = False) -> torch.Tensor:
    """d loss / d weight of F.embedding: a new contiguous (V, D) tensor in grad_output's
    dtype, dW[v] = sum of grad_output rows whose index is v (divided by the count of v with
    ``scale_grad_by_freq``), 0 for padding_idx (already normalised to [0, V), or None) and
    for rows no index names. Deterministic: no atomics (see the module docstring)."""
    check_indices_tensor(indices)
    check_tensor(OP, "grad_output", grad_output, FLOAT_DTYPES)
    check_same_device(OP, grad_output=grad_output, indices=indices)
    if grad_output.dim() != indices.dim() + 1 or grad_output.shape[:-1] != indices.shape:
        raise ShapeError(f"{OP} backward: grad_output of shape {tuple(grad_output.shape)} does "
                         f"not match indices of shape {tuple(indices.shape)} + (D,)")
    num_embeddings = int(num_embeddings)
    if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
        raise OutOfRangeError(f"{OP} backward: padding_idx {padding_idx} is not in "
                              f"[0, {num_embeddings}); normalise it first")
    n_cols = grad_output.shape[-1]
    n_indices = indices.numel()
    dtype = grad_output.dtype
    acc_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    needs_finish = dtype != acc_dtype or scale_grad_by_freq
    dw = torch.zeros((num_embeddings, n_cols), dtype=dtype, device=grad_output.device)
    if n_indices == 0 or n_cols == 0 or num_embeddings == 0:
        return dw
    acc = dw if dtype == acc_dtype else torch.zeros_like(dw, dtype=acc_dtype)
    count = (torch.zeros((num_embeddings,), dtype=torch.int32, device=dw.device)
             if scale_grad_by_freq else indices)
    idx, stride_idx = flat_indices(indices)
    dy = _rows_view(grad_output, n_indices, n_cols)
    block_n, block_d, owners = _bwd_blocks(n_indices, n_cols)
    launch(embedding_bwd_kernel, (cdiv(n_cols, block_d), owners),
           acc, count, dy, idx, n_indices, num_embeddings, n_cols,
           -1 if padding_idx is None else int(padding_idx),
           dy.stride(0), dy.stride(1), stride_idx,
           COUNT=bool(scale_grad_by_freq), BLOCK_N=block_n, BLOCK_D=block_d,
           flops=n_indices * n_cols * (2 * block_n + 1) * owners,
           bytes_moved=n_indices * (idx.element_size() * cdiv(n_cols, block_d) * owners
                                    + n_cols * (dy.element_size() + 2 * acc.element_size())))
    if needs_finish:
        block_d = min(triton.next_power_of_2(n_cols), FWD_MAX_BLOCK_D)
        block_r = max(1, FINISH_TILE // block_d)
        launch(embedding_bwd_finish_kernel,
               (cdiv(num_embeddings, block_r), cdiv(n_cols, block_d)),
               dw, acc, count, num_embeddings, n_cols,
               SCALE=bool(scale_grad_by_freq), BLOCK_R=block_r, BLOCK_D=block_d,
               flops=dw.numel() if scale_grad_by_freq else 0,
               bytes_moved=dw.numel() * (acc.element_size() + dw.element_size()))
    return dw


def _specs() -> list[CompileSpec]:
    """Every kernel in each weight dtype with int64 and int32 indices; the backward with
    and without counts at the GPU blocks, the finish kernel with and without the scale."""
    specs = []
    fwd_sig = {"out_ptr": None, "err_flag_ptr": "*i32", "weight_ptr": None, "idx_ptr": None,
               "n_indices": "i32", "n_embeddings": "i32", "n_cols": "i32", "stride_idx": "i64",
               "stride_wv": "i64", "stride_wd": "i64",
               "BLOCK_N": "constexpr", "BLOCK_D": "constexpr"}
    bwd_sig = {"acc_ptr": None, "count_ptr": None, "dy_ptr": None, "idx_ptr": None,
               "n_indices": "i32", "n_embeddings": "i32", "n_cols": "i32",
               "padding_idx": "i64", "stride_dyn": "i64", "stride_dyd": "i64",
               "stride_idx": "i64", "COUNT": "constexpr", "BLOCK_N": "constexpr",
               "BLOCK_D": "constexpr"}
    fin_sig = {"dw_ptr": None, "acc_ptr": None, "count_ptr": None, "n_rows": "i32",
               "n_cols": "i32", "SCALE": "constexpr", "BLOCK_R": "constexpr",
               "BLOCK_D": "constexpr"}
    for dt in ("fp32", "fp16", "bf16", "fp64"):
        acc = "fp64" if dt == "fp64" else "fp32"
        for it in ("i64", "i32"):
            specs.append(CompileSpec(
                embedding_fwd_kernel,
                {**fwd_sig, "out_ptr": "*" + dt, "weight_ptr": "*" + dt, "idx_ptr": "*" + it},
                {"BLOCK_N": FWD_TILE // FWD_MAX_BLOCK_D, "BLOCK_D": FWD_MAX_BLOCK_D},
                f"{dt},idx={it}"))
            for count in (False, True):
                specs.append(CompileSpec(
                    embedding_bwd_kernel,
                    {**bwd_sig, "acc_ptr": "*" + acc, "count_ptr": "*i32" if count else "*" + it,
                     "dy_ptr": "*" + dt, "idx_ptr": "*" + it},
                    {"COUNT": count, "BLOCK_N": BWD_BLOCK_N, "BLOCK_D": BWD_MAX_BLOCK_D},
                    f"{dt},idx={it},count={count}"))
        for scale in (False, True):
            specs.append(CompileSpec(
                embedding_bwd_finish_kernel,
                {**fin_sig, "dw_ptr": "*" + dt, "acc_ptr": "*" + acc,
                 "count_ptr": "*i32" if scale else "*i64"},
                {"SCALE": scale, "BLOCK_R": FINISH_TILE // FWD_MAX_BLOCK_D,
                 "BLOCK_D": FWD_MAX_BLOCK_D},
                f"{dt},scale={scale}"))
    # the narrowest blocks the launchers pick (16 columns: a small embedding_dim)
    specs.append(CompileSpec(
        embedding_bwd_kernel,
        {**bwd_sig, "acc_ptr": "*fp32", "count_ptr": "*i32", "dy_ptr": "*bf16",
         "idx_ptr": "*i64"},
        {"COUNT": True, "BLOCK_N": 16, "BLOCK_D": 16}, "bf16,idx=i64,count=True,narrow"))
    return specs


COMPILE_SPECS = _specs()
