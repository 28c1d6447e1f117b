"""Grad modes: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (context managers and decorators)."""

from __future__ import annotations

import functools
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def _set_enabled(value: bool) -> None:
    _state.enabled = value


class _GradMode:
    _enabled: bool

    def __new__(cls, *args, **kwargs):
        # ``@tg.no_grad`` without parentheses decorates, as ``@torch.no_grad`` does
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _set_enabled(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return fn(*args, **kwargs)

        return wrapper

    def _fresh(self) -> "_GradMode":
        return self.__class__()


class no_grad(_GradMode):
    """Disable graph recording: ``with tg.no_grad():`` or ``@tg.no_grad()``."""

    _enabled = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a ``no_grad`` region."""

    _enabled = True


class set_grad_enabled(_GradMode):
    """As torch's: a context manager, a decorator, or a plain call
    (``tg.set_grad_enabled(False)`` switches recording off right away)."""

    def __init__(self, mode: bool):
        self._enabled = bool(mode)
        self._previous = is_grad_enabled()
        _set_enabled(self._enabled)  # takes effect now, as a function call

    def __enter__(self):
        _set_enabled(self._enabled)
        return self

    def __call__(self, fn):
        _set_enabled(self._previous)  # used as a decorator: the mode applies inside fn only
        return super().__call__(fn)

    def _fresh(self) -> "_GradMode":
        return set_grad_enabled(self._enabled)
