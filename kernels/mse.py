"""Mean squared error and L1 loss: forward (fused reduction) and backward (one fused kernel).

The same three kernels serve both losses; the constexpr LOSS ("mse" or "l1") picks the
element term, (input - target)^2 or |input - target|, and its derivative.

Forward, ``reduction='mean'|'sum'``, one launch: each of at most MAX_PARTIALS programs
squares and sums a fixed, strided set of blocks of ``input - target`` in fp32 and writes
one partial; the program that arrives last (an atomic ticket, see _arrivals.py) adds the
partials in index order and scales them. No N-element temporary, and the result is
deterministic: the partials and their order depend only on the element count.
``reduction='none'`` writes the element-wise squares.

Inputs of any strides (views) are read through their strides, using the
6-D strided indexing of :mod:`copy` after merging dims that are contiguous in
every operand.

Backward, with d = input - target and g the incoming gradient:
  loss = s * sum_i d_i^2, s = 1/N for 'mean', 1 for 'sum'
  dloss/dinput_i  = 2 * s * d_i * g          (g is the 0-d grad_output)
  dloss/dtarget_i = -dloss/dinput_i
For 'none', loss_i = d_i^2, so dinput_i = 2 * d_i * g_i and dtarget_i = -dinput_i.
L1: loss = s * sum_i |d_i|, d|d|/dd = sgn(d) with sgn(0) = 0 (torch's subgradient; NaN
d gives 0 too, as torch's sgn), so dinput_i = s * sgn(d_i) * g and dtarget_i = -dinput_i.
Both gradients come out of one kernel that reads input and target once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._arrivals import arrival_counter
from ._checks import FLOAT_DTYPES, ShapeError, check_same_device, check_same_dtype, check_tensor
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .copy import MAX_DIMS, flat_layout, offsets_of
from .elementwise import scalar_like

OP = "mse_loss"
BLOCK = 2048  # elements per program: large blocks keep the partials (and interpreter programs) few
REDUCE_BLOCK = 1024
# Programs of the forward reduction: each loops over blocks pid, pid + P, pid + 2P, ... so
# the last program adds at most this many partials. P depends only on the element count,
# so the summation order, and the result, is fixed. On an H200 (2026-11-28, commit 5d13cc8,
# then two launches: partials, then a one-program finish), 2^26 elements, the launcher
# timed alone by perf/explore.py: 1024 programs read 4.0 TB/s (fp32) and 3.5 (bf16); the
# perf suite with 2048 gave 3.6 and 3.2. The fp32 time was ReLU's (same bytes) plus 4 us,
# about one kernel boundary, which is why the finish now happens inside the one launch.
MAX_PARTIALS = 1024
REDUCTIONS = ("mean", "sum", "none")
LOSSES = {"mse": "mse_loss", "l1": "l1_loss"}  # LOSS constexpr -> the op's name in errors


@triton.jit
def loss_term(diff, LOSS: tl.constexpr):
    """A jit helper: the element loss of diff = input - target: diff^2 ("mse") or |diff|."""
    if LOSS == "mse":
        out = diff * diff
    else:
        out = tl.abs(diff)
    return out


@triton.jit
def load_diff(
    inputs, targets, linear, mask,
    size1, size2, size3, size4, size5,
    in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
    tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5,
    ACC: tl.constexpr, FLAT: tl.constexpr,
):
    """A jit helper, not a kernel: inputs[i] - targets[i] in ACC for the row-major
    indices ``linear`` (0 where masked), each read through its own strides (6-D padded;
    FLAT: merged to one dim, see copy.offsets_of)."""
    in_off = offsets_of(linear, size1, size2, size3, size4, size5,
                        in_s0, in_s1, in_s2, in_s3, in_s4, in_s5, FLAT)
    tg_off = offsets_of(linear, size1, size2, size3, size4, size5,
                        tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5, FLAT)
    x = tl.load(inputs + in_off, mask=mask, other=0.0).to(ACC)
    t = tl.load(targets + tg_off, mask=mask, other=0.0).to(ACC)
    return x - t


@triton.jit
def sum_partials(partials, n_partials, BLOCK: tl.constexpr):
    """A jit helper: partial[0] + ... + partial[n - 1], block by block in a fixed order.
    Read through L2 (.cg): the partials were written by other programs of this launch."""
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=partials.dtype.element_ty)
    for start in range(0, n_partials, BLOCK):
        idx = start + offs
        acc += tl.load(partials + idx, mask=idx < n_partials, other=0.0, cache_modifier=".cg")
    return tl.sum(acc, axis=0)


@triton.jit
def mse_reduce_kernel(
    out_ptr, partial_ptr, counter_ptr, input_ptr, target_ptr,
    numel, size1, size2, size3, size4, size5,
    in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
    tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5,
    scale: tl.float64,
    BLOCK: tl.constexpr, REDUCE_BLOCK: tl.constexpr, ACC: tl.constexpr, FLAT: tl.constexpr,
    LOSS: tl.constexpr = "mse",
):
    """out[()] = scale * sum of (input - target)^2 (LOSS "mse") or |input - target|
    (LOSS "l1"), in one launch of P programs.

    Program pid adds the squares over blocks pid, pid + P, pid + 2P, ... of BLOCK elements
    into partial[pid], then takes a ticket from the arrival counter (see _arrivals.py); the
    program with the last ticket adds the P partials in index order, writes out and sets
    the counter back to 0. Which program finishes does not change the result.

    out_ptr: 0-d loss in the input dtype. partial_ptr: (P,) in ACC (fp32, or fp64 for fp64
    inputs). counter_ptr: int32, 0 at launch.
    input_ptr, target_ptr: the same logical shape, any strides, padded to 6-D.
    numel: element count; size1..size5: trailing sizes of the merged 6-D shape.
    scale: 1/N for 'mean' (NaN when N == 0, as torch), 1 for 'sum'; typed fp64 so that
    fp64 inputs see it exactly (a GPU launch types a Python float fp32), rounded to fp32
    for the others.
    FLAT: the layout merged to one dim (see copy.offsets_of).
    """
    pid = tl.program_id(0)
    n_programs = tl.num_programs(0)
    step = n_programs.to(tl.int64) * BLOCK
    acc = tl.zeros([BLOCK], dtype=ACC)
    for start in range(pid.to(tl.int64) * BLOCK, numel, step):
        linear = start + tl.arange(0, BLOCK)
        mask = linear < numel
        diff = load_diff(input_ptr, target_ptr, linear, mask, size1, size2, size3, size4,
                         size5, in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
                         tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5, ACC, FLAT)
        acc += loss_term(diff, LOSS)
    tl.store(partial_ptr + pid, tl.sum(acc, axis=0))
    # Every thread's part of the store is done before the release below publishes it.
    tl.debug_barrier()
    ticket = tl.atomic_add(counter_ptr, 1, sem="acq_rel", scope="gpu")
    if ticket == n_programs - 1:
        total = sum_partials(partial_ptr, n_programs, REDUCE_BLOCK)
        total = total * scalar_like(scale, total)
        tl.store(out_ptr, cast_to(total, out_ptr.dtype.element_ty))
        tl.store(counter_ptr, 0)


@triton.jit
def mse_none_kernel(
    out_ptr, input_ptr, target_ptr,
    numel, size1, size2, size3, size4, size5,
    in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
    tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5,
    BLOCK: tl.constexpr, ACC: tl.constexpr, FLAT: tl.constexpr, LOSS: tl.constexpr = "mse",
):
    """out[i] = (input[i] - target[i])^2, or |input[i] - target[i]| for LOSS "l1",
    element-wise ('none' reduction).

    out_ptr: contiguous, the inputs' shape and dtype. input_ptr, target_ptr:
    any strides, padded to 6-D as in mse_reduce_kernel.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    diff = load_diff(input_ptr, target_ptr, linear, mask, size1, size2, size3, size4, size5,
                     in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
                     tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5, ACC, FLAT)
    tl.store(out_ptr + linear, cast_to(loss_term(diff, LOSS), out_ptr.dtype.element_ty),
             mask=mask)


