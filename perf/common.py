"""The perf harness: timers, launch counters, result records and the report writers.

Every benchmark runs tritongrad and its torch equivalent in the same process on the same
inputs, so ratios are same-run ratios. On a GPU, times come from CUDA events (the median
of several repetitions after a warm-up); under Triton's interpreter (``--smoke``) from the
wall clock, and they are labelled interpreter timings: they prove the harness works and
say nothing about performance.

Ratios are always "higher is better for tritongrad": throughput ratios are ours / torch's,
time and launch-count ratios are torch's / ours (a speedup, or a saving). Smoke mode shows
no ratio in the table or the summary (the JSON keeps it): interpreter timings compare
nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import tritongrad as tg
from tritongrad import profiler

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "perf" / "results"
INTERPRETER_LABEL = "interpreter timings (Triton interpreter on CPU): NOT performance"


@dataclass
class Result:
    """One measured case. ``values`` holds the raw figures (times in ms, TFLOP/s, GB/s,
    bytes, launches) per implementation; ``ratio`` is the headline same-run ratio."""

    bench: str
    case: str
    metric: str  # what ``ours``/``theirs`` are: "ms", "TFLOP/s", "GB/s", "steps/s", "launches"
    ours: float | None
    theirs: float | None
    ratio: float | None
    target: float | None = None
    values: dict = field(default_factory=dict)
    note: str = ""
    target_on: str = "ratio"  # or a key of ``values`` (e.g. "fraction_of_hbm")

    @property
    def meets_target(self) -> bool | None:
        value = self.ratio if self.target_on == "ratio" else self.values.get(self.target_on)
        if self.target is None or value is None:
            return None
        return value >= self.target


class Harness:
    """Shared state of one perf run: mode, timers, budget and the collected results."""

    def __init__(self, smoke: bool, budget_s: float | None = None,
                 targets_only: bool = False) -> None:
        self.smoke = smoke
        # --targets: only the cases that carry an issue's target (a short first pass on a
        # lent GPU, so the numbers that decide an issue come out before anything else)
        self.targets_only = targets_only
        self.cuda = tg.device().type == "cuda"
        self.device = tg.device()
        self.results: list[Result] = []
        self.errors: list[dict] = []
        self.skipped: list[str] = []
        self.sweeps: dict = {}  # name -> {"x": [...], series: [...]} for plots
        self.started = time.perf_counter()
        self.budget_s = budget_s
        self._saved_check_labels: bool | None = None

    def __enter__(self) -> "Harness":
        # A bad label would make the loss NaN instead of raising; benchmarks skip the
        # host sync of the label check, as torch does (it checks with a device assert).
        import tritongrad.ops.loss as loss_ops

        self._saved_check_labels = loss_ops.CHECK_LABELS
        loss_ops.CHECK_LABELS = False
        return self

    def __exit__(self, *exc) -> bool:
        import tritongrad.ops.loss as loss_ops

        if self._saved_check_labels is not None:
            loss_ops.CHECK_LABELS = self._saved_check_labels
        return False

    # --- budget ---------------------------------------------------------------------
    def out_of_time(self) -> bool:
        return (self.budget_s is not None
                and time.perf_counter() - self.started > self.budget_s)

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        print(f"  (skipped, over the time budget: {what})", flush=True)

    # --- timing ----------------------------------------------------------------------
    @property
    def clock(self) -> str:
        if self.cuda:
            return ("single ops: triton.testing.do_bench (CUDA events, L2 flushed before each "
                    "call, median); training steps and loops: back-to-back calls with one "
                    "sync, host time included")
        return "wall clock, " + INTERPRETER_LABEL

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def time_ms(self, fn: Callable[[], Any], warmup: int | None = None,
                reps: int | None = None) -> float:
        """Median device milliseconds of one ``fn()`` call.

        On a GPU: ``triton.testing.do_bench`` (CUDA events around each call, the L2 cache
        flushed before each one), the method Triton's own benchmarks use. The flush keeps
        the device busy while the host launches the call, so the time is the device's,
        not the host's launch overhead (train_step and the ``loop`` figures measure that).
        ``warmup``/``reps`` then bound the milliseconds spent warming up and repeating."""
        if self.cuda and not self.smoke:
            import triton.testing

            return float(triton.testing.do_bench(
                fn, warmup=25 if warmup is None else max(warmup, 5),
                rep=100 if reps is None else max(5 * reps, 20), return_mode="median"))
        if self.smoke:
            warmup, reps = (1 if warmup is None else min(warmup, 1)), 1 if reps is None else \
                min(reps, 2)
        else:
            warmup = 3 if warmup is None else warmup
            reps = 20 if reps is None else reps
        for _ in range(warmup):
            fn()
        self.sync()
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            self.sync()
            samples.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(samples)

    def loop_ms(self, fn: Callable[[], Any], iters: int, warmup: int = 3) -> float:
        """Milliseconds per call of ``iters`` back-to-back calls, host overhead included
        (what a training loop sees): one sync before and after the loop."""
        if self.smoke:
            iters, warmup = min(iters, 2), min(warmup, 1)
        for _ in range(warmup):
            fn()
        self.sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        self.sync()
        return (time.perf_counter() - t0) * 1e3 / iters

    def graph_ms(self, fn: Callable[[], Any], calls: int = 10, reps: int = 10) -> float | None:
        """Device milliseconds per ``fn()`` with the launch overhead removed: ``calls`` calls
        captured in one CUDA graph, replayed ``reps`` times. None on CPU or if ``fn`` cannot
        be captured."""
        if not self.cuda or self.smoke:
            return None
        try:
            fn()
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="relaxed"):
                for _ in range(calls):
                    fn()
            graph.replay()
            torch.cuda.synchronize()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                graph.replay()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / (reps * calls)
        except Exception as error:
            print(f"  (graph timing unavailable: {type(error).__name__}: {error})")
            return None

    # --- counting ----------------------------------------------------------------------
    @staticmethod
    def tg_launches(fn: Callable[[], Any]) -> int:
        """Kernel launches of one ``fn()`` call, counted by the profiler."""
        with profiler.profile() as prof:
            fn()
        return prof.launches

    def torch_launches(self, fn: Callable[[], Any]) -> int | None:
        """CUDA kernels one ``fn()`` call of torch code launches (torch.profiler; memcpy and
        memset excluded), or None where that cannot be measured (CPU)."""
        if not self.cuda:
            return None
        try:
            from torch.autograd import DeviceType
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as torch_profile

            fn()
            torch.cuda.synchronize()
            with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
                fn()
                torch.cuda.synchronize()
            names = [e.name for e in prof.events() if e.device_type == DeviceType.CUDA]
            return sum(1 for n in names if not n.startswith(("Memcpy", "Memset")))
        except Exception as error:  # CUPTI missing, for example
            print(f"  (torch launch count unavailable: {error})")
            return None

    def peak_memory(self, fn: Callable[[], Any],
                    reset: Callable[[], Any] | None = None) -> int | None:
        """Peak bytes allocated by one ``fn()`` call above what was allocated before it.
        ``reset`` runs first, outside the measurement: a benchmark whose ``fn`` drops the
        last call's gradients must drop them there, or the peak comes out net of the
        gradient buffers that the call frees and then allocates again."""
        if not self.cuda:
            return None
        if reset is not None:
            reset()
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    # --- results -------------------------------------------------------------------------
    def add(self, bench: str, case: str, metric: str, ours: float | None,
            theirs: float | None, *, higher_is_better: bool, target: float | None = None,
            note: str = "", **values: Any) -> Result:
        ratio = None
        if ours and theirs:
            ratio = ours / theirs if higher_is_better else theirs / ours
        result = Result(bench, case, metric, ours, theirs, ratio,
                        target if not self.smoke else None, values, note)
        self.results.append(result)
        # Smoke timings are not performance: no ratio on screen (the JSON keeps it)
        shown = f"{ratio:.2f}x" if ratio is not None and not self.smoke else "-"
        print(f"  {bench:<14} {case:<50} {metric:<8} ours {_fmt(ours):>10}  "
              f"torch {_fmt(theirs):>10}  ratio {shown}", flush=True)
        return result

    def sweep_point(self, sweep: str, x: Any, ylabel: str, **series: float | None) -> None:
        """A point of a plotted sweep: ``series`` maps a line's name to its value at x."""
        entry = self.sweeps.setdefault(sweep, {"ylabel": ylabel, "series": {}})
        for name, value in series.items():
            if value is not None:
                entry["series"].setdefault(name, []).append([x, value])


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


