"""``clip_grad_norm_`` on tritongrad Tensors: the global gradient norm and the in-place
clip in one fused launch pair (see ``tritongrad/kernels/norm.py``)."""

from __future__ import annotations

from typing import Iterable

from .autograd import bump_versions
from .kernels import norm as norm_kernels
from .tensor import Tensor


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale every ``.grad`` of ``parameters`` in place by
    min(1, max_norm / (total_norm + 1e-6)) and return total_norm (a 0-d fp32 Tensor), as
    torch.nn.utils.clip_grad_norm_. Parameters without a grad are skipped; no grads give 0.
    ``foreach`` is accepted for torch compatibility: the fused path is always used.

    With ``error_if_nonfinite=True`` a non-finite norm raises ValueCheckError before any
    gradient changes (this reads the norm on the host: one sync)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    total = norm_kernels.clip_grad_norm_([g._data for g in grads], float(max_norm),
                                         norm_type, error_if_nonfinite)
    bump_versions(grads)
    return Tensor._wrap(total)
