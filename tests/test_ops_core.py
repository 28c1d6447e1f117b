"""Parity of the core ops (elementwise, reductions, views, casts) with torch.autograd,
forward and every input's gradient, in fp32, fp16 and bf16."""

import numpy as np
import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.testing import assert_parity

DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# (shape of a, shape of b): equal, broadcast, 1x1, odd sizes
BINARY_SHAPES = [((1, 1), (1, 1)), ((7, 13), (7, 13)), ((3, 1, 5), (4, 5)), ((7, 13), (13,))]


def randn(*shape):
    return torch.randn(*shape)


def positive(*shape):
    return torch.rand(*shape) + 0.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BINARY_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_ops(op, shapes, dtype):
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    a, b = randn(*shapes[0]), positive(*shapes[1])
    assert_parity(fn, fn, a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_on_transposed_and_sliced_views(dtype):
    a = randn(13, 7)  # used transposed
    b = randn(7, 26)  # used with a stride-2 slice
    fn = lambda x, y: x.T * y[:, ::2] + x.T  # noqa: E731
    assert_parity(fn, fn, a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["radd", "rsub", "mul", "div", "rdiv", "pow2", "pow_half", "rpow", "neg", "exp", "log", "sqrt"])
def test_unary_and_scalar_ops(op, dtype):
    fns = {
        "radd": lambda x: 2.5 + x, "rsub": lambda x: 1.5 - x, "mul": lambda x: x * -3.0,
        "div": lambda x: x / 4.0, "rdiv": lambda x: 2.0 / x, "pow2": lambda x: x ** 2,
        "pow_half": lambda x: x ** 0.5, "rpow": lambda x: 2.0 ** x, "neg": lambda x: -x,
        "exp": lambda x: x.exp(), "log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(),
    }
    x = positive(7, 13).T  # non-contiguous input
    assert_parity(fns[op], fns[op], x, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("base", [0.0, -2.0, 2.0, 1.0])
def test_scalar_base_pow_gradient_at_special_exponents(base, dtype):
    # torch zeroes d(0 ** x)/dx where x >= 0 (0 * ln 0 would be NaN) and gives -inf * grad
    # where x < 0; a negative base has NaN gradients; inf, -0.0 and NaN exponents included.
    values = [-2.0, -0.5, -0.0, 0.0, 0.5, 3.0, float("inf"), float("-inf"), float("nan")]
    x = torch.tensor(values).to(dtype)
    grad = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 2.0, 1.5, -0.5, 1.0]).to(dtype)
    expected_x = x.clone().requires_grad_()
    expected = base ** expected_x
    expected.backward(grad)
    ours_x = tg.from_torch(x.to(tg.device())).requires_grad_()
    with recorded_launches() as launches:
        ours = base ** ours_x
        ours.backward(tg.from_torch(grad.to(tg.device())))
    assert len(launches) == 2  # the forward, and one fused backward kernel
    torch.testing.assert_close(ours.torch().cpu(), expected.detach(), equal_nan=True)
    torch.testing.assert_close(ours_x.grad.torch().cpu(), expected_x.grad, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
@pytest.mark.parametrize("kind", ["sum", "mean"])
def test_reductions(kind, dim, keepdim, dtype):
    x = randn(3, 7, 5)
    if kind == "sum":
        fn = lambda t: t.sum(dim=dim, keepdim=keepdim) if dim is not None else t.sum()  # noqa: E731
    else:
        fn = lambda t: t.mean(dim=dim, keepdim=keepdim) if dim is not None else t.mean()  # noqa: E731
    assert_parity(fn, fn, x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_of_transposed_view(dtype):
    x = randn(13, 7)
    assert_parity(lambda t: t.T.sum(dim=1), lambda t: t.T.sum(dim=1), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_chain(dtype):
    def fn(t):
        v = t.reshape(3, 4, 5).permute(2, 0, 1).transpose(0, 1)
        v = v.unsqueeze(0).squeeze(0)[1:, ::2, 1]
        return v * 2.0

    assert_parity(fn, fn, randn(60), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_and_flatten(dtype):
    fn = lambda t: t.expand(4, 3, 5).flatten() * 1.0  # noqa: E731
    assert_parity(fn, fn, randn(3, 1), dtype=dtype)


@pytest.mark.parametrize("src,dst", [(torch.float32, torch.float16), (torch.float32, torch.bfloat16),
                                     (torch.bfloat16, torch.float32), (torch.float16, torch.float64)])
def test_casts_are_differentiable(src, dst):
    x = randn(7, 13).to(src)
    fn = lambda t: t.to(dst) * 2.0  # noqa: E731
    assert_parity(fn, fn, x, dtype=src)


def test_mixed_float_dtypes_promote_like_torch():
    a = tg.tensor(np.ones((2, 3)), dtype=torch.float16)
    b = tg.tensor(np.ones((2, 3)), dtype=torch.float32)
    assert (a + b).dtype == torch.float32
    assert (a * tg.tensor(2.0)).dtype == torch.float16  # a 0-d tensor does not promote
    assert (a * 2.0).dtype == torch.float16
    assert (tg.tensor([1, 2]) * 0.5).dtype == torch.float32


INT_CASES = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "add_int": lambda a, b: a + 3, "rsub_int": lambda a, b: 7 - a,
    "mul_int": lambda a, b: a * -3, "mul_float": lambda a, b: a * 0.5, "neg": lambda a, b: -a,
    "pow_int": lambda a, b: a ** 3, "pow_float": lambda a, b: a ** 2.0,
    "rpow_int": lambda a, b: 2 ** b, "rpow_neg_base": lambda a, b: (-1) ** b,
    "mixed_width": lambda a, b: a + b.to(torch.int32), "zero_dim": lambda a, b: a * b[0],
}


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8, torch.uint8])
@pytest.mark.parametrize("case", sorted(INT_CASES))
def test_integer_arithmetic_is_exact_and_keeps_torchs_dtype(case, dtype):
    # 2^25 + 1 is not an fp32 value: computing int64 arithmetic in fp32 would show here.
    big = 2**25 + 1 if dtype in (torch.int64, torch.int32) else 100
    a = torch.tensor([[1, 2, big], [0, 5, 7]]).to(dtype)
    b = torch.tensor([3, 2, 5]).to(dtype)  # broadcast along the rows
    if case == "neg" and dtype == torch.uint8:
        pytest.skip("torch's uint8 negation wraps; covered by the other uint8 cases")
    expected = INT_CASES[case](a, b)
    with recorded_launches() as launches:
        ours = INT_CASES[case](tg.from_torch(a.to(tg.device())), tg.from_torch(b.to(tg.device())))
    assert launches, "computed by our kernels"
    got = ours.torch().cpu()
    assert got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_integer_in_place_and_what_integers_refuse():
    a = tg.tensor([1, 2, 2**40 + 3])
    a += 2
    a *= 3
    a.add_(tg.tensor([1, 1, 1]), alpha=2)
    assert a.tolist() == [(1 + 2) * 3 + 2, (2 + 2) * 3 + 2, (2**40 + 5) * 3 + 2]
    with pytest.raises(tg.DTypeError, match="result type Float can't be cast.*int64"):
        a += 0.5  # as torch
    with pytest.raises(tg.DTypeError, match="float32 can't be cast.*int64"):
        a += tg.tensor([0.5, 0.5, 0.5])
    with pytest.raises(tg.DTypeError, match="div"):
        a /= 2
    with pytest.raises(tg.DTypeError, match="alpha must be an integer"):
        a.add_(tg.tensor([1, 1, 1]), alpha=0.5)
    with pytest.raises(ValueError, match="negative integer powers.*int64"):
        a ** -1
    assert (tg.tensor([True]) + tg.tensor([False])).tolist() == [True]  # logical or, as torch
    assert (tg.tensor([True, False]) + 1).tolist() == [2, 1]  # bool promotes to int64


def test_clone_contiguous_and_cast_run_on_our_kernel():
    with recorded_launches() as launches:
        x = tg.tensor(np.arange(6.0).reshape(2, 3))
        x.T.contiguous()
        x.clone()
        x.half()
    assert [info.kernel_name for info in launches][-3:] == ["copy_kernel"] * 3


# --- review: indexing, reductions of 0-d / empty dims, view argument checks --------------


def _grad_of(lib, fn, values):
    x = lib.tensor(values, requires_grad=True)
    y = fn(x)
    y.backward(lib.ones(tuple(y.shape)))
    return tuple(y.shape), x.grad.tolist()


@pytest.mark.parametrize("index", [np.array([0, 2]), range(2), (slice(None), np.array([0, 1])),
                                   np.array([True, False, True]), False])
def test_advanced_indices_are_refused_not_silently_copied(index):
    # torch reads these as advanced indexing, which copies: getitem's backward would
    # scatter into that copy (a zero gradient) and __setitem__ would write nowhere
    x = tg.tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="boolean masks and mixed or several index tensors are not supported"):
        x[index]
    target = tg.zeros(3, 4)
    with pytest.raises(TypeError, match="boolean masks and mixed or several index tensors are not supported"):
        target[index] = 1.0


