"""A kernel profiler: where the time goes, per op, forward and backward.

    with tg.profiler.profile() as prof:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    print(prof.table())
    prof.export_chrome_trace("trace.json")   # opens in Perfetto / chrome://tracing
    prof.launches                            # kernel launches, counted on CPU too

Every kernel goes through ``kernels._launch.launch`` (public as ``tg.profiler.launch``);
the profiler subscribes to that hook (``kernels/`` knows nothing of graphs) and attributes
each launch to the op running at that moment, ``autograd.function.current_op()`` ->
(op name, phase, node). Phases:

- 'forward' / 'backward': an autograd op (``Function``); the engine's own gradient sums
  and copies are the op 'AccumulateGrad', phase 'backward';
- 'optimizer': ``Optimizer.step`` and ``zero_grad`` (ops '<class>.step', e.g. 'Adam.step')
  and ``clip_grad_norm_``;
- 'other': anything else (a user's own kernel): a row named after the innermost
  ``record(name)`` scope, else after the kernel.

Each launch is in exactly one of those rows, so they add up to ``prof.launches``. A
``record(name)`` scope also gets a row of its own, phase 'record', marked *inclusive*: it
counts every launch made inside it, in ops and in nested scopes too, so it repeats
launches the other rows already count.

Time is measured with CUDA events on a GPU and with the host's wall clock under Triton's
interpreter; ``prof.clock`` says which, and the table and the trace carry that label.
On a GPU the events sit in Triton's launch enter/exit hooks, right around the driver
launch: a first launch's JIT compile, an autotuner's trial runs and the Python of the
launch path are not kernel time. Interpreter timings measure numpy emulation, not
performance.

FLOPs and bytes are the launcher's analytic counts (``LaunchInfo.flops``/``bytes_moved``),
so achieved TFLOP/s = flops / time and GB/s = bytes / time; "% of peak" compares them with
the device's HBM bandwidth and its dense peak FLOP rate for the launch's compute dtype from
``PEAKS`` (overridable): the dtype of its first tensor argument, 'tf32' for fp32 products
with TF32 inputs (a ``tl.dot`` launched with ``INPUT_PRECISION="tf32"``), and fp32 (the
CUDA-core rate) for a launch with no float tensor argument (the multi-tensor optimizer and
clip kernels read pointer tables). A rate the peaks table lacks shows as 'n/a'.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ._device import DEVICE
from .autograd.function import current_op
from .kernels._launch import (
    LaunchInfo,
    LaunchObserver,
    add_driver_hooks,
    add_launch_observer,
    launch,
    remove_driver_hooks,
    remove_launch_observer,
)

__all__ = [
    "DevicePeaks",
    "PEAKS",
    "KernelEvent",
    "OpStats",
    "Profile",
    "launch",
    "peaks_for",
    "profile",
    "record",
]

# ----------------------------------------------------------------------------- peaks


@dataclass(frozen=True)
class DevicePeaks:
    """Datasheet peaks of one GPU: dense (no sparsity) TFLOP/s per compute dtype and HBM
    bandwidth in GB/s (1e9 bytes/s). ``tflops`` keys: 'bf16', 'fp16', 'tf32', 'fp32', 'fp64';
    a missing key (or ``hbm_gbps=None``) shows as 'n/a' in the table."""

    name: str
    tflops: dict
    hbm_gbps: float | None

    def tflops_for(self, dtype: str) -> float | None:
        return self.tflops.get(dtype)


# Dense datasheet figures (NVIDIA). fp32 is the non-tensor-core rate; fp64 the tensor-core one.
PEAKS: dict[str, DevicePeaks] = {
    "H100": DevicePeaks("NVIDIA H100 SXM",
                        {"bf16": 989.0, "fp16": 989.0, "tf32": 495.0, "fp32": 67.0, "fp64": 67.0},
                        3350.0),
    "H100 PCIE": DevicePeaks("NVIDIA H100 PCIe",
                             {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0,
                              "fp64": 51.0}, 2000.0),
    "H200": DevicePeaks("NVIDIA H200",
                        {"bf16": 989.0, "fp16": 989.0, "tf32": 495.0, "fp32": 67.0, "fp64": 67.0},
                        4800.0),
    "A100": DevicePeaks("NVIDIA A100 SXM 80GB",
                        {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5, "fp64": 19.5},
                        2039.0),
    "A100-PCIE-40GB": DevicePeaks("NVIDIA A100 PCIe 40GB",
                                  {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5,
                                   "fp64": 19.5}, 1555.0),
}

_DTYPE_KEYS = {
    torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.float64: "fp64",
    "bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float64": "fp64",
}


_COMPUTE_KEYS = ("bf16", "fp16", "tf32", "fp32", "fp64")


def _dtype_key(dtype: Any) -> str:
    """'bf16', 'fp16', 'tf32', 'fp32' or 'fp64' for a torch dtype or a name."""
    if isinstance(dtype, str) and dtype in _COMPUTE_KEYS:
        return dtype
    key = _DTYPE_KEYS.get(dtype)
    if key is None:
        raise ValueError(f"profiler: unknown compute dtype {dtype!r}; use a torch float dtype "
                         "or one of 'bf16', 'fp16', 'tf32', 'fp32', 'fp64'")
    return key


def _launch_dtype(info: LaunchInfo) -> str | None:
    """The compute dtype key whose peak a launch's FLOPs are judged against: its first
    tensor's dtype, 'tf32' for fp32 inputs that ``tl.dot`` rounds to TF32; None without a
    float tensor (the table then uses fp32, the CUDA-core rate)."""
    extra = info.extra or {}
    key = _DTYPE_KEYS.get(extra.get("dtype"))
    if key == "fp32" and extra.get("input_precision") == "tf32":
        return "tf32"
    return key


def _resolve_peaks(peaks: DevicePeaks | str | None) -> DevicePeaks | None:
    """A ``DevicePeaks`` from the ``peaks=`` argument: a ``PEAKS`` key or a device name
    containing one; ValueError for a name that matches none (no silent fallback)."""
    if peaks is None or isinstance(peaks, DevicePeaks):
        return peaks
    if not isinstance(peaks, str):
        raise TypeError(f"profile: peaks must be a DevicePeaks, a PEAKS key or a device name, "
                        f"got {type(peaks).__name__}")
    found = PEAKS.get(peaks.upper()) or peaks_for(peaks)
    if found is None:
        raise ValueError(f"profile: unknown peaks {peaks!r}; known: {', '.join(PEAKS)} (a "
                         "device name containing one of them works too), or pass a "
                         "DevicePeaks(name, {'bf16': ..., 'fp32': ...}, hbm_gbps)")
    return found


def _format_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def device_name() -> str:
    """The GPU's name, or 'cpu (Triton interpreter)'."""
    if DEVICE.type == "cuda":
        return torch.cuda.get_device_name(DEVICE)
    return "cpu (Triton interpreter)"


