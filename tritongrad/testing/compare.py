"""Element-wise comparison against a torch reference, with a worst-element report.

This is oracle code: it is allowed to compute with torch, because it only
judges our kernels' results; it never produces them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .tolerances import tolerance_for


@dataclass
class Comparison:
    """How far ``actual`` is from ``expected``; ``ok`` under (rtol, atol)."""

    name: str
    ok: bool
    max_abs: float
    max_rel: float
    worst_index: tuple
    actual_value: float
    expected_value: float
    rtol: float
    atol: float
    note: str = ""

    def message(self) -> str:
        if self.note:
            return f"{self.name}: {self.note}"
        return (
            f"{self.name}: worst element at index {self.worst_index}: ours={self.actual_value!r} "
            f"torch={self.expected_value!r} (abs err {self.max_abs:.3g}, rel err "
            f"{self.max_rel:.3g}); tolerance rtol={self.rtol:g}, atol={self.atol:g}"
        )


def compare(name: str, actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> Comparison:
    """Compare in float64. NaN must match NaN, and infinities must match exactly."""
    actual = actual.detach().to("cpu")
    expected = expected.detach().to("cpu")
    if tuple(actual.shape) != tuple(expected.shape):
        return Comparison(name, False, float("inf"), float("inf"), (), float("nan"), float("nan"),
                          rtol, atol, note=f"shape {tuple(actual.shape)} != torch's {tuple(expected.shape)}")
    if actual.numel() == 0:
        return Comparison(name, True, 0.0, 0.0, (), 0.0, 0.0, rtol, atol)
    a = actual.to(torch.float64)
    e = expected.to(torch.float64)
    both_nan = a.isnan() & e.isnan()
    same_inf = a.isinf() & e.isinf() & (a == e)
    exact = both_nan | same_inf
    diff = (a - e).abs()
    diff = torch.where(exact, torch.zeros_like(diff), diff)
    diff = torch.where((a.isnan() | e.isnan() | a.isinf() | e.isinf()) & ~exact,
                       torch.full_like(diff, float("inf")), diff)
    allowed = atol + rtol * e.abs().nan_to_num(posinf=0.0, neginf=0.0)
    excess = diff - allowed
    flat = int(torch.argmax(excess.flatten()))
    worst = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)) if a.dim() else ()
    rel = diff / e.abs().clamp_min(1e-30)
    rel = torch.where(exact, torch.zeros_like(rel), rel)
    return Comparison(
        name=name,
        ok=bool((excess <= 0).all()),
        max_abs=float(diff.max()),
        max_rel=float(rel.max()),
        worst_index=worst,
        actual_value=float(a.flatten()[flat]),
        expected_value=float(e.flatten()[flat]),
        rtol=rtol,
        atol=atol,
    )


def assert_close(actual, expected, dtype=None, name: str = "output", tf32: bool = False,
                 rtol: float | None = None, atol: float | None = None) -> Comparison:
    """Raise AssertionError naming the worst element when actual is not within
    the table's tolerance for ``dtype`` (default: expected's dtype)."""
    actual = actual.torch() if hasattr(actual, "torch") and not isinstance(actual, torch.Tensor) else actual
    expected = expected.torch() if hasattr(expected, "torch") and not isinstance(expected, torch.Tensor) else expected
    table_rtol, table_atol = tolerance_for(dtype or expected.dtype, tf32=tf32)
    result = compare(name, actual, expected,
                     table_rtol if rtol is None else rtol, table_atol if atol is None else atol)
    if not result.ok:
        raise AssertionError(result.message())
    return result
