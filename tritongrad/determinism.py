"""``tg.use_deterministic_algorithms``: bit-for-bit repeatable runs.

What can make a run differ from the previous one with the same seed:

1. Atomics. A kernel that adds with ``tl.atomic_add`` sums in whatever order the
   hardware serves the programs. tritongrad's kernels use none, in either mode:
   every cross-program reduction writes per-program partials and sums them in a
   fixed order (tests/test_determinism.py reads the sm_90 PTX of every kernel
   used in training and finds no ``atom.``/``red.`` instruction).
2. Autotuning. An autotuned kernel times its configs on the first call and keeps
   the fastest; two processes can pick different block sizes, and a different
   BLOCK_K sums the products of a matmul in a different order. Within one process
   the choice is cached, so two runs in one process already agree.
   ``use_deterministic_algorithms(True)`` pins every autotuned kernel to one
   fixed config (its last, the smallest: it fits shared memory for every dtype),
   so separate processes agree too, at some cost in speed on a GPU.
3. Random numbers. ``tg.manual_seed`` fixes the Philox stream (``tg.random``).

Under the interpreter (CPU) programs run one after another and autotuning has one
config, so runs repeat with or without the mode.
"""

from __future__ import annotations

import importlib
import pkgutil

_enabled = False
_saved_configs: dict = {}  # autotuner -> its original config list


def _autotuners() -> list:
    """Every autotuned kernel in tritongrad.kernels."""
    from triton.runtime.autotuner import Autotuner

    from . import kernels

    found = []
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for tuner in vars(module).values():
            for _ in range(4):  # through @triton.heuristics and other wrappers
                if isinstance(tuner, Autotuner):
                    break
                tuner = getattr(tuner, "fn", None)
            if isinstance(tuner, Autotuner) and tuner not in found:
                found.append(tuner)
    return found


def use_deterministic_algorithms(mode: bool) -> None:
    """Turn deterministic mode on or off (see the module docstring)."""
    global _enabled
    mode = bool(mode)
    if mode == _enabled:
        return
    for tuner in _autotuners():
        if mode:
            _saved_configs[tuner] = tuner.configs
            tuner.configs = tuner.configs[-1:]
        else:
            tuner.configs = _saved_configs.pop(tuner, tuner.configs)
        tuner.cache.clear()  # forget choices made under the other mode
    _enabled = mode


def are_deterministic_algorithms_enabled() -> bool:
    return _enabled