def peaks_for(name: str | None = None) -> DevicePeaks | None:
    """The ``PEAKS`` entry whose key is the longest one found in the device name
    (``name`` or this process's GPU), or None (CPU, or an unknown GPU)."""
    name = device_name() if name is None else name
    upper = name.upper()
    matches = [key for key in PEAKS if key in upper]
    return PEAKS[max(matches, key=len)] if matches else None


# ----------------------------------------------------------------------------- records


@dataclass
class KernelEvent:
    """One kernel launch, as the profiler saw it.

    op/phase: the op and 'forward' | 'backward' when an autograd op ran it ('AccumulateGrad'
    for the engine's gradient sums and copies); '<Optimizer class>.step' / '.zero_grad' or
    'clip_grad_norm_' and 'optimizer'; otherwise the innermost ``record`` name (else the
    kernel's name) and 'other'. node: the autograd node's name (``LinearBackward``...) and
    node_id its sequence number. dtype: the compute dtype key the % of peak uses ('tf32'
    for a TF32 product; None: no float tensor argument). record: the innermost record
    scope. start_us/duration_us: time from the profile's start, None while a CUDA graph was
    being captured (nothing runs then).
    """

    kernel: str
    grid: tuple
    op: str
    phase: str
    node: str | None
    node_id: int | None
    flops: int
    bytes_moved: int
    dtype: str | None = None
    record: str | None = None
    start_us: float | None = None
    duration_us: float | None = None
    captured: bool = False