@triton.jit
def mse_bwd_kernel(
    grad_input_ptr, grad_target_ptr, input_ptr, target_ptr, grad_output_ptr,
    numel, size1, size2, size3, size4, size5,
    in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
    tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5,
    go_s0, go_s1, go_s2, go_s3, go_s4, go_s5,
    scale: tl.float64,
    BLOCK: tl.constexpr, ACC: tl.constexpr, PER_ELEMENT_GRAD: tl.constexpr,
    NEED_INPUT: tl.constexpr, NEED_TARGET: tl.constexpr, FLAT: tl.constexpr,
    LOSS: tl.constexpr = "mse",
):
    """grad_input = 2 * scale * (input - target) * g (LOSS "mse") or
    scale * sgn(input - target) * g (LOSS "l1", sgn(0) = 0); grad_target = -grad_input.

    grad_input_ptr, grad_target_ptr: contiguous, the inputs' shape and dtype
    (each written only when NEED_INPUT / NEED_TARGET).
    input_ptr, target_ptr: any strides, padded to 6-D.
    grad_output_ptr: 0-d (g read once on the device) unless PER_ELEMENT_GRAD,
    then the inputs' shape with strides go_s* ('none').
    scale: 1/N for 'mean', else 1 (fp64, as in mse_reduce_kernel).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    diff = load_diff(input_ptr, target_ptr, linear, mask, size1, size2, size3, size4, size5,
                     in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
                     tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5, ACC, FLAT)
    if PER_ELEMENT_GRAD:
        go_off = offsets_of(linear, size1, size2, size3, size4, size5,
                            go_s0, go_s1, go_s2, go_s3, go_s4, go_s5, FLAT)
        g = tl.load(grad_output_ptr + go_off, mask=mask, other=0.0).to(ACC)
    else:
        g = tl.load(grad_output_ptr).to(ACC)
    if LOSS == "mse":
        grad = 2.0 * scalar_like(scale, diff) * diff * g
    else:
        # a product with g (not a where on it), so a NaN/inf g stays NaN as in torch
        sgn = (diff > 0).to(ACC) - (diff < 0).to(ACC)
        grad = scalar_like(scale, diff) * sgn * g
    if NEED_INPUT:
        tl.store(grad_input_ptr + linear, cast_to(grad, grad_input_ptr.dtype.element_ty),
                 mask=mask)
    if NEED_TARGET:
        tl.store(grad_target_ptr + linear, cast_to(-grad, grad_target_ptr.dtype.element_ty),
                 mask=mask)


def _acc_dtype(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _check_inputs(input: torch.Tensor, target: torch.Tensor, reduction: str,
                  op: str = OP) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; "
                         f"expected one of {REDUCTIONS}")
    check_tensor(op, "input", input, FLOAT_DTYPES)
    check_tensor(op, "target", target, FLOAT_DTYPES)
    check_same_device(op, input=input, target=target)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} must match (no broadcasting)")
    check_same_dtype(op, input=input, target=target)


def mse_fwd(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
            loss: str = "mse") -> torch.Tensor:
    """MSE (or L1 with loss="l1") of input against target: a 0-d tensor for 'mean'/'sum',
    input's shape for 'none'.

    Output dtype is input's; arithmetic is fp32 (fp64 for fp64 inputs). Empty
    inputs give NaN for 'mean' and 0 for 'sum', as torch.
    """
    _check_loss(loss)
    _check_inputs(input, target, reduction, LOSSES[loss])
    numel = input.numel()
    acc = _acc_dtype(input.dtype)
    elem = input.element_size()
    if reduction == "none":
        out = torch.empty(input.shape, dtype=input.dtype, device=input.device)
        if numel:
            sizes, (in_strides, tg_strides), flat = flat_layout(input.shape, input.stride(),
                                                                target.stride())
            launch(mse_none_kernel, (cdiv(numel, BLOCK),), out, input, target, numel, *sizes[1:],
                   *in_strides, *tg_strides, BLOCK=BLOCK, ACC=acc, FLAT=flat, LOSS=loss,
                   flops=2 * numel, bytes_moved=3 * numel * elem)
        return out

    out = torch.empty((), dtype=input.dtype, device=input.device)
    # One program for an empty input too: it writes 0 * scale (NaN for 'mean', as torch).
    n_partials = max(min(cdiv(numel, BLOCK), MAX_PARTIALS), 1)
    partial_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    partials = torch.empty((n_partials,), dtype=partial_dtype, device=input.device)
    sizes, (in_strides, tg_strides), flat = flat_layout(input.shape, input.stride(),
                                                        target.stride())
    if reduction == "mean":
        scale = 1.0 / numel if numel else float("nan")  # torch: empty mean is NaN
    else:
        scale = 1.0
    launch(mse_reduce_kernel, (n_partials,), out, partials, arrival_counter(input.device),
           input, target, numel, *sizes[1:], *in_strides, *tg_strides, scale,
           BLOCK=BLOCK, REDUCE_BLOCK=REDUCE_BLOCK, ACC=acc, FLAT=flat, LOSS=loss,
           flops=3 * numel + n_partials,
           bytes_moved=2 * numel * elem + 2 * n_partials * partials.element_size() + elem)
    return out


def mse_bwd(
    grad_output: torch.Tensor,
    input: torch.Tensor,
    target: torch.Tensor,
    reduction: str = "mean",
    need_input: bool = True,
    need_target: bool = False,
    loss: str = "mse",
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(grad_input, grad_target) of mse_fwd (same ``loss``), each None unless asked for;
    one launch.

    grad_output: 0-d for 'mean'/'sum' (read on the device, no host sync), the
    input's shape (any strides) for 'none'. Gradients are contiguous, in input's dtype.
    """
    _check_loss(loss)
    op = LOSSES[loss]
    _check_inputs(input, target, reduction, op)
    check_tensor(op, "grad_output", grad_output, FLOAT_DTYPES)
    check_same_device(op, input=input, grad_output=grad_output)
    per_element = reduction == "none"
    want_shape = tuple(input.shape) if per_element else ()
    if tuple(grad_output.shape) != want_shape:
        raise ShapeError(f"{op} backward: grad_output has shape {tuple(grad_output.shape)}, "
                         f"expected {want_shape} for reduction={reduction!r} with input shape "
                         f"{tuple(input.shape)}")
    grad_input = torch.empty(input.shape, dtype=input.dtype, device=input.device) \
        if need_input else None
    grad_target = torch.empty(input.shape, dtype=input.dtype, device=input.device) \
        if need_target else None
    numel = input.numel()
    if numel == 0 or not (need_input or need_target):
        return grad_input, grad_target
    go_strides_in = grad_output.stride() if per_element else (0,) * input.dim()
    sizes, (in_strides, tg_strides, go_strides), flat = flat_layout(
        input.shape, input.stride(), target.stride(), go_strides_in)
    scale = 1.0 / numel if reduction == "mean" else 1.0
    elem = input.element_size()
    n_out = int(need_input) + int(need_target)
    go_bytes = numel * grad_output.element_size() if per_element else grad_output.element_size()
    # A never-written output slot still needs a pointer; pass input (the kernel
    # only stores through it when the matching NEED_* flag is set).
    launch(mse_bwd_kernel, (cdiv(numel, BLOCK),),
           grad_input if need_input else input, grad_target if need_target else input,
           input, target, grad_output, numel, *sizes[1:],
           *in_strides, *tg_strides, *go_strides, scale,
           BLOCK=BLOCK, ACC=_acc_dtype(input.dtype), PER_ELEMENT_GRAD=per_element,
           NEED_INPUT=need_input, NEED_TARGET=need_target, FLAT=flat, LOSS=loss,
           flops=(4 + n_out - 1) * numel,
           bytes_moved=(2 + n_out) * numel * elem + go_bytes)
    return grad_input, grad_target


