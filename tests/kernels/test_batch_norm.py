"""batch_norm_fwd / batch_norm_bwd launchers against torch, at the table tolerance per dtype:
training and eval, (N, C), (N, C, L), (N, C, H, W) and channels-last, strided inputs and
gradients, the split path, the running-statistics update, determinism and the errors."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import batch_norm as bn
from tritongrad.kernels import moments
from tritongrad.kernels._checks import DTypeError, LayoutError, ShapeError
from tritongrad.testing.compare import assert_close


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def params(channels, dtype, affine=True):
    """(running_mean, running_var, weight, bias) of ``dtype``."""
    weight = randn(channels, dtype=dtype) * 0.5 + 1.0 if affine else None
    bias = randn(channels, dtype=dtype) if affine else None
    running_var = (torch.rand(channels, dtype=torch.float64) + 0.5).to(dtype).to(DEVICE)
    return randn(channels, dtype=dtype), running_var, weight, bias


def wide(t):
    return None if t is None else t.detach().double()


def torch_batch_norm(x, running_mean, running_var, weight, bias, training, dy, momentum=0.1,
                     eps=1e-5):
    """torch's y, dx, dw, db and updated running statistics, in fp64 on the (rounded) values
    ours read, as the kernels' fp32 (fp64) arithmetic approximates them."""
    leaves = [None if t is None else wide(t).requires_grad_(True) for t in (x, weight, bias)]
    stats = [wide(t) for t in (running_mean, running_var)]
    y = F.batch_norm(leaves[0], stats[0], stats[1], leaves[1], leaves[2], training, momentum,
                     eps)
    y.backward(wide(dy))
    return y.detach(), [None if t is None else t.grad for t in leaves], stats


def check(x, training, param_dtype=None, affine=True, dy=None, momentum=0.1, eps=1e-5,
          stats=True):
    dtype = x.dtype
    running_mean, running_var, weight, bias = params(x.shape[1], param_dtype or dtype, affine)
    if not stats:
        running_mean = running_var = None
    dy = randn(*x.shape, dtype=dtype) if dy is None else dy
    y_ref, grads_ref, stats_ref = torch_batch_norm(x, running_mean, running_var, weight, bias,
                                                   training, dy, momentum, eps)
    y, mean, var = bn.batch_norm_fwd(x, running_mean, running_var, weight, bias, training,
                                     momentum, eps)
    assert y.dtype == dtype and tuple(y.shape) == tuple(x.shape)
    assert_close(y, y_ref.to(dtype), dtype=dtype, name="y")
    if running_mean is not None:
        for ours, ref, name in zip((running_mean, running_var), stats_ref, ("mean", "var")):
            assert_close(ours, ref.to(ours.dtype), dtype=ours.dtype, name=f"running_{name}")
    dx, dw, db = bn.batch_norm_bwd(dy, x, mean, var, weight, bias, training, eps)
    assert_close(dx, grads_ref[0].to(dtype), dtype=dtype, name="dx")
    for ours, ref, param, name in ((dw, grads_ref[1], weight, "dw"),
                                   (db, grads_ref[2], bias, "db")):
        if param is None:
            assert ours is None
        else:
            assert ours.dtype == param.dtype
            assert_close(ours, ref.to(param.dtype), dtype=param.dtype, name=name)
    return y, dx


SHAPES = {"2d": (9, 5), "3d": (4, 3, 7), "4d": (2, 3, 4, 5)}
# (shape, training) per dtype: every pairing in fp32, two in the others
CASES = {torch.float32: [(s, t) for s in SHAPES for t in (True, False)],
         torch.float16: [("3d", True), ("4d", False)],
         torch.bfloat16: [("4d", True), ("2d", False)],
         torch.float64: [("2d", True), ("3d", False)]}


@pytest.mark.parametrize("dtype", list(CASES), ids=str)
def test_layouts_and_modes_match_torch(dtype):
    torch.manual_seed(0)
    for name, training in CASES[dtype]:
        check(randn(*SHAPES[name], dtype=dtype) * 2.0 + 0.5, training)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_input_with_fp32_parameters(dtype):
    """torch's CPU mixed dtype: fp32 weight, bias and running statistics with fp16 / bf16
    input; y and dx in the input's dtype, dw and db in fp32."""
    torch.manual_seed(1)
    for training in (True, False):
        check(randn(4, 3, 7, dtype=dtype), training, param_dtype=torch.float32)