@dataclass
class ScopeEvent:
    """One ``record(name)`` scope (or one CUDA-graph replay, phase 'graph').

    launches/flops/bytes_moved: everything launched inside it (inclusive), with the counts
    given to ``record(...)``; given: those given counts alone (launches, flops, bytes),
    made in the scope itself and invisible to the hook."""

    name: str
    phase: str
    launches: int = 0
    flops: int = 0
    bytes_moved: int = 0
    start_us: float | None = None
    duration_us: float | None = None
    given: tuple = (0, 0, 0)


@dataclass
class OpStats:
    """Per-(op, phase) totals, one row of ``Profile.table``. ``inclusive``: a record
    scope's row, which repeats the launches of the rows inside it."""

    op: str
    phase: str
    calls: int = 0
    launches: int = 0
    time_us: float = 0.0
    flops: int = 0
    bytes_moved: int = 0
    dtype: str | None = None
    kernels: dict = field(default_factory=dict)  # kernel name -> launches
    inclusive: bool = False

    @property
    def avg_us(self) -> float:
        return self.time_us / self.calls if self.calls else 0.0

    @property
    def tflops(self) -> float:
        """Achieved TFLOP/s (0 without time)."""
        return self.flops / (self.time_us * 1e6) if self.time_us > 0 else 0.0

    @property
    def gbps(self) -> float:
        """Achieved GB/s (1e9 bytes per second; 0 without time)."""
        return self.bytes_moved / (self.time_us * 1e3) if self.time_us > 0 else 0.0


_local = threading.local()
_active: list["Profile"] = []


def _record_stack() -> list:
    stack = getattr(_local, "records", None)
    if stack is None:
        stack = _local.records = []
    return stack


def _capturing() -> bool:
    return DEVICE.type == "cuda" and torch.cuda.is_current_stream_capturing()


class _Clock:
    """Timestamps: CUDA events on a GPU (resolved after a sync), perf_counter otherwise."""

    def __init__(self) -> None:
        self.cuda = DEVICE.type == "cuda"
        if self.cuda:
            self.origin = torch.cuda.Event(enable_timing=True)
            self.origin.record()
        else:
            self.origin = time.perf_counter()

    def mark(self) -> Any:
        if self.cuda:
            if _capturing():
                return None
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def to_us(self, mark: Any) -> float | None:
        """Microseconds from the origin (CUDA marks need a synchronize first)."""
        if mark is None:
            return None
        if self.cuda:
            return self.origin.elapsed_time(mark) * 1e3
        return (mark - self.origin) * 1e6


