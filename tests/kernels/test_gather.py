"""gather_fwd / gather_bwd launchers against torch.gather and its gradient."""

import pytest
import torch

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import gather as gk
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError
from tritongrad.testing.compare import assert_close

FLOATS = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def torch_gather_grad(x, dim, index, grad):
    leaf = x.detach().double().requires_grad_()
    torch.gather(leaf, dim, index).backward(grad.double())
    return leaf.grad.to(x.dtype)


def cases():
    """(x, dim, index): repeats, every dim, index smaller than x off dim, views of both."""
    g = torch.Generator().manual_seed(0)
    x3 = torch.randn(4, 5, 6, generator=g)
    return [
        (torch.randn(7, 13, generator=g), 1, torch.randint(0, 13, (7, 4), generator=g)),
        (torch.randn(7, 13, generator=g), 0, torch.randint(0, 7, (9, 13), generator=g)),
        (x3, 2, torch.randint(0, 6, (3, 5, 8), generator=g)),
        (x3.transpose(0, 2), 1, torch.randint(0, 5, (6, 2, 4), generator=g)),  # a view of x
        (x3[:, ::2], 0, torch.randint(0, 4, (10, 3, 6), generator=g)[::2]),  # views of both
        (torch.randn(5, generator=g), 0, torch.tensor([4, 4, 0])),
        (torch.tensor(2.5), 0, torch.tensor(0)),  # 0-d
    ]


@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_and_backward_match_torch(dtype):
    for x, dim, index in cases():
        x = x.to(dtype)
        out = gk.gather_fwd(x.to(DEVICE), dim, index.to(DEVICE))
        assert out.dtype == dtype and torch.equal(out.cpu(), torch.gather(x, dim, index))
        grad = torch.randn(index.shape).to(dtype)
        gx = gk.gather_bwd(grad.to(DEVICE), index.to(DEVICE), dim % max(x.dim(), 1), x.shape)
        assert gx.shape == x.shape
        assert_close(gx, torch_gather_grad(x, dim, index, grad), dtype=dtype, name="gx")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_and_bool_inputs_gather_exactly(dtype):
    x = torch.randint(0, 2 if dtype == torch.bool else 100, (6, 7)).to(dtype)
    index = torch.randint(0, 7, (6, 3))
    assert torch.equal(gk.gather_fwd(x.to(DEVICE), 1, index.to(DEVICE)).cpu(),
                       torch.gather(x, 1, index))


def test_one_launch_each_way_and_empty_index():
    x, index = torch.randn(3, 4, device=DEVICE), torch.zeros(3, 2, dtype=torch.int64,
                                                                device=DEVICE)
    with recorded_launches() as launches:
        gk.gather_fwd(x, 1, index)
        gk.gather_bwd(torch.ones(3, 2, device=DEVICE), index, 1, x.shape)
    assert [i.kernel_name for i in launches] == ["gather_kernel", "gather_bwd_kernel"]
    empty = torch.zeros(3, 0, dtype=torch.int64, device=DEVICE)
    assert gk.gather_fwd(x, 1, empty).shape == (3, 0)
    assert torch.equal(gk.gather_bwd(torch.ones(3, 0, device=DEVICE), empty, 1, x.shape).cpu(),
                       torch.zeros(3, 4))


def test_out_of_range_indices():
    x = torch.randn(3, 5, device=DEVICE)
    for bad in (5, -1):
        index = torch.tensor([[0, 1], [bad, 2], [4, 0]], device=DEVICE)
        with pytest.raises(OutOfRangeError, match=f"index {bad} is out of bounds for "
                                                  f"dimension 1 with size 5"):
            gk.gather_fwd(x, 1, index)
        out = gk.gather_fwd(x, 1, index, check_indices=False)  # no read: NaN there
        assert out[1, 0].isnan() and torch.equal(out[0].cpu(), x[0, :2].cpu())
    wrapped = gk.gather_fwd(x, 1, torch.tensor([[-1], [-5], [0]], device=DEVICE),
                            wrap_negative=True, op="index")
    assert torch.equal(wrapped.cpu().view(-1), torch.stack([x[0, 4], x[1, 0], x[2, 0]]).cpu())
    with pytest.raises(OutOfRangeError, match="index -6 is out of bounds"):
        gk.gather_fwd(x, 1, torch.tensor([[-6]], device=DEVICE), wrap_negative=True, op="index")


def test_bad_metadata_is_refused_before_launch():
    x = torch.randn(3, 5, device=DEVICE)
    with pytest.raises(DTypeError, match="Expected dtype int64 for index"):
        gk.gather_fwd(x, 1, torch.zeros(3, 1, dtype=torch.int32, device=DEVICE))
    with pytest.raises(ShapeError, match="same number of dimensions"):
        gk.gather_fwd(x, 1, torch.zeros(3, dtype=torch.int64, device=DEVICE))
    with pytest.raises(ShapeError, match=r"Size does not match at dimension 0 expected index "
                                         r"\[4, 1\] to be no larger than self \[3, 5\]"):
        gk.gather_fwd(x, 1, torch.zeros(4, 1, dtype=torch.int64, device=DEVICE))
    with pytest.raises(OutOfRangeError, match="Dimension out of range"):
        gk.gather_fwd(x, 2, torch.zeros(3, 1, dtype=torch.int64, device=DEVICE))
    with pytest.raises(ShapeError, match="grad has shape"):
        gk.gather_bwd(torch.ones(2, 2, device=DEVICE),
                      torch.zeros(3, 1, dtype=torch.int64, device=DEVICE), 1, (3, 5))
