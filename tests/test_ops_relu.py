"""Parity of the ReLU Function with torch.relu, forward and backward."""

import pytest
import torch

import tritongrad as tg
from tritongrad.ops.activation import ReLU, relu
from tritongrad.testing import assert_parity, reference_for

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["2d", "1-row", "odd-3d", "transposed", "sliced", "scalar"])
def test_relu_parity(case, dtype):
    x = {
        "2d": randn(33, 100),
        "1-row": randn(1, 129),
        "odd-3d": randn(3, 7, 33),
        "transposed": randn(100, 7).T,
        "sliced": randn(10, 66)[::3, 1::2],
        "scalar": randn(()),
    }[case]
    assert_parity(relu, reference_for(ReLU), x, dtype=dtype)


def test_relu_parity_fp64_and_method():
    assert_parity(lambda t: t.relu(), torch.relu, randn(7, 33), dtype=torch.float64)


def test_relu_keeps_nan_like_torch():
    x = torch.tensor([float("nan"), -1.0, 0.0, 2.0, float("inf"), -float("inf")], device=DEVICE)
    assert_parity(relu, torch.relu, x, dtype=torch.float32)
