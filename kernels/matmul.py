"""Tiled matmul with fused bias / ReLU epilogue and a ReLU-mask prologue.

One kernel serves every matmul in tritongrad: ``C = A @ B`` for 2-D (M, K) @ (K, N)
and batched 3-D (B, M, K) @ (B, K, N) operands (a 2-D operand is broadcast against a
3-D one through a batch stride of 0). Every operand is read through its strides, so
the transposed views that backward passes use (``a.T``, ``b.transpose(-1, -2)``)
are never copied.

Fusions, all chosen by constexprs so the plain matmul pays for none of them:

* epilogue ``C = relu(A @ B + bias)`` (bias of shape (N,), ReLU optional);
* prologue ``A <- A * [mask > 0]`` (``a_relu_mask``), ReLU's backward folded into
  the matmul that consumes its gradient. For ``Z = X W^T + b``, ``H = relu(Z)``:

      dZ = dH * [H > 0]            (d relu(z)/dz = 1 where z > 0, else 0; H > 0 iff Z > 0)
      dW = dZ^T X   -> A = dH^T with mask H^T, B = X
      dX = dZ W     -> A = dH   with mask H,   B = W
      db = sum_rows dZ = sum_k A[m, k] of the dW matmul's A

  so dZ is never written to memory. Following torch's ``threshold_backward``
  (``h <= 0 ? 0 : grad``), an element is dropped when ``mask <= 0``; a NaN mask
  keeps its gradient.
* ``bias_grad_out``: the programs with ``pid_n == 0`` also write the row sums
  ``sum_k A[m, k]`` of the (masked) A operand, which is Linear's bias gradient
  when A = dZ^T, so it comes out of the weight-gradient matmul with no extra pass.
* ``accumulate``: ``C += ...`` into an existing tensor (a .grad, say).

Accumulation is fp32 (fp64 for fp64 inputs). fp32 inputs use IEEE fp32 unless
``allow_tf32``; fp16/bf16 inputs go to ``tl.dot`` as they are (tensor cores on a GPU).
"""

from __future__ import annotations

import threading

import torch
import triton
import triton.language as tl

from ._checks import (
    FLOAT_DTYPES,
    TRITON_DTYPE,
    DTypeError,
    LayoutError,
    ShapeError,
    check_same_device,
    check_same_dtype,
    check_tensor,
    check_writable,
    dtype_name,
    shape_str,
)
from ._common import cast_to
from ._launch import CompileSpec, cdiv, interpreting, launch
from .elementwise import upcast


def _configs() -> list:
    """One large-block config under the interpreter (multi-config autotune needs a GPU
    timer, and the interpreter's cost grows with the program count); several
    Hopper-friendly ones on a GPU."""
    if interpreting():
        return [triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8})]
    shapes = [
        # BLOCK_M, BLOCK_N, BLOCK_K, num_stages, num_warps
        (128, 256, 64, 3, 8),
        (256, 128, 64, 3, 8),
        (128, 256, 64, 4, 8),
        (128, 128, 64, 4, 8),
        (128, 128, 64, 3, 4),
        (128, 64, 32, 4, 4),
        (64, 128, 32, 4, 4),
        (64, 64, 32, 4, 4),
    ]
    return [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                      num_stages=stages, num_warps=warps)
        for bm, bn, bk, stages, warps in shapes
    ]


SMEM_BUDGET = 200 * 1024  # bytes; an H100 SM has 228 KiB of shared memory


def _prune_configs(configs: list, named_args: dict, **kwargs) -> list:
    """Drop configs whose pipelined A and B tiles would not fit in shared memory
    (fp32 and fp64 tiles are 2-4x the fp16 ones)."""
    elem = named_args["a_ptr"].element_size()
    fits = [
        c for c in configs
        if c.num_stages * (c.kwargs["BLOCK_M"] + c.kwargs["BLOCK_N"]) * c.kwargs["BLOCK_K"] * elem
        <= SMEM_BUDGET
    ]
    return fits or configs[-1:]


