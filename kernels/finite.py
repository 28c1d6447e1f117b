"""Non-finite detection: a device-side flag saying whether a tensor holds NaN or Inf.

Anomaly mode (``tg.autograd.detect_anomaly``) checks every op's outputs and every
backward node's gradients with it. The check is a value check, so it runs on the
device and the host reads a small flag array, never the tensor itself.

Each program walks ``span`` consecutive elements in ``BLOCK``-sized steps and writes
its own flag word (bit 0: a NaN was seen, bit 1: an infinity was seen), so no
program races with another and no atomics are needed; the host ORs the (at most
``MAX_PROGRAMS``) words.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import FLOAT_DTYPES, check_tensor
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, flat_layout, offsets_of

BLOCK = 4096 if interpreting() else 1024
# Interpreter: programs run one after another (~0.5 ms each), so few programs with long
# loops; GPU: enough programs to fill the SMs while the flag array stays tiny.
MAX_PROGRAMS = 4 if interpreting() else 512

NAN_BIT, INF_BIT = 1, 2
FP32_MAX = tl.constexpr(3.4028234663852886e38)  # largest finite fp32
FP64_MAX = tl.constexpr(1.7976931348623157e308)  # largest finite fp64


@triton.jit
def nonfinite_flag_kernel(
    flag_ptr, x_ptr,
    numel, span, size1, size2, size3, size4, size5,
    s0, s1, s2, s3, s4, s5,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """flag[p] = (any NaN in this program's elements) | 2 * (any +-Inf in them).

    flag_ptr: int32 (n_programs,), one word per program.
    x_ptr: the tensor, read through its (merged, padded 6-D) strides s0..s5.
    numel: element count; span: elements per program (a multiple of BLOCK);
    size1..size5: trailing sizes of the merged shape (dim 0's is implied).
    FLAT: the layout merged to one dim (only s5 matters): no index arithmetic.
    """
    pid = tl.program_id(0).to(tl.int64)
    seen_nan = tl.zeros([BLOCK], dtype=tl.int32)
    seen_inf = tl.zeros([BLOCK], dtype=tl.int32)
    for start in range(0, span, BLOCK):
        linear = pid * span + start + tl.arange(0, BLOCK)
        mask = linear < numel
        offsets = offsets_of(linear, size1, size2, size3, size4, size5,
                             s0, s1, s2, s3, s4, s5, FLAT)
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
        # NaN is the only value unequal to itself; |x| above the largest finite value
        # is +-Inf (a NaN compares false). fp16/bf16 widen to fp32 exactly.
        if x.dtype == tl.float64:
            is_inf = tl.abs(x) > FP64_MAX
        else:
            x = x.to(tl.float32)
            is_inf = tl.abs(x) > FP32_MAX
        is_nan = x != x
        seen_nan = tl.where(is_nan, 1, seen_nan)
        seen_inf = tl.where(is_inf, 1, seen_inf)
    flag = tl.max(seen_nan, axis=0) + 2 * tl.max(seen_inf, axis=0)
    tl.store(flag_ptr + pid, flag)


def nonfinite_flags(x: torch.Tensor) -> torch.Tensor:
    """The int32 flag words of ``x`` (any strides), without a host sync. Integer and
    bool tensors are always finite: no launch, a zero-length result."""
    check_tensor("nonfinite", "x", x)
    numel = x.numel()
    if numel == 0 or x.dtype not in FLOAT_DTYPES:
        return torch.zeros((0,), dtype=torch.int32, device=x.device)
    check_tensor("nonfinite", "x", x, FLOAT_DTYPES)
    span = cdiv(cdiv(numel, MAX_PROGRAMS), BLOCK) * BLOCK
    n_programs = cdiv(numel, span)
    flags = torch.empty((n_programs,), dtype=torch.int32, device=x.device)
    sizes, (strides,), flat = flat_layout(x.shape, x.stride())
    launch(nonfinite_flag_kernel, (n_programs,), flags, x, numel, span, *sizes[1:], *strides,
           FLAT=flat, BLOCK=BLOCK, flops=2 * numel,
           bytes_moved=numel * x.element_size() + 4 * n_programs)
    return flags


def nonfinite_code(x: torch.Tensor) -> int:
    """0 when every element of ``x`` is finite, else NAN_BIT | INF_BIT of what was seen.
    One launch and one host read of at most MAX_PROGRAMS words."""
    code = 0
    for word in nonfinite_flags(x).tolist():  # device -> host read of the flags
        code |= int(word)
    return code


def _specs() -> list[CompileSpec]:
    sizes = {"numel": "i64", "span": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    strides = {f"s{i}": "i64" for i in range(MAX_DIMS)}
    return [
        CompileSpec(nonfinite_flag_kernel,
                    {"flag_ptr": "*i32", "x_ptr": "*" + dtype, **sizes, **strides,
                     "FLAT": "constexpr", "BLOCK": "constexpr"},
                    {"FLAT": flat, "BLOCK": BLOCK}, f"{dtype}-{'flat' if flat else 'strided'}")
        for dtype, flat in (("fp32", True), ("bf16", False), ("fp16", True), ("fp64", False))
    ]


COMPILE_SPECS = _specs()
