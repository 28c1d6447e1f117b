"""Binary cross-entropy with logits: loss and both gradients in one pass over the inputs.

For a logit x, target t in [0, 1], weight w and positive-class weight p (torch's
``pos_weight``; p = 1 without it), as torch defines it:
  loss = -w [p t log sigma(x) + (1 - t) log(1 - sigma(x))]
With sp(z) = softplus(z) = log(1 + e^z): log sigma(x) = -sp(-x), log(1 - sigma(x)) = -sp(x),
and sp(x) = x + sp(-x), so
  loss = w [p t sp(-x) + (1 - t) sp(x)] = w [(1 - t) x + l sp(-x)],  l = 1 + (p - 1) t
(torch's own form). sp(-x) = max(-x, 0) + log1p(e^-|x|) never overflows: for |x| large it is
max(-x, 0) plus a term in [0, log 2]. Like torch, x = -inf gives NaN ((1 - t) x + l sp(-x) =
-inf + inf), and x = +inf with t = 1 gives NaN (0 * inf).

Gradients (d sp(z)/dz = sigma(z), sigma(-x) = 1 - sigma(x)):
  d loss / d x = w [(1 - t) - l sigma(-x)] = w [(1 - t) - l + l sigma(x)]
               = w [l sigma(x) - p t]           since 1 - t - l = -p t
  d loss / d t = w [-x + (p - 1) sp(-x)] = w [p sp(-x) - sp(x)]
               = -w [p log sigma(x) - log(1 - sigma(x))]
The target gradient is computed as p sp(-x) - sp(x), torch's form: at x = -inf it is +inf
(the other form gives (p - 1) inf + inf, NaN for p = 1). w and p are constants here.

Reductions: 'none' writes the loss per element; 'mean'/'sum' write one fp32 partial per
program (program pid adds blocks pid, pid + P, ...; P depends only on the element count),
and a one-program kernel adds the P partials in index order: deterministic, no atomics.
'mean' divides by the element count (not by the summed weights), NaN when empty, as torch.

The forward writes the gradients (each only when asked) into new contiguous buffers, times
``grad_scale`` (1/N for 'mean' when the caller prescales). Backward is then one launch that
multiplies them by grad_output (0-d, or per element for 'none') and by what is left of the
scale.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    DTypeError,
    ShapeError,
    check_same_device,
    check_same_dtype,
    check_tensor,
    dtype_name,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .copy import MAX_DIMS, flat_layout, offsets_of
from .elementwise import scalar_like, upcast
from .mse import sum_partials

OP = "binary_cross_entropy_with_logits"
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
REDUCTIONS = ("mean", "sum", "none")
BLOCK = 2048  # as mse: large blocks keep programs (and partials) few under the interpreter
REDUCE_BLOCK = 1024
MAX_PARTIALS = 1024  # as mse's, measured there for the same access pattern


@triton.jit
def log1p_of_small(e):
    """A jit helper: log(1 + e) for e in [0, 1] (or NaN), accurate for tiny e (Goldberg:
    log(u) * e / (u - 1) with u = 1 + e cancels u's rounding); e itself when 1 + e == 1."""
    u = 1.0 + e
    exact = u == 1.0
    return tl.where(exact, e, tl.log(u) * (e / tl.where(exact, 1.0, u - 1.0)))


@triton.jit
def bce_fwd_kernel(
    loss_ptr, grad_input_ptr, grad_target_ptr, input_ptr, target_ptr, weight_ptr, pos_weight_ptr,
    numel, size1, size2, size3, size4, size5,
    in_s0, in_s1, in_s2, in_s3, in_s4, in_s5,
    tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5,
    w_s0, w_s1, w_s2, w_s3, w_s4, w_s5,
    pw_s0, pw_s1, pw_s2, pw_s3, pw_s4, pw_s5,
    grad_scale: tl.float64,
    BLOCK: tl.constexpr, PER_ELEMENT: tl.constexpr, HAS_WEIGHT: tl.constexpr,
    HAS_POS_WEIGHT: tl.constexpr, NEED_INPUT: tl.constexpr, NEED_TARGET: tl.constexpr,
    FLAT: tl.constexpr,
):
    """Loss (per element, or one fp32 partial sum per program) and gradients.

    loss_ptr: PER_ELEMENT: (numel,) contiguous, the input dtype; else (P,) partials in the
        compute dtype (fp64 for fp64 input, else fp32), P = the number of programs.
        Program pid covers blocks pid, pid + P, ...
    grad_input_ptr, grad_target_ptr: (numel,) contiguous, input dtype: d loss_i / d x_i and
        d loss_i / d t_i times grad_scale, written only when NEED_INPUT / NEED_TARGET.
    input_ptr, target_ptr: the same logical shape, any strides, padded to 6-D (copy.py).
    weight_ptr, pos_weight_ptr: broadcast to that shape (stride 0 on broadcast dims), read
        when HAS_WEIGHT / HAS_POS_WEIGHT (otherwise any pointer).
    numel: element count; size1..size5: trailing sizes of the merged 6-D shape; FLAT: the
        layout merged to one dim (see copy.offsets_of).
    grad_scale: factor on the gradients (1/numel for a prescaled 'mean', else 1), rounded
        to the compute dtype.
    Arithmetic is fp32 (fp64 for fp64 input: gradcheck).
    """
    pid = tl.program_id(0)
    n_programs = tl.num_programs(0)
    step = n_programs.to(tl.int64) * BLOCK
    acc = upcast(tl.zeros([BLOCK], dtype=input_ptr.dtype.element_ty))
    grad_scale = scalar_like(grad_scale, acc)
    for start in range(pid.to(tl.int64) * BLOCK, numel, step):
        linear = start + tl.arange(0, BLOCK)
        mask = linear < numel
        in_off = offsets_of(linear, size1, size2, size3, size4, size5,
                            in_s0, in_s1, in_s2, in_s3, in_s4, in_s5, FLAT)
        tg_off = offsets_of(linear, size1, size2, size3, size4, size5,
                            tg_s0, tg_s1, tg_s2, tg_s3, tg_s4, tg_s5, FLAT)
        x = upcast(tl.load(input_ptr + in_off, mask=mask, other=0.0))
        t = upcast(tl.load(target_ptr + tg_off, mask=mask, other=0.0))
        e = tl.exp(-tl.abs(x))
        log_term = log1p_of_small(e)
        # tl.where, not tl.maximum: NaN stays NaN (through log_term) rather than 0.
        sp_neg = tl.where(x < 0, -x, 0.0) + log_term  # sp(-x) = -log sigma(x)
        if HAS_POS_WEIGHT:
            pw_off = offsets_of(linear, size1, size2, size3, size4, size5,
                                pw_s0, pw_s1, pw_s2, pw_s3, pw_s4, pw_s5, FLAT)
            p = tl.load(pos_weight_ptr + pw_off, mask=mask, other=1.0).to(x.dtype)
            pt = p * t
            log_weight = 1.0 + (p - 1.0) * t
        else:
            pt = t
            log_weight = 1.0
        loss = (1.0 - t) * x + log_weight * sp_neg
        if HAS_WEIGHT:
            w_off = offsets_of(linear, size1, size2, size3, size4, size5,
                               w_s0, w_s1, w_s2, w_s3, w_s4, w_s5, FLAT)
            w = tl.load(weight_ptr + w_off, mask=mask, other=0.0).to(x.dtype)
            loss = w * loss
            w_scale = w * grad_scale
        else:
            w_scale = grad_scale
        if PER_ELEMENT:
            tl.store(loss_ptr + linear, cast_to(loss, loss_ptr.dtype.element_ty), mask=mask)
        else:
            acc += tl.where(mask, loss, 0.0)
        if NEED_INPUT:
            # sigma(x) from e = exp(-|x|): 1 / (1 + e) for x >= 0, e / (1 + e) below
            sig = tl.where(x >= 0, 1.0, e) / (1.0 + e)
            grad_x = (log_weight * sig - pt) * w_scale
            tl.store(grad_input_ptr + linear, cast_to(grad_x, grad_input_ptr.dtype.element_ty),
                     mask=mask)
        if NEED_TARGET:
            sp_pos = tl.where(x > 0, x, 0.0) + log_term  # sp(x) = -log(1 - sigma(x))
            if HAS_POS_WEIGHT:
                grad_t = p * sp_neg - sp_pos
            else:
                grad_t = sp_neg - sp_pos
            grad_t = grad_t * w_scale
            tl.store(grad_target_ptr + linear,
                     cast_to(grad_t, grad_target_ptr.dtype.element_ty), mask=mask)
    if not PER_ELEMENT:
        tl.store(loss_ptr + pid, tl.sum(acc, axis=0))


@triton.jit
def bce_finish_kernel(out_ptr, partial_ptr, n_partials, scale: tl.float64,
                      REDUCE_BLOCK: tl.constexpr):
    """out[()] = scale * (partial[0] + ... + partial[n - 1]), one program, in index order.

    out_ptr: 0-d, the input dtype. partial_ptr: (n_partials,) from bce_fwd_kernel, fp32
    (fp64 for fp64 input). scale: 1/numel for 'mean' (NaN when empty, as torch), 1 for
    'sum', rounded to the partials' dtype.
    """
    total = sum_partials(partial_ptr, n_partials, REDUCE_BLOCK)
    total = total * scalar_like(scale, total)
    tl.store(out_ptr, cast_to(total, out_ptr.dtype.element_ty))


@triton.jit
def bce_bwd_kernel(
    out_input_ptr, out_target_ptr, grad_input_ptr, grad_target_ptr, grad_output_ptr,
    numel, size1, size2, size3, size4, size5,
    go_s0, go_s1, go_s2, go_s3, go_s4, go_s5,
    scale: tl.float64,
    BLOCK: tl.constexpr, PER_ELEMENT: tl.constexpr, NEED_INPUT: tl.constexpr,
    NEED_TARGET: tl.constexpr, FLAT: tl.constexpr,
):
    """out = grad * g * scale for each of the saved gradients asked for.

    The loss is L = sum_i s loss_i ('mean': s = 1/N, 'sum': 1) or the vector loss_i ('none'),
    so d(g . L)/d x_i = g s d loss_i / d x_i, with g = grad_output[()] or grad_output[i].
    out_*_ptr, grad_*_ptr: (numel,) contiguous (the forward's buffers); a pair is used only
    when NEED_INPUT / NEED_TARGET. grad_output_ptr: 0-d unless PER_ELEMENT, then the input's
    shape with strides go_s* (6-D padded, FLAT as in bce_fwd_kernel).
    scale: the part of s the forward did not apply, rounded to the compute dtype (fp32,
        fp64 for fp64).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    if PER_ELEMENT:
        go_off = offsets_of(linear, size1, size2, size3, size4, size5,
                            go_s0, go_s1, go_s2, go_s3, go_s4, go_s5, FLAT)
        g = upcast(tl.load(grad_output_ptr + go_off, mask=mask, other=0.0))
    else:
        g = upcast(tl.load(grad_output_ptr))
    if grad_input_ptr.dtype.element_ty == tl.float64:
        g = g.to(tl.float64)
    else:
        g = g.to(tl.float32)
    g = g * scalar_like(scale, g)
    if NEED_INPUT:
        grad = upcast(tl.load(grad_input_ptr + linear, mask=mask, other=0.0))
        tl.store(out_input_ptr + linear, cast_to(grad * g, out_input_ptr.dtype.element_ty),
                 mask=mask)
    if NEED_TARGET:
        grad = upcast(tl.load(grad_target_ptr + linear, mask=mask, other=0.0))
        tl.store(out_target_ptr + linear, cast_to(grad * g, out_target_ptr.dtype.element_ty),
                 mask=mask)


def _broadcasts_to(shape: tuple, to: tuple) -> bool:
    if len(shape) > len(to):
        return False
    return all(s == 1 or s == d for s, d in zip(reversed(shape), reversed(to)))


def check_inputs(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
                 pos_weight: torch.Tensor | None, reduction: str) -> None:
    """Every metadata check, before any launch."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{OP}: {reduction!r} is not a valid value for reduction; "
                         f"expected one of {REDUCTIONS}")
    check_tensor(OP, "input", input, DTYPES)
    check_tensor(OP, "target", target, DTYPES)
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(f"{OP}: Target size ({tuple(target.shape)}) must be the same as "
                         f"input size ({tuple(input.shape)})")
    if target.dtype != input.dtype:
        raise DTypeError(f"{OP}: target dtype {dtype_name(target.dtype)} must match input "
                         f"dtype {dtype_name(input.dtype)}")
    check_same_device(OP, input=input, target=target)
    for name, extra in (("weight", weight), ("pos_weight", pos_weight)):
        if extra is None:
            continue
        check_tensor(OP, name, extra, DTYPES)
        check_same_device(OP, input=input, **{name: extra})
        if not _broadcasts_to(tuple(extra.shape), tuple(input.shape)):
            raise ShapeError(f"{OP}: {name} of shape {tuple(extra.shape)} cannot be "
                             f"broadcast to input size ({tuple(input.shape)})")


