"""2-D pooling over the last two dims of (N, C, H, W) or unbatched (C, H, W) input: max,
average and adaptive average, forward and backward, with torch's semantics.

Every kernel runs one program per BLOCK of flat elements (outputs forward, inputs
backward), reads x and the upstream gradient through their four strides (channels-last
and other views are read in place, never copied) and writes a contiguous (N, C, *, *)
result. Sums are fp32 (fp64 for fp64); the max compares upcast values.

Windows, with (k, s, p, d) the kernel size, stride, padding and dilation of one dim:
    max, avg:  output o reads input rows o*s - p + j*d, j = 0 .. k-1 (d = 1 for avg);
               rows outside [0, H) are padding (-inf for max, 0 for avg).
    adaptive:  output o of O averages rows [floor(o*H/O), ceil((o+1)*H/O)).
Output size (torch's pooling_output_shape): O = floor((H + 2p - d(k-1) - 1 + (s-1 if ceil
mode)) / s) + 1, less one when ceil mode would start the last window at or past H + p.

Max: y = the first maximum in the window's scan order (row by row), where a NaN wins and
a later NaN replaces an earlier one (torch's `val > max || isnan(val)`); the saved index is
the flat h*W + w of that element within its (n, c) plane, torch's int64 indices. A window
with no real element (only with dilation, e.g. W = 1, kernel 2, dilation 2, padding 1)
gives -inf, index -1 and no gradient; torch gives -inf with the index of its clamped
window start (outside the window, maybe outside the plane) and its backward sends the
gradient there: a difference kept on purpose.

Average: y = sum(window) / divisor, torch's divisor: divisor_override if given, else
count_include_pad: the window clipped to the padded input [-p, H + p) (a ceil-mode window
may run past it), else the number of real elements. Adaptive: y = sum / kh / kw, the
window's height and width (two divisions, as torch's CPU kernel).

Backward (deterministic, no atomics: each input element gathers from the outputs whose
windows cover it, in increasing output order, as torch's scatter adds them):
    max:  y_o = x_{idx_o}  =>  dL/dx_i = sum over o with idx_o == i of dy_o. The outputs
          that may pick i are those with o*s - p + j*d == i for some tap j < k (one o per
          j, when s divides i + p - j*d); each is checked against its saved index.
    avg:  y_o = sum_{i in window(o)} x_i / div_o  =>  dL/dx_i = sum over o with
          i in window(o) of dy_o / div_o. The outputs covering row i form a run of at
          most ceil(k/s) (avg: o in ((i + p - k)/s, (i + p)/s]) or ceil(O/H) + 1
          (adaptive: o in (i*O/H - 1, (i+1)*O/H)) consecutive rows; the launcher passes
          the exact longest run (COVER) and the kernel tests each o for membership.
"""

from __future__ import annotations

import operator

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    DTypeError,
    ShapeError,
    check_same_device,
    check_tensor,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .elementwise import div_rn, upcast

# Flat elements per program. The interpreter runs programs one after another (about
# 0.5 ms each), so there a few big ones; on a GPU 512 elements over 4 warps (4 a thread,
# each looping over its window). Untuned: no GPU measurement yet.
MAX_BLOCK = 4096 if interpreting() else 512
NUM_WARPS = 4


