"""tritongrad's own autograd: Function, backward, grad, grad modes."""

from __future__ import annotations

from typing import Sequence

from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled  # noqa: F401
from .engine import execute
from .function import AccumulateGrad, AutogradError, Function, FunctionCtx, Node  # noqa: F401
from .function import op_scope
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _root_grads(outputs: list, grad_outputs: list) -> list:
    """[(node, output_nr, grad, owned)] for each output, checking torch's rules."""
    from ..kernels.copy import full
    from ..tensor import Tensor

    if grad_outputs and len(grad_outputs) != len(outputs):
        raise AutogradError(
            f"grad_tensors/grad_outputs should be a sequence of length {len(outputs)}, "
            f"got {len(grad_outputs)}"
        )
    roots = []
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"expected a Tensor at position {i}, got {type(out).__name__}")
        if not out.requires_grad:
            raise AutogradError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        grad = grad_outputs[i] if grad_outputs else None
        if grad is None:
            if out.numel() != 1:
                raise AutogradError("grad can be implicitly created only for scalar outputs")
            with op_scope("backward seed", "backward"):
                grad = Tensor._wrap(full(tuple(out.shape), 1.0, out.dtype, out._data.device))
            grad._implicit_one_version = grad._data._version
            owned = True
        else:
            if not isinstance(grad, Tensor):
                raise TypeError(f"gradient must be a tritongrad Tensor, got {type(grad).__name__}")
            if tuple(grad.shape) != tuple(out.shape):
                raise AutogradError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {list(grad.shape)} and "
                    f"output[{i}] has a shape of {list(out.shape)}."
                )
            owned = False
            if grad.dtype != out.dtype:  # as torch: the gradient takes the output's dtype
                from ..kernels.copy import copy

                with op_scope("backward seed", "backward"):
                    grad, owned = Tensor._wrap(copy(grad._data, out.dtype)), True
        node, index = out._gradient_edge()
        roots.append((node, index, grad, owned))
    return roots


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None) -> None:
    """Accumulate d(tensors)/d(leaves) into every leaf's ``.grad``."""
    outputs = _as_list(tensors)
    roots = _root_grads(outputs, _as_list(grad_tensors))
    execute(roots, retain_graph=bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``."""
    outputs = _as_list(outputs)
    inputs_list = _as_list(inputs)
    capture = {}
    for i, t in enumerate(inputs_list):
        if not t.requires_grad:
            raise AutogradError(f"One of the differentiated Tensors (input {i}) does not require grad")
        capture.setdefault(t._gradient_edge(), []).append(i)
    roots = _root_grads(outputs, _as_list(grad_outputs))
    captured = execute(roots, retain_graph=bool(retain_graph), capture=capture)
    result = []
    for i, t in enumerate(inputs_list):
        g = captured.get(i)
        if g is None and not allow_unused:
            raise AutogradError(
                f"One of the differentiated Tensors (input {i}) appears to not have been used in "
                "the graph. Set allow_unused=True if this is the desired behavior."
            )
        result.append(g.detach() if g is not None else None)
    return tuple(result)


def is_implicit_seed(grad) -> bool:
    """True for the gradient that ``backward()`` made itself for a scalar output (a one),
    unchanged since (a hook may write into it): its value is known on the host, so a node
    receiving it can skip scaling by it, with no read of the device."""
    version = getattr(grad, "_implicit_one_version", None)
    return version is not None and version == grad._data._version


def bump_version(t) -> None:
    """Record an in-place kernel write into ``t`` (a tg Tensor or torch tensor):
    Triton writes do not bump torch's version counter, so we do. The counter
    belongs to the storage, so views and ``x.torch()`` aliases see it."""
    import torch

    data = t if isinstance(t, torch.Tensor) else t._data
    torch.autograd.graph.increment_version(data)


def bump_versions(tensors) -> None:
    """bump_version for many tensors at once: one call into torch for a whole list (a
    clip or an optimizer step writes every parameter or gradient of a model), where torch
    accepts a list (2.5 and later), else one call per tensor."""
    import torch

    data = [t if isinstance(t, torch.Tensor) else t._data for t in tensors]
    if not data:
        return
    try:
        torch.autograd.graph.increment_version(data)
    except TypeError:  # an older torch takes one tensor per call
        for d in data:
            torch.autograd.graph.increment_version(d)
