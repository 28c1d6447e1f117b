"""Small @triton.jit helpers that several kernel families share."""

import triton
import triton.language as tl


@triton.jit
def cast_to(x, dtype: tl.constexpr):
    """``x.to(dtype)``, except that the cast to bf16 rounds to nearest-even
    explicitly. Triton's interpreter truncates fp32 -> bf16 (measured: about
    half of randn values came out one ulp off torch), while the GPU rounds to
    nearest-even; doing the rounding on the bits gives the same answer on both.
    rounded = bits + 0x7FFF + lsb, where lsb is bit 16 (ties go to even)."""
    if dtype == tl.bfloat16:
        xf = x.to(tl.float32)
        bits = xf.to(tl.uint32, bitcast=True)
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)
        rounded = tl.where(xf != xf, bits | 0x400000, rounded)  # NaN stays a (quiet) NaN
        out = (rounded >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        out = x.to(dtype)
    return out
