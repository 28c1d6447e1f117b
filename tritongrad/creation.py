"""Creating tensors: from data, filled, ranges and random draws."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from ._device import DEVICE, check_device
from .kernels import copy as copy_kernels
from .tensor import Tensor

float32, float16, bfloat16, float64 = torch.float32, torch.float16, torch.bfloat16, torch.float64
int64, int32, bool_ = torch.int64, torch.int32, torch.bool


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        return tuple(size[0])
    return tuple(size)


def _host_to_device(host: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """Copy a host tensor to the device, then cast there with our kernel."""
    on_device = host.to(DEVICE, copy=True)  # a host -> device transfer (same dtype)
    if dtype is not None and dtype != host.dtype:
        return copy_kernels.copy(on_device, dtype)
    return on_device


def tensor(data, dtype: torch.dtype | None = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, number, numpy array,
    torch tensor or tg Tensor). Python floats become float32, ints int64."""
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, torch.Tensor):
        if data.is_meta:  # no values to copy
            check_device(data, "the meta tensor given to tg.tensor")
        if data.device.type == DEVICE.type:
            out = copy_kernels.copy(data, dtype or data.dtype)
        else:
            out = _host_to_device(data.detach().to("cpu"), dtype)  # host -> device copy
    else:
        array = np.asarray(data)
        if array.dtype == object:
            raise TypeError(f"tg.tensor: cannot build a tensor from {type(data).__name__} data")
        if not isinstance(data, np.ndarray) and dtype is None:
            # Python numbers follow torch's defaults, not numpy's. With a dtype given, the
            # values go to it in one rounding (a float64 request keeps every digit).
            if array.dtype.kind == "f":
                array = array.astype(np.float32)
            elif array.dtype.kind in "iu":
                array = array.astype(np.int64)
        host = torch.from_numpy(np.array(array, order="C", copy=True))
        out = _host_to_device(host, dtype)
    return Tensor(out, requires_grad=requires_grad)


def from_torch(t: torch.Tensor, requires_grad: bool = False) -> Tensor:
    """Share ``t``'s memory (no copy). It must be on tritongrad's device."""
    check_device(t, "the torch tensor given to from_torch")
    return Tensor(t.detach(), requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """Shares memory on the CPU device; a host -> device copy on a GPU."""
    host = torch.from_numpy(array)
    if DEVICE.type == "cpu":
        return Tensor(host)
    return Tensor(_host_to_device(host, None))


def empty(*size, dtype: torch.dtype = torch.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(torch.empty(_shape(size), dtype=dtype, device=DEVICE), requires_grad)


def zeros(*size, dtype: torch.dtype = torch.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(torch.zeros(_shape(size), dtype=dtype, device=DEVICE), requires_grad)


def full(size, fill_value: float, dtype: torch.dtype | None = None,
         requires_grad: bool = False) -> Tensor:
    if dtype is None:  # torch's defaults: bool for a bool, int64 for an int, else float32
        if isinstance(fill_value, bool):
            dtype = torch.bool
        elif isinstance(fill_value, numbers.Integral):
            dtype = torch.int64
        else:
            dtype = torch.float32
    data = copy_kernels.full(tuple(size), fill_value, dtype, DEVICE)
    return Tensor(data, requires_grad)


def ones(*size, dtype: torch.dtype = torch.float32, requires_grad: bool = False) -> Tensor:
    return full(_shape(size), 1.0, dtype, requires_grad)


def zeros_like(t: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return zeros(tuple(t.shape), dtype=dtype or t.dtype)


def ones_like(t: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return ones(tuple(t.shape), dtype=dtype or t.dtype)


def arange(start, end=None, step=1, dtype: torch.dtype | None = None) -> Tensor:
    if end is None:
        start, end = 0, start
    if step != 0 and (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and lower bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = torch.int64 if is_int else torch.float32
    return Tensor(copy_kernels.arange(start, end, step, dtype, DEVICE))


def rand(*size, dtype: torch.dtype = torch.float32, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) from the Philox generator (``tg.manual_seed`` makes it reproducible)."""
    from .kernels.random import uniform_
    from .random import rng_state_tensor

    out = torch.empty(_shape(size), dtype=dtype, device=DEVICE)
    uniform_(out, 0.0, 1.0, rng_state_tensor())
    return Tensor(out, requires_grad)


def randn(*size, dtype: torch.dtype = torch.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal draws from the Philox generator."""
    from .kernels.random import normal_
    from .random import rng_state_tensor

    out = torch.empty(_shape(size), dtype=dtype, device=DEVICE)
    normal_(out, 0.0, 1.0, rng_state_tensor())
    return Tensor(out, requires_grad)
