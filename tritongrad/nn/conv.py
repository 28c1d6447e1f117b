"""Convolution layers: Conv2d, with torch's constructor, attributes, initialisation, repr
and state-dict keys."""

from __future__ import annotations

import math

import torch

from .._device import DEVICE
from ..kernels._checks import DeviceError, UnsupportedError
from ..kernels.conv import pair
from ..ops.conv import conv2d
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # torch's; only zeros here


class Conv2d(Module):
    """y = conv2d(x, weight, bias, stride, padding, dilation, groups), as ``torch.nn.Conv2d``:
    ``weight`` (out_channels, in_channels / groups, kH, kW) and ``bias`` (out_channels,).

    Initialisation is torch's: weight ~ kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * kH * kW, and
    bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from tritongrad's generator
    (``tg.manual_seed`` makes it reproducible). padding_mode: only 'zeros' is implemented
    (the other modes torch knows raise UnsupportedError)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        op = "Conv2d"
        if device is not None and torch.device(device).type != DEVICE.type:
            raise DeviceError(f"tritongrad computes on {DEVICE.type}; cannot create Conv2d "
                              f"on {device}")
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        self.kernel_size = pair(op, "kernel_size", kernel_size, 1)
        self.stride = pair(op, "stride", stride, 1)
        self.dilation = pair(op, "dilation", dilation, 1)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = pair(op, "padding", padding, 0)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {set(PADDING_MODES)}, but got "
                             f"padding_mode={padding_mode!r}")
        if padding_mode != "zeros":
            raise UnsupportedError(f"Conv2d: padding_mode={padding_mode!r} is not implemented; "
                                   "only 'zeros'")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dtype = dtype or torch.float32
        self.weight = Parameter(torch.empty(
            (self.out_channels, self.in_channels // self.groups, *self.kernel_size),
            dtype=dtype, device=DEVICE))
        if bias:
            self.bias = Parameter(torch.empty((self.out_channels,), dtype=dtype, device=DEVICE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
