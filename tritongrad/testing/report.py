"""The parity report: every op case x dtype x shape, forward and every input
gradient against the op's torch reference, as a table (and JSON).

    python -m tritongrad parity [--ops OPS] [--dtypes DTYPES] [--json PATH] [--cases MODULE]

Exits 1 when any row fails (or errors), 0 otherwise. Oracle code: torch
computes here only to judge.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch

from .cases import REPORT_DTYPES, ParityCase, Spec, all_cases, select
from .compare import Comparison
from .parity import run_parity
from .tolerances import tolerance_for

DTYPE_NAMES = {
    "float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
    "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16, "float64": torch.float64, "fp64": torch.float64,
    "double": torch.float64,
}


@dataclass
class Measure:
    """Max abs and max rel error of one output or one input gradient."""

    name: str
    max_abs: float
    max_rel: float
    ok: bool
    detail: str = ""  # the worst element, when it failed


@dataclass
class Row:
    op: str
    function: str
    dtype: str
    shape: str
    status: str  # PASS | FAIL | ERROR | SKIP
    rtol: float = float("nan")
    atol: float = float("nan")
    outputs: list = field(default_factory=list)  # [Measure]
    grads: list = field(default_factory=list)  # [Measure]
    error: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in ("FAIL", "ERROR")

    def forward_errors(self) -> tuple:
        return _worst(self.outputs)


def _worst(measures: list) -> tuple:
    if not measures:
        return float("nan"), float("nan")
    return max(m.max_abs for m in measures), max(m.max_rel for m in measures)


def _measure(c: Comparison) -> Measure:
    return Measure(c.name, c.max_abs, c.max_rel, c.ok, "" if c.ok else c.message())


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def run_row(case: ParityCase, spec: Spec, dtype: torch.dtype, seed: int = 0) -> Row:
    """One op x dtype x shape: forward and backward against the reference."""
    row = Row(case.name, case.function.__name__, dtype_name(dtype), spec.label, "PASS")
    if dtype not in case.dtypes:
        row.status, row.error = "SKIP", f"{case.name} has no {dtype_name(dtype)} kernels"
        return row
    rtol, atol = case.tolerance(dtype)
    table_rtol, table_atol = tolerance_for(dtype, tf32=case.tf32)
    row.rtol = table_rtol if rtol is None else rtol
    row.atol = table_atol if atol is None else atol
    start = time.perf_counter()
    try:
        comparisons = run_parity(case.tg_callable(), case.torch_callable(),
                                 *case.args(spec, dtype, seed), dtype=dtype, rtol=row.rtol,
                                 atol=row.atol, tf32=case.tf32)
    except Exception as error:  # noqa: BLE001 - a crashing op is a failed row, not a crash
        row.status, row.error = "ERROR", f"{type(error).__name__}: {error}"
        row.seconds = time.perf_counter() - start
        return row
    row.seconds = time.perf_counter() - start
    row.outputs = [_measure(c) for c in comparisons if c.name.startswith("output")]
    row.grads = [_measure(c) for c in comparisons if c.name.startswith("grad")]
    if not all(c.ok for c in comparisons):
        row.status = "FAIL"
    return row


def run_report(ops: list | None = None, dtypes: list | tuple | None = None,
               cases: list | None = None, extra_modules: list | tuple = (),
               progress=None) -> list[Row]:
    """Rows for every selected case x dtype x shape. ``ops`` filters by case or
    Function name; ``dtypes`` defaults to fp32, fp16 and bf16 (a case without
    kernels for a requested dtype gives SKIP rows)."""
    cases = select(cases if cases is not None else all_cases(extra_modules), ops)
    dtypes = tuple(dtypes) if dtypes else REPORT_DTYPES
    rows = []
    for case in cases:
        for dtype in dtypes:
            for spec in case.specs:
                row = run_row(case, spec, dtype)
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.1e}"  # NaN: nothing to show


def _tol(value: float) -> str:
    return "-" if value != value else f"{value:g}"


def _grad_cell(m: Measure) -> str:
    label = m.name.replace("grad of input ", "d")
    return f"{label} {_fmt(m.max_abs)}/{_fmt(m.max_rel)}" + ("" if m.ok else "!")


def format_table(rows: list[Row]) -> str:
    """One line per row: op, dtype, shape, forward max abs / max rel, each input
    gradient's max abs / max rel (``d<i>`` = gradient of input i; ``!`` marks the
    failing ones), the tolerance and the status; failures' details follow."""
    header = ("op", "dtype", "shape", "fwd abs", "fwd rel", "grads abs/rel", "rtol", "atol",
              "status")
    lines = []
    for r in rows:
        fwd_abs, fwd_rel = r.forward_errors()
        grads = "  ".join(_grad_cell(m) for m in r.grads) or "-"
        lines.append((r.op, r.dtype, r.shape, _fmt(fwd_abs), _fmt(fwd_rel), grads,
                      _tol(r.rtol), _tol(r.atol), r.status))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    sep = "  "
    out = [sep.join(h.ljust(w) for h, w in zip(header, widths)),
           sep.join("-" * w for w in widths)]
    out += [sep.join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    failed = [r for r in rows if r.failed]
    n_pass = sum(r.status == "PASS" for r in rows)
    n_skip = sum(r.status == "SKIP" for r in rows)
    out.append("")
    out.append(f"{n_pass} passed, {len(failed)} failed, {n_skip} skipped "
               f"({len(rows)} rows)")
    for r in failed:
        out.append(f"{r.status} {r.op} [{r.dtype}, {r.shape}]:")
        if r.error:
            out.append(f"    {r.error}")
        for m in r.outputs + r.grads:
            if not m.ok:
                out.append(f"    {m.detail}")
    return "\n".join(out)


def to_json(rows: list[Row]) -> dict:
    def clean(value):  # JSON has no NaN / inf
        if isinstance(value, float) and (value != value or value in (float("inf"),
                                                                      float("-inf"))):
            return None if value != value else str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    import tritongrad

    return {
        "device": str(tritongrad.device()),
        "interpreter": tritongrad.is_interpreter(),
        "passed": sum(r.status == "PASS" for r in rows),
        "failed": sum(r.failed for r in rows),
        "skipped": sum(r.status == "SKIP" for r in rows),
        "rows": [clean(asdict(r)) for r in rows],
    }


def parse_dtypes(text: str | None) -> tuple | None:
    if not text:
        return None
    dtypes = []
    for name in text.split(","):
        key = name.strip().lower().replace("torch.", "")
        if key not in DTYPE_NAMES:
            raise argparse.ArgumentTypeError(
                f"unknown dtype {name!r}; use float32, float16, bfloat16 or float64")
        dtypes.append(DTYPE_NAMES[key])
    return tuple(dtypes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tritongrad parity",
        description="Forward and gradient parity of every tritongrad op against PyTorch.")
    parser.add_argument("--ops", help="comma-separated op (case) or Function names; default all")
    parser.add_argument("--dtypes", type=parse_dtypes,
                        help="comma-separated dtypes (default float32,float16,bfloat16)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    parser.add_argument("--cases", action="append", default=[], metavar="MODULE",
                        help="import extra cases from MODULE's CASES list (repeatable; also "
                             "$TRITONGRAD_PARITY_CASES, comma-separated)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--quiet", action="store_true", help="print failures and the summary only")
    return parser


def main(argv: list | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cases = select(all_cases(args.cases), args.ops.split(",") if args.ops else None)
    except (LookupError, ImportError, ValueError) as error:
        print(f"parity: {error}", file=sys.stderr)
        return 2
    if args.list:
        for case in cases:
            dtypes = ",".join(dtype_name(d) for d in case.dtypes)
            print(f"{case.name:28s} {case.function.__module__}.{case.function.__name__}"
                  f"  [{dtypes}]  {len(case.specs)} shapes")
        return 0
    import tritongrad

    # Masked-off lanes of interpreted kernels may divide garbage by zero; numpy warns
    # about values no kernel stores.
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="triton.runtime.interpreter")
    mode = "Triton interpreter (CPU)" if tritongrad.is_interpreter() else "GPU"
    print(f"tritongrad parity report on {tritongrad.device()} ({mode}), torch {torch.__version__}")
    start = time.perf_counter()
    rows = run_report(cases=cases, dtypes=args.dtypes)
    table = format_table(rows)
    if args.quiet:
        table = table[table.index("\n\n") + 2:] if "\n\n" in table else table
    print(table)
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(to_json(rows), handle, indent=1)
    return 1 if any(r.failed for r in rows) else 0
