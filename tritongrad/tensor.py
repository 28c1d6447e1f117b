"""``tg.Tensor``: a torch tensor as storage, plus autograd metadata.

Torch holds the memory; every value is computed by a Triton kernel. The
version counter used to detect in-place changes to saved tensors is torch's
own storage counter (shared by views and ``x.torch()`` aliases); kernel
writes bump it explicitly through ``_bump_version``.
"""

from __future__ import annotations

import itertools
import numbers
import weakref
from typing import Any, Callable

import torch

from ._device import DEVICE, check_device
from .autograd.function import AccumulateGrad, AutogradError
from .autograd.grad_mode import is_grad_enabled
from .kernels._checks import DeviceError, DTypeError


# Every Tensor object gets a birth number. The engine uses it to tell a gradient a
# backward created (which a leaf may keep as its .grad without a copy) from a Tensor
# that already existed when that backward ran (a user's, a ctx attribute): see engine.py.
_births = itertools.count(1)


class _HookHandle:
    def __init__(self, hooks: list, hook: Callable):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Tensor:
    """An n-dimensional array on tritongrad's device, with autograd."""

    __array_priority__ = 1000  # numpy scalars on the left defer to our operators

    def __init__(self, data: torch.Tensor, requires_grad: bool = False):
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"Tensor wraps a torch.Tensor; use tg.tensor(...) for {type(data).__name__}")
        check_device(data, "the torch tensor given to Tensor()")
        self._data = data
        self._birth = next(_births)
        self._grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        self._hooks: list = []
        self._grad_accumulator = None
        self.grad: Tensor | None = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: torch.Tensor) -> "Tensor":
        """A graph-less Tensor over ``data`` (no copy)."""
        t = cls.__new__(cls)
        t._data = data
        t._birth = next(_births)
        t._grad_fn = None
        t._output_nr = 0
        t._requires_grad = False
        t._hooks = []
        t._grad_accumulator = None
        t.grad = None
        return t

    # --- metadata ------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return self._data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self._data.dtype

    @property
    def device(self) -> torch.device:
        return self._data.device

    @property
    def ndim(self) -> int:
        return self._data.dim()

    def dim(self) -> int:
        return self._data.dim()

    def size(self, dim: int | None = None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def stride(self, dim: int | None = None):
        return self._data.stride() if dim is None else self._data.stride(dim)

    def numel(self) -> int:
        return self._data.numel()

    def element_size(self) -> int:
        return self._data.element_size()

    def is_contiguous(self) -> bool:
        return self._data.is_contiguous()

    def is_floating_point(self) -> bool:
        return self._data.is_floating_point()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        # without this, Python would iterate through __getitem__ until IndexError,
        # which makes a 0-d tensor silently look empty
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    @property
    def _version(self) -> int:
        return self._data._version

    def _bump_version(self) -> None:
        torch.autograd.graph.increment_version(self._data)

    # --- autograd metadata -----------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self._grad_fn is not None:
            if not requires_grad:
                raise AutogradError(
                    "you can only change requires_grad flags of leaf variables. If you want to use "
                    "a computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach()."
                )
            return self
        if requires_grad and not self.is_floating_point():
            raise DTypeError(
                "only Tensors of floating point dtype can require gradients "
                f"(got dtype {self.dtype})"
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def output_nr(self) -> int:
        return self._output_nr

    def _gradient_edge(self) -> tuple:
        """(node, output_nr) that a gradient for this tensor flows into."""
        if self._grad_fn is not None:
            return self._grad_fn, self._output_nr
        accumulator = self._grad_accumulator() if self._grad_accumulator is not None else None
        if accumulator is None:
            accumulator = AccumulateGrad(self)
            self._grad_accumulator = weakref.ref(accumulator)
        return accumulator, 0

    def retain_grad(self) -> None:
        if not self.requires_grad:
            raise AutogradError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is None:
            return  # leaves keep their grad anyway
        self._grad_fn.retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._grad_fn is not None and self._output_nr in self._grad_fn.retained

    def register_hook(self, hook: Callable) -> _HookHandle:
        """``hook(grad) -> Tensor | None`` runs when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is None:
            hooks = self._hooks
        else:
            hooks = self._grad_fn.tensor_pre_hooks.setdefault(self._output_nr, [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None) -> None:
        from . import autograd

        autograd.backward(self, gradient, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        return Tensor._wrap(self._data)

    def detach_(self) -> "Tensor":
        self._grad_fn = None
        self._requires_grad = False
        return self

    # --- conversion --------------------------------------------------------------
    def torch(self) -> torch.Tensor:
        """The underlying torch tensor (shared memory, no copy)."""
        return self._data

    def numpy(self):
        if self.requires_grad:
            raise AutogradError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        return self._data.detach().cpu().numpy()

    def item(self) -> Any:
        if self.numel() != 1:
            raise ValueError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            which = "no values" if self.numel() == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {which} is ambiguous "
                               f"(shape {list(self.shape)})")
        return bool(self.item())

    def __repr__(self) -> str:
        import numpy as np

        values = self._data
        if values.dtype == torch.bfloat16:
            from .kernels.copy import copy

            values = copy(values, torch.float32)
        body = np.array2string(values.detach().cpu().numpy(), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if self.numel() == 0 and tuple(self.shape) != (0,):
            extras.append(f"size={tuple(self.shape)}")
        if self.dtype not in (torch.float32, torch.int64, torch.bool):
            extras.append(f"dtype={self.dtype}")
        if self._data.device.type != "cpu":
            extras.append(f"device='{self._data.device}'")
        if self._grad_fn is not None:
            extras.append(f"grad_fn=<{self._grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # --- copies, casts, devices ------------------------------------------------------
    def clone(self) -> "Tensor":
        return _copy_ops.clone(self)

    def contiguous(self) -> "Tensor":
        return self if self.is_contiguous() else _copy_ops.clone(self)

    def to(self, *args, **kwargs) -> "Tensor":
        """``.to(dtype)``, ``.to(device)``, ``.to(device, dtype)`` or ``.to(other)``, with
        torch's ``non_blocking`` (accepted, nothing to wait for) and ``copy`` (a new
        tensor even when nothing changes); the device must be the one tritongrad
        computes on (anything else is a clear error)."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        copy = bool(kwargs.pop("copy", False))
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, torch.dtype):
                dtype = arg
            elif isinstance(arg, (str, torch.device)):
                device = arg
            elif isinstance(arg, (Tensor, torch.Tensor)):
                dtype, device = arg.dtype, arg.device
            elif isinstance(arg, bool):  # .to(dtype, non_blocking, copy) positionally
                raise TypeError("to(): pass non_blocking= and copy= by keyword")
            elif isinstance(arg, int):  # a CUDA device index, as torch reads it
                device = torch.device("cuda", arg)
            else:
                raise TypeError(f"to() got an unexpected argument {arg!r}")
        if device is not None:
            _check_target_device(device)
        if dtype is None or dtype == self.dtype:
            return self.clone() if copy else self
        return _copy_ops.cast(self, dtype)

    def float(self) -> "Tensor":
        return self.to(torch.float32)

    def half(self) -> "Tensor":
        return self.to(torch.float16)

    def bfloat16(self) -> "Tensor":
        return self.to(torch.bfloat16)

    def double(self) -> "Tensor":
        return self.to(torch.float64)

    def long(self) -> "Tensor":
        return self.to(torch.int64)

    def int(self) -> "Tensor":
        return self.to(torch.int32)

    def bool(self) -> "Tensor":
        return self.to(torch.bool)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    # new_* as torch: this tensor's dtype (and device) unless dtype is given
    def new_empty(self, *size, dtype: torch.dtype | None = None,
                  requires_grad: bool = False) -> "Tensor":
        from . import creation
        return creation.empty(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype: torch.dtype | None = None,
                  requires_grad: bool = False) -> "Tensor":
        from . import creation
        return creation.zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype: torch.dtype | None = None,
                 requires_grad: bool = False) -> "Tensor":
        from . import creation
        return creation.ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype: torch.dtype | None = None,
                 requires_grad: bool = False) -> "Tensor":
        from . import creation
        return creation.full(size, fill_value, dtype=dtype or self.dtype,
                             requires_grad=requires_grad)

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    # --- in-place ------------------------------------------------------------------
    def _check_inplace(self, source: Any = None) -> None:
        """Refuse an in-place write that autograd would get wrong: into a leaf that
        requires grad or a tensor in a graph, or from a ``source`` that requires grad
        (tritongrad's in-place ops record no graph, so its gradient would silently be
        lost where torch would propagate it)."""
        if (is_grad_enabled() and not self.requires_grad and isinstance(source, Tensor)
                and source.requires_grad):
            raise AutogradError(
                "in-place operations are not differentiable in tritongrad: writing a tensor "
                f"that requires grad (shape {list(source.shape)}) into one that does not "
                f"(shape {list(self.shape)}) would lose its gradient; use the out-of-place "
                "op (e.g. x = x + y), or detach() the source / run under tg.no_grad()"
            )
        if is_grad_enabled() and self.requires_grad:
            if self.is_leaf:
                raise AutogradError(
                    "a leaf Variable that requires grad is being used in an in-place operation."
                )
            raise AutogradError(
                "in-place operations on tensors that are part of an autograd graph are not "
                "supported by tritongrad; use the out-of-place op (e.g. x = x + y)"
            )

    def zero_(self) -> "Tensor":
        return self.fill_(0.0)

    def fill_(self, value: float) -> "Tensor":
        from .kernels.copy import fill_

        self._check_inplace()
        fill_(self._data, float(value))
        self._bump_version()
        return self

    def copy_(self, src: "Tensor") -> "Tensor":
        from .kernels.copy import copy_into

        src = _as_tensor(src, self)
        self._check_inplace(src)
        copy_into(self._data, src._data)
        self._bump_version()
        return self

    def add_(self, other, alpha: float = 1.0) -> "Tensor":
        return _elementwise.inplace(self, "add", other, alpha)

    def sub_(self, other, alpha: float = 1.0) -> "Tensor":
        return _elementwise.inplace(self, "sub", other, alpha)

    def mul_(self, other) -> "Tensor":
        return _elementwise.inplace(self, "mul", other)

    def div_(self, other) -> "Tensor":
        return _elementwise.inplace(self, "div", other)

    def __setitem__(self, index, value) -> None:
        from .kernels.copy import copy_into, fill_

        self._check_inplace(value)
        view = self._data[_views.normalize_index(index)]
        if isinstance(value, (bool, int, float)):
            fill_(view, float(value))
        else:
            copy_into(view, _as_tensor(value, self)._data)
        self._bump_version()

    # Augmented assignment is in place, as in torch (``p -= lr * p.grad`` under no_grad
    # updates p, and every alias of it). Where torch would record the in-place op in the
    # graph (self is part of one, or other requires grad), tritongrad computes out of
    # place instead: the same values and gradients, bound to the name.
    def _augmented(self, op: str, other) -> "Tensor":
        if is_grad_enabled() and not (self.is_leaf and self.requires_grad) and (
                self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            result = getattr(_elementwise, op)(self, other)
            if tuple(result.shape) != tuple(self.shape):
                from .kernels._checks import ShapeError

                raise ShapeError(f"{op}: output with shape {list(self.shape)} doesn't match "
                                 f"the broadcast shape {list(result.shape)}")
            return result if result.dtype == self.dtype else result.to(self.dtype)
        return getattr(self, op + "_")(other)

    def __iadd__(self, other):
        return self._augmented("add", other)

    def __isub__(self, other):
        return self._augmented("sub", other)

    def __imul__(self, other):
        return self._augmented("mul", other)

    def __itruediv__(self, other):
        return self._augmented("div", other)

    # --- arithmetic (differentiable) -----------------------------------------------------
    def __add__(self, other):
        return _elementwise.add(self, other)

    def __radd__(self, other):
        return _elementwise.add(self, other)

    def __sub__(self, other):
        return _elementwise.sub(self, other)

    def __rsub__(self, other):
        return _elementwise.rsub(self, other)

    def __mul__(self, other):
        return _elementwise.mul(self, other)

    def __rmul__(self, other):
        return _elementwise.mul(self, other)

    def __truediv__(self, other):
        return _elementwise.div(self, other)

    def __rtruediv__(self, other):
        return _elementwise.rdiv(self, other)

    def __neg__(self):
        return _elementwise.neg(self)

    def __abs__(self):
        return _elementwise.abs(self)

    def __pow__(self, exponent):
        return _elementwise.pow(self, exponent)

    def __rpow__(self, base):
        return _elementwise.rpow(self, base)

    def __matmul__(self, other):
        from .ops.matmul import matmul

        return matmul(self, other)

    def __rmatmul__(self, other):
        from .ops.matmul import matmul

        return matmul(_as_tensor(other, self), self)

    def add(self, other, alpha: float = 1.0):
        return _elementwise.add(self, _scaled(other, alpha, self))

    def sub(self, other, alpha: float = 1.0):
        return _elementwise.sub(self, _scaled(other, alpha, self))

    def mul(self, other):
        return _elementwise.mul(self, other)

    def div(self, other):
        return _elementwise.div(self, other)

    def neg(self):
        return _elementwise.neg(self)

    def pow(self, exponent):
        return _elementwise.pow(self, exponent)

    def exp(self):
        return _elementwise.exp(self)

    def log(self):
        return _elementwise.log(self)

    def sqrt(self):
        return _elementwise.sqrt(self)

    def abs(self):
        return _elementwise.abs(self)

    # unary math (ops/unary_math.py); the in-place forms write through self's strides
    def log1p(self):
        return _unary_math.log1p(self)

    def expm1(self):
        return _unary_math.expm1(self)

    def rsqrt(self):
        return _unary_math.rsqrt(self)

    def reciprocal(self):
        return _unary_math.reciprocal(self)

    def square(self):
        return _unary_math.square(self)

    def sign(self):
        return _unary_math.sign(self)

    def floor(self):
        return _unary_math.floor(self)

    def ceil(self):
        return _unary_math.ceil(self)

    def round(self, decimals: int = 0):
        return _unary_math.round(self, decimals)

    def trunc(self):
        return _unary_math.trunc(self)

    def sin(self):
        return _unary_math.sin(self)

    def cos(self):
        return _unary_math.cos(self)

    def log2(self):
        return _unary_math.log2(self)

    def log10(self):
        return _unary_math.log10(self)

    def log1p_(self):
        return _unary_math.unary_inplace(self, "log1p")

    def expm1_(self):
        return _unary_math.unary_inplace(self, "expm1")

    def rsqrt_(self):
        return _unary_math.unary_inplace(self, "rsqrt")

    def reciprocal_(self):
        return _unary_math.unary_inplace(self, "reciprocal")

    def square_(self):
        return _unary_math.square_(self)

    def sign_(self):
        return _unary_math.unary_inplace(self, "sign")

    def floor_(self):
        return _unary_math.unary_inplace(self, "floor")

    def ceil_(self):
        return _unary_math.unary_inplace(self, "ceil")

    def round_(self, decimals: int = 0):
        return _unary_math.unary_inplace(self, "round", decimals)

    def trunc_(self):
        return _unary_math.unary_inplace(self, "trunc")

    def sin_(self):
        return _unary_math.unary_inplace(self, "sin")

    def cos_(self):
        return _unary_math.unary_inplace(self, "cos")

    def log2_(self):
        return _unary_math.unary_inplace(self, "log2")

    def log10_(self):
        return _unary_math.unary_inplace(self, "log10")

    def maximum(self, other):
        return _elementwise.maximum(self, other)

    def minimum(self, other):
        return _elementwise.minimum(self, other)

    def matmul(self, other):
        return self.__matmul__(other)

    def relu(self):
        from .ops.activation import relu

        return relu(self)

    def tanh(self):
        from .ops.activation import tanh

        return tanh(self)

    def sigmoid(self):
        from .ops.activation import sigmoid

        return sigmoid(self)

    def norm(self, p=2, dim=None, keepdim: bool = False):
        from .ops.norm import norm

        return norm(self, p=p, dim=dim, keepdim=keepdim)

    # --- comparisons (bool results, no gradient) ------------------------------------
    # Defining __eq__ would drop the default hash; tensors stay hashable by identity, as
    # torch's are (parameters are dict keys in optimizer state).
    __hash__ = object.__hash__

    def __eq__(self, other):  # type: ignore[override]
        return _comparison.compare("eq", self, other)

    def __ne__(self, other):  # type: ignore[override]
        return _comparison.compare("ne", self, other)

    def __lt__(self, other):
        return _comparison.compare("lt", self, other)

    def __le__(self, other):
        return _comparison.compare("le", self, other)

    def __gt__(self, other):
        return _comparison.compare("gt", self, other)

    def __ge__(self, other):
        return _comparison.compare("ge", self, other)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def softmax(self, dim: int, dtype=None):
        from .ops.activation import softmax

        return softmax(self, dim, dtype)

    def log_softmax(self, dim: int, dtype=None):
        from .ops.activation import log_softmax

        return log_softmax(self, dim, dtype)

    def argmax(self, dim: int | None = None, keepdim: bool = False):
        return _comparison.argmax(self, dim, keepdim)

    # --- reductions -------------------------------------------------------------------
    def sum(self, dim=None, keepdim: bool = False):
        return _reduction.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        return _reduction.mean(self, dim, keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False):
        return _reduction.max(self, dim, keepdim)

    def min(self, dim: int | None = None, keepdim: bool = False):
        return _reduction.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim: bool = False):
        return _reduction.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim: bool = False):
        return _reduction.amin(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False):
        return _reduction.argmin(self, dim, keepdim)

    def var(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None):
        from .ops.moments import var

        return var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None):
        from .ops.moments import std

        return std(self, dim, unbiased, keepdim, correction=correction)

    def any(self, dim=None, keepdim: bool = False):
        return _reduction.any(self, dim, keepdim)

    def all(self, dim=None, keepdim: bool = False):
        return _reduction.all(self, dim, keepdim)

    # --- views ------------------------------------------------------------------------
    def reshape(self, *shape):
        return _views.reshape(self, _views.shape_arg(shape))

    def view(self, *shape):
        return _views.view(self, _views.shape_arg(shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _views.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int):
        return _views.transpose(self, dim0, dim1)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else _views.transpose(self, 0, 1)

    @property
    def T(self):
        return _views.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        return _views.transpose(self, -2, -1)

    def permute(self, *dims):
        return _views.permute(self, _views.shape_arg(dims))

    def unsqueeze(self, dim: int):
        return _views.unsqueeze(self, dim)

    def squeeze(self, dim: int | None = None):
        return _views.squeeze(self, dim)

    def expand(self, *shape):
        return _views.expand(self, _views.shape_arg(shape))

    def __getitem__(self, index):
        return _views.getitem(self, index)

    def gather(self, dim: int, index):
        from .ops.gather import gather
        return gather(self, dim, index)

    def index_select(self, dim: int, index):
        from .ops.gather import index_select
        return index_select(self, dim, index)

    def split(self, split_size, dim: int = 0):
        return _views.split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0):
        return _views.chunk(self, chunks, dim)

    def repeat(self, *sizes):
        return _views.repeat(self, _views.shape_arg(sizes))

    # --- selection ----------------------------------------------------------------------
    def clamp(self, min=None, max=None):
        from .ops.select import clamp

        return clamp(self, min, max)

    clip = clamp

    def clamp_(self, min=None, max=None):
        from .ops.select import clamp_

        return clamp_(self, min, max)

    def masked_fill(self, mask, value):
        from .ops.select import masked_fill

        return masked_fill(self, mask, value)


