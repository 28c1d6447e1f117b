"""var_fwd / var_bwd launchers (var and std) against torch in fp64 on the same rounded values,
at the table tolerance per dtype: dims, keepdim, corrections, layouts, the split path, the
edge cases torch defines and the argument errors."""

import pytest
import torch

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import moments
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning",  # numpy on x / 0
                                        "ignore:.*degrees of freedom:UserWarning")
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def torch_moments(x, dims, correction, keepdim, take_sqrt, grad):
    """torch's result and gradient in fp64 on x's (already rounded) values. dims=() is
    judged as every dim listed: torch 2.13's backward of dim=() divides by 1 - correction
    (a gradient of inf where its forward, over every element, is finite), which we keep
    apart from."""
    if dims == ():
        dims = tuple(range(x.dim()))
    leaf = x.detach().double().requires_grad_(True)
    fn = torch.std if take_sqrt else torch.var
    out = fn(leaf, dim=dims, correction=correction, keepdim=keepdim)
    out.backward(grad.double())
    return out.detach(), leaf.grad


def check(x, dims, correction=1, keepdim=False, take_sqrt=False, grad=None):
    dtype = x.dtype
    out, mean = moments.var_fwd(x, dims, correction, keepdim, take_sqrt)
    if grad is None:
        grad = randn(*out.shape, dtype=dtype)
    ref, grad_ref = torch_moments(x, dims, correction, keepdim, take_sqrt, grad)
    assert out.dtype == dtype and tuple(out.shape) == tuple(ref.shape)
    assert mean.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_close(out, ref.to(dtype), dtype=dtype, name="out")
    gx = moments.var_bwd(grad, x, mean, out, dims, correction, keepdim, take_sqrt)
    assert gx.dtype == dtype and tuple(gx.shape) == tuple(x.shape)
    assert_close(gx, grad_ref.to(dtype), dtype=dtype, name="gx")
    return out, gx


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dims_and_corrections_match_torch(dtype):
    torch.manual_seed(0)
    x = randn(5, 6, 7, dtype=dtype) * 2.0 + 1.0
    for dims, correction, keepdim, take_sqrt in [
            (None, 1, False, False), ((2,), 0, False, True), ((0, 2), 2, True, False),
            ((1,), 1, True, True), ((), 1, False, True), ((-1, 0), 0.5, False, False)]:
        check(x, dims, correction, keepdim, take_sqrt)
    check(randn(1, 9, dtype=dtype), (1,), 1, False, True)  # one row
    check(randn(9, dtype=dtype), None, 1, False, False)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "permuted", "expanded-grad"])
def test_strided_inputs(layout):
    torch.manual_seed(1)
    if layout == "transposed":  # rows along memory: read in place
        x, dims = randn(30, 7).T, (1,)
    elif layout == "sliced":
        x, dims = randn(8, 40)[::3, 1::2], (1,)
    elif layout == "permuted":  # reduced dims (0, 2) interleave with kept dim 1: one copy
        x, dims = randn(4, 5, 6).permute(2, 0, 1), (0, 2)
    else:
        x, dims = randn(6, 11), (1,)
    grad = randn(1).expand(6) if layout == "expanded-grad" else None  # a broadcast gradient
    for take_sqrt in (False, True):
        check(x, dims, 1, False, take_sqrt, grad)


def test_split_columns_merge_exactly(monkeypatch):
    """Few rows with many columns split over programs (blocks of 64: 4 splits of each of 3
    rows of 1000, 10 of a full reduction of 3000), merged by the parallel update; the data
    far from zero."""
    monkeypatch.setattr(moments, "TILE", 64)
    torch.manual_seed(2)
    x = randn(3, 1000) * 3.0 + 50.0
    with recorded_launches() as launches:
        check(x, (1,), 1, False, True)
    grids = {i.kernel_name: i.grid for i in launches}
    assert grids["moments_kernel"] == (3, 4) and grids["moments_merge_kernel"] == (1,)
    with recorded_launches() as launches:
        check(x.to(torch.bfloat16), None, 0)
    assert [i.grid for i in launches if i.kernel_name == "moments_kernel"] == [(1, 10)]


def test_far_from_zero_and_constant_rows():
    """x = 1e4 + randn: E[x^2] - E[x]^2 in fp32 cancels completely (1e8 +- 1e1 in 24 bits);
    the shifted two-pass and Chan merges do not. A constant row has variance exactly 0 (so
    std's gradient takes torch's std == 0 branch: 0, not NaN)."""
    torch.manual_seed(3)
    x = 1e4 + randn(4, 300)
    check(x, (1,), 1)
    constant = torch.tensor([100.3, -3.7, 1e4 / 3], device=DEVICE)[:, None].expand(3, 50)
    for dtype in DTYPES:
        c = constant.to(dtype)
        out, gx = check(c, (1,), 1, False, True)
        assert torch.equal(out, torch.zeros_like(out))
        assert torch.equal(gx, torch.zeros_like(gx))


