"""where / clamp launchers (kernels/select.py) against torch, at the table tolerance."""

import pytest
import torch

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import select as sel
from tritongrad.kernels._checks import DeviceError, DTypeError, LayoutError, ShapeError
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on NaN/inf inputs

FLOATS = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
INTS = [torch.int64, torch.int32, torch.uint8, torch.int8]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, float("nan"), float("inf"), float("-inf")]
OTHER_DEVICE = "cpu" if DEVICE.type == "cuda" else "meta"


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def randint(*shape, dtype=torch.int64):
    low = 0 if dtype == torch.uint8 else -50
    return torch.randint(low, 50, shape).to(dtype).to(DEVICE)


def mask(*shape):
    return (torch.rand(shape) < 0.5).to(DEVICE)


def special(dtype):
    return torch.tensor(SPECIAL, dtype=torch.float64).to(dtype).to(DEVICE)


# ----------------------------------------------------------------------------- where


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", [((1, 1), (1, 1), (1, 1)), ((7, 13), (7, 13), (7, 13)),
                                    ((7, 1), (13,), (7, 13)), ((3, 1, 5), (4, 5), ()),
                                    ((), (2, 3), (2, 1))])
def test_where_matches_torch(dtype, shapes):
    cond, a, b = mask(*shapes[0]), randn(*shapes[1], dtype=dtype), randn(*shapes[2], dtype=dtype)
    out = sel.where(cond, a, b)
    assert out.dtype == dtype and out.is_contiguous()
    assert_close(out, torch.where(cond, a, b), dtype=dtype)


@pytest.mark.parametrize("dtype", INTS + [torch.bool])
def test_where_integer_and_bool_exact(dtype):
    a = mask(5, 7) if dtype == torch.bool else randint(5, 7, dtype=dtype)
    b = mask(7) if dtype == torch.bool else randint(7, dtype=dtype)
    cond = mask(5, 7)
    assert torch.equal(sel.where(cond, a, b), torch.where(cond, a, b))
    value = 1.0 if dtype == torch.bool else 7.0
    expected = torch.where(cond, a, torch.tensor(value, dtype=dtype))
    assert torch.equal(sel.where(cond, a, value), expected)


def test_where_int64_scalar_is_exact_up_to_2_53():
    cond, a = mask(9), randint(9)
    big = 2.0**53 - 1
    assert torch.equal(sel.where(cond, big, a), torch.where(cond, int(big), a))


@pytest.mark.parametrize("dtype", FLOATS)
def test_where_scalar_operands_round_into_dtype(dtype):
    cond = mask(4, 5)
    x = randn(4, 5, dtype=dtype)
    for value in (0.1, -2.5, float("nan"), float("inf")):
        assert_close(sel.where(cond, x, value), torch.where(cond, x, value), dtype=dtype)
        assert_close(sel.where(cond, value, x), torch.where(cond, value, x), dtype=dtype)
    both = sel.where(cond, 0.1, -0.2, dtype=dtype)
    ref = torch.where(cond, torch.tensor(0.1, dtype=dtype), torch.tensor(-0.2, dtype=dtype))
    assert torch.equal(both, ref)



@pytest.mark.parametrize("dtype", FLOATS)
def test_scalar_negative_zero_keeps_its_sign(dtype):
    # a -0.0 number stays -0.0, as torch's (0.0 + -0.0 would give +0.0): where's scalar
    # operands and clamp's bounds
    x = torch.tensor([-1.0, 1.0, 0.0, -0.0], dtype=dtype, device=DEVICE)
    cond = torch.tensor([True, False, True, False], device=DEVICE)
    for ours, ref in [(sel.where(cond, -0.0, x), torch.where(cond, -0.0, x)),
                      (sel.where(cond, x, -0.0), torch.where(cond, x, -0.0)),
                      (sel.where(cond, -0.0, 1.0, dtype=dtype),
                       torch.where(cond, torch.tensor(-0.0, dtype=dtype), 1.0)),
                      (sel.clamp(x, -0.0, None), torch.clamp(x, -0.0, None)),
                      (sel.clamp(x, None, -0.0), torch.clamp(x, None, -0.0))]:
        assert torch.equal(ours, ref) and torch.equal(ours.signbit(), ref.signbit()), (ours, ref)

