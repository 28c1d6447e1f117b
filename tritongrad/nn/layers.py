"""Layers: Linear, LayerNorm, ReLU, Tanh, Sigmoid, GELU, SiLU, Mish, LeakyReLU, ELU, Softplus,
Hardtanh, ReLU6, Flatten, Dropout, Identity, and
Sequential (which fuses Linear followed by ReLU into one matmul-with-ReLU-epilogue launch)."""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Iterator

import torch

from .._device import DEVICE
from ..kernels._checks import DeviceError, ShapeError
from ..ops.activation import (check_gelu_approximate, elu, gelu, hardtanh, leaky_relu,
                              log_softmax, mish, relu, sigmoid, silu, softmax, softplus, tanh)
from ..ops.dropout import check_dropout_p, dropout
from ..ops.embedding import check_embedding_options, embedding, normalize_padding_idx
from ..ops.layer_norm import layer_norm
from ..ops.matmul import linear, linear_relu
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class Identity(Module):
    """Returns its input unchanged (a placeholder that keeps state-dict numbering)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features), as ``torch.nn.Linear``.

    Initialisation is torch's: W ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in))
    (gain sqrt(2/(1+5)) times sqrt(3/in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)), drawn from
    tritongrad's generator (``tg.manual_seed`` makes it reproducible)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if device is not None and torch.device(device).type != DEVICE.type:
            raise DeviceError(f"tritongrad computes on {DEVICE.type}; cannot create Linear "
                              f"on {device}")
        dtype = dtype or torch.float32
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(torch.empty((self.out_features, self.in_features), dtype=dtype,
                                            device=DEVICE))
        if bias:
            self.bias = Parameter(torch.empty((self.out_features,), dtype=dtype, device=DEVICE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            got = x.shape[-1] if x.ndim else "none (a 0-d tensor)"
            raise ShapeError(
                f"Linear(in_features={self.in_features}, out_features={self.out_features}): "
                f"expected input with last dimension {self.in_features}, got {got} "
                f"(input shape {tuple(x.shape)})"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """max(x, 0) elementwise. ``inplace`` is accepted for torch compatibility; the
    result is always a new tensor."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    """tanh(x) elementwise, as torch.nn.Tanh."""

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise, as torch.nn.Sigmoid."""

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


class GELU(Module):
    """x Phi(x) elementwise (``approximate='tanh'``: its tanh approximation), as
    torch.nn.GELU. An invalid ``approximate`` raises torch's error here, not at the first
    call."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = check_gelu_approximate(approximate)

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x sigmoid(x) elementwise, as torch.nn.SiLU. ``inplace`` is accepted for torch
    compatibility; the result is always a new tensor."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return silu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    """x tanh(softplus(x)) elementwise, as torch.nn.Mish. ``inplace`` is accepted for torch
    compatibility; the result is always a new tensor."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return mish(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x for x > 0, else negative_slope * x, as torch.nn.LeakyReLU. ``inplace`` is accepted
    for torch compatibility; the result is always a new tensor."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace_str}"


class ELU(Module):
    """x for x > 0, else alpha (e^x - 1), as torch.nn.ELU. ``inplace`` is accepted for torch
    compatibility; the result is always a new tensor."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return elu(x, self.alpha)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"alpha={self.alpha}{inplace_str}"


class Softplus(Module):
    """ln(1 + e^(beta x)) / beta, linear where beta x > threshold, as torch.nn.Softplus."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        return softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """x clamped to [min_val, max_val], as torch.nn.Hardtanh (max_val must exceed min_val;
    ``min_value``/``max_value`` are torch's deprecated spellings). ``inplace`` is accepted
    for torch compatibility; the result is always a new tensor."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and rename to `min_val`",
                          FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and rename to `max_val`",
                          FutureWarning, stacklevel=2)
            max_val = max_value
        if not max_val > min_val:  # torch asserts this (F.hardtanh allows equal bounds)
            raise ValueError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{inplace_str}"


class ReLU6(Hardtanh):
    """min(max(x, 0), 6), as torch.nn.ReLU6 (a Hardtanh(0, 6))."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softmax(Module):
    """softmax along ``dim``, as torch.nn.Softmax."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along ``dim``, as torch.nn.LogSoftmax."""

    def forward(self, x: Tensor) -> Tensor:
        return log_softmax(x, self.dim)


