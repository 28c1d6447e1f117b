"""relu_fwd / relu_bwd against torch.relu and its backward (threshold_backward)."""

import pytest
import torch

import tritongrad
from tritongrad.kernels._checks import DTypeError, ShapeError
from tritongrad.kernels.relu import RELU_BLOCK, relu_bwd, relu_fwd
from tritongrad.testing.compare import assert_close

DEVICE = tritongrad.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def views(dtype):
    """Contiguous, 1-row, odd-sized, transposed, sliced and expanded inputs."""
    def r(*shape):
        return torch.randn(*shape, device=DEVICE).to(dtype)

    return {
        "contiguous": r(33, 100),
        "one-row": r(1, 129),
        "several-blocks": r(RELU_BLOCK + 7),
        "transposed": r(7, 33).T,
        "sliced": r(9, 40, 3)[1::2, ::3, 1],
        "3d-permuted": r(3, 5, 7).permute(2, 0, 1),
        "expanded": r(1, 33).expand(5, 33),
        "scalar": r(()),
        "empty": r(0, 4),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_relu_fwd_matches_torch(dtype):
    for name, x in views(dtype).items():
        y = relu_fwd(x)
        assert y.is_contiguous() and y.shape == x.shape and y.dtype == dtype, name
        assert_close(y, torch.relu(x), dtype=dtype, name=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_relu_bwd_matches_torch(dtype):
    for name, x in views(dtype).items():
        grad_y = torch.randn(x.shape, device=DEVICE).to(dtype)
        grad_y = grad_y.T.contiguous().T if grad_y.dim() == 2 else grad_y  # other strides
        out = torch.relu(x)
        expected = torch.ops.aten.threshold_backward(grad_y, out, 0)
        assert_close(relu_bwd(grad_y, out), expected, dtype=dtype, name=name)


def test_relu_nan_and_inf_like_torch():
    x = torch.tensor([float("nan"), -float("inf"), float("inf"), -0.0, 0.0, -1.0, 2.0],
                     device=DEVICE)
    assert_close(relu_fwd(x), torch.relu(x), dtype=torch.float32)
    grad_y = torch.tensor([1.0, 2.0, 3.0, 4.0, float("nan"), float("nan"), 7.0], device=DEVICE)
    out = torch.relu(x)
    # NaN output passes the gradient; NaN gradient where out <= 0 becomes 0
    assert_close(relu_bwd(grad_y, out), torch.ops.aten.threshold_backward(grad_y, out, 0),
                 dtype=torch.float32)


def test_relu_bad_inputs():
    x = torch.randn(3, 4, device=DEVICE)
    with pytest.raises(DTypeError, match="int64"):
        relu_fwd(x.long())
    with pytest.raises(ShapeError, match=r"\(4, 3\).*\(3, 4\)"):
        relu_bwd(torch.randn(4, 3, device=DEVICE), x)
    with pytest.raises(DTypeError, match="float16"):
        relu_bwd(x.half(), x)
