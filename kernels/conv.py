"""Unfold (im2col) and fold (col2im) for 2-D images, with torch's ``F.unfold`` / ``F.fold``
semantics (kernel_size, dilation, padding, stride; zero padding).

For an image x of shape (N, C, H, W), a kernel (KH, KW), stride (sh, sw), dilation
(dh, dw) and padding (ph, pw) at the top/left edge, the sliding blocks are
    H_OUT = (H + ph + ph_end - dh (KH - 1) - 1) // sh + 1      (W_OUT likewise)
(ph_end, the bottom padding, is ph unless given: conv2d's padding='same' pads one more
row at the bottom when dh (KH - 1) is odd, as torch does), and

    unfold:  cols[n, (c, i, j), (oh, ow)] = x[n, c, oh sh - ph + i dh, ow sw - pw + j dw]
             (0 where that position lies in the padding), with (c, i, j) flattened to
             c KH KW + i KW + j and (oh, ow) to oh W_OUT + ow: shape (N, C KH KW, L),
             L = H_OUT W_OUT, as torch;
    fold:    x[n, c, h, w] = sum of cols[n, (c, i, j), (oh, ow)] over every (i, j, oh, ow)
             with oh sh - ph + i dh = h and ow sw - pw + j dw = w.

Unfold is linear, so its VJP is its transpose, fold (and fold's VJP is unfold): for
cols = U x, <dcols, U x> = <U^T dcols, x> and U^T scatters each column entry back onto the
image position it was read from, summing where blocks overlap: that is fold.

Fold gathers: each program owns a tile of image positions and, for every kernel offset
(i, j), reads the one column entry (if any) that lands there:
    oh = (h + ph - i dh) / sh, valid when that is an integer in [0, H_OUT) (ow likewise).
No atomics and a fixed summation order (i, then j), so results are deterministic. Sums
are fp32 (fp64 for fp64), rounded once into the output's dtype, which may differ from the
input's (conv2d's backward folds fp32 column gradients straight into an fp16 image).

Both kernels read and write through strides: the conv keeps its columns in a (N, L, CK)
layout and hands unfold the transposed view, and a channels-last image is read in place.
"""

from __future__ import annotations

import operator

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    TRITON_DTYPE,
    ShapeError,
    UnsupportedError,
    check_same_device,
    check_tensor,
    check_writable,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, launch
from .elementwise import upcast

# A [BLOCK_R, BLOCK_L] tile holds TILE elements, at most MAX_BLOCK_L along the spatial axis
# (contiguous in memory for an NCHW image and torch's column layout). Untuned: no GPU
# measurement yet. Under the interpreter (about 0.5 ms a program) the test shapes fit one
# or two programs.
TILE = 4096
MAX_BLOCK_L = 256
MAX_GRID_1 = 65535  # CUDA's limit on grid axis 1
INT32_MAX = 2**31 - 1


