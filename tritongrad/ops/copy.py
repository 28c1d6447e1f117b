"""Clone and dtype cast: both run on the strided-copy kernel."""

from __future__ import annotations

import torch

from ..autograd.function import Function
from ..kernels import copy as copy_kernels
from ..tensor import Tensor


class Clone(Function):
    """y = x (a contiguous copy). Backward: dL/dx = dL/dy."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return Tensor._wrap(copy_kernels.copy(x._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad


class Cast(Function):
    """y = dtype(x). Backward: the gradient cast back to x's dtype."""

    @staticmethod
    def forward(ctx, x: Tensor, dtype: torch.dtype) -> Tensor:
        ctx.input_dtype = x.dtype
        return Tensor._wrap(copy_kernels.copy(x._data, dtype))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(copy_kernels.copy(grad._data, ctx.input_dtype)), None


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


def cast(x: Tensor, dtype: torch.dtype) -> Tensor:
    """Differentiable between float dtypes; an integer result has no grad_fn."""
    return Cast.apply(x, dtype)
