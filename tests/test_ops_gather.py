"""gather, index_select and indexing with integer tensors or lists (x[idx], x[:, idx]):
forward and gradient against torch.autograd."""

import pytest
import torch

import tritongrad as tg
from tritongrad.kernels._checks import OutOfRangeError, ShapeError
from tritongrad.testing import assert_parity, constant

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def widened(fn):
    """torch on fp16/bf16 widened to fp32, as the kernels sum repeated rows in fp32."""
    def run(x, *rest):
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return fn(wide, *rest).to(x.dtype)
    return run


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_parity(dtype):
    index = torch.tensor([[0, 4, 4], [2, 2, 1], [3, 0, 0]])
    assert_parity(lambda x, i: tg.gather(x, 1, i), widened(lambda x, i: torch.gather(x, 1, i)),
                  torch.randn(3, 5), constant(index), dtype=dtype)
    assert_parity(lambda x, i: x.T.gather(0, i), widened(lambda x, i: x.T.gather(0, i)),
                  torch.randn(3, 5), constant(index.T[:, :2].contiguous()), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_select_and_tensor_indexing_parity(dtype):
    idx = torch.tensor([3, 0, 3, -1])
    pos = torch.tensor([3, 0, 3, 1])
    cases = [
        (lambda x: x[tg.from_torch(idx)], lambda x: x[idx]),
        (lambda x: x[:, tg.from_torch(pos)], lambda x: x[:, pos]),
        (lambda x: x[..., [1, -2, 1]], lambda x: x[..., [1, -2, 1]]),
        (lambda x: x.T[[0, 0]], lambda x: x.T[[0, 0]]),
        (lambda x: tg.index_select(x, 1, tg.from_torch(pos.int())),
         lambda x: torch.index_select(x, 1, pos.int())),
        (lambda x: x.index_select(0, tg.tensor(2)), lambda x: x.index_select(0, torch.tensor(2))),
    ]
    for ours, theirs in cases:
        assert_parity(ours, widened(theirs), torch.randn(5, 4), dtype=dtype)


def test_integer_tensors_index_and_minibatches():
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    x = torch.randn(6, 3)
    batch = torch.tensor([5, 0, 2])
    assert torch.equal(tg.from_torch(labels)[tg.from_torch(batch)].torch(), labels[batch])
    assert torch.equal(tg.from_torch(x)[tg.from_torch(batch)].torch(), x[batch])
    assert torch.equal(tg.from_torch(x > 0)[[1, 2]].torch(), (x > 0)[[1, 2]])
    assert tg.from_torch(x)[tg.tensor([], dtype=torch.int64)].shape == (0, 3)


def test_index_errors():
    x = tg.randn(5, 4)
    with pytest.raises(OutOfRangeError, match="index 5 is out of bounds for dimension 0 with "
                                              "size 5"):
        x[tg.tensor([0, 5])]
    with pytest.raises(OutOfRangeError, match="index -5 is out of bounds for dimension 1"):
        x[:, [-5]]
    with pytest.raises(OutOfRangeError, match="index 4 is out of bounds"):
        x.index_select(1, tg.tensor([4]))
    with pytest.raises(ShapeError, match="Index is supposed to be a vector"):
        x.index_select(0, tg.tensor([[0]]))
    with pytest.raises(TypeError, match="several index tensors are not supported"):
        x[tg.tensor([0]), tg.tensor([1])]  # two index tensors: not supported, said so


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select_with_an_empty_index_has_a_zero_gradient(dim):
    empty = torch.tensor([], dtype=torch.int64)
    assert_parity(lambda x: tg.index_select(x, dim, tg.from_torch(empty)),
                  lambda x: torch.index_select(x, dim, empty), torch.randn(3, 4, 2))
    assert_parity(lambda x: x[:, []], lambda x: x[:, []], torch.randn(3, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_indexing_with_0d_and_nd_integer_tensors_as_torch(dtype):
    """A 0-d index drops its dim (as an int); an N-d one puts its shape there; [] selects
    nothing. int64 and int32, negative entries, a transposed index."""
    idx2 = torch.tensor([[0, -1, 0], [3, 3, 2]])
    cases = [
        (lambda x: x[tg.tensor(-2)], lambda x: x[torch.tensor(-2)]),
        (lambda x: x[:, tg.tensor(3, dtype=torch.int32)],
         lambda x: x[:, torch.tensor(3, dtype=torch.int32)]),
        (lambda x: x[tg.from_torch(idx2)], lambda x: x[idx2]),
        (lambda x: x[..., tg.from_torch(idx2.T.int())], lambda x: x[..., idx2.T.int()]),
        (lambda x: x[[]], lambda x: x[[]]),
    ]
    for ours, theirs in cases:
        assert_parity(ours, widened(theirs), torch.randn(4, 5), dtype=dtype)


def test_gather_of_0d_and_by_0d_index():
    """torch treats a 0-d x or index as 1-D of size 1 along dim."""
    assert_parity(lambda x: tg.gather(x, 0, tg.tensor([0, 0, 0])),
                  lambda x: torch.gather(x, 0, torch.tensor([0, 0, 0])), torch.tensor(2.5))
    assert_parity(lambda x: tg.gather(x, 0, tg.tensor(3)),
                  lambda x: torch.gather(x, 0, torch.tensor(3)), torch.randn(5))
    assert_parity(lambda x: tg.gather(x, -1, tg.tensor(0)),
                  lambda x: torch.gather(x, -1, torch.tensor(0)), torch.tensor(2.5))