def _grad_buffer(input: torch.Tensor, need: bool) -> torch.Tensor | None:
    return torch.empty(input.shape, dtype=input.dtype, device=input.device) if need else None


def bce_with_logits_fwd(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    reduction: str = "mean",
    need_input: bool = False,
    need_target: bool = False,
    prescale: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(loss, grad_input, grad_target) of binary cross-entropy with logits.

    loss: 0-d for 'mean'/'sum', input's shape for 'none', in input's dtype. grad_input /
    grad_target (new contiguous buffers, None unless asked for): d loss_i / d x_i and
    d loss_i / d t_i, already divided by N for 'mean' when ``prescale``. weight and
    pos_weight broadcast to input's shape (read through stride-0 views, never copied).
    Arithmetic is fp32 (fp64 for fp64 input).
    """
    check_inputs(input, target, weight, pos_weight, reduction)
    numel = input.numel()
    grad_input = _grad_buffer(input, need_input)
    grad_target = _grad_buffer(input, need_target)
    per_element = reduction == "none"
    n_programs = max(min(cdiv(numel, BLOCK), MAX_PARTIALS), 1)
    if per_element:
        loss = torch.empty(input.shape, dtype=input.dtype, device=input.device)
        if numel == 0:
            return loss, grad_input, grad_target
    else:
        partial_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
        loss = torch.empty((n_programs,), dtype=partial_dtype, device=input.device)
    mean_scale = (1.0 / numel if numel else float("nan")) if reduction == "mean" else 1.0
    grad_scale = mean_scale if (prescale and reduction == "mean" and numel) else 1.0
    shape = tuple(input.shape)
    w_view = weight.expand(shape) if weight is not None else input  # a view: stride 0
    pw_view = pos_weight.expand(shape) if pos_weight is not None else input
    sizes, strides, flat = flat_layout(shape, input.stride(), target.stride(),
                                       w_view.stride(), pw_view.stride())
    elem = input.element_size()
    n_out = int(need_input) + int(need_target) + int(per_element)
    n_in = 2 + int(weight is not None) + int(pos_weight is not None)
    launch(bce_fwd_kernel, (n_programs,),
           loss, grad_input if need_input else loss, grad_target if need_target else loss,
           input, target, w_view, pw_view, numel, *sizes[1:], *strides[0], *strides[1],
           *strides[2], *strides[3], float(grad_scale),
           BLOCK=BLOCK, PER_ELEMENT=per_element, HAS_WEIGHT=weight is not None,
           HAS_POS_WEIGHT=pos_weight is not None, NEED_INPUT=need_input,
           NEED_TARGET=need_target, FLAT=flat,
           flops=(12 + 4 * n_out) * numel, bytes_moved=(n_in + n_out) * numel * elem)
    if per_element:
        return loss, grad_input, grad_target
    out = torch.empty((), dtype=input.dtype, device=input.device)
    launch(bce_finish_kernel, (1,), out, loss, n_programs, float(mean_scale),
           REDUCE_BLOCK=REDUCE_BLOCK, flops=n_programs,
           bytes_moved=loss.element_size() * n_programs + elem)
    return out, grad_input, grad_target


def bce_with_logits_bwd(
    grad_output: torch.Tensor,
    grad_input: torch.Tensor | None,
    grad_target: torch.Tensor | None,
    reduction: str = "mean",
    scale: float = 1.0,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The forward's gradient buffers times grad_output (and ``scale``, the 1/N of an
    unprescaled 'mean'), into new buffers; one launch for both. grad_output is 0-d for
    'mean'/'sum' (read on the device, no sync) and the input's shape (any strides) for
    'none'. The saved buffers are never written (retain_graph keeps working)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{OP}: {reduction!r} is not a valid value for reduction; "
                         f"expected one of {REDUCTIONS}")
    saved = grad_input if grad_input is not None else grad_target
    if saved is None:
        return None, None
    check_tensor(OP, "grad_output", grad_output, DTYPES)
    for name, buf in (("grad_input", grad_input), ("grad_target", grad_target)):
        if buf is not None:
            check_tensor(OP, name, buf, DTYPES)
            if not buf.is_contiguous() or buf.shape != saved.shape:
                raise ShapeError(f"{OP} backward: {name} must be contiguous with shape "
                                 f"{tuple(saved.shape)}, got {tuple(buf.shape)} strides "
                                 f"{tuple(buf.stride())}")
    check_same_device(OP, grad_output=grad_output, saved=saved)
    per_element = reduction == "none"
    want = tuple(saved.shape) if per_element else ()
    if tuple(grad_output.shape) != want:
        raise ShapeError(f"{OP} backward: grad_output has shape {tuple(grad_output.shape)}, "
                         f"expected {want} for reduction={reduction!r}")
    out_input = _grad_buffer(saved, grad_input is not None)
    out_target = _grad_buffer(saved, grad_target is not None)
    numel = saved.numel()
    if numel == 0:
        return out_input, out_target
    go_strides = grad_output.stride() if per_element else (0,) * saved.dim()
    sizes, (strides,), flat = flat_layout(tuple(saved.shape), go_strides)
    n_out = int(grad_input is not None) + int(grad_target is not None)
    elem = saved.element_size()
    launch(bce_bwd_kernel, (cdiv(numel, BLOCK),),
           out_input if out_input is not None else saved,
           out_target if out_target is not None else saved,
           grad_input if grad_input is not None else saved,
           grad_target if grad_target is not None else saved,
           grad_output, numel, *sizes[1:], *strides, float(scale),
           BLOCK=BLOCK, PER_ELEMENT=per_element, NEED_INPUT=grad_input is not None,
           NEED_TARGET=grad_target is not None, FLAT=flat,
           flops=2 * n_out * numel,
           bytes_moved=2 * n_out * numel * elem
           + (numel if per_element else 1) * grad_output.element_size())
    return out_input, out_target


def _specs():
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    strides = {f"{p}_s{i}": "i64" for p in ("in", "tg", "w", "pw") for i in range(MAX_DIMS)}
    go_strides = {f"go_s{i}": "i64" for i in range(MAX_DIMS)}
    specs = [CompileSpec(bce_finish_kernel,
                         {"out_ptr": "*" + dt, "partial_ptr": "*fp64" if dt == "fp64" else "*fp32",
                          "n_partials": "i32", "scale": "fp64", "REDUCE_BLOCK": "constexpr"},
                         {"REDUCE_BLOCK": REDUCE_BLOCK}, dt)
             for dt in ("fp32", "fp16", "bf16", "fp64")]
    for dt, flat in (("fp32", True), ("bf16", False), ("fp16", True), ("fp64", False)):
        for per_element, weighted, need_input, need_target in (
                (False, False, True, False), (False, True, True, True),
                (True, True, True, False), (True, False, False, False),
                (False, False, False, False), (True, True, True, True)):
            partial_t = "fp64" if dt == "fp64" else "fp32"
            sig = {"loss_ptr": "*" + (dt if per_element else partial_t),
                   "grad_input_ptr": "*" + dt, "grad_target_ptr": "*" + dt,
                   "input_ptr": "*" + dt, "target_ptr": "*" + dt,
                   "weight_ptr": "*" + dt, "pos_weight_ptr": "*fp32", **sizes, **strides,
                   "grad_scale": "fp64", "BLOCK": "constexpr", "PER_ELEMENT": "constexpr",
                   "HAS_WEIGHT": "constexpr", "HAS_POS_WEIGHT": "constexpr",
                   "NEED_INPUT": "constexpr", "NEED_TARGET": "constexpr", "FLAT": "constexpr"}
            const = {"BLOCK": BLOCK, "PER_ELEMENT": per_element, "HAS_WEIGHT": weighted,
                     "HAS_POS_WEIGHT": weighted, "NEED_INPUT": need_input,
                     "NEED_TARGET": need_target, "FLAT": flat}
            specs.append(CompileSpec(bce_fwd_kernel, sig, const,
                                     f"{dt},none={per_element},weights={weighted},"
                                     f"dx={need_input},dt={need_target}"))
        for per_element in (False, True):
            for need_input, need_target in ((True, False), (True, True), (False, True)):
                specs.append(CompileSpec(
                    bce_bwd_kernel,
                    {"out_input_ptr": "*" + dt, "out_target_ptr": "*" + dt,
                     "grad_input_ptr": "*" + dt, "grad_target_ptr": "*" + dt,
                     "grad_output_ptr": "*" + dt, **sizes, **go_strides, "scale": "fp64",
                     "BLOCK": "constexpr", "PER_ELEMENT": "constexpr",
                     "NEED_INPUT": "constexpr", "NEED_TARGET": "constexpr",
                     "FLAT": "constexpr"},
                    {"BLOCK": BLOCK, "PER_ELEMENT": per_element, "NEED_INPUT": need_input,
                     "NEED_TARGET": need_target, "FLAT": flat},
                    f"{dt},none={per_element},dx={need_input},dt={need_target}"))
    return specs


COMPILE_SPECS = _specs()
