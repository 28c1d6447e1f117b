"""softmax and log_softmax along one dim: forward and backward.

The tensor is seen as rows (every other dim) by columns (the softmax dim), read through
two strides; one program handles one row, walking it in column blocks.

Forward, for a row x with s = sum_c exp(x_c - m), m the row max (a running max and a
running sum rescaled to it over blocks, the online softmax, so any row length works):
    softmax:      y_c = exp(x_c - m) / s
    log_softmax:  y_c = (x_c - m) - log s
Backward, with upstream gradient g and the saved output y:
    softmax:      dy_c/dx_k = y_c ([c == k] - y_k)
                  => gx_k = sum_c g_c y_c ([c == k] - y_k) = y_k (g_k - sum_c g_c y_c)
    log_softmax:  dy_c/dx_k = [c == k] - softmax_k = [c == k] - exp(y_k)
                  => gx_k = g_k - exp(y_k) sum_c g_c
Each backward row makes two passes: the row sum, then the gradient. Arithmetic is fp32
(fp64 for fp64), as in torch; outputs are contiguous (rows, columns).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._checks import FLOAT_DTYPES, ShapeError, check_same_device, check_same_dtype, check_tensor
from ._common import cast_to
from ._launch import CompileSpec, launch
from .copy import copy
from .elementwise import div_rn, upcast
from .reduction import rows_and_columns

MAX_BLOCK_C = 4096  # columns per block: wider rows take several blocks


@triton.jit
def softmax_fwd_kernel(
    y_ptr, x_ptr, n_cols, stride_xr, stride_xc,
    LOG: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """y[r] = softmax(x[r]) (log_softmax when LOG) for row r = program_id(0).

    y_ptr: (rows, n_cols) contiguous, x's dtype. x_ptr: (rows, n_cols), strides
    (stride_xr, stride_xc), any float dtype.
    """
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_C).to(tl.int64)
    x_row = x_ptr + row * stride_xr
    y_row = y_ptr + row * n_cols
    first = upcast(tl.load(x_row + cols * stride_xc, mask=cols < n_cols, other=float("-inf")))
    running_max = tl.max(first, axis=0)
    shift = tl.where(running_max == float("-inf"), 0.0, running_max)
    sum_exp = tl.sum(tl.exp(first - shift), axis=0)
    for start in range(BLOCK_C, n_cols, BLOCK_C):
        c = start + cols
        x = upcast(tl.load(x_row + c * stride_xc, mask=c < n_cols, other=float("-inf")))
        new_max = tl.maximum(running_max, tl.max(x, axis=0))
        # rescale the sum to the new shift; while the max is still -inf the sum is 0 and
        # the factor stays exp(0) (exp(0 - shift) would overflow for shift < -88)
        new_shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        old_shift = tl.where(running_max == float("-inf"), new_shift, running_max)
        sum_exp = sum_exp * tl.exp(old_shift - new_shift) + tl.sum(tl.exp(x - new_shift), axis=0)
        running_max = new_max
        shift = new_shift
    # As torch: shift first, then y = (x - m) - log(sum) or exp(x - m) / sum; x - lse in one
    # step would cancel (x and lse both large, y near 0). An all -inf row gives NaN
    # everywhere (sum 0, -inf - -inf), as torch; a NaN reaches every output.
    log_sum = tl.log(sum_exp)
    for start in range(0, n_cols, BLOCK_C):
        c = start + cols
        mask = c < n_cols
        x = upcast(tl.load(x_row + c * stride_xc, mask=mask, other=0.0))
        if LOG:
            y = (x - shift) - log_sum
        else:
            y = div_rn(tl.exp(x - shift), tl.zeros_like(x) + sum_exp)
        tl.store(y_row + c, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def softmax_bwd_kernel(
    gx_ptr, g_ptr, y_ptr, n_cols, stride_gr, stride_gc,
    LOG: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """gx[r] from the upstream g[r] and the saved output y[r] (see the module docstring).

    gx_ptr, y_ptr: (rows, n_cols) contiguous. g_ptr: (rows, n_cols), strides
    (stride_gr, stride_gc).
    """
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_C).to(tl.int64)
    g_row = g_ptr + row * stride_gr
    y_row = y_ptr + row * n_cols
    gx_row = gx_ptr + row * n_cols
    if y_ptr.dtype.element_ty == tl.float64:
        total = tl.zeros([BLOCK_C], dtype=tl.float64)
    else:
        total = tl.zeros([BLOCK_C], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_C):
        c = start + cols
        mask = c < n_cols
        g = upcast(tl.load(g_row + c * stride_gc, mask=mask, other=0.0))
        if LOG:
            total += g  # sum_c g_c
        else:
            total += g * upcast(tl.load(y_row + c, mask=mask, other=0.0))  # sum_c g_c y_c
    row_sum = tl.sum(total, axis=0)
    for start in range(0, n_cols, BLOCK_C):
        c = start + cols
        mask = c < n_cols
        g = upcast(tl.load(g_row + c * stride_gc, mask=mask, other=0.0))
        y = upcast(tl.load(y_row + c, mask=mask, other=0.0))
        if LOG:
            gx = g - tl.exp(y) * row_sum
        else:
            gx = y * (g - row_sum)
        tl.store(gx_row + c, cast_to(gx, gx_ptr.dtype.element_ty), mask=mask)


def _rows(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, int, int, list[int]]:
    """x seen as (rows, columns), ``dim`` the columns: (tensor, stride_r, stride_c, shape
    with ``dim`` moved last), through reduction's layout (a copy only when the other dims
    do not merge into one stride)."""
    kept = [d for d in range(x.dim()) if d != dim]
    moved_shape = [x.shape[d] for d in kept] + [x.shape[dim]]
    x, _, _, stride_r, stride_c = rows_and_columns(x, kept, [dim])
    return x, stride_r, stride_c, moved_shape


def _normalized_dim(op: str, dim: int, ndim: int) -> int:
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise ShapeError(f"{op}: Dimension out of range (expected to be in range of "
                         f"[{-rank}, {rank - 1}], but got {dim})")
    return dim % rank if ndim else 0


def softmax_fwd(x: torch.Tensor, dim: int, log: bool = False) -> torch.Tensor:
    """softmax (log_softmax when ``log``) of x along ``dim``, in x's dtype, x's shape."""
    op = "log_softmax" if log else "softmax"
    check_tensor(op, "input", x, FLOAT_DTYPES)
    dim = _normalized_dim(op, dim, x.dim())
    if x.dim() == 0:
        x = x.reshape(1)
        return softmax_fwd(x, 0, log).reshape(())
    rows, stride_r, stride_c, moved_shape = _rows(x, dim)
    out = torch.empty(moved_shape, dtype=x.dtype, device=x.device)
    _launch_per_row(softmax_fwd_kernel, out, (rows, out.shape[-1], stride_r, stride_c), log,
                    flops_per_element=4, reads_per_element=2)
    return out.movedim(-1, dim)


def _launch_per_row(kernel, out: torch.Tensor, args: tuple, log: bool, flops_per_element: int,
                    reads_per_element: int) -> None:
    """kernel over the rows of ``out`` (rows, n_cols), one program a row."""
    if not out.numel():
        return
    n_cols = out.shape[-1]
    block_c = min(triton.next_power_of_2(n_cols), MAX_BLOCK_C)
    launch(kernel, (out.numel() // n_cols,), out, *args, LOG=log, BLOCK_C=block_c,
           num_warps=min(16, max(4, block_c // 256)), flops=flops_per_element * out.numel(),
           bytes_moved=(reads_per_element + 1) * out.numel() * out.element_size())


def softmax_bwd(grad: torch.Tensor, y: torch.Tensor, dim: int, log: bool = False
                ) -> torch.Tensor:
    """Gradient of softmax_fwd w.r.t. its input, from the upstream ``grad`` and the saved
    output ``y`` (any strides for grad; y as softmax_fwd returned it)."""
    op = "log_softmax_backward" if log else "softmax_backward"
    check_tensor(op, "grad", grad, FLOAT_DTYPES)
    check_tensor(op, "output", y, FLOAT_DTYPES)
    check_same_device(op, grad=grad, output=y)
    check_same_dtype(op, grad=grad, output=y)
    if tuple(grad.shape) != tuple(y.shape):
        raise ShapeError(f"{op}: grad shape {tuple(grad.shape)} != output shape "
                         f"{tuple(y.shape)}")
    dim = _normalized_dim(op, dim, y.dim())
    if y.dim() == 0:
        return softmax_bwd(grad.reshape(1), y.reshape(1), 0, log).reshape(())
    g_rows, stride_gr, stride_gc, moved_shape = _rows(grad, dim)
    y_rows, stride_yr, stride_yc, _ = _rows(y, dim)
    if (stride_yr, stride_yc) != (moved_shape[-1], 1):  # the kernel reads y row-major
        y_rows = copy(y.movedim(dim, -1))
    gx = torch.empty(moved_shape, dtype=y.dtype, device=y.device)
    # two passes: 3 reads (g, y; g again) and the write
    _launch_per_row(softmax_bwd_kernel, gx, (g_rows, y_rows, gx.shape[-1], stride_gr,
                                             stride_gc), log,
                    flops_per_element=5, reads_per_element=4)
    return gx.movedim(-1, dim)


def _specs() -> list[CompileSpec]:
    specs = []
    for dt, log, block in [("fp32", False, 1024), ("bf16", True, 4096), ("fp16", False, 64),
                           ("fp64", True, 256)]:
        sig = {"y_ptr": "*" + dt, "x_ptr": "*" + dt, "n_cols": "i64", "stride_xr": "i64",
               "stride_xc": "i64", "LOG": "constexpr", "BLOCK_C": "constexpr"}
        specs.append(CompileSpec(softmax_fwd_kernel, sig, {"LOG": log, "BLOCK_C": block},
                                 f"{dt},log={log}"))
        sig = {"gx_ptr": "*" + dt, "g_ptr": "*" + dt, "y_ptr": "*" + dt, "n_cols": "i64",
               "stride_gr": "i64", "stride_gc": "i64", "LOG": "constexpr", "BLOCK_C": "constexpr"}
        specs.append(CompileSpec(softmax_bwd_kernel, sig, {"LOG": log, "BLOCK_C": block},
                                 f"{dt},log={log}"))
    return specs


COMPILE_SPECS = _specs()
