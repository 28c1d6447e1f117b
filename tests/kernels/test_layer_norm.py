"""layer_norm_fwd / layer_norm_bwd launchers against torch, at the table tolerance per dtype."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import layer_norm as ln
from tritongrad.kernels._checks import DeviceError, DTypeError, ShapeError
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def wide(t):
    """fp16 / bf16 tensors in fp32; others as they are."""
    return t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t


def torch_layer_norm(x, normalized_shape, weight, bias, dy, eps=1e-5):
    """torch's y, mean, rstd and dx, dw, db, computed in fp32 (fp64 for fp64) on the already
    rounded inputs and rounded once to their dtypes, as test_cross_entropy's reference.
    torch's own fp16 / bf16 CPU backward is less exact: its dw for 33 rows of randn was 4x
    further from the fp64 value than fp32-then-rounded (0.0146 against 0.0037 in fp16)."""
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None
              for t in (x, weight, bias)]
    y = F.layer_norm(wide(leaves[0]), normalized_shape, wide(leaves[1]), wide(leaves[2]), eps)
    y.backward(wide(dy))
    rows = wide(x.detach()).reshape(-1, torch.Size(normalized_shape).numel())
    var, mean = torch.var_mean(rows, dim=1, unbiased=False)
    grads = [None if t is None else t.grad for t in leaves]
    return y.detach().to(x.dtype), mean, 1.0 / torch.sqrt(var + eps), grads


def check_against_torch(x, normalized_shape, weight=None, bias=None, dy=None, eps=1e-5):
    dtype = x.dtype
    dy = randn(*x.shape, dtype=dtype) if dy is None else dy
    y, mean, rstd = ln.layer_norm_fwd(x, normalized_shape, weight, bias, eps)
    y_ref, mean_ref, rstd_ref, (dx_ref, dw_ref, db_ref) = torch_layer_norm(
        x, normalized_shape, weight, bias, dy, eps)
    assert y.dtype == dtype and tuple(y.shape) == tuple(x.shape)
    assert_close(y, y_ref, dtype=dtype, name="y")
    stats = torch.float64 if dtype == torch.float64 else torch.float32
    assert_close(mean, mean_ref, dtype=stats, name="mean")
    assert_close(rstd, rstd_ref, dtype=stats, name="rstd")
    dx, dw, db = ln.layer_norm_bwd(dy, x, mean, rstd, normalized_shape, weight, bias)
    assert_close(dx, dx_ref, dtype=dtype, name="dx")
    for ours, ref, param, name in ((dw, dw_ref, weight, "dw"), (db, db_ref, bias, "db")):
        if param is None:
            assert ours is None
        else:
            assert ours.dtype == param.dtype
            assert_close(ours, ref, dtype=param.dtype, name=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,normalized", [((33, 100), (100,)), ((1, 7), (7,)),
                                              ((2, 3, 4, 5), (4, 5)), ((6, 1000), (1000,))])
def test_fwd_bwd_match_torch(shape, normalized, dtype):
    torch.manual_seed(0)
    x = randn(*shape, dtype=dtype) * 2.0 + 0.5
    weight = randn(*normalized, dtype=dtype) * 0.5 + 1.0
    bias = randn(*normalized, dtype=dtype)
    check_against_torch(x, normalized, weight, bias)


def test_fp64_and_optional_parameters():
    torch.manual_seed(1)
    x = randn(5, 12, dtype=torch.float64)
    w = randn(12, dtype=torch.float64)
    check_against_torch(x, (12,), w, randn(12, dtype=torch.float64))
    check_against_torch(x, (12,), w, None)
    check_against_torch(randn(5, 12), (12,), None, None)
    check_against_torch(randn(5, 12), (12,), None, randn(12))  # bias only


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_fp32_parameters_with_half_input(dtype):
    """torch's CPU "mixed dtype": fp32 weight and bias with an fp16 / bf16 input give y and dx
    in the input's dtype, dw and db in fp32."""
    torch.manual_seed(2)
    check_against_torch(randn(9, 40, dtype=dtype), (40,), randn(40), randn(40))