@triton.autotune(
    configs=_configs(),
    key=["M", "N", "K"],  # the autotuner adds every pointer's dtype to the key itself
    prune_configs_by={"early_config_prune": _prune_configs},
    # benchmarking runs the kernel many times; with ACCUMULATE that would add up
    restore_value=["c_ptr", "rowsum_ptr"],
)
# K a multiple of BLOCK_K: the K loop's loads need no K mask (only the loop-invariant
# row and column masks), which keeps the pipelined loads simple.
@triton.heuristics({"EVEN_K": lambda args: args["K"] % args["BLOCK_K"] == 0})
@triton.jit
def matmul_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr, a_mask_ptr, rowsum_ptr,
    M, N, K,
    stride_ab, stride_am, stride_ak,
    stride_bb, stride_bk, stride_bn,
    stride_cb, stride_cm, stride_cn,
    stride_mb, stride_mm, stride_mk,
    stride_bias, stride_rowsum,
    HAS_BIAS: tl.constexpr, RELU: tl.constexpr, HAS_A_MASK: tl.constexpr,
    ROW_SUM: tl.constexpr, ACCUMULATE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr, EVEN_K: tl.constexpr,
):
    """C[b] = epilogue(A'[b] @ B[b]), A' = (a_mask <= 0 ? 0 : A) when HAS_A_MASK, else A.

    a_ptr: (B, M, K) via stride_ab/am/ak (stride_ab = 0 broadcasts a 2-D A).
    b_ptr: (B, K, N) via stride_bb/bk/bn (stride_bb = 0 broadcasts a 2-D B).
    c_ptr: (B, M, N) output via stride_cb/cm/cn; read first when ACCUMULATE.
    bias_ptr: (N,) added to every row when HAS_BIAS (stride_bias).
    a_mask_ptr: (B, M, K) like A (stride_mb/mm/mk); used when HAS_A_MASK.
    rowsum_ptr: (M,) receives sum_k A'[0, m, k] when ROW_SUM (launcher ensures B == 1).
    M, N, K: problem sizes; any values (K = 0 gives bias or zeros).
    RELU: apply relu after the bias (NaN propagates, as torch.relu).
    INPUT_PRECISION: "ieee" or "tf32" for fp32 inputs (ignored for others).
    UPCAST: convert fp16/bf16 tiles to fp32 before tl.dot (the interpreter's bf16
        arithmetic is wrong; fp16/bf16 products are exact in fp32, so it is the same math).
    Grid: (cdiv(M, BLOCK_M) * max(cdiv(N, BLOCK_N), 1), B), grouped GROUP_M rows at a
    time so consecutive programs share A tiles and B tiles in L2.
    """
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.maximum(tl.cdiv(N, BLOCK_N), 1)  # N = 0 still runs row sums
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    # int64 offsets: a single operand may hold more than 2**31 elements.
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < N
    a_ptrs = a_ptr + pid_b * stride_ab + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + pid_b * stride_bb + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn
    m_ptrs = (a_mask_ptr + pid_b * stride_mb + offs_m[:, None] * stride_mm
              + offs_k[None, :] * stride_mk)

    if a_ptr.dtype.element_ty == tl.float64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
        row_acc = tl.zeros((BLOCK_M,), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        row_acc = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a_mask = mask_m[:, None]
            b_mask = mask_n[None, :]
        else:
            mask_k = offs_k < K - k * BLOCK_K
            a_mask = mask_m[:, None] & mask_k[None, :]
            b_mask = mask_k[:, None] & mask_n[None, :]
        a = tl.load(a_ptrs, mask=a_mask, other=0.0)
        b = tl.load(b_ptrs, mask=b_mask, other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        if HAS_A_MASK:
            gate = tl.load(m_ptrs, mask=a_mask, other=0.0)
            # compare in fp32 (fp64 stays fp64): the interpreter compares bf16 wrongly
            # (a negative bf16 gate read as positive)
            a = tl.where(upcast(gate) <= 0, 0.0, a).to(a.dtype)
            m_ptrs += BLOCK_K * stride_mk
        if ROW_SUM:
            row_acc += tl.sum(a.to(row_acc.dtype), axis=1)
        # out_dtype explicitly: triton 3.6 defaults it to fp32 even for an fp64 acc
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION, out_dtype=acc.dtype)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_n * stride_bias, mask=mask_n, other=0.0)
        acc = acc + bias.to(acc.dtype)[None, :]
    if RELU:
        acc = tl.where(acc < 0, 0.0, acc).to(acc.dtype)  # keeps NaN, unlike tl.maximum
    c_ptrs = c_ptr + pid_b * stride_cb + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    c_mask = mask_m[:, None] & mask_n[None, :]
    if ACCUMULATE:
        acc += tl.load(c_ptrs, mask=c_mask, other=0.0).to(acc.dtype)
    tl.store(c_ptrs, cast_to(acc, c_ptr.dtype.element_ty), mask=c_mask)
    if ROW_SUM:
        if pid_n == 0:  # every pid_n computed the same sums; one column of programs writes
            r_ptrs = rowsum_ptr + offs_m * stride_rowsum
            if ACCUMULATE:
                row_acc += tl.load(r_ptrs, mask=mask_m, other=0.0).to(row_acc.dtype)
            tl.store(r_ptrs, cast_to(row_acc, rowsum_ptr.dtype.element_ty), mask=mask_m)


