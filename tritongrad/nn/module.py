"""``Module`` and ``Parameter``: torch's module tree, state dicts and train/eval modes.

A Module owns three ordered registries, filled by ``__setattr__`` exactly as torch's:
``_parameters`` (Parameters), ``_buffers`` (non-trainable tensors that still belong
to the state dict) and ``_modules`` (children). Names in the state dict are the dotted
paths through the tree (``0.weight``, ``encoder.1.bias``), so a torch checkpoint of
the same architecture maps one to one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch

from .._device import DEVICE
from ..autograd.grad_mode import no_grad
from ..kernels import copy as copy_kernels
from ..kernels._checks import DeviceError, DTypeError, TritongradError
from ..tensor import Tensor


class StateDictError(TritongradError, RuntimeError):
    """``load_state_dict`` found missing or unexpected keys, or a wrong shape or dtype."""


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad=True`` by default).

    ``Parameter(data)`` shares ``data``'s storage (a tg Tensor, or a torch tensor already
    on tritongrad's device), as ``torch.nn.Parameter`` does."""

    def __init__(self, data: Tensor | torch.Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = torch.empty(0, device=DEVICE)
        if isinstance(data, Tensor):
            data = data._data
        if not isinstance(data, torch.Tensor):
            raise TypeError(
                f"Parameter wraps a Tensor; got {type(data).__name__} (use tg.tensor(...) first)"
            )
        super().__init__(data.detach(), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, " \
               f"unexpected_keys={self.unexpected_keys})"


def _as_device_tensor(value: Any, key: str) -> torch.Tensor:
    """A state-dict value as a torch tensor on our device: tg Tensors and torch tensors
    (a torch checkpoint's CPU tensors are copied host -> device), or numpy arrays."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise StateDictError(
            f"state_dict entry {key!r} must be a Tensor, got {type(value).__name__}"
        )
    if value.device.type != DEVICE.type:
        value = value.detach().to(DEVICE)  # host -> device transfer
    return value.detach()


class Module:
    """Base class of every layer and model, with torch's API.

    Subclasses call ``super().__init__()`` first, assign Parameters, buffers
    (``register_buffer``) and sub-Modules as attributes, and define ``forward``;
    ``module(x)`` runs ``forward(x)``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # --- running -----------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- registration --------------------------------------------------------------
    def _check_ready(self) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() call"
            )

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_ready()
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign {type(param).__name__} as parameter {name!r} "
                "(tg.nn.Parameter or None expected)"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state (saved and loaded) but not trained, e.g. running stats."""
        self._check_ready()
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r}")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        self._check_ready()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if "." in name or name == "":
            raise KeyError(f"module name can't contain '.' or be empty, got {name!r}")
        self._modules[name] = module

    def register_module(self, name: str, module: "Module | None") -> None:
        self.add_module(name, module)

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_ready()
            self._remove_from(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(tg.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._check_ready()
            self._remove_from(name, self.__dict__, self._parameters, self._buffers)
            self._modules[name] = value
        elif self.__dict__.get("_modules") is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}")
            self._modules[name] = None
        elif self.__dict__.get("_buffers") is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name: str, *dicts: dict) -> None:
        for d in dicts:
            d.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # --- traversal ------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every descendant, depth first."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:  # iterative, preorder, children in registration order
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in memo:
                    continue
                memo.add(id(module))
            yield name, module
            children = [(name + ("." if name else "") + child_name, child)
                        for child_name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter), each shared Parameter once (as torch)."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every child (recursively), then on self: ``model.apply(init_fn)``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # --- modes and gradients -----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (default) or zero every parameter's ``.grad``."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                copy_kernels.fill_(param.grad._data, 0.0)
                param.grad._bump_version()

    # --- dtype ---------------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """``module.to(dtype)`` casts floating parameters and buffers in place (the
        Parameter objects stay the same, so an optimizer built earlier still sees them).
        ``module.to(device)`` accepts only tritongrad's device."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, torch.dtype):
                dtype = arg
            else:
                device = arg
        if device is not None and torch.device(device).type != DEVICE.type:
            raise DeviceError(f"tritongrad computes on {DEVICE.type}; cannot move a module to "
                              f"{device}")
        if dtype is not None:
            if not dtype.is_floating_point:
                raise DTypeError(f"Module.to only accepts floating point dtypes, got {dtype}")
            for tensor in list(self.parameters()) + list(self.buffers()):
                if tensor.is_floating_point() and tensor.dtype != dtype:
                    tensor._data = copy_kernels.copy(tensor._data, dtype)
                    if tensor.grad is not None:
                        tensor.grad = Tensor._wrap(copy_kernels.copy(tensor.grad._data, dtype))
        return self

    def cuda(self) -> "Module":
        return self.to("cuda")

    def cpu(self) -> "Module":
        return self.to("cpu")

    def float(self) -> "Module":
        return self.to(torch.float32)

    def half(self) -> "Module":
        return self.to(torch.float16)

    def bfloat16(self) -> "Module":
        return self.to(torch.bfloat16)

    def double(self) -> "Module":
        return self.to(torch.float64)

    # --- state dict ------------------------------------------------------------------------
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Every parameter and persistent buffer by dotted name. The values share
        storage with the module (detached unless ``keep_vars``), as torch's do."""
        out = OrderedDict() if destination is None else destination
        # a module reachable by two paths appears under both (as torch)
        for module_prefix, module in self.named_modules(prefix=prefix.rstrip("."),
                                                        remove_duplicate=False):
            dot = module_prefix + ("." if module_prefix else "")
            for name, param in module._parameters.items():
                if param is not None:
                    out[dot + name] = param if keep_vars else param.detach()
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent_buffers:
                    out[dot + name] = buf if keep_vars else buf.detach()
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True,
                        assign: bool = False) -> _IncompatibleKeys:
        """Copy values into the parameters and buffers (our copy kernel, in place).

        Raises ``StateDictError`` listing every problem at once: missing and unexpected
        keys (only when ``strict``), and wrong shapes (always). A dtype mismatch is an
        error when ``strict``; otherwise the value is cast. Values may be tg Tensors,
        torch tensors (a torch checkpoint loads directly) or numpy arrays. With
        ``assign=True`` the module takes the values' storage instead of copying."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        updates = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = _as_device_tensor(state_dict[key], key)
            if tuple(value.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {list(value.shape)} "
                    f"from checkpoint, the shape in current model is {list(target.shape)}."
                )
            elif value.dtype != target.dtype and (strict or not value.is_floating_point()):
                errors.append(
                    f"dtype mismatch for {key}: the checkpoint has {value.dtype}, the current "
                    f"model has {target.dtype} (load with strict=False to cast)."
                )
            else:
                updates.append((target, value))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                 + "\n\t".join(errors))
        with no_grad():
            for target, value in updates:
                if assign:
                    target._data = value if value.dtype == target.dtype \
                        else copy_kernels.copy(value, target.dtype)
                else:
                    copy_kernels.copy_into(target._data, value)
                    target._bump_version()
        return _IncompatibleKeys(missing, unexpected)

    # --- repr ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr line."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"
