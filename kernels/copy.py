"""Strided copy with cast, fill and arange: the data-movement kernels.

``clone``, ``contiguous``, dtype casts, ``copy_`` into a view and the broadcast of
a gradient back to a larger shape all run on one strided-copy kernel. Tensors of
up to ``MAX_DIMS`` dims (after merging dims that are contiguous in both source
and destination) are read and written through their strides, so no view is
silently copied first.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    LayoutError,
    ShapeError,
    check_tensor,
    check_writable,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch

MAX_DIMS = 6
COPY_BLOCK = 1024
COPY_DTYPES = FLOAT_DTYPES + (torch.int64, torch.int32, torch.bool, torch.uint8, torch.int8)


@triton.jit
def strided_offsets(
    linear, size1, size2, size3, size4, size5,
    stride0, stride1, stride2, stride3, stride4, stride5,
):
    """Memory offset of the element at row-major index ``linear`` of a 6-D
    tensor with the given sizes (dim 0's size is implied) and strides."""
    i5 = linear % size5
    rest = linear // size5
    i4 = rest % size4
    rest = rest // size4
    i3 = rest % size3
    rest = rest // size3
    i2 = rest % size2
    rest = rest // size2
    i1 = rest % size1
    i0 = rest // size1
    return (i0 * stride0 + i1 * stride1 + i2 * stride2
            + i3 * stride3 + i4 * stride4 + i5 * stride5)


@triton.jit
def offsets_of(
    linear, size1, size2, size3, size4, size5, s0, s1, s2, s3, s4, s5, FLAT: tl.constexpr
):
    """Memory offsets of the elements at row-major indices ``linear``; with FLAT the
    layout merged to one dim, and only its stride ``s5`` matters."""
    if FLAT:
        off = linear * s5
    else:
        off = strided_offsets(linear, size1, size2, size3, size4, size5, s0, s1, s2, s3, s4, s5)
    return off


@triton.jit
def copy_kernel(
    dst_ptr, src_ptr,
    numel, size1, size2, size3, size4, size5,
    src_s0, src_s1, src_s2, src_s3, src_s4, src_s5,
    dst_s0, dst_s1, dst_s2, dst_s3, dst_s4, dst_s5,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """dst[i] = cast(src[i]) for every index i of a (padded) 6-D shape.

    dst_ptr, src_ptr: any strides (int64 offsets: views of huge tensors are fine).
    numel: total element count; size1..size5: trailing sizes of the shape.
    FLAT: the layout merged to one dim (see offsets_of).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    src_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         src_s0, src_s1, src_s2, src_s3, src_s4, src_s5, FLAT)
    dst_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         dst_s0, dst_s1, dst_s2, dst_s3, dst_s4, dst_s5, FLAT)
    value = tl.load(src_ptr + src_off, mask=mask)
    tl.store(dst_ptr + dst_off, cast_to(value, dst_ptr.dtype.element_ty), mask=mask)


@triton.jit
def fill_kernel(
    dst_ptr, value: tl.float64,
    numel, size1, size2, size3, size4, size5,
    dst_s0, dst_s1, dst_s2, dst_s3, dst_s4, dst_s5,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """dst[i] = value for every index i; dst may be any non-overlapping view.

    value: typed fp64 (a GPU launch would type a Python float fp32, rounding an fp64 fill
    value or an integer above 2**24)."""
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    dst_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         dst_s0, dst_s1, dst_s2, dst_s3, dst_s4, dst_s5, FLAT)
    filled = tl.full([BLOCK], value, tl.float64)  # not zeros + value, which drops -0.0's sign
    tl.store(dst_ptr + dst_off, cast_to(filled, dst_ptr.dtype.element_ty), mask=mask)


@triton.jit
def arange_kernel(dst_ptr, start: tl.float64, step: tl.float64, numel, BLOCK: tl.constexpr):
    """dst[i] = start + i * step, for a contiguous 1-D dst of numel elements; start and step
    are fp64 arguments, so fp64 and int64 ranges are exact (up to 2**53)."""
    pid = tl.program_id(0).to(tl.int64)
    idx = pid * BLOCK + tl.arange(0, BLOCK)
    mask = idx < numel
    value = start + idx.to(tl.float64) * step
    tl.store(dst_ptr + idx, cast_to(value, dst_ptr.dtype.element_ty), mask=mask)


def merged_layout(shape, *strides_list):
    """Drop size-1 dims and merge neighbours that are contiguous in every
    stride list, so most views fit in MAX_DIMS. Returns (shape, [strides...])."""
    dims = [(size, [s[i] for s in strides_list]) for i, size in enumerate(shape) if size != 1]
    merged: list = []
    for size, strides in dims:
        if merged:
            prev_size, prev_strides = merged[-1]
            if all(ps == s * size for ps, s in zip(prev_strides, strides)):
                merged[-1] = (prev_size * size, strides)
                continue
        merged.append((size, strides))
    if len(merged) > MAX_DIMS:
        raise ShapeError(
            f"copy: a view with shape {tuple(shape)} needs {len(merged)} strided dims; "
            f"the copy kernel handles at most {MAX_DIMS}"
        )
    pad = MAX_DIMS - len(merged)
    sizes = [1] * pad + [m[0] for m in merged]
    per_tensor = [[0] * pad + [m[1][k] for m in merged] for k in range(len(strides_list))]
    return sizes, per_tensor


def flat_layout(shape, *strides_list) -> tuple[list, list, bool]:
    """merged_layout's (sizes, [strides...]) and FLAT: True when the tensors merged to a
    single dim, so a kernel computes offsets as ``linear * stride`` (offsets_of) instead of
    dividing each index by the sizes (an int64 division per element costs more than the
    memory traffic of an elementwise kernel)."""
    sizes, strides = merged_layout(shape, *strides_list)
    return sizes, strides, all(size == 1 for size in sizes[:-1])


def _byte_range(t: torch.Tensor) -> tuple[int, int]:
    """[first, end) byte addresses that t's elements occupy (t has elements)."""
    reach = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    return t.data_ptr(), t.data_ptr() + (reach + 1) * t.element_size()


def _is_dense(t: torch.Tensor) -> bool:
    """The elements fill a block of memory exactly once (a contiguous tensor, possibly
    with permuted dims): torch's is_non_overlapping_and_dense."""
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride()) if sz > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _src_overlap(dst: torch.Tensor, src: torch.Tensor, src_full: torch.Tensor) -> str:
    """How ``src`` (``src_full``: expanded to dst's shape) shares memory with ``dst``:
    "none", "same" (the same elements in the same order: nothing to do), "partial"
    (dense views that partly overlap: torch raises) or "interleaved" (strided views whose
    memory ranges overlap; they may or may not share elements)."""
    if dst.numel() == 0 or src.numel() == 0:
        return "none"
    dst_first, dst_end = _byte_range(dst)
    src_first, src_end = _byte_range(src_full)
    if dst_end <= src_first or src_end <= dst_first:
        return "none"
    same_strides = all(s == d for s, d, size in zip(src_full.stride(), dst.stride(), dst.shape)
                       if size > 1)
    if src_full.data_ptr() == dst.data_ptr() and same_strides and src.dtype == dst.dtype:
        return "same"
    if _is_dense(dst) and _is_dense(src):
        return "partial"
    return "interleaved"


def copy_into(dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Write ``src`` (broadcast to dst's shape, cast to dst's dtype) into ``dst``.

    A src that partly overlaps dst raises, as torch does for dense views; for strided views
    whose memory ranges interleave, src is first copied to a temporary (programs run in any
    order on a GPU, so reading memory that another program writes would race)."""
    check_tensor("copy_", "dst", dst, COPY_DTYPES)
    check_tensor("copy_", "src", src, COPY_DTYPES)
    check_writable("copy_", "dst", dst)
    try:
        src_full = src.expand(dst.shape)  # a stride-0 view: metadata only
    except RuntimeError:
        raise ShapeError(
            f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to "
            f"destination shape {tuple(dst.shape)}"
        ) from None
    numel = dst.numel()
    if numel == 0:
        return dst
    overlap = _src_overlap(dst, src, src_full)
    if overlap == "same":
        return dst
    if overlap == "partial":
        raise LayoutError(
            f"copy_: unsupported operation: some elements of the input tensor (shape "
            f"{tuple(src.shape)}, strides {tuple(src.stride())}) and the written-to tensor "
            f"(shape {tuple(dst.shape)}, strides {tuple(dst.stride())}) refer to a single "
            "memory location. Please clone() the tensor before performing the operation."
        )
    if overlap == "interleaved":
        src_full = copy(src).expand(dst.shape)
    src = src_full
    sizes, (src_strides, dst_strides), flat = flat_layout(dst.shape, src.stride(), dst.stride())
    launch(
        copy_kernel, (cdiv(numel, COPY_BLOCK),), dst, src, numel, *sizes[1:],
        *src_strides, *dst_strides, FLAT=flat, BLOCK=COPY_BLOCK,
        bytes_moved=numel * (src.element_size() + dst.element_size()),
    )
    return dst


def copy(src: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A new contiguous tensor with src's values, cast to ``dtype`` if given."""
    out = torch.empty(src.shape, dtype=dtype or src.dtype, device=src.device)
    return copy_into(out, src)


def contiguous(src: torch.Tensor) -> torch.Tensor:
    """src itself when already contiguous, else a contiguous copy (one launch)."""
    return src if src.is_contiguous() else copy(src)


def fill_(dst: torch.Tensor, value: float) -> torch.Tensor:
    check_tensor("fill_", "dst", dst, COPY_DTYPES)
    check_writable("fill_", "dst", dst)
    numel = dst.numel()
    if numel == 0:
        return dst
    sizes, (dst_strides,), flat = flat_layout(dst.shape, dst.stride())
    launch(
        fill_kernel, (cdiv(numel, COPY_BLOCK),), dst, float(value), numel, *sizes[1:],
        *dst_strides, FLAT=flat, BLOCK=COPY_BLOCK, bytes_moved=numel * dst.element_size(),
    )
    return dst


def full(shape, value: float, dtype: torch.dtype, device) -> torch.Tensor:
    return fill_(torch.empty(tuple(shape), dtype=dtype, device=device), value)


def arange(start: float, end: float, step: float, dtype: torch.dtype, device) -> torch.Tensor:
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    numel = max(0, -(-(end - start) // step))
    numel = int(numel)
    out = torch.empty((numel,), dtype=dtype, device=device)
    if numel:
        launch(arange_kernel, (cdiv(numel, COPY_BLOCK),), out, float(start), float(step),
               numel, BLOCK=COPY_BLOCK, bytes_moved=numel * out.element_size())
    return out


def _copy_specs():
    six_i64 = {f"{p}_s{i}": "i64" for p in ("src", "dst") for i in range(MAX_DIMS)}
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    specs = []
    flat_modes = {"FLAT": "constexpr", "BLOCK": "constexpr"}
    for (src_t, dst_t), flat in zip([("fp32", "bf16"), ("fp16", "fp32"), ("i64", "i64"),
                                     ("fp64", "fp32"), ("fp64", "bf16"), ("fp64", "fp16")],
                                    [False, True, False, True, True, True]):
        sig = {"dst_ptr": "*" + dst_t, "src_ptr": "*" + src_t, **sizes, **six_i64, **flat_modes}
        specs.append(CompileSpec(copy_kernel, sig, {"FLAT": flat, "BLOCK": COPY_BLOCK},
                                 f"{src_t}->{dst_t}" + (" flat" if flat else "")))
    fill_sig = {"dst_ptr": "*bf16", "value": "fp64", **sizes,
                **{f"dst_s{i}": "i64" for i in range(MAX_DIMS)}, **flat_modes}
    for flat in (False, True):
        specs.append(CompileSpec(fill_kernel, fill_sig, {"FLAT": flat, "BLOCK": COPY_BLOCK},
                                 "flat" if flat else ""))
    specs.append(CompileSpec(arange_kernel, {"dst_ptr": "*i64", "start": "fp64", "step": "fp64",
                                             "numel": "i64", "BLOCK": "constexpr"},
                             {"BLOCK": COPY_BLOCK}))
    return specs


COMPILE_SPECS = _copy_specs()