# ----------------------------------------------------------------------------- metadata


def device_slug() -> str:
    if tg.device().type == "cuda":
        name = torch.cuda.get_device_name(tg.device())
    else:
        name = "cpu-interpreter"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def git_commit() -> str:
    """HEAD's commit (with '-dirty' for local changes), TRITONGRAD_COMMIT, or 'unknown'."""
    if os.environ.get("TRITONGRAD_COMMIT"):
        return os.environ["TRITONGRAD_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                   cwd=ROOT, capture_output=True, text=True, timeout=10)
            return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def versions() -> dict:
    import triton

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "triton": triton.__version__, "tritongrad": getattr(tg, "__version__", "?"),
            "cuda": torch.version.cuda}
    if tg.device().type == "cuda":
        props = torch.cuda.get_device_properties(tg.device())
        info["gpu"] = props.name
        info["sm_count"] = props.multi_processor_count
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=10)
            info["driver"] = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    return info


# ----------------------------------------------------------------------------- reports


def write_reports(h: Harness, out_dir: Path, wall_s: float, plots: bool = True) -> dict:
    """The JSON record, the markdown summary and the sweep plots; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    date = _dt.date.today().isoformat()
    mode = ("smoke-" if h.smoke else "") + ("targets-" if h.targets_only else "")
    stem = f"{device_slug()}-{mode}{date}"
    peaks = profiler.peaks_for() if h.cuda else None
    record = {
        "device": torch.cuda.get_device_name(h.device) if h.cuda else "cpu (Triton interpreter)",
        "date": date,
        "timestamp": _dt.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "versions": versions(),
        "mode": ("smoke" if h.smoke else "full") + (" (targets only)" if h.targets_only else ""),
        "interpreter": not h.cuda,
        "timing": h.clock,
        "peaks": asdict(peaks) if peaks else None,
        "wall_s": round(wall_s, 1),
        "results": [dict(asdict(r), meets_target=r.meets_target) for r in h.results],
        "sweeps": h.sweeps,
        "skipped": h.skipped,
        "errors": h.errors,
    }
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(record, indent=1, default=str) + "\n")
    paths["markdown"].write_text(markdown_summary(record))
    if plots:
        paths.update(plot_sweeps(h, out_dir, stem))
    return {k: str(v) for k, v in paths.items()}


def markdown_summary(record: dict) -> str:
    lines = [f"# tritongrad perf: {record['device']}, {record['date']}", ""]
    smoke = record["mode"].startswith("smoke")  # also "smoke (targets only)"
    lines.append(f"commit `{record['commit']}`; "
                 + ", ".join(f"{k} {v}" for k, v in record["versions"].items() if v))
    lines.append("")
    lines.append(f"Mode: {record['mode']}. Timing: {record['timing']}.")
    if record.get("interpreter"):
        lines.append("")
        lines.append(f"**{INTERPRETER_LABEL}.** These figures only show that the harness runs.")
    elif smoke:
        lines.append("")
        lines.append("Smoke mode: tiny sizes, launch-bound; not representative performance.")
    lines.append("")
    if smoke:
        lines.append("Ratios are not shown in smoke mode (the JSON keeps them).")
    else:
        lines.append("Ratios are same-run and higher is better for tritongrad (throughput: "
                     "ours / torch; time and launches: torch / ours).")
    lines.append("")
    lines.append("| bench | case | metric | tritongrad | torch | ratio | target |")
    lines.append("|---|---|---|---:|---:|---:|---:|")
    for r in record["results"]:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None and not smoke else "-"
        target = "-"
        if r["target"] is not None:
            unit = "x" if r["target_on"] == "ratio" else f" {r['target_on']}"
            target = f"{r['target']:g}{unit} " + ("ok" if r["meets_target"] else "**missed**")
        lines.append(f"| {r['bench']} | {r['case']} | {r['metric']} | {_fmt(r['ours'])} | "
                     f"{_fmt(r['theirs'])} | {ratio} | {target} |")
    if record["skipped"]:
        lines += ["", "Skipped (time budget): " + ", ".join(record["skipped"])]
    if record["errors"]:
        lines += ["", "Errors:"] + [f"- {e['bench']}: {e['error']}" for e in record["errors"]]
    return "\n".join(lines) + "\n"


def plot_sweeps(h: Harness, out_dir: Path, stem: str) -> dict:
    """One PNG per sweep when matplotlib is installed (it is optional)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (matplotlib not installed: no plots)")
        return {}
    paths = {}
    for name, sweep in h.sweeps.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for series, points in sweep["series"].items():
            ax.plot([str(x) for x, _ in points], [y for _, y in points], marker="o",
                    label=series)
        ax.set_title(f"{name} ({'interpreter, not performance' if h.smoke else h.clock})")
        ax.set_ylabel(sweep["ylabel"])
        ax.tick_params(axis="x", rotation=45)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{stem}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths[f"plot:{name}"] = path
    return paths


def run_bench(h: Harness, name: str, fn: Callable[[Harness], None]) -> None:
    """Run one benchmark module, recording (not raising) its failure."""
    if h.out_of_time():
        h.skip(name)
        return
    print(f"[{name}]", flush=True)
    t0 = time.perf_counter()
    try:
        fn(h)
    except Exception as error:  # keep the other benchmarks' results
        traceback.print_exc()
        h.errors.append({"bench": name, "error": f"{type(error).__name__}: {error}"})
    print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
