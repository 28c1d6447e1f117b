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
            with self.__class__() if not isinstance(self, set_grad_enabled) else set_grad_enabled(
                self._enabled
            ):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Disable graph recording: ``with tg.no_grad():`` or ``@tg.no_grad()``."""

    _enabled = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a ``no_grad`` region."""

    _enabled = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode: bool):
        self._enabled = bool(mode)
