"""mse_fwd / mse_bwd launchers against torch.nn.functional.mse_loss."""

import pytest
import torch
import torch.nn.functional as F

from tests.launches import recorded_launches
from tritongrad.kernels import mse as mse_kernels
from tritongrad.kernels._arrivals import arrival_counter
from tritongrad.kernels._checks import DTypeError, ShapeError
from tritongrad.kernels.mse import BLOCK, l1_bwd, l1_fwd, mse_bwd, mse_fwd
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["mean", "sum", "none"]


def reference(input, target, reduction, grad_output):
    """torch in fp32 on the (already rounded) inputs, results cast back to input's dtype."""
    x = input.detach().float().requires_grad_()
    t = target.detach().float().requires_grad_()
    loss = F.mse_loss(x, t, reduction=reduction)
    loss.backward(grad_output.float())
    return loss.detach().to(input.dtype), x.grad.to(input.dtype), t.grad.to(input.dtype)


def check(input, target, reduction, grad_output=None):
    dtype = input.dtype
    if grad_output is None:
        shape = input.shape if reduction == "none" else ()
        grad_output = torch.randn(shape).to(dtype)
    loss = mse_fwd(input, target, reduction)
    grad_input, grad_target = mse_bwd(grad_output, input, target, reduction,
                                      need_input=True, need_target=True)
    ref_loss, ref_grad_input, ref_grad_target = reference(input, target, reduction, grad_output)
    assert loss.dtype == dtype and grad_input.dtype == dtype
    assert_close(loss, ref_loss, dtype=dtype, name="loss")
    assert_close(grad_input, ref_grad_input, dtype=dtype, name="grad_input")
    assert_close(grad_target, ref_grad_target, dtype=dtype, name="grad_target")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 7), (37, 5), (3, 4, 5), (2 * BLOCK + 3,)])
def test_matches_torch(dtype, reduction, shape):
    input = torch.randn(shape).to(dtype)
    target = torch.randn(shape).to(dtype)
    check(input, target, reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_strided_views(dtype, reduction):
    input = torch.randn(9, 6).to(dtype).T  # transposed (6, 9)
    target = torch.randn(6, 20).to(dtype)[:, 3:12]  # column slice (6, 9)
    check(input, target, reduction)
    expanded = torch.randn(1, 9).to(dtype).expand(6, 9)  # stride 0 is fine to read
    check(input, expanded, reduction)


def test_none_backward_reads_strided_grad_output():
    input, target = torch.randn(5, 7), torch.randn(5, 7)
    grad_output = torch.randn(7, 5).T
    check(input, target, "none", grad_output=grad_output)


def test_zero_dim_and_fp64():
    check(torch.tensor(1.5), torch.tensor(-0.5), "mean")
    input = torch.randn(4, 3, dtype=torch.float64)
    target = torch.randn(4, 3, dtype=torch.float64)
    loss = mse_fwd(input, target)
    assert_close(loss, F.mse_loss(input, target), dtype=torch.float64)


def test_empty():
    empty = torch.empty(0, 3)
    assert torch.isnan(mse_fwd(empty, empty, "mean"))  # torch: NaN
    assert mse_fwd(empty, empty, "sum").item() == 0.0
    assert mse_fwd(empty, empty, "none").shape == (0, 3)
    grad_input, grad_target = mse_bwd(torch.tensor(1.0), empty, empty, "mean", True, True)
    assert grad_input.shape == (0, 3) and grad_target.shape == (0, 3)


def test_only_the_gradients_asked_for():
    input, target = torch.randn(4, 5), torch.randn(4, 5)
    grad_input, grad_target = mse_bwd(torch.tensor(2.0), input, target, "sum",
                                      need_input=False, need_target=True)
    assert grad_input is None
    assert_close(grad_target, -4.0 * (input - target), dtype=torch.float32)
    assert mse_bwd(torch.tensor(2.0), input, target, "sum", False, False) == (None, None)


def test_deterministic_reduction():
    input, target = torch.randn(3 * BLOCK + 17), torch.randn(3 * BLOCK + 17)
    first = mse_fwd(input, target, "sum")
    assert all(torch.equal(first, mse_fwd(input, target, "sum")) for _ in range(2))


@pytest.mark.parametrize("max_partials", [1, 2, 3])
def test_one_launch_grid_stride(monkeypatch, max_partials):
    # 7 blocks over 1, 2 or 3 programs: each program loops over several blocks (the last
    # one ragged), and whichever program takes the last ticket adds every partial.
    monkeypatch.setattr(mse_kernels, "MAX_PARTIALS", max_partials)
    input, target = torch.randn(6 * BLOCK + 5), torch.randn(6 * BLOCK + 5)
    with recorded_launches() as launches:
        loss = mse_fwd(input, target, "mean")
    assert [info.grid for info in launches] == [(max_partials,)]
    expected = ((input.double() - target.double()) ** 2).mean()
    assert_close(loss, expected.float(), dtype=torch.float32)
    # The finishing program leaves the counter at 0 for the next launch.
    assert arrival_counter(input.device).item() == 0


def test_errors_name_what_they_saw():
    with pytest.raises(ShapeError, match=r"\(3, 4\).*\(4, 3\)"):
        mse_fwd(torch.randn(3, 4), torch.randn(4, 3))
    with pytest.raises(DTypeError, match="float32 != float16"):
        mse_fwd(torch.randn(3), torch.randn(3).half())
    with pytest.raises(ValueError, match="reduction"):
        mse_fwd(torch.randn(3), torch.randn(3), "avg")
    with pytest.raises(ShapeError, match="grad_output"):
        mse_bwd(torch.randn(3), torch.randn(3), torch.randn(3), "mean")
    with pytest.raises(DTypeError):
        mse_fwd(torch.arange(3), torch.arange(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_mode_matches_torch(dtype, reduction):
    input = torch.randn(2 * BLOCK + 3).to(dtype)
    target = torch.randn(2 * BLOCK + 3).to(dtype)
    target[::4] = input[::4]  # equal elements: gradient 0
    input[5] = float("nan")
    input, target = input[::2], target[::2]  # strided views
    grad_output = torch.randn(input.shape if reduction == "none" else ()).to(dtype)
    x = input.float().requires_grad_()
    t = target.float().requires_grad_()
    ref = F.l1_loss(x, t, reduction=reduction)
    ref.backward(grad_output.float())
    grad_input, grad_target = l1_bwd(grad_output, input, target, reduction, True, True)
    assert_close(l1_fwd(input, target, reduction), ref.detach().to(dtype), dtype=dtype)
    assert_close(grad_input, x.grad.to(dtype), dtype=dtype, name="grad_input")
    assert_close(grad_target, t.grad.to(dtype), dtype=dtype, name="grad_target")
