"""``parameters_to_vector`` and ``vector_to_parameters`` (torch.nn.utils'): every parameter
flattened into one vector by our concatenation kernel, and a vector's slices handed back to
the parameters as views (no copy, as torch's ``param.data = ...``)."""

from __future__ import annotations

from typing import Iterable

from ..ops.join import cat
from ..tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One 1-D Tensor holding every parameter, flattened, in order (torch.cat of their
    views, so it is differentiable as torch's)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return cat([param.view(-1) for param in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Point each parameter at its slice of ``vec`` (a view of vec's storage, reshaped to
    the parameter's shape), consuming ``vec`` in order, as torch's: the parameters then
    share storage with ``vec``; a ``vec`` longer than needed is not an error."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    pointer = 0
    for param in parameters:
        count = param.numel()
        # metadata only: a slice of vec's storage viewed as the parameter's shape. No
        # version bump, as torch's .data assignment (vec's storage is not written).
        param._data = vec._data.detach()[pointer:pointer + count].view(param.shape)
        pointer += count