@triton.jit
def max_pool2d_fwd_kernel(
    y_ptr, idx_ptr, x_ptr,
    n_out, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW,
    stride_xn, stride_xc, stride_xh, stride_xw,
    BLOCK: tl.constexpr,
):
    """y[n, c, oh, ow] = max over the window of x, idx = its flat h*W + w (module docstring).

    y_ptr: (N, C, OH, OW) contiguous, x's dtype. idx_ptr: (N, C, OH, OW) contiguous int64.
    x_ptr: (N, C, H, W), strides (stride_xn, stride_xc, stride_xh, stride_xw), float.
    n_out: N*C*OH*OW. KH, KW: kernel; SH, SW: stride; PH, PW: padding; DH, DW: dilation.
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    mask = offs < n_out
    ow = offs % OW
    oh = (offs // OW) % OH
    nc = offs // OW // OH
    x_plane = x_ptr + (nc // C) * stride_xn + (nc % C) * stride_xc
    h0 = oh * SH - PH
    w0 = ow * SW - PW
    best = upcast(tl.full([BLOCK], float("-inf"), x_ptr.dtype.element_ty))  # fp32 (fp64 for fp64)
    best_idx = tl.full([BLOCK], -1, tl.int64)  # -1 until the first real element
    for kh in range(0, KH):
        ih = h0 + kh * DH
        row_ok = mask & (ih >= 0) & (ih < H)
        for kw in range(0, KW):
            iw = w0 + kw * DW
            ok = row_ok & (iw >= 0) & (iw < W)
            v = tl.load(x_plane + ih * stride_xh + iw * stride_xw, mask=ok, other=0.0)
            v = v.to(best.dtype)  # fp32 (fp64 for fp64) right after the load
            # torch: `val > max || isnan(val)`, from max = -inf at the first real element
            # (so an all -inf window points there); tl.maximum would drop NaN
            take = ok & ((v > best) | (v != v) | (best_idx < 0))
            best = tl.where(take, v, best)
            best_idx = tl.where(take, ih * W + iw, best_idx)
    tl.store(y_ptr + offs, cast_to(best, y_ptr.dtype.element_ty), mask=mask)
    tl.store(idx_ptr + offs, best_idx, mask=mask)


@triton.jit
def max_pool2d_bwd_kernel(
    dx_ptr, dy_ptr, idx_ptr,
    n_in, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW,
    stride_dyn, stride_dyc, stride_dyh, stride_dyw,
    stride_in, stride_ic, stride_ih, stride_iw,
    BLOCK: tl.constexpr,
):
    """dx[n, c, h, w] = sum of dy[n, c, oh, ow] over the outputs whose saved index is h*W + w
    (derivation in the module docstring); no atomics.

    dx_ptr: (N, C, H, W) contiguous, dy's dtype. dy_ptr: (N, C, OH, OW), strides
    (stride_dyn, ...). idx_ptr: (N, C, OH, OW) int64 (the forward's indices), strides
    (stride_in, ...). n_in: N*C*H*W. KH .. DW: the forward's window parameters.
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    mask = offs < n_in
    w = offs % W
    h = (offs // W) % H
    nc = offs // W // H
    n = nc // C
    c = nc % C
    dy_plane = dy_ptr + n * stride_dyn + c * stride_dyc
    idx_plane = idx_ptr + n * stride_in + c * stride_ic
    me = h * W + w
    acc = upcast(tl.zeros([BLOCK], dtype=dy_ptr.dtype.element_ty))  # fp32 (fp64 for fp64)
    for kh_rev in range(0, KH):
        kh = KH - 1 - kh_rev  # the last tap first: increasing oh
        th = h + PH - kh * DH  # = oh * SH when tap kh of output row oh lands on h
        th_ok = th >= 0
        th = tl.where(th_ok, th, 0)
        oh = th // SH
        row_ok = mask & th_ok & (oh * SH == th) & (oh < OH)
        for kw_rev in range(0, KW):
            kw = KW - 1 - kw_rev
            tw = w + PW - kw * DW
            tw_ok = tw >= 0
            tw = tl.where(tw_ok, tw, 0)
            ow = tw // SW
            ok = row_ok & tw_ok & (ow * SW == tw) & (ow < OW)
            picked = tl.load(idx_plane + oh * stride_ih + ow * stride_iw, mask=ok, other=-1)
            hit = ok & (picked == me)
            g = tl.load(dy_plane + oh * stride_dyh + ow * stride_dyw, mask=hit, other=0.0)
            acc += g.to(acc.dtype)
    tl.store(dx_ptr + offs, cast_to(acc, dx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _avg_window(o, in_size, out_size, kernel, stride, pad, ADAPTIVE: tl.constexpr):
    """(lo, hi, padded) of output row o: it averages the real input rows [lo, hi); padded
    is its length clipped to the padded input [-pad, in_size + pad), the count_include_pad
    divisor (adaptive: hi - lo)."""
    if ADAPTIVE:
        lo = (o * in_size) // out_size
        hi = ((o + 1) * in_size + out_size - 1) // out_size
        padded = hi - lo
    else:
        start = o * stride - pad
        end = tl.minimum(start + kernel, in_size + pad)
        padded = end - start
        lo = tl.maximum(start, 0)
        hi = tl.minimum(end, in_size)
    return lo, hi, padded


@triton.jit
def _avg_divisor(h_lo, h_hi, h_padded, w_lo, w_hi, w_padded, divisor_override,
                 COUNT_INCLUDE_PAD: tl.constexpr):
    """torch's divide_factor of a (non-adaptive) average window, as an int64."""
    if COUNT_INCLUDE_PAD:
        count = h_padded * w_padded
    else:
        count = (h_hi - h_lo) * (w_hi - w_lo)
    return tl.where(divisor_override != 0, divisor_override, count)


@triton.jit
def avg_pool2d_fwd_kernel(
    y_ptr, x_ptr,
    n_out, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, divisor_override,
    stride_xn, stride_xc, stride_xh, stride_xw,
    ADAPTIVE: tl.constexpr, COUNT_INCLUDE_PAD: tl.constexpr, BLOCK: tl.constexpr,
):
    """y[n, c, oh, ow] = sum of x over the window / divisor (module docstring).

    y_ptr: (N, C, OH, OW) contiguous, x's dtype. x_ptr: (N, C, H, W), strides (stride_xn,
    stride_xc, stride_xh, stride_xw). n_out: N*C*OH*OW. KH, KW: the kernel (ADAPTIVE: the
    tallest and widest window); SH, SW, PH, PW: stride and padding (unused if ADAPTIVE).
    divisor_override: 0 for none (torch refuses 0). COUNT_INCLUDE_PAD: the divisor counts
    padding (unused if ADAPTIVE).
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    mask = offs < n_out
    ow = offs % OW
    oh = (offs // OW) % OH
    nc = offs // OW // OH
    x_plane = x_ptr + (nc // C) * stride_xn + (nc % C) * stride_xc
    h_lo, h_hi, h_padded = _avg_window(oh, H, OH, KH, SH, PH, ADAPTIVE)
    w_lo, w_hi, w_padded = _avg_window(ow, W, OW, KW, SW, PW, ADAPTIVE)
    acc = upcast(tl.zeros([BLOCK], dtype=x_ptr.dtype.element_ty))  # fp32 (fp64 for fp64)
    for kh in range(0, KH):  # row by row, as torch sums
        ih = h_lo + kh
        row_ok = mask & (ih < h_hi)
        for kw in range(0, KW):
            iw = w_lo + kw
            ok = row_ok & (iw < w_hi)
            v = tl.load(x_plane + ih * stride_xh + iw * stride_xw, mask=ok, other=0.0)
            acc += v.to(acc.dtype)
    empty = (h_hi <= h_lo) | (w_hi <= w_lo)  # torch writes 0 (never with valid arguments)
    if ADAPTIVE:
        height = tl.where(empty, 1, h_hi - h_lo).to(acc.dtype)
        width = tl.where(empty, 1, w_hi - w_lo).to(acc.dtype)
        y = div_rn(div_rn(acc, height), width)
    else:
        count = _avg_divisor(h_lo, h_hi, h_padded, w_lo, w_hi, w_padded, divisor_override,
                             COUNT_INCLUDE_PAD)
        y = div_rn(acc, tl.where(empty, 1, count).to(acc.dtype))
    y = tl.where(empty, 0.0, y)
    tl.store(y_ptr + offs, cast_to(y, y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def avg_pool2d_bwd_kernel(
    dx_ptr, dy_ptr,
    n_in, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, divisor_override, COVER_H, COVER_W,
    stride_dyn, stride_dyc, stride_dyh, stride_dyw,
    ADAPTIVE: tl.constexpr, COUNT_INCLUDE_PAD: tl.constexpr, BLOCK: tl.constexpr,
):
    """dx[n, c, h, w] = sum of dy[n, c, oh, ow] / divisor over the outputs whose window
    covers (h, w) (derivation in the module docstring); no atomics.

    dx_ptr: (N, C, H, W) contiguous, dy's dtype. dy_ptr: (N, C, OH, OW), strides
    (stride_dyn, ...). n_in: N*C*H*W. KH .. divisor_override: as the forward's.
    COVER_H, COVER_W: the most output rows (columns) whose windows cover one input row
    (column); each element tests that many consecutive candidates.
    """
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    mask = offs < n_in
    w = offs % W
    h = (offs // W) % H
    nc = offs // W // H
    dy_plane = dy_ptr + (nc // C) * stride_dyn + (nc % C) * stride_dyc
    if ADAPTIVE:  # the first output whose window may hold h: floor(h * OH / H)
        oh_first = (h * OH) // H
        ow_first = (w * OW) // W
    else:  # the last is floor((h + PH) / SH); COVER_H rows end there
        oh_first = (h + PH) // SH - (COVER_H - 1)
        ow_first = (w + PW) // SW - (COVER_W - 1)
    acc = upcast(tl.zeros([BLOCK], dtype=dy_ptr.dtype.element_ty))  # fp32 (fp64 for fp64)
    # The window arithmetic of _avg_window / _avg_divisor is written out in these loops:
    # the interpreter pays about 1 ms per call of a @triton.jit helper, COVER_H * COVER_W
    # calls per program (the forward calls them once each, outside its loops).
    for jh in range(0, COVER_H):
        oh = oh_first + jh
        if ADAPTIVE:
            h_lo = (oh * H) // OH
            h_hi = ((oh + 1) * H + OH - 1) // OH
            h_padded = h_hi - h_lo
        else:
            h_start = oh * SH - PH
            h_end = tl.minimum(h_start + KH, H + PH)
            h_padded = h_end - h_start
            h_lo = tl.maximum(h_start, 0)
            h_hi = tl.minimum(h_end, H)
        row_ok = mask & (oh >= 0) & (oh < OH) & (h_lo <= h) & (h < h_hi)
        for jw in range(0, COVER_W):
            ow = ow_first + jw
            if ADAPTIVE:
                w_lo = (ow * W) // OW
                w_hi = ((ow + 1) * W + OW - 1) // OW
                w_padded = w_hi - w_lo
            else:
                w_start = ow * SW - PW
                w_end = tl.minimum(w_start + KW, W + PW)
                w_padded = w_end - w_start
                w_lo = tl.maximum(w_start, 0)
                w_hi = tl.minimum(w_end, W)
            ok = row_ok & (ow >= 0) & (ow < OW) & (w_lo <= w) & (w < w_hi)
            g = tl.load(dy_plane + oh * stride_dyh + ow * stride_dyw, mask=ok, other=0.0)
            g = g.to(acc.dtype)
            # divisions correctly rounded, as torch's (div_rn's two cases)
            if ADAPTIVE:  # g / kh / kw, as torch
                height = tl.where(ok, h_hi - h_lo, 1).to(acc.dtype)
                width = tl.where(ok, w_hi - w_lo, 1).to(acc.dtype)
                if acc.dtype == tl.float64:
                    g = g / height / width
                else:
                    g = tl.div_rn(tl.div_rn(g, height), width)
            else:
                if COUNT_INCLUDE_PAD:
                    count = h_padded * w_padded
                else:
                    count = (h_hi - h_lo) * (w_hi - w_lo)
                count = tl.where(divisor_override != 0, divisor_override, count)
                count = tl.where(ok, count, 1).to(acc.dtype)
                if acc.dtype == tl.float64:
                    g = g / count
                else:
                    g = tl.div_rn(g, count)
            acc += g
    tl.store(dx_ptr + offs, cast_to(acc, dx_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- arguments

MAX_OP, AVG_OP, ADAPTIVE_OP = "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"


def _pair(op: str, name: str, value, allow_none: bool = False) -> tuple[int, int] | None:
    """An int or a tuple of one or two ints as (h, w), as torch's pooling arguments."""
    if allow_none and (value is None or (isinstance(value, (tuple, list)) and not value)):
        return None
    if isinstance(value, (tuple, list)):
        values = tuple(value)
    else:
        values = (value,)
    try:
        values = tuple(operator.index(v) for v in values)  # ints, numpy ints, 0-d ints
    except TypeError:
        bad = next(v for v in values if not hasattr(v, "__index__"))
        raise DTypeError(f"{op}(): argument '{name}' must be tuple of ints, not "
                         f"{type(bad).__name__}") from None
    if len(values) not in (1, 2):
        what = {"stride": "either be omitted, a single int, or a tuple of two ints",
                "dilation": "be either a single int, or a tuple of two ints"}
        raise ShapeError(f"{op}: {name} must "
                         f"{what.get(name, 'either be a single int, or a tuple of two ints')}")
    return (int(values[0]), int(values[-1]))


def _check_input(op: str, x: torch.Tensor) -> None:
    check_tensor(op, "input", x, FLOAT_DTYPES)
    if x.dim() not in (3, 4) or any(s == 0 for s in x.shape[x.dim() - 3:]):
        raise ShapeError(f"{op}: Expected 3D or 4D (batch mode) tensor with optional 0 dim "
                         f"batch size for input, but got: {list(x.shape)}")


def _output_size(op: str, size: int, kernel: int, pad: int, stride: int, dilation: int,
                 ceil_mode: bool) -> int:
    """torch's pooling_output_shape for one dim (the pad checks included)."""
    if pad < 0:
        raise ShapeError(f"{op}: pad must be non-negative, but got pad: {pad}")
    if pad > ((kernel - 1) * dilation + 1) // 2:
        raise ShapeError(f"{op}: pad should be at most half of effective kernel size, but got "
                         f"pad={pad}, kernel_size={kernel} and dilation={dilation}")
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) \
        // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:  # the last window starts past H + p
        out -= 1
    return out


def pool2d_geometry(op: str, input_shape: tuple, kernel_size, stride, padding, dilation,
                    ceil_mode: bool) -> tuple:
    """Every check of max_pool2d's / avg_pool2d's window arguments against an input of
    ``input_shape`` ((N, C, H, W) or (C, H, W)), in torch's order and with its messages.
    Returns ((KH, KW), (SH, SW), (PH, PW), (DH, DW), (OH, OW))."""
    kernel = _pair(op, "kernel_size", kernel_size)
    stride = _pair(op, "stride", stride, allow_none=True) or kernel
    padding = _pair(op, "padding", padding)
    dilation = _pair(op, "dilation", dilation)
    if 0 in stride:
        raise ShapeError(f"{op}: stride should not be zero")
    if kernel[0] <= 0 or kernel[1] <= 0:
        raise ShapeError(f"{op}: kernel size should be greater than zero, but got kH: "
                         f"{kernel[0]} kW: {kernel[1]}")
    if stride[0] < 0 or stride[1] < 0:
        raise ShapeError(f"{op}: stride should be greater than zero, but got dH: {stride[0]} "
                         f"dW: {stride[1]}")
    if dilation[0] <= 0 or dilation[1] <= 0:
        raise ShapeError(f"{op}: dilation should be greater than zero, but got dilationH: "
                         f"{dilation[0]} dilationW: {dilation[1]}")
    in_h, in_w = input_shape[-2], input_shape[-1]
    out = tuple(_output_size(op, size, k, p, s, d, bool(ceil_mode)) for size, k, p, s, d in
                zip((in_h, in_w), kernel, padding, stride, dilation))
    if padding[1] > kernel[1] // 2 or padding[0] > kernel[0] // 2:
        raise ShapeError(f"{op}: pad should be smaller than or equal to half of kernel size, "
                         f"but got padW = {padding[1]}, padH = {padding[0]}, kW = {kernel[1]}, "
                         f"kH = {kernel[0]}")
    if out[0] < 1 or out[1] < 1:
        channels = input_shape[-3]
        raise ShapeError(f"{op}: Given input size: ({channels}x{in_h}x{in_w}). Calculated "
                         f"output size: ({channels}x{out[0]}x{out[1]}). Output size is too "
                         "small")
    return kernel, stride, padding, dilation, out


def adaptive_output_size(input_shape: tuple, output_size) -> tuple[int, int]:
    """torch's output_size of adaptive_avg_pool2d: an int or a pair, None keeping the
    input's size."""
    if isinstance(output_size, (tuple, list)):
        sizes = tuple(output_size)
        if len(sizes) != 2:
            raise ShapeError(f"{ADAPTIVE_OP}: output_size must be 2")
    else:
        sizes = (output_size, output_size)
    try:
        sizes = tuple(input_shape[i - 2] if s is None else operator.index(s)
                      for i, s in enumerate(sizes))
    except TypeError:
        raise DTypeError(f"{ADAPTIVE_OP}(): argument 'output_size' must be tuple of ints, "
                         f"got {output_size!r}") from None
    if sizes[0] < 0 or sizes[1] < 0:
        raise ShapeError(f"{ADAPTIVE_OP}: elements of output_size must be greater than or "
                         f"equal to 0 but received {{{sizes[0]}, {sizes[1]}}}")
    return sizes


def _check_adaptive_input(x: torch.Tensor) -> None:
    check_tensor(ADAPTIVE_OP, "input", x, FLOAT_DTYPES)
    if x.dim() not in (3, 4):
        raise ShapeError(f"{ADAPTIVE_OP}(): Expected 3D or 4D tensor, but got {list(x.shape)}")
    for dim in range(x.dim() - 3, x.dim()):
        if x.shape[dim] == 0:
            raise ShapeError(f"{ADAPTIVE_OP}(): Expected input to have non-zero size for "
                             f"non-batch dimensions, but input has sizes {list(x.shape)} with "
                             f"dimension {dim} being empty")


def _adaptive_window_max(in_size: int, out_size: int) -> int:
    """The tallest adaptive window: max over o of ceil((o+1)*H/O) - floor(o*H/O)."""
    return max(((o + 1) * in_size + out_size - 1) // out_size - (o * in_size) // out_size
               for o in range(out_size))


def _adaptive_cover(in_size: int, out_size: int) -> int:
    """The most adaptive windows that hold one input row."""
    covers = [0] * in_size
    for o in range(out_size):
        for i in range((o * in_size) // out_size,
                       ((o + 1) * in_size + out_size - 1) // out_size):
            covers[i] += 1
    return max(covers)


# ----------------------------------------------------------------------------- launchers


def _nchw(t: torch.Tensor) -> torch.Tensor:
    """t as (N, C, H, W): an unbatched (C, H, W) tensor gets a leading size-1 dim (a view)."""
    return t if t.dim() == 4 else t.unsqueeze(0)


def _block(n: int) -> int:
    return min(MAX_BLOCK, triton.next_power_of_2(max(n, 1)))


def _check_grad(op: str, grad: torch.Tensor, expected_shape: tuple) -> None:
    check_tensor(op, "grad_output", grad, FLOAT_DTYPES)
    if tuple(grad.shape) != tuple(expected_shape):
        raise ShapeError(f"{op}: grad_output has shape {tuple(grad.shape)}; the forward's "
                         f"output has shape {tuple(expected_shape)}")


def _out_shape(input_shape: tuple, out: tuple) -> tuple:
    return tuple(input_shape[:-2]) + tuple(out)


def max_pool2d_fwd(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1,
                   ceil_mode: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, indices) of torch's ``F.max_pool2d(..., return_indices=True)``: y in x's dtype,
    indices int64 flat h*W + w positions within each (n, c) plane; both contiguous, of
    x's rank. x: (N, C, H, W) or (C, H, W), any strides, float."""
    _check_input(MAX_OP, x)
    kernel, stride, padding, dilation, out = pool2d_geometry(
        MAX_OP, tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
    out_shape = _out_shape(tuple(x.shape), out)
    y = torch.empty(out_shape, dtype=x.dtype, device=x.device)
    indices = torch.empty(out_shape, dtype=torch.int64, device=x.device)
    n_out = y.numel()
    if n_out == 0:
        return y, indices
    x4 = _nchw(x)
    _, channels, height, width = x4.shape
    block = _block(n_out)
    taps = kernel[0] * kernel[1]
    launch(max_pool2d_fwd_kernel, (cdiv(n_out, block),), y, indices, x4,
           n_out, channels, height, width, out[0], out[1], *kernel, *stride, *padding,
           *dilation, *x4.stride(), BLOCK=block, num_warps=NUM_WARPS,
           flops=n_out * taps,
           bytes_moved=n_out * (taps * x.element_size() + x.element_size() + 8))
    return y, indices


def max_pool2d_bwd(grad: torch.Tensor, indices: torch.Tensor, input_shape: tuple,
                   kernel_size, stride=None, padding=0, dilation=1,
                   ceil_mode: bool = False) -> torch.Tensor:
    """dx of max_pool2d_fwd: each input element sums the upstream ``grad`` (the output's
    shape, any strides) of the outputs whose saved ``indices`` name it. dx: contiguous,
    ``input_shape``, grad's dtype."""
    op = MAX_OP + " backward"
    input_shape = tuple(input_shape)
    kernel, stride, padding, dilation, out = pool2d_geometry(
        MAX_OP, input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    out_shape = _out_shape(input_shape, out)
    _check_grad(op, grad, out_shape)
    check_tensor(op, "indices", indices, (torch.int64,))
    if tuple(indices.shape) != out_shape:
        raise ShapeError(f"{op}: indices have shape {tuple(indices.shape)}; the forward's "
                         f"output has shape {out_shape}")
    check_same_device(op, grad_output=grad, indices=indices)
    dx = torch.empty(input_shape, dtype=grad.dtype, device=grad.device)
    n_in = dx.numel()
    if n_in == 0:
        return dx
    dy4, idx4 = _nchw(grad), _nchw(indices)
    channels, height, width = input_shape[-3:]
    block = _block(n_in)
    taps = kernel[0] * kernel[1]
    launch(max_pool2d_bwd_kernel, (cdiv(n_in, block),), dx, dy4, idx4,
           n_in, channels, height, width, out[0], out[1], *kernel, *stride, *padding,
           *dilation, *dy4.stride(), *idx4.stride(), BLOCK=block, num_warps=NUM_WARPS,
           flops=n_in * taps,
           bytes_moved=n_in * grad.element_size() + grad.numel() * (grad.element_size() + 8))
    return dx


def _avg_args(input_shape: tuple, kernel_size, stride, padding, ceil_mode, divisor_override):
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int):
            raise DTypeError(f"{AVG_OP}(): argument 'divisor_override' must be int, not "
                             f"{type(divisor_override).__name__}")
        if divisor_override == 0:
            raise ShapeError(f"{AVG_OP}: divisor must be not zero")
    kernel, stride, padding, _, out = pool2d_geometry(
        AVG_OP, input_shape, kernel_size, stride, padding, 1, ceil_mode)
    return kernel, stride, padding, out, int(divisor_override or 0)


def avg_pool2d_fwd(x: torch.Tensor, kernel_size, stride=None, padding=0,
                   ceil_mode: bool = False, count_include_pad: bool = True,
                   divisor_override: int | None = None) -> torch.Tensor:
    """torch's ``F.avg_pool2d``: y contiguous, x's dtype and rank. x: (N, C, H, W) or
    (C, H, W), any strides, float."""
    _check_input(AVG_OP, x)
    kernel, stride, padding, out, divisor = _avg_args(tuple(x.shape), kernel_size, stride,
                                                      padding, ceil_mode, divisor_override)
    return _avg_fwd(x, kernel, stride, padding, out, divisor, bool(count_include_pad), False)


def adaptive_avg_pool2d_fwd(x: torch.Tensor, output_size) -> torch.Tensor:
    """torch's ``F.adaptive_avg_pool2d``: y contiguous, x's dtype and rank. x: (N, C, H, W)
    or (C, H, W), any strides, float."""
    _check_adaptive_input(x)
    out = adaptive_output_size(tuple(x.shape), output_size)
    height, width = x.shape[-2:]
    kernel = (_adaptive_window_max(height, out[0]) if out[0] else 0,
              _adaptive_window_max(width, out[1]) if out[1] else 0)
    return _avg_fwd(x, kernel, (1, 1), (0, 0), out, 0, True, True)


def _avg_fwd(x, kernel, stride, padding, out, divisor, count_include_pad, adaptive):
    y = torch.empty(_out_shape(tuple(x.shape), out), dtype=x.dtype, device=x.device)
    n_out = y.numel()
    if n_out == 0:
        return y
    x4 = _nchw(x)
    _, channels, height, width = x4.shape
    block = _block(n_out)
    taps = kernel[0] * kernel[1]
    launch(avg_pool2d_fwd_kernel, (cdiv(n_out, block),), y, x4,
           n_out, channels, height, width, out[0], out[1], *kernel, *stride, *padding,
           divisor, *x4.stride(), ADAPTIVE=adaptive, COUNT_INCLUDE_PAD=count_include_pad,
           BLOCK=block, num_warps=NUM_WARPS,
           flops=n_out * (taps + 1),
           bytes_moved=n_out * (taps + 1) * x.element_size())
    return y


def avg_pool2d_bwd(grad: torch.Tensor, input_shape: tuple, kernel_size, stride=None,
                   padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                   divisor_override: int | None = None) -> torch.Tensor:
    """dx of avg_pool2d_fwd from the upstream ``grad`` (the output's shape, any strides):
    contiguous, ``input_shape``, grad's dtype."""
    input_shape = tuple(input_shape)
    kernel, stride, padding, out, divisor = _avg_args(input_shape, kernel_size, stride,
                                                      padding, ceil_mode, divisor_override)
    _check_grad(AVG_OP + " backward", grad, _out_shape(input_shape, out))
    cover = (cdiv(kernel[0], stride[0]), cdiv(kernel[1], stride[1]))
    return _avg_bwd(grad, input_shape, kernel, stride, padding, out, divisor,
                    bool(count_include_pad), False, cover)


def adaptive_avg_pool2d_bwd(grad: torch.Tensor, input_shape: tuple) -> torch.Tensor:
    """dx of adaptive_avg_pool2d_fwd (the output size is grad's last two sizes): contiguous,
    ``input_shape``, grad's dtype."""
    input_shape = tuple(input_shape)
    op = ADAPTIVE_OP + " backward"
    check_tensor(op, "grad_output", grad, FLOAT_DTYPES)
    if grad.dim() != len(input_shape) or tuple(grad.shape[:-2]) != input_shape[:-2]:
        raise ShapeError(f"{op}: grad_output has shape {tuple(grad.shape)}, which does not "
                         f"pool an input of shape {input_shape}")
    out = tuple(grad.shape[-2:])
    height, width = input_shape[-2:]
    if 0 in out:  # nothing was pooled: no gradient reaches the input
        return torch.zeros(input_shape, dtype=grad.dtype, device=grad.device)
    kernel = (_adaptive_window_max(height, out[0]), _adaptive_window_max(width, out[1]))
    cover = (_adaptive_cover(height, out[0]), _adaptive_cover(width, out[1]))
    return _avg_bwd(grad, input_shape, kernel, (1, 1), (0, 0), out, 0, True, True, cover)


def _avg_bwd(grad, input_shape, kernel, stride, padding, out, divisor, count_include_pad,
             adaptive, cover):
    dx = torch.empty(input_shape, dtype=grad.dtype, device=grad.device)
    n_in = dx.numel()
    if n_in == 0:
        return dx
    dy4 = _nchw(grad)
    channels, height, width = input_shape[-3:]
    block = _block(n_in)
    launch(avg_pool2d_bwd_kernel, (cdiv(n_in, block),), dx, dy4,
           n_in, channels, height, width, out[0], out[1], *kernel, *stride, *padding,
           divisor, *cover, *dy4.stride(), ADAPTIVE=adaptive,
           COUNT_INCLUDE_PAD=count_include_pad, BLOCK=block, num_warps=NUM_WARPS,
           flops=2 * n_in * cover[0] * cover[1],
           bytes_moved=n_in * (cover[0] * cover[1] + 1) * grad.element_size())
    return dx


# ----------------------------------------------------------------------------- compile specs

_SIZES = ["n_out", "C", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW"]


def _sig(pointers: dict, sizes: list, strides: list, constexprs: list) -> dict:
    sig = dict(pointers)
    sig.update({name: "i32" for name in sizes})
    sig.update({name: "i64" for name in strides})
    sig.update({name: "constexpr" for name in constexprs})
    return sig


def _strides(prefix: str) -> list:
    return [f"stride_{prefix}{d}" for d in "nchw"]


def _specs() -> list[CompileSpec]:
    """Every kernel in each float dtype, every constexpr branch of the average kernels
    (adaptive; count_include_pad or not), at the GPU block size."""
    block = 512
    specs = []
    for dt in ("fp32", "fp16", "bf16", "fp64"):
        specs.append(CompileSpec(max_pool2d_fwd_kernel, _sig(
            {"y_ptr": "*" + dt, "idx_ptr": "*i64", "x_ptr": "*" + dt},
            _SIZES + ["DH", "DW"], _strides("x"), ["BLOCK"]), {"BLOCK": block}, f"{dt}"))
        specs.append(CompileSpec(max_pool2d_bwd_kernel, _sig(
            {"dx_ptr": "*" + dt, "dy_ptr": "*" + dt, "idx_ptr": "*i64"},
            ["n_in"] + _SIZES[1:] + ["DH", "DW"], _strides("dy") + _strides("i"), ["BLOCK"]),
            {"BLOCK": block}, f"{dt}"))
        for adaptive, include in ((False, True), (False, False), (True, True)):
            constexprs = {"ADAPTIVE": adaptive, "COUNT_INCLUDE_PAD": include, "BLOCK": block}
            label = f"{dt},adaptive={adaptive},count_include_pad={include}"
            specs.append(CompileSpec(avg_pool2d_fwd_kernel, _sig(
                {"y_ptr": "*" + dt, "x_ptr": "*" + dt}, _SIZES + ["divisor_override"],
                _strides("x"), list(constexprs)), constexprs, label))
            specs.append(CompileSpec(avg_pool2d_bwd_kernel, _sig(
                {"dx_ptr": "*" + dt, "dy_ptr": "*" + dt},
                ["n_in"] + _SIZES[1:] + ["divisor_override", "COVER_H", "COVER_W"],
                _strides("dy"), list(constexprs)), constexprs, label))
    return specs


COMPILE_SPECS = _specs()