@pytest.mark.parametrize("layout", ["transposed", "channels-last", "sliced", "spatial-permuted"])
def test_strided_inputs_and_gradients(layout):
    """x read in place where its dims allow (y and dx then take x's strides), copied once
    where not; the gradient read through its own strides or laid out like x first."""
    torch.manual_seed(2)
    if layout == "transposed":  # (N, C) with channels along... rows of memory: in place
        x, dy = randn(6, 10).T, randn(10, 6)
    elif layout == "channels-last":  # N, H, W merge into one stride: in place
        x, dy = randn(2, 4, 5, 3).permute(0, 3, 1, 2), randn(2, 3, 4, 5)
    elif layout == "sliced":  # not dense: copied to contiguous
        x, dy = randn(8, 12)[::2, ::3], randn(4, 8)[:, ::2]
    else:  # H and W swapped: neither grouping merges, copied
        x, dy = randn(2, 3, 5, 4).transpose(2, 3), randn(2, 3, 4, 5)
    assert not x.is_contiguous()
    for training in (True, False):
        y, dx = check(x, training, dy=dy)
        if layout in ("transposed", "channels-last"):
            assert y.stride() == x.stride() and dx.stride() == x.stride()


def test_split_path_and_running_statistics_over_steps(monkeypatch):
    """Few channels with many elements split over programs (tiles of 64: 2 channels x 300,
    and 2 x 200 x 3 with 8 batch entries a tile), merged by the parallel update; spatial
    slabs that fill a tile walked one batch entry a tile; the running statistics follow
    torch over several steps with momentum 0.3."""
    monkeypatch.setattr(moments, "TILE", 64)
    monkeypatch.setattr(bn, "TILE", 64)
    monkeypatch.setattr(bn, "ELEMENTWISE_TILE", 64)
    torch.manual_seed(3)
    with recorded_launches() as launches:
        check(randn(300, 2) * 3.0 + 20.0, True)
    grids = {i.kernel_name: i.grid for i in launches}
    assert grids["moments_kernel"][1] > 1 and grids["batch_norm_grad_sums_kernel"][1] > 1
    check(randn(2, 3, 6, 6), True)  # a 36-element slab a channel: walked batch by batch
    with recorded_launches() as launches:  # 8 batch entries a tile, 5 splits of 40
        check(randn(200, 2, 3), True)
    assert [i.grid for i in launches if i.kernel_name == "moments_kernel"] == [(1, 5)]
    running_mean, running_var, _, _ = params(3, torch.float32)
    ref_mean, ref_var = running_mean.clone(), running_var.clone()
    for step in range(3):
        x = randn(2, 3, 12, 12) * (step + 1.0) + step
        bn.batch_norm_fwd(x, running_mean, running_var, None, None, True, 0.3)
        F.batch_norm(x, ref_mean, ref_var, None, None, True, 0.3)
    assert_close(running_mean, ref_mean, name="running_mean")
    assert_close(running_var, ref_var, name="running_var")


def test_options_and_constant_channels():
    """No affine parameters, no running statistics, other momentum and eps; a channel of one
    repeated value has variance exactly 0 (y = bias, dw = 0)."""
    torch.manual_seed(4)
    check(randn(5, 4, 3), True, affine=False)
    check(randn(5, 4, 3), True, stats=False, momentum=0.5, eps=1e-3)
    check(randn(5, 4), False, affine=False, eps=0.1)
    # strided running statistics: updated through a contiguous copy, written back
    running_mean, running_var = randn(8)[::2], (torch.rand(4, 2, device=DEVICE) + 0.5)[:, 1]
    ref_mean, ref_var = running_mean.clone(), running_var.clone()
    x = randn(6, 4)
    bn.batch_norm_fwd(x, running_mean, running_var, None, None, True)
    F.batch_norm(x, ref_mean, ref_var, None, None, True)
    assert_close(running_mean, ref_mean, name="strided running_mean")
    assert_close(running_var, ref_var, name="strided running_var")
    x = torch.tensor([100.3, -3.7, 1e4 / 3], device=DEVICE)[None, :, None].expand(4, 3, 5)
    running_mean, running_var, weight, bias = params(3, torch.float32)
    y, mean, var = bn.batch_norm_fwd(x, running_mean, running_var, weight, bias, True)
    assert torch.equal(var, torch.zeros(3, device=DEVICE))
    assert torch.equal(y, bias[None, :, None].expand(4, 3, 5))
    _, dw, _ = bn.batch_norm_bwd(randn(4, 3, 5), x, mean, var, weight, bias, True)
    assert torch.equal(dw, torch.zeros(3, device=DEVICE))