def _check_target_device(device) -> None:
    target = torch.device(device)
    if target.type != DEVICE.type:
        raise DeviceError(
            f"tritongrad computes on {DEVICE.type}; cannot move a tensor to {target}. "
            "tritongrad uses one device per process (set TRITONGRAD_DEVICE before importing)."
        )


def _scaled(other, alpha: float, like: Tensor):
    """``alpha * other`` for add/sub(other, alpha): a Python product for numbers, our
    mul kernel (never torch's) for tensors."""
    if alpha == 1.0:
        return other
    other_is_float = isinstance(other, float) or bool(getattr(other, "is_floating_point",
                                                              lambda: False)())
    if isinstance(alpha, float) and not like.is_floating_point() and not other_is_float:
        raise DTypeError("For integral input tensors, argument alpha must not be a floating "
                         f"point number (got alpha={alpha} for {like.dtype} and "
                         f"{getattr(other, 'dtype', type(other).__name__)})")
    if like.dtype == torch.bool and (isinstance(other, bool)
                                     or getattr(other, "dtype", None) == torch.bool):
        # torch keeps bool + bool bool: alpha only turns other off (0) or leaves it
        return other if alpha else _as_tensor(other, like) * False
    if isinstance(other, numbers.Number):
        return other * alpha
    return _as_tensor(other, like) * alpha


def _as_tensor(value, like: Tensor) -> Tensor:
    """``value`` as a Tensor on our device: Tensors pass through; torch tensors
    must already be on the device (no silent copy); Python numbers become 0-d."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, torch.Tensor):
        check_device(value, "a torch tensor operand")
        return Tensor._wrap(value)
    from .creation import tensor

    return tensor(value, dtype=like.dtype)


from .ops import comparison as _comparison  # noqa: E402
from .ops import copy as _copy_ops  # noqa: E402
from .ops import elementwise as _elementwise  # noqa: E402
from .ops import reduction as _reduction  # noqa: E402
from .ops import unary_math as _unary_math  # noqa: E402
from .ops import views as _views  # noqa: E402
