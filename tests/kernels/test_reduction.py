"""sum / mean / sum_to_shape launchers against torch, at the table tolerance per dtype."""

import pytest
import torch

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import reduction
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on 0/0

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
DIMS = [None, (), (0,), (1,), (0, 2), (-1,), (1, 2), (0, 1, 2)]


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def torch_sum(x, dims, keepdim=False, mean=False):
    fn = torch.mean if mean else torch.sum
    if dims is None:
        return fn(x, dim=tuple(range(x.dim())), keepdim=keepdim) if keepdim else fn(x)
    return fn(x, dim=dims, keepdim=keepdim)


def count_launches(fn):
    with recorded_launches() as launches:
        result = fn()
    return result, [info.kernel_name for info in launches]


def layouts(dtype):
    """(name, x) for a 3x4x5 input laid out four ways."""
    base = randn(5, 4, 3, dtype=dtype)
    return [
        ("contiguous", randn(3, 4, 5, dtype=dtype)),
        ("permuted", base.permute(2, 1, 0)),
        ("sliced", randn(3, 4, 10, dtype=dtype)[:, :, ::2]),
        ("transposed", randn(3, 5, 4, dtype=dtype).transpose(1, 2)),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", DIMS)
def test_sum_over_dims(dims, dtype):
    for name, x in layouts(dtype):
        assert_close(reduction.sum(x, dims), torch_sum(x, dims), dtype=dtype, name=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dims", [None, (0,), (0, 2), (-1,)])
def test_mean_keepdim(dims, dtype):
    for name, x in layouts(dtype)[::3]:
        ours = reduction.sum(x, dims, keepdim=True, mean=True)
        assert_close(ours, torch_sum(x, dims, keepdim=True, mean=True), dtype=dtype, name=name)
        assert_close(reduction.sum(x, dims, mean=True), torch_sum(x, dims, mean=True),
                     dtype=dtype, name=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 13), (13, 1)])
def test_small_shapes(shape, dtype):
    x = randn(*shape, dtype=dtype)
    for dims in (None, (0,), (1,)):
        assert_close(reduction.sum(x, dims), torch_sum(x, dims), dtype=dtype)
        assert_close(reduction.sum(x, dims, mean=True), torch_sum(x, dims, mean=True),
                     dtype=dtype)


def test_interleaved_dims_take_one_copy():
    x = randn(3, 4, 5)
    out, names = count_launches(lambda: reduction.sum(x, (0, 2)))
    assert_close(out, x.sum(dim=(0, 2)))
    assert names == ["copy_kernel", "sum_kernel"]
    view = randn(6, 8)[:, ::2].t()  # strides (2, 8): each group is one strided dim
    out, names = count_launches(lambda: reduction.sum(view, (0,)))
    assert names == ["sum_kernel"]
    assert_close(out, view.sum(dim=0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_split_columns_two_passes(dtype):
    x = randn(1, 40_000, dtype=dtype)  # few rows, many columns: partial sums, then a finish
    out, names = count_launches(lambda: reduction.sum(x))
    assert names == ["sum_kernel", "sum_kernel"]
    assert_close(out, x.sum(), dtype=dtype)
    assert_close(reduction.sum(x, (1,), mean=True), x.mean(dim=1), dtype=dtype)
    y = randn(3, 20_000, dtype=dtype)[:, ::2]  # strided columns, three rows
    assert_close(reduction.sum(y, (1,)), y.sum(dim=1), dtype=dtype)


def test_contiguous_rows_many_columns():
    x = randn(300, 70).t()  # reduce over dim 1 of a transposed tensor: rows are contiguous
    assert_close(reduction.sum(x, (1,)), x.sum(dim=1))
    assert_close(reduction.sum(x, (0,)), x.sum(dim=0))


def test_empty():
    x = randn(0, 3)
    assert_close(reduction.sum(x, (0,)), torch.zeros(3))
    assert reduction.sum(x, (0,), mean=True).isnan().all()
    assert reduction.sum(x, mean=True).isnan().item()
    assert reduction.sum(x).item() == 0
    assert reduction.sum(x, (1,)).shape == (0,)
    assert reduction.sum(x, (1,), keepdim=True).shape == (0, 1)


def test_scalar_input():
    x = randn(dtype=torch.float32)
    assert_close(reduction.sum(x), x.sum())
    assert_close(reduction.sum(x, (0,), keepdim=True), x.sum(0, keepdim=True))
    assert_close(reduction.sum(x, (-1,)), x.sum(-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nan_inf_propagate(dtype):
    x = randn(4, 6, dtype=dtype)
    x[0, 1] = float("nan")
    x[1, 2] = float("inf")
    x[2, 3] = float("inf")
    x[2, 4] = float("-inf")
    x[3, 0] = float("-inf")
    for dims in (None, (0,), (1,)):
        assert_close(reduction.sum(x, dims), torch_sum(x, dims), dtype=dtype)


def test_errors():
    x = randn(2, 3)
    with pytest.raises(OutOfRangeError, match=r"\[-2, 1\].*2"):
        reduction.sum(x, (2,))
    with pytest.raises(IndexError):
        reduction.sum(x, (-3,))
    with pytest.raises(ShapeError, match="multiple times"):
        reduction.sum(x, (1, -1))
    with pytest.raises(DTypeError, match="mean.*int64"):  # a sum of integers is int64; a mean
        reduction.sum(torch.ones(3, dtype=torch.int64), mean=True)  # needs floats, as torch
    with pytest.raises(DTypeError, match="complex64"):
        reduction.sum(torch.ones(3, dtype=torch.complex64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "grad_shape, shape",
    [((4, 5), (1, 5)), ((4, 5), (5,)), ((4, 5), (4, 1)), ((4, 5), ()), ((3, 4, 5), (3, 1, 5)),
     ((2, 3, 4, 5), (4, 1)), ((1, 4, 5), (4, 5))],
)
def test_sum_to_shape(grad_shape, shape, dtype):
    grad = randn(*grad_shape, dtype=dtype)
    ours = reduction.sum_to_shape(grad, shape)
    # torch's reference: the gradient autograd gives a tensor broadcast to grad_shape
    leaf = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    leaf.expand(grad_shape).backward(grad.to(torch.float64))
    assert_close(ours, leaf.grad.to(dtype), dtype=dtype)


def test_sum_to_shape_identity_views_and_errors():
    grad = randn(4, 5)
    assert reduction.sum_to_shape(grad, (4, 5)) is grad
    assert_close(reduction.sum_to_shape(grad.t(), (1, 4)), grad.t().sum(0, keepdim=True))
    with pytest.raises(ShapeError, match=r"\(4, 5\).*\(3, 5\)"):
        reduction.sum_to_shape(grad, (3, 5))
    with pytest.raises(ShapeError):
        reduction.sum_to_shape(grad, (1, 4, 5))
