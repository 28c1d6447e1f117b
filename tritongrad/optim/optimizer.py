"""``Optimizer``: torch.optim's base class (param groups, state, zero_grad, state dicts) over
fused multi-tensor kernels.

Each group keeps its learning rate twice: ``group["lr"]`` (a Python float, what users and
schedulers read and write) and a 1-element fp32 device tensor that the kernels read (fp64
when the group holds fp64 parameters, whose updates are computed in fp64 with the exact
rate; its fp32 parameters read it rounded to fp32, as ever). A changed ``group["lr"]`` is
copied host->device before the next step (schedulers copy at once), so a captured CUDA
graph that replays ``step()`` sees every new rate.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Callable, Iterable

import torch

from ..autograd import bump_version, bump_versions, enable_grad
from ..autograd.function import op_scope
from ..kernels import copy as copy_kernels
from ..kernels import optim as optim_kernels
from ..kernels._checks import ShapeError, TritongradError
from ..graphs import is_capturing
from ..nn.module import StateDictError
from ..tensor import Tensor


class OptimizerError(TritongradError, ValueError):
    """An invalid optimizer argument (torch raises ValueError for these)."""


class ParamState(MutableMapping):
    """``optimizer.state``: per-parameter state dicts keyed by the parameter itself
    (by identity, so Tensors need not be hashable)."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[Tensor, dict]] = {}

    def __getitem__(self, param: Tensor) -> dict:
        return self._items[id(param)][1]

    def __setitem__(self, param: Tensor, value: dict) -> None:
        self._items[id(param)] = (param, value)

    def __delitem__(self, param: Tensor) -> None:
        del self._items[id(param)]

    def __contains__(self, param: object) -> bool:
        return id(param) in self._items

    def __iter__(self):
        return (param for param, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class Optimizer:
    """Base class: subclasses define ``_step_group(group, lr_tensor)`` (one fused launch per
    dtype in the group) and ``_state_dtypes`` if their state is not all param-dtype."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state = ParamState()
        self._lr_tensors: list[torch.Tensor] = []
        self._lr_on_device: list[float | None] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise OptimizerError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"

    # --- groups -----------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        params = list(params)
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(param).__name__}")
            if not param.is_leaf:
                raise OptimizerError("can't optimize a non-leaf Tensor")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params):
            raise OptimizerError("optimizer contains a parameter group with duplicate parameters")
        if seen & {id(p) for p in params}:
            raise OptimizerError("some parameters appear in more than one parameter group")
        self._validate_group(group)
        device = params[0]._data.device if params else torch.device("cpu")
        lr_dtype = torch.float64 if any(p.dtype == torch.float64 for p in params) \
            else torch.float32
        self.param_groups.append(group)
        self._lr_tensors.append(torch.zeros((1,), dtype=lr_dtype, device=device))
        self._lr_on_device.append(None)
        self._sync_lr(len(self.param_groups) - 1)

    def _validate_group(self, group: dict) -> None:
        lr = group["lr"]
        if not 0.0 <= float(lr):
            raise OptimizerError(f"Invalid learning rate: {lr}")

    def _sync_lr(self, index: int, force: bool = False) -> torch.Tensor:
        """The group's device lr tensor, after a host->device copy if ``group["lr"]``
        changed since the last copy."""
        lr = float(self.param_groups[index]["lr"])
        device_lr = self._lr_tensors[index]
        if force or self._lr_on_device[index] != lr:
            device_lr.copy_(torch.tensor([lr], dtype=device_lr.dtype))  # host -> device
            self._lr_on_device[index] = lr
        return device_lr

    def lr_tensor(self, index: int = 0) -> torch.Tensor:
        """The 1-element device tensor the kernels of group ``index`` read: fp32, or fp64
        when the group holds fp64 parameters."""
        return self._sync_lr(index)

    # --- stepping ---------------------------------------------------------------------
    @staticmethod
    def _with_grads(group: dict) -> tuple[list[Tensor], list[torch.Tensor]]:
        """(params that have a grad, their contiguous grad storage)."""
        params, grads = [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(copy_kernels.contiguous(p.grad._data))
        return params, grads

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a ``.grad``: one launch per group and
        dtype. ``closure`` (re-evaluates the model, returns the loss) runs first.
        The profiler shows the update's launches as op '<class>.step', phase 'optimizer'."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if is_capturing():
            # momentum/betas/eps... are launch arguments, frozen from now on in the graph
            # (only the lr and step count live in device memory); OneCycleLR checks this
            self._captured_in_graph = True
        with op_scope(f"{type(self).__name__}.step", "optimizer"):
            for index, group in enumerate(self.param_groups):
                bump_versions(self._step_group(group, self._sync_lr(index)))
        return loss

    def _step_group(self, group: dict, lr: torch.Tensor) -> list[Tensor]:  # pragma: no cover
        raise NotImplementedError

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every ``.grad`` (``set_to_none``) or fill it with zeros, one launch per
        gradient (the profiler's op '<class>.zero_grad', phase 'optimizer')."""
        with op_scope(f"{type(self).__name__}.zero_grad", "optimizer"):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad = p.grad.detach()
                        copy_kernels.fill_(p.grad._data, 0.0)
                        bump_version(p.grad)

    # --- state dicts ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {name: tensor}}, 'param_groups': [{..., 'params': [index]}]},
        with parameters numbered in group order as torch does. Tensors are the live state
        (torch tensors on the device), as in torch; 'step' holds the int32 per-chunk slots."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {index_of[id(p)]: dict(s) for p, s in self.state._items.values()
                 if id(p) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Copy a state_dict() (ours or torch.optim's) into this optimizer: hyper-parameters
        into the groups, state tensors copied to each parameter's device and dtype. Everything
        is checked first: a bad state dict raises and leaves the optimizer as it was."""
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise StateDictError(f"optimizer state dict has no {key!r} entry; expected the "
                                     "output of Optimizer.state_dict()")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ShapeError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)} != {len(self.param_groups)})")
        param_of = {}
        for i, (ours, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(ours["params"]) != len(saved["params"]):
                raise ShapeError(
                    f"loaded state dict contains a parameter group ({i}) that doesn't match the "
                    f"size of optimizer's group ({len(saved['params'])} != {len(ours['params'])})")
            for p, index in zip(ours["params"], saved["params"]):
                param_of[index] = p
        for index, saved_state in state_dict["state"].items():
            if index not in param_of:
                raise StateDictError(f"optimizer state dict has state for parameter {index}, "
                                     "which no parameter group lists")
            for name, value in saved_state.items():
                self._check_state_value(param_of[index], index, name, value)
        new_state = ParamState()
        for index, saved_state in state_dict["state"].items():
            p = param_of[index]
            new_state[p] = {name: self._load_state_value(p, name, value)
                            for name, value in saved_state.items()}
        self.state = new_state
        for i, (ours, saved) in enumerate(zip(self.param_groups, saved_groups)):
            for key, value in saved.items():
                if key != "params":
                    ours[key] = value
            self._sync_lr(i, force=True)

    @staticmethod
    def _check_state_value(p: Tensor, index: int, name: str, value) -> None:
        if isinstance(value, Tensor):
            value = value._data
        if not isinstance(value, torch.Tensor) or name == "step":
            return
        if tuple(value.shape) != tuple(p.shape):
            raise ShapeError(f"loaded optimizer state {name!r} of parameter {index} has shape "
                             f"{tuple(value.shape)}, but the parameter has shape "
                             f"{tuple(p.shape)}")

    @staticmethod
    def _load_state_value(p: Tensor, name: str, value):
        if isinstance(value, Tensor):
            value = value._data
        if not isinstance(value, torch.Tensor):
            return value
        device = p._data.device
        if name == "step":
            slots = optim_kernels.chunk_count(p.numel())
            if value.dtype == torch.int32 and value.numel() == slots:
                return copy_kernels.copy(value.to(device))
            # torch's float step, or slots of another chunk size: every slot gets the count.
            count = int(value.reshape(-1).max().item()) if value.numel() else 0
            return torch.full((slots,), count, dtype=torch.int32).to(device)  # host -> device
        return copy_kernels.copy(value.to(device), dtype=p.dtype)
