"""Shadow mode: every autograd node is checked against its op's torch reference
while a real model runs.

    with tg.testing.shadow() as sh:
        loss = model(x)
        loss.backward()
    sh.report()          # the table: one line per node

For each node recorded inside the block, the op's torch reference (registered
in ``references.py``, or the Function's own ``torch_reference``) runs on copies
of the node's actual inputs, and the node's forward output is compared with it.
In backward, the gradients the node returns are compared with
``torch.autograd.grad`` of the reference, fed the *same* incoming gradients the
node received. Every node is judged locally, on its own inputs, so an error does
not spread to the nodes after it: the first node over tolerance is the one that
is wrong. Nodes whose Function has no reference are listed as unchecked.

Shadow mode costs nothing when off: it only appends to
``autograd.function.apply_observers`` and ``autograd.engine.backward_observers``
inside the block, and those lists are empty otherwise. Inside the block it keeps
a torch copy of every node's inputs and outputs until the block ends.

Oracle code: torch computes here only to judge.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from .compare import Comparison, compare
from .references import reference_for
from .tolerances import tolerance_for

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ShadowMismatch(AssertionError):
    """A node's forward output or gradient differs from its torch reference."""

    def __init__(self, message: str, record: "NodeRecord"):
        super().__init__(message)
        self.record = record


@dataclass
class NodeRecord:
    """One autograd node seen in shadow mode.

    index: its position in forward order among the nodes recorded in the block
    (0 = the first op run). backward_index: the order in which backward reached
    it (None when backward never ran it). status: 'ok', 'FAIL', 'unchecked' (no
    torch reference), or 'error' (the reference could not run)."""

    index: int
    op: str
    sequence_nr: int
    input_shapes: list
    dtype: str
    output_shapes: list
    where: str = ""
    status: str = "ok"
    forward: list = field(default_factory=list)  # [Comparison]
    backward: list = field(default_factory=list)  # [Comparison]
    backward_index: int | None = None
    note: str = ""
    _torch_inputs: list = field(default_factory=list, repr=False)
    _torch_outputs: tuple = field(default=(), repr=False)

    @property
    def checked(self) -> bool:
        return self.status not in ("unchecked",)

    def failures(self) -> list:
        return [c for c in self.forward + self.backward if not c.ok]

    def describe(self) -> str:
        shapes = ", ".join("x".join(map(str, s)) if s else ("scalar" if s == () else "-")
                           for s in self.input_shapes)
        text = (f"node #{self.index} {self.op} (forward position {self.index}, autograd "
                f"sequence_nr {self.sequence_nr}"
                + (f", backward step {self.backward_index}" if self.backward_index is not None
                   else "")
                + f"), inputs [{shapes}], dtype {self.dtype}")
        return text + (f", called at {self.where}" if self.where else "")


def _shape_of(value: Any):
    from ..tensor import Tensor

    return tuple(value.shape) if isinstance(value, Tensor) else None


