"""Small @triton.jit helpers that several kernel families share."""

import triton
import triton.language as tl

from ._launch import interpreting

# The interpreter's fp32 -> bf16 cast truncates; a GPU's (cvt.rn.bf16.f32) rounds to
# nearest-even in one instruction.
EMULATE_BF16_ROUNDING = tl.constexpr(interpreting())


@triton.jit
def cast_to(x, dtype: tl.constexpr):
    """``x.to(dtype)``, rounding to nearest-even into bf16 on every backend. Triton's
    interpreter truncates fp32 -> bf16 (measured: about half of randn values came out one
    ulp off torch), so there the rounding is done on the bits:
    rounded = bits + 0x7FFF + lsb, where lsb is bit 16 (ties go to even). A GPU's own
    conversion already rounds to nearest-even, in one instruction instead of seven."""
    if (dtype == tl.bfloat16 or dtype == tl.float16) and x.dtype != tl.float32:
        # as torch: a 64-bit value (fp64, int64) rounds to fp32 first, then to 16 bits
        x = x.to(tl.float32)
    if dtype == tl.bfloat16 and EMULATE_BF16_ROUNDING:
        xf = x.to(tl.float32)
        bits = xf.to(tl.uint32, bitcast=True)
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)
        rounded = tl.where(xf != xf, bits | 0x400000, rounded)  # NaN stays a (quiet) NaN
        out = (rounded >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        out = x.to(dtype)
    return out
