"""Selection: ``where`` (and ``masked_fill`` on it) and ``clamp``, forward and backward.

``where_kernel`` picks ``a`` or ``b`` by a bool condition over the broadcast shape of the
three; either operand may be a host scalar instead of a tensor (``A_SCALAR``/``B_SCALAR``:
an fp64 argument, rounded into the output's dtype as torch casts a Python number).
``clamp_kernel`` bounds one strided tensor by scalar ``min``/``max``. Their backward
kernels mask the incoming gradient; they read it and the condition / saved input through
their strides, and write contiguous gradients.

Every operand reaches a kernel in the output's dtype (the caller promotes, with the copy
kernel), so the kernels never mix dtypes. Values are upcast after the load (fp32 for
fp16/bf16, as bf16 arithmetic is wrong under the interpreter; fp64 and integers stay as
they are) and rounded once with ``cast_to`` on the store.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    DTypeError,
    ShapeError,
    check_same_device,
    check_same_dtype,
    check_tensor,
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, flat_layout, offsets_of
from .elementwise import _check_out, scalar_in, upcast

# Under the interpreter each program costs ~0.5 ms whatever its size: use few, large ones.
SELECT_BLOCK = 4096 if interpreting() else 1024
WHERE_DTYPES = FLOAT_DTYPES + INTEGER_DTYPES + (torch.bool,)
CLAMP_DTYPES = FLOAT_DTYPES + INTEGER_DTYPES
# Integer scalars reach the kernels as fp64 arguments: exact up to 2**53.
EXACT_INT_LIMIT = 2**53


@triton.jit
def where_kernel(
    out_ptr, cond_ptr, a_ptr, b_ptr, a_value: tl.float64, b_value: tl.float64,
    numel, size1, size2, size3, size4, size5,
    c_s0, c_s1, c_s2, c_s3, c_s4, c_s5,
    a_s0, a_s1, a_s2, a_s3, a_s4, a_s5,
    b_s0, b_s1, b_s2, b_s3, b_s4, b_s5,
    out_s0, out_s1, out_s2, out_s3, out_s4, out_s5,
    A_SCALAR: tl.constexpr, B_SCALAR: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[i] = cond[i] ? a[i] : b[i] over a (merged, padded) 6-D broadcast shape.

    out_ptr: output of that shape, strides out_s* (a new contiguous tensor, or a view).
    cond_ptr: bool condition expanded to the shape (strides c_s*, 0 on broadcast dims).
    a_ptr, b_ptr: operands in out's dtype, expanded to the shape (strides a_s*, b_s*);
        unused (any pointer) where A_SCALAR / B_SCALAR.
    a_value, b_value: the host scalars of A_SCALAR / B_SCALAR (fp64: exact for fp64
        outputs and integers up to 2**53).
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    c_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       c_s0, c_s1, c_s2, c_s3, c_s4, c_s5, FLAT)
    out_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         out_s0, out_s1, out_s2, out_s3, out_s4, out_s5, FLAT)
    cond = tl.load(cond_ptr + c_off, mask=mask, other=0) != 0
    if A_SCALAR:
        a = scalar_in(a_value, out_ptr.dtype.element_ty, BLOCK)
    else:
        a_off = offsets_of(linear, size1, size2, size3, size4, size5,
                           a_s0, a_s1, a_s2, a_s3, a_s4, a_s5, FLAT)
        a = upcast(tl.load(a_ptr + a_off, mask=mask, other=0))
    if B_SCALAR:
        b = scalar_in(b_value, out_ptr.dtype.element_ty, BLOCK)
    else:
        b_off = offsets_of(linear, size1, size2, size3, size4, size5,
                           b_s0, b_s1, b_s2, b_s3, b_s4, b_s5, FLAT)
        b = upcast(tl.load(b_ptr + b_off, mask=mask, other=0))
    result = tl.where(cond, a, b)
    tl.store(out_ptr + out_off, cast_to(result, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def where_bwd_kernel(
    grad_a_ptr, grad_b_ptr, grad_ptr, cond_ptr,
    numel, size1, size2, size3, size4, size5,
    g_s0, g_s1, g_s2, g_s3, g_s4, g_s5,
    c_s0, c_s1, c_s2, c_s3, c_s4, c_s5,
    NEED_A: tl.constexpr, NEED_B: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Both operand gradients of out = where(cond, a, b), over the broadcast shape.

    grad_a_ptr, grad_b_ptr: contiguous outputs of the broadcast shape, written only when
        NEED_A / NEED_B (the caller sums each back to its operand's shape).
    grad_ptr: upstream gradient of the broadcast shape, strides g_s*.
    cond_ptr: the bool condition expanded to the broadcast shape, strides c_s*.
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    """
    # out = cond * a + (1 - cond) * b, cond constant:
    #   d out/d a = [cond], d out/d b = [not cond]
    #   grad_a = cond ? grad : 0,  grad_b = cond ? 0 : grad
    # Selected with tl.where rather than multiplied by the mask, so an inf or NaN upstream
    # gradient in the branch not taken gives 0, as torch's where backward does.
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    g_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       g_s0, g_s1, g_s2, g_s3, g_s4, g_s5, FLAT)
    c_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       c_s0, c_s1, c_s2, c_s3, c_s4, c_s5, FLAT)
    grad = upcast(tl.load(grad_ptr + g_off, mask=mask, other=0.0))
    cond = tl.load(cond_ptr + c_off, mask=mask, other=0) != 0
    if NEED_A:
        grad_a = tl.where(cond, grad, 0.0)
        tl.store(grad_a_ptr + linear, cast_to(grad_a, grad_a_ptr.dtype.element_ty), mask=mask)
    if NEED_B:
        grad_b = tl.where(cond, 0.0, grad)
        tl.store(grad_b_ptr + linear, cast_to(grad_b, grad_b_ptr.dtype.element_ty), mask=mask)