def _call_site() -> str:
    """The innermost caller outside the tritongrad package: where the user ran the op."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep) and "kernels" + os.sep not in filename:
            shown = os.path.relpath(filename) if filename.startswith(os.getcwd()) else filename
            return f"{shown}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return ""


class shadow:
    """Context manager: check every node against its torch reference.

    on_mismatch: 'raise' (default) raises ShadowMismatch at the end of the block
    naming the first node over tolerance (the block's own exception, if any,
    wins); 'warn' warns instead; 'ignore' only records. stop_at_first=True raises
    at the moment the first mismatch is found instead, with the faulty op on the
    stack. rtol/atol override the per-dtype table; tf32 uses its TF32 row for
    fp32 (for models whose matmuls run in TF32)."""

    def __init__(self, on_mismatch: str = "raise", stop_at_first: bool = False,
                 rtol: float | None = None, atol: float | None = None, tf32: bool = False):
        if on_mismatch not in ("raise", "warn", "ignore"):
            raise ValueError(
                f"on_mismatch must be 'raise', 'warn' or 'ignore', got {on_mismatch!r}")
        self.on_mismatch = on_mismatch
        self.stop_at_first = stop_at_first
        self.rtol, self.atol, self.tf32 = rtol, atol, tf32
        self.records: list[NodeRecord] = []
        self._by_node: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._failures: list[NodeRecord] = []
        self._backward_steps = 0
        self._active = False
        self._raised = False  # stop_at_first already raised for the first failure

    # --- results ------------------------------------------------------------------------
    @property
    def first_failure(self) -> NodeRecord | None:
        """The first node found over tolerance (in the order checks ran)."""
        return self._failures[0] if self._failures else None

    @property
    def failures(self) -> list[NodeRecord]:
        return list(self._failures)

    @property
    def unchecked(self) -> list[NodeRecord]:
        return [r for r in self.records if r.status == "unchecked"]

    @property
    def ok(self) -> bool:
        return not self._failures

    def failure_message(self, record: NodeRecord | None = None) -> str:
        record = record or self.first_failure
        if record is None:
            return "shadow: every checked node matches its torch reference"
        details = [c.message() for c in record.failures()] or [record.note]
        phase = "forward" if any(not c.ok for c in record.forward) else "backward"
        if record.status == "error":
            phase = "reference"
        return (f"shadow: first mismatch ({phase}) at {record.describe()}:\n  "
                + "\n  ".join(details) + "\n(sh.report() prints every node)")

    def table(self) -> str:
        """One line per node: position, op, input shapes, dtype, the forward error,
        each input gradient's error (max abs / max rel) and the status."""
        header = ("#", "op", "inputs", "dtype", "fwd abs/rel", "grads abs/rel", "bwd", "status")
        lines = []
        for r in self.records:
            shapes = ",".join("x".join(map(str, s)) if s else ("()" if s == () else "-")
                              for s in r.input_shapes)
            fwd = _cell(r.forward)
            grads = "  ".join(f"{c.name.replace('grad of input ', 'd')} "
                              f"{c.max_abs:.1e}/{c.max_rel:.1e}{'' if c.ok else '!'}"
                              for c in r.backward) or "-"
            lines.append((str(r.index), r.op, shapes, r.dtype, fwd, grads,
                          "-" if r.backward_index is None else str(r.backward_index), r.status))
        widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(header)]
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
               "  ".join("-" * w for w in widths)]
        out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
        n_checked = sum(r.checked for r in self.records)
        out.append("")
        out.append(f"{len(self.records)} nodes: {n_checked - len(self._failures)} ok, "
                   f"{len(self._failures)} failed, {len(self.unchecked)} unchecked "
                   "(no torch reference)")
        if self.unchecked:
            names = sorted({r.op for r in self.unchecked})
            out.append("unchecked ops: " + ", ".join(names)
                       + " (register_reference(...) or torch_reference = staticmethod(...))")
        if self._failures:
            out.append(self.failure_message())
        return "\n".join(out)

    def report(self, file=None) -> str:
        """Print the table (to ``file``, default stdout) and return it."""
        text = self.table()
        print(text, file=file if file is not None else sys.stdout)
        return text

    # --- context manager -----------------------------------------------------------------
    def __enter__(self) -> "shadow":
        from ..autograd import engine, function

        if self._active:
            raise RuntimeError("this shadow() is already active")
        self._active = True
        function.apply_observers.append(self._on_apply)
        engine.backward_observers.append(self._on_backward)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        from ..autograd import engine, function

        if self._on_apply in function.apply_observers:
            function.apply_observers.remove(self._on_apply)
        if self._on_backward in engine.backward_observers:
            engine.backward_observers.remove(self._on_backward)
        self._active = False
        for record in self.records:  # drop the torch copies; keep the numbers
            record._torch_inputs, record._torch_outputs = [], ()
        self._by_node = weakref.WeakKeyDictionary()
        if exc_type is None and self._failures and not self._raised:
            if self.on_mismatch == "raise":
                raise ShadowMismatch(self.failure_message(), self.first_failure)
            if self.on_mismatch == "warn":
                warnings.warn(self.failure_message(), stacklevel=2)
        return False

    # --- observers -----------------------------------------------------------------------
    def _tolerance(self, dtype: torch.dtype) -> tuple:
        try:
            rtol, atol = tolerance_for(dtype, tf32=self.tf32)
        except KeyError:  # an integer output: exact
            rtol, atol = 0.0, 0.0
        return ((rtol if self.rtol is None else self.rtol),
                (atol if self.atol is None else self.atol))

    def _fail(self, record: NodeRecord) -> None:
        if record.status not in ("FAIL", "error"):
            record.status = "FAIL"
        if record not in self._failures:
            self._failures.append(record)
            if self.stop_at_first and not self._raised:
                self._raised = True
                raise ShadowMismatch(self.failure_message(record), record)

    def _on_apply(self, ctx, args: tuple, result: Any) -> None:
        from ..tensor import Tensor

        outputs = result if isinstance(result, tuple) else (result,)
        tensors = [a for a in args if isinstance(a, Tensor)]
        floats = [t for t in tensors if t.is_floating_point()] or tensors
        dtypes = sorted({str(t.dtype).replace("torch.", "") for t in floats})
        record = NodeRecord(
            index=len(self.records), op=ctx.function_cls.__name__, sequence_nr=ctx.sequence_nr,
            input_shapes=[_shape_of(a) for a in args], dtype="/".join(dtypes) or "-",
            output_shapes=[_shape_of(o) for o in outputs], where=_call_site())
        self.records.append(record)
        reference = reference_for(ctx.function_cls)
        if reference is None:
            record.status = "unchecked"
            return
        self._by_node[ctx] = record
        torch_inputs = [_torch_copy(a) for a in args]
        try:
            with torch.enable_grad():
                expected = reference(*torch_inputs)
        except Exception as error:  # noqa: BLE001 - reported as this node's failure
            record.status, record.note = "error", (
                f"the torch reference of {record.op} raised {type(error).__name__}: {error}")
            self._fail(record)
            return
        expected = expected if isinstance(expected, tuple) else (expected,)
        record._torch_inputs, record._torch_outputs = torch_inputs, expected
        if len(expected) != len(outputs):
            record.status, record.note = "error", (
                f"{record.op} returned {len(outputs)} outputs, its torch reference "
                f"{len(expected)}")
            self._fail(record)
            return
        for i, (ours, ref) in enumerate(zip(outputs, expected)):
            if not isinstance(ours, Tensor) or not isinstance(ref, torch.Tensor):
                continue
            rtol, atol = self._tolerance(ref.dtype)
            record.forward.append(compare(f"output {i}", ours._data, ref, rtol, atol,
                                          check_dtype=True))
        if any(not c.ok for c in record.forward):
            self._fail(record)

    def _on_backward(self, node, grad_outputs: list, grad_inputs: tuple) -> None:
        record = self._by_node.get(node) if _weakrefable(node) else None
        if record is None or not record._torch_outputs:
            return
        record.backward_index = self._backward_steps
        self._backward_steps += 1
        pairs = [(ref, g) for ref, g in zip(record._torch_outputs, grad_outputs)
                 if isinstance(ref, torch.Tensor) and ref.requires_grad and g is not None]
        leaves = [(i, t) for i, t in enumerate(record._torch_inputs)
                  if isinstance(t, torch.Tensor) and t.requires_grad]
        needs = getattr(node, "needs_input_grad", ())
        leaves = [(i, t) for i, t in leaves if i >= len(needs) or needs[i]]
        if not pairs or not leaves:
            return
        try:
            expected = torch.autograd.grad(
                [ref for ref, _ in pairs], [t for _, t in leaves],
                [g._data.to(ref.dtype) for ref, g in pairs], retain_graph=True,
                allow_unused=True)
        except Exception as error:  # noqa: BLE001
            record.status, record.note = "error", (
                f"torch.autograd.grad of {record.op}'s reference raised "
                f"{type(error).__name__}: {error}")
            self._fail(record)
            return
        for (i, leaf), ref in zip(leaves, expected):
            ours = grad_inputs[i] if i < len(grad_inputs) else None
            if ours is None and ref is None:
                continue
            ours_t = torch.zeros_like(leaf) if ours is None else ours._data
            ref_t = torch.zeros_like(leaf) if ref is None else ref
            rtol, atol = self._tolerance(leaf.dtype)
            record.backward.append(compare(f"grad of input {i}", ours_t, ref_t, rtol, atol,
                                           check_dtype=True))
        if any(not c.ok for c in record.backward):
            self._fail(record)


def _weakrefable(node) -> bool:
    return hasattr(node, "__weakref__")


def _torch_copy(value: Any) -> Any:
    """A detached torch copy of a tg Tensor argument (a leaf requiring grad when the
    Tensor does); lists and tuples are copied element-wise; other values pass."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        copy = value._data.detach().clone()
        if value.requires_grad and copy.is_floating_point():
            copy.requires_grad_(True)
        return copy
    if isinstance(value, (list, tuple)):
        return type(value)(_torch_copy(v) for v in value)
    return value


def _cell(comparisons: list[Comparison]) -> str:
    if not comparisons:
        return "-"
    worst_abs = max(c.max_abs for c in comparisons)
    worst_rel = max(c.max_rel for c in comparisons)
    return f"{worst_abs:.1e}/{worst_rel:.1e}" + ("" if all(c.ok for c in comparisons) else "!")
