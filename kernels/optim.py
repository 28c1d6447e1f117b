"""Fused multi-tensor optimizer steps: SGD (momentum, dampening, Nesterov, weight decay,
maximize) and Adam / AdamW, one launch per parameter group and dtype.

Like the multi-tensor norm, each launch reads a device-side int64 pointer table, built on
the host and copied to the device once (cached while the pointers stay the same)::

    table = [param (T) | grad (T) | state0 (T) | state1 (T) | steps (T) | numel (T)
             | chunk_tensor (C) | chunk_start (C)]

One program owns one chunk of ``CHUNK`` elements of one parameter. Everything that changes
between steps is read on the device, so a captured CUDA graph replays correctly:

- the learning rate: a 1-element fp32 tensor per group (``lr_ptr``; fp64 when the group
  holds fp64 parameters, so that their rate is exact), rewritten by a host->device copy
  when a scheduler changes it;
- the step count: each parameter's int32 ``steps`` tensor has one slot per chunk. The program
  that owns a chunk reads its own slot, uses t = slot + 1 and writes it back; no other program
  touches it, so the count is per-parameter like torch's, deterministic and needs no atomics.

Parameters, gradients and state are contiguous and share the parameter's dtype (state in
the parameter dtype, math in fp32; fp64 parameters are computed in fp64, for gradcheck
users who train in fp64). The math follows torch.optim's single-tensor path, operation
by operation (see each kernel's docstring). The other hyper-parameters are kernel
arguments (typed fp64, so that fp64 launches see them exactly; rounded to fp32 for the
others, as a GPU launch of an fp32 argument would): under graph capture they are frozen
at their captured values.
"""

from __future__ import annotations

import struct

import torch
import triton
import triton.language as tl

from ._checks import DeviceError, DTypeError, LayoutError, ShapeError, check_tensor
from ._common import cast_to
from ._tables import multi_tensor_table
from ._launch import CompileSpec, cdiv, interpreting, launch
from ._checks import UnsupportedError
from .elementwise import scalar_like, sqrt_rn

OPTIM_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
TL_DTYPE = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16,
            torch.float64: tl.float64}
LR_DTYPES = (torch.float32, torch.float64)
# Interpreter: one block per program. GPU: 16K-element chunks walked in 1K blocks.
CHUNK = 4096 if interpreting() else 16384
BLOCK = 4096 if interpreting() else 1024


def chunk_count(numel: int) -> int:
    """Chunks (and so step slots) of a parameter with ``numel`` elements."""
    return cdiv(numel, CHUNK)


def new_step_slots(param: torch.Tensor) -> torch.Tensor:
    """Zeroed int32 step counters for ``param``: one slot per chunk."""
    return torch.zeros((chunk_count(param.numel()),), dtype=torch.int32, device=param.device)


@triton.jit
def _chunk_of(table, n_tensors, n_chunks):
    """(tensor index, first element) of this program's chunk of the int64 ``table``."""
    chunk = tl.program_id(0)
    tensor = tl.load(table + 6 * n_tensors + chunk)
    start = tl.load(table + 6 * n_tensors + n_chunks + chunk)
    return tensor, start


@triton.jit
def _pow_int(base, exponent):
    """base ** exponent for an fp64 base and a non-negative int32 exponent, by squaring
    (within a few fp64 ulps of Python's ``beta ** step``)."""
    result = base * 0.0 + 1.0
    while exponent > 0:
        result = tl.where((exponent & 1) == 1, result * base, result)
        base = base * base
        exponent = exponent >> 1
    return result