class Profile(LaunchObserver):
    """Collects kernel launches and ``record`` scopes; made by :func:`profile`."""

    def __init__(self, peaks: DevicePeaks | str | None = None,
                 dtype: torch.dtype | str | None = None) -> None:
        peaks = _resolve_peaks(peaks)
        self.device = device_name()
        self.peaks: DevicePeaks | None = peaks if peaks is not None else (
            peaks_for() if DEVICE.type == "cuda" else None)
        self.compute_dtype = _dtype_key(dtype) if dtype is not None else None
        self.kernel_events: list[KernelEvent] = []
        self.scope_events: list[ScopeEvent] = []
        self._marks: list = []  # (event, start mark, end mark), resolved lazily
        self._pending: list = []  # launches begun, not ended (a kernel can raise)
        self._last_entry = None  # the op_scope entry of the last launch (counts calls)
        self._calls: dict = {}
        self._clock: _Clock | None = None
        self._resolved = True
        self._explicit_launches = 0
        self.graph_replays = 0  # CUDA-graph replays (compile_step) seen
        self.graph_kernels = 0  # kernels those replays ran (not in ``launches``)

    # --- context manager -------------------------------------------------------
    def __enter__(self) -> "Profile":
        self._clock = _Clock()
        _active.append(self)
        add_launch_observer(self)
        self._hooked = self._clock.cuda and add_driver_hooks(self._launch_enter,
                                                             self._launch_exit)
        return self

    def __exit__(self, *exc) -> bool:
        if getattr(self, "_hooked", False):
            remove_driver_hooks(self._launch_enter, self._launch_exit)
            self._hooked = False
        remove_launch_observer(self)
        if self in _active:
            _active.remove(self)
        # The last op entry holds its autograd node, and through it the whole graph above
        # it with its saved tensors: a profile kept for its table must not keep them alive.
        self._last_entry = None
        self._pending = []
        return False

    @property
    def clock(self) -> str:
        """How times were taken: 'CUDA events' or 'wall clock (Triton interpreter)'."""
        return "CUDA events" if DEVICE.type == "cuda" else "wall clock (Triton interpreter)"

    @property
    def interpreter(self) -> bool:
        return DEVICE.type != "cuda"

    # --- the launch hook -----------------------------------------------------------
    def begin(self, info: LaunchInfo) -> None:
        entry = current_op()
        records = _record_stack()
        record_name = records[-1].name if records else None
        if entry is not None:
            op, phase, node = entry
            node_name = node.name() if node is not None else None
            function_cls = getattr(node, "function_cls", None)
            if phase == "backward" and function_cls is not None and op == node_name:
                op = function_cls.__name__  # the row reads "Linear backward", not "LinearBackward"
            node_id = getattr(node, "sequence_nr", None)
            if entry is not self._last_entry:  # a new call of this op
                self._calls[(op, phase)] = self._calls.get((op, phase), 0) + 1
                self._last_entry = entry
        else:
            op = record_name if record_name is not None else info.kernel_name
            phase, node_name, node_id = "other", None, None
            self._calls[(op, phase)] = self._calls.get((op, phase), 0) + 1
            self._last_entry = None
        event = KernelEvent(
            kernel=info.kernel_name, grid=tuple(info.grid), op=op, phase=phase,
            node=node_name, node_id=node_id, flops=int(info.flops),
            bytes_moved=int(info.bytes_moved), dtype=_launch_dtype(info),
            record=record_name, captured=_capturing(),
        )
        for scope in records:
            scope._add(self, 1, event.flops, event.bytes_moved)
        # [event, start, stop, hooked, raw]: marks around the launch call; Triton's launch
        # hooks (on a GPU) replace them with marks around the driver launch itself, after
        # any JIT compile, autotuning and argument binding, so those do not count as kernel
        # time. raw: the LaunchInfo of a launch only the driver hooks saw (see below).
        self._pending.append([event, self._clock.mark(), None, False, None])

    def _launch_enter(self, metadata: Any = None, *_: Any) -> None:
        """Triton's launch_enter_hook: the driver is about to enqueue a kernel. The last
        call wins (an autotuner's benchmark launches come before the real one).

        With no launch of ours pending, the kernel was launched directly
        (``kernel[grid](...)``): inside a ``record`` scope that was not given
        ``launches=`` (which would count it already), it counts there, timed by the hooks."""
        if not self._pending:
            records = _record_stack()
            if not records or not records[-1].counts_raw_launches:
                return
            info = LaunchInfo(_hook_kernel_name(metadata), ())
            self.begin(info)
            self._pending[-1][4] = info
        self._pending[-1][1] = self._clock.mark()
        self._pending[-1][3] = True

    def _launch_exit(self, *_metadata: Any) -> None:
        if self._pending and self._pending[-1][3]:
            self._pending[-1][2] = self._clock.mark()
            raw = self._pending[-1][4]
            if raw is not None:
                self.end(raw)

    def end(self, info: LaunchInfo) -> None:
        if not self._pending:
            return
        event, start, stop, _hooked, _raw = self._pending.pop()
        if stop is None:
            stop = self._clock.mark()
        event.grid = tuple(info.grid)  # an autotuned launch knows its grid only afterwards
        self.kernel_events.append(event)
        self._marks.append((event, start, stop))
        self._resolved = False

    # --- record scopes and graph replays ---------------------------------------------
    def _scope_done(self, scope: ScopeEvent, start: Any, stop: Any) -> None:
        self.scope_events.append(scope)
        self._marks.append((scope, start, stop))
        self._resolved = False

    def _resolve(self) -> None:
        """Turn the timing marks into microseconds (one device sync on a GPU)."""
        if self._resolved:
            return
        if self._clock is not None and self._clock.cuda:
            torch.cuda.synchronize()
        for event, start, stop in self._marks:
            begin, finish = self._clock.to_us(start), self._clock.to_us(stop)
            if begin is not None and finish is not None:
                event.start_us, event.duration_us = begin, max(finish - begin, 0.0)
        self._marks = []
        self._resolved = True

    # --- results -----------------------------------------------------------------------
    @property
    def launches(self) -> int:
        """Kernel launches made in the profile, each counted once: those the launch hook
        saw, plus those given as ``record(launches=n)`` (a CUDA-graph replay's kernels are
        ``graph_kernels``, not here). The table's rows other than the record (inclusive)
        and graph rows add up to it."""
        return len(self.kernel_events) + self._explicit_launches

    def count(self, op: str | None = None, phase: str | None = None,
              kernel: str | None = None) -> int:
        """Launches matching every given filter."""
        return sum(1 for e in self.kernel_events
                   if (op is None or e.op == op) and (phase is None or e.phase == phase)
                   and (kernel is None or e.kernel == kernel))

    @property
    def events(self) -> list[KernelEvent]:
        self._resolve()
        return list(self.kernel_events)

    def op_stats(self) -> dict:
        """{(op, phase): OpStats}. Every launch is in the row of its (op, phase); the counts
        given to ``record(name, launches=...)`` are in the row (name, 'other'). Each record
        scope also has an inclusive row (name, 'record'): the scope's own time and every
        launch made inside it, so it repeats launches of other rows."""
        self._resolve()
        stats: dict = {}
        for e in self.kernel_events:
            row = stats.get((e.op, e.phase))
            if row is None:
                row = stats[(e.op, e.phase)] = OpStats(e.op, e.phase)
            row.launches += 1
            row.time_us += e.duration_us or 0.0
            row.flops += e.flops
            row.bytes_moved += e.bytes_moved
            row.kernels[e.kernel] = row.kernels.get(e.kernel, 0) + 1
            row.dtype = row.dtype or e.dtype
        for (op, phase), calls in self._calls.items():
            if (op, phase) in stats:
                stats[(op, phase)].calls = calls
        for s in self.scope_events:
            launches, flops, bytes_moved = s.given
            if s.phase == "record" and (launches or flops or bytes_moved):
                # launches invisible to the hook, made in the scope itself: counted once
                own = stats.get((s.name, "other"))
                if own is None:
                    own = stats[(s.name, "other")] = OpStats(s.name, "other")
                own.calls += launches  # as for hooked launches outside ops: one a call
                own.launches += launches
                own.flops += flops
                own.bytes_moved += bytes_moved
            row = stats.get((s.name, s.phase))
            if row is None:
                row = stats[(s.name, s.phase)] = OpStats(s.name, s.phase,
                                                         inclusive=s.phase == "record")
            row.calls += 1
            row.launches += s.launches
            row.time_us += s.duration_us or 0.0
            row.flops += s.flops
            row.bytes_moved += s.bytes_moved
        return stats

    _SORT_KEYS = {
        "total_time": lambda r: -r.time_us,
        "avg_time": lambda r: -r.avg_us,
        "launches": lambda r: -r.launches,
        "calls": lambda r: -r.calls,
        "flops": lambda r: -r.flops,
        "bytes": lambda r: -r.bytes_moved,
        "tflops": lambda r: -r.tflops,
        "gbps": lambda r: -r.gbps,
        "name": lambda r: (r.op, r.phase),
    }

    def _default_key(self) -> str:
        """The compute dtype for rows whose launches have no float tensor: the profile's
        ``dtype`` argument, else fp32 (the CUDA-core rate those kernels run at)."""
        return self.compute_dtype or "fp32"

    def _peak_tflops(self, row: OpStats) -> float | None:
        if self.peaks is None:
            return None
        return self.peaks.tflops_for(row.dtype or self._default_key())

    def _peaks_line(self, rows: list) -> str:
        """The peaks used: every rate of the table, and 'n/a' for one a row needs but the
        table lacks."""
        peaks = self.peaks
        if peaks is None:
            return "peaks: none for this device (no % of peak)"
        needed = {r.dtype or self._default_key() for r in rows}
        keys = [k for k in _COMPUTE_KEYS if k in peaks.tflops or k in needed]
        rates = ", ".join(f"{k} {_format_number(peaks.tflops_for(k))}" for k in keys)
        return (f"peaks: {peaks.name}: TFLOP/s {rates}; HBM {_format_number(peaks.hbm_gbps)} "
                f"GB/s; a row's rate: its dtype's (tf32 for TF32 matmuls), else "
                f"{self._default_key()}'s")

    def table(self, sort_by: str = "total_time", row_limit: int | None = None) -> "ProfileTable":
        """Per-op totals as text: calls, launches, time, achieved TFLOP/s and GB/s and their
        % of the device's peak. ``sort_by``: total_time, avg_time, launches, calls, flops,
        bytes, tflops, gbps or name. ``print(prof.table())``."""
        if sort_by not in self._SORT_KEYS:
            raise ValueError(f"table: sort_by must be one of {sorted(self._SORT_KEYS)}, "
                             f"got {sort_by!r}")
        rows = sorted(self.op_stats().values(), key=self._SORT_KEYS[sort_by])
        shown = rows if row_limit is None else rows[: max(int(row_limit), 0)]
        head = ["op", "phase", "calls", "launches", "total ms", "avg us/call", "TFLOP/s",
                "GB/s", "%peak FLOP", "%peak BW"]
        body = []
        for r in shown:
            flop_pct = self._percent(r.tflops, self._peak_tflops(r), r.flops and r.time_us)
            bw_pct = self._percent(r.gbps, self.peaks and self.peaks.hbm_gbps,
                                   r.bytes_moved and r.time_us)
            op = f"{r.op} (inclusive)" if r.inclusive else r.op
            body.append([op, r.phase, str(r.calls), str(r.launches), f"{r.time_us / 1e3:.3f}",
                         f"{r.avg_us:.1f}", f"{r.tflops:.3f}", f"{r.gbps:.1f}", flop_pct,
                         bw_pct])
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
                  for i, h in enumerate(head)]

        def line(cells: list) -> str:
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))

        kernel_us = sum(e.duration_us or 0.0 for e in self.kernel_events)
        out = [f"tritongrad profile on {self.device}; times: {self.clock}"]
        if self.interpreter:
            out.append("NOTE: interpreter timings measure CPU emulation, not performance")
        out.append(self._peaks_line(rows))
        out.append(line(head))
        out.append(line(["-" * w for w in widths]))
        out.extend(line(b) for b in body)
        if row_limit is not None and len(rows) > len(shown):
            out.append(f"... {len(rows) - len(shown)} more rows")
        out.append(f"{self.launches} kernel launches, {kernel_us / 1e3:.3f} ms in kernels"
                   + (f", {self.graph_replays} CUDA-graph replays ({self.graph_kernels} "
                      "kernels, not in the launches)" if self.graph_replays else ""))
        if any(r.inclusive for r in rows):
            out.append(f"record rows are inclusive: they repeat the launches of the rows "
                       f"inside them; the other rows add up to the {self.launches} launches")
        return ProfileTable("\n".join(out))

    @staticmethod
    def _percent(achieved: float, peak: float | None, measured: Any) -> str:
        """'12.3' (% of peak), '-' (nothing to compare: no work or no time), 'n/a' (the
        peaks table has no such rate)."""
        if not measured:
            return "-"
        if peak is None:
            return "n/a"
        return f"{100 * achieved / peak:.1f}" if peak > 0 else "n/a"

    def export_chrome_trace(self, path: str) -> None:
        """Write a Chrome trace-event JSON file (Perfetto, chrome://tracing): one complete
        ('X') event per kernel (category: its phase) on a track per phase, and one per record
        scope (category 'scope', args inclusive: true) or graph replay (category 'graph')."""
        self._resolve()
        tracks = {"record": 0, "graph": 0, "forward": 1, "backward": 2, "optimizer": 3,
                  "other": 4}
        names = {0: "record scopes / graph replays", 1: "forward", 2: "backward",
                 3: "optimizer", 4: "other"}
        pid = 1
        trace: list = [
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
             "args": {"name": f"tritongrad on {self.device} ({self.clock})"}},
        ]
        for tid, name in names.items():
            trace.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                          "args": {"name": name}})
        last = 0.0
        for e in self.kernel_events:
            ts = e.start_us if e.start_us is not None else last
            dur = e.duration_us if e.duration_us is not None else 0.0
            last = ts + dur
            trace.append({
                "ph": "X", "name": e.kernel, "cat": e.phase, "pid": pid,
                "tid": tracks.get(e.phase, tracks["other"]), "ts": ts, "dur": dur,
                "args": {"op": e.op, "phase": e.phase, "node": e.node, "node_id": e.node_id,
                         "grid": list(e.grid), "flops": e.flops, "bytes": e.bytes_moved,
                         "record": e.record, "captured": e.captured},
            })
        for s in self.scope_events:
            if s.start_us is None:
                continue
            trace.append({"ph": "X", "name": s.name, "cat": "scope" if s.phase == "record"
                          else s.phase, "pid": pid,
                          "tid": tracks[s.phase], "ts": s.start_us, "dur": s.duration_us or 0.0,
                          "args": {"launches": s.launches, "flops": s.flops,
                                   "bytes": s.bytes_moved,
                                   "inclusive": s.phase == "record"}})
        document = {
            "traceEvents": trace,
            "displayTimeUnit": "ms",
            "otherData": {"device": self.device, "clock": self.clock,
                          "launches": self.launches},
        }
        with open(path, "w") as f:
            json.dump(document, f)


