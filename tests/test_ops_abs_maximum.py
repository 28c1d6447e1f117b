"""abs, maximum / minimum and l1_loss against torch.autograd: forward and every gradient in
fp32, fp16 and bf16, odd shapes and views, broadcasting, ties, zeros, NaN, integer dtypes."""

import pytest
import torch
import torch.nn.functional as F

import tritongrad as tg
import tritongrad.nn.functional as tgF
from tritongrad.kernels._checks import DTypeError, ShapeError
from tritongrad.testing import assert_parity
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on NaN inputs

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
INT_DTYPES = [torch.int64, torch.int32, torch.int8, torch.uint8]
NAN = float("nan")


def with_specials(shape):
    """randn values with zeros, -0.0 and a NaN planted in."""
    x = torch.randn(shape)
    flat = x.view(-1)
    flat[:: 5] = 0.0
    flat[1:: 7] = -0.0
    flat[-1] = NAN
    return x


# --- abs ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 7), (13, 5), (37,)])
def test_abs(dtype, shape):
    x = with_specials(shape)
    assert_parity(lambda t: t.abs(), torch.abs, x, dtype=dtype)
    assert_parity(lambda t: abs(t), abs, x, dtype=dtype)
    assert_parity(tg.abs, torch.abs, x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_abs_of_views(dtype):
    assert_parity(lambda t: tg.abs(t.T[1:, ::2]), lambda t: torch.abs(t.T[1:, ::2]),
                  torch.randn(9, 6), dtype=dtype)


def test_abs_gradient_at_zero_and_nan_is_zero_as_torch():
    values = [-2.0, -0.0, 0.0, 3.0, NAN]
    grad = [1.5, 2.0, NAN, -1.0, 4.0]  # a NaN grad at x = 0 stays NaN (NaN * 0)
    x = tg.tensor(values, requires_grad=True)
    tg.abs(x).backward(tg.tensor(grad))
    ref = torch.tensor(values, requires_grad=True)
    ref.abs().backward(torch.tensor(grad))
    assert_close(x.grad, ref.grad, dtype=torch.float32)
    assert ref.grad[4] == 0  # torch: sgn(NaN) = 0


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_abs_integers_exact(dtype):
    info = torch.iinfo(dtype)
    values = torch.tensor([info.min, info.min + 1, -3, 0, 5, info.max]).to(dtype)
    assert torch.equal(tg.from_torch(values).abs().torch(), values.abs())


def test_abs_of_bool_is_an_error():
    with pytest.raises(DTypeError):
        tg.abs(tg.tensor([True, False]))


# --- maximum / minimum --------------------------------------------------------------------

OPS = [(tg.maximum, torch.maximum), (tg.minimum, torch.minimum)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ops", OPS, ids=["maximum", "minimum"])
@pytest.mark.parametrize("shapes", [((1, 7), (1, 7)), ((13, 5), (13, 5)), ((3, 1, 5), (4, 5)),
                                    ((7,), (6, 1))])
def test_maximum_minimum(dtype, ops, shapes):
    ours, theirs = ops
    assert_parity(ours, theirs, torch.randn(shapes[0]), torch.randn(shapes[1]), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ops", OPS, ids=["maximum", "minimum"])
def test_maximum_minimum_ties_zeros_nan(dtype, ops):
    ours, theirs = ops
    a = torch.tensor([1.0, 2.0, 3.0, NAN, 1.0, NAN, 0.0, -0.0, 0.0, -4.0, 2.5])
    b = torch.tensor([1.0, 1.0, 4.0, 1.0, NAN, NAN, -0.0, 0.0, 0.0, -4.0, 7.0])
    assert_parity(ours, theirs, a, b, dtype=dtype)
    # on views and with broadcasting (a (11,) row against a transposed (11, 3) view)
    c = torch.randn(3, 11)
    c[1] = a
    assert_parity(lambda x, y: ours(x, y.T), lambda x, y: theirs(x, y.T),
                  b, c.T.contiguous(), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_with_a_tensor_argument_are_maximum_minimum(dtype):
    a = torch.tensor([1.0, 2.0, NAN, 0.0, 5.0, -1.0, 3.0])
    b = torch.randn(2, 7)
    for ours, theirs in ((lambda x, y: tg.max(x, y), lambda x, y: torch.max(x, y)),
                         (lambda x, y: x.min(y), lambda x, y: x.min(y))):
        assert_parity(ours, theirs, a, b, dtype=dtype)
    with pytest.raises(TypeError, match="keepdim"):
        tg.max(tg.from_torch(a), tg.from_torch(a), True)


@pytest.mark.parametrize("ops", OPS, ids=["maximum", "minimum"])
def test_tie_splits_the_gradient_in_half(ops):
    ours, theirs = ops
    a = tg.tensor([2.0, 2.0], requires_grad=True)
    b = tg.tensor([2.0, 1.0], requires_grad=True)
    ours(a, b).backward(tg.tensor([4.0, 4.0]))
    ta = torch.tensor([2.0, 2.0], requires_grad=True)
    tb = torch.tensor([2.0, 1.0], requires_grad=True)
    theirs(ta, tb).backward(torch.tensor([4.0, 4.0]))
    assert ta.grad[0] == tb.grad[0] == 2.0
    assert_close(a.grad, ta.grad, dtype=torch.float32)
    assert_close(b.grad, tb.grad, dtype=torch.float32)


def test_maximum_only_one_operand_requires_grad():
    a = tg.randn(4, 3, requires_grad=True)
    b = tg.randn(3)
    tg.maximum(a, b).sum().backward()
    assert b.grad is None
    expected = (a.torch() > b.torch()).float()
    assert_close(a.grad, expected, dtype=torch.float32)


@pytest.mark.parametrize("ops", OPS, ids=["maximum", "minimum"])
@pytest.mark.parametrize("dtypes", [(torch.int64, torch.int64), (torch.uint8, torch.int64),
                                    (torch.int32, torch.float16), (torch.bool, torch.bool),
                                    (torch.bool, torch.int32), (torch.float16, torch.float32)])
def test_maximum_minimum_promotion_and_integers(ops, dtypes):
    ours, theirs = ops
    a = (torch.randn(5, 4) * 50).to(dtypes[0])
    b = (torch.randn(4) * 50).to(dtypes[1])
    a[0, 0] = b[0]  # a tie
    expected = theirs(a, b)
    got = ours(tg.from_torch(a), tg.from_torch(b)).torch()
    assert got.dtype == expected.dtype
    assert torch.equal(got, expected)


def test_maximum_errors():
    with pytest.raises(TypeError):
        tg.maximum(tg.randn(3), 2.0)
    with pytest.raises(ShapeError):
        tg.minimum(tg.randn(2, 3), tg.randn(4))


# --- l1_loss --------------------------------------------------------------------------------

REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 7), (13, 5)])
def test_l1_loss(dtype, reduction, shape):
    x = torch.randn(shape)
    y = torch.randn(shape)
    y.view(-1)[::3] = x.view(-1)[::3]  # equal elements: gradient 0 there
    assert_parity(lambda a, b: tgF.l1_loss(a, b, reduction=reduction),
                  lambda a, b: F.l1_loss(a, b, reduction=reduction), x, y, dtype=dtype)
    assert_parity(lambda a, b: tg.nn.L1Loss(reduction=reduction)(a, b),
                  lambda a, b: torch.nn.L1Loss(reduction=reduction)(a, b), x, y, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_loss_on_views_and_nan(dtype):
    x = torch.randn(9, 4)
    x[2, 1] = NAN
    assert_parity(lambda a, b: tgF.l1_loss(a.T, b[:, ::2]),
                  lambda a, b: F.l1_loss(a.T, b[:, ::2]), x, torch.randn(4, 18), dtype=dtype)
    assert_parity(lambda a, b: tgF.l1_loss(a.T, b[:, ::2], reduction="none"),
                  lambda a, b: F.l1_loss(a.T, b[:, ::2], reduction="none"), x,
                  torch.randn(4, 18), dtype=dtype)


def test_l1_loss_shapes_must_match():
    with pytest.raises(ShapeError, match=r"l1_loss: input shape \(2, 3\) and target shape \(3,\)"):
        tgF.l1_loss(tg.randn(2, 3), tg.randn(3))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        tgF.l1_loss(tg.randn(3), tg.randn(3), reduction="avg")