@pytest.mark.parametrize("index", [True, (1, True), (np.int64(2), None, slice(1, 3))])
def test_bool_true_and_numpy_int_indices_match_torch(index):
    values = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    fn = lambda t: t[index] * 2.0  # noqa: E731
    assert _grad_of(tg, fn, values) == _grad_of(torch, fn, values)


@pytest.mark.parametrize("fn", [lambda t: t[1, 2].sum(0), lambda t: t[1, 2].mean(-1, keepdim=True),
                                lambda t: t.mean(()), lambda t: t.sum((), keepdim=True),
                                lambda t: t.mean((), keepdim=True) * t])
def test_reductions_of_0d_tensors_and_empty_dims_match_torch(fn):
    values = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    ours, ref = _grad_of(tg, fn, values), _grad_of(torch, fn, values)
    assert ours[0] == ref[0]
    assert np.allclose(ours[1], ref[1], rtol=1e-5, atol=1e-5)


def test_reduction_over_a_repeated_dim_is_an_error():
    with pytest.raises(ValueError, match="dim 0 appears multiple times"):
        tg.zeros(2, 3).sum((0, -2))


def test_view_dim_arguments_are_checked_as_torch_checks_them():
    x = tg.zeros(2, 3, 4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.squeeze(5)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.flatten(0, 5)
    with pytest.raises(ValueError, match="start_dim .* cannot come after end_dim"):
        x.flatten(2, 1)
    with pytest.raises(ValueError, match="-1 is not allowed in a leading"):
        tg.zeros(3).expand(-1, 3)
    assert tuple(tg.zeros(3, 1).expand(2, -1, 5).shape) == (2, 3, 5)
    assert tuple(tg.tensor(1.0).squeeze(0).shape) == ()
    assert tuple(tg.tensor(1.0).flatten().shape) == (1,)


# --- comparisons and argmax -----------------------------------------------------------------

COMPARISON_OPS = ["eq", "ne", "lt", "le", "gt", "ge"]
SYMBOL = {"eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__",
          "ge": "__ge__"}


def _values(dtype):
    nan = float("nan")
    if dtype == torch.bool:
        return torch.tensor([[True, False, True], [False, False, True]])
    if not dtype.is_floating_point:
        return torch.tensor([[1, -2, 3], [2**40 + 1, 0, 5]]).to(dtype) if dtype == torch.int64 \
            else torch.tensor([[1, 2, 3], [4, 0, 5]]).to(dtype)
    return torch.tensor([[1.0, nan, -0.0], [2.5, float("inf"), 0.0]]).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.uint8,
                                   torch.bool], ids=str)