class ProfileTable(str):
    """The table's text; shows as text at a prompt too."""

    def __repr__(self) -> str:
        return str(self)


def profile(peaks: DevicePeaks | str | None = None,
            dtype: torch.dtype | str | None = None) -> Profile:
    """``with profile() as prof:`` records every kernel launch in the block.

    peaks: a :class:`DevicePeaks`, or a ``PEAKS`` key / a device name containing one (else
    ValueError), overriding the table lookup of this GPU. dtype: the compute dtype whose
    peak FLOP rate the table uses for launches with no float tensor argument (default fp32,
    the CUDA-core rate); a launch's own dtype, or tf32 for a TF32 product, comes first."""
    return Profile(peaks=peaks, dtype=dtype)


class record:
    """``with tg.profiler.record("name"):`` makes the block a row of every active profile,
    phase 'record', shown as "name (inclusive)": its own time and every launch made inside
    it (in ops, in nested scopes too) with their FLOPs and bytes. Those launches are also in
    their own rows (a launch outside any op: the row (name, 'other')); ``prof.launches``
    counts each once.

    Launch your own kernels with ``tg.profiler.launch(kernel, grid, *args, flops=...,
    bytes_moved=..., **constexprs)`` and the profiler sees them like tritongrad's. One
    launched directly (``kernel[grid](...)``) is invisible to that hook: give its analytic
    counts here (``flops``, ``bytes_moved``, ``launches``) and the rows and ``prof.launches``
    include it. (On a GPU, Triton's driver hooks see such a launch: in a scope given no
    ``launches`` it is counted there, with its time, but no FLOPs or bytes.)"""

    def __init__(self, name: str, *, flops: int = 0, bytes_moved: int = 0,
                 launches: int = 0) -> None:
        self.name = str(name)
        self.flops, self.bytes_moved, self.launches = int(flops), int(bytes_moved), int(launches)
        # a direct launch the driver hooks see counts here unless the caller counted it
        self.counts_raw_launches = self.launches == 0
        self._state: dict = {}

    def _add(self, prof: Profile, launches: int, flops: int, bytes_moved: int) -> None:
        """Count work done inside this scope (in ``prof``)."""
        state = self._state.get(id(prof))
        if state is not None:
            scope = state[0]
            scope.launches += launches
            scope.flops += flops
            scope.bytes_moved += bytes_moved

    def __enter__(self) -> "record":
        stack = _record_stack()
        for prof in _active:
            scope = ScopeEvent(self.name, "record", self.launches, self.flops, self.bytes_moved,
                               given=(self.launches, self.flops, self.bytes_moved))
            prof._explicit_launches += self.launches
            self._state[id(prof)] = (scope, prof, prof._clock.mark())
            for outer in stack:  # the given counts are inside the enclosing scopes too
                outer._add(prof, self.launches, self.flops, self.bytes_moved)
        stack.append(self)
        return self

    def __exit__(self, *exc) -> bool:
        stack = _record_stack()
        if stack and stack[-1] is self:
            stack.pop()
        for scope, prof, start in self._state.values():
            prof._scope_done(scope, start, prof._clock.mark())
        self._state = {}
        return False