@triton.jit
def sgd_kernel(
    table_ptr, lr_ptr,
    momentum: tl.float64, one_minus_dampening: tl.float64, weight_decay: tl.float64,
    n_tensors, n_chunks,
    DTYPE: tl.constexpr, HAS_MOMENTUM: tl.constexpr, NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr, HAS_WD: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """One SGD step on chunk program_id(0), as torch's _single_tensor_sgd:
    g = -grad if maximize; g = g + wd * p; buf = g on the first step, else
    buf = buf * momentum + (1 - dampening) * g; g = g + momentum * buf (Nesterov) or buf;
    p = p - lr * g.

    table_ptr: int64 table (param, grad, momentum_buffer, -, steps, numel, chunks).
    lr_ptr: fp32 [1] (fp64 [1], needed for fp64, is rounded to fp32 for the others).
    steps (in the table): int32 [chunks of the param], only with momentum.
    momentum, one_minus_dampening, weight_decay: rounded to the compute dtype.
    DTYPE: the element type of params, grads and buffers of this launch. Arithmetic is
    fp32, fp64 for fp64 (the compute dtype).
    """
    ACC: tl.constexpr = tl.float64 if DTYPE == tl.float64 else tl.float32
    tensor, start = _chunk_of(table_ptr, n_tensors, n_chunks)
    param_ptr = tl.load(table_ptr + tensor).to(tl.pointer_type(DTYPE))
    grad_ptr = tl.load(table_ptr + n_tensors + tensor).to(tl.pointer_type(DTYPE))
    numel = tl.load(table_ptr + 5 * n_tensors + tensor)
    lr = tl.load(lr_ptr).to(ACC)
    momentum = scalar_like(momentum, lr)
    one_minus_dampening = scalar_like(one_minus_dampening, lr)
    weight_decay = scalar_like(weight_decay, lr)
    first = False
    if HAS_MOMENTUM:
        buf_ptr = tl.load(table_ptr + 2 * n_tensors + tensor).to(tl.pointer_type(DTYPE))
        slot_ptr = tl.load(table_ptr + 4 * n_tensors + tensor).to(tl.pointer_type(tl.int32))
        slot_ptr += start // CHUNK
        step = tl.load(slot_ptr)
        first = step == 0
    for off in range(0, CHUNK, BLOCK):
        idx = start + off + tl.arange(0, BLOCK)
        mask = idx < numel
        p = tl.load(param_ptr + idx, mask=mask, other=0.0).to(ACC)
        g = tl.load(grad_ptr + idx, mask=mask, other=0.0).to(ACC)
        if MAXIMIZE:
            g = -g
        if HAS_WD:  # torch skips the add when weight_decay == 0 (an inf p stays harmless)
            g = g + weight_decay * p
        if HAS_MOMENTUM:
            buf = tl.load(buf_ptr + idx, mask=mask, other=0.0).to(ACC)
            buf = tl.where(first, g, buf * momentum + one_minus_dampening * g)
            buf_out = cast_to(buf, DTYPE)
            tl.store(buf_ptr + idx, buf_out, mask=mask)
            buf = buf_out.to(ACC)  # torch's next use reads the stored buffer
            if NESTEROV:
                g = g + momentum * buf
            else:
                g = buf
        p = p - lr * g
        tl.store(param_ptr + idx, cast_to(p, DTYPE), mask=mask)
    if HAS_MOMENTUM:
        tl.store(slot_ptr, step + 1)


@triton.jit
def adam_kernel(
    table_ptr, lr_ptr,
    beta1_hi, beta1_lo: tl.float64, beta2_hi, beta2_lo: tl.float64, eps: tl.float64,
    weight_decay: tl.float64,
    n_tensors, n_chunks,
    DTYPE: tl.constexpr, DECOUPLED: tl.constexpr, MAXIMIZE: tl.constexpr,
    HAS_WD: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """One Adam (DECOUPLED=False) or AdamW step on chunk program_id(0), as torch's
    _single_tensor_adam: t = step + 1; g = -grad if maximize;
    AdamW: p = p * (1 - lr * wd), Adam: g = g + wd * p;
    m = lerp(m, g, 1 - beta1); v = v * beta2 + (1 - beta2) * g * g;
    bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (fp64, as torch's Python floats);
    step_size = lr / bc1; denom = sqrt(v) / sqrt(bc2) + eps; p = p - step_size * m / denom.

    table_ptr: int64 table (param, grad, exp_avg, exp_avg_sq, steps, numel, chunks).
    lr_ptr: fp32 [1] (fp64 [1], needed for fp64, is rounded to fp32 for the others).
    beta*_hi + beta*_lo: the fp64 betas, hi their fp32 rounding (an fp32 argument) and lo
    the rest (exact in fp64; rounded to fp32 for non-fp64 launches, as when lo was an fp32
    argument). eps, weight_decay: rounded to the compute dtype.
    Arithmetic is fp32 (the per-step scalars fp64, as torch's Python floats); fp64
    parameters are computed in fp64 throughout.
    """
    ACC: tl.constexpr = tl.float64 if DTYPE == tl.float64 else tl.float32
    tensor, start = _chunk_of(table_ptr, n_tensors, n_chunks)
    param_ptr = tl.load(table_ptr + tensor).to(tl.pointer_type(DTYPE))
    grad_ptr = tl.load(table_ptr + n_tensors + tensor).to(tl.pointer_type(DTYPE))
    m_ptr = tl.load(table_ptr + 2 * n_tensors + tensor).to(tl.pointer_type(DTYPE))
    v_ptr = tl.load(table_ptr + 3 * n_tensors + tensor).to(tl.pointer_type(DTYPE))
    slot_ptr = tl.load(table_ptr + 4 * n_tensors + tensor).to(tl.pointer_type(tl.int32))
    slot_ptr += start // CHUNK
    numel = tl.load(table_ptr + 5 * n_tensors + tensor)
    step = tl.load(slot_ptr) + 1
    # fp32 launches round an fp64 rate (an fp32 one is unchanged) and each scalar to fp32
    # first, as they always have; fp64 launches keep every digit.
    lr = tl.load(lr_ptr).to(ACC)
    lo1 = scalar_like(beta1_lo, lr)
    lo2 = scalar_like(beta2_lo, lr)
    wd = scalar_like(weight_decay, lr)
    eps = scalar_like(eps, lr)

    # Per-step scalars in fp64, then rounded to fp32 where torch hands a Python float
    # to an fp32 tensor op.
    beta1 = tl.cast(beta1_hi, tl.float64) + tl.cast(lo1, tl.float64)
    beta2 = tl.cast(beta2_hi, tl.float64) + tl.cast(lo2, tl.float64)
    bias_correction1 = 1.0 - _pow_int(beta1, step)
    bias_correction2 = 1.0 - _pow_int(beta2, step)
    step_size = (lr.to(tl.float64) / bias_correction1).to(ACC)
    bc2_sqrt = tl.sqrt(bias_correction2).to(ACC)
    weight = (1.0 - beta1).to(ACC)  # lerp weight
    beta2_f = beta2.to(ACC)
    one_minus_beta2 = (1.0 - beta2).to(ACC)
    decay = (1.0 - lr.to(tl.float64) * tl.cast(wd, tl.float64)).to(ACC)

    for off in range(0, CHUNK, BLOCK):
        idx = start + off + tl.arange(0, BLOCK)
        mask = idx < numel
        p = tl.load(param_ptr + idx, mask=mask, other=0.0).to(ACC)
        g = tl.load(grad_ptr + idx, mask=mask, other=0.0).to(ACC)
        m = tl.load(m_ptr + idx, mask=mask, other=0.0).to(ACC)
        v = tl.load(v_ptr + idx, mask=mask, other=0.0).to(ACC)
        if MAXIMIZE:
            g = -g
        if HAS_WD:
            if DECOUPLED:
                p = p * decay
            else:
                g = g + wd * p
        # torch.lerp: start + w * (end - start) for w < 0.5, else end - (end - start) * (1 - w)
        diff = g - m
        m = tl.where(weight < 0.5, m + weight * diff, g - diff * (1.0 - weight))
        v = v * beta2_f + one_minus_beta2 * g * g
        m = cast_to(m, DTYPE).to(ACC)  # the stored state is what torch reads next
        v = cast_to(v, DTYPE).to(ACC)
        denom = sqrt_rn(v) / bc2_sqrt + eps
        p = p + (-step_size) * m / denom
        tl.store(m_ptr + idx, cast_to(m, DTYPE), mask=mask)
        tl.store(v_ptr + idx, cast_to(v, DTYPE), mask=mask)
        tl.store(param_ptr + idx, cast_to(p, DTYPE), mask=mask)
    tl.store(slot_ptr, step)


# ----------------------------------------------------------------------------- launchers

def _table(columns: list[list[int]], numels: list[int], device) -> tuple:
    """(table, n_tensors, n_chunks); columns are the 5 pointer columns (0 = unused),
    followed by numels, chunk tensor and chunk start."""
    return multi_tensor_table(columns, numels, CHUNK, device)


def _check_lists(op: str, lr: torch.Tensor, params, **lists) -> None:
    check_tensor(op, "lr", lr, LR_DTYPES)
    if lr.numel() != 1:
        raise ShapeError(f"{op}: lr must be a 1-element fp32 (or fp64) tensor, got shape "
                         f"{tuple(lr.shape)}")
    if lr.dtype != torch.float64 and any(
            isinstance(p, torch.Tensor) and p.dtype == torch.float64 for p in params):
        raise DTypeError(f"{op}: float64 params need a float64 lr tensor (an fp32 rate is not "
                         f"exact in fp64), got lr of dtype {str(lr.dtype).replace('torch.', '')}")
    for name, values in lists.items():
        if len(values) != len(params):
            raise ShapeError(f"{op}: got {len(params)} params but {len(values)} {name}")
    for i, p in enumerate(params):
        check_tensor(op, f"params[{i}]", p, OPTIM_DTYPES)
        if p.device != lr.device:
            raise DeviceError(f"{op}: Expected all tensors to be on the same device, but "
                              f"params[{i}] is on {p.device} and lr on {lr.device}")
        for name, values in lists.items():
            t = values[i]
            if t is None:
                continue
            want_dtype = torch.int32 if name == "steps" else p.dtype
            want_shape = (chunk_count(p.numel()),) if name == "steps" else tuple(p.shape)
            check_tensor(op, f"{name}[{i}]", t, (want_dtype,))
            if t.device != p.device:
                raise DeviceError(f"{op}: Expected all tensors to be on the same device, but "
                                  f"params[{i}] is on {p.device} and {name}[{i}] on {t.device}")
            if tuple(t.shape) != want_shape:
                raise ShapeError(f"{op}: {name}[{i}] has shape {tuple(t.shape)}; expected "
                                 f"{want_shape} for params[{i}] of shape {tuple(p.shape)}")
            if not t.is_contiguous():
                raise LayoutError(f"{op}: {name}[{i}] (shape {tuple(t.shape)}, strides "
                                  f"{tuple(t.stride())}) must be contiguous")
        if not p.is_contiguous():
            raise LayoutError(f"{op}: params[{i}] (shape {tuple(p.shape)}, strides "
                              f"{tuple(p.stride())}) must be contiguous")


def _by_dtype(params) -> dict:
    groups: dict = {}
    for i, p in enumerate(params):
        if p.numel() > 0:
            groups.setdefault(p.dtype, []).append(i)
    return groups


def _ptrs(values, index) -> list[int]:
    return [0 if values is None or values[i] is None else values[i].data_ptr() for i in index]


def sgd_step_(params: list[torch.Tensor], grads: list[torch.Tensor],
              momentum_buffers: list[torch.Tensor] | None, steps: list[torch.Tensor] | None,
              lr: torch.Tensor, *, momentum: float = 0.0, dampening: float = 0.0,
              nesterov: bool = False, weight_decay: float = 0.0,
              maximize: bool = False) -> None:
    """In-place SGD step over ``params`` (one launch per dtype). With momentum, the buffers
    (param dtype, zero-initialised) and int32 ``steps`` slots (new_step_slots) are required;
    a parameter whose slots read 0 starts its buffer from the gradient, as torch.
    ``lr``: 1-element fp32 tensor, or fp64 (required when a param is fp64; fp64 params are
    computed in fp64)."""
    op = "sgd_step_"
    has_momentum = momentum != 0
    if has_momentum and (momentum_buffers is None or steps is None):
        raise ShapeError(f"{op}: momentum={momentum} needs momentum_buffers and steps")
    lists = {"grads": grads}
    if has_momentum:
        lists.update(momentum_buffers=momentum_buffers, steps=steps)
    _check_lists(op, lr, params, **lists)
    if any(g is None for g in grads) or (has_momentum and any(
            b is None or s is None for b, s in zip(momentum_buffers, steps))):
        raise ShapeError(f"{op}: every param needs a grad (and buffers with momentum)")
    for dtype, index in _by_dtype(params).items():
        numels = [params[i].numel() for i in index]
        columns = [_ptrs(params, index), _ptrs(grads, index),
                   _ptrs(momentum_buffers if has_momentum else None, index), [0] * len(index),
                   _ptrs(steps if has_momentum else None, index)]
        table, n_tensors, n_chunks = _table(columns, numels, params[index[0]].device)
        numel = sum(numels)
        streams = 3 + (2 if has_momentum else 0)
        launch(sgd_kernel, (n_chunks,), table, lr, float(momentum), float(1.0 - dampening),
               float(weight_decay), n_tensors, n_chunks, DTYPE=TL_DTYPE[dtype],
               HAS_MOMENTUM=has_momentum, NESTEROV=bool(nesterov), MAXIMIZE=bool(maximize),
               HAS_WD=weight_decay != 0, CHUNK=CHUNK, BLOCK=BLOCK,
               flops=(4 + (4 if has_momentum else 0)) * numel,
               bytes_moved=streams * numel * params[index[0]].element_size())


def _split_f64(value: float) -> tuple[float, float]:
    """value = hi + lo with hi, lo fp32-representable (hi the fp32 rounding of value)."""
    hi = struct.unpack("f", struct.pack("f", value))[0]
    return hi, value - hi


def adam_step_(params: list[torch.Tensor], grads: list[torch.Tensor],
               exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
               steps: list[torch.Tensor], lr: torch.Tensor, *, beta1: float = 0.9,
               beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
               decoupled: bool = False, maximize: bool = False, amsgrad: bool = False) -> None:
    """In-place Adam (decoupled=False) or AdamW step over ``params`` (one launch per dtype).
    State: exp_avgs, exp_avg_sqs (param dtype, zero-initialised), steps (new_step_slots).
    ``lr``: 1-element fp32 tensor, or fp64 (required when a param is fp64; fp64 params are
    computed in fp64)."""
    op = "adam_step_"
    if amsgrad:
        raise UnsupportedError(f"{op}: amsgrad=True is not implemented")
    _check_lists(op, lr, params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                 steps=steps)
    for name, values in (("grads", grads), ("exp_avgs", exp_avgs), ("exp_avg_sqs", exp_avg_sqs),
                         ("steps", steps)):
        if any(v is None for v in values):
            raise DTypeError(f"{op}: {name} has a None entry")
    beta1_hi, beta1_lo = _split_f64(float(beta1))
    beta2_hi, beta2_lo = _split_f64(float(beta2))
    for dtype, index in _by_dtype(params).items():
        numels = [params[i].numel() for i in index]
        columns = [_ptrs(params, index), _ptrs(grads, index), _ptrs(exp_avgs, index),
                   _ptrs(exp_avg_sqs, index), _ptrs(steps, index)]
        table, n_tensors, n_chunks = _table(columns, numels, params[index[0]].device)
        numel = sum(numels)
        launch(adam_kernel, (n_chunks,), table, lr, beta1_hi, beta1_lo, beta2_hi, beta2_lo,
               float(eps), float(weight_decay), n_tensors, n_chunks,
               DTYPE=TL_DTYPE[dtype], DECOUPLED=bool(decoupled), MAXIMIZE=bool(maximize),
               HAS_WD=weight_decay != 0, CHUNK=CHUNK, BLOCK=BLOCK,
               flops=16 * numel, bytes_moved=7 * numel * params[index[0]].element_size())


def _specs():
    specs = []
    sizes = {"n_tensors": "i32", "n_chunks": "i32"}
    tl_dtype = {"fp32": tl.float32, "bf16": tl.bfloat16, "fp16": tl.float16, "fp64": tl.float64}
    # lr "fp64": an fp64 rate tensor, as a group holding fp64 params has (its fp32 params
    # then read it too, rounded); those specs get a ",lr=fp64" label
    for dtype, momentum, nesterov, lr in (("fp32", True, False, "fp32"),
                                          ("bf16", True, True, "fp32"),
                                          ("fp16", False, False, "fp32"),
                                          ("fp64", True, True, "fp64"),
                                          ("fp64", False, False, "fp64"),
                                          ("fp32", True, False, "fp64")):
        sig = {"table_ptr": "*i64", "lr_ptr": "*" + lr, "momentum": "fp64",
               "one_minus_dampening": "fp64", "weight_decay": "fp64", **sizes,
               "DTYPE": "constexpr", "HAS_MOMENTUM": "constexpr", "NESTEROV": "constexpr",
               "MAXIMIZE": "constexpr", "HAS_WD": "constexpr", "CHUNK": "constexpr",
               "BLOCK": "constexpr"}
        const = {"DTYPE": tl_dtype[dtype], "HAS_MOMENTUM": momentum, "NESTEROV": nesterov,
                 "MAXIMIZE": False, "HAS_WD": True, "CHUNK": CHUNK, "BLOCK": BLOCK}
        label = f"{dtype},momentum={momentum}"
        if dtype == "fp64":
            label += f",nesterov={nesterov}"
        if lr == "fp64":
            label += ",lr=fp64"
        specs.append(CompileSpec(sgd_kernel, sig, const, label))
    for dtype, decoupled, lr in (("fp32", False, "fp32"), ("bf16", True, "fp32"),
                                 ("fp16", False, "fp32"), ("fp64", False, "fp64"),
                                 ("fp64", True, "fp64"), ("bf16", True, "fp64")):
        sig = {"table_ptr": "*i64", "lr_ptr": "*" + lr, "beta1_hi": "fp32",
               "beta1_lo": "fp64", "beta2_hi": "fp32", "beta2_lo": "fp64", "eps": "fp64",
               "weight_decay": "fp64", **sizes, "DTYPE": "constexpr", "DECOUPLED": "constexpr",
               "MAXIMIZE": "constexpr", "HAS_WD": "constexpr", "CHUNK": "constexpr",
               "BLOCK": "constexpr"}
        const = {"DTYPE": tl_dtype[dtype], "DECOUPLED": decoupled, "MAXIMIZE": True,
                 "HAS_WD": True, "CHUNK": CHUNK, "BLOCK": BLOCK}
        label = f"{dtype},decoupled={decoupled}" + (",lr=fp64" if lr == "fp64" else "")
        specs.append(CompileSpec(adam_kernel, sig, const, label))
    return specs


COMPILE_SPECS = _specs()

__all__ = ["sgd_step_", "adam_step_", "new_step_slots", "chunk_count", "CHUNK"]
