"""Random numbers on the device: uniform_, normal_ and dropout, all from Triton's Philox
(``tl.rand`` / ``tl.randn``).

The generator state is a device int64 tensor ``[seed, offset]``. Every kernel reads seed and
offset from it (so a captured CUDA graph draws fresh numbers on every replay), draws value i
of its output from Philox(seed, offset + i), and the launcher then runs the 1-program
``rng_advance_kernel``, which adds the number of values consumed to the offset. The host
never needs to know the offset.

Dropout snapshots the [seed, offset] it used into a small device tensor; its backward
regenerates the same mask from that snapshot, so no mask is stored between the passes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import (
    DeviceError,
    OutOfRangeError,
    ShapeError,
    check_tensor,
    check_writable,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, flat_layout, offsets_of
from .elementwise import scalar_like, upcast

# fp64 draws are made in fp64 arithmetic from the same fp32 Philox numbers: they carry
# fp32's resolution (2**-24 for uniform), not fp64's.
RANDOM_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
BLOCK = 4096 if interpreting() else 1024


def new_rng_state(seed: int, device: torch.device | str) -> torch.Tensor:
    """A fresh generator state [seed, 0] (int64) on ``device`` (a host->device copy)."""
    return torch.tensor([int(seed), 0], dtype=torch.int64).to(device)


@triton.jit
def rng_advance_kernel(state_ptr, n_values):
    """state[1] += n_values. state_ptr: int64 [2] = [seed, offset]; one program."""
    offset = tl.load(state_ptr + 1)
    tl.store(state_ptr + 1, offset + n_values)


@triton.jit
def upcast_like_out(draw, OUT_DTYPE: tl.constexpr):
    """An fp32 Philox draw in the compute dtype of OUT_DTYPE values (fp64 for fp64)."""
    if OUT_DTYPE == tl.float64:
        result = draw.to(tl.float64)
    else:
        result = draw
    return result


@triton.jit
def fill_random_kernel(
    out_ptr, state_ptr,
    a: tl.float64, b: tl.float64,
    numel, size1, size2, size3, size4, size5,
    s0, s1, s2, s3, s4, s5,
    NORMAL: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """out[i] = a + (b - a) * U[0, 1) (uniform) or a + b * N(0, 1) (NORMAL), where i is the
    row-major index and the draw is Philox(seed, offset + i).

    out_ptr: any non-overlapping strides (6-D padded shape, see copy.strided_offsets;
        FLAT: merged to one dim, see copy.offsets_of).
    state_ptr: int64 [2] = [seed, offset], read only.
    a, b: (low, high) or (mean, std), rounded to the compute dtype (fp32; fp64 for fp64).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    seed = tl.load(state_ptr)
    offset = tl.load(state_ptr + 1)
    if NORMAL:
        draw = upcast_like_out(tl.randn(seed, offset + linear), out_ptr.dtype.element_ty)
        value = scalar_like(a, draw) + scalar_like(b, draw) * draw
        out = cast_to(value, out_ptr.dtype.element_ty)
    else:
        draw = upcast_like_out(tl.rand(seed, offset + linear), out_ptr.dtype.element_ty)
        low_value, high_value = scalar_like(a, draw), scalar_like(b, draw)
        value = low_value + (high_value - low_value) * draw
        out = cast_to(value, out_ptr.dtype.element_ty)
        # torch's uniform_ is [a, b): a value that reaches b (tl.rand can return exactly 1.0,
        # and rounding to fp16/bf16 carries U > 1 - 2**-9 up to 1.0) becomes a, as torch does.
        high = cast_to(tl.zeros_like(value) + high_value, out_ptr.dtype.element_ty)
        low = cast_to(tl.zeros_like(value) + low_value, out_ptr.dtype.element_ty)
        out = tl.where(upcast(out) >= upcast(high), low, out)
    out_off = offsets_of(linear, size1, size2, size3, size4, size5, s0, s1, s2, s3, s4, s5, FLAT)
    tl.store(out_ptr + out_off, out, mask=mask)


