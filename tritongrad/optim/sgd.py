"""SGD with momentum, dampening, Nesterov, weight decay and maximize: torch.optim.SGD's
arguments, defaults and math (one fused launch per group and dtype)."""

from __future__ import annotations

from typing import Iterable

import torch

from ..kernels import copy as copy_kernels
from ..kernels import optim as optim_kernels
from ..tensor import Tensor
from .optimizer import Optimizer, OptimizerError


class SGD(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        super()._validate_group(group)
        if group["momentum"] < 0.0:
            raise OptimizerError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise OptimizerError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError("Nesterov momentum requires a momentum and zero dampening")

    def _step_group(self, group: dict, lr: torch.Tensor) -> list[Tensor]:
        params, grads = self._with_grads(group)
        if not params:
            return params
        momentum = group["momentum"]
        buffers = steps = None
        created = {}  # new state is kept only once the launcher has accepted the inputs
        if momentum != 0:
            buffers, steps = [], []
            for p in params:
                state = self.state[p] if p in self.state else {}
                if state.get("momentum_buffer") is None:
                    # zeroed; the kernel sets buf = grad on the param's first step. (Older
                    # torch SGD state dicts hold momentum_buffer=None for buffer-less params.)
                    zeros = torch.zeros(p.shape, dtype=p.dtype, device=p._data.device)
                    state = dict(state, momentum_buffer=zeros,
                                 step=optim_kernels.new_step_slots(p._data))
                    created[id(p)] = (p, state)
                elif "step" not in state:
                    # torch.optim.SGD's state has a buffer and no step count: the buffer is
                    # already running, so the kernel must not restart it from the gradient
                    slots = optim_kernels.new_step_slots(p._data)
                    copy_kernels.fill_(slots, 1)
                    state = dict(state, step=slots)
                    created[id(p)] = (p, state)
                buffers.append(state["momentum_buffer"])
                steps.append(state["step"])
        optim_kernels.sgd_step_(
            [p._data for p in params], grads, buffers, steps, lr, momentum=momentum,
            dampening=group["dampening"], nesterov=group["nesterov"],
            weight_decay=group["weight_decay"], maximize=group["maximize"])
        for p, state in created.values():
            self.state[p] = state
        return params