def test_wide_rows_use_the_column_loop_and_several_programs(monkeypatch):
    """Rows of 100 columns in blocks of 32 (Welford merge in forward, three passes in
    backward; the last block partial), 13 rows in 2-row blocks over 4 programs, whose
    partial dw / db are summed."""
    monkeypatch.setattr(ln, "MAX_BLOCK_C", 32)
    monkeypatch.setattr(ln, "TILE", 64)
    torch.manual_seed(3)
    x, w, b = randn(13, 100) * 3.0 + 2.0, randn(100), randn(100)
    with recorded_launches() as launches:
        check_against_torch(x, (100,), w, b)
    assert [i.grid for i in launches if i.kernel_name == "layer_norm_bwd_kernel"] == [(4,)]
    # only the parameters' gradients (the third pass alone)
    dy = randn(13, 100)
    _, _, _, (_, dw_ref, db_ref) = torch_layer_norm(x, (100,), w, b, dy)
    y, mean, rstd = ln.layer_norm_fwd(x, (100,), w, b)
    dx, dw, db = ln.layer_norm_bwd(dy, x, mean, rstd, (100,), w, b, need_input=False)
    assert dx is None
    assert_close(dw, dw_ref, dtype=torch.float32, name="dw")
    assert_close(db, db_ref, dtype=torch.float32, name="db")


def test_rows_far_from_zero_keep_their_variance(monkeypatch):
    """x = 100 + randn: E[x^2] - E[x]^2 in fp32 cancels (measured: y off by 2e-3 to 3e-3);
    the two-pass (one block) and Welford (column loop) statistics must not (7e-6, the
    rounding of the mean itself). Judged against fp64 on the same fp32 values."""
    torch.manual_seed(4)
    x = 100.0 + randn(4, 200)
    ref = F.layer_norm(x.double(), (200,))
    assert_close(ln.layer_norm_fwd(x, (200,))[0], ref, dtype=torch.float32, name="one block")
    monkeypatch.setattr(ln, "MAX_BLOCK_C", 64)
    assert_close(ln.layer_norm_fwd(x, (200,))[0], ref, dtype=torch.float32, name="welford")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("max_block_c", [4096, 64], ids=["one-block", "column-loop"])
def test_constant_rows_are_exact(monkeypatch, dtype, max_block_c):
    """A row of one repeated value has mean exactly that value and variance 0, so y = bias
    exactly and dw = 0, as torch's Welford gives. Before the statistics were shifted by the
    row's first element, sum(x) / N rounded: 9 columns of 100.3 gave y = 2.4e-3 (fp32, eps
    1e-5) and, with eps = 1e-12, y = 0.0075 for 0.1 and O(1) in general; dw picked the same
    noise up (times rstd)."""
    monkeypatch.setattr(ln, "MAX_BLOCK_C", max_block_c)
    values = torch.tensor([100.3, 0.1, -3.7, 1e4 / 3], dtype=torch.float64)
    for n_cols in (9, 200):
        x = values[:, None].expand(4, n_cols).to(dtype).to(DEVICE)
        w, b = randn(n_cols, dtype=dtype), randn(n_cols, dtype=dtype)
        for eps in (1e-5, 1e-12):
            y, mean, rstd = ln.layer_norm_fwd(x, (n_cols,), w, b, eps)
            assert torch.equal(mean, wide(x[:, 0])), (n_cols, eps)
            assert torch.equal(y, b.expand(4, n_cols)), (n_cols, eps)
            _, dw, _ = ln.layer_norm_bwd(randn(4, n_cols, dtype=dtype), x, mean, rstd,
                                         (n_cols,), w, b)
            assert torch.equal(dw, torch.zeros_like(dw)), (n_cols, eps)


def test_backward_is_deterministic_across_programs(monkeypatch):
    monkeypatch.setattr(ln, "TILE", 64)  # 50 rows of 16 columns: 4 programs
    torch.manual_seed(5)
    x, w, dy = randn(50, 16), randn(16), randn(50, 16)
    _, mean, rstd = ln.layer_norm_fwd(x, (16,), w, w)
    first = ln.layer_norm_bwd(dy, x, mean, rstd, (16,), w, w)
    second = ln.layer_norm_bwd(dy, x, mean, rstd, (16,), w, w)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "unmergeable"])
def test_strided_inputs_and_grads(layout):
    torch.manual_seed(6)
    if layout == "transposed":  # read in place through (stride_r, stride_c) = (1, 9)
        x, normalized, dy = randn(20, 9).T, (20,), randn(20, 9).T
    elif layout == "sliced":
        x, normalized, dy = randn(10, 40)[::3, 1::2], (20,), randn(8, 40)[::2, ::2]
    else:  # the normalized dims do not merge into one stride: copied once
        x, normalized, dy = randn(3, 8, 5)[:, ::2], (4, 5), randn(3, 4, 10)[..., ::2]
    assert not x.is_contiguous() and not dy.is_contiguous()
    check_against_torch(x, normalized, randn(*normalized), randn(*normalized), dy=dy)
    # strided parameters are copied to contiguous (our copy kernel) before the launch
    weight = randn(*normalized, 2)[..., 1]
    check_against_torch(x, normalized, weight, randn(*normalized), dy=dy)


