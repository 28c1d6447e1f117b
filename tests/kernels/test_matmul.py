"""The matmul launcher against torch: shapes, views, batching, fusions, precision, errors."""

import pytest
import torch

import tritongrad
from tests.launches import recorded_launches
from tritongrad.kernels._checks import DeviceError, DTypeError, LayoutError, ShapeError
from tritongrad.kernels.matmul import matmul
from tritongrad.testing.compare import assert_close

DEVICE = tritongrad.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# (M, N, K) drawn from {1, 7, 33, 100, 129}: every size appears in every role, not the product.
SHAPES = [
    (1, 1, 1), (1, 7, 129), (7, 1, 33), (7, 33, 100), (33, 7, 1), (33, 129, 7),
    (100, 33, 129), (100, 100, 1), (129, 1, 7), (129, 129, 33), (1, 129, 100), (129, 7, 129),
]


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, device=DEVICE).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_matmul_2d(M, N, K, dtype):
    a, b = randn(M, K, dtype=dtype), randn(K, N, dtype=dtype)
    out = matmul(a, b)
    assert out.dtype == dtype and out.shape == (M, N) and out.is_contiguous()
    assert_close(out, a @ b, dtype=dtype)


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (100, 33, 129), (7, 129, 7)])
def test_matmul_fp64(M, N, K):
    a, b = randn(M, K, dtype=torch.float64), randn(K, N, dtype=torch.float64)
    assert_close(matmul(a, b), a @ b, dtype=torch.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["a.T", "b.T", "both.T", "sliced"])
def test_matmul_views_are_read_through_strides(layout, dtype):
    M, N, K = 33, 100, 129
    a = randn(K, M, dtype=dtype).T if layout in ("a.T", "both.T") else randn(M, K, dtype=dtype)
    b = randn(N, K, dtype=dtype).T if layout in ("b.T", "both.T") else randn(K, N, dtype=dtype)
    if layout == "sliced":
        a = randn(2 * M, K + 5, dtype=dtype)[::2, 3:K + 3]
        b = randn(K, 3 * N, dtype=dtype)[:, ::3]
    assert_close(matmul(a, b), a @ b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["3d@3d", "3d@2d", "2d@3d", "3d@3d.T"])