def _graph_replay(name: str, kernels: int, flops: int, bytes_moved: int) -> Any:
    """Used by ``tritongrad.graphs``: a scope for one CUDA-graph replay in every active
    profile (a replay launches ``kernels`` kernels without the launch hook seeing them)."""
    scope = record(name, flops=flops, bytes_moved=bytes_moved)
    scope.counts_raw_launches = False  # a replay's kernels are counted as graph_kernels
    return _GraphScope(scope, kernels)


class _GraphScope:
    def __init__(self, scope: record, kernels: int) -> None:
        self.scope, self.kernels = scope, kernels

    def __enter__(self) -> "_GraphScope":
        self.scope.__enter__()
        enclosing = _record_stack()[:-1]
        for scope, prof, _ in self.scope._state.values():
            scope.phase = "graph"
            scope.launches = self.kernels
            prof.graph_replays += 1
            prof.graph_kernels += self.kernels
            for outer in enclosing:
                outer._add(prof, self.kernels, 0, 0)
        return self

    def __exit__(self, *exc) -> bool:
        return self.scope.__exit__(*exc)


def _hook_kernel_name(metadata: Any) -> str:
    """The kernel name in what Triton passes its launch hooks (a LazyDict over a dict)."""
    data = getattr(metadata, "data", metadata)
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name else "triton kernel"


def active() -> bool:
    """Whether a profile is recording (callers skip bookkeeping otherwise)."""
    return bool(_active)
