"""Input checks shared by launchers, and the error types users catch.

Every check runs on metadata (shape, dtype, device, strides) before any launch
and raises an error that names what it saw. The error classes also subclass the
builtin a PyTorch user would expect (ValueError, TypeError, RuntimeError,
IndexError), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import torch

from ._launch import runtime_device_type


class TritongradError(Exception):
    """Base class of every error tritongrad raises on purpose."""


class ShapeError(TritongradError, ValueError):
    pass


class DTypeError(TritongradError, TypeError):
    pass


class DeviceError(TritongradError, RuntimeError):
    pass


class LayoutError(TritongradError, ValueError):
    """Strides a kernel cannot take (overlapping writes, for example)."""


class OutOfRangeError(TritongradError, IndexError):
    pass


class UnsupportedError(TritongradError, NotImplementedError):
    """A valid request this version of tritongrad does not implement."""


class ValueCheckError(TritongradError, RuntimeError):
    """A value computed on the device failed a check (a non-finite norm, say)."""


FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# Integer tensors take exact integer add, sub, mul, neg, abs and powers (wrapping on
# overflow, as torch's); anything else on them computes in a float dtype.
INTEGER_DTYPES = (torch.int64, torch.int32, torch.int8, torch.uint8)

# Triton type strings, for compile specs and messages.
TRITON_DTYPE = {
    torch.float32: "fp32",
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.float64: "fp64",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.int8: "i8",
    torch.uint8: "u8",
    torch.bool: "i1",
}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def shape_str(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) if t.dim() else "scalar"


def check_tensor(op: str, name: str, t: object, dtypes=None, ndims=None) -> None:
    """``t`` is a torch tensor on the device our kernels run on, of an allowed dtype and rank."""
    if not isinstance(t, torch.Tensor):
        raise DTypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    want = runtime_device_type()
    if t.device.type != want:
        raise DeviceError(
            f"{op}: Expected all tensors to be on the same device, but {name} is on "
            f"{t.device} and the kernels run on {want}"
        )
    if dtypes is not None and t.dtype not in dtypes:
        allowed = ", ".join(dtype_name(d) for d in dtypes)
        raise DTypeError(f"{op}: {name} has dtype {dtype_name(t.dtype)}; supported: {allowed}")
    if ndims is not None and t.dim() not in ndims:
        allowed = " or ".join(f"{n}-D" for n in ndims)
        raise ShapeError(f"{op}: {name} must be {allowed}, got shape {tuple(t.shape)}")


def check_same_dtype(op: str, **tensors: torch.Tensor) -> None:
    names = list(tensors)
    first = tensors[names[0]]
    for name in names[1:]:
        if tensors[name].dtype != first.dtype:
            raise DTypeError(
                f"{op}: expected {names[0]} and {name} to have the same dtype, but got: "
                f"{dtype_name(first.dtype)} != {dtype_name(tensors[name].dtype)}"
            )


def check_same_device(op: str, **tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{n} on {d}" for n, d in devices.items())
        raise DeviceError(f"{op}: Expected all tensors to be on the same device, but got {listed}")


def check_backward_pair(op: str, grad_out: torch.Tensor, saved: torch.Tensor,
                        saved_name: str, dtypes) -> None:
    """An elementwise backward's inputs: the upstream gradient and the tensor the forward
    saved (named ``saved_name``) must share dtype (one of ``dtypes``), device and shape."""
    check_tensor(op, "grad_output", grad_out, dtypes)
    check_tensor(op, saved_name, saved, dtypes)
    check_same_device(op, grad_output=grad_out, **{saved_name: saved})
    check_same_dtype(op, grad_output=grad_out, **{saved_name: saved})
    if grad_out.shape != saved.shape:
        raise ShapeError(f"{op}: grad_output has shape {tuple(grad_out.shape)} but the forward "
                         f"{saved_name} has shape {tuple(saved.shape)}")


def has_internal_overlap(t: torch.Tensor) -> bool:
    """True when two elements of ``t`` share memory (a stride-0 dim of size > 1),
    so a kernel writing through it would race with itself."""
    return any(stride == 0 and size > 1 for size, stride in zip(t.shape, t.stride()))


def check_writable(op: str, name: str, t: torch.Tensor) -> None:
    if has_internal_overlap(t):
        raise LayoutError(
            f"{op}: unsupported operation: {name} (shape {tuple(t.shape)}, strides "
            f"{tuple(t.stride())}) has more than one element referring to the same memory "
            "location (an expanded view); writing to it would collide. Call .clone() first."
        )