def l1_fwd(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L1 loss (mean/sum/none of |input - target|): mse_fwd's kernels with LOSS "l1"."""
    return mse_fwd(input, target, reduction, loss="l1")


def l1_bwd(grad_output: torch.Tensor, input: torch.Tensor, target: torch.Tensor,
           reduction: str = "mean", need_input: bool = True, need_target: bool = False
           ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(grad_input, grad_target) of l1_fwd: scale * sgn(input - target) * grad_output."""
    return mse_bwd(grad_output, input, target, reduction, need_input, need_target, loss="l1")


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")


def _specs():
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    strides = {f"{p}_s{i}": "i64" for p in ("in", "tg") for i in range(MAX_DIMS)}
    go_strides = {f"go_s{i}": "i64" for i in range(MAX_DIMS)}
    specs = []
    for dt, flat, loss in (("fp32", True, "mse"), ("bf16", True, "mse"), ("fp16", False, "mse"),
                           ("fp64", False, "mse"), ("fp32", False, "l1"), ("bf16", True, "l1"),
                           ("fp16", True, "l1"), ("fp64", False, "l1")):
        acc = tl.float64 if dt == "fp64" else tl.float32
        acc_name = "fp64" if dt == "fp64" else "fp32"
        const = {"BLOCK": BLOCK, "ACC": acc, "FLAT": flat, "LOSS": loss}
        ptrs = {"input_ptr": "*" + dt, "target_ptr": "*" + dt}
        specs.append(CompileSpec(
            mse_reduce_kernel,
            {"out_ptr": "*" + dt, "partial_ptr": "*" + acc_name, "counter_ptr": "*i32", **ptrs,
             **sizes, **strides, "scale": "fp64", "BLOCK": "constexpr",
             "REDUCE_BLOCK": "constexpr", "ACC": "constexpr", "FLAT": "constexpr",
             "LOSS": "constexpr"},
            {**const, "REDUCE_BLOCK": REDUCE_BLOCK}, f"{loss},{dt}"))
        specs.append(CompileSpec(
            mse_none_kernel,
            {"out_ptr": "*" + dt, **ptrs, **sizes, **strides, "BLOCK": "constexpr",
             "ACC": "constexpr", "FLAT": "constexpr", "LOSS": "constexpr"}, const,
            f"{loss},{dt}"))
        for per_element in (False, True):
            flags = {"PER_ELEMENT_GRAD": per_element, "NEED_INPUT": True, "NEED_TARGET": True}
            specs.append(CompileSpec(
                mse_bwd_kernel,
                {"grad_input_ptr": "*" + dt, "grad_target_ptr": "*" + dt, **ptrs,
                 "grad_output_ptr": "*" + dt, **sizes, **strides, **go_strides, "scale": "fp64",
                 "BLOCK": "constexpr", "ACC": "constexpr", "PER_ELEMENT_GRAD": "constexpr",
                 "NEED_INPUT": "constexpr", "NEED_TARGET": "constexpr", "FLAT": "constexpr",
                 "LOSS": "constexpr"},
                {**const, **flags}, f"{loss},{dt},per_element={per_element}"))
    return specs


COMPILE_SPECS = _specs()
