"""Norms: multi-tensor global norm and in-place clipping (``clip_grad_norm_``), and the
differentiable ``norm`` and ``clip_norm`` ops with their backward kernels.

Multi-tensor kernels read a device-side **pointer table** (int64), built on the host and
copied to the device once per call (and cached, so repeated calls and CUDA-graph replays
reuse it)::

    table = [src_ptr (T) | dst_ptr (T) | numel (T) | dtype_code (T)
             | chunk_tensor (C) | chunk_start (C)]

for T tensors cut into C chunks of ``CHUNK`` elements. One program owns one chunk. Mixed
dtypes are handled by a per-tensor dtype code branch inside the kernel (0 fp32, 1 fp16,
2 bf16, 3 fp64), so the launch count is 2 whatever the number and dtypes of the tensors.
The partials, and the arithmetic, are fp32, or fp64 when the list holds an fp64 tensor
(gradcheck users; only those launches take the fp64 branches, which are constexpr ones):

1. ``multi_norm_partials_kernel``: chunk partial (sum of squares, or max |x|).
2. ``multi_norm_finalize_kernel``: every program re-reduces all partials in the same fixed
   order (deterministic, no atomics), forms total_norm and torch's clip coefficient
   ``min(1, max_norm / (total_norm + eps))`` (NaN stays NaN, as torch.clamp), scales its own
   chunk and program 0 writes total_norm. No host sync.

Tensors of the list must not overlap in memory (each chunk is read and written by one program);
``clip_grad_norm_`` refuses a tensor listed twice.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._checks import (
    UnsupportedError,
    DeviceError,
    LayoutError,
    ShapeError,
    ValueCheckError,
    check_tensor,
)
from ._common import cast_to
from .elementwise import div_rn, scalar_like, sqrt_rn, upcast
from ._tables import multi_tensor_table
from ._launch import CompileSpec, cdiv, interpreting, launch, runtime_device_type
from .copy import contiguous


MULTI_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.float64: 3}
FP64_CODE = DTYPE_CODE[torch.float64]
# Interpreter: programs run one by one, so one big block per program; GPU: chunks of
# 32K elements walked in 2K blocks keep enough programs in flight without a huge
# partials table (launch 2 re-reads every partial in every program: C^2 loads).
CHUNK = 4096 if interpreting() else 32768
BLOCK = 4096 if interpreting() else 2048
PBLOCK = 1024  # partials re-reduced per loop step
# tensors per step when each tensor's norm is rounded to its dtype (int64 sizes, a prefix
# sum, fp32 sums per lane: 1024 took 168 registers in the sm_90 build, 256 takes fewer)
TBLOCK = tl.constexpr(256)
MAX_TILE = 4096  # elements in one [BLOCK_O, BLOCK_R] tile of the per-dim kernels
# fp64 tiles are half as large: at 4096 the sm_90 build of the fp64 backward (p = inf and
# clip) needed all 255 registers and spilled 32-64 bytes; at 2048 it takes about 220.
MAX_TILE_FP64 = 2048


def _norm_order(p) -> float:
    """2.0 or inf; anything else is an UnsupportedError."""
    if p == "fro":
        return 2.0
    try:
        value = float(p)
    except (TypeError, ValueError):
        value = float("nan")
    if value == 2.0 or value == math.inf:
        return value
    raise UnsupportedError(f"norm: order {p!r} is not supported; supported: 2 and inf")


# ----------------------------------------------------------------------------- helpers


@triton.jit
def _load_f32(raw, code, idx, mask):
    """Load x[idx] as fp32 from the tensor at address ``raw`` of dtype code ``code``."""
    if code == 0:
        x = tl.load(raw.to(tl.pointer_type(tl.float32)) + idx, mask=mask, other=0.0)
        x = x.to(tl.float32)
    elif code == 1:
        x = tl.load(raw.to(tl.pointer_type(tl.float16)) + idx, mask=mask, other=0.0)
        x = x.to(tl.float32)
    else:
        x = tl.load(raw.to(tl.pointer_type(tl.bfloat16)) + idx, mask=mask, other=0.0)
        x = x.to(tl.float32)
    return x


@triton.jit
def _load_acc(raw, code, idx, mask, ACC: tl.constexpr):
    """Load x[idx] in ACC from the tensor at ``raw`` (dtype code ``code``). ACC is fp32, or
    fp64 for a list holding fp64 tensors: only then is code 3 (fp64) possible, and read."""
    if ACC == tl.float64:
        if code == 3:
            x = tl.load(raw.to(tl.pointer_type(tl.float64)) + idx, mask=mask, other=0.0)
        else:
            x = _load_f32(raw, code, idx, mask).to(tl.float64)
    else:
        x = _load_f32(raw, code, idx, mask)
    return x


@triton.jit
def _store_from_f32(raw, code, idx, value, mask):
    """Store fp32 ``value`` into x[idx] of the tensor at ``raw`` (dtype code ``code``)."""
    if code == 0:
        tl.store(raw.to(tl.pointer_type(tl.float32)) + idx, value, mask=mask)
    elif code == 1:
        tl.store(raw.to(tl.pointer_type(tl.float16)) + idx, value.to(tl.float16), mask=mask)
    else:
        out_ptr = raw.to(tl.pointer_type(tl.bfloat16))
        tl.store(out_ptr + idx, cast_to(value, tl.bfloat16), mask=mask)


# ----------------------------------------------------------------------------- multi-tensor


@triton.jit
def multi_norm_partials_kernel(
    table_ptr, partial_ptr,
    n_tensors, n_chunks,
    IS_INF: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """partial[c] = sum(x^2) (or max|x|, NaN-propagating) over chunk c of the table.

    table_ptr: int64 [4*T + 2*C] pointer table (see module docstring).
    partial_ptr: [C], fp32, or fp64 for a list holding fp64 tensors: the dtype computed
    in. n_tensors: T. n_chunks: C.
    """
    chunk = tl.program_id(0)
    tensor = tl.load(table_ptr + 4 * n_tensors + chunk)
    start = tl.load(table_ptr + 4 * n_tensors + n_chunks + chunk)
    raw = tl.load(table_ptr + tensor)
    numel = tl.load(table_ptr + 2 * n_tensors + tensor)
    code = tl.load(table_ptr + 3 * n_tensors + tensor)
    ACC: tl.constexpr = partial_ptr.dtype.element_ty
    acc = tl.zeros([BLOCK], dtype=ACC)
    nan_acc = tl.zeros([BLOCK], dtype=ACC)  # sums NaNs only: NaN iff one was seen
    for off in range(0, CHUNK, BLOCK):
        idx = start + off + tl.arange(0, BLOCK)
        mask = idx < numel
        x = _load_acc(raw, code, idx, mask, ACC)
        if IS_INF:
            a = tl.abs(x)
            acc = tl.maximum(acc, a)  # drops NaN; nan_acc carries it
            nan_acc += tl.where(a != a, a, 0.0)
        else:
            acc += x * x
    if IS_INF:
        part = tl.max(acc, axis=0) + tl.sum(nan_acc, axis=0)
    else:
        part = tl.sum(acc, axis=0)
    tl.store(partial_ptr + chunk, part)


@triton.jit
def _reduce_partials(partials, n_partials, IS_INF: tl.constexpr, PBLOCK: tl.constexpr):
    """The total of partial[0:n] (sum, or NaN-propagating max) in the partials' dtype, in
    a fixed order."""
    acc = tl.zeros([PBLOCK], dtype=partials.dtype.element_ty)
    nan_acc = tl.zeros([PBLOCK], dtype=partials.dtype.element_ty)
    for s in range(0, n_partials, PBLOCK):
        offs = s + tl.arange(0, PBLOCK)
        part = tl.load(partials + offs, mask=offs < n_partials, other=0.0)
        if IS_INF:
            acc = tl.maximum(acc, part)
            nan_acc += tl.where(part != part, part, 0.0)
        else:
            acc += part
    if IS_INF:
        total = tl.max(acc, axis=0) + tl.sum(nan_acc, axis=0)
    else:
        total = tl.sum(acc, axis=0)
    return total


@triton.jit
def _rounded_tensor_norms(table, partials, n_tensors, CHUNK: tl.constexpr,
                          TBLOCK: tl.constexpr):
    """sqrt(sum_t n_t^2), where n_t is tensor t's 2-norm rounded to t's own dtype, as torch
    does (per-tensor norms in each gradient's dtype, then the norm of those): an fp16
    tensor whose norm passes 65504 makes the total inf, and bf16 norms keep 8 bits.

    Tensor t's chunks are consecutive in the table, from first_t = sum of the chunk counts
    of the tensors before it; a block of TBLOCK tensors sums its chunks column by column.
    In the partials' dtype: with fp64 partials (a list holding fp64 tensors) an fp32
    tensor's norm is rounded to fp32 too, as torch's, and an fp64 one keeps every digit."""
    ACC: tl.constexpr = partials.dtype.element_ty
    total = tl.zeros([TBLOCK], dtype=ACC)
    chunk_base = tl.zeros([], dtype=tl.int64)
    for t0 in range(0, n_tensors, TBLOCK):
        t = t0 + tl.arange(0, TBLOCK)
        in_list = t < n_tensors
        numel = tl.load(table + 2 * n_tensors + t, mask=in_list, other=0)
        code = tl.load(table + 3 * n_tensors + t, mask=in_list, other=0)
        n_chunks_t = (numel + CHUNK - 1) // CHUNK
        first = chunk_base + tl.cumsum(n_chunks_t, axis=0) - n_chunks_t
        chunk_base += tl.sum(n_chunks_t, axis=0)
        squares = tl.zeros([TBLOCK], dtype=ACC)
        for k in range(0, tl.max(n_chunks_t, axis=0)):
            squares += tl.load(partials + first + k, mask=k < n_chunks_t, other=0.0)
        norm_t = sqrt_rn(squares)
        if ACC == tl.float64:
            norm_t = tl.where(code == 0, norm_t.to(tl.float32).to(tl.float64), norm_t)
        norm_t = tl.where(code == 1, cast_to(norm_t, tl.float16).to(ACC), norm_t)
        norm_t = tl.where(code == 2, cast_to(norm_t, tl.bfloat16).to(ACC), norm_t)
        total += norm_t * norm_t
    return sqrt_rn(tl.sum(total, axis=0))


@triton.jit
def _scale_chunk(src, dst, code, idx, mask, coef, ACC: tl.constexpr):
    """dst[idx] = src[idx] * coef for the tensor of dtype code ``code``. An fp32, fp16 or
    bf16 tensor is scaled in fp32 by coef rounded to fp32, as torch multiplies it by its
    fp64 coefficient tensor (fp32 opmath); an fp64 one (ACC fp64 only) in fp64."""
    if ACC == tl.float64:
        if code == 3:
            x64 = tl.load(src.to(tl.pointer_type(tl.float64)) + idx, mask=mask, other=0.0)
            tl.store(dst.to(tl.pointer_type(tl.float64)) + idx, x64 * coef, mask=mask)
        else:
            x32 = _load_f32(src, code, idx, mask)
            _store_from_f32(dst, code, idx, x32 * coef.to(tl.float32), mask)
    else:
        x = _load_f32(src, code, idx, mask)
        _store_from_f32(dst, code, idx, x * coef, mask)


@triton.jit
def multi_norm_finalize_kernel(
    table_ptr, partial_ptr, norm_ptr,
    max_norm: tl.float64, eps: tl.float64,
    n_tensors, n_chunks,
    IS_INF: tl.constexpr, DO_SCALE: tl.constexpr, ROUND_PER_TENSOR: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK: tl.constexpr, PBLOCK: tl.constexpr,
):
    """total = sqrt(sum partial) (or max partial); dst = src * clamp(max_norm/(total+eps), max=1).

    table_ptr: int64 pointer table. partial_ptr: [C] from the partials kernel, fp32 (fp64
    for a list holding fp64 tensors): the dtype computed in.
    norm_ptr: 0-d output (any float dtype), written by program 0.
    max_norm, eps: the clip threshold and torch's 1e-6 (0 for clip_norm), rounded to the
    compute dtype.
    DO_SCALE: False = only write the norm (grid of 1 program).
    ROUND_PER_TENSOR: a 2-norm over a list holding fp16/bf16 tensors: each tensor's norm is
    rounded to its dtype first (_rounded_tensor_norms). An all-fp32 list skips it: there
    the rounding of fp32 norms to fp32 changes the last bit at most (likewise an all-fp64
    list with fp64 partials; with fp64 partials an fp32 tensor's norm is rounded too).
    """
    chunk = tl.program_id(0)
    ACC: tl.constexpr = partial_ptr.dtype.element_ty
    if ROUND_PER_TENSOR and not IS_INF:
        total = _rounded_tensor_norms(table_ptr, partial_ptr, n_tensors, CHUNK, TBLOCK)
    else:
        total = _reduce_partials(partial_ptr, n_chunks, IS_INF, PBLOCK)
        if not IS_INF:
            total = sqrt_rn(total)
    norm_dtype: tl.constexpr = norm_ptr.dtype.element_ty
    if chunk == 0:
        tl.store(norm_ptr, cast_to(total, norm_dtype))
    if DO_SCALE:
        # As torch: the coefficient comes from the norm in its output dtype and is rounded
        # to it. For fp16/bf16 that rounding moves the coefficient (bf16 keeps 8 bits), and
        # an fp16 norm past 65504 is inf, which zeroes the gradients rather than scaling
        # them by a finite fp32 coefficient next to a returned norm of inf.
        # torch's max_norm / (norm + eps) is Tensor.__rtruediv__: reciprocal() * max_norm,
        # each step rounded to the norm's dtype (an fp16 reciprocal of a norm below 1.5e-5
        # overflows to inf, so the clamp below leaves the gradients unclipped, as torch).
        rounded = cast_to(total, norm_dtype).to(ACC)
        denominator = cast_to(rounded + scalar_like(eps, rounded), norm_dtype).to(ACC)
        reciprocal = cast_to(div_rn(tl.full((), 1.0, ACC), denominator), norm_dtype)
        coef = cast_to(reciprocal.to(ACC) * scalar_like(max_norm, rounded), norm_dtype).to(ACC)
        coef = tl.where(coef > 1.0, 1.0, coef)  # torch.clamp(max=1): NaN stays NaN
        coef = tl.where(total == 0.0, 1.0, coef)  # a zero norm leaves x unchanged
        tensor = tl.load(table_ptr + 4 * n_tensors + chunk)
        start = tl.load(table_ptr + 4 * n_tensors + n_chunks + chunk)
        src = tl.load(table_ptr + tensor)
        dst = tl.load(table_ptr + n_tensors + tensor)
        numel = tl.load(table_ptr + 2 * n_tensors + tensor)
        code = tl.load(table_ptr + 3 * n_tensors + tensor)
        for off in range(0, CHUNK, BLOCK):
            idx = start + off + tl.arange(0, BLOCK)
            mask = idx < numel
            _scale_chunk(src, dst, code, idx, mask, coef, ACC)


ELEMENT_SIZE = {0: 4, 1: 2, 2: 2, 3: 8}  # bytes per element of each dtype code


def _check_one(op: str, i: int, t: object) -> None:
    check_tensor(op, f"tensors[{i}]", t, MULTI_DTYPES)
    if not t.is_contiguous():
        raise LayoutError(
            f"{op}: tensors[{i}] (shape {tuple(t.shape)}, strides {tuple(t.stride())}) "
            "must be contiguous; the multi-tensor kernel walks each tensor as a flat array"
        )


def _scan(op: str, tensors: list[torch.Tensor]) -> tuple[list, list, list]:
    """check_tensor's checks and the table columns, in one cheap pass over the list
    (clip_grad_norm_ sees every gradient of a model on every step, and this host time is
    most of its cost for small tensors); a tensor that fails gets the full check and its
    precise error. Returns (ptrs, numels, dtype codes) of the non-empty tensors."""
    on_cuda = runtime_device_type() == "cuda"
    ptrs, numels, codes = [], [], []
    devices = set()
    for i, t in enumerate(tensors):
        if not (isinstance(t, torch.Tensor) and t.dtype in DTYPE_CODE
                and (t.is_cuda if on_cuda else t.is_cpu) and t.is_contiguous()):
            _check_one(op, i, t)
        devices.add(t.device)
        n = t.numel()
        if n:
            ptrs.append(t.data_ptr())
            numels.append(n)
            codes.append(DTYPE_CODE[t.dtype])
    if len(devices) > 1:
        listed = ", ".join(str(d) for d in devices)
        raise DeviceError(f"{op}: Expected all tensors to be on the same device, but got {listed}")
    return ptrs, numels, codes


def _check_no_duplicates(op: str, tensors: list[torch.Tensor], ptrs: list[int]) -> None:
    """In-place scaling: each chunk is scaled by the one program that owns it, so a tensor
    listed twice would be scaled by two programs at once (a race on a GPU)."""
    if len(set(ptrs)) == len(ptrs):
        return
    first_index: dict[int, int] = {}
    for i, t in enumerate(tensors):
        j = first_index.setdefault(t.data_ptr(), i) if t.numel() else i
        if j != i:
            raise LayoutError(
                f"{op}: tensors[{j}] and tensors[{i}] (shape {tuple(t.shape)}) are the same "
                "memory; each gradient must appear once in the list"
            )


def _default_out_dtype(tensors: list[torch.Tensor]) -> torch.dtype:
    """fp64 for a list holding an fp64 tensor (torch's promoted dtype), else fp32."""
    has_fp64 = any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in tensors)
    return torch.float64 if has_fp64 else torch.float32


def _multi_norm(op: str, tensors: list[torch.Tensor], norm_type: float, scale: bool,
                max_norm: float, eps: float, out_dtype: torch.dtype | None = None,
                check=None, dsts: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Launch the two multi-tensor kernels over ``tensors``, scaled in place when ``scale``
    (into ``dsts`` instead when given: contiguous, like ``tensors``); returns the 0-d total
    norm (out_dtype; None: _default_out_dtype). ``check(norm)``, if given, runs on the norm
    before anything is scaled (one more 1-program launch of the finalize kernel, and
    whatever sync ``check`` does). Computed in fp32, or in fp64 when a tensor is fp64."""
    ptrs, numels, codes = _scan(op, tensors)
    if out_dtype is None:
        out_dtype = _default_out_dtype(tensors)
    dst_ptrs = ptrs
    if dsts is not None:
        dst_ptrs = [d.data_ptr() for s, d in zip(tensors, dsts) if s.numel()]
    elif scale:
        _check_no_duplicates(op, tensors, ptrs)
    device = tensors[0].device if tensors else torch.device(runtime_device_type())
    norm = torch.zeros((), dtype=out_dtype, device=device)
    if not ptrs:
        return norm
    # table: [src ptrs | dst ptrs | numels | dtype codes | chunk tensor | chunk start]
    table, n_tensors, n_chunks = multi_tensor_table([ptrs, dst_ptrs], numels, CHUNK, device,
                                                    tail=codes)
    is_inf = norm_type == math.inf
    # fp64 partials (and fp64 arithmetic) only when a tensor is fp64
    fp64 = FP64_CODE in codes
    base_code = FP64_CODE if fp64 else DTYPE_CODE[torch.float32]
    partials = torch.empty((n_chunks,), dtype=torch.float64 if fp64 else torch.float32,
                           device=device)
    part_bytes = partials.element_size()
    numel = sum(numels)
    read_bytes = sum(n * ELEMENT_SIZE[c] for n, c in zip(numels, codes))
    launch(multi_norm_partials_kernel, (n_chunks,), table, partials, n_tensors, n_chunks,
           IS_INF=is_inf, CHUNK=CHUNK, BLOCK=BLOCK,
           flops=2 * numel, bytes_moved=read_bytes + part_bytes * n_chunks)
    round_per_tensor = any(code != base_code for code in codes)
    if check is not None:
        launch(multi_norm_finalize_kernel, (1,), table, partials, norm, float(max_norm),
               float(eps), n_tensors, n_chunks, IS_INF=is_inf, DO_SCALE=False,
               ROUND_PER_TENSOR=round_per_tensor, CHUNK=CHUNK, BLOCK=BLOCK, PBLOCK=PBLOCK,
               flops=n_chunks, bytes_moved=part_bytes * n_chunks)
        check(norm)
    grid = (n_chunks,) if scale else (1,)
    launch(multi_norm_finalize_kernel, grid, table, partials, norm, float(max_norm), float(eps),
           n_tensors, n_chunks, IS_INF=is_inf, DO_SCALE=scale,
           ROUND_PER_TENSOR=round_per_tensor, CHUNK=CHUNK, BLOCK=BLOCK, PBLOCK=PBLOCK,
           flops=grid[0] * n_chunks + (numel if scale else 0),
           bytes_moved=part_bytes * grid[0] * n_chunks + (2 * read_bytes if scale else 0))
    return norm


def _check_norm_type(op: str, norm_type: float) -> float:
    norm_type = float(norm_type)
    if norm_type not in (2.0, math.inf):
        raise UnsupportedError(f"{op}: norm_type {norm_type} is not supported; use 2.0 or inf")
    return norm_type


def total_norm(tensors: list[torch.Tensor], norm_type: float = 2.0) -> torch.Tensor:
    """The norm of all elements of ``tensors`` together (0-d fp32, or fp64 computed in fp64
    when a tensor is fp64); 0 for no tensors."""
    norm_type = _check_norm_type("total_norm", norm_type)
    return _multi_norm("total_norm", list(tensors), norm_type, False, 0.0, 0.0)


def clip_grad_norm_(tensors: list[torch.Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False,
                    out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Scale ``tensors`` in place by min(1, max_norm / (total_norm + 1e-6)), as
    torch.nn.utils.clip_grad_norm_, in 2 launches; returns total_norm (0-d, computed in
    fp32, or fp64 when a tensor is fp64, and written in ``out_dtype``: None is fp32, or
    fp64 for a list holding fp64). As torch, each tensor's 2-norm is rounded to its own
    dtype before the total is formed, and the coefficient is formed in out_dtype.

    With ``error_if_nonfinite`` the norm is computed and read first (one more launch and one
    host sync) and a ValueCheckError is raised before any tensor changes."""
    op = "clip_grad_norm_"
    norm_type = _check_norm_type(op, norm_type)
    tensors = list(tensors)

    def check_finite(norm: torch.Tensor) -> None:
        value = float(norm.item())  # the one allowed sync
        if math.isnan(value) or math.isinf(value):
            raise ValueCheckError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
            )

    return _multi_norm(op, tensors, norm_type, True, max_norm, 1e-6, out_dtype=out_dtype,
                       check=check_finite if error_if_nonfinite else None)


# ----------------------------------------------------------------------------- per-dim kernels
#
# A reduction along ``dim`` sees x as [outer, R, inner] with strides (s_outer, s_r, s_inner);
# output o in [0, outer*inner) is (o // inner, o % inner) and is stored contiguously.
#
# Backward, per output row (x_r, r = 1..R; n = ||x||; g the incoming gradient):
#   p = 2:   n = sqrt(sum x_r^2),   dn/dx_r = x_r / n   =>  gx_r = x_r * (g / n); 0 where n = 0
#            (torch masks n = 0 to 0 as well).
#   p = inf: n = max |x_r|. The subgradient torch uses splits g equally among the maximisers
#            (and NaN elements): mask_r = (|x_r| == n) | isnan(x_r), count = sum mask,
#            gx_r = sgn(x_r) * (g / count) * mask_r.
#   clip:    y = x * min(1, c / n).  If n <= c, y = x, dy/dx = I  =>  gx = g.
#            If n > c, y = c x / n and dn/dx = x / n, so
#            dy_i/dx_j = c (delta_ij / n - x_i x_j / n^3)  =>  gx = (c/n) (g - x (x.g) / n^2).
#            n = 0 falls in the first case: y = x, gx = g.
#            At n = c exactly y has a kink: the first case's gx = g is the derivative from
#            inside the ball (a reference written with clamp(max=1) may take the other
#            side, (g - x (x.g) / n^2)); both are one-sided derivatives there.


@triton.jit
def dim_norm_fwd_kernel(
    x_ptr, out_ptr, y_ptr,
    max_norm: tl.float64,
    n_out, R, inner,
    s_outer, s_r, s_inner,
    IS_INF: tl.constexpr, CLIP: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr,
):
    """out[o] = ||x[o_outer, :, o_inner]|| (p = 2 or inf); with CLIP also
    y = x * min(1, max_norm / out) (y contiguous [outer, R, inner]).

    x_ptr: [outer, R, inner] strided. out_ptr: [outer*inner] contiguous (any float dtype;
    the compute dtype for clip). y_ptr: [outer, R, inner] contiguous, only written when CLIP.
    max_norm: rounded to the compute dtype: fp32, fp64 for fp64 x.
    """
    pid = tl.program_id(0).to(tl.int64)
    o = pid * BLOCK_O + tl.arange(0, BLOCK_O)
    o_mask = o < n_out
    o_outer = o // inner
    o_inner = o % inner
    base = o_outer * s_outer + o_inner * s_inner
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros([BLOCK_O, BLOCK_R], dtype=ACC)
    nan_acc = tl.zeros([BLOCK_O, BLOCK_R], dtype=ACC)
    for r0 in range(0, R, BLOCK_R):
        r = (r0 + tl.arange(0, BLOCK_R)).to(tl.int64)
        mask = o_mask[:, None] & (r < R)[None, :]
        x = tl.load(x_ptr + base[:, None] + r[None, :] * s_r, mask=mask, other=0.0)
        x = upcast(x)
        if IS_INF:
            a = tl.abs(x)
            acc = tl.maximum(acc, a)
            nan_acc += tl.where(a != a, a, 0.0)
        else:
            acc += x * x
    if IS_INF:
        norm = tl.max(acc, axis=1) + tl.sum(nan_acc, axis=1)
    else:
        norm = sqrt_rn(tl.sum(acc, axis=1))
    tl.store(out_ptr + o, cast_to(norm, out_ptr.dtype.element_ty), mask=o_mask)
    if CLIP:
        max_norm = scalar_like(max_norm, norm)
        scale = tl.where(norm > max_norm, max_norm / norm, 1.0)
        scale = tl.where(norm != norm, norm, scale)
        y_base = o_outer * R * inner + o_inner
        for r0 in range(0, R, BLOCK_R):
            r = (r0 + tl.arange(0, BLOCK_R)).to(tl.int64)
            mask = o_mask[:, None] & (r < R)[None, :]
            x = tl.load(x_ptr + base[:, None] + r[None, :] * s_r, mask=mask, other=0.0)
            y = upcast(x) * scale[:, None]
            y_off = y_base[:, None] + r[None, :] * inner
            tl.store(y_ptr + y_off, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def dim_norm_bwd_kernel(
    x_ptr, g_ptr, norm_ptr, gx_ptr,
    max_norm: tl.float64,
    n_out, R, inner,
    s_outer, s_r, s_inner,
    sg_outer, sg_r, sg_inner,
    MODE: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr,
):
    """grad_x of a per-dim norm (MODE 0: p=2, 1: p=inf) or clip_norm (MODE 2); see the
    derivation above.

    x_ptr: [outer, R, inner] strided. g_ptr: the incoming gradient seen as [outer, R, inner]
    with strides (sg_outer, sg_r, sg_inner); sg_r = 0 for a norm's per-row gradient.
    norm_ptr: [outer*inner] contiguous forward norms. gx_ptr: [outer, R, inner] contiguous.
    max_norm: rounded to the compute dtype (fp32, fp64 for fp64 x).
    """
    pid = tl.program_id(0).to(tl.int64)
    o = pid * BLOCK_O + tl.arange(0, BLOCK_O)
    o_mask = o < n_out
    o_outer = o // inner
    o_inner = o % inner
    base = o_outer * s_outer + o_inner * s_inner
    g_base = o_outer * sg_outer + o_inner * sg_inner
    gx_base = o_outer * R * inner + o_inner
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    norm = tl.load(norm_ptr + o, mask=o_mask, other=1.0).to(ACC)
    row_acc = tl.zeros([BLOCK_O, BLOCK_R], dtype=ACC)
    if MODE != 0:  # first pass: tie count (inf) or x.g (clip)
        for r0 in range(0, R, BLOCK_R):
            r = (r0 + tl.arange(0, BLOCK_R)).to(tl.int64)
            mask = o_mask[:, None] & (r < R)[None, :]
            x = tl.load(x_ptr + base[:, None] + r[None, :] * s_r, mask=mask, other=0.0)
            x = upcast(x)
            if MODE == 1:
                a = tl.abs(x)
                tie = ((a == norm[:, None]) | (a != a)) & mask
                row_acc += tie.to(ACC)
            else:
                g = tl.load(g_ptr + g_base[:, None] + r[None, :] * sg_r, mask=mask, other=0.0)
                row_acc += x * g.to(ACC)
    row_total = tl.sum(row_acc, axis=1)
    if MODE == 2:
        max_norm = scalar_like(max_norm, row_total)
    for r0 in range(0, R, BLOCK_R):
        r = (r0 + tl.arange(0, BLOCK_R)).to(tl.int64)
        mask = o_mask[:, None] & (r < R)[None, :]
        x = tl.load(x_ptr + base[:, None] + r[None, :] * s_r, mask=mask, other=0.0)
        x = upcast(x)
        g = tl.load(g_ptr + g_base[:, None] + r[None, :] * sg_r, mask=mask, other=0.0)
        g = g.to(ACC)
        n = norm[:, None]
        if MODE == 0:
            gx = tl.where(n == 0.0, 0.0, x * (g / n))
        elif MODE == 1:
            a = tl.abs(x)
            tie = (a == n) | (a != a)
            sign = tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, tl.where(x == 0, 0.0, x)))
            gx = tl.where(tie, sign * (g / row_total[:, None]), 0.0)
        else:
            clipped = (max_norm / n) * (g - x * (row_total[:, None] / (n * n)))
            gx = tl.where(n > max_norm, clipped, g)
            gx = tl.where(n != n, n, gx)
        gx_off = gx_base[:, None] + r[None, :] * inner
        tl.store(gx_ptr + gx_off, cast_to(gx, gx_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- dim=None backward


@triton.jit
def flat_partials_kernel(
    x_ptr, g_ptr, norm_ptr, partial_ptr,
    numel,
    MODE: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """Per-chunk partials for a whole-tensor backward: MODE 1 counts ties
    (|x| == norm or NaN) into int32 partial_ptr; MODE 2 sums x*g into partial_ptr in the
    compute dtype (fp32, fp64 for fp64 x).

    x_ptr, g_ptr: contiguous [numel]. norm_ptr: 0-d forward norm. partial_ptr: [n_chunks].
    """
    pid = tl.program_id(0).to(tl.int64)
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    norm = tl.load(norm_ptr).to(ACC)
    acc = tl.zeros([BLOCK], dtype=ACC)
    for off in range(0, CHUNK, BLOCK):
        idx = pid * CHUNK + off + tl.arange(0, BLOCK)
        mask = idx < numel
        x = upcast(tl.load(x_ptr + idx, mask=mask, other=0.0))
        if MODE == 1:
            a = tl.abs(x)
            acc += (((a == norm) | (a != a)) & mask).to(ACC)
        else:
            g = tl.load(g_ptr + idx, mask=mask, other=0.0).to(ACC)
            acc += x * g
    tl.store(partial_ptr + pid, cast_to(tl.sum(acc, axis=0), partial_ptr.dtype.element_ty))


@triton.jit
def flat_norm_bwd_kernel(
    x_ptr, g_ptr, norm_ptr, partial_ptr, gx_ptr,
    max_norm: tl.float64,
    numel, n_partials,
    MODE: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr, PBLOCK: tl.constexpr,
):
    """grad_x of a whole-tensor norm (MODE 0: p=2, 1: inf) or clip_norm (MODE 2).

    x_ptr: contiguous [numel]. g_ptr: 0-d gradient of the norm (MODE 0, 1) or contiguous
    [numel] gradient of y (MODE 2). norm_ptr: 0-d forward norm. partial_ptr: the tie counts
    (int32) or x.g partials (compute dtype) of flat_partials_kernel, re-reduced by every
    program in the same order (unused in MODE 0). gx_ptr: contiguous [numel].
    max_norm: rounded to the compute dtype (fp32, fp64 for fp64 x).
    """
    pid = tl.program_id(0).to(tl.int64)
    ACC: tl.constexpr = tl.float64 if x_ptr.dtype.element_ty == tl.float64 else tl.float32
    n = tl.load(norm_ptr).to(ACC)
    total = 0.0
    if MODE != 0:
        acc = tl.zeros([PBLOCK], dtype=ACC)
        for s in range(0, n_partials, PBLOCK):
            offs = s + tl.arange(0, PBLOCK)
            acc += tl.load(partial_ptr + offs, mask=offs < n_partials, other=0).to(ACC)
        total = tl.sum(acc, axis=0)
    if MODE != 2:
        g_out = tl.load(g_ptr).to(ACC)
    else:
        max_norm = scalar_like(max_norm, n)
    for off in range(0, CHUNK, BLOCK):
        idx = pid * CHUNK + off + tl.arange(0, BLOCK)
        mask = idx < numel
        x = upcast(tl.load(x_ptr + idx, mask=mask, other=0.0))
        if MODE == 0:
            gx = tl.where(n == 0.0, 0.0, x * (g_out / n))
        elif MODE == 1:
            a = tl.abs(x)
            tie = (a == n) | (a != a)
            sign = tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, tl.where(x == 0, 0.0, x)))
            gx = tl.where(tie, sign * (g_out / total), 0.0)
        else:
            g = tl.load(g_ptr + idx, mask=mask, other=0.0).to(ACC)
            clipped = (max_norm / n) * (g - x * (total / (n * n)))
            gx = tl.where(n > max_norm, clipped, g)
            gx = tl.where(n != n, n, gx)
        tl.store(gx_ptr + idx, cast_to(gx, gx_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers

NORM_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 for fp64 x (computed in fp64), fp32 for the others."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _merge(sizes: list[int], strides: list[int]) -> tuple[int, int] | None:
    """(size, stride) of dims that form one strided dim, or None; size-1 dims are ignored."""
    dims = [(s, st) for s, st in zip(sizes, strides) if s != 1]
    total = math.prod(sizes)
    if not dims:
        return total, 0
    for (size_a, stride_a), (size_b, stride_b) in zip(dims, dims[1:]):
        if stride_a != stride_b * size_b:
            return None
    return total, dims[-1][1]


def _split3(t: torch.Tensor, dim: int) -> tuple | None:
    """t seen as [outer, R, inner]: ((outer, R, inner), (s_outer, s_r, s_inner)) or None."""
    shape, strides = list(t.shape), list(t.stride())
    outer = _merge(shape[:dim], strides[:dim])
    inner = _merge(shape[dim + 1:], strides[dim + 1:])
    if outer is None or inner is None:
        return None
    return (outer[0], shape[dim], inner[0]), (outer[1], strides[dim], inner[1])


def _split3_or_copy(t: torch.Tensor, dim: int) -> tuple:
    """(tensor, sizes, strides); copies t to contiguous (one launch) only when the dims
    before or after ``dim`` cannot be walked as a single strided dim."""
    split = _split3(t, dim)
    if split is None:
        t = contiguous(t)
        split = _split3(t, dim)
    return t, split[0], split[1]


def _dim_blocks(n_out: int, reduce: int, dtype: torch.dtype) -> tuple[int, int]:
    tile = MAX_TILE_FP64 if dtype == torch.float64 else MAX_TILE
    block_r = min(triton.next_power_of_2(max(reduce, 1)), 1024, tile)
    block_o = max(1, min(triton.next_power_of_2(max(n_out, 1)), tile // block_r))
    return block_o, block_r


def _check_norm_input(op: str, x: torch.Tensor, dim: int | None) -> int | None:
    check_tensor(op, "x", x, NORM_DTYPES)
    if dim is None:
        return None
    ndim = max(x.dim(), 1)
    if not -ndim <= dim < ndim:
        raise ShapeError(f"{op}: dim {dim} is out of range for x of shape {tuple(x.shape)}")
    return dim % ndim


def _as_flat(t: torch.Tensor) -> torch.Tensor:
    """Contiguous 1-D view (a copy, one launch, only for non-contiguous input: the flat
    kernels walk the tensor as an array)."""
    return contiguous(t).reshape(-1)


def norm_fwd(x: torch.Tensor, p: float = 2.0, dim: int | None = None,
             keepdim: bool = False) -> torch.Tensor:
    """||x||_p over all elements (dim None) or along ``dim``; p = 2 or inf; x.dtype out."""
    op = "norm"
    p = _norm_order(p)
    dim = _check_norm_input(op, x, dim)
    if dim is None or x.dim() == 0:
        flat = _as_flat(x)
        out = _multi_norm(op, [flat], p, False, 0.0, 0.0, out_dtype=x.dtype)
        return out.reshape([1] * x.dim()) if keepdim else out
    x3, (outer, reduce, inner), (s_outer, s_r, s_inner) = _split3_or_copy(x, dim)
    out_shape = list(x.shape[:dim]) + list(x.shape[dim + 1:])
    out = torch.empty(out_shape, dtype=x.dtype, device=x.device)
    n_out = outer * inner
    if n_out > 0:
        block_o, block_r = _dim_blocks(n_out, reduce, x.dtype)
        launch(dim_norm_fwd_kernel, (cdiv(n_out, block_o),), x3, out, out, 0.0,
               n_out, reduce, inner, s_outer, s_r, s_inner,
               IS_INF=p == math.inf, CLIP=False, BLOCK_O=block_o, BLOCK_R=block_r,
               flops=2 * x.numel(), bytes_moved=(x.numel() + n_out) * x.element_size())
    return out.unsqueeze(dim) if keepdim else out


def norm_bwd(grad_out: torch.Tensor, x: torch.Tensor, norm: torch.Tensor, p: float = 2.0,
             dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """grad_x of norm_fwd: grad_out and norm have norm_fwd's output shape."""
    op = "norm_bwd"
    p = _norm_order(p)
    dim = _check_norm_input(op, x, dim)
    check_tensor(op, "grad_out", grad_out, NORM_DTYPES)
    check_tensor(op, "norm", norm, NORM_DTYPES)
    mode = 1 if p == math.inf else 0
    gx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if x.numel() == 0:
        return gx
    if dim is None or x.dim() == 0:
        if grad_out.numel() != 1 or norm.numel() != 1:
            raise ShapeError(f"{op}: expected one-element grad_out and norm for a whole-tensor "
                             f"norm, got {tuple(grad_out.shape)} and {tuple(norm.shape)}")
        return _flat_bwd(op, x, grad_out.reshape(()), norm.reshape(()), gx, 0.0, mode)
    out_shape = list(x.shape[:dim]) + list(x.shape[dim + 1:])
    if keepdim:
        grad_out, norm = grad_out.squeeze(dim), norm.squeeze(dim)
    for name, t in (("grad_out", grad_out), ("norm", norm)):
        if list(t.shape) != out_shape:
            raise ShapeError(f"{op}: {name} has shape {tuple(t.shape)}; expected "
                             f"{tuple(out_shape)} for x of shape {tuple(x.shape)}, dim {dim}")
    # A per-row gradient is the full gradient with a stride-0 reduced dim.
    g_full = grad_out.unsqueeze(dim).expand(x.shape)
    norm = contiguous(norm)
    return _dim_bwd(x, g_full, norm, gx, dim, 0.0, mode)


def _dim_bwd(x, g_full, norm, gx, dim, max_norm, mode):
    x3, (outer, reduce, inner), x_strides = _split3_or_copy(x, dim)
    g3, _, g_strides = _split3_or_copy(g_full, dim)
    n_out = outer * inner
    block_o, block_r = _dim_blocks(n_out, reduce, x.dtype)
    passes = 1 if mode == 0 else 2
    launch(dim_norm_bwd_kernel, (cdiv(n_out, block_o),), x3, g3, norm, gx, float(max_norm),
           n_out, reduce, inner, *x_strides, *g_strides,
           MODE=mode, BLOCK_O=block_o, BLOCK_R=block_r,
           flops=4 * passes * x.numel(),
           bytes_moved=(passes + 1) * x.numel() * x.element_size() + 4 * n_out)
    return gx


def _flat_bwd(op, x, g, norm, gx, max_norm, mode):
    flat_x = _as_flat(x)
    flat_g = _as_flat(g) if mode == 2 else g
    numel = flat_x.numel()
    n_chunks = cdiv(numel, CHUNK)
    if mode == 0:
        partials = norm  # unused
    else:
        dtype = torch.int32 if mode == 1 else _compute_dtype(x.dtype)
        partials = torch.empty((n_chunks,), dtype=dtype, device=x.device)
        launch(flat_partials_kernel, (n_chunks,), flat_x, flat_g, norm, partials, numel,
               MODE=mode, CHUNK=CHUNK, BLOCK=BLOCK,
               flops=2 * numel, bytes_moved=numel * x.element_size() * (mode if mode else 1))
    launch(flat_norm_bwd_kernel, (n_chunks,), flat_x, flat_g, norm, partials, gx.reshape(-1),
           float(max_norm), numel, n_chunks, MODE=mode, CHUNK=CHUNK, BLOCK=BLOCK, PBLOCK=PBLOCK,
           flops=4 * numel + (n_chunks * n_chunks if mode else 0),
           bytes_moved=3 * numel * x.element_size() + (4 * n_chunks * n_chunks if mode else 0))
    return gx


def clip_norm_fwd(x: torch.Tensor, max_norm: float,
                  dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, norms): y = x * min(1, max_norm / ||x||_2) over all of x (dim None) or per slice
    along ``dim``; y contiguous in x.dtype, norms fp32 (fp64 for fp64 x, computed in fp64)
    (0-d, or x's shape without dim)."""
    op = "clip_norm"
    dim = _check_norm_input(op, x, dim)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    norm_dtype = _compute_dtype(x.dtype)
    if dim is None or x.dim() == 0:
        flat = _as_flat(x)
        norms = _multi_norm(op, [flat], 2.0, True, max_norm, 0.0, out_dtype=norm_dtype,
                            dsts=[y.reshape(-1)])
        return y, norms
    x3, (outer, reduce, inner), (s_outer, s_r, s_inner) = _split3_or_copy(x, dim)
    out_shape = list(x.shape[:dim]) + list(x.shape[dim + 1:])
    norms = torch.empty(out_shape, dtype=norm_dtype, device=x.device)
    n_out = outer * inner
    if n_out > 0 and reduce > 0:
        block_o, block_r = _dim_blocks(n_out, reduce, x.dtype)
        launch(dim_norm_fwd_kernel, (cdiv(n_out, block_o),), x3, norms, y, float(max_norm),
               n_out, reduce, inner, s_outer, s_r, s_inner,
               IS_INF=False, CLIP=True, BLOCK_O=block_o, BLOCK_R=block_r,
               flops=4 * x.numel(),
               bytes_moved=3 * x.numel() * x.element_size() + norms.element_size() * n_out)
    return y, norms


def clip_norm_bwd(grad_y: torch.Tensor, x: torch.Tensor, norms: torch.Tensor, max_norm: float,
                  dim: int | None = None) -> torch.Tensor:
    """grad_x of clip_norm_fwd (see the derivation above); norms from clip_norm_fwd."""
    op = "clip_norm_bwd"
    dim = _check_norm_input(op, x, dim)
    check_tensor(op, "grad_y", grad_y, NORM_DTYPES)
    check_tensor(op, "norms", norms, (_compute_dtype(x.dtype),))
    if tuple(grad_y.shape) != tuple(x.shape):
        raise ShapeError(f"{op}: grad_y has shape {tuple(grad_y.shape)}, x has {tuple(x.shape)}")
    gx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if x.numel() == 0:
        return gx
    if dim is None or x.dim() == 0:
        return _flat_bwd(op, x, grad_y, norms.reshape(()), gx, max_norm, 2)
    return _dim_bwd(x, grad_y, contiguous(norms), gx, dim, max_norm, 2)


def _specs():
    specs = []
    table = {"table_ptr": "*i64", "n_tensors": "i32", "n_chunks": "i32"}
    # fp32 partials; fp64 partials (a list holding fp64 tensors) get their own labels
    for acc, suffix in (("fp32", ""), ("fp64", ",fp64")):
        for is_inf in (False, True):
            sig = {"table_ptr": "*i64", "partial_ptr": "*" + acc, "n_tensors": "i32",
                   "n_chunks": "i32", "IS_INF": "constexpr", "CHUNK": "constexpr",
                   "BLOCK": "constexpr"}
            const = {"IS_INF": is_inf, "CHUNK": CHUNK, "BLOCK": BLOCK}
            specs.append(CompileSpec(multi_norm_partials_kernel, sig, const,
                                     f"inf={is_inf}{suffix}"))
            for scale, per_tensor in ((False, False), (True, False), (True, True)):
                norm_t = ("*bf16" if per_tensor else "*fp32") if acc == "fp32" else "*fp64"
                sig = {"table_ptr": "*i64", "partial_ptr": "*" + acc, "norm_ptr": norm_t,
                       "max_norm": "fp64", "eps": "fp64", **table, "IS_INF": "constexpr",
                       "DO_SCALE": "constexpr", "ROUND_PER_TENSOR": "constexpr",
                       "CHUNK": "constexpr", "BLOCK": "constexpr", "PBLOCK": "constexpr"}
                specs.append(CompileSpec(
                    multi_norm_finalize_kernel, sig,
                    {"IS_INF": is_inf, "DO_SCALE": scale, "ROUND_PER_TENSOR": per_tensor,
                     "CHUNK": CHUNK, "BLOCK": BLOCK, "PBLOCK": PBLOCK},
                    f"inf={is_inf},scale={scale},per_tensor={per_tensor}{suffix}"))
    dims = {"n_out": "i32", "R": "i32", "inner": "i32",
            "s_outer": "i64", "s_r": "i64", "s_inner": "i64"}
    for dtype, is_inf, clip in (("fp32", False, True), ("bf16", True, False),
                                ("fp16", False, False), ("fp64", False, True),
                                ("fp64", True, False), ("fp64", False, False)):
        out = ("fp64" if dtype == "fp64" else "fp32") if clip else dtype
        sig = {"x_ptr": "*" + dtype, "out_ptr": "*" + out, "y_ptr": "*" + dtype,
               "max_norm": "fp64", **dims, "IS_INF": "constexpr", "CLIP": "constexpr",
               "BLOCK_O": "constexpr", "BLOCK_R": "constexpr"}
        specs.append(CompileSpec(dim_norm_fwd_kernel, sig,
                                 {"IS_INF": is_inf, "CLIP": clip, "BLOCK_O": 8,
                                  "BLOCK_R": 256 if dtype == "fp64" else 512},
                                 f"{dtype},inf={is_inf},clip={clip}"))
    modes = (("fp32", 0), ("bf16", 1), ("fp16", 2), ("fp64", 0), ("fp64", 1), ("fp64", 2))
    for dtype, mode in modes:
        norm = ("fp64" if dtype == "fp64" else "fp32") if mode == 2 else dtype
        sig = {"x_ptr": "*" + dtype, "g_ptr": "*" + dtype, "norm_ptr": "*" + norm,
               "gx_ptr": "*" + dtype, "max_norm": "fp64", **dims,
               "sg_outer": "i64", "sg_r": "i64", "sg_inner": "i64",
               "MODE": "constexpr", "BLOCK_O": "constexpr", "BLOCK_R": "constexpr"}
        const = {"MODE": mode, "BLOCK_O": 8, "BLOCK_R": 256 if dtype == "fp64" else 512}
        specs.append(CompileSpec(dim_norm_bwd_kernel, sig, const, f"{dtype},mode={mode}"))
    for dtype, mode in modes:
        acc = "fp64" if dtype == "fp64" else "fp32"
        partial = "i32" if mode == 1 else acc
        norm = acc if mode == 2 else dtype
        if mode:
            sig = {"x_ptr": "*" + dtype, "g_ptr": "*" + dtype, "norm_ptr": "*" + norm,
                   "partial_ptr": "*" + partial, "numel": "i64", "MODE": "constexpr",
                   "CHUNK": "constexpr", "BLOCK": "constexpr"}
            specs.append(CompileSpec(flat_partials_kernel, sig,
                                     {"MODE": mode, "CHUNK": CHUNK, "BLOCK": BLOCK},
                                     f"{dtype},mode={mode}"))
        sig = {"x_ptr": "*" + dtype, "g_ptr": "*" + dtype, "norm_ptr": "*" + norm,
               "partial_ptr": "*" + partial, "gx_ptr": "*" + dtype, "max_norm": "fp64",
               "numel": "i64", "n_partials": "i32", "MODE": "constexpr", "CHUNK": "constexpr",
               "BLOCK": "constexpr", "PBLOCK": "constexpr"}
        specs.append(CompileSpec(flat_norm_bwd_kernel, sig,
                                 {"MODE": mode, "CHUNK": CHUNK, "BLOCK": BLOCK, "PBLOCK": PBLOCK},
                                 f"{dtype},mode={mode}"))
    return specs


COMPILE_SPECS = _specs()

__all__ = ["UnsupportedError", "total_norm", "clip_grad_norm_", "norm_fwd", "norm_bwd",
           "clip_norm_fwd", "clip_norm_bwd", "CHUNK"]
