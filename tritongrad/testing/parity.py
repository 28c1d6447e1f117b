"""``assert_parity``: forward and every gradient of a tritongrad function
against its torch twin, on the same values.

Oracle code: torch computes here only to judge our results.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .compare import Comparison, compare
from .tolerances import tolerance_for


class ParityError(AssertionError):
    """Raised by assert_parity; ``.comparisons`` holds every comparison made."""

    def __init__(self, message: str, comparisons: list):
        super().__init__(message)
        self.comparisons = comparisons


class Constant:
    """An input fed to both frameworks that does not require grad (a target, a
    mask): see :func:`constant`."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"constant({self.value!r})"


def constant(value: Any) -> Constant:
    """Mark an ``assert_parity`` input as not requiring grad: it is still cast to
    ``dtype`` when floating, but neither framework differentiates through it."""
    return Constant(value)


def _to_torch_input(value: Any, dtype: torch.dtype | None, device: torch.device):
    if isinstance(value, Constant):
        value = value.value
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if hasattr(value, "torch") and not isinstance(value, torch.Tensor):
        value = value.torch()
    if not isinstance(value, torch.Tensor):
        return value  # Python scalars, strings, None: passed through unchanged
    value = value.detach()
    if value.is_floating_point() and dtype is not None:
        value = value.to(dtype)
    # .to keeps the strides of a dense view: a transposed input stays transposed
    return value.to(device)


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def random_grad_outputs(outputs: tuple, seed: int = 1234) -> list:
    """Seeded random cotangents (not ones), so a backward that ignores its
    incoming gradient is caught. Each lies on its output's device; the draw is made
    on the CPU, so every device sees the same values."""
    generator = torch.Generator().manual_seed(seed)
    grads = []
    for out in outputs:
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.requires_grad:
            draw = torch.randn(out.shape, generator=generator, dtype=torch.float32,
                               device="cpu")
            grads.append(draw.to(out.device, out.dtype))
        else:
            grads.append(None)
    return grads


def run_parity(
    tg_fn: Callable,
    torch_fn: Callable,
    *inputs: Any,
    dtype: torch.dtype | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    grad_outputs: list | None = None,
    tf32: bool = False,
    check_grads: bool = True,
) -> list[Comparison]:
    """Run both frameworks and return one Comparison per output and per input gradient.

    torch runs on tritongrad's device: inputs and ``grad_outputs`` on another device (CPU
    tensors on a GPU machine, numpy arrays) are copied there first, so both sides see the
    same values on the same hardware."""
    import tritongrad as tg

    device = tg.device()
    torch_inputs = [_to_torch_input(v, dtype, device) for v in inputs]
    differentiable = [
        isinstance(t, torch.Tensor) and t.is_floating_point() and not isinstance(v, Constant)
        for t, v in zip(torch_inputs, inputs)
    ]
    torch_leaves = [
        t.clone().requires_grad_(True) if diff else t
        for t, diff in zip(torch_inputs, differentiable)
    ]
    tg_leaves = [
        tg.from_torch(t, requires_grad=diff) if isinstance(t, torch.Tensor) else t
        for t, diff in zip(torch_inputs, differentiable)
    ]

    torch_outputs = _as_tuple(torch_fn(*torch_leaves))
    tg_outputs = _as_tuple(tg_fn(*tg_leaves))
    if len(torch_outputs) != len(tg_outputs):
        raise ParityError(
            f"tritongrad returned {len(tg_outputs)} outputs, torch {len(torch_outputs)}", [])

    comparisons = []
    for i, (ours, ref) in enumerate(zip(tg_outputs, torch_outputs)):
        r, a = _tolerance(ref, dtype, tf32, rtol, atol)
        comparisons.append(compare(f"output {i}", ours.torch(), ref, r, a, check_dtype=True))
    if not check_grads or not any(differentiable):
        return comparisons

    if grad_outputs is None:
        torch_grads_out = random_grad_outputs(torch_outputs)
    else:
        torch_grads_out = [
            None if g is None else _to_torch_input(g, None, device).to(o.dtype)
            for g, o in zip(_as_tuple(grad_outputs), torch_outputs)
        ]
    pairs = [(o, g) for o, g in zip(torch_outputs, torch_grads_out) if g is not None]
    torch_leaf_list = [t for t, d in zip(torch_leaves, differentiable) if d]
    torch_grads = torch.autograd.grad(
        [o for o, _ in pairs], torch_leaf_list, [g for _, g in pairs], allow_unused=True
    )
    tg_pairs = [(o, tg.from_torch(g)) for o, g in zip(tg_outputs, torch_grads_out)
                if g is not None and o.requires_grad]
    tg_leaf_list = [t for t, d in zip(tg_leaves, differentiable) if d]
    if tg_pairs:
        tg_grads = tg.autograd.grad([o for o, _ in tg_pairs], tg_leaf_list,
                                    [g for _, g in tg_pairs], allow_unused=True)
    else:
        tg_grads = [None] * len(tg_leaf_list)

    input_numbers = [i for i, d in enumerate(differentiable) if d]
    for index, ours, ref, leaf in zip(input_numbers, tg_grads, torch_grads, torch_leaf_list):
        name = f"grad of input {index}"
        if ours is None and ref is None:
            continue
        ours_t = torch.zeros_like(leaf) if ours is None else ours.torch()
        ref_t = torch.zeros_like(leaf) if ref is None else ref
        r, a = _tolerance(leaf, dtype, tf32, rtol, atol)
        comparisons.append(compare(name, ours_t, ref_t, r, a, check_dtype=True))
    return comparisons


def _tolerance(ref, dtype, tf32, rtol, atol) -> tuple:
    table_rtol, table_atol = tolerance_for(dtype or ref.dtype, tf32=tf32)
    return (table_rtol if rtol is None else rtol), (table_atol if atol is None else atol)


def assert_parity(
    tg_fn: Callable,
    torch_fn: Callable,
    *inputs: Any,
    dtype: torch.dtype | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    grad_outputs: list | None = None,
    tf32: bool = False,
) -> list[Comparison]:
    """Feed the same values to ``tg_fn`` (tg Tensors) and ``torch_fn`` (torch
    tensors), run forward and backward in both, and compare every output and
    the gradient of every floating input at the per-dtype tolerance.

    ``inputs``: numpy arrays, torch tensors (views keep their strides) or plain
    values. ``grad_outputs`` default: seeded random values, not ones.
    Raises ParityError (an AssertionError) naming the failing output or input
    gradient, the worst element's index, both values, the errors and the tolerance."""
    comparisons = run_parity(tg_fn, torch_fn, *inputs, dtype=dtype, atol=atol, rtol=rtol,
                             grad_outputs=grad_outputs, tf32=tf32)
    failures = [c for c in comparisons if not c.ok]
    if failures:
        raise ParityError("parity with torch failed:\n  "
                          + "\n  ".join(c.message() for c in failures),
                          comparisons)
    return comparisons
