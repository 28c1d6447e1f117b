"""The backward engine: an iterative walk of the graph in dependency order.

1. Walk the graph from the roots (an explicit stack, so a 10,000-op chain
   never meets Python's recursion limit) and count, for each node, how many
   edges point at it.
2. Start from the roots; a node runs once every edge into it has delivered
   its gradient (Kahn's algorithm), newest node first among the ready ones.
3. Each node's ``apply`` returns one gradient per input edge; those are summed
   into the input buffers of the next nodes (a Triton add kernel).
4. ``AccumulateGrad`` nodes add into the leaves' ``.grad``.

The engine's own launches (the sums of step 3, the adds and copies of step 4, casts of a
returned gradient to its input's dtype) run in an ``op_scope`` named 'AccumulateGrad',
phase 'backward', holding the node whose gradient they handle, so the profiler shows
them as backward work rather than as stray kernels.

Gradient ownership: a leaf may keep a gradient tensor as its ``.grad`` without a
copy only when nothing else can see that storage (later in-place updates of
``.grad``, by an optimizer, ``clip_grad_norm_`` or the next backward's
accumulation, must not leak elsewhere). A gradient is *owned* when it is fresh:
not the user's ``gradient`` argument, a Tensor object created while its node's
backward ran (not one that already existed: a user's tensor or a ctx attribute
returned as-is; torch's AccumulateGrad makes the same check with a use count),
and not sharing storage with a gradient that flowed into the node (pass-through
ops such as add return their incoming gradient as-is) or with a tensor the node
saved.
"""

from __future__ import annotations

import heapq
from typing import Sequence

from ..kernels import copy as copy_kernels
from .function import SECOND_BACKWARD, AccumulateGrad, AutogradError, Node, op_scope
from .grad_mode import no_grad

backward_observers: list = []  # fn(node, grad_outputs, grad_inputs) after each node runs


def _storage_key(t) -> int:
    return t._data.untyped_storage().data_ptr()


ACCUMULATE = "AccumulateGrad"  # the op name of the engine's own launches


def _add(a, b, node: Node):
    """a + b, two gradients for one slot of ``node``."""
    from ..kernels.elementwise import binary
    from ..tensor import Tensor

    with op_scope(ACCUMULATE, "backward", node):
        return Tensor._wrap(binary("add", a._data, b._data))


def _clone(t, node: Node):
    """A copy of gradient ``t`` that ``node`` may keep (as a ``.grad``)."""
    from ..tensor import Tensor

    with op_scope(ACCUMULATE, "backward", node):
        return Tensor._wrap(copy_kernels.copy(t._data))


def _zeros(shape, dtype):
    import torch

    from .._device import DEVICE
    from ..tensor import Tensor

    return Tensor._wrap(torch.zeros(shape, dtype=dtype, device=DEVICE))


class _Buffer:
    """Gradients waiting at ``node``, one slot per node output."""

    __slots__ = ("node", "grads", "owned")

    def __init__(self, node: Node):
        n = max(node.num_outputs, 1)
        self.node = node
        self.grads = [None] * n
        self.owned = [False] * n

    def add(self, index: int, grad, owned: bool) -> None:
        if index >= len(self.grads):
            self.grads.extend([None] * (index + 1 - len(self.grads)))
            self.owned.extend([False] * (index + 1 - len(self.owned)))
        if self.grads[index] is None:
            self.grads[index], self.owned[index] = grad, owned
        else:
            self.grads[index], self.owned[index] = _add(self.grads[index], grad, self.node), True


def _collect(roots: Sequence[Node]) -> dict:
    """Number of incoming edges of every node reachable from the roots."""
    dependencies: dict = {}
    seen = set()
    stack = list(roots)
    for node in roots:
        dependencies.setdefault(node, 0)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is None:
                continue
            dependencies[child] = dependencies.get(child, 0) + 1
            if child not in seen:
                stack.append(child)
    return dependencies


def _needed(dependencies: dict, targets: set) -> set:
    """Nodes that must run so that a gradient reaches one of ``targets``
    (nodes whose incoming gradient is captured). Computed in reverse
    topological order without recursion."""
    order = []
    remaining = dict(dependencies)
    ready = [n for n, d in remaining.items() if d == 0]
    while ready:
        node = ready.pop()
        order.append(node)
        for child, _ in node.next_functions:
            if child is None:
                continue
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    needed: set = set()
    for node in reversed(order):
        if any(child is not None and (child in needed or child in targets)
               for child, _ in node.next_functions):
            needed.add(node)
    return needed


