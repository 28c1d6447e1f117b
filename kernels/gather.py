"""torch.gather along one dim, forward and backward.

Forward, for x and an int64 index of the same rank with index.size(d) <= x.size(d) for every
d != dim (torch's rule):
    out[i_0, ..., i_k] = x[i_0, ..., index[i_0, ..., i_k], ..., i_k]     (the index at ``dim``)
One program per BLOCK of out's elements: the element's offset in x is its offset with x's
strides on every dim but ``dim`` (stride 0 there) plus index * x.stride(dim), so any view of
x and of index is read in place.

Index range is a value check, done on the device as cross-entropy checks labels: a lane
whose index is outside [0, x.size(dim)) sets an int32 flag and stores the index next to it,
reads nothing and writes NaN (0 for integers); ``gather_fwd(check_indices=True)`` reads the
flag (one host sync) and raises torch's "index 7 is out of bounds for dimension 1 with
size 5". With several bad indices, which one the message names is whichever store landed.

Backward. out[p] = x[q(p)] with q(p) the position p with coordinate ``dim`` replaced by
index[p], so d out[p] / d x[r] = [q(p) == r] and
    gx[r] = sum_{p : q(p) == r} g[p] = sum_j g[r_j] [index[r_j] == r_dim]
where r_j is r with coordinate ``dim`` replaced by j, j < index.size(dim) (only positions r
whose other coordinates lie inside index's shape receive anything; the rest stay 0).
gather_bwd_kernel computes that sum directly, one lane per such r, looping over j in order:
deterministic, no atomics, index.size(dim) loads of (g, index) per lane. That suits gather's
usual use (a few picks along a dim, as logits.gather(1, labels)); a gather of thousands of
positions along a long dim costs size(dim) * index.size(dim) per row.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    DTypeError,
    OutOfRangeError,
    ShapeError,
    check_same_device,
    check_tensor,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, merged_layout, strided_offsets
from .elementwise import upcast

GATHER_DTYPES = FLOAT_DTYPES + INTEGER_DTYPES + (torch.bool,)
BLOCK = 8192 if interpreting() else 1024


@triton.jit
def gather_kernel(
    out_ptr, err_ptr, x_ptr, index_ptr,
    numel, size1, size2, size3, size4, size5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    ix_s0, ix_s1, ix_s2, ix_s3, ix_s4, ix_s5,
    dim_size, stride_x_dim,
    WRAP: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[p] = x[p with coordinate dim := index[p]] for BLOCK positions p of out; WRAP
    (indexing's rule): an index in [-dim_size, 0) counts from the end.

    out_ptr: index's shape, contiguous, x's dtype.
    err_ptr: (2,) int64: [flag, bad index], written only by lanes whose index is out of
        range.
    x_ptr: x, strides x_s* over index's (6-D padded) shape with 0 on dim; stride_x_dim is
        x's stride on dim, dim_size x's size there.
    index_ptr: int64 (int32 for index_select), strides ix_s*. numel: out's element count; size1..size5: the
        trailing sizes of index's 6-D padded shape.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    given = tl.load(index_ptr + strided_offsets(linear, size1, size2, size3, size4, size5,
                                                ix_s0, ix_s1, ix_s2, ix_s3, ix_s4, ix_s5),
                    mask=mask, other=0).to(tl.int64)
    if WRAP:
        index = tl.where(given < 0, given + dim_size, given)
    else:
        index = given
    in_range = (index >= 0) & (index < dim_size)
    bad = mask & ~in_range
    tl.store(err_ptr + tl.zeros_like(linear), tl.full([BLOCK], 1, tl.int64), mask=bad)
    tl.store(err_ptr + 1 + tl.zeros_like(linear), given, mask=bad)
    x_off = strided_offsets(linear, size1, size2, size3, size4, size5,
                            x_s0, x_s1, x_s2, x_s3, x_s4, x_s5) + index * stride_x_dim
    if x_ptr.dtype.element_ty.is_floating():
        value = tl.load(x_ptr + x_off, mask=mask & in_range, other=float("nan"))
    else:
        value = tl.load(x_ptr + x_off, mask=mask & in_range, other=0)
    tl.store(out_ptr + linear, value, mask=mask)


@triton.jit
def gather_bwd_kernel(
    gx_ptr, g_ptr, index_ptr,
    numel, n_picks, size1, size2, size3, size4, size5,
    gx_s0, gx_s1, gx_s2, gx_s3, gx_s4, gx_s5,
    g_s0, g_s1, g_s2, g_s3, g_s4, g_s5,
    ix_s0, ix_s1, ix_s2, ix_s3, ix_s4, ix_s5,
    co_s0, co_s1, co_s2, co_s3, co_s4, co_s5,
    stride_g_dim, stride_ix_dim,
    BLOCK: tl.constexpr,
):
    """gx[r] = sum_j g[r_j] [index[r_j] == r_dim] (see the module docstring) for BLOCK
    positions r of the region whose shape is index's with dim's size replaced by x's.

    gx_ptr: x's shape (a fresh zeroed tensor), strides gx_s* over the region's 6-D padded
        shape (sizes size1..size5, numel elements).
    g_ptr, index_ptr: index's shape, strides g_s* / ix_s* with 0 on dim, and their strides
        on dim stride_g_dim / stride_ix_dim. n_picks: index.size(dim).
    co_s*: 1 on dim and 0 elsewhere, so strided_offsets gives r's coordinate on dim.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    g_base = strided_offsets(linear, size1, size2, size3, size4, size5,
                             g_s0, g_s1, g_s2, g_s3, g_s4, g_s5)
    ix_base = strided_offsets(linear, size1, size2, size3, size4, size5,
                              ix_s0, ix_s1, ix_s2, ix_s3, ix_s4, ix_s5)
    coordinate = strided_offsets(linear, size1, size2, size3, size4, size5,
                                 co_s0, co_s1, co_s2, co_s3, co_s4, co_s5)
    acc = upcast(tl.zeros([BLOCK], dtype=gx_ptr.dtype.element_ty))
    for j in range(0, n_picks):
        index = tl.load(index_ptr + ix_base + j * stride_ix_dim, mask=mask, other=-1)
        g = upcast(tl.load(g_ptr + g_base + j * stride_g_dim, mask=mask, other=0.0))
        acc += tl.where(index == coordinate, g, 0.0)
    gx_off = strided_offsets(linear, size1, size2, size3, size4, size5,
                             gx_s0, gx_s1, gx_s2, gx_s3, gx_s4, gx_s5)
    tl.store(gx_ptr + gx_off, cast_to(acc, gx_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers


def _normalize_dim(dim: int, ndim: int) -> int:
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise OutOfRangeError(f"gather: Dimension out of range (expected to be in range of "
                              f"[{-rank}, {rank - 1}], but got {dim})")
    return dim % rank


def check_gather(x: torch.Tensor, dim: int, index: torch.Tensor, op: str = "gather") -> int:
    """torch.gather's metadata rules, before any launch; returns dim normalised. ``op``
    other than "gather" (index_select, indexing) also takes an int32 index."""
    check_tensor(op, "input", x, GATHER_DTYPES)
    allowed = (torch.int64,) if op == "gather" else (torch.int64, torch.int32)
    if index.dtype not in allowed:
        raise DTypeError(f"{op}(): Expected dtype {'int64' if op == 'gather' else 'int32/int64'} "
                         f"for index, got {index.dtype}")
    check_same_device(op, input=x, index=index)
    dim = _normalize_dim(dim, x.dim())
    if max(index.dim(), 1) != max(x.dim(), 1):
        raise ShapeError(f"gather: Index tensor must have the same number of dimensions as "
                         f"input tensor (index {tuple(index.shape)}, input {tuple(x.shape)})")
    for d in range(index.dim()):
        if d != dim and index.shape[d] > x.shape[d]:
            raise ShapeError(f"gather: Size does not match at dimension {d} expected index "
                             f"{list(index.shape)} to be no larger than self "
                             f"{list(x.shape)} apart from dimension {dim}")
    return dim


def _with_zero_at(strides, dim: int) -> list:
    return [0 if d == dim else s for d, s in enumerate(strides)]


def gather_fwd(x: torch.Tensor, dim: int, index: torch.Tensor, check_indices: bool = True,
               wrap_negative: bool = False, op: str = "gather") -> torch.Tensor:
    """torch.gather(x, dim, index): a new contiguous tensor of index's shape and x's dtype.
    Indices outside [0, x.size(dim)) ([-size, size) with ``wrap_negative``) raise torch's
    message when ``check_indices`` (one host sync); without it their elements are NaN (0
    for integers), never read out of bounds. index_select and indexing pass an index
    expanded (stride 0) to the result's shape."""
    dim = check_gather(x, dim, index, op)
    out = torch.empty(index.shape, dtype=x.dtype, device=x.device)
    numel = out.numel()
    if numel == 0:
        return out
    if x.dim() == 0:  # a 0-d gather reads x itself at index 0 (index: 0-d or 1-D)
        x, index, out_view = x.view(1), index.view(-1), out.view(-1)
    else:
        out_view = out
    errors = torch.zeros((2,), dtype=torch.int64, device=x.device)
    sizes, (x_strides, ix_strides) = merged_layout(
        tuple(index.shape), _with_zero_at(x.stride(), dim), index.stride())
    launch(gather_kernel, (cdiv(numel, BLOCK),), out_view, errors, x, index, numel,
           *sizes[1:], *x_strides, *ix_strides, x.shape[dim], x.stride(dim),
           WRAP=wrap_negative, BLOCK=BLOCK,
           flops=0, bytes_moved=numel * (2 * x.element_size() + index.element_size()))
    if check_indices:
        flag, bad = errors.tolist()  # one host sync
        if flag:
            raise OutOfRangeError(f"{op}: index {bad} is out of bounds for dimension {dim} "
                                  f"with size {x.shape[dim]}")
    return out


def gather_bwd(grad: torch.Tensor, index: torch.Tensor, dim: int,
               input_shape) -> torch.Tensor:
    """d(gather(x, dim, index)) / dx applied to grad (index's shape, any strides): a new
    contiguous tensor of x's shape (module docstring). Deterministic, no atomics."""
    check_tensor("gather backward", "grad", grad, FLOAT_DTYPES)
    check_tensor("gather backward", "index", index, (torch.int64,))
    check_same_device("gather backward", grad=grad, index=index)
    input_shape = tuple(input_shape)
    if tuple(grad.shape) != tuple(index.shape):
        raise ShapeError(f"gather backward: grad has shape {tuple(grad.shape)}, expected "
                         f"index's {tuple(index.shape)}")
    gx = torch.zeros(input_shape, dtype=grad.dtype, device=grad.device)
    if gx.numel() == 0 or index.numel() == 0:
        return gx
    if len(input_shape) == 0:
        gx_view, grad, index, dim = gx.view(1), grad.view(-1), index.view(-1), 0
    else:
        gx_view = gx
        if index.dim() == 0:  # a 1-D x gathered by a 0-d index
            grad, index = grad.view(1), index.view(1)
    region = list(index.shape)
    region[dim] = gx_view.shape[dim]
    numel = 1
    for size in region:
        numel *= size
    coordinate = [1 if d == dim else 0 for d in range(len(region))]
    sizes, (gx_strides, g_strides, ix_strides, co_strides) = merged_layout(
        tuple(region), gx_view.stride(), _with_zero_at(grad.stride(), dim),
        _with_zero_at(index.stride(), dim), coordinate)
    n_picks = index.shape[dim]
    launch(gather_bwd_kernel, (cdiv(numel, BLOCK),), gx_view, grad, index, numel, n_picks,
           *sizes[1:], *gx_strides, *g_strides, *ix_strides, *co_strides,
           grad.stride(dim), index.stride(dim), BLOCK=BLOCK,
           flops=numel * n_picks,
           bytes_moved=numel * (gx.element_size()
                                + n_picks * (grad.element_size() + index.element_size())))
    return gx


def _specs() -> list[CompileSpec]:
    six = range(MAX_DIMS)
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}

    def strides(prefix):
        return {f"{prefix}_s{i}": "i64" for i in six}

    specs = []
    for dt, index_t, wrap in (("fp32", "i64", False), ("bf16", "i32", True),
                              ("fp64", "i64", True), ("i64", "i64", False), ("i1", "i32", True),
                              ("fp16", "i64", True), ("u8", "i64", False)):
        sig = {"out_ptr": "*" + dt, "err_ptr": "*i64", "x_ptr": "*" + dt,
               "index_ptr": "*" + index_t, **sizes, **strides("x"), **strides("ix"),
               "dim_size": "i64", "stride_x_dim": "i64", "WRAP": "constexpr",
               "BLOCK": "constexpr"}
        specs.append(CompileSpec(gather_kernel, sig, {"WRAP": wrap, "BLOCK": BLOCK},
                                 f"{dt},index={index_t},wrap={wrap}"))
    for dt in ("fp32", "fp16", "bf16", "fp64"):
        sig = {"gx_ptr": "*" + dt, "g_ptr": "*" + dt, "index_ptr": "*i64", "numel": "i64",
               "n_picks": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)},
               **strides("gx"), **strides("g"), **strides("ix"), **strides("co"),
               "stride_g_dim": "i64", "stride_ix_dim": "i64", "BLOCK": "constexpr"}
        specs.append(CompileSpec(gather_bwd_kernel, sig, {"BLOCK": BLOCK}, dt))
    return specs


COMPILE_SPECS = _specs()
