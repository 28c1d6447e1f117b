"""tg.cat, tg.stack, tg.where, masked_fill and tg.clamp: forward and every input gradient
against torch.autograd, torch's dtype rules, and errors raised before any kernel runs."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.autograd.function import AutogradError
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError, UnsupportedError
from tritongrad.testing.compare import assert_close
from tritongrad.testing.parity import assert_parity

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on NaN inputs

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
NAN, INF = float("nan"), float("inf")


def randn(*shape, layout=None):
    """layout "T": a transposed view; "S": a stride-2 slice."""
    if layout == "T":
        dims = tuple(reversed(range(len(shape))))
        return torch.randn(tuple(reversed(shape))).permute(dims)
    if layout == "S":
        return torch.randn(shape[:-1] + (2 * shape[-1],))[..., ::2]
    return torch.randn(shape)


def mask(*shape):
    return torch.rand(shape) < 0.5


def same(ours: tg.Tensor, ref: torch.Tensor) -> None:
    """Exact equality, dtype included (integer and bool results)."""
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert torch.equal(ours.torch(), ref.to(ours.device)), (ours.torch(), ref)


# ----------------------------------------------------------------------------- cat / stack

CAT_CASES = [  # (shapes, layouts, dim)
    (((1, 5), (3, 5)), (None, "T"), 0),
    (((2, 3, 4), (2, 1, 4), (2, 5, 4)), (None, "S", None), 1),
    (((2, 3, 4), (2, 3, 1)), ("T", None), -1),
    (((3, 7), (3, 2)), ("S", None), 1),
    (((3, 7), (3, 2)), (None, "T"), -1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes, layouts, dim", CAT_CASES)
def test_cat_forward_and_grads_match_torch(dtype, shapes, layouts, dim):
    inputs = [randn(*s, layout=lay) for s, lay in zip(shapes, layouts)]
    assert_parity(lambda *ts: tg.cat(ts, dim=dim), lambda *ts: torch.cat(ts, dim=dim),
                  *inputs, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_stack_forward_and_grads_match_torch(dtype, dim):
    inputs = [randn(2, 3), randn(2, 3, layout="T"), randn(2, 3, layout="S")]
    assert_parity(lambda *ts: tg.stack(ts, dim), lambda *ts: torch.stack(ts, dim), *inputs,
                  dtype=dtype)


def test_cat_and_stack_promote_and_cast_gradients_back():
    half, single = randn(2, 3).half(), randn(4, 3)
    comparisons = assert_parity(lambda a, b: tg.cat([a, b]), lambda a, b: torch.cat([a, b]),
                                half, single)
    assert len(comparisons) == 3  # the output and both gradients
    a, b = tg.from_torch(half, requires_grad=True), tg.from_torch(single, requires_grad=True)
    out = tg.stack([a, b[:2]], dim=1)
    assert out.dtype == torch.float32
    out.backward(tg.ones_like(out))
    assert a.grad.dtype == torch.float16 and b.grad.dtype == torch.float32
    ints = torch.randint(-9, 9, (3,))
    same(tg.cat([tg.tensor(ints), tg.tensor(ints * 2)]), torch.cat([ints, ints * 2]))
    halves = torch.tensor([0.5, 1.5])
    same(tg.cat([tg.tensor(ints), tg.tensor(halves)]), torch.cat([ints, halves]))
    flags = torch.tensor([True, False])
    same(tg.stack([tg.tensor(flags), tg.tensor(ints[:2])]), torch.stack([flags, ints[:2]]))
    same(tg.cat([tg.tensor(flags), tg.tensor(flags)]), torch.cat([flags, flags]))


def test_cat_skips_legacy_empty_1d_tensors():
    x, y = randn(2, 3), randn(1, 3)
    empty = torch.empty(0, dtype=torch.float64)
    assert_parity(lambda a, e, b: tg.cat([a, e, b]), lambda a, e, b: torch.cat([a, e, b]),
                  x, empty, y)
    a, e = tg.from_torch(x, requires_grad=True), tg.from_torch(empty, requires_grad=True)
    out = tg.cat([a, e], dim=-1)
    assert out.dtype == torch.float64  # the skipped tensor still takes part in promotion
    out.backward(tg.ones_like(out))
    assert tuple(e.grad.shape) == (0,) and e.grad.dtype == torch.float64
    nothing = tg.cat([tg.tensor([]), tg.tensor([], dtype=torch.float16)], dim=5)
    assert tuple(nothing.shape) == (0,) and nothing.dtype == torch.float32
    zero_width = tg.cat([tg.from_torch(randn(2, 0)), tg.from_torch(x)], dim=1)
    assert_close(zero_width, x)


def test_cat_launches_once_per_nonempty_input_and_backward_takes_views():
    a, b = tg.randn(3, 4, requires_grad=True), tg.randn(2, 4, requires_grad=True)
    skipped, zero_rows = tg.tensor([]), tg.zeros(0, 4)
    with recorded_launches() as launches:
        out = tg.cat([a, skipped, zero_rows, b])
    assert [info.kernel_name for info in launches] == ["copy_kernel"] * 2
    grad = tg.ones_like(out)
    with recorded_launches() as launches:
        grad_a, grad_b = tg.autograd.grad(out, [a, b], grad)
    assert not launches  # each gradient is a view of the output gradient
    assert tuple(grad_a.shape) == (3, 4) and tuple(grad_b.shape) == (2, 4)


def test_cat_and_stack_errors_before_any_launch():
    x, x3, rows = tg.randn(2, 3), tg.randn(2, 3, 1), tg.randn(4, 3)
    small, unsigned = tg.tensor([1], dtype=torch.int8), tg.tensor([1]).to(torch.uint8)
    with recorded_launches() as launches:
        with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
            tg.cat([])
        with pytest.raises(ValueError, match="non-empty"):
            tg.stack([])
        with pytest.raises(TypeError, match="must be a tuple or list of Tensors, not Tensor"):
            tg.cat(x)
        with pytest.raises(TypeError, match="expected Tensor as element 1 in argument 0, but "
                                            "got float"):
            tg.cat([x, 1.0])
        with pytest.raises(ShapeError, match=r"zero-dimensional tensor \(at position 1\) cannot "
                                             "be concatenated"):
            tg.cat([x, tg.tensor(1.0)])
        with pytest.raises(ShapeError, match="Sizes of tensors must match except in dimension 1. "
                                             "Expected size 2 but got size 4 for tensor number "
                                             "2 in the list"):
            tg.cat([x, x, rows], dim=1)
        with pytest.raises(ShapeError, match="same number of dimensions: got 2 and 3"):
            tg.cat([x, x3])
        with pytest.raises(OutOfRangeError, match=r"range of \[-2, 1\], but got 2"):
            tg.cat([x, x], dim=2)
        with pytest.raises(OutOfRangeError, match=r"range of \[-3, 2\], but got -4"):
            tg.stack([x, x], dim=-4)
        with pytest.raises(ShapeError, match=r"stack expects each tensor to be equal size, but "
                                             r"got \[2, 3\] at entry 0 and \[3, 2\] at entry 1"):
            tg.stack([x, x.t()])
        with pytest.raises(DTypeError, match="promote to int16"):
            tg.cat([small, unsigned])
    assert not launches


# ----------------------------------------------------------------------------- where

WHERE_CASES = [  # (condition shape, input, other): a shape (layout) or a Python number
    ((7, 13), ((7, 13), "T"), ((7, 13), None)),
    ((7, 1), ((13,), None), ((3, 1, 13), "S")),
    ((1, 13), ((), None), ((7, 13), None)),
    ((5, 4), ((5, 4), None), -2.5),
    ((5, 4), 0.25, ((4,), None)),
]


def _operand(spec):
    if isinstance(spec, float):
        return spec
    shape, layout = spec
    return randn(*shape, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cond_shape, input_spec, other_spec", WHERE_CASES)
def test_where_forward_and_grads_match_torch(dtype, cond_shape, input_spec, other_spec):
    cond, a, b = mask(*cond_shape), _operand(input_spec), _operand(other_spec)
    assert_parity(tg.where, torch.where, cond, a, b, dtype=dtype)


@pytest.mark.parametrize("make_a, make_b", [
    (lambda: randn(3), lambda: randn(3).half()),
    (lambda: randn(3).half(), lambda: 2.5),
    (lambda: torch.randint(-5, 5, (3,)), lambda: 2.5),
    (lambda: torch.randint(-5, 5, (3,)), lambda: 2),
    (lambda: 1, lambda: 2),
    (lambda: 1.0, lambda: 2),
    (lambda: True, lambda: False),
    (lambda: randn(3).half(), lambda: torch.tensor(2.0)),
    (lambda: randn(3).bfloat16(), lambda: torch.tensor(2.0, dtype=torch.float64)),
    (lambda: torch.randint(-5, 5, (3,)), lambda: torch.tensor(2.5)),
    (lambda: mask(3), lambda: 0),
    (lambda: mask(3), lambda: mask(3)),
    (lambda: torch.randint(0, 9, (3,)).to(torch.uint8), lambda: -1),
    (lambda: torch.randint(0, 9, (3,)).to(torch.int32), lambda: 5),
])
def test_where_promotes_like_torch(make_a, make_b):
    cond, a, b = mask(3), make_a(), make_b()
    ours = tg.where(tg.from_torch(cond),
                    tg.from_torch(a) if isinstance(a, torch.Tensor) else a,
                    tg.from_torch(b) if isinstance(b, torch.Tensor) else b)
    same(ours, torch.where(cond, a, b))


def test_where_grads_sum_over_broadcast_dims_including_0d():
    cond = mask(4, 5)
    a = tg.from_torch(randn(), requires_grad=True)
    b = tg.from_torch(randn(4, 1), requires_grad=True)
    out = tg.where(tg.from_torch(cond), a, b)
    out.backward(tg.ones_like(out))
    ta, tb = a.torch().clone().requires_grad_(), b.torch().clone().requires_grad_()
    torch.where(cond, ta, tb).backward(torch.ones(4, 5))
    assert_close(a.grad, ta.grad)
    assert_close(b.grad, tb.grad)


def test_where_errors_before_any_launch():
    x, other = tg.randn(3), tg.randn(4)
    cond, ints = x > 0, tg.tensor([1, 0, 1])
    small, unsigned = tg.tensor([1, 2, 3], dtype=torch.int8), tg.tensor([1, 2, 3]).to(torch.uint8)
    with recorded_launches() as launches:
        with pytest.raises(DTypeError, match="where expected condition to be a boolean tensor, "
                                             "but got a tensor with dtype int64"):
            tg.where(ints, x, x)
        with pytest.raises(TypeError, match=r"where\(condition\) alone"):
            tg.where(cond)
        with pytest.raises(ShapeError, match=r"condition \(3,\), input \(3,\), other \(4,\)"):
            tg.where(cond, x, other)
        with pytest.raises(DTypeError, match="cannot be converted to type uint8 without overflow"):
            tg.where(cond, unsigned, 300)
        with pytest.raises(DTypeError, match="promote to int16"):
            tg.where(cond, small, unsigned)
        with pytest.raises(TypeError, match="other must be a Tensor or a real number, got str"):
            tg.where(cond, x, "zero")
    assert not launches



def test_where_takes_a_uint8_condition_with_torch_warning():
    # torch (deprecated, with a UserWarning) reads a uint8 condition as nonzero -> True
    cond = torch.tensor([2, 0, 1, 0], dtype=torch.uint8)
    a, b = randn(4), randn(4)
    with pytest.warns(UserWarning, match="uint8 condition"):
        ours = tg.where(tg.from_torch(cond), tg.from_torch(a), tg.from_torch(b))
    with pytest.warns(UserWarning, match="uint8 condition"):
        ref = torch.where(cond, a, b)
    assert_close(ours, ref)

# ----------------------------------------------------------------------------- masked_fill


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill_matches_torch(dtype):
    x, m = randn(4, 6, layout="T"), mask(6)
    assert_parity(lambda a: a.masked_fill(tg.from_torch(m), -1.5),
                  lambda a: a.masked_fill(m, -1.5), x, dtype=dtype)
    value = torch.randn(())  # a 0-d tensor value gets the sum of the gradient under the mask
    assert_parity(lambda a, v: a.masked_fill(tg.from_torch(m), v),
                  lambda a, v: a.masked_fill(m, v), x, value, dtype=dtype)
    # a mask larger than x broadcasts x, as torch's out-of-place masked_fill does
    big_mask = mask(3, 6)
    assert_parity(lambda a: a.masked_fill(tg.from_torch(big_mask), 2.0),
                  lambda a: a.masked_fill(big_mask, 2.0), randn(6), dtype=dtype)



def test_masked_fill_tensor_value_converts_as_torch_for_integer_x():
    # torch fills with value.item(), range-checked as a Python number: NaN or -2.5 into
    # uint8 raise (a cast would wrap them silently); -1 wraps to 255 as the number does
    x, m = torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([True, False, True])
    for value in (torch.tensor(3.7), torch.tensor(-1), torch.tensor(True)):
        same(tg.from_torch(x).masked_fill(tg.from_torch(m), tg.from_torch(value)),
             x.masked_fill(m, value))
    for value in (torch.tensor(-2.5), torch.tensor(NAN), torch.tensor(300)):
        with pytest.raises(RuntimeError, match="without overflow"):
            x.masked_fill(m, value)
        with pytest.raises(DTypeError, match="cannot be converted to type uint8 without overflow"):
            tg.from_torch(x).masked_fill(tg.from_torch(m), tg.from_torch(value))

def test_masked_fill_integer_bool_and_errors():
    ints, m = torch.randint(-9, 9, (5,)), mask(5)
    same(tg.tensor(ints).masked_fill(tg.from_torch(m), 2.5), ints.masked_fill(m, 2.5))
    same(tg.tensor(ints).masked_fill(tg.from_torch(m), torch.tensor(2.7)),
         ints.masked_fill(m, torch.tensor(2.7)))
    flags = mask(5)
    same(tg.from_torch(flags).masked_fill(tg.from_torch(m), 5), flags.masked_fill(m, 5))
    same(tg.tensor(ints).to(torch.uint8).masked_fill(tg.from_torch(m), -1),
         ints.to(torch.uint8).masked_fill(m, -1))
    x, m_tg, values = tg.randn(5), tg.from_torch(m), tg.randn(5)
    int_mask, half, int_t = tg.tensor([1, 0, 1, 0, 1]), x.half(), tg.tensor(ints)
    with recorded_launches() as launches:
        with pytest.raises(DTypeError, match="only supports boolean masks, but got mask with "
                                             "dtype int64"):
            x.masked_fill(int_mask, 1.0)
        with pytest.raises(ShapeError, match="only supports a 0-dimensional value tensor, but "
                                             r"got tensor with 1 dimension\(s\)"):
            x.masked_fill(m_tg, values)
        with pytest.raises(DTypeError, match="cannot be converted to type float16 without "
                                             "overflow"):
            half.masked_fill(m_tg, 70000.0)
        with pytest.raises(DTypeError, match="int64 without overflow"):
            int_t.masked_fill(m_tg, INF)
    assert not launches


# ----------------------------------------------------------------------------- clamp


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lo, hi, layout", [(-0.5, 0.5, None), (None, 0.3, "T"), (-0.2, None, "S"),
                                            (0.5, -0.5, None)])
def test_clamp_forward_and_grad_match_torch(dtype, lo, hi, layout):
    x = randn(3, 5, 7, layout=layout)
    assert_parity(lambda a: tg.clamp(a, lo, hi), lambda a: torch.clamp(a, lo, hi), x,
                  dtype=dtype)


@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (None, 1.0), (-1.0, None), (NAN, 1.0),
                                    (-1.0, NAN)])
def test_clamp_boundaries_and_nan_like_torch(lo, hi):
    # x on both boundaries gets its gradient (torch's x >= min & x <= max); NaN x gives NaN
    # and no gradient; a NaN bound makes everything NaN with no gradient
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0, NAN, INF, -INF])
    assert_parity(lambda a: a.clamp(lo, hi), lambda a: a.clamp(lo, hi), x,
                  grad_outputs=[torch.arange(1.0, 9.0)])



@pytest.mark.parametrize("dtype", [torch.float16, torch.int32])
def test_clamp_nan_bound_skips_the_other_bounds_range_check(dtype):
    # torch returns all NaN for a NaN bound without converting the other: 70000 and 1e39
    # are beyond fp16 / fp32 but not refused here (a bound alone beyond them still is)
    x = torch.tensor([1, 2, 3]).to(dtype)
    for lo, hi in [(NAN, 70000.0), (1e39, NAN), (NAN, 1e39)]:
        ours, ref = tg.from_torch(x).clamp(lo, hi), torch.clamp(x, lo, hi)
        assert ours.dtype == ref.dtype and bool(ours.torch().isnan().all())
        assert_close(ours, ref)

def test_clamp_aliases_and_methods():
    x = randn(4, 5)
    expected = torch.clamp(x, min=-0.1, max=0.2)
    t = tg.from_torch(x)
    for ours in (tg.clamp(t, min=-0.1, max=0.2), tg.clip(t, -0.1, 0.2), t.clamp(-0.1, 0.2),
                 t.clip(min=-0.1, max=0.2)):
        assert_close(ours, expected)


def test_clamp_integers_exact_and_promoted_like_torch():
    ints = torch.randint(-9, 9, (6,))
    t = tg.tensor(ints)
    same(t.clamp(-3, 4), ints.clamp(-3, 4))
    same(t.clamp(min=0.5), ints.clamp(min=0.5))  # a float bound: fp32
    same(t.clamp(0, 5.5), ints.clamp(0, 5.5))
    same(tg.tensor(ints).to(torch.uint8).clamp(-1, 5), ints.to(torch.uint8).clamp(-1, 5))
    flags = mask(6)
    same(tg.from_torch(flags).clamp(0, 1), flags.clamp(0, 1))  # bool with ints: int64
    same(tg.tensor([2**53 - 3, 0]).clamp(max=2**53 - 4),
         torch.tensor([2**53 - 3, 0]).clamp(max=2**53 - 4))


def test_clamp_in_place():
    base = randn(5, 6)
    expected = base.t().clamp(-0.3, 0.3)
    x = tg.from_torch(base.clone()).t()
    version = x._version
    assert x.clamp_(-0.3, 0.3) is x
    assert x._version > version
    assert_close(x, expected)
    ints = tg.tensor([1, 5, 9])
    with pytest.raises(DTypeError, match="result type float32 can't be cast to the desired "
                                         "output type int64"):
        ints.clamp_(0, 0.5)
    leaf = tg.randn(3, requires_grad=True)
    with pytest.raises(AutogradError, match="leaf Variable that requires grad"):
        leaf.clamp_(0, 1)
    with tg.no_grad():
        leaf.clamp_(0, 1)
    assert float(leaf.torch().min()) >= 0 and float(leaf.torch().max()) <= 1


def test_clamp_errors_before_any_launch():
    x, bound, half, flags = tg.randn(3), tg.zeros(3), tg.randn(3).half(), tg.randn(3) > 0
    unsigned, ints = tg.tensor([1, 2]).to(torch.uint8), tg.tensor([1, 2])
    with recorded_launches() as launches:
        with pytest.raises(ValueError, match="At least one of 'min' or 'max' must not be None"):
            tg.clamp(x)
        with pytest.raises(UnsupportedError, match="tensor min bounds are not supported"):
            tg.clamp(x, bound)
        with pytest.raises(TypeError, match="max must be a real number or None, got str"):
            tg.clamp(x, 0, "1")
        with pytest.raises(DTypeError, match="float16 without overflow"):
            half.clamp(-70000.0, 70000.0)
        with pytest.raises(DTypeError, match="uint8 without overflow"):
            unsigned.clamp(300, 400)
        with pytest.raises(DTypeError, match="not implemented for bool"):
            flags.clamp(False, True)
        with pytest.raises(DTypeError, match="beyond 2\\^53"):
            ints.clamp(max=2**60 + 1)
    assert not launches