@triton.jit
def unfold_kernel(
    x_ptr, cols_ptr,
    n_rows, n_cols, C, H, W, KH, KW, W_OUT,
    conv_stride_h, conv_stride_w, pad_h, pad_w, dil_h, dil_w,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_cn, stride_ck, stride_cl,
    BLOCK_R: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """cols[n, (c, i, j), l] = x[n, c, oh sh - ph + i dh, ow sw - pw + j dw], l = oh W_OUT + ow,
    0 in the padding.

    x_ptr: (N, C, H, W) image, read through stride_xn/xc/xh/xw (any layout).
    cols_ptr: (N, C KH KW, L) columns, written through stride_cn/ck/cl.
    n_rows: N C KH KW, the (n, c, i, j) rows; n_cols: L = H_OUT W_OUT.
    C, H, W: image sizes; KH, KW: kernel size; W_OUT: blocks per output row.
    conv_stride_h/w, pad_h/w (top/left padding), dil_h/w: the convolution's parameters.
    Grid: (cdiv(n_rows, BLOCK_R), cdiv(n_cols, BLOCK_L)).
    Indices stay int32 (the launcher checks n_rows and n_cols fit); memory offsets are
    int64, as an image or the columns may pass 2**31 elements.
    """
    pid_r = tl.program_id(0)
    pid_l = tl.program_id(1)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    row_mask = rows < n_rows
    l_mask = offs_l < n_cols
    kernel_area = KH * KW
    n = rows // (C * kernel_area)
    ck = rows % (C * kernel_area)  # the (c, i, j) row within image n
    c = ck // kernel_area
    i = (ck % kernel_area) // KW
    j = ck % KW
    oh = offs_l // W_OUT
    ow = offs_l % W_OUT
    h = oh[None, :] * conv_stride_h - pad_h + i[:, None] * dil_h
    w = ow[None, :] * conv_stride_w - pad_w + j[:, None] * dil_w
    mask = row_mask[:, None] & l_mask[None, :]
    inside = mask & (h >= 0) & (h < H) & (w >= 0) & (w < W)
    x_ptrs = (x_ptr + (n.to(tl.int64) * stride_xn + c.to(tl.int64) * stride_xc)[:, None]
              + h.to(tl.int64) * stride_xh + w.to(tl.int64) * stride_xw)
    c_ptrs = (cols_ptr + (n.to(tl.int64) * stride_cn + ck.to(tl.int64) * stride_ck)[:, None]
              + offs_l.to(tl.int64)[None, :] * stride_cl)
    values = upcast(tl.load(x_ptrs, mask=inside, other=0.0))
    tl.store(c_ptrs, cast_to(values, cols_ptr.dtype.element_ty), mask=mask)


@triton.jit
def fold_kernel(
    cols_ptr, x_ptr,
    n_rows, n_cols, C, W, KH, KW, H_OUT, W_OUT,
    conv_stride_h, conv_stride_w, pad_h, pad_w, dil_h, dil_w,
    stride_cn, stride_ck, stride_cl,
    stride_xn, stride_xc, stride_xh, stride_xw,
    BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """x[n, c, h, w] = sum over (i, j) of cols[n, (c, i, j), oh W_OUT + ow] where
    oh = (h + ph - i dh) / sh and ow = (w + pw - j dw) / sw are integers in range.

    cols_ptr: (N, C KH KW, L) columns, read through stride_cn/ck/cl.
    x_ptr: (N, C, H, W) image, written through stride_xn/xc/xh/xw.
    n_rows: N C, the (n, c) rows; n_cols: H W, the image positions (h, w) of a row.
    C, W: image sizes; KH, KW: kernel size; H_OUT, W_OUT: the blocks per column / row.
    conv_stride_h/w, pad_h/w (top/left padding), dil_h/w: the convolution's parameters.
    Grid: (cdiv(n_rows, BLOCK_R), cdiv(n_cols, BLOCK_S)). Sums in fp32 (fp64 for fp64
    columns), in a fixed order: deterministic, with no atomics.
    """
    pid_r = tl.program_id(0)
    pid_s = tl.program_id(1)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    row_mask = rows < n_rows
    s_mask = offs_s < n_cols
    mask = row_mask[:, None] & s_mask[None, :]
    n = rows // C
    c = rows % C
    h = offs_s // W
    w = offs_s % W
    row_base = n.to(tl.int64) * stride_cn + (c * KH * KW).to(tl.int64) * stride_ck
    if cols_ptr.dtype.element_ty == tl.float64:
        acc = tl.zeros((BLOCK_R, BLOCK_S), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_R, BLOCK_S), dtype=tl.float32)
    for i in range(KH):
        # h = oh sh - ph + i dh  <=>  oh sh = h + ph - i dh: a hit when that is >= 0, a
        # multiple of sh, and oh < H_OUT
        oh_sh = h + pad_h - i * dil_h
        h_hit = oh_sh >= 0
        oh = tl.where(h_hit, oh_sh, 0) // conv_stride_h
        h_hit = h_hit & (oh * conv_stride_h == oh_sh) & (oh < H_OUT)
        for j in range(KW):
            ow_sw = w + pad_w - j * dil_w
            w_hit = ow_sw >= 0
            ow = tl.where(w_hit, ow_sw, 0) // conv_stride_w
            hit = h_hit & w_hit & (ow * conv_stride_w == ow_sw) & (ow < W_OUT)
            offs_l = (oh * W_OUT + ow).to(tl.int64)
            c_ptrs = (cols_ptr + row_base[:, None] + (i * KW + j) * stride_ck
                      + offs_l[None, :] * stride_cl)
            values = tl.load(c_ptrs, mask=mask & hit[None, :], other=0.0)
            acc += values.to(acc.dtype)
    x_ptrs = (x_ptr + (n.to(tl.int64) * stride_xn + c.to(tl.int64) * stride_xc)[:, None]
              + (h.to(tl.int64) * stride_xh + w.to(tl.int64) * stride_xw)[None, :])
    tl.store(x_ptrs, cast_to(acc, x_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- launchers


def pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a 1- or 2-sequence of ints as (height, width), each >= ``minimum``, with
    torch's messages."""
    if isinstance(value, (tuple, list)):
        values = list(value)
    else:
        values = [value]
    try:
        values = [operator.index(v) for v in values]
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of 2 ints, got {value!r}") \
            from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ShapeError(
            f"{op}: expected {name} to be a single integer value or a list of 2 values to "
            f"match the convolution dimensions, but got {name}={list(value)}"
        )
    if any(v < minimum for v in values):
        qualifier = "negative" if minimum == 0 else "non-positive"
        raise ValueError(f"{op}: {qualifier} {name} is not supported, got {name}="
                         f"{tuple(values)}")
    return values[0], values[1]


def blocks_along(size: int, kernel: int, dilation: int, pad_begin: int, pad_end: int,
                 stride: int) -> int:
    """How many kernel positions fit along one spatial dim (may be <= 0: none fit)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def _blocks(n_rows: int, n_cols: int) -> tuple[int, int]:
    block_c = min(triton.next_power_of_2(max(n_cols, 1)), MAX_BLOCK_L)
    block_r = min(triton.next_power_of_2(max(n_rows, 1)), max(1, TILE // block_c))
    return block_r, block_c


def _check_grid(op: str, n_rows: int, n_cols: int, block_c: int) -> None:
    if n_rows > INT32_MAX or n_cols > INT32_MAX or cdiv(n_cols, block_c) > MAX_GRID_1:
        raise UnsupportedError(
            f"{op}: {n_rows} rows by {n_cols} positions is beyond these kernels' int32 "
            f"indices or grid (at most {MAX_GRID_1 * block_c} positions per image)"
        )


def _params(op: str, kernel_size, dilation, padding, stride, padding_end):
    kernel = pair(op, "kernel_size", kernel_size, 1)
    dil = pair(op, "dilation", dilation, 1)
    pad = pair(op, "padding", padding, 0)
    pad_end = pad if padding_end is None else pair(op, "padding", padding_end, 0)
    step = pair(op, "stride", stride, 1)
    return kernel, dil, pad, pad_end, step


def unfold(x: torch.Tensor, kernel_size, dilation=1, padding=0, stride=1, *,
           padding_end=None, out: torch.Tensor | None = None) -> torch.Tensor:
    """torch's ``F.unfold`` of a 4-D image x (N, C, H, W), any strides: the (N, C KH KW, L)
    columns, in x's dtype. ``padding`` pads the top/left edges and ``padding_end`` (default
    ``padding``) the bottom/right ones. ``out``: write into this (N, C KH KW, L) tensor of
    x's dtype instead, any strides (the conv passes a transposed view)."""
    op = "unfold"
    check_tensor(op, "input", x, FLOAT_DTYPES, ndims=(4,))
    (kh, kw), (dh, dw), (ph, pw), (ph_end, pw_end), (sh, sw) = _params(
        op, kernel_size, dilation, padding, stride, padding_end)
    N, C, H, W = x.shape
    h_out = blocks_along(H, kh, dh, ph, ph_end, sh)
    w_out = blocks_along(W, kw, dw, pw, pw_end, sw)
    if h_out < 1 or w_out < 1:
        raise ShapeError(
            f"{op}: Given input with spatial size ({H}, {W}), kernel_size=({kh}, {kw}), "
            f"dilation=({dh}, {dw}), padding=({ph}, {pw}), calculated shape of the array of "
            f"sliding blocks as ({h_out}, {w_out}), but its components must be at least one."
        )
    L = h_out * w_out
    shape = (N, C * kh * kw, L)
    if out is None:
        out = torch.empty(shape, dtype=x.dtype, device=x.device)
    else:
        check_tensor(op, "out", out, (x.dtype,), ndims=(3,))
        check_same_device(op, input=x, out=out)
        check_writable(op, "out", out)
        if tuple(out.shape) != shape:
            raise ShapeError(f"{op}: out has shape {tuple(out.shape)}, expected {shape}")
    n_rows = N * C * kh * kw
    if out.numel() == 0:
        return out
    block_r, block_l = _blocks(n_rows, L)
    _check_grid(op, n_rows, L, block_l)
    launch(unfold_kernel, (cdiv(n_rows, block_r), cdiv(L, block_l)),
           x, out, n_rows, L, C, H, W, kh, kw, w_out, sh, sw, ph, pw, dh, dw,
           *x.stride(), *out.stride(),
           BLOCK_R=block_r, BLOCK_L=block_l,
           bytes_moved=out.numel() * (x.element_size() + out.element_size()))
    return out


def fold(cols: torch.Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1, *,
         padding_end=None, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """torch's ``F.fold`` of 3-D columns (N, C KH KW, L), any strides: the (N, C, H, W) image
    with (H, W) = ``output_size``, overlapping entries summed (fp32; fp64 for fp64) and
    rounded once into ``out_dtype`` (default: the columns' dtype)."""
    op = "fold"
    check_tensor(op, "input", cols, FLOAT_DTYPES, ndims=(3,))
    (kh, kw), (dh, dw), (ph, pw), (ph_end, pw_end), (sh, sw) = _params(
        op, kernel_size, dilation, padding, stride, padding_end)
    H, W = pair(op, "output_size", output_size, 0)
    out_dtype = out_dtype or cols.dtype
    if out_dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: out_dtype must be a float dtype, got {out_dtype}")
    N, CK, L = cols.shape
    if CK % (kh * kw) != 0:
        raise ShapeError(
            f"{op}: Expected size of input's dimension 1 to be divisible by the product of "
            f"kernel_size, but got input.size(1)={CK} and kernel_size=({kh}, {kw})."
        )
    h_out = blocks_along(H, kh, dh, ph, ph_end, sh)
    w_out = blocks_along(W, kw, dw, pw, pw_end, sw)
    if h_out < 1 or w_out < 1 or h_out * w_out != L:
        raise ShapeError(
            f"{op}: Given output_size=({H}, {W}), kernel_size=({kh}, {kw}), dilation=({dh}, "
            f"{dw}), padding=({ph}, {pw}), stride=({sh}, {sw}), expected size of input's "
            f"dimension 2 to match the calculated number of sliding blocks {h_out} * "
            f"{w_out} = {h_out * w_out}, but got input.size(2)={L}."
        )
    C = CK // (kh * kw)
    out = torch.empty((N, C, H, W), dtype=out_dtype, device=cols.device)
    if out.numel() == 0:
        return out
    n_rows, n_cols = N * C, H * W
    block_r, block_s = _blocks(n_rows, n_cols)
    _check_grid(op, n_rows, n_cols, block_s)
    launch(fold_kernel, (cdiv(n_rows, block_r), cdiv(n_cols, block_s)),
           cols, out, n_rows, n_cols, C, W, kh, kw, h_out, w_out, sh, sw, ph, pw, dh, dw,
           *cols.stride(), *out.stride(),
           BLOCK_R=block_r, BLOCK_S=block_s,
           flops=cols.numel(),
           bytes_moved=cols.numel() * cols.element_size() + out.numel() * out.element_size())
    return out


def _specs() -> list[CompileSpec]:
    sizes = {"n_rows": "i32", "n_cols": "i32"}
    conv = {name: "i32" for name in ("conv_stride_h", "conv_stride_w", "pad_h", "pad_w",
                                     "dil_h", "dil_w")}
    x_strides = {f"stride_x{d}": "i64" for d in "nchw"}
    c_strides = {f"stride_c{d}": "i64" for d in "nkl"}
    specs = []
    for dtype in FLOAT_DTYPES:
        t = "*" + TRITON_DTYPE[dtype]
        sig = {"x_ptr": t, "cols_ptr": t, **sizes,
               **{name: "i32" for name in ("C", "H", "W", "KH", "KW", "W_OUT")}, **conv,
               **x_strides, **c_strides, "BLOCK_R": "constexpr", "BLOCK_L": "constexpr"}
        specs.append(CompileSpec(unfold_kernel, sig, {"BLOCK_R": 16, "BLOCK_L": MAX_BLOCK_L},
                                 TRITON_DTYPE[dtype]))
    # (columns, image): the conv's backward folds fp32 column gradients into half images
    for cols_t, x_t in (("fp32", "fp32"), ("fp32", "fp16"), ("fp32", "bf16"), ("fp16", "fp16"),
                        ("bf16", "bf16"), ("fp64", "fp64")):
        sig = {"cols_ptr": "*" + cols_t, "x_ptr": "*" + x_t, **sizes,
               **{name: "i32" for name in ("C", "W", "KH", "KW", "H_OUT", "W_OUT")}, **conv,
               **c_strides, **x_strides, "BLOCK_R": "constexpr", "BLOCK_S": "constexpr"}
        specs.append(CompileSpec(fold_kernel, sig, {"BLOCK_R": 16, "BLOCK_S": MAX_BLOCK_L},
                                 f"{cols_t}->{x_t}"))
    return specs


COMPILE_SPECS = _specs()
