"""The one per-dtype tolerance table, used by assert_parity, the parity report,
shadow mode and the project's own tests.

Values are (rtol, atol) for ``|ours - torch| <= atol + rtol * |torch|``.
Tightening is welcome. Loosening an entry for one op needs a comment at the
call site giving the measured error and the reason.
"""

from __future__ import annotations

import torch

# (rtol, atol)
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1e-5, 1e-5),  # IEEE fp32
    "tf32": (1e-2, 1e-2),  # fp32 matmul with TF32 tensor cores (opt-in)
    "float16": (1e-2, 1e-3),
    "bfloat16": (5e-2, 1e-2),
}


def tolerance_for(dtype: torch.dtype | str, tf32: bool = False) -> tuple[float, float]:
    """(rtol, atol) for results computed in ``dtype``."""
    key = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
    if tf32 and key == "float32":
        key = "tf32"
    if key not in TOLERANCES:
        raise KeyError(f"no tolerance for dtype {key!r}; known: {sorted(TOLERANCES)}")
    return TOLERANCES[key]
