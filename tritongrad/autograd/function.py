"""Graph nodes and the custom-Function API.

Every op, built-in or a user's, is a ``Function`` subclass with static
``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``, called through
``Op.apply(...)``. ``apply`` creates a node (the ``ctx``) that becomes the
outputs' ``grad_fn``; the engine later calls ``backward`` on it.

Ownership, to keep graphs collectable without cycles: outputs hold their node,
a node holds the nodes of its inputs (``next_functions``) and the *storage* of
the tensors it saved, never the output Tensor objects themselves.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Callable

from ..kernels._checks import TritongradError
from .grad_mode import is_grad_enabled, no_grad

_sequence = itertools.count()
_local = threading.local()

# Observers of Function.apply / node execution (anomaly mode, shadow mode, the
# profiler). Empty lists cost one truthiness test per op.
apply_observers: list[Callable] = []  # fn(node, args, outputs) after a recorded forward


class AutogradError(TritongradError, RuntimeError):
    pass


SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


def current_op() -> tuple | None:
    """(op name, 'forward' | 'backward', node) of the op whose kernels are running now."""
    stack = getattr(_local, "op_stack", None)
    return stack[-1] if stack else None


class op_scope:
    """Marks the op being run, so launch observers can attribute kernels to it."""

    __slots__ = ("entry",)

    def __init__(self, name: str, phase: str, node: Any = None):
        self.entry = (name, phase, node)

    def __enter__(self):
        stack = getattr(_local, "op_stack", None)
        if stack is None:
            stack = _local.op_stack = []
        stack.append(self.entry)
        return self

    def __exit__(self, *exc):
        _local.op_stack.pop()
        return False


class Node:
    """A backward node (``grad_fn``). ``next_functions`` holds one
    ``(node_or_None, output_nr)`` edge per differentiable input."""

    def __init__(self) -> None:
        self.next_functions: tuple = ()
        self.sequence_nr = next(_sequence)
        self.tensor_pre_hooks: dict[int, list] = {}  # output_nr -> hooks of non-leaf outputs
        self.retained: dict[int, weakref.ref] = {}  # output_nr -> non-leaf that retain_grad()'ed
        self.forward_trace = None  # set by anomaly mode
        # Set by the engine for each backward run: False when this node is freed right
        # after it runs (retain_graph=False), which lets it hand out its private buffers.
        self.graph_retained = True

    def name(self) -> str:
        return type(self).__name__

    @property
    def num_outputs(self) -> int:
        return 1

    def apply(self, grad_outputs: list) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    def release(self) -> None:
        """Free what backward needed (called after backward unless retain_graph)."""

    def __repr__(self) -> str:
        return f"<{self.name()} object>"


class AccumulateGrad(Node):
    """The node at a leaf: adds the incoming gradient into ``variable.grad``."""

    def __init__(self, variable) -> None:
        super().__init__()
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"


class SavedTensor:
    """What ``save_for_backward`` keeps: the storage tensor and its version then."""

    __slots__ = ("data", "version", "requires_grad")

    def __init__(self, tensor) -> None:
        self.data = tensor._data
        self.version = tensor._data._version
        self.requires_grad = tensor.requires_grad


class FunctionCtx(Node):
    """The ``ctx`` passed to forward and backward; also the graph node."""

    def __init__(self, function_cls: type) -> None:
        super().__init__()
        self._function_cls = function_cls
        self._saved: list | None = []
        self._private: list | None = []
        self._private_taken = False  # a buffer went out as a gradient: the node cannot rerun
        self._released = False
        self.needs_input_grad: tuple = ()
        self.non_differentiable: set = set()
        self.materialize_grads = True
        self.output_meta: list = []  # (shape, dtype) per output, for zero grads
        self.input_meta: list = []  # (shape, dtype) per forward arg, None for non-tensors

    # --- the ctx API -------------------------------------------------------
    def save_for_backward(self, *tensors) -> None:
        from ..tensor import Tensor

        saved = []
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise AutogradError(
                    f"{self.name()}: save_for_backward can only save tensors (or None), "
                    f"got {type(t).__name__}; keep other values as ctx attributes"
                )
            saved.append(None if t is None else SavedTensor(t))
        self._saved = saved

    @property
    def saved_tensors(self) -> tuple:
        from ..tensor import Tensor

        if self._released:
            raise AutogradError(SECOND_BACKWARD)
        out = []
        for i, s in enumerate(self._saved or []):
            if s is None:
                out.append(None)
                continue
            if s.data._version != s.version:
                raise AutogradError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: [{s.data.dtype} {list(s.data.shape)}], saved tensor "
                    f"{i} of {self.name()}, is at version {s.data._version}; expected version "
                    f"{s.version} instead."
                )
            out.append(Tensor._wrap(s.data))
        return tuple(out)

    def save_private(self, *tensors) -> None:
        """Keep tensors that only this node can see (buffers its forward made, such as a
        gradient computed ahead of backward): no version check, since nobody else can write
        them; freed with the graph, as saved tensors are; and ``take_private`` may hand one
        out of backward as a gradient, with no copy, when the graph is not retained."""
        self._private = [None if t is None else t._data for t in tensors]

    @property
    def private_tensors(self) -> tuple:
        from ..tensor import Tensor

        if self._released or self._private_taken:
            raise AutogradError(SECOND_BACKWARD)
        return tuple(None if d is None else Tensor._wrap(d) for d in self._private or ())

    def take_private(self, index: int):
        """Private tensor ``index`` as a new Tensor for backward to return as a gradient,
        when this backward run frees the graph (retain_graph=False): nothing else will read
        it again, so its consumer may own it (a leaf keeps it as ``.grad``). None when the
        graph is retained, or when it was taken already."""
        from ..tensor import Tensor

        if self.graph_retained or self._released or not self._private:
            return None
        data, self._private[index] = self._private[index], None
        if data is None:
            return None
        # Normally the engine releases the node right after this run; if an observer (anomaly
        # mode, shadow parity) raises first, a retry must fail cleanly, not read the hole.
        self._private_taken = True
        return Tensor._wrap(data)

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    # --- node --------------------------------------------------------------
    def name(self) -> str:
        return f"{self._function_cls.__name__}Backward"

    @property
    def function_cls(self) -> type:
        return self._function_cls

    @property
    def num_outputs(self) -> int:
        return len(self.output_meta)

    def release(self) -> None:
        # None marks freed saved tensors; a node that saved none can rerun
        if self._saved or self._private:
            self._saved = None
        self._private = None
        self._released = True

    def apply(self, grad_outputs: list) -> tuple:
        grads = self._function_cls.backward(self, *grad_outputs)
        return grads if isinstance(grads, tuple) else (grads,)


class Function:
    """Base class of every differentiable op. Subclass with static
    ``forward(ctx, *args, **kwargs)`` and ``backward(ctx, *grad_outputs)``;
    call ``MyOp.apply(*args)``.

    A class may set ``torch_reference = staticmethod(fn)``: the torch version
    of ``forward`` (same positional args, torch tensors for Tensors), used by
    the parity tools and shadow mode."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        from ..tensor import Tensor

        ctx = FunctionCtx(cls)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = any(needs) and is_grad_enabled()
        for name, value in kwargs.items():
            if isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
                raise AutogradError(
                    f"{cls.__name__}.apply: keyword argument {name!r} is a tensor that requires "
                    "grad; gradients flow only to positional arguments (backward returns one "
                    "gradient per positional input), so pass it positionally"
                )
        ctx.needs_input_grad = needs
        with no_grad(), op_scope(cls.__name__, "forward", ctx):
            outputs = cls.forward(ctx, *args, **kwargs)
        is_tuple = isinstance(outputs, tuple)
        outs = list(outputs) if is_tuple else [outputs]
        if not record:
            return outputs
        ctx.next_functions = tuple(
            a._gradient_edge() if isinstance(a, Tensor) and a.requires_grad else (None, 0)
            for a in args
        )
        ctx.input_meta = [
            (tuple(a.shape), a.dtype) if isinstance(a, Tensor) else None for a in args
        ]
        input_ids = {id(a) for a in args if isinstance(a, Tensor)}
        for i, out in enumerate(outs):
            if not isinstance(out, Tensor):
                ctx.output_meta.append(None)
                continue
            non_differentiable = id(out) in ctx.non_differentiable
            if id(out) in input_ids:  # forward returned an input: give the output its own identity
                out = Tensor._wrap(out._data)
                outs[i] = out
            ctx.output_meta.append((tuple(out.shape), out.dtype))
            if non_differentiable or not out.is_floating_point():
                continue
            out._grad_fn = ctx
            out._output_nr = i
            out._requires_grad = True
        result = tuple(outs) if is_tuple else outs[0]
        for observer in list(apply_observers):
            observer(ctx, args, result)
        return result