@pytest.mark.parametrize("op", COMPARISON_OPS)
def test_comparisons_match_torch(op, dtype):
    a = _values(dtype)
    b = a[:, 1:2] if dtype == torch.bool else a.flip(1)[0]  # broadcast a column, or a row
    scalar = True if dtype == torch.bool else 1
    cases = [(a, b), (a, scalar), (a, 0.5), (a, b.to(torch.float32))]
    for left, right in cases:
        expected = getattr(left, SYMBOL[op])(right)
        tg_right = (tg.from_torch(right.to(tg.device())) if isinstance(right, torch.Tensor)
                    else right)
        with recorded_launches() as launches:
            got = getattr(tg.from_torch(left.to(tg.device())), op)(tg_right)
        assert launches, "computed by our kernels"
        assert got.dtype == torch.bool and got.grad_fn is None
        assert torch.equal(got.torch().cpu(), expected), (left, right, got, expected)


def test_comparison_operators_and_identity_semantics():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (x > 1.5).tolist() == [False, True, True] and not (x > 1.5).requires_grad
    assert (x == x).tolist() == [True] * 3
    assert (x == None) is False and (x != "a") is True  # noqa: E711 - as torch
    assert {x: 1}[x] == 1 and x in [x, tg.zeros(1)]  # hashing and `in` find x by identity
    assert (2.0 < x).tolist() == [False, False, True]  # reflected: x > 2.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64], ids=str)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (None, True), (0, False), (1, True),
                                         (-1, False)])
def test_argmax_matches_torch(dtype, dim, keepdim):
    nan = float("nan")
    x = torch.randn(7, 13).mul(4).round()  # ties: the first one wins, as torch
    if dtype.is_floating_point:
        x[2, 5] = nan  # a NaN is the maximum
        x[2, 9] = nan
        x[4, :] = float("-inf")
    x = x.to(dtype)
    for view in (x, x.T.contiguous().T):  # row-major and column-major layouts
        got = tg.from_torch(view.to(tg.device())).argmax(dim, keepdim=keepdim)
        assert torch.equal(got.torch().cpu(), view.argmax(dim, keepdim=keepdim)), (view, dim)