class Flatten(Module):
    """Merge dims start_dim..end_dim (a view when the strides allow it)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """In training, zero each element with probability p and scale the others by 1/(1-p);
    the identity in eval mode. One Philox mask serves forward and backward."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = check_dropout_p(p)
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` dims, then scale and shift
    elementwise, as ``torch.nn.LayerNorm``: parameters ``weight`` (ones) and ``bias``
    (zeros) of shape ``normalized_shape``, so torch state dicts load one to one."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if device is not None and torch.device(device).type != DEVICE.type:
            raise DeviceError(f"tritongrad computes on {DEVICE.type}; cannot create LayerNorm "
                              f"on {device}")
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = dtype or torch.float32
        if elementwise_affine:
            self.weight = Parameter(torch.empty(self.normalized_shape, dtype=dtype, device=DEVICE))
            if bias:
                self.bias = Parameter(torch.empty(self.normalized_shape, dtype=dtype,
                                                  device=DEVICE))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``, as
    ``torch.nn.Embedding``: ``weight`` (num_embeddings, embedding_dim) drawn from N(0, 1)
    (tritongrad's generator), the ``padding_idx`` row (negative counts from the end) zeroed
    and given no gradient. ``max_norm`` and ``sparse=True`` are refused (UnsupportedError).
    ``_weight`` / ``_freeze``: torch's private arguments behind ``from_pretrained``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, device=None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if device is not None and torch.device(device).type != DEVICE.type:
            raise DeviceError(f"tritongrad computes on {DEVICE.type}; cannot create Embedding "
                              f"on {device}")
        check_embedding_options(max_norm, sparse)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = normalize_padding_idx(padding_idx, self.num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(torch.empty((self.num_embeddings, self.embedding_dim),
                                                dtype=dtype or torch.float32, device=DEVICE),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ShapeError(f"Embedding: Shape of weight does not match num_embeddings and "
                                 f"embedding_dim: weight {tuple(_weight.shape)}, expected "
                                 f"({self.num_embeddings}, {self.embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            init.zeros_(Tensor._wrap(self.weight._data.select(0, self.padding_idx)))

    def forward(self, input: Tensor) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> "Embedding":
        """An Embedding whose weight shares ``embeddings``' memory (2-D, a tg Tensor or a
        torch tensor on tritongrad's device); ``freeze``: no gradient to it. As torch, the
        padding row is left as given."""
        if embeddings.dim() != 2:
            raise ShapeError(f"Embedding.from_pretrained: Embeddings parameter is expected to "
                             f"be 2-dimensional, got shape {tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(rows, cols, _weight=embeddings, _freeze=freeze, padding_idx=padding_idx,
                   max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

def _runs_plain(module: Module, cls: type) -> bool:
    """``module(x)`` would run ``cls.forward`` unchanged: no subclass override of forward or
    __call__, and no ``module.forward = ...`` patched onto the instance."""
    return (isinstance(module, cls) and type(module).forward is cls.forward
            and type(module).__call__ is Module.__call__ and "forward" not in module.__dict__)


def _fusable(first: Module, second: Module | None) -> bool:
    """A plain Linear followed by a plain ReLU (anything that changes what calling either
    module does is left alone: it might do more than the fused kernel)."""
    return second is not None and _runs_plain(first, Linear) and _runs_plain(second, ReLU)


class Sequential(Module):
    """Runs its modules in order, as ``torch.nn.Sequential``: ``Sequential(m0, m1, ...)``
    or ``Sequential(OrderedDict(name=module, ...))``.

    Each ``Linear`` directly followed by ``ReLU`` runs as one fused launch
    (``linear_relu``: the ReLU is the matmul's epilogue, and its backward reads the
    output as the mask). The module tree is untouched, so the state-dict keys stay
    torch's (``0.weight``, ``0.bias``, ``2.weight``, ...). Set ``fuse = False`` on an
    instance to run every module separately (the results are the same)."""

    fuse: bool = True

    def __init__(self, *args) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def _items(self) -> list:
        return list(self._modules.items())

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = self._items()
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for a Sequential of length "
                             f"{len(items)}")
        return items[index][1]

    def __setitem__(self, index: int, module: Module) -> None:
        name = self._items()[index][0]
        self.add_module(name, module)

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            module = modules[i]
            following = modules[i + 1] if i + 1 < len(modules) else None
            if self.fuse and _fusable(module, following):
                module._check_input(x)
                x = linear_relu(x, module.weight, module.bias)
                i += 2
            else:
                x = module(x)
                i += 1
        return x
