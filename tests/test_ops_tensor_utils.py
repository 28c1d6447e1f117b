"""split / chunk / repeat, any / all, type_as and new_*, and fp64 creation and modules,
against torch: shapes, values and gradients."""

import pytest
import torch
import torch.nn.functional as F

import tritongrad as tg
from tritongrad.kernels._checks import ShapeError
from tritongrad.testing import assert_parity

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_and_chunk_are_views_with_gradients(dtype):
    x = torch.randn(7, 9)
    cases = [
        (lambda t: t.split(3), lambda t: t.split(3)),
        (lambda t: t.split([2, 0, 7], 1), lambda t: t.split([2, 0, 7], 1)),
        (lambda t: tg.split(t.T, 4, -1), lambda t: torch.split(t.T, 4, -1)),
        (lambda t: t.chunk(4, 1), lambda t: t.chunk(4, 1)),  # 9 -> 3, 3, 3 (fewer chunks)
        (lambda t: tg.chunk(t[:, ::2], 2), lambda t: torch.chunk(t[:, ::2], 2)),
    ]
    for ours, theirs in cases:
        # the pieces are used unequally, so each one's gradient reaches its own slice
        assert_parity(lambda t: [p * (i + 1) for i, p in enumerate(ours(t))],
                      lambda t: [p * (i + 1) for i, p in enumerate(theirs(t))],
                      x, dtype=dtype)
    pieces = tg.from_torch(x).split(3)
    assert [tuple(p.shape) for p in pieces] == [(3, 9), (3, 9), (1, 9)]


def test_split_chunk_edge_cases_and_errors():
    empty = tg.zeros(0, 3)
    assert [tuple(p.shape) for p in empty.chunk(2)] == [tuple(p.shape) for p in
                                                         torch.zeros(0, 3).chunk(2)]
    assert len(empty.split(0)) == len(torch.zeros(0, 3).split(0))
    x = tg.randn(5, 4)
    with pytest.raises(ShapeError, match=r"split_with_sizes expects split_sizes to sum "
                                         r"exactly to 5"):
        x.split([2, 2])
    with pytest.raises(ValueError, match="chunk expects `chunks` to be greater than 0"):
        x.chunk(0)
    with pytest.raises(ValueError, match="split_size"):
        x.split(0)


def test_split_of_an_empty_dim_gives_one_empty_piece():
    for shape, size, dim in (((0, 3), 2, 0), ((3, 0), 5, 1), ((2, 0, 4), 1, -2)):
        ours = tg.zeros(*shape).split(size, dim)
        theirs = torch.zeros(shape).split(size, dim)
        assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in theirs], shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [(2, 1), (1, 3), (2, 1, 3), (3, 2, 2)])
def test_repeat(dtype, sizes):
    assert_parity(lambda t: t.repeat(*sizes), lambda t: t.repeat(*sizes),
                  torch.randn(3, 5)[:, 1:], dtype=dtype)  # a sliced (non-contiguous) view


def test_repeat_errors_and_integers():
    x = torch.arange(6).reshape(2, 3)
    assert torch.equal(tg.from_torch(x).repeat((2, 2)).torch(), x.repeat(2, 2))
    assert torch.equal(tg.from_torch(x).repeat(1, 0, 1).torch(), x.repeat(1, 0, 1))
    with pytest.raises(ShapeError, match="can not be smaller than number of dimensions"):
        tg.from_torch(x).repeat(2)


@pytest.mark.parametrize("values", [
    [[0.0, 1.0], [0.0, 0.0]], [[float("nan"), 0.0], [0.0, 0.0]], [[1.0, 2.0], [3.0, -0.5]],
    [[0.0, -0.0], [0.0, 0.0]]])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool])
def test_any_all(values, dtype):
    t = torch.tensor(values).to(dtype)
    x = tg.from_torch(t)
    for args in [(), (0,), (1, True), (-1,)]:
        assert torch.equal(x.any(*args).torch(), t.any(*args)), args
        assert torch.equal(x.all(*args).torch(), t.all(*args)), args
    assert torch.equal(tg.any(x.T, 0).torch(), torch.any(t.T, 0))
    assert torch.equal(tg.all(x, (0, 1)).torch(), torch.all(t, (0, 1)))


def test_any_all_of_uint8_are_uint8_as_torch():
    t = torch.tensor([[0, 3], [0, 0]], dtype=torch.uint8)
    x = tg.from_torch(t)
    for args in [(), (0,), (1, True)]:
        for ours, theirs in ((x.any(*args), t.any(*args)), (x.all(*args), t.all(*args))):
            assert ours.dtype == theirs.dtype == torch.uint8, args
            assert torch.equal(ours.torch(), theirs), args
    empty = torch.zeros(0, 2, dtype=torch.uint8)
    assert tg.from_torch(empty).all(0).dtype == empty.all(0).dtype


def test_any_all_over_nothing():
    t = torch.zeros(0, 3)
    x = tg.from_torch(t)
    for args in [(), (0,), (0, True), (1,)]:
        assert torch.equal(x.any(*args).torch(), t.any(*args)), args
        assert torch.equal(x.all(*args).torch(), t.all(*args)), args


def test_type_as_and_new_tensors():
    x = tg.randn(2, 3, dtype=torch.float64)
    assert tg.tensor([1, 2]).type_as(x).dtype == torch.float64
    assert x.int().dtype == torch.int32 and x.bool().dtype == torch.bool
    for made, shape in ((x.new_zeros(2, 2), (2, 2)), (x.new_ones((3,)), (3,)),
                        (x.new_empty(1), (1,)), (x.new_full((2,), 7), (2,))):
        assert made.dtype == torch.float64 and tuple(made.shape) == shape
    assert x.new_zeros(2).torch().tolist() == [0.0, 0.0]
    assert x.new_full((2,), 7).torch().tolist() == [7.0, 7.0]
    assert x.new_ones(2, dtype=torch.int64).dtype == torch.int64


def test_fp64_modules_train_as_torch():
    """Linear(dtype=float64) initialises (fp64 random kernels) and a step matches torch."""
    tg.manual_seed(0)
    layer = tg.nn.Linear(5, 3, dtype=torch.float64)
    assert layer.weight.dtype == layer.bias.dtype == torch.float64
    ref = torch.nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(layer.weight.torch())
        ref.bias.copy_(layer.bias.torch())
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    F.mse_loss(ref(x), y).backward()
    tg.nn.functional.mse_loss(layer(tg.from_torch(x)), tg.from_torch(y)).backward()
    assert torch.allclose(layer.weight.grad.torch(), ref.weight.grad, rtol=1e-12, atol=1e-14)
    assert tg.randn(3, dtype=torch.float64).dtype == torch.float64
    kept = tg.nn.functional.dropout(tg.ones(100, dtype=torch.float64), 0.5).torch()
    assert set(kept.unique().tolist()) <= {0.0, 2.0}
