"""ReLU forward and backward, elementwise over any strided input.

Forward: ``y = relu(x) = x if x > 0 else 0``; NaN stays NaN, as in torch.relu
(``tl.where(x < 0, 0, x)``, not ``tl.maximum``, which turns NaN into 0).

Backward: ``dy/dx = 1 if x > 0 else 0`` (torch takes 0 at x = 0), and ``x > 0`` iff
``y > 0``, so the gradient needs only the saved output:
``grad_x = grad_y * [y > 0]``. As torch's ``threshold_backward`` does, it is
written as ``y <= 0 ? 0 : grad_y``: a NaN output passes its gradient through, and a
NaN gradient where ``y <= 0`` becomes 0.

Linear layers fuse both directions into the matmul kernel instead (see
``kernels/matmul.py``); these kernels serve a standalone ``relu``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import FLOAT_DTYPES, check_backward_pair, check_tensor
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .copy import MAX_DIMS, flat_layout, offsets_of

# Under the interpreter each program costs ~0.5 ms whatever its size: use few, large ones.
RELU_BLOCK = 8192 if interpreting() else 1024


@triton.jit
def relu_fwd_kernel(
    x_ptr, y_ptr,
    numel, size1, size2, size3, size4, size5,
    x_s0, x_s1, x_s2, x_s3, x_s4, x_s5,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """y[i] = relu(x[i]) for row-major index i of a (padded) 6-D shape.

    x_ptr: input of any strides (x_s0..x_s5, int64 offsets).
    y_ptr: contiguous output of numel elements, same dtype as x.
    numel: element count; size1..size5: trailing sizes of the merged 6-D shape.
    FLAT: the layout merged to one dim (offsets are linear * stride; see copy.offsets_of).
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    x_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       x_s0, x_s1, x_s2, x_s3, x_s4, x_s5, FLAT)
    x = tl.load(x_ptr + x_off, mask=mask, other=0.0)
    if x_ptr.dtype.element_ty != tl.float64:  # fp64 stays fp64 (gradcheck)
        x = x.to(tl.float32)
    y = tl.where(x < 0, 0.0, x)
    tl.store(y_ptr + linear, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def relu_bwd_kernel(
    grad_y_ptr, y_ptr, grad_x_ptr,
    numel, size1, size2, size3, size4, size5,
    gy_s0, gy_s1, gy_s2, gy_s3, gy_s4, gy_s5,
    y_s0, y_s1, y_s2, y_s3, y_s4, y_s5,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """grad_x[i] = 0 if y[i] <= 0 else grad_y[i] (torch's threshold_backward).

    grad_y_ptr: upstream gradient, any strides (gy_s*).
    y_ptr: the forward output relu(x), any strides (y_s*), same shape.
    grad_x_ptr: contiguous output of numel elements.
    numel, size1..size5, FLAT: as in relu_fwd_kernel.
    """
    pid = tl.program_id(0).to(tl.int64)
    linear = pid * BLOCK + tl.arange(0, BLOCK)
    mask = linear < numel
    gy_off = offsets_of(linear, size1, size2, size3, size4, size5,
                        gy_s0, gy_s1, gy_s2, gy_s3, gy_s4, gy_s5, FLAT)
    y_off = offsets_of(linear, size1, size2, size3, size4, size5,
                       y_s0, y_s1, y_s2, y_s3, y_s4, y_s5, FLAT)
    grad_y = tl.load(grad_y_ptr + gy_off, mask=mask, other=0.0)
    y = tl.load(y_ptr + y_off, mask=mask, other=0.0)
    if grad_y_ptr.dtype.element_ty != tl.float64:  # fp64 stays fp64 (gradcheck)
        grad_y = grad_y.to(tl.float32)
        y = y.to(tl.float32)
    grad_x = tl.where(y <= 0, 0.0, grad_y)
    tl.store(grad_x_ptr + linear, cast_to(grad_x, grad_x_ptr.dtype.element_ty), mask=mask)


def relu_fwd(x: torch.Tensor) -> torch.Tensor:
    """relu(x) as a new contiguous tensor of x's dtype; x may have any strides."""
    check_tensor("relu", "input", x, FLOAT_DTYPES)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    numel = x.numel()
    if numel == 0:
        return y
    sizes, (x_strides,), flat = flat_layout(x.shape, x.stride())
    launch(
        relu_fwd_kernel, (cdiv(numel, RELU_BLOCK),), x, y, numel, *sizes[1:], *x_strides,
        FLAT=flat, BLOCK=RELU_BLOCK, flops=numel, bytes_moved=2 * numel * x.element_size(),
    )
    return y


def relu_bwd(grad_out: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """grad_out * [out > 0] (0 where out <= 0, as torch) as a new contiguous tensor.

    grad_out, out: the same shape and dtype, any strides; out is relu's forward output.
    """
    check_backward_pair("relu_backward", grad_out, out, "output", FLOAT_DTYPES)
    grad_in = torch.empty(out.shape, dtype=out.dtype, device=out.device)
    numel = out.numel()
    if numel == 0:
        return grad_in
    sizes, (gy_strides, y_strides), flat = flat_layout(out.shape, grad_out.stride(),
                                                       out.stride())
    launch(
        relu_bwd_kernel, (cdiv(numel, RELU_BLOCK),), grad_out, out, grad_in, numel, *sizes[1:],
        *gy_strides, *y_strides,
        FLAT=flat, BLOCK=RELU_BLOCK, flops=numel, bytes_moved=3 * numel * out.element_size(),
    )
    return grad_in


def _relu_specs() -> list:
    sizes = {"numel": "i64", **{f"size{i}": "i64" for i in range(1, MAX_DIMS)}}
    specs = []
    modes = {"FLAT": "constexpr", "BLOCK": "constexpr"}
    for dt, flat in (("fp32", True), ("fp16", False), ("bf16", True), ("fp64", False)):
        ptr = "*" + dt
        fwd_sig = {"x_ptr": ptr, "y_ptr": ptr, **sizes,
                   **{f"x_s{i}": "i64" for i in range(MAX_DIMS)}, **modes}
        constexprs = {"FLAT": flat, "BLOCK": 1024}
        specs.append(CompileSpec(relu_fwd_kernel, fwd_sig, constexprs, dt))
        bwd_sig = {"grad_y_ptr": ptr, "y_ptr": ptr, "grad_x_ptr": ptr, **sizes,
                   **{f"gy_s{i}": "i64" for i in range(MAX_DIMS)},
                   **{f"y_s{i}": "i64" for i in range(MAX_DIMS)}, **modes}
        specs.append(CompileSpec(relu_bwd_kernel, bwd_sig, constexprs, dt))
    return specs


COMPILE_SPECS = _relu_specs()