def _check_grad(node: Node, index: int, grad, meta):
    """A returned gradient must have its input's shape; its dtype is cast to the input's."""
    from ..tensor import Tensor

    if not isinstance(grad, Tensor):
        raise AutogradError(
            f"Function {node.name()} returned an invalid gradient at index {index} - "
            f"expected a Tensor or None, got {type(grad).__name__}"
        )
    shape, dtype = meta
    if tuple(grad.shape) != tuple(shape):
        raise AutogradError(
            f"Function {node.name()} returned an invalid gradient at index {index} - got "
            f"{list(grad.shape)} but expected shape compatible with {list(shape)}"
        )
    if grad.dtype != dtype:
        with op_scope(ACCUMULATE, "backward", node):
            grad = Tensor._wrap(copy_kernels.copy(grad._data, dtype))
    return grad


def _check_runnable(nodes) -> None:
    """The graph errors backward would otherwise meet part-way through (after some
    leaves already got gradients), raised before anything runs: a node whose saved
    tensors were freed by an earlier backward, or a saved tensor changed in place."""
    for node in nodes:
        saved = getattr(node, "_saved", ())
        # released after saving tensors, or a private buffer already handed out
        if saved is None or getattr(node, "_private_taken", False):
            raise AutogradError(SECOND_BACKWARD)
        if saved and any(s is not None and s.data._version != s.version for s in saved):
            node.saved_tensors  # raises the in-place error, naming the tensor and versions


def _run_node(node: Node, grads: list) -> tuple:
    with op_scope(node.name(), "backward", node):
        results = node.apply(grads)
    edges = node.next_functions
    n_inputs = len(edges)
    if len(results) < n_inputs or any(r is not None for r in results[n_inputs:]):
        raise AutogradError(
            f"function {node.name()} returned an incorrect number of gradients "
            f"(expected {n_inputs}, got {len(results)})"
        )
    return results[:n_inputs]


def _deliver_leaf(node: AccumulateGrad, grad, owned: bool) -> None:
    variable = node.variable
    for hook in variable._hooks:
        # a hook may keep the gradient it was given (torch sees that reference and
        # copies): a hooked leaf's .grad is never the hook's argument itself
        owned = False
        new = hook(grad)
        if new is not None:
            grad = new
    if variable.grad is None:
        variable.grad = grad.detach() if owned else _clone(grad, node)
    else:
        from ..kernels.elementwise import binary

        with op_scope(ACCUMULATE, "backward", node):
            binary("add", variable.grad._data, grad._data, out=variable.grad._data)
        variable.grad._bump_version()


def _leaf_hooks(node: AccumulateGrad, buffer: _Buffer) -> None:
    """A leaf's hooks, for ``autograd.grad``: as in torch, the gradient captured for a
    leaf input is the one its hooks return (``backward`` runs them in ``_deliver_leaf``)."""
    if buffer.grads[0] is None:
        return
    for hook in node.variable._hooks:
        new = hook(buffer.grads[0])
        if new is not None:
            buffer.grads[0], buffer.owned[0] = new, False


def _pre_hooks(node: Node, buffer: _Buffer) -> None:
    """Hooks and retain_grad of non-leaf outputs, before the node runs."""
    for index, hooks in node.tensor_pre_hooks.items():
        if index < len(buffer.grads) and buffer.grads[index] is not None:
            for hook in hooks:
                new = hook(buffer.grads[index])
                if new is not None:
                    buffer.grads[index], buffer.owned[index] = new, False
    for index, ref in node.retained.items():
        tensor = ref()
        grad = buffer.grads[index] if index < len(buffer.grads) else None
        if tensor is None or grad is None:
            continue
        if tensor.grad is None:
            tensor.grad = _clone(grad, node)
        else:
            tensor.grad = _add(tensor.grad, grad, node)


