"""tg.norm and clip_norm: forward and gradient parity with torch (Norm, ClipNorm)."""

import math

import pytest
import torch

import tritongrad as tg
from tritongrad.ops.norm import ClipNorm, Norm, clip_norm, norm
from tritongrad.testing import assert_parity, reference_for
from tritongrad.testing.ref_norm import clip_norm_reference

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
INPUTS = {
    "row": lambda: torch.randn(1, 37),
    "odd": lambda: torch.randn(5, 131),
    "transposed": lambda: torch.randn(37, 6).T,
    "sliced": lambda: torch.randn(9, 40)[::2, 3:30],
}
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [2, math.inf])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (0, True), (-1, True)])
@pytest.mark.parametrize("name", list(INPUTS))
def test_norm_parity(dtype, p, dim, keepdim, name):
    assert_parity(lambda x: norm(x, p, dim, keepdim),
                  lambda x: torch.linalg.vector_norm(x, p, dim=dim, keepdim=keepdim),
                  INPUTS[name](), dtype=dtype)


def test_tensor_norm_method_and_fro():
    x = torch.randn(4, 6)
    assert_parity(lambda t: t.norm(), lambda t: t.norm(), x)
    assert_parity(lambda t: norm(t, "fro", dim=1), lambda t: t.norm(dim=1), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipped, and untouched
@pytest.mark.parametrize("dim", [None, 1])
@pytest.mark.parametrize("name", list(INPUTS))
def test_clip_norm_parity(dtype, max_norm, dim, name):
    assert_parity(lambda x: clip_norm(x, max_norm, dim),
                  lambda x: clip_norm_reference(x, max_norm, dim), INPUTS[name](), dtype=dtype)


def test_clip_norm_rows_either_side_of_threshold():
    # Row norms 5, 0.5 and 2.5 against max_norm 1: rows 0 and 2 clipped, row 1 not.
    x = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.0, 0.4], [1.5, -2.0, 0.0]])
    assert_parity(lambda t: clip_norm(t, 1.0, dim=1), lambda t: clip_norm_reference(t, 1.0, 1), x)
    y = clip_norm(tg.from_torch(x), 1.0, dim=1).torch()
    assert torch.equal(y[1], x[1])


def test_clip_norm_zero_input_passes_gradient_through():
    x = tg.zeros(3, 4, requires_grad=True)
    y = clip_norm(x, 1.0)
    grad = tg.from_torch(torch.randn(3, 4, device=tg.device()))
    y.backward(grad)
    assert torch.equal(y.torch(), torch.zeros(3, 4))
    assert torch.equal(x.grad.torch(), grad.torch())


def test_norm_inside_a_graph():
    def ours(t):
        return (t * 2.0).norm(dim=0).sum() + clip_norm(t, 0.1).sum()

    def theirs(t):
        return torch.linalg.vector_norm(t * 2.0, dim=0).sum() + clip_norm_reference(t, 0.1).sum()

    assert_parity(ours, theirs, torch.randn(6, 5))


def test_references_registered():
    assert reference_for(Norm) is not None and reference_for(ClipNorm) is not None


@pytest.mark.parametrize("p,dim", [(2, None), (2, 1), (math.inf, 0)])
def test_norm_and_clip_norm_fp64(p, dim):
    # fp64 (gradcheck users) is computed in fp64: rows of 1e150 square past fp32's range,
    # so fp32 arithmetic would give inf norms and zero gradients here
    x = torch.randn(5, 7, dtype=torch.float64)
    x[::2] *= 1e150
    assert_parity(lambda t: norm(t, p, dim), lambda t: torch.linalg.vector_norm(t, p, dim=dim),
                  x, dtype=torch.float64)
    if p == 2:
        assert_parity(lambda t: clip_norm(t, 0.5, dim), lambda t: clip_norm_reference(t, 0.5, dim),
                      x, dtype=torch.float64)