def test_deterministic_and_launch_counts():
    torch.manual_seed(5)
    x, dy = randn(6, 4, 9), randn(6, 4, 9)
    running_mean, running_var, weight, bias = params(4, torch.float32)
    with recorded_launches() as launches:
        y, mean, var = bn.batch_norm_fwd(x, running_mean, running_var, weight, bias, True)
    assert [i.kernel_name for i in launches] == ["moments_kernel", "batch_norm_stats_kernel",
                                                 "batch_norm_fwd_kernel"]
    with recorded_launches() as launches:
        first = bn.batch_norm_bwd(dy, x, mean, var, weight, bias, True)
    assert [i.kernel_name for i in launches] == ["batch_norm_grad_sums_kernel",
                                                 "batch_norm_bwd_reduce_kernel",
                                                 "batch_norm_bwd_kernel"]
    second = bn.batch_norm_bwd(dy, x, mean, var, weight, bias, True)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    with recorded_launches() as launches:  # eval, dx only: one launch each way
        y, mean, var = bn.batch_norm_fwd(x, running_mean, running_var, weight, bias, False)
        dx, dw, db = bn.batch_norm_bwd(dy, x, mean, var, weight, bias, False,
                                       need_weight=False, need_bias=False)
    assert [i.kernel_name for i in launches] == ["batch_norm_fwd_kernel", "batch_norm_bwd_kernel"]
    assert dw is None and db is None
    dx, dw, db = bn.batch_norm_bwd(dy, x, mean, var, weight, bias, False, need_input=False,
                                   need_weight=False)
    assert dx is None and dw is None
    assert_close(db, dy.sum((0, 2)), name="db")


def test_empty_batch():
    running_mean, running_var, weight, bias = params(3, torch.float32)
    before = running_mean.clone()
    y, mean, var = bn.batch_norm_fwd(randn(0, 3), running_mean, running_var, weight, bias, True)
    assert tuple(y.shape) == (0, 3) and torch.equal(running_mean, before)
    dx, dw, db = bn.batch_norm_bwd(randn(0, 3), randn(0, 3), mean, var, weight, bias, True)
    assert tuple(dx.shape) == (0, 3) and torch.equal(dw, torch.zeros(3, device=DEVICE))


def test_errors_before_launch():
    x = randn(4, 3)
    running_mean, running_var, weight, bias = params(3, torch.float32)
    with pytest.raises(ShapeError, match=r"Expected more than 1 value per channel when "
                                         r"training, got input size torch.Size\(\[1, 3\]\)"):
        bn.batch_norm_fwd(randn(1, 3), None, None, None, None, True)
    with pytest.raises(ShapeError, match=r"torch.Size\(\[1, 3, 1\]\)"):
        bn.batch_norm_fwd(randn(1, 3, 1), None, None, None, None, True)
    bn.batch_norm_fwd(randn(1, 3), running_mean, running_var, None, None, False)  # eval: fine
    with pytest.raises(ShapeError, match=r"running_mean should contain 3 elements not 4"):
        bn.batch_norm_fwd(x, randn(4), randn(4), None, None, True)
    with pytest.raises(ShapeError, match=r"weight should contain 3 elements not 2"):
        bn.batch_norm_fwd(x, None, None, randn(2), None, True)
    with pytest.raises(RuntimeError, match=r"running_mean must be defined in evaluation mode"):
        bn.batch_norm_fwd(x, None, None, None, None, False)
    with pytest.raises(ValueError, match=r"must either both be None or neither be None"):
        bn.batch_norm_fwd(x, running_mean, None, None, None, True)
    with pytest.raises(DTypeError, match=r"mixed dtypes: input float32, weight float16"):
        bn.batch_norm_fwd(x, None, None, weight.half(), None, True)
    with pytest.raises(DTypeError, match=r"input float16, .*running_mean float64"):
        bn.batch_norm_fwd(x.half(), running_mean.double(), running_var.double(), None, None,
                          True)
    with pytest.raises(DTypeError, match=r"input has dtype int64"):
        bn.batch_norm_fwd(torch.ones(4, 3, dtype=torch.int64, device=DEVICE), None, None)
    with pytest.raises(ShapeError, match=r"\(N, C\) or \(N, C, \*\), got shape \(3,\)"):
        bn.batch_norm_fwd(randn(3), None, None, None, None, True)
    with pytest.raises(LayoutError, match=r"running_mean .* same memory location"):
        bn.batch_norm_fwd(x, randn(1).expand(3), running_var, None, None, True)
    y, mean, var = bn.batch_norm_fwd(x, running_mean, running_var, weight, bias, True)
    with pytest.raises(ShapeError, match=r"grad shape \(4, 2\) != input shape \(4, 3\)"):
        bn.batch_norm_bwd(randn(4, 2), x, mean, var, weight, bias, True)
    with pytest.raises(DTypeError, match=r"input and grad to have the same dtype"):
        bn.batch_norm_bwd(randn(4, 3, dtype=torch.float64), x, mean, var, weight, bias, True)
