"""Adam and AdamW: torch.optim's arguments, defaults and single-tensor math, in one fused
launch per group and dtype. amsgrad is not implemented."""

from __future__ import annotations

from typing import Iterable

import torch

from ..kernels import optim as optim_kernels
from ..kernels._checks import UnsupportedError
from ..tensor import Tensor
from .optimizer import Optimizer, OptimizerError


class Adam(Optimizer):
    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        super()._validate_group(group)
        beta1, beta2 = group["betas"]
        if not 0.0 <= group["eps"]:
            raise OptimizerError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= beta1 < 1.0:
            raise OptimizerError(f"Invalid beta parameter at index 0: {beta1}")
        if not 0.0 <= beta2 < 1.0:
            raise OptimizerError(f"Invalid beta parameter at index 1: {beta2}")
        if not 0.0 <= group["weight_decay"]:
            raise OptimizerError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["amsgrad"]:
            raise UnsupportedError(f"{type(self).__name__}: amsgrad=True is not implemented")

    def _step_group(self, group: dict, lr: torch.Tensor) -> list[Tensor]:
        params, grads = self._with_grads(group)
        if not params:
            return params
        exp_avgs, exp_avg_sqs, steps = [], [], []
        created = {}  # new state is kept only once the launcher has accepted the inputs
        for p in params:
            state = self.state[p] if p in self.state else {}
            if "exp_avg" not in state:
                device = p._data.device
                state = dict(state, step=optim_kernels.new_step_slots(p._data),
                             exp_avg=torch.zeros(p.shape, dtype=p.dtype, device=device),
                             exp_avg_sq=torch.zeros(p.shape, dtype=p.dtype, device=device))
                created[id(p)] = (p, state)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        optim_kernels.adam_step_(
            [p._data for p in params], grads, exp_avgs, exp_avg_sqs, steps, lr,
            beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
            amsgrad=group["amsgrad"])
        for p, state in created.values():
            self.state[p] = state
        return params


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay first); default
    weight_decay 1e-2, as torch.optim.AdamW."""

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