def test_argmax_across_column_tiles_and_errors():
    x = torch.zeros(3, 10000)
    x[0, 7000] = x[0, 9000] = 5.0  # a tie across tiles
    x[1, 100], x[1, 8000] = 9.0, float("nan")  # a later NaN beats an earlier max
    x[2, :] = -1.0
    ours = tg.from_torch(x.to(tg.device()))
    assert ours.argmax(1).tolist() == x.argmax(1).tolist() == [7000, 8000, 0]
    assert int(tg.argmax(ours)) == int(x.argmax())
    logits = tg.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    labels = tg.tensor([1, 2])
    accuracy = (logits.argmax(1) == labels).float().mean()  # the usual idiom, on device
    assert float(accuracy) == 0.5
    with pytest.raises(tg.ShapeError, match=r"argmax\(\).*non-zero size.*\(0, 3\)"):
        tg.zeros(0, 3).argmax(0)


def test_scalars_take_the_tensors_dtype_as_in_torch():
    # a float scalar is rounded to an fp16/bf16 tensor's dtype before comparing; an int
    # scalar is cast to an integer tensor's dtype, wrapping (uint8: 300 -> 44, -1 -> 255)
    cases = [(torch.tensor([0.1, 0.2]).half(), 0.1), (torch.tensor([0.1, 2.0]).bfloat16(), 0.1),
             (torch.tensor([2048.0, 1.0]).half(), 2049), (torch.tensor([5, 200, 0]).byte(), 300),
             (torch.tensor([5, 200, 0]).byte(), -1), (torch.tensor([5, -7, 0]).int(), 2**40)]
    for x, scalar in cases:
        ours = tg.from_torch(x.to(tg.device()))
        for op in COMPARISON_OPS:
            expected = getattr(x, SYMBOL[op])(scalar)
            assert torch.equal(getattr(ours, op)(scalar).torch().cpu(), expected), (x, op, scalar)
    byte = torch.tensor([5, 200, 0]).byte()
    for fn in (lambda t: t + (-1), lambda t: t * 300, lambda t: 300 - t, lambda t: t - 257):
        assert torch.equal(fn(tg.from_torch(byte.to(tg.device()))).torch().cpu(), fn(byte))


def test_sum_of_integers_and_bools_is_exact_int64_as_torch():
    x = torch.randint(-1000, 1000, (7, 2000))
    x[0, 0] = 2**40  # past fp32's exact integers: an fp32 accumulator would show
    b = torch.rand(5, 300) > 0.5
    u = torch.randint(0, 255, (3, 9)).to(torch.uint8)
    for data, dims in ((x, [None, 0, 1]), (b, [None, 1]), (u, [0])):
        ours = tg.from_torch(data.to(tg.device()))
        for dim in dims:
            expected = data.sum() if dim is None else data.sum(dim)
            got = (ours.sum() if dim is None else ours.sum(dim)).torch().cpu()
            assert got.dtype == torch.int64 and torch.equal(got, expected), (data.dtype, dim)
    logits, labels = tg.tensor([[0.1, 2.0], [3.0, 0.0], [1.0, 0.5]]), tg.tensor([1, 1, 0])
    assert int((logits.argmax(1) == labels).sum()) == 2  # correct predictions, counted on device
    with pytest.raises(tg.DTypeError, match="mean"):
        tg.tensor([1, 2]).mean()  # torch: mean needs a float dtype too


def test_promotion_categories_integer_scalars_and_bool_subtraction_as_torch():
    flags = torch.tensor([True, False])
    three = torch.tensor(3)  # 0-d int64: a higher category than bool, so it promotes
    for fn in (lambda a, b: a == b, lambda a, b: a < b, lambda a, b: a + b):
        got = fn(tg.from_torch(flags.to(tg.device())), tg.from_torch(three.to(tg.device())))
        assert torch.equal(got.torch().cpu(), fn(flags, three))
    signed, unsigned = torch.tensor([-1, 5], dtype=torch.int8), torch.tensor([255, 5]).byte()
    got = tg.from_torch(signed.to(tg.device())) < tg.from_torch(unsigned.to(tg.device()))
    assert torch.equal(got.torch().cpu(), signed < unsigned)  # compared in a wide enough type
    big = tg.tensor([2**53, 2**53 + 2])
    with pytest.raises(tg.DTypeError, match="beyond 2\\^53"):
        big == 2**53 + 1  # noqa: B015 - an fp64 argument would round it to 2^53
    with pytest.raises(tg.DTypeError, match="beyond 2\\^53"):
        big += 2**60 + 1
    counts = tg.tensor([1, 2])
    with pytest.raises(tg.DTypeError, match="can't be cast"):
        counts += 2.0  # torch: result type Float can't be cast to Long, whatever the value
    mask = tg.tensor([True, False])
    for fn in (lambda: mask - mask, lambda: tg.tensor([1.0, 2.0]) - mask, lambda: 1 - mask,
               lambda: tg.tensor([1.0]) - True):
        with pytest.raises(tg.DTypeError, match="Subtraction, the `-` operator, with a bool"):
            fn()


