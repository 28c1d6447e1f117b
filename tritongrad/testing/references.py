"""The one place where every built-in Function's torch reference is registered.

A reference takes the same positional arguments as the Function's
``forward`` (without ctx), with tg Tensors replaced by torch tensors, and
returns the torch output(s). Each op family registers its references in
``tritongrad/testing/ref_<family>.py``; this module imports them all, and
``tests/test_references.py`` fails for any Function class without one. A
user's Function takes part by defining ``torch_reference = staticmethod(fn)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

_REFERENCES: dict[type, Callable] = {}
_loaded = False


def register_reference(function_cls: type, torch_fn: Callable) -> None:
    _REFERENCES[function_cls] = torch_fn


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import __path__ as here

    for info in pkgutil.iter_modules(here):
        if info.name.startswith("ref_"):
            importlib.import_module(f"{__package__}.{info.name}")


def reference_for(function_cls: type) -> Callable | None:
    """The torch reference of a Function class, or None when it has none."""
    own = function_cls.__dict__.get("torch_reference")
    if own is not None:
        return own.__func__ if isinstance(own, staticmethod) else own
    _load_all()
    return _REFERENCES.get(function_cls)


def registered() -> dict[type, Callable]:
    _load_all()
    return dict(_REFERENCES)
