"""Whole-step CUDA graphs: capture a training step once, replay it every step.

    def train_step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        tg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    step = tg.compile_step(train_step)
    for x, y in batches:
        loss = step(x, y)        # same shapes every call
        sched.step()             # outside the step: it writes the lr into device memory

A small network is launch-bound: ~15 kernels of a few microseconds each, every one paying
6-13 us of Python and driver time to launch. A CUDA graph records the launches once and
replays them with one call (~0.6 us per kernel on the device, no Python).

How a call runs:

1. The first ``warmup`` calls run the function eagerly on a side stream. That compiles and
   autotunes every kernel and creates the optimizer's state, none of which may happen
   inside a capture. (The gradients a capture allocates are new buffers, so the
   multi-tensor kernels of clip and the optimizers build a new pointer table while
   capturing: a host->device copy, which a capture accepts only from pinned memory.)
2. The next call captures the function into a graph (nothing executes during a capture) and
   then replays it once, so every call performs exactly one step.
3. Later calls copy their arguments into the static input buffers and replay.

What a capture freezes: every kernel argument, every pointer, every Python decision. So
everything that changes from step to step must live in device memory and be read there:
the optimizer's step count and learning rate (``kernels/optim.py``: int32 step slots and an
fp32 lr tensor that schedulers rewrite) and the RNG's offset (``tritongrad/random.py``).
Rules that follow for the function:

- no host syncs inside it (``.item()``, printing a tensor, a value check that reads a flag;
  cross-entropy's label check is switched off while capturing, so replays do not check);
- a new learning rate reaches a replay only through the optimizer's device lr tensor: use a
  scheduler, or call ``opt.lr_tensor(i)`` after setting ``group["lr"]`` by hand;
- no host->device copies inside it (``tg.tensor(...)``, ``scheduler.step()``): do those
  between calls;
- arguments are data (inputs, targets): tensors not requiring grad, copied into static
  buffers each call; parameters, model, optimizer and scheduler come from the closure;
- the return value is the captured output, overwritten by the next call: read it (or clone
  it) before calling again.

Under Triton's interpreter (no GPU) the step simply runs the function, and says once that
graphs need a GPU.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

from . import profiler as _profiler
from ._device import DEVICE
from .kernels._checks import ShapeError, TritongradError
from .kernels._launch import (
    LaunchInfo,
    LaunchObserver,
    add_launch_observer,
    remove_launch_observer,
)
from .kernels.copy import copy_into
from .tensor import Tensor

__all__ = ["CompiledStep", "GraphCaptureError", "compile_step", "graphs_available",
           "is_capturing"]


class GraphCaptureError(TritongradError, RuntimeError):
    pass


_warned_no_gpu = False

_CAPTURE_HINTS = (
    "Common causes: a host sync inside the step (.item(), printing a tensor, a label-range "
    "check), a host->device copy (tg.tensor(...), scheduler.step()) inside the step, or a "
    "kernel compiled or autotuned for the first time during the capture (raise warmup=)."
)


def graphs_available() -> bool:
    """True when steps can be captured (a CUDA device, kernels compiled for it)."""
    return DEVICE.type == "cuda"


def is_capturing() -> bool:
    """True while a CUDA graph is being captured on the current stream. Code that would
    sync with the host (a value check) must skip it then."""
    return DEVICE.type == "cuda" and torch.cuda.is_current_stream_capturing()


class _LaunchCounter(LaunchObserver):
    """Counts the kernels (and their analytic work) recorded into a capture."""

    def __init__(self) -> None:
        self.launches = 0
        self.flops = 0
        self.bytes_moved = 0

    def end(self, info: LaunchInfo) -> None:
        self.launches += 1
        self.flops += info.flops
        self.bytes_moved += info.bytes_moved


def _describe(value: Any) -> str:
    return f"{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"


class CompiledStep:
    """A step function captured into a CUDA graph; made by :func:`compile_step`.

    Attributes after capture: ``graph`` (the torch.cuda.CUDAGraph), ``kernels`` (kernel
    launches recorded in it), ``static_inputs`` (the buffers each call copies its tensor
    arguments into; writing there directly skips the copy), ``static_output``."""

    def __init__(self, fn: Callable, warmup: int = 1, name: str | None = None,
                 capture_error_mode: str = "relaxed") -> None:
        if warmup < 1:
            raise ValueError("compile_step: warmup must be >= 1 (the eager step creates the "
                             "optimizer's state and compiles every kernel before capture)")
        self.fn = fn
        self.warmup = int(warmup)
        self.name = name or getattr(fn, "__name__", "step")
        self.capture_error_mode = capture_error_mode
        self.calls = 0
        self.graph: Any = None
        self.kernels = 0
        self.flops = 0
        self.bytes_moved = 0
        self.static_inputs: list | None = None
        self.static_output: Any = None
        self._signature: list | None = None
        self._pool: Any = None

    # --- arguments -------------------------------------------------------------------
    def _flatten(self, args: tuple, kwargs: dict) -> list:
        return list(args) + [kwargs[k] for k in sorted(kwargs)]

    def _spec(self, value: Any, index: int) -> tuple:
        if isinstance(value, Tensor):
            if value.requires_grad:
                raise ValueError(
                    f"compile_step: argument {index} requires grad; arguments are data copied "
                    "into static buffers. Reach parameters through the function's closure."
                )
            value = value._data
        if isinstance(value, torch.Tensor):
            return ("tensor", tuple(value.shape), value.dtype)
        return ("value", value)

    def _bind(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Copy the tensor arguments into the static buffers (allocated on the first call);
        other arguments must equal the captured ones."""
        flat = self._flatten(args, kwargs)
        specs = [self._spec(v, i) for i, v in enumerate(flat)]
        if self._signature is None:
            self._signature = specs
            self.static_inputs = []
            for value, spec in zip(flat, specs):
                if spec[0] == "tensor":
                    self.static_inputs.append(
                        Tensor._wrap(torch.empty(spec[1], dtype=spec[2], device=DEVICE)))
                else:
                    self.static_inputs.append(value)
        elif specs != self._signature:
            for i, (got, want) in enumerate(zip(specs, self._signature)):
                if got != want:
                    raise ShapeError(
                        f"compile_step: argument {i} is {got[1:]} but the step was built for "
                        f"{want[1:]}; a graph replays fixed shapes, dtypes and Python values "
                        "(call step.reset() to build a new one)"
                    )
            raise ShapeError(f"compile_step: got {len(specs)} arguments, the step was built "
                             f"for {len(self._signature)}")
        for value, static in zip(flat, self.static_inputs):
            if not isinstance(static, Tensor):
                continue
            src = value._data if isinstance(value, Tensor) else value
            dst = static._data
            if src.data_ptr() == dst.data_ptr():
                continue  # the caller wrote into the static buffer itself
            if src.device.type == DEVICE.type:
                copy_into(dst, src)
            else:
                dst.copy_(src, non_blocking=False)  # a host -> device transfer
        statics = self.static_inputs
        n_pos = len(args)
        names = sorted(kwargs)
        return tuple(statics[:n_pos]), dict(zip(names, statics[n_pos:]))

    # --- running ------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _warned_no_gpu
        if not graphs_available():
            if not _warned_no_gpu:
                warnings.warn("tg.compile_step: CUDA graphs need a GPU; under the Triton "
                              "interpreter the step runs as a plain function", RuntimeWarning,
                              stacklevel=2)
                _warned_no_gpu = True
            self.calls += 1
            return self.fn(*args, **kwargs)
        if DEVICE.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise GraphCaptureError("compile_step: cannot run a compiled step inside a capture")
        s_args, s_kwargs = self._bind(args, kwargs)
        self.calls += 1
        if self.graph is None and self.calls <= self.warmup:
            return self._eager(s_args, s_kwargs)
        if self.graph is None:
            self._capture(s_args, s_kwargs)
        self._replay()
        return self.static_output

    def _eager(self, args: tuple, kwargs: dict) -> Any:
        """A warm-up step on a side stream (torch's recipe for pre-capture iterations)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.fn(*args, **kwargs)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, args: tuple, kwargs: dict) -> None:
        from .ops import loss as loss_ops

        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        counter = _LaunchCounter()
        add_launch_observer(counter)
        # Cross-entropy's label-range check reads a device flag on the host: a sync, which
        # a capture forbids. Replayed steps skip it (a bad label gives a NaN loss); the
        # warm-up steps checked the labels eagerly.
        check_labels, loss_ops.CHECK_LABELS = loss_ops.CHECK_LABELS, False
        try:
            with torch.cuda.graph(graph, pool=self._pool,
                                  capture_error_mode=self.capture_error_mode):
                out = self.fn(*args, **kwargs)
        except Exception as error:
            raise GraphCaptureError(f"compile_step: capturing {self.name!r} failed: "
                                    f"{error}\n{_CAPTURE_HINTS}") from error
        finally:
            loss_ops.CHECK_LABELS = check_labels
            remove_launch_observer(counter)
        self.graph = graph
        self._pool = graph.pool()
        self.static_output = out
        self.kernels = counter.launches
        self.flops = counter.flops
        self.bytes_moved = counter.bytes_moved

    def _replay(self) -> None:
        if _profiler.active():
            with _profiler._graph_replay(f"compile_step:{self.name}", self.kernels, self.flops,
                                         self.bytes_moved):
                self.graph.replay()
        else:
            self.graph.replay()

    def reset(self) -> None:
        """Forget the graph and the static buffers: the next calls warm up and capture anew
        (after the parameters, the optimizer or the shapes changed)."""
        self.graph = None
        self.static_inputs = None
        self.static_output = None
        self._signature = None
        self.calls = 0
        self.kernels = self.flops = self.bytes_moved = 0

    @property
    def captured(self) -> bool:
        return self.graph is not None


def compile_step(fn: Callable | None = None, *, warmup: int = 1, name: str | None = None,
                 capture_error_mode: str = "relaxed") -> Any:
    """Capture a whole training step (forward, loss, backward, clip, optimizer) into a CUDA
    graph with static input buffers, and replay it on every later call. Usable as
    ``step = tg.compile_step(fn)`` or as a decorator (``@tg.compile_step(warmup=2)``).

    warmup: eager calls before the capture (>= 1). capture_error_mode: torch.cuda.graph's;
    "relaxed" lets a pinned host->device copy (a multi-tensor kernel's new pointer table)
    be captured, "global" is stricter. Under the interpreter the function runs as it is,
    with a one-time warning. See the module docstring for what a step may do."""
    if fn is None:
        return lambda f: CompiledStep(f, warmup=warmup, name=name,
                                      capture_error_mode=capture_error_mode)
    if not callable(fn):
        raise TypeError(f"compile_step expects a function, got {type(fn).__name__}")
    return CompiledStep(fn, warmup=warmup, name=name, capture_error_mode=capture_error_mode)