def test_bool_addition_and_multiplication_are_logical_as_torch():
    # torch: + of two bools is logical or, * logical and, and the result stays bool
    a, b = torch.tensor([True, False, True, False]), torch.tensor([True, True, False, False])
    ta, tb = tg.from_torch(a.to(tg.device())), tg.from_torch(b.to(tg.device()))
    for fn in (lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x + True,
               lambda x, y: x * False, lambda x, y: True + x, lambda x, y: x.add(y)):
        got = fn(ta, tb).torch().cpu()
        want = fn(a, b)
        assert got.dtype == torch.bool and torch.equal(got, want)
    scalar = tg.from_torch(torch.tensor(True).to(tg.device()))
    assert torch.equal((scalar * tb).torch().cpu(), torch.tensor(True) * b)


def test_bool_in_place_addition_and_multiplication_are_logical_as_torch():
    # torch: bool += bool / add_ is logical or, *= / mul_ logical and, written in place;
    # an integer operand, or a broadcast that grows the target, is refused
    a, b = torch.tensor([True, False, True, False]), torch.tensor([True, True, False, False])
    cases = [lambda x, y: x.add_(y), lambda x, y: x.mul_(y), lambda x, y: x.add_(True),
             lambda x, y: x.mul_(y[1]), lambda x, y: x.add_(y, alpha=2)]
    for fn in cases:
        want = a.clone()
        fn(want, b)
        ours = tg.from_torch(a.clone().to(tg.device()))
        version = ours._version
        assert fn(ours, tg.from_torch(b.to(tg.device()))) is ours
        assert ours._version > version
        assert ours.dtype == torch.bool and torch.equal(ours.torch().cpu(), want)
    ours, other = tg.from_torch(a.clone().to(tg.device())), tg.from_torch(b.to(tg.device()))
    ours += other
    ours *= False
    assert torch.equal(ours.torch().cpu(), torch.zeros(4, dtype=torch.bool))
    with pytest.raises(tg.DTypeError):
        ours.add_(1)
    with pytest.raises(tg.ShapeError, match="doesn't match the broadcast shape"):
        ours.add_(other[None])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_negative_zero_scalars_keep_their_sign_as_torch(dtype):
    # numbers reached kernels as zeros + value, and 0.0 + -0.0 is +0.0: x * -0.0, x / -0.0
    # (-inf, not +inf, for x > 0), -0.0 / x and fill(-0.0) came out with the wrong sign
    ref = torch.tensor([1.0, -2.0, 0.0, -0.0]).to(dtype)
    x = tg.from_torch(ref.to(tg.device()))
    for fn in (lambda t: t * -0.0, lambda t: t / -0.0, lambda t: -0.0 / t, lambda t: t + -0.0,
               lambda t: t - 0.0, lambda t: (-0.0) ** (t * 0 + 3)):
        got, want = fn(x).torch().cpu(), fn(ref)
        assert torch.equal(got.isnan(), want.isnan())
        keep = ~want.isnan()
        assert torch.equal(got[keep], want[keep]) and torch.equal(got[keep].signbit(),
                                                                   want[keep].signbit())
    assert tg.full((3,), -0.0, dtype=dtype).torch().signbit().all()
    assert tg.zeros(3, dtype=dtype).fill_(-0.0).torch().signbit().all()


def test_add_alpha_with_bool_and_integer_tensors_as_torch():
    a, b = torch.tensor([True, False, True, False]), torch.tensor([True, True, False, False])
    ta, tb = tg.from_torch(a.to(tg.device())), tg.from_torch(b.to(tg.device()))
    for alpha in (2, 0):  # bool stays bool: alpha only switches other off
        got = ta.add(tb, alpha=alpha).torch().cpu()
        assert got.dtype == torch.bool and torch.equal(got, a.add(b, alpha=alpha))
    ints = tg.tensor([1, 2])
    with pytest.raises(tg.DTypeError, match="alpha must not be a floating point number"):
        ints.add(ints, alpha=0.5)
    assert ints.add(tg.tensor([1.0, 1.0]), alpha=0.5).tolist() == [1.5, 2.5]  # float result