_JIT_MATMUL = matmul_kernel.fn.fn  # under the Autotuner and the EVEN_K heuristic


def _as_3d(t: torch.Tensor) -> tuple[int, int, int]:
    """(stride_batch, stride_row, stride_col) of a 2-D or 3-D tensor, with batch
    stride 0 for a 2-D tensor (broadcast)."""
    if t.dim() == 2:
        return 0, t.stride(0), t.stride(1)
    return t.stride(0), t.stride(1), t.stride(2)


def _byte_span(t: torch.Tensor) -> tuple[int, int]:
    """[first, last) byte addresses that t's elements can touch."""
    low = high = 0
    for size, stride in zip(t.shape, t.stride()):
        reach = (size - 1) * stride
        low, high = (low + reach, high) if reach < 0 else (low, high + reach)
    return t.data_ptr() + low * t.element_size(), t.data_ptr() + (high + 1) * t.element_size()


def _may_overlap(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Could writing x change y? (metadata only: byte ranges, so two interleaved
    views of one buffer count as overlapping; separate slices of one buffer do not)."""
    if x.numel() == 0 or y.numel() == 0:
        return False
    x_first, x_last = _byte_span(x)
    y_first, y_last = _byte_span(y)
    return x_first < y_last and y_first < x_last


def matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    relu: bool = False,
    a_relu_mask: torch.Tensor | None = None,
    bias_grad_out: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    accumulate: bool = False,
    allow_tf32: bool = False,
) -> torch.Tensor:
    """``relu?(a' @ b + bias)`` where ``a' = a * [a_relu_mask > 0]`` (NaN mask keeps a).

    a: (M, K) or (B, M, K); b: (K, N) or (B, K, N); a 2-D operand broadcasts over the
    other's batch. Any strides. Returns a new contiguous tensor of a's dtype, shape
    (M, N) or (B, M, N), or ``out`` (written, or added to when ``accumulate``).
    bias: (N,); a_relu_mask: a's shape; bias_grad_out: (M,) fp32 or a's dtype,
    receives ``sum_k a'[m, k]`` (added to when ``accumulate``); needs an unbatched result.
    """
    op = "matmul"
    check_tensor(op, "mat1", a, FLOAT_DTYPES, ndims=(2, 3))
    check_tensor(op, "mat2", b, FLOAT_DTYPES, ndims=(2, 3))
    check_same_device(op, mat1=a, mat2=b)
    if a.dtype != b.dtype:
        raise DTypeError(
            f"{op}: expected m1 and m2 to have the same dtype, but got: "
            f"{dtype_name(a.dtype)} != {dtype_name(b.dtype)}"
        )
    M, K = a.shape[-2], a.shape[-1]
    K_b, N = b.shape[-2], b.shape[-1]
    if K != K_b:
        raise ShapeError(
            f"{op}: mat1 and mat2 shapes cannot be multiplied ({shape_str(a)} and {shape_str(b)})"
        )
    batched = a.dim() == 3 or b.dim() == 3
    batch_a = a.shape[0] if a.dim() == 3 else None
    batch_b = b.shape[0] if b.dim() == 3 else None
    if batch_a is not None and batch_b is not None and batch_a != batch_b:
        raise ShapeError(
            f"{op}: batch sizes differ: mat1 {tuple(a.shape)} and mat2 {tuple(b.shape)}; "
            "expected equal batch sizes (or one 2-D operand to broadcast)"
        )
    batch = batch_a if batch_a is not None else (batch_b if batch_b is not None else 1)
    out_shape = (batch, M, N) if batched else (M, N)

    if bias is not None:
        check_tensor(op, "bias", bias, ndims=(1,))
        check_same_device(op, mat1=a, bias=bias)
        check_same_dtype(op, mat1=a, bias=bias)
        if bias.shape[0] != N:
            raise ShapeError(
                f"{op}: bias of shape {tuple(bias.shape)} does not match the output's "
                f"{N} columns (result shape {out_shape})"
            )
    if a_relu_mask is not None:
        check_tensor(op, "a_relu_mask", a_relu_mask, FLOAT_DTYPES)
        check_same_device(op, mat1=a, a_relu_mask=a_relu_mask)
        if a_relu_mask.shape != a.shape:
            raise ShapeError(
                f"{op}: a_relu_mask has shape {tuple(a_relu_mask.shape)}, expected mat1's "
                f"shape {tuple(a.shape)}"
            )
    if bias_grad_out is not None:
        check_tensor(op, "bias_grad_out", bias_grad_out, (torch.float32, a.dtype), ndims=(1,))
        check_same_device(op, mat1=a, bias_grad_out=bias_grad_out)
        check_writable(op, "bias_grad_out", bias_grad_out)
        if bias_grad_out.shape[0] != M:
            raise ShapeError(
                f"{op}: bias_grad_out has shape {tuple(bias_grad_out.shape)}, expected ({M},) "
                f"(the rows of mat1 {tuple(a.shape)})"
            )
        if batched and batch != 1:
            raise ShapeError(
                f"{op}: bias_grad_out needs an unbatched product, got mat1 {tuple(a.shape)} "
                f"and mat2 {tuple(b.shape)}"
            )
    if accumulate and out is None:
        raise ValueError(f"{op}: accumulate=True needs out=")
    if out is None:
        out = torch.empty(out_shape, dtype=a.dtype, device=a.device)
    else:
        check_tensor(op, "out", out, FLOAT_DTYPES)
        check_same_device(op, mat1=a, out=out)
        check_writable(op, "out", out)
        if tuple(out.shape) != out_shape:
            raise ShapeError(
                f"{op}: out has shape {tuple(out.shape)}, expected {out_shape} for "
                f"mat1 {tuple(a.shape)} @ mat2 {tuple(b.shape)}"
            )
        for name, t in (("mat1", a), ("mat2", b), ("bias", bias), ("a_relu_mask", a_relu_mask)):
            if t is not None and _may_overlap(out, t):
                raise LayoutError(
                    f"{op}: out (shape {tuple(out.shape)}) shares memory with {name} "
                    f"(shape {tuple(t.shape)}); pass a separate tensor"
                )

    row_sum = bias_grad_out is not None
    if batch == 0 or M == 0 or (N == 0 and not row_sum):
        return out

    stride_ab, stride_am, stride_ak = _as_3d(a)
    stride_bb, stride_bk, stride_bn = _as_3d(b)
    stride_cb, stride_cm, stride_cn = _as_3d(out)
    if a_relu_mask is not None:
        stride_mb, stride_mm, stride_mk = _as_3d(a_relu_mask)
    else:
        stride_mb = stride_mm = stride_mk = 0
    # unused pointers get a harmless stand-in: the kernel never touches them
    bias_arg = bias if bias is not None else out
    mask_arg = a_relu_mask if a_relu_mask is not None else a
    rowsum_arg = bias_grad_out if bias_grad_out is not None else out

    esize = a.element_size()
    batch_a_n = batch_a or 1
    batch_b_n = batch_b or 1
    bytes_moved = (batch_a_n * M * K + batch_b_n * K * N) * esize
    bytes_moved += batch * M * N * out.element_size() * (2 if accumulate else 1)
    if bias is not None:
        bytes_moved += N * bias.element_size()
    if a_relu_mask is not None:
        bytes_moved += batch_a_n * M * K * a_relu_mask.element_size()
    if row_sum:
        bytes_moved += M * bias_grad_out.element_size() * (2 if accumulate else 1)

    def grid(meta):
        return (cdiv(M, meta["BLOCK_M"]) * max(cdiv(N, meta["BLOCK_N"]), 1), batch)

    tuned_key = (M, N, K, a.dtype, b.dtype, out.dtype, bias_arg.dtype, mask_arg.dtype,
                 rowsum_arg.dtype)
    _launch_tuned(
        tuned_key, grid,
        a, b, out, bias_arg, mask_arg, rowsum_arg,
        M, N, K,
        stride_ab, stride_am, stride_ak,
        stride_bb, stride_bk, stride_bn,
        stride_cb, stride_cm, stride_cn,
        stride_mb, stride_mm, stride_mk,
        bias.stride(0) if bias is not None else 0,
        bias_grad_out.stride(0) if row_sum else 0,
        flops=2 * batch * M * N * K,
        bytes_moved=bytes_moved,
        HAS_BIAS=bias is not None,
        RELU=bool(relu),
        HAS_A_MASK=a_relu_mask is not None,
        ROW_SUM=row_sum,
        ACCUMULATE=bool(accumulate),
        INPUT_PRECISION="tf32" if (allow_tf32 and a.dtype == torch.float32) else "ieee",
        UPCAST=interpreting() and a.dtype in (torch.float16, torch.bfloat16),
    )
    return out


# The autotuner's choice per key (the autotuner's own key: M, N, K and the pointer dtypes).
# Once a key is tuned, launches go straight to the jit function with that config: the
# Autotuner and Heuristics wrappers cost tens of microseconds of Python per launch, and a
# small network's training step is 8 matmuls that each take a few microseconds on the GPU.
_TUNED: dict = {}


_TUNING = threading.Lock()  # best_config is the autotuner's last choice, for any thread


def _launch_tuned(key: tuple, grid, *args, flops: int, bytes_moved: int, **meta) -> None:
    config = _TUNED.get(key)
    if config is None:
        with _TUNING:
            launch(matmul_kernel, grid, *args, flops=flops, bytes_moved=bytes_moved, **meta)
            if not interpreting():  # one config there, and nothing to save
                _TUNED[key] = matmul_kernel.best_config
        return
    chosen = config.all_kwargs()
    even_k = args[8] % chosen["BLOCK_K"] == 0  # args[8] is K: the EVEN_K heuristic's rule
    launch(_JIT_MATMUL, grid(chosen), *args, flops=flops, bytes_moved=bytes_moved,
           **meta, **chosen, EVEN_K=even_k)


def _matmul_specs() -> list:
    ints = {name: "i32" for name in ("M", "N", "K")}
    strides = {
        name: "i64"
        for name in (
            "stride_ab", "stride_am", "stride_ak", "stride_bb", "stride_bk", "stride_bn",
            "stride_cb", "stride_cm", "stride_cn", "stride_mb", "stride_mm", "stride_mk",
            "stride_bias", "stride_rowsum",
        )
    }
    flags = ("HAS_BIAS", "RELU", "HAS_A_MASK", "ROW_SUM", "ACCUMULATE")
    # (label, dtype, input precision, flags on)
    variants = [
        ("fp32-ieee", torch.float32, "ieee", ()),
        ("fp32-tf32", torch.float32, "tf32", ()),
        ("fp16", torch.float16, "ieee", ()),
        ("bf16", torch.bfloat16, "ieee", ()),
        ("fp64", torch.float64, "ieee", ()),
        ("fp16-bias-relu", torch.float16, "ieee", ("HAS_BIAS", "RELU")),
        ("bf16-mask-rowsum-acc", torch.bfloat16, "ieee", ("HAS_A_MASK", "ROW_SUM", "ACCUMULATE")),
        ("fp32-ieee-bias-relu-mask-rowsum", torch.float32, "ieee",
         ("HAS_BIAS", "RELU", "HAS_A_MASK", "ROW_SUM")),
        ("fp64-bias-relu-mask-rowsum-acc", torch.float64, "ieee", flags),
    ]
    specs = []
    for label, dtype, precision, on in variants:
        t = "*" + TRITON_DTYPE[dtype]
        sig = {
            "a_ptr": t, "b_ptr": t, "c_ptr": t, "bias_ptr": t, "a_mask_ptr": t,
            "rowsum_ptr": "*fp32", **ints, **strides,
            **{name: "constexpr" for name in flags},
            "INPUT_PRECISION": "constexpr", "UPCAST": "constexpr",
            "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr",
            "GROUP_M": "constexpr", "EVEN_K": "constexpr",
        }
        # the GPU's largest config that fits this dtype's tiles in shared memory
        blocks = (64, 64, 32) if dtype == torch.float64 else (128, 128, 64)
        constexprs = {
            **{name: name in on for name in flags},
            "INPUT_PRECISION": precision, "UPCAST": False,
            "BLOCK_M": blocks[0], "BLOCK_N": blocks[1], "BLOCK_K": blocks[2], "GROUP_M": 8,
            # both loop bodies: the masked one for the plain dtypes, the unmasked for the fused
            "EVEN_K": bool(on),
        }
        # .fn: the jit function under the autotuner (CompileSpec.jit_function stops at the
        # Autotuner, which also has arg_names)
        specs.append(CompileSpec(matmul_kernel, sig, constexprs, label))
    return specs


COMPILE_SPECS = _matmul_specs()