def execute(roots: list, retain_graph: bool, capture: dict | None = None) -> dict:
    """Run backward from ``roots`` = [(node, output_nr, grad, owned)].

    Without ``capture`` gradients accumulate into leaves (``backward``). With
    ``capture`` = {(node, output_nr): [key, ...]}, the gradient arriving there is
    returned under each key (an input may be listed twice) and no ``.grad`` is
    touched (``autograd.grad``)."""
    from ..tensor import _births

    root_nodes = [r[0] for r in roots]
    dependencies = _collect(root_nodes)
    buffers: dict = {}
    for node, index, grad, owned in roots:
        buffers.setdefault(node, _Buffer(node)).add(index, grad, owned)
    targets = {key[0] for key in capture} if capture is not None else set()
    needed = _needed(dependencies, targets) if capture is not None else None
    _check_runnable(dependencies if needed is None else needed)
    captured: dict = {}
    # Leaf gradients are delivered once the whole graph has run, so an error part-way
    # (a wrong gradient shape, an anomaly) leaves every .grad as it was.
    pending_leaves: list = []

    # a node listed twice among the roots (backward([loss, loss])) runs once, with the sum
    ready = [(-n.sequence_nr, id(n), n) for n in dict.fromkeys(root_nodes)
             if dependencies[n] == 0]
    heapq.heapify(ready)
    queued = {n for _, _, n in ready}
    with no_grad():
        while ready:
            _, _, node = heapq.heappop(ready)
            buffer = buffers.pop(node, None) or _Buffer(node)
            runs = needed is None or node in needed
            if capture is not None and node in targets:
                # torch's order for autograd.grad: a captured node that will not run (a
                # leaf, or an input whose graph above is not needed) has its tensor hooks
                # run first; one that will run has its gradient captured before them
                # (they then apply to what the node receives).
                if not runs:
                    if isinstance(node, AccumulateGrad):
                        _leaf_hooks(node, buffer)
                    else:
                        _pre_hooks(node, buffer)
                for (target, index), keys in capture.items():
                    if target is node and index < len(buffer.grads):
                        for key in keys:
                            captured[key] = buffer.grads[index]
            if runs:  # hooks of nodes that neither run nor are captured never fire
                _pre_hooks(node, buffer)
            if isinstance(node, AccumulateGrad):
                if capture is None and buffer.grads[0] is not None:
                    pending_leaves.append((node, buffer.grads[0], buffer.owned[0]))
                runs = False
            if runs:
                grads = _materialize(node, buffer)
                # Storage a result must not own: the incoming gradients and what the node saved.
                incoming = {_storage_key(g) for g in grads if g is not None}
                incoming.update(saved.untyped_storage().data_ptr() for saved in _saved_data(node))
                born_after = next(_births)
                node.graph_retained = retain_graph
                results = _run_node(node, grads)
                for observer in list(backward_observers):
                    observer(node, grads, results)
                seen_out: set = set()
                for i, ((child, child_index), grad) in enumerate(zip(node.next_functions, results)):
                    if child is None or grad is None:
                        continue
                    meta = _input_meta(node, i)
                    if meta is not None:
                        grad = _check_grad(node, i, grad, meta)
                    key = _storage_key(grad)
                    owned = (getattr(grad, "_birth", 0) > born_after
                             and key not in incoming and key not in seen_out)
                    seen_out.add(key)
                    buffers.setdefault(child, _Buffer(child)).add(child_index, grad, owned)
                if not retain_graph:
                    node.release()
            for child, _ in node.next_functions:
                if child is None:
                    continue
                dependencies[child] -= 1
                if dependencies[child] == 0 and child not in queued:
                    queued.add(child)
                    heapq.heappush(ready, (-child.sequence_nr, id(child), child))
        for node, grad, owned in pending_leaves:
            _deliver_leaf(node, grad, owned)
    return captured


def _saved_data(node: Node) -> list:
    """The torch tensors ``node`` saved for backward (none once released)."""
    return [s.data for s in (getattr(node, "_saved", None) or ()) if s is not None]


def _input_meta(node: Node, index: int):
    meta = getattr(node, "input_meta", None)
    if meta and index < len(meta):
        return meta[index]
    return None


def _materialize(node: Node, buffer: _Buffer) -> list:
    """Missing output gradients become zeros unless the Function opted out."""
    grads = list(buffer.grads[: max(node.num_outputs, 1)])
    metas = getattr(node, "output_meta", [])
    if getattr(node, "materialize_grads", True):
        for i, meta in enumerate(metas):
            if i < len(grads) and grads[i] is None and meta is not None:
                grads[i] = _zeros(meta[0], meta[1])
    return grads