def test_where_nan_and_inf_pass_through():
    values = special(torch.float32)
    cond = torch.arange(len(SPECIAL), device=DEVICE) % 2 == 0
    out = sel.where(cond, values, values.flip(0))
    assert_close(out, torch.where(cond, values, values.flip(0)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_where_strided_views(dtype):
    base = randn(14, 26, dtype=dtype)
    a = base.t()[:7, :13]  # (7, 13), transposed strides (1, 26)
    b = base[:7, ::2]  # (7, 13), strides (26, 2)
    cond = mask(13, 7).t()  # transposed bool
    assert_close(sel.where(cond, a, b), torch.where(cond, a, b), dtype=dtype)
    column = randn(7, 1, dtype=dtype).expand(7, 13)  # stride-0 columns
    assert_close(sel.where(cond, column, a), torch.where(cond, column, a), dtype=dtype)


def test_where_multi_program_and_empty():
    n = sel.SELECT_BLOCK + 77  # two programs, the second masked
    cond, a, b = mask(n), randn(n), randn(n)
    assert torch.equal(sel.where(cond, a, b), torch.where(cond, a, b))
    empty = sel.where(mask(0, 3), randn(0, 3), 1.0)
    assert empty.shape == (0, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shapes", [((7, 13), (7, 13)), ((7, 1), (3, 7, 13)), ((13,), (1, 13))])
def test_where_bwd_matches_torch_autograd(dtype, shapes):
    cond_shape, out_shape = shapes
    cond = mask(*cond_shape)
    a = randn(*out_shape, dtype=dtype).requires_grad_()
    b = randn(*out_shape, dtype=dtype).requires_grad_()
    grad = randn(*torch.broadcast_shapes(cond_shape, out_shape), dtype=dtype)
    ref_a, ref_b = torch.autograd.grad(torch.where(cond, a, b), (a, b), grad)
    grad_a, grad_b = sel.where_bwd(grad, cond)
    assert_close(grad_a, ref_a, dtype=dtype)
    assert_close(grad_b, ref_b, dtype=dtype)


def test_where_bwd_one_side_and_nonfinite_grad():
    cond = torch.tensor([True, False, True, False], device=DEVICE)
    grad = torch.tensor([float("nan"), float("nan"), float("inf"), 2.0], device=DEVICE)
    grad_a, grad_b = sel.where_bwd(grad, cond, need_a=True, need_b=False)
    assert grad_b is None
    # the branch not taken gets 0, never NaN * 0
    assert_close(grad_a, torch.tensor([float("nan"), 0.0, float("inf"), 0.0]))
    _, grad_b = sel.where_bwd(grad.t(), cond, need_a=False, need_b=True)
    assert_close(grad_b, torch.tensor([0.0, float("nan"), 0.0, 2.0]))
    with recorded_launches() as launches:
        assert sel.where_bwd(grad, cond, False, False) == (None, None)
    assert not launches


def test_where_errors_before_any_launch():
    a = randn(3, 4)
    with recorded_launches() as launches:
        with pytest.raises(DTypeError, match="condition has dtype int64"):
            sel.where(torch.ones(3, 4, dtype=torch.int64, device=DEVICE), a, a)
        with pytest.raises(DTypeError, match="float32 != float16"):
            sel.where(mask(3, 4), a, randn(3, 4, dtype=torch.float16))
        with pytest.raises(ShapeError, match=r"condition \(3, 4\), input \(3, 4\), other \(5,\)"):
            sel.where(mask(3, 4), a, randn(5))
        with pytest.raises(DTypeError, match="integer"):
            sel.where(mask(3), randint(3), 0.5)
        with pytest.raises(DTypeError, match="out of the range of uint8"):
            sel.where(mask(3), randint(3, dtype=torch.uint8), 300.0)
        with pytest.raises(DTypeError, match="scalar operands"):
            sel.where(mask(3), 1.0, 2.0)
        with pytest.raises(DTypeError, match="float16 given for operands of dtype float32"):
            sel.where(mask(3), randn(3), 1.0, dtype=torch.float16)
        with pytest.raises(DeviceError, match=OTHER_DEVICE):
            sel.where(mask(3), torch.empty(3, device=OTHER_DEVICE), 1.0)
        with pytest.raises(DTypeError, match="grad has dtype int64"):
            sel.where_bwd(randint(3), mask(3))
        with pytest.raises(ShapeError, match=r"condition of shape \(4,\).*\(3,\)"):
            sel.where_bwd(randn(3), mask(4))
    assert not launches


# ----------------------------------------------------------------------------- clamp


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("lo, hi", [(-0.5, 0.5), (None, 0.3), (-0.2, None), (0.5, -0.5),
                                    (float("nan"), 1.0), (-1.0, float("nan")),
                                    (float("-inf"), float("inf"))])
def test_clamp_special_values_match_torch(dtype, lo, hi):
    x = torch.cat([special(dtype), randn(13, dtype=dtype)])
    assert_close(sel.clamp(x, lo, hi), torch.clamp(x, lo, hi), dtype=dtype)


@pytest.mark.parametrize("dtype", INTS)
def test_clamp_integers_exact(dtype):
    x = randint(5, 9, dtype=dtype)
    for lo, hi in ((3, 20), (None, 0), (10, None), (30, 5)):
        assert torch.equal(sel.clamp(x, lo, hi), torch.clamp(x, lo, hi))


def test_clamp_int64_large_bound_is_exact():
    x = torch.tensor([2**53 - 5, -(2**53), 0], device=DEVICE)
    assert torch.equal(sel.clamp(x, -(2**53) + 1, 2**53 - 7),
                       torch.clamp(x, -(2**53) + 1, 2**53 - 7))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_clamp_strided_in_place_and_multi_program(dtype):
    base = randn(13, 14, dtype=dtype)
    x = base.t()[:, ::2]  # (14, 7) transposed and strided
    assert_close(sel.clamp(x, -0.3, 0.4), torch.clamp(x, -0.3, 0.4), dtype=dtype)
    expected = torch.clamp(base.t(), -0.3, 0.4)
    out = sel.clamp(base.t(), -0.3, 0.4, out=base.t())  # clamp_ through the strides
    assert out.data_ptr() == base.data_ptr()
    assert_close(base.t(), expected, dtype=dtype)
    n = sel.SELECT_BLOCK + 5
    y = randn(n, dtype=dtype)
    assert_close(sel.clamp(y, None, 0.1), torch.clamp(y, max=0.1), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("lo, hi", [(-0.5, 0.5), (None, 0.3), (-0.2, None), (0.5, -0.5),
                                    (float("nan"), 1.0)])
def test_clamp_bwd_matches_torch_autograd(dtype, lo, hi):
    x = torch.cat([special(dtype), randn(13, dtype=dtype)]).requires_grad_()
    grad = randn(x.numel(), dtype=dtype)
    (ref,) = torch.autograd.grad(torch.clamp(x, lo, hi), x, grad)
    assert_close(sel.clamp_bwd(grad, x.detach(), lo, hi), ref, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_clamp_bwd_compares_with_the_bound_in_x_dtype(dtype):
    # torch rounds the bounds into x's dtype: 1.0001 is 1.0 in fp16/bf16, so x = 1.0 is on
    # the boundary (inside) there, below it in fp32
    x = torch.tensor([1.0, 2.0], dtype=dtype, device=DEVICE).requires_grad_()
    grad = torch.ones(2, dtype=dtype, device=DEVICE)
    (ref,) = torch.autograd.grad(torch.clamp(x, 1.0001, 1.9999), x, grad)
    assert torch.equal(sel.clamp_bwd(grad, x.detach(), 1.0001, 1.9999), ref)
    assert torch.equal(sel.clamp(x.detach(), 1.0001, 1.9999), torch.clamp(x, 1.0001, 1.9999))


def test_clamp_bwd_strided_grad():
    x, grad = randn(13, 7), randn(7, 13).t()
    expected = torch.where((x >= -0.5) & (x <= 0.5), grad, torch.zeros_like(grad))
    assert_close(sel.clamp_bwd(grad, x, -0.5, 0.5), expected)


def test_clamp_errors_before_any_launch():
    x = randn(3, 4)
    with recorded_launches() as launches:
        with pytest.raises(ValueError, match="At least one of 'min' or 'max'"):
            sel.clamp(x, None, None)
        with pytest.raises(DTypeError, match="x has dtype bool"):
            sel.clamp(mask(3), 0, 1)
        with pytest.raises(DTypeError, match="min for a int64 result must be an integer"):
            sel.clamp(randint(3), 0.5, None)
        with pytest.raises(DTypeError, match="out of the range of int8"):
            sel.clamp(randint(3, dtype=torch.int8), None, 200)
        with pytest.raises(LayoutError, match="same memory location"):
            sel.clamp(x, 0.0, 1.0, out=randn(3, 1).expand(3, 4))
        with pytest.raises(ShapeError, match=r"\(4, 3\) doesn't match .*\(3, 4\)"):
            sel.clamp(x, 0.0, 1.0, out=randn(4, 3))
        with pytest.raises(DTypeError, match="float32 != float16"):
            sel.clamp_bwd(x, x.half(), 0.0, 1.0)
        with pytest.raises(ShapeError, match=r"grad shape \(3, 4\) != x shape \(4, 3\)"):
            sel.clamp_bwd(x, randn(4, 3), 0.0, 1.0)
        with pytest.raises(DeviceError, match=OTHER_DEVICE):
            sel.clamp(torch.empty(3, device=OTHER_DEVICE), 0.0, 1.0)
    assert not launches
