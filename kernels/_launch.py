"""The single launch path, the launch-observer hook and the compile-spec registry.

Every launcher calls :func:`launch` rather than ``kernel[grid](...)``. That gives
the profiler (in ``tritongrad``) one place to see each launch, without this
package knowing anything about graphs: observers subscribe from outside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import triton


_interpreting: bool | None = None


def interpreting() -> bool:
    """True when kernels run through Triton's CPU interpreter. Read once (tritongrad sets
    it before any kernel module is imported, and it cannot change after): every launch and
    every input check asks, and triton.knobs costs microseconds per read."""
    global _interpreting
    if _interpreting is None:
        try:
            _interpreting = bool(triton.knobs.runtime.interpret)
        except AttributeError:  # older triton without knobs
            _interpreting = os.environ.get("TRITON_INTERPRET", "0") == "1"
    return _interpreting


def runtime_device_type() -> str:
    """The torch device type our kernels can read: 'cpu' under the interpreter, else 'cuda'."""
    return "cpu" if interpreting() else "cuda"


def cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


@dataclass
class LaunchInfo:
    """What an observer learns about one launch.

    ``flops`` and ``bytes_moved`` are the launcher's analytic counts for this
    launch (0 where the launcher does not say). ``extra``: "dtype", the torch dtype of
    the first tensor argument; "input_precision", the ``INPUT_PRECISION`` constexpr of a
    ``tl.dot`` kernel ("ieee", "tf32", ...) or "tf32" for ``ALLOW_TF32=True``."""

    kernel_name: str
    grid: tuple
    flops: int = 0
    bytes_moved: int = 0
    extra: dict = field(default_factory=dict)


class LaunchObserver:
    """Subclass and pass to :func:`add_launch_observer`. ``begin`` runs just
    before the kernel is enqueued, ``end`` just after."""

    def begin(self, info: LaunchInfo) -> None:  # pragma: no cover - interface
        pass

    def end(self, info: LaunchInfo) -> None:  # pragma: no cover - interface
        pass


_observers: list[LaunchObserver] = []


def add_launch_observer(observer: LaunchObserver) -> None:
    _observers.append(observer)


def remove_launch_observer(observer: LaunchObserver) -> None:
    if observer in _observers:
        _observers.remove(observer)


def add_driver_hooks(enter: Callable, exit: Callable) -> bool:
    """Call ``enter`` / ``exit`` right around each driver launch of a compiled kernel (after
    any JIT compile, autotuning and argument binding), through Triton's launch hooks
    (``triton.knobs.runtime``, Triton 3.4 and later). False where this Triton has none, or
    under the interpreter, which never reaches a driver."""
    if interpreting():
        return False
    try:
        triton.knobs.runtime.launch_enter_hook.add(enter)
        triton.knobs.runtime.launch_exit_hook.add(exit)
    except AttributeError:
        return False
    return True


def remove_driver_hooks(enter: Callable, exit: Callable) -> None:
    triton.knobs.runtime.launch_enter_hook.remove(enter)
    triton.knobs.runtime.launch_exit_hook.remove(exit)


def _kernel_name(kernel: Any) -> str:
    fn = getattr(kernel, "fn", kernel)  # Autotuner / InterpretedFunction wrap the python fn
    while hasattr(fn, "fn"):
        fn = fn.fn
    return getattr(fn, "__name__", repr(kernel))


def launch(
    kernel: Any,
    grid: tuple | Callable,
    *args: Any,
    flops: int = 0,
    bytes_moved: int = 0,
    **meta: Any,
) -> None:
    """Launch ``kernel[grid](*args, **meta)`` and tell the observers (the profiler).

    ``flops`` and ``bytes_moved``: this launch's analytic counts, for the profiler's
    TFLOP/s and GB/s. ``meta``: the kernel's constexprs and launch options."""
    if not _observers:
        kernel[grid](*args, **meta)
        return
    shown_grid = grid if isinstance(grid, tuple) else ("auto",)
    info = LaunchInfo(_kernel_name(kernel), shown_grid, int(flops), int(bytes_moved))
    first_tensor = next((a for a in args if hasattr(a, "dtype") and hasattr(a, "data_ptr")), None)
    if first_tensor is not None:
        info.extra["dtype"] = first_tensor.dtype  # the rate "% of peak" is judged against
    # fp32 products rounded to TF32 run at the TF32 tensor-core rate, not the fp32 one
    precision = meta.get("INPUT_PRECISION", "tf32" if meta.get("ALLOW_TF32") else None)
    if precision is not None:
        info.extra["input_precision"] = str(precision)
    for observer in list(_observers):
        observer.begin(info)
    kernel[grid](*args, **meta)
    best = getattr(kernel, "best_config", None)
    if callable(grid) and best is not None:  # an autotuned launch: show the grid it chose
        try:
            info.grid = tuple(grid({**meta, **best.all_kwargs()}))
        except (KeyError, TypeError):  # a grid function that reads positional args by name
            pass
    for observer in list(_observers):
        observer.end(info)


@dataclass
class CompileSpec:
    """One way to compile a kernel ahead of time for a GPU target.

    ``signature`` maps every argument name to a Triton type string ("*fp32",
    "i32", "i64", "fp32", ...) or "constexpr"; ``constexprs`` gives the
    constexpr values. The sm_90 compile test compiles every spec, and fails
    for any ``@triton.jit`` kernel in ``kernels/`` that has none."""

    kernel: Any
    signature: dict
    constexprs: dict
    label: str = ""

    @property
    def jit_function(self) -> Any:
        fn = self.kernel
        while not isinstance(fn, triton.runtime.jit.JITFunction) and hasattr(fn, "fn"):
            fn = fn.fn  # unwrap autotuner / heuristics (they also carry arg_names)
        return fn


def ptr_type(dtype_name: str) -> str:
    return "*" + dtype_name