@pytest.mark.parametrize("take_sqrt", [False, True], ids=["var", "std"])
def test_no_degrees_of_freedom_as_torch(take_sqrt):
    """N - correction <= 0: inf (NaN for equal values); the gradient follows torch's two
    formulas: with no dim, g' * (NaN where x == mean, else inf); with dims, 2 / dof as is
    (inf at 0, negative below)."""
    for values, correction, dims in [([3.0], 1, None), ([3.0], 1, (0,)), ([3.0, 4.0], 2, None),
                                     ([3.0, 4.0], 2, (0,)), ([3.0, 4.0], 3, (0,)),
                                     ([3.0, 3.0], 2, None), ([3.0, 3.0], 3, (0,)),
                                     ([1.0, 2.0, 3.0], 3, None), ([3.0], -1, None)]:
        x = torch.tensor(values, device=DEVICE)
        out, mean = moments.var_fwd(x, dims, correction, False, take_sqrt)
        leaf = x.clone().requires_grad_(True)
        fn = torch.std if take_sqrt else torch.var
        ref = fn(leaf, dim=dims, correction=correction)
        ref.backward(torch.ones_like(ref))
        gx = moments.var_bwd(torch.ones_like(out), x, mean, out, dims, correction, False,
                             take_sqrt)
        assert_close(out, ref.detach(), name=f"{values} c={correction} dims={dims}")
        assert_close(gx, leaf.grad, name=f"grad {values} c={correction} dims={dims}")


def test_zero_dim_and_empty_inputs():
    x = torch.tensor(2.0, device=DEVICE)
    for dims in (None, (0,)):
        out, mean = moments.var_fwd(x, dims, 0)
        assert out.dim() == 0 and out.item() == 0.0
        gx = moments.var_bwd(torch.tensor(1.0, device=DEVICE), x, mean, out, dims, 0)
        assert gx.item() == 0.0
    out, _ = moments.var_fwd(randn(0), None)
    assert out.dim() == 0 and out.isnan().item()
    out, mean = moments.var_fwd(randn(0, 3), (0,), -1)  # NaN whatever the correction
    assert tuple(out.shape) == (3,) and out.isnan().all().item()
    gx = moments.var_bwd(randn(3), randn(0, 3), mean, out, (0,), -1)
    assert tuple(gx.shape) == (0, 3)
    out, _ = moments.var_fwd(randn(3, 0), (0,))
    assert tuple(out.shape) == (0,)


def test_launch_counts():
    x = randn(6, 10)
    with recorded_launches() as launches:
        out, mean = moments.var_fwd(x, (1,), take_sqrt=True)
    assert [i.kernel_name for i in launches] == ["moments_kernel"]
    assert launches[0].flops > 0 and launches[0].bytes_moved > 0
    with recorded_launches() as launches:
        moments.var_bwd(randn(6), x, mean, out, (1,), take_sqrt=True)
    assert [i.kernel_name for i in launches] == ["moments_bwd_kernel"]


def test_errors_before_launch():
    x = randn(3, 4)
    with pytest.raises(DTypeError, match=r"var: input has dtype int64"):
        moments.var_fwd(torch.ones(3, dtype=torch.int64, device=DEVICE))
    with pytest.raises(OutOfRangeError, match=r"Dimension out of range"):
        moments.var_fwd(x, (2,))
    with pytest.raises(ShapeError, match=r"appears multiple times"):
        moments.var_fwd(x, (1, -1))
    out, mean = moments.var_fwd(x, (1,))
    with pytest.raises(ShapeError, match=r"grad has shape \(4,\), but the result has shape "
                                         r"\(3,\)"):
        moments.var_bwd(randn(4), x, mean, out, (1,))
    with pytest.raises(DTypeError, match=r"grad has dtype float16"):
        moments.var_bwd(randn(3, dtype=torch.float16), x, mean, out, (1,))
    with pytest.raises(ShapeError, match=r"mean must be contiguous \(3,\) float32"):
        moments.var_bwd(randn(3), x, mean.double(), out, (1,))
    with pytest.raises(ShapeError, match=r"result has shape \(4,\)"):
        moments.var_bwd(randn(3), x, mean, randn(4), (1,), take_sqrt=True)
