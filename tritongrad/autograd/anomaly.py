"""Anomaly mode: find the first op that produced a NaN or an Inf.

    with tg.autograd.detect_anomaly():
        loss = model(x)
        loss.backward()

While it is on:

- every recorded forward op (``Function.apply`` with grad enabled) remembers the
  user's stack where it was called (``node.forward_trace``), and its outputs are
  checked; the first op whose output holds a NaN or Inf raises ``AnomalyError``,
  naming the op and the user's source line;
- every backward node's gradients are checked as it runs; the first node that
  returns a NaN or Inf raises ``AnomalyError`` naming the node (torch's wording:
  "Function 'MulBackward' returned nan values in its 0th output.") and the user's
  line that called its op in the forward.

The check reads a device-side flag per tensor (``kernels/finite.py``), one launch
and one small host read each, so anomaly mode is for debugging, not for speed.
Ops that run before the mode is entered have no forward trace, and ops run under
``no_grad`` are not recorded, so they are not checked in the forward.
"""

from __future__ import annotations

import functools
import os
import traceback

from .. import kernels as _kernels_package
from ..kernels.finite import NAN_BIT, nonfinite_code
from . import engine
from . import function as function_module
from .function import AutogradError

# Frames from these folders are tritongrad's own, never the "user's line"
# (kernels/ installs as tritongrad.kernels but sits outside tritongrad/ in a checkout).
_INTERNAL = tuple({
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ""),
    os.path.join(os.path.dirname(os.path.abspath(_kernels_package.__file__)), ""),
})
_TRACE_DEPTH = 8  # user frames kept per node (innermost last)


class AnomalyError(AutogradError):
    """A NaN or Inf found by anomaly mode (a RuntimeError)."""


def _is_internal(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_INTERNAL)


def _user_frames() -> list:
    """The caller's stack with tritongrad's own frames (and everything above the
    innermost user frame) dropped: [outermost ..., innermost user frame]."""
    stack = traceback.extract_stack()
    while stack and _is_internal(stack[-1].filename):
        stack.pop()
    return list(stack[-_TRACE_DEPTH:])


def format_trace(frames) -> str:
    """Frames as traceback lines, the user's call site last."""
    if not frames:
        return ("  (no forward trace: the op ran before detect_anomaly() was entered, "
                "or outside it)\n")
    return "".join(traceback.format_list(frames))


def _what(code: int) -> str:
    if code & NAN_BIT:
        return "nan"
    return "inf"


class _State:
    depth = 0
    check_nan = True
    check_forward = True


def _tensor_code(t) -> int:
    data = getattr(t, "_data", None)
    if data is None or not data.is_floating_point():
        return 0
    return nonfinite_code(data)


def _on_apply(node, args, result) -> None:
    """apply observer: remember the user's call site, check the outputs."""
    node.forward_trace = _user_frames()
    if not (_State.check_nan and _State.check_forward):
        return
    outputs = result if isinstance(result, tuple) else (result,)
    for i, out in enumerate(outputs):
        code = _tensor_code(out)
        if not code:
            continue
        inputs = [f"input {j} already held {_what(c)} values"
                  for j, c in ((j, _tensor_code(a)) for j, a in enumerate(args)) if c]
        origin = ("; " + ", ".join(inputs)) if inputs else " from finite inputs"
        op = node.function_cls.__name__ if hasattr(node, "function_cls") else node.name()
        raise AnomalyError(
            f"Function '{op}' returned {_what(code)} values in its {i}th output "
            f"(forward){origin}.\nThe op was called here (most recent call last):\n"
            + format_trace(node.forward_trace)
        )


def _on_backward(node, grad_outputs, grad_inputs) -> None:
    """backward observer: the gradients a node just returned must be finite."""
    if not _State.check_nan:
        return
    for i, grad in enumerate(grad_inputs):
        if grad is None:
            continue
        code = _tensor_code(grad)
        if code:
            raise AnomalyError(
                f"Function '{node.name()}' returned {_what(code)} values in its "
                f"{i}th output.\nTraceback of the forward call that created this "
                "node (most recent call last):\n"
                + format_trace(getattr(node, "forward_trace", None))
            )


class detect_anomaly:
    """Context manager (or decorator) turning anomaly mode on.

    check_nan: raise at the first NaN/Inf (False keeps only the forward traces).
    check_forward: also check every recorded op's forward outputs, not only the
        gradients that backward produces (torch checks backward only).
    """

    def __init__(self, check_nan: bool = True, check_forward: bool = True):
        self.check_nan = bool(check_nan)
        self.check_forward = bool(check_forward)

    def __enter__(self) -> "detect_anomaly":
        self._previous = (_State.check_nan, _State.check_forward)
        _State.check_nan, _State.check_forward = self.check_nan, self.check_forward
        if _State.depth == 0:
            function_module.apply_observers.append(_on_apply)
            engine.backward_observers.append(_on_backward)
        _State.depth += 1
        return self

    def __exit__(self, *exc) -> bool:
        _State.depth -= 1
        if _State.depth == 0:
            function_module.apply_observers.remove(_on_apply)
            engine.backward_observers.remove(_on_backward)
        _State.check_nan, _State.check_forward = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan, self.check_forward):
                return fn(*args, **kwargs)

        return wrapper


def is_anomaly_enabled() -> bool:
    return _State.depth > 0
