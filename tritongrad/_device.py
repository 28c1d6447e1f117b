"""Device policy: CUDA when torch sees a GPU, else Triton's interpreter on CPU tensors.

This module is imported first by ``tritongrad/__init__.py`` because the
interpreter must be switched on before any ``@triton.jit`` kernel is defined:
Triton decides at decoration time.

``TRITONGRAD_DEVICE=cpu|cuda`` overrides the choice. ``TRITONGRAD_COMPILE_ONLY=1``
is for the ahead-of-time compile test: kernels are defined for a real GPU
target (interpreter off) but nothing is launched.
"""

from __future__ import annotations

import os

import torch


def _choose() -> str:
    wanted = os.environ.get("TRITONGRAD_DEVICE", "").strip().lower()
    if wanted not in ("", "cpu", "cuda"):
        from .kernels._checks import DeviceError

        raise DeviceError(f"TRITONGRAD_DEVICE must be 'cpu' or 'cuda', got {wanted!r}")
    if wanted == "cuda" and not torch.cuda.is_available():
        from .kernels._checks import DeviceError

        raise DeviceError(
            "TRITONGRAD_DEVICE=cuda was asked for, but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})"
        )
    if wanted:
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


COMPILE_ONLY = os.environ.get("TRITONGRAD_COMPILE_ONLY", "0") == "1"
_DEVICE_TYPE = "cpu" if COMPILE_ONLY else _choose()
DEVICE = torch.device("cuda", torch.cuda.current_device()) if _DEVICE_TYPE == "cuda" else torch.device("cpu")


def _configure_triton() -> None:
    interpret = _DEVICE_TYPE == "cpu" and not COMPILE_ONLY
    if interpret:
        _refuse_triton_compiled_for_a_gpu()
    os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
    # FMA contraction changes results in the last bits; say what we want
    # instead of inheriting a default that changes in triton 3.10.
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    try:
        import triton

        triton.knobs.runtime.interpret = interpret
    except (ImportError, AttributeError):
        pass


def _refuse_triton_compiled_for_a_gpu() -> None:
    """Triton decides at decoration time whether a @triton.jit function is interpreted.
    When triton.language was imported with the interpreter off, its own jit helpers
    (tl.randn, tl.cdiv, ...) cannot run inside interpreted kernels, and most ops would
    fail later with "Cannot call @triton.jit'd outside of the scope of a kernel"."""
    import sys

    language = sys.modules.get("triton.language")
    if language is None:
        return
    try:
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:  # pragma: no cover - every supported triton has it
        return
    helper = getattr(language, "randn", None)
    if helper is not None and not isinstance(helper, InterpretedFunction):
        raise ImportError(
            "tritongrad runs its kernels through Triton's interpreter here (no CUDA GPU), "
            "but triton was imported before tritongrad with the interpreter off, so "
            "Triton's own jit helpers cannot be interpreted. Import tritongrad before "
            "triton (and before defining your own @triton.jit kernels), or set "
            "TRITON_INTERPRET=1 in the environment before anything imports triton."
        )


_configure_triton()


def device() -> torch.device:
    """The device tritongrad computes on: ``cuda`` or ``cpu`` (the interpreter)."""
    return DEVICE


def is_interpreter() -> bool:
    return DEVICE.type == "cpu"


def check_device(t: torch.Tensor, what: str = "tensor") -> None:
    """A user's torch tensor must live where tritongrad computes; no silent copies."""
    if t.device.type != DEVICE.type:
        from .kernels._checks import DeviceError

        raise DeviceError(
            f"Expected all tensors to be on the same device: {what} is on {t.device}, "
            f"but tritongrad computes on {DEVICE}. Move it with .to('{DEVICE.type}') first."
        )