def test_launch_counts_and_skipped_gradients():
    x, w, b, dy = randn(6, 10), randn(10), randn(10), randn(6, 10)
    with recorded_launches() as launches:
        y, mean, rstd = ln.layer_norm_fwd(x, (10,), w, b)
    assert [i.kernel_name for i in launches] == ["layer_norm_fwd_kernel"]
    assert launches[0].flops > 0 and launches[0].bytes_moved > 0
    with recorded_launches() as launches:
        dx, dw, db = ln.layer_norm_bwd(dy, x, mean, rstd, (10,), w, b, need_weight=False,
                                       need_bias=False)
    assert [i.kernel_name for i in launches] == ["layer_norm_bwd_kernel"]
    assert dx is not None and dw is None and db is None
    with recorded_launches() as launches:
        dx, dw, db = ln.layer_norm_bwd(dy, x, mean, rstd, (10,), w, b, need_input=False,
                                       need_weight=False)
    assert [i.kernel_name for i in launches] == ["layer_norm_bwd_kernel",
                                                 "layer_norm_sum_partials_kernel"]
    assert dx is None and dw is None
    assert_close(db, dy.sum(0), dtype=torch.float32)


def test_empty_inputs():
    w = randn(4)
    y, mean, rstd = ln.layer_norm_fwd(randn(0, 4), (4,), w, w)
    assert tuple(y.shape) == (0, 4) and tuple(mean.shape) == (0,)
    dx, dw, db = ln.layer_norm_bwd(randn(0, 4), randn(0, 4), mean, rstd, (4,), w, w)
    assert tuple(dx.shape) == (0, 4) and torch.equal(dw, torch.zeros(4, device=DEVICE))
    y, mean, rstd = ln.layer_norm_fwd(randn(3, 0), (0,))
    assert tuple(y.shape) == (3, 0)


def test_errors_before_launch():
    x = randn(3, 4)
    with pytest.raises(ShapeError, match=r"Given normalized_shape=\[5\], expected input with "
                                         r"shape \[\*, 5\], but got input of size\[3, 4\]"):
        ln.layer_norm_fwd(x, (5,))
    with pytest.raises(ShapeError, match=r"normalized_shape=\[2, 4\].*\[\*, 2, 4\].*\[3, 4\]"):
        ln.layer_norm_fwd(x, (2, 4))
    with pytest.raises(ShapeError, match=r"at least 1-dimensional"):
        ln.layer_norm_fwd(x, ())
    with pytest.raises(ShapeError, match=r"weight of shape \[5\] and normalized_shape = \[4\]"):
        ln.layer_norm_fwd(x, (4,), randn(5))
    with pytest.raises(ShapeError, match=r"bias of shape \[2, 2\] and normalized_shape = \[4\]"):
        ln.layer_norm_fwd(x, (4,), randn(4), randn(2, 2))
    with pytest.raises(DTypeError, match=r"input float32, weight bfloat16"):
        ln.layer_norm_fwd(x, (4,), randn(4, dtype=torch.bfloat16))
    with pytest.raises(DTypeError, match=r"input bfloat16, weight float32, bias bfloat16"):
        ln.layer_norm_fwd(x.bfloat16(), (4,), randn(4), randn(4, dtype=torch.bfloat16))
    with pytest.raises(DTypeError, match=r"input float16, bias float32"):  # as torch
        ln.layer_norm_fwd(x.half(), (4,), None, randn(4))
    with pytest.raises(DTypeError, match=r"input has dtype int64"):
        ln.layer_norm_fwd(torch.ones(3, 4, dtype=torch.int64, device=DEVICE), (4,))
    if DEVICE.type == "cpu":
        with pytest.raises(DeviceError, match="weight is on meta"):
            ln.layer_norm_fwd(x, (4,), torch.ones(4, device="meta"))
    _, mean, rstd = ln.layer_norm_fwd(x, (4,))
    with pytest.raises(ShapeError, match=r"grad shape \(3, 5\) != input shape \(3, 4\)"):
        ln.layer_norm_bwd(randn(3, 5), x, mean, rstd, (4,))
    with pytest.raises(DTypeError, match=r"input and grad .* float32 != float16"):
        ln.layer_norm_bwd(randn(3, 4, dtype=torch.float16), x, mean, rstd, (4,))
    with pytest.raises(ShapeError, match=r"rstd must be contiguous \(3,\) float32"):
        ln.layer_norm_bwd(randn(3, 4), x, mean, rstd[:2], (4,))