# Dropout: keep_i = (U_i >= p), so P(keep) = 1 - p; y = x * keep / (1 - p) (a product, as
# torch's: a dropped NaN or inf gives NaN).
# Backward: y_i = x_i * keep_i * scale is linear in x_i, so grad_x_i = grad_i * keep_i * scale,
# with the same keep_i regenerated from the saved [seed, offset].


@triton.jit
def dropout_kernel(
    x_ptr, y_ptr, state_ptr, snapshot_ptr,
    p, scale: tl.float64,
    numel, size1, size2, size3, size4, size5,
    sx0, sx1, sx2, sx3, sx4, sx5,
    SAVE_STATE: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """y[i] = x[i] * (U_i >= p) * scale with U_i = Philox(seed, offset + i) (i row-major).

    x_ptr: any strides (sx*); y_ptr: contiguous [numel]. state_ptr: int64 [2] read only.
    snapshot_ptr: int64 [2], written with the [seed, offset] used by program 0 when
    SAVE_STATE (forward); the backward passes its snapshot as state_ptr and regenerates
    the same mask. scale: 1 / (1 - p) (0 when p = 1).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    seed = tl.load(state_ptr)
    offset = tl.load(state_ptr + 1)
    if SAVE_STATE:
        if pid == 0:
            tl.store(snapshot_ptr, seed)
            tl.store(snapshot_ptr + 1, offset)
    keep = tl.rand(seed, offset + linear) >= p
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       sx0, sx1, sx2, sx3, sx4, sx5, FLAT)
    x = upcast(tl.load(x_ptr + x_off, mask=mask, other=0.0))
    # x * (keep * scale), as torch multiplies by its mask: a dropped NaN or inf stays NaN
    y = x * tl.where(keep, scalar_like(scale, x), 0.0)
    tl.store(y_ptr + linear, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


def _check_state(op: str, name: str, state: torch.Tensor) -> None:
    check_tensor(op, name, state, (torch.int64,))
    if tuple(state.shape) != (2,) or not state.is_contiguous():
        raise ShapeError(f"{op}: {name} must be a contiguous int64 tensor [seed, offset] of "
                         f"shape (2,), got shape {tuple(state.shape)}")


def _advance(state: torch.Tensor, n_values: int) -> None:
    launch(rng_advance_kernel, (1,), state, n_values, bytes_moved=16)


def _fill(op: str, out: torch.Tensor, a: float, b: float, rng_state: torch.Tensor,
          normal: bool) -> torch.Tensor:
    check_tensor(op, "out", out, RANDOM_DTYPES)
    check_writable(op, "out", out)
    _check_state(op, "rng_state", rng_state)
    if out.device != rng_state.device:
        raise DeviceError(f"{op}: Expected all tensors to be on the same device, but out is on "
                          f"{out.device} and rng_state on {rng_state.device}")
    numel = out.numel()
    if numel == 0:
        return out
    sizes, (strides,), flat = flat_layout(out.shape, out.stride())
    launch(fill_random_kernel, (cdiv(numel, BLOCK),), out, rng_state, float(a), float(b),
           numel, *sizes[1:], *strides, NORMAL=normal, FLAT=flat, BLOCK=BLOCK,
           flops=(40 if normal else 20) * numel, bytes_moved=numel * out.element_size())
    _advance(rng_state, numel)
    return out


def uniform_(out: torch.Tensor, low: float, high: float, rng_state: torch.Tensor) -> torch.Tensor:
    """Fill ``out`` (any non-overlapping view) with U[low, high) in place; advances the state."""
    if not low <= high:  # also catches NaN bounds
        raise OutOfRangeError(f"uniform_: expects to return a [from, to) range, but found "
                              f"from={low} > to={high}")
    return _fill("uniform_", out, low, high, rng_state, False)


def normal_(out: torch.Tensor, mean: float, std: float, rng_state: torch.Tensor) -> torch.Tensor:
    """Fill ``out`` with N(mean, std^2) in place; advances the state."""
    if std < 0:
        raise OutOfRangeError(f"normal_: expects std >= 0.0, but found std {std}")
    return _fill("normal_", out, mean, std, rng_state, True)


def _check_p(op: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise OutOfRangeError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _dropout(op, x, p, state, snapshot, save):
    numel = x.numel()
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if numel == 0:
        return y
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    sizes, (strides,), flat = flat_layout(x.shape, x.stride())
    launch(dropout_kernel, (cdiv(numel, BLOCK),), x, y, state, snapshot, float(p), scale,
           numel, *sizes[1:], *strides, SAVE_STATE=save, FLAT=flat, BLOCK=BLOCK,
           flops=22 * numel, bytes_moved=2 * numel * x.element_size())
    return y


def dropout_fwd(x: torch.Tensor, p: float,
                rng_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, seed_offset): y = x * mask / (1 - p) (contiguous), seed_offset a device int64 [2]
    snapshot of the state used, for dropout_bwd. Advances rng_state by x.numel()."""
    op = "dropout"
    check_tensor(op, "x", x, RANDOM_DTYPES)
    _check_state(op, "rng_state", rng_state)
    _check_p(op, p)
    snapshot = torch.empty((2,), dtype=torch.int64, device=x.device)
    if x.numel() == 0:
        return torch.empty(x.shape, dtype=x.dtype, device=x.device), snapshot
    y = _dropout(op, x, float(p), rng_state, snapshot, True)
    _advance(rng_state, x.numel())
    return y, snapshot


def dropout_bwd(grad: torch.Tensor, p: float, seed_offset: torch.Tensor) -> torch.Tensor:
    """grad_x = grad * mask / (1 - p), regenerating dropout_fwd's mask from seed_offset."""
    op = "dropout_bwd"
    check_tensor(op, "grad", grad, RANDOM_DTYPES)
    _check_state(op, "seed_offset", seed_offset)
    _check_p(op, p)
    return _dropout(op, grad, float(p), seed_offset, seed_offset, False)


def _specs():
    six = [f"{{}}{i}" for i in range(MAX_DIMS)]
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    specs = [CompileSpec(rng_advance_kernel, {"state_ptr": "*i64", "n_values": "i64"}, {})]
    for dtype, normal in (("fp32", False), ("bf16", True), ("fp16", False), ("fp64", False),
                          ("fp64", True), ("fp32", True)):
        sig = {"out_ptr": "*" + dtype, "state_ptr": "*i64", "a": "fp64", "b": "fp64", **sizes,
               **{s.format("s"): "i64" for s in six}, "NORMAL": "constexpr",
               "FLAT": "constexpr", "BLOCK": "constexpr"}
        specs.append(CompileSpec(fill_random_kernel, sig,
                                 {"NORMAL": normal, "FLAT": normal, "BLOCK": BLOCK},
                                 f"{dtype},normal={normal}"))
    for dtype, save in (("fp32", True), ("bf16", False), ("fp16", True), ("fp64", True)):
        sig = {"x_ptr": "*" + dtype, "y_ptr": "*" + dtype, "state_ptr": "*i64",
               "snapshot_ptr": "*i64", "p": "fp32", "scale": "fp64", **sizes,
               **{s.format("sx"): "i64" for s in six}, "SAVE_STATE": "constexpr",
               "FLAT": "constexpr", "BLOCK": "constexpr"}
        specs.append(CompileSpec(dropout_kernel, sig,
                                 {"SAVE_STATE": save, "FLAT": save, "BLOCK": BLOCK},
                                 f"{dtype},save={save}"))
    return specs


COMPILE_SPECS = _specs()

__all__ = ["new_rng_state", "uniform_", "normal_", "dropout_fwd", "dropout_bwd"]