def test_matmul_batched(case, dtype):
    B, M, N, K = 3, 33, 7, 100
    a = randn(M, K, dtype=dtype) if case == "2d@3d" else randn(B, M, K, dtype=dtype)
    if case == "3d@2d":
        b = randn(K, N, dtype=dtype)
    elif case == "3d@3d.T":
        b = randn(B, N, K, dtype=dtype).transpose(1, 2)
    else:
        b = randn(B, K, N, dtype=dtype)
    out = matmul(a, b)
    assert out.shape == (B, M, N)
    assert_close(out, torch.matmul(a, b), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("M,N,K", [(1, 7, 129), (129, 33, 100), (7, 100, 1)])
def test_bias_relu_epilogue(M, N, K, dtype):
    a, b, bias = randn(M, K, dtype=dtype), randn(K, N, dtype=dtype), randn(N, dtype=dtype)
    assert_close(matmul(a, b, bias=bias), torch.addmm(bias, a, b), dtype=dtype)
    assert_close(matmul(a, b, bias=bias, relu=True), torch.relu(torch.addmm(bias, a, b)),
                 dtype=dtype)
    assert_close(matmul(a, b, relu=True), torch.relu(a @ b), dtype=dtype)


def test_relu_epilogue_keeps_nan():
    a, b = randn(7, 33), randn(33, 100)
    a[2, 5] = float("nan")
    out = matmul(a, b, relu=True, bias=randn(100))
    assert out[2].isnan().all() and not out[[0, 1, 3, 4, 5, 6]].isnan().any()


def test_bias_on_batched_product():
    a, b, bias = randn(2, 7, 33), randn(2, 33, 100), randn(100)
    assert_close(matmul(a, b, bias=bias, relu=True), torch.relu(torch.matmul(a, b) + bias),
                 dtype=torch.float32)


def masked(a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference for the prologue: torch's threshold_backward(a, mask, 0)."""
    return torch.where(mask <= 0, torch.zeros_like(a), a)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("M,N,K", [(1, 33, 129), (100, 7, 33), (129, 129, 7)])
def test_a_relu_mask_prologue(M, N, K, dtype):
    a, b = randn(M, K, dtype=dtype), randn(K, N, dtype=dtype)
    mask = torch.relu(randn(K, M, dtype=dtype)).T  # any strides; about half zeros
    assert_close(matmul(a, b, a_relu_mask=mask), masked(a, mask) @ b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES + [torch.float64], ids=str)
def test_a_relu_mask_with_negative_values(dtype):
    # The launcher's contract is [mask > 0] for any mask, not only relu outputs: a negative
    # bf16 gate compared without upcasting read as positive under the interpreter.
    a, b = randn(33, 7, dtype=dtype), randn(7, 5, dtype=dtype)
    mask = randn(33, 7, dtype=dtype)  # about half negative
    assert_close(matmul(a, b, a_relu_mask=mask), masked(a, mask) @ b, dtype=dtype)


def test_a_relu_mask_is_threshold_backward():
    """NaN in A where the mask is 0 is dropped (not NaN * 0); a NaN mask keeps A."""
    a, b = randn(7, 33), randn(33, 5)
    mask = randn(7, 33)
    mask[mask < 0] = 0.0
    mask[1, 2] = float("nan")
    a[3, 4] = float("nan")
    mask[3, 4] = 0.0
    out = matmul(a, b, a_relu_mask=mask)
    assert not out.isnan().any()
    assert_close(out, masked(a, mask) @ b, dtype=torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rowsum_dtype", ["fp32", "input"])
def test_bias_grad_out_row_sums(dtype, rowsum_dtype):
    M, N, K = 100, 129, 33  # N spans several pid_n programs; only pid_n == 0 writes
    a, b = randn(M, K, dtype=dtype), randn(K, N, dtype=dtype)
    mask = torch.relu(randn(M, K, dtype=dtype))
    sums = torch.empty(M, dtype=torch.float32 if rowsum_dtype == "fp32" else dtype,
                       device=DEVICE)
    out = matmul(a, b, a_relu_mask=mask, bias_grad_out=sums)
    assert_close(out, masked(a, mask) @ b, dtype=dtype)
    expected = masked(a, mask).float().sum(dim=1)
    assert_close(sums, expected.to(sums.dtype), dtype=dtype)


def test_bias_grad_out_with_no_columns():
    a, b = randn(33, 7), randn(7, 0)
    sums = torch.empty(33, device=DEVICE)
    out = matmul(a, b, bias_grad_out=sums)
    assert out.shape == (33, 0)
    assert_close(sums, a.sum(dim=1), dtype=torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_accumulate_into_out_view(dtype):
    M, N, K = 33, 100, 7
    a, b, bias = randn(M, K, dtype=dtype), randn(K, N, dtype=dtype), randn(N, dtype=dtype)
    base = randn(N, M, dtype=dtype)
    out = base.T  # a transposed view: written through its strides
    start = out.clone()
    sums = randn(M)
    sums_start = sums.clone()
    result = matmul(a, b, bias=bias, out=out, accumulate=True, bias_grad_out=sums)
    assert result is out
    assert_close(out, start.float() + torch.addmm(bias, a, b).float(), dtype=dtype)
    assert_close(sums, sums_start + a.float().sum(dim=1), dtype=dtype)
    matmul(a, b, out=out)  # without accumulate: overwritten
    assert_close(out, a @ b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_k_zero_gives_zeros_or_bias(dtype):
    a, b = randn(7, 0, dtype=dtype), randn(0, 33, dtype=dtype)
    assert torch.equal(matmul(a, b), torch.zeros(7, 33, dtype=dtype, device=DEVICE))
    bias = randn(33, dtype=dtype)
    assert_close(matmul(a, b, bias=bias, relu=True), torch.relu(bias).expand(7, 33), dtype=dtype)


def test_empty_rows_and_batches():
    assert matmul(randn(0, 5), randn(5, 7)).shape == (0, 7)
    assert matmul(randn(0, 3, 5), randn(0, 5, 7)).shape == (0, 3, 7)


def test_tf32_opt_in():
    """allow_tf32=True stays within TF32's error bound of the exact product, element by
    element, and (on a GPU) really rounds its inputs to TF32.

    TF32 keeps 10 of fp32's 23 mantissa bits, so converting an input costs a relative error
    of at most u_t = 2^-10 (truncation; 2^-11 when rounded to nearest: both occur, depending
    on the hardware path). The product of two TF32 values (11 significant bits each) is exact
    in fp32; the K products are then summed in fp32 (u = 2^-24), which errs by at most
    gamma_K = K u / (1 - K u) times the sum of the terms' magnitudes (Higham, "Accuracy and
    Stability of Numerical Algorithms", 3.1). Hence
        |C - A B| <= ((1 + u_t)^2 - 1 + gamma_K (1 + u_t)^2) (|A| |B|),
    about 2.0e-3 (|A| |B|) at K = 129; the fp64 reference's own error (~K 2^-53) is negligible.
    Comparing with torch's own TF32 product is wrong: two TF32 products legitimately differ
    by up to twice this bound (rounding modes and summation orders differ), typically
    sqrt(K) 2^-11 |a||b| per element; the table's fixed rtol = atol = 1e-2 failed 5 of 3300
    elements that way on an H200. IEEE fp32 obeys the same bound with u_t = 0, i.e.
    gamma_K (|A| |B|) ~ 7.7e-6 (|A| |B|): an error beyond that shows the switch did something
    (emulating TF32 inputs, most elements go beyond it and none past 0.2 of the bound)."""
    M, N, K = 100, 33, 129
    a, b = randn(M, K), randn(K, N)
    out = matmul(a, b, allow_tf32=True)
    exact = a.double() @ b.double()
    magnitude = a.double().abs() @ b.double().abs()
    u_t, u = 2.0**-10, 2.0**-24
    gamma_k = K * u / (1 - K * u)
    bound = ((1 + u_t) ** 2 - 1 + gamma_k * (1 + u_t) ** 2) * magnitude
    error = (out.double() - exact).abs()
    worst = divmod(int((error / bound).argmax()), N)
    assert (error <= bound).all(), (f"TF32 error {float(error[worst]):.3g} at {worst} is over "
                                     f"its bound {float(bound[worst]):.3g}")
    if DEVICE.type == "cuda":  # the interpreter ignores input_precision: exact fp32 there
        assert not torch.equal(out, matmul(a, b)), "allow_tf32=True gave the IEEE result"
        assert (error > gamma_k * magnitude).any(), "no error beyond fp32's: inputs not TF32"


def test_linear_relu_backward_identities():
    """The fused backward of H = relu(X W^T + b): dW (+ db) and dX from dH with mask H."""
    R, n_in, n_out = 33, 100, 7
    x = randn(R, n_in).requires_grad_()
    w = randn(n_out, n_in).requires_grad_()
    bias = randn(n_out).requires_grad_()
    h_ref = torch.relu(torch.addmm(bias, x, w.T))
    grad_h = randn(R, n_out)
    h_ref.backward(grad_h)

    h = matmul(x.detach(), w.detach().T, bias=bias.detach(), relu=True)
    assert_close(h, h_ref, dtype=torch.float32)
    grad_b = torch.empty(n_out, device=DEVICE)
    grad_w = matmul(grad_h.T, x.detach(), a_relu_mask=h.T, bias_grad_out=grad_b)
    grad_x = matmul(grad_h, w.detach(), a_relu_mask=h)
    assert_close(grad_w, w.grad, dtype=torch.float32, name="dW")
    assert_close(grad_b, bias.grad, dtype=torch.float32, name="db")
    assert_close(grad_x, x.grad, dtype=torch.float32, name="dX")


def test_launch_reports_flops_and_bytes():
    with recorded_launches() as seen:
        matmul(randn(2, 7, 33), randn(2, 33, 5))
    (info,) = seen
    assert info.kernel_name == "matmul_kernel"
    assert info.flops == 2 * 2 * 7 * 5 * 33
    assert info.bytes_moved == (2 * 7 * 33 + 2 * 33 * 5 + 2 * 7 * 5) * 4


def test_shape_mismatch_names_shapes():
    expected = r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"
    with pytest.raises(ShapeError, match=expected):
        matmul(randn(2, 3), randn(4, 5))
    with pytest.raises(ShapeError, match=r"batch sizes differ"):
        matmul(randn(2, 3, 4), randn(3, 4, 5))


def test_bad_inputs_raise_before_launch():
    a, b = randn(2, 3), randn(3, 4)
    with pytest.raises(DTypeError, match="float32 != float64"):
        matmul(a, b.double())
    with pytest.raises(DTypeError, match="int64"):
        matmul(a.long(), b.long())
    with pytest.raises(ShapeError, match=r"2-D or 3-D, got shape \(3,\)"):
        matmul(randn(3), b)
    with pytest.raises(ShapeError, match=r"2-D or 3-D"):
        matmul(randn(1, 2, 2, 3), b)
    with pytest.raises(ShapeError, match=r"bias of shape \(3,\)"):
        matmul(a, b, bias=randn(3))
    with pytest.raises(DTypeError, match="bias"):
        matmul(a, b, bias=randn(4, dtype=torch.float16))
    with pytest.raises(ShapeError, match=r"a_relu_mask has shape \(3, 2\)"):
        matmul(a, b, a_relu_mask=randn(3, 2))
    with pytest.raises(ShapeError, match=r"bias_grad_out has shape \(3,\), expected \(2,\)"):
        matmul(a, b, bias_grad_out=randn(3))
    with pytest.raises(ShapeError, match="unbatched"):
        matmul(randn(2, 2, 3), b, bias_grad_out=randn(2))
    with pytest.raises(ShapeError, match=r"out has shape \(4, 2\), expected \(2, 4\)"):
        matmul(a, b, out=randn(4, 2))
    with pytest.raises(ValueError, match="accumulate"):
        matmul(a, b, accumulate=True)
    with pytest.raises(LayoutError, match="same memory"):
        matmul(a, b, out=randn(4).expand(2, 4))
    shared = randn(2, 4)
    with pytest.raises(LayoutError, match="shares memory with mat1"):
        matmul(shared[:, :3], b, out=shared[:, :4])


def test_out_may_be_another_slice_of_the_operands_buffer():
    buffer = randn(2 * 3 + 2 * 4)  # e.g. one flat buffer holding several tensors
    a, out = buffer[:6].view(2, 3), buffer[6:].view(2, 4)
    b = randn(3, 4)
    expected = a @ b
    matmul(a, b, out=out)
    assert_close(out, expected, dtype=torch.float32)


def test_wrong_device_raises():
    other = "cpu" if DEVICE.type == "cuda" else "meta"
    a = torch.empty(2, 3, device=other)
    with pytest.raises(DeviceError, match=other):
        matmul(a, randn(3, 4))
    with pytest.raises(DeviceError, match=other):
        matmul(randn(2, 3), randn(3, 4), bias=torch.empty(4, device=other))


@pytest.mark.parametrize("K", [64, 70])  # EVEN_K on and off for BLOCK_K = 32
def test_launch_after_tuning_goes_straight_to_the_jit_function(monkeypatch, K):
    """On a GPU, a tuned key launches the jit function with the saved config (skipping the
    autotuner's Python); here the config is planted, so the same path runs under the
    interpreter, fused prologue and epilogue included."""
    import triton

    from tritongrad.kernels import matmul as matmul_kernels

    M, N = 33, 40
    a, b = torch.randn(M, K, device=DEVICE), torch.randn(K, N, device=DEVICE)
    mask, bias = torch.randn(M, K, device=DEVICE), torch.randn(N, device=DEVICE)
    rowsum = torch.empty(M, device=DEVICE)
    key = (M, N, K) + (torch.float32,) * 6
    config = triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8},
                           num_warps=4, num_stages=2)
    monkeypatch.setitem(matmul_kernels._TUNED, key, config)
    with recorded_launches() as launches:
        out = matmul(a, b, bias=bias, relu=True, a_relu_mask=mask, bias_grad_out=rowsum)
    assert [info.kernel_name for info in launches] == ["matmul_kernel"]
    assert launches[0].grid == (2 * 1, 1)  # cdiv(33, 32) row blocks, one column block
    gated = torch.where(mask <= 0, 0.0, a)
    assert_close(out, torch.relu(gated @ b + bias), dtype=torch.float32)
    assert_close(rowsum, gated.sum(1), dtype=torch.float32)
