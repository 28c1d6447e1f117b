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
    """How far ``actual`` is from ``expected``; ``ok`` under (rtol, atol).

    max_abs / max_rel: the largest |ours - torch| and |ours - torch| / |torch| over
    all elements (rel is inf where torch is exactly 0 and ours is not). The worst
    element is the one furthest beyond the tolerance (or closest to it, when all
    pass); worst_abs / worst_rel are its own errors."""

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
    worst_abs: float = float("nan")
    worst_rel: float = float("nan")
    n_bad: int = 0
    numel: int = 0

    def message(self) -> str:
        if self.note:
            return f"{self.name}: {self.note}"
        return (
            f"{self.name}: worst element at index {self.worst_index}: ours={self.actual_value!r} "
            f"torch={self.expected_value!r} (abs err {self.worst_abs:.3g}, rel err "
            f"{self.worst_rel:.3g}); {self.n_bad} of {self.numel} elements out of tolerance "
            f"rtol={self.rtol:g}, atol={self.atol:g} (max abs err {self.max_abs:.3g}, "
            f"max rel err {self.max_rel:.3g})"
        )


def compare(name: str, actual: torch.Tensor, expected: torch.Tensor, rtol: float,
            atol: float, check_dtype: bool = False) -> Comparison:
    """Compare in float64. NaN must match NaN, and infinities must match exactly.

    check_dtype: also fail when the dtypes differ (as torch.testing.assert_close does): an
    op that returns fp32 for bf16 inputs has the right values and the wrong result. The
    parity tools set it; tests comparing against a higher-precision reference do not."""
    result = _compare_values(name, actual, expected, rtol, atol)
    if check_dtype and actual.dtype != expected.dtype and not result.note:
        values = "within" if result.ok else "also out of"
        result.ok = False
        result.note = (f"dtype {str(actual.dtype).replace('torch.', '')} != torch's "
                       f"{str(expected.dtype).replace('torch.', '')} (values {values} "
                       f"tolerance: max abs err {result.max_abs:.3g}, max rel err "
                       f"{result.max_rel:.3g})")
    return result


def _compare_values(name: str, actual: torch.Tensor, expected: torch.Tensor, rtol: float,
                    atol: float) -> Comparison:
    actual = actual.detach().to("cpu")
    expected = expected.detach().to("cpu")
    if tuple(actual.shape) != tuple(expected.shape):
        return Comparison(name, False, float("inf"), float("inf"), (), float("nan"),
                          float("nan"), rtol, atol,
                          note=f"shape {tuple(actual.shape)} != torch's {tuple(expected.shape)}")
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
    flat_index = torch.tensor(flat, device="cpu")  # a and e are host copies
    worst = tuple(int(i) for i in torch.unravel_index(flat_index, a.shape)) if a.dim() else ()
    # |torch| = 0: rel is 0 where ours is 0 too, inf otherwise (not diff / 1e-30)
    rel = torch.where(diff == 0, torch.zeros_like(diff), diff / e.abs())
    rel = torch.where(rel.isnan(), torch.full_like(rel, float("inf")), rel)  # NaN vs a number
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
        worst_abs=float(diff.flatten()[flat]),
        worst_rel=float(rel.flatten()[flat]),
        n_bad=int((excess > 0).sum()),
        numel=a.numel(),
    )


def _as_torch(value):
    """A tg Tensor's storage; torch tensors pass through."""
    if hasattr(value, "torch") and not isinstance(value, torch.Tensor):
        return value.torch()
    return value


def assert_close(actual, expected, dtype=None, name: str = "output", tf32: bool = False,
                 rtol: float | None = None, atol: float | None = None) -> Comparison:
    """Raise AssertionError naming the worst element when actual is not within
    the table's tolerance for ``dtype`` (default: expected's dtype)."""
    actual = _as_torch(actual)
    expected = _as_torch(expected)
    table_rtol, table_atol = tolerance_for(dtype or expected.dtype, tf32=tf32)
    result = compare(name, actual, expected,
                     table_rtol if rtol is None else rtol, table_atol if atol is None else atol)
    if not result.ok:
        raise AssertionError(result.message())
    return result