@triton.jit
def clamp_kernel(
    out_ptr, x_ptr, lo: tl.float64, hi: tl.float64,
    numel, size1, size2, size3, size4, size5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    out_s0, out_s1, out_s2, out_s3, out_s4, out_s5,
    HAS_MIN: tl.constexpr, HAS_MAX: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[i] = min(max(x[i], lo), hi) over a (merged, padded) 6-D shape, as torch.clamp.

    out_ptr, x_ptr: one shape and dtype, any strides (x_s*, out_s*); out may alias x
        exactly (clamp_).
    lo, hi: the bounds (fp64), used where HAS_MIN / HAS_MAX; rounded into x's dtype first,
        as torch converts them (integers come wrapped into range by the caller).
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).

    NaN as torch: a NaN x stays NaN (every comparison with it is False), and a NaN bound
    makes every element NaN (tl.maximum/tl.minimum would drop it). lo > hi gives hi.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       x_s0, x_s1, x_s2, x_s3, x_s4, x_s5, FLAT)
    out_off = offsets_of(linear, size1, size2, size3, size4, size5,
                         out_s0, out_s1, out_s2, out_s3, out_s4, out_s5, FLAT)
    result = upcast(tl.load(x_ptr + x_off, mask=mask, other=0))
    if HAS_MIN:
        low = scalar_in(lo, x_ptr.dtype.element_ty, BLOCK)
        result = tl.where((result < low) | (low != low), low, result)
    if HAS_MAX:
        high = scalar_in(hi, x_ptr.dtype.element_ty, BLOCK)
        result = tl.where((result > high) | (high != high), high, result)
    tl.store(out_ptr + out_off, cast_to(result, out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def clamp_bwd_kernel(
    grad_x_ptr, grad_ptr, x_ptr, lo: tl.float64, hi: tl.float64,
    numel, size1, size2, size3, size4, size5,
    g_s0, g_s1, g_s2, g_s3, g_s4, g_s5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    HAS_MIN: tl.constexpr, HAS_MAX: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """grad_x of out = clamp(x, lo, hi).

    grad_x_ptr: contiguous output of x's shape and dtype.
    grad_ptr: upstream gradient of x's shape, strides g_s*.
    x_ptr: the saved forward input, strides x_s*.
    lo, hi, HAS_MIN, HAS_MAX: the forward's bounds.
    numel: element count; size1..size5: trailing sizes (dim 0's is implied).
    """
    # out = x where lo <= x <= hi, else the constant bound: d out/d x = [lo <= x <= hi].
    # torch counts both boundaries as inside (x == lo passes its gradient) and compares
    # with the bounds rounded to x's dtype; a NaN x or a NaN bound compares False: 0.
    #   grad_x = (x >= lo and x <= hi) ? grad : 0   (tl.where: a NaN grad outside is 0)
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    g_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       g_s0, g_s1, g_s2, g_s3, g_s4, g_s5, FLAT)
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       x_s0, x_s1, x_s2, x_s3, x_s4, x_s5, FLAT)
    grad = upcast(tl.load(grad_ptr + g_off, mask=mask, other=0.0))
    x = upcast(tl.load(x_ptr + x_off, mask=mask, other=0.0))
    inside = x == x
    if HAS_MIN:
        inside = inside & (x >= scalar_in(lo, x_ptr.dtype.element_ty, BLOCK))
    if HAS_MAX:
        inside = inside & (x <= scalar_in(hi, x_ptr.dtype.element_ty, BLOCK))
    grad_x = tl.where(inside, grad, 0.0)
    tl.store(grad_x_ptr + linear, cast_to(grad_x, grad_x_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers


def _check_scalar(op: str, name: str, value: float, dtype: torch.dtype) -> float:
    """A host scalar for a kernel computing in ``dtype``: a float (fp64 argument); for an
    integer or bool dtype, an integer the fp64 argument holds exactly."""
    value = float(value)
    if dtype.is_floating_point:
        return value
    if not (value.is_integer() and abs(value) <= EXACT_INT_LIMIT):
        raise DTypeError(f"{op}: {name} for a {dtype_name(dtype)} result must be an integer "
                         f"of magnitude up to 2^53 (an fp64 kernel argument); got {value!r}")
    info_min = 0 if dtype == torch.bool else torch.iinfo(dtype).min
    info_max = 1 if dtype == torch.bool else torch.iinfo(dtype).max
    if not info_min <= value <= info_max:
        raise DTypeError(f"{op}: {name} {value:g} is out of the range of {dtype_name(dtype)} "
                         f"[{info_min}, {info_max}]; the caller wraps it first")
    return value


def _broadcast_shape(op: str, named: dict) -> tuple:
    shapes = {name: tuple(t.shape) for name, t in named.items()}
    try:
        return tuple(torch.broadcast_shapes(*shapes.values()))
    except RuntimeError:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ShapeError(f"{op}: the shapes of {listed} cannot be broadcast together "
                         "(sizes must match where neither is 1)") from None


def where(
    cond: torch.Tensor,
    a: torch.Tensor | float,
    b: torch.Tensor | float,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """cond ? a : b elementwise, broadcasting cond, a and b: a new contiguous tensor.

    cond: a bool tensor. a, b: tensors of one dtype (the caller promotes), or Python
    numbers, which are rounded into the result's dtype. dtype: the result's dtype; needed
    only when both are numbers, else the tensors' (and must match it)."""
    check_tensor("where", "condition", cond, (torch.bool,))
    tensors = {name: t for name, t in (("input", a), ("other", b)) if isinstance(t, torch.Tensor)}
    for name, t in tensors.items():
        check_tensor("where", name, t, WHERE_DTYPES)
    check_same_device("where", condition=cond, **tensors)
    if len(tensors) == 2:
        check_same_dtype("where", **tensors)
    if tensors:
        tensor_dtype = next(iter(tensors.values())).dtype
        if dtype is not None and dtype != tensor_dtype:
            raise DTypeError(f"where: dtype {dtype_name(dtype)} given for operands of dtype "
                             f"{dtype_name(tensor_dtype)}; the caller promotes them first")
        dtype = tensor_dtype
    elif dtype is None or dtype not in WHERE_DTYPES:
        raise DTypeError(f"where: with two scalar operands a result dtype in "
                         f"{[dtype_name(d) for d in WHERE_DTYPES]} is needed; got {dtype}")
    a_value = 0.0 if "input" in tensors else _check_scalar("where", "input", a, dtype)
    b_value = 0.0 if "other" in tensors else _check_scalar("where", "other", b, dtype)
    shape = _broadcast_shape("where", {"condition": cond, **tensors})
    out = torch.empty(shape, dtype=dtype, device=cond.device)
    numel = out.numel()
    if numel == 0:
        return out
    cond_full = cond.expand(shape)  # stride-0 views: metadata only
    a_full = a.expand(shape) if "input" in tensors else out  # out: an unread placeholder
    b_full = b.expand(shape) if "other" in tensors else out
    sizes, (c_st, a_st, b_st, out_st), flat = flat_layout(
        shape, cond_full.stride(), a_full.stride(), b_full.stride(), out.stride())
    read = cond.numel() + sum(t.numel() * t.element_size() for t in tensors.values())
    launch(
        where_kernel, (cdiv(numel, SELECT_BLOCK),), out, cond_full, a_full, b_full,
        a_value, b_value, numel, *sizes[1:], *c_st, *a_st, *b_st, *out_st,
        A_SCALAR="input" not in tensors, B_SCALAR="other" not in tensors, FLAT=flat,
        BLOCK=SELECT_BLOCK, bytes_moved=read + numel * out.element_size(),
    )
    return out


def where_bwd(grad: torch.Tensor, cond: torch.Tensor, need_a: bool = True,
              need_b: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(cond ? grad : 0, cond ? 0 : grad) over grad's (the broadcast) shape, in one launch;
    None where not needed. The caller sums each to its operand's shape."""
    check_tensor("where_backward", "grad", grad, FLOAT_DTYPES)
    check_tensor("where_backward", "condition", cond, (torch.bool,))
    check_same_device("where_backward", grad=grad, condition=cond)
    try:
        cond_full = cond.expand(grad.shape)
    except RuntimeError:
        raise ShapeError(f"where_backward: condition of shape {tuple(cond.shape)} does not "
                         f"broadcast to the gradient's shape {tuple(grad.shape)}") from None
    grad_a = torch.empty(grad.shape, dtype=grad.dtype, device=grad.device) if need_a else None
    grad_b = torch.empty(grad.shape, dtype=grad.dtype, device=grad.device) if need_b else None
    numel = grad.numel()
    if numel == 0 or not (need_a or need_b):
        return grad_a, grad_b
    sizes, (g_st, c_st), flat = flat_layout(grad.shape, grad.stride(), cond_full.stride())
    n_out = int(need_a) + int(need_b)
    launch(
        where_bwd_kernel, (cdiv(numel, SELECT_BLOCK),),
        grad_a if need_a else grad_b, grad_b if need_b else grad_a, grad, cond_full,
        numel, *sizes[1:], *g_st, *c_st, NEED_A=need_a, NEED_B=need_b, FLAT=flat,
        BLOCK=SELECT_BLOCK,
        bytes_moved=cond.numel() + numel * grad.element_size() * (1 + n_out),
    )
    return grad_a, grad_b


def _clamp_bounds(op: str, x: torch.Tensor, lo: float | None, hi: float | None) -> tuple:
    if lo is None and hi is None:
        raise ValueError(f"{op}: At least one of 'min' or 'max' must not be None")
    lo_value = 0.0 if lo is None else _check_scalar(op, "min", lo, x.dtype)
    hi_value = 0.0 if hi is None else _check_scalar(op, "max", hi, x.dtype)
    return lo_value, hi_value


def clamp(x: torch.Tensor, lo: float | None, hi: float | None,
          out: torch.Tensor | None = None) -> torch.Tensor:
    """min(max(x, lo), hi) elementwise (a None bound is not applied), as torch.clamp; into
    a new contiguous tensor, or into ``out`` (x itself for clamp_, or a view of x's shape).
    Integer x takes integer bounds within its dtype's range (exact)."""
    check_tensor("clamp", "x", x, CLAMP_DTYPES)
    lo_value, hi_value = _clamp_bounds("clamp", x, lo, hi)
    if out is None:
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    else:
        _check_out("clamp", out, x, dtypes=(x.dtype,))
    numel = out.numel()
    if numel == 0:
        return out
    sizes, (x_st, out_st), flat = flat_layout(out.shape, x.stride(), out.stride())
    launch(
        clamp_kernel, (cdiv(numel, SELECT_BLOCK),), out, x, lo_value, hi_value, numel,
        *sizes[1:], *x_st, *out_st, HAS_MIN=lo is not None, HAS_MAX=hi is not None,
        FLAT=flat, BLOCK=SELECT_BLOCK,
        flops=numel * ((lo is not None) + (hi is not None)),
        bytes_moved=numel * (x.element_size() + out.element_size()),
    )
    return out


def clamp_bwd(grad: torch.Tensor, x: torch.Tensor, lo: float | None,
              hi: float | None) -> torch.Tensor:
    """grad where lo <= x <= hi (bounds rounded to x's dtype, both inclusive), else 0: a new
    contiguous tensor of x's shape."""
    check_tensor("clamp_backward", "grad", grad, FLOAT_DTYPES)
    check_tensor("clamp_backward", "x", x, FLOAT_DTYPES)
    check_same_device("clamp_backward", grad=grad, x=x)
    check_same_dtype("clamp_backward", grad=grad, x=x)
    if tuple(grad.shape) != tuple(x.shape):
        raise ShapeError(f"clamp_backward: grad shape {tuple(grad.shape)} != x shape "
                         f"{tuple(x.shape)}")
    lo_value, hi_value = _clamp_bounds("clamp_backward", x, lo, hi)
    grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    numel = grad_x.numel()
    if numel == 0:
        return grad_x
    sizes, (g_st, x_st), flat = flat_layout(x.shape, grad.stride(), x.stride())
    launch(
        clamp_bwd_kernel, (cdiv(numel, SELECT_BLOCK),), grad_x, grad, x, lo_value, hi_value,
        numel, *sizes[1:], *g_st, *x_st, HAS_MIN=lo is not None, HAS_MAX=hi is not None,
        FLAT=flat, BLOCK=SELECT_BLOCK, flops=numel * 2,
        bytes_moved=numel * 3 * x.element_size(),
    )
    return grad_x


def _specs() -> list[CompileSpec]:
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}

    def strides(*prefixes: str) -> dict:
        return {f"{p}_s{i}": "i64" for p in prefixes for i in range(MAX_DIMS)}

    specs = []
    for dtype, a_scalar, b_scalar, flat in [
        ("fp32", False, False, True), ("bf16", False, True, False), ("fp16", True, False, True),
        ("fp64", False, False, False), ("i64", True, True, True), ("i1", False, False, False),
        ("u8", False, True, True), ("i32", False, False, True),
    ]:
        sig = {"out_ptr": "*" + dtype, "cond_ptr": "*i1", "a_ptr": "*" + dtype,
               "b_ptr": "*" + dtype, "a_value": "fp64", "b_value": "fp64", **sizes,
               **strides("c", "a", "b", "out"), "A_SCALAR": "constexpr",
               "B_SCALAR": "constexpr", "FLAT": "constexpr", "BLOCK": "constexpr"}
        constexprs = {"A_SCALAR": a_scalar, "B_SCALAR": b_scalar, "FLAT": flat,
                      "BLOCK": SELECT_BLOCK}
        specs.append(CompileSpec(where_kernel, sig, constexprs,
                                 f"where-{dtype}-{int(a_scalar)}{int(b_scalar)}"))
    for dtype, need_a, need_b, flat in [("fp32", True, True, True), ("bf16", True, False, False),
                                        ("fp16", False, True, True), ("fp64", True, True, False)]:
        sig = {"grad_a_ptr": "*" + dtype, "grad_b_ptr": "*" + dtype, "grad_ptr": "*" + dtype,
               "cond_ptr": "*i1", **sizes, **strides("g", "c"), "NEED_A": "constexpr",
               "NEED_B": "constexpr", "FLAT": "constexpr", "BLOCK": "constexpr"}
        constexprs = {"NEED_A": need_a, "NEED_B": need_b, "FLAT": flat, "BLOCK": SELECT_BLOCK}
        specs.append(CompileSpec(where_bwd_kernel, sig, constexprs,
                                 f"where_bwd-{dtype}-{int(need_a)}{int(need_b)}"))
    for dtype, has_min, has_max, flat in [
        ("fp32", True, True, True), ("bf16", True, False, False), ("fp16", False, True, True),
        ("fp64", True, True, False), ("i64", True, True, True), ("u8", True, False, False),
        ("i32", False, True, True),
    ]:
        sig = {"out_ptr": "*" + dtype, "x_ptr": "*" + dtype, "lo": "fp64", "hi": "fp64",
               **sizes, **strides("x", "out"), "HAS_MIN": "constexpr", "HAS_MAX": "constexpr",
               "FLAT": "constexpr", "BLOCK": "constexpr"}
        constexprs = {"HAS_MIN": has_min, "HAS_MAX": has_max, "FLAT": flat,
                      "BLOCK": SELECT_BLOCK}
        specs.append(CompileSpec(clamp_kernel, sig, constexprs,
                                 f"clamp-{dtype}-{int(has_min)}{int(has_max)}"))
    for dtype, has_min, has_max, flat in [("fp32", True, True, True), ("bf16", True, False, False),
                                          ("fp16", False, True, True),
                                          ("fp64", True, True, False)]:
        sig = {"grad_x_ptr": "*" + dtype, "grad_ptr": "*" + dtype, "x_ptr": "*" + dtype,
               "lo": "fp64", "hi": "fp64", **sizes, **strides("g", "x"),
               "HAS_MIN": "constexpr", "HAS_MAX": "constexpr", "FLAT": "constexpr",
               "BLOCK": "constexpr"}
        constexprs = {"HAS_MIN": has_min, "HAS_MAX": has_max, "FLAT": flat,
                      "BLOCK": SELECT_BLOCK}
        specs.append(CompileSpec(clamp_bwd_kernel, sig, constexprs,
                                 f"clamp_bwd-{dtype}-{int(has_min)}{int(has_max)}"))
    return specs


COMPILE_SPECS = _specs()
