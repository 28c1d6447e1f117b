"""BatchNorm1d and BatchNorm2d, as torch.nn's (2.13, with its keyword-only ``bias``):
parameters ``weight`` (ones) and ``bias`` (zeros), buffers ``running_mean`` (zeros),
``running_var`` (ones) and ``num_batches_tracked`` (int64, 0), so torch state dicts load one
to one. Training normalizes with the batch's statistics and moves the running ones towards
them; eval normalizes with the running ones (or the batch's, without running statistics)."""

from __future__ import annotations

import torch

from .._device import DEVICE
from ..kernels._checks import DeviceError, ShapeError
from ..ops.batch_norm import batch_norm
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class _BatchNorm(Module):
    """torch's _BatchNorm: the state and forward both modules share; subclasses check the
    input's rank."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype: torch.dtype | None = None, *, bias: bool = True) -> None:
        super().__init__()
        if device is not None and torch.device(device).type != DEVICE.type:
            raise DeviceError(f"tritongrad computes on {DEVICE.type}; cannot create "
                              f"{type(self).__name__} on {device}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = dtype or torch.float32
        shape = (self.num_features,)
        if affine:
            self.weight = Parameter(torch.empty(shape, dtype=dtype, device=DEVICE))
            if bias:
                self.bias = Parameter(torch.empty(shape, dtype=dtype, device=DEVICE))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean",
                                 Tensor(torch.zeros(shape, dtype=dtype, device=DEVICE)))
            self.register_buffer("running_var",
                                 Tensor(torch.empty(shape, dtype=dtype, device=DEVICE)))
            self.register_buffer("num_batches_tracked",
                                 Tensor(torch.zeros((), dtype=torch.int64, device=DEVICE)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, x: Tensor) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)  # our kernel, on the device
            if self.momentum is None:  # a cumulative moving average, as torch
                factor = 1.0 / float(self.num_batches_tracked)  # reads the count back
        # eval normalizes with the running statistics, where there are any
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        track = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if track else None,
                          self.running_var if track else None, self.weight, self.bias,
                          use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) inputs over N (and L), per channel, as
    torch.nn.BatchNorm1d."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim not in (2, 3):
            raise ShapeError(f"expected 2D or 3D input (got {x.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) inputs over N, H and W, per channel, as
    torch.nn.BatchNorm2d."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ShapeError(f"expected 4D input (got {x.ndim}D input)")
