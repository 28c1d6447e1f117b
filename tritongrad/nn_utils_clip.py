"""``clip_grad_norm_`` on tritongrad Tensors: the global gradient norm and the in-place
clip in one fused launch pair (see ``tritongrad/kernels/norm.py``); ``clip_grad_value_``:
each gradient clamped in place by the clamp kernel (``kernels/select.py``)."""

from __future__ import annotations

import functools
from typing import Iterable

import torch

from .autograd import bump_versions, no_grad
from .autograd.function import op_scope
from .kernels import norm as norm_kernels
from .ops.select import clamp_
from .tensor import Tensor


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale every ``.grad`` of ``parameters`` in place by
    min(1, max_norm / (total_norm + 1e-6)) and return total_norm (a 0-d Tensor in the
    gradients' promoted dtype, fp32 when there are none, as torch's), as
    torch.nn.utils.clip_grad_norm_. The norm is accumulated in fp32 (fp64 when a gradient is
    fp64, each other gradient's norm then rounded to its own dtype, as torch's) and, as
    torch's, rounded to that dtype before the coefficient is formed (and the coefficient
    rounded to it too). Parameters without a grad are skipped; no grads give 0.
    ``foreach`` is accepted for torch compatibility: the fused path is always used.

    With ``error_if_nonfinite=True`` a non-finite norm raises ValueCheckError before any
    gradient changes (this reads the norm on the host: one sync). The profiler shows the
    launches as op 'clip_grad_norm_', phase 'optimizer'."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    data = [g._data for g in grads]
    dtype = functools.reduce(torch.promote_types, {d.dtype for d in data}, data[0].dtype) \
        if data else torch.float32
    with op_scope("clip_grad_norm_", "optimizer"):
        total = norm_kernels.clip_grad_norm_(data, float(max_norm), norm_type,
                                             error_if_nonfinite, out_dtype=dtype)
    bump_versions(grads)
    return Tensor._wrap(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every ``.grad`` of ``parameters`` in place to [-clip_value, clip_value], as
    torch.nn.utils.clip_grad_value_ (one clamp_ launch per gradient; parameters without a
    grad are skipped; returns None). NaN gradients stay NaN. ``foreach`` is accepted for
    torch compatibility. The profiler shows the launches as op 'clip_grad_value_', phase
    'optimizer'."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    grads = [p.grad for p in parameters if p.grad is not None]
    with no_grad(), op_scope("clip_grad_value_", "optimizer"):
        for grad in grads:
            clamp_(grad, min=-clip_value, max=clip_value)
