"""log1p, expm1, rsqrt, reciprocal, square, sign, floor, ceil, round, trunc, sin, cos, log2
and log10 through autograd against torch.autograd: the tg functions and Tensor methods,
torch's dtype rules, the in-place forms, and the errors."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.testing import assert_parity, gradcheck
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on NaN/inf/0 inputs

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
OPS = ("log1p", "expm1", "rsqrt", "reciprocal", "square", "sign", "floor", "ceil", "round",
       "trunc", "sin", "cos", "log2", "log10")
POSITIVE = ("rsqrt", "log2", "log10")  # drawn in [0.2, 3.2); log1p in (-0.8, 2.2)


def inputs_for(op):
    """An odd-shaped non-contiguous view (5 x 7, stride (1, 10) after slicing and
    transposing) and a 0-d tensor, in the op's domain and away from the step ops' jumps."""
    x = torch.rand(14, 5, dtype=torch.float64)[::2].T
    if op in POSITIVE:
        x = x * 3 + 0.2
    elif op == "log1p":
        x = x * 3 - 0.8
    else:
        x = (x - 0.5) * 8
        if op in ("floor", "ceil", "round", "trunc"):
            x = x.floor() + 0.25 + 0.5 * (x > 0)  # no ties, no integers
    return x, x[1, 2].clone()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_functions_match_torch_forward_and_grad(dtype):
    """Every op in every dtype on a strided view (the kernel tests cover the values in
    depth): the tg function, and in fp32 the Tensor method."""
    for op in OPS:
        view, _ = inputs_for(op)
        ours = getattr(tg, op)
        if dtype == torch.float32:
            ours = lambda t, _op=op: getattr(t, _op)()  # noqa: E731
        try:
            assert_parity(ours, getattr(torch, op), view, dtype=dtype)
        except AssertionError as error:
            raise AssertionError(f"{op}: {error}") from None


def test_zero_dim_inputs():
    for op in ("log1p", "square", "round", "cos"):
        _, scalar = inputs_for(op)
        assert_parity(getattr(tg, op), getattr(torch, op), scalar, dtype=torch.float32)


def test_special_values_through_autograd():
    x = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), -1.0, 1e-20, -2.5,
                      0.5, 1.5])
    for op in OPS:
        assert_parity(getattr(tg, op), getattr(torch, op), x, dtype=torch.float32)


def test_step_ops_give_zero_gradients_with_a_node():
    """Piecewise constant: the output is in the graph (torch's FloorBackward0 etc.) and the
    gradient is zeros, even for a NaN upstream gradient; no backward kernel runs."""
    for op in ("sign", "floor", "ceil", "round", "trunc"):
        x = tg.from_torch(torch.randn(3, 4), requires_grad=True)
        y = getattr(tg, op)(x)
        assert y.requires_grad and y.grad_fn is not None, op
        with recorded_launches() as launches:
            y.backward(tg.full((3, 4), float("nan")))
        assert x.grad.torch().eq(0).all(), op
        assert not [info for info in launches if "unary_math" in info.kernel_name], op


def test_one_launch_each_way_and_what_is_saved():
    for op, saves_output in (("expm1", True), ("rsqrt", True), ("reciprocal", True),
                             ("log1p", False), ("sin", False), ("log10", False)):
        x = tg.from_torch(torch.rand(4, 6) + 0.5, requires_grad=True)
        grad = tg.ones((4, 6))
        with recorded_launches() as launches:
            y = getattr(tg, op)(x)
            (saved,) = y.grad_fn.saved_tensors
            kept = y if saves_output else x
            assert saved.torch().data_ptr() == kept.torch().data_ptr(), op
            y.backward(grad)
        names = [info.kernel_name for info in launches]
        assert names == ["unary_math_kernel", "unary_math_bwd_kernel"], (op, names)


def test_fp64_gradcheck():
    x = tg.from_torch(torch.rand(2, 2, dtype=torch.float64) + 0.5, requires_grad=True)
    for op in ("log1p", "expm1", "rsqrt", "cos"):
        assert gradcheck(getattr(tg, op), (x,), fast_mode=True), op


def test_integer_and_bool_dtype_rules():
    ints = torch.tensor([[-3, 0, 2], [7, -1, 100]])
    bools = torch.tensor([True, False, True])
    for source, ops in ((ints, OPS), (bools, OPS), (ints.to(torch.int8), ("sign", "square", "sin")),
                        (ints.abs().to(torch.uint8), ("sign", "square", "floor", "log2"))):
        x = tg.from_torch(source)
        for op in ops:
            if op in ("floor", "ceil", "round", "trunc") and source.dtype == torch.bool:
                with pytest.raises(TypeError, match=f"{op}: input has dtype bool"):
                    getattr(tg, op)(x)
                continue
            expected = getattr(torch, op)(source)
            got = getattr(tg, op)(x).torch()
            assert got.dtype == expected.dtype, (op, source.dtype, got.dtype)
            if expected.is_floating_point():
                assert_close(got, expected, dtype=expected.dtype, name=f"{op} {source.dtype}")
            else:
                assert torch.equal(got, expected), (op, source.dtype)


def test_in_place_forms():
    for op in OPS:
        x, _ = inputs_for(op)
        source = x.float()
        target = tg.from_torch(source.clone())
        view = target.T  # written through a transposed view's strides
        version = target._version
        assert getattr(view, op + "_")() is view
        assert target._version > version, op
        assert_close(target, getattr(torch, op)(source), dtype=torch.float32, name=op)
    ints = tg.tensor([-3, 2, 5])
    assert ints.floor_().tolist() == [-3, 2, 5] and ints.sign_().tolist() == [-1, 1, 1]
    assert ints.square_().tolist() == [1, 1, 1]
    flags = tg.tensor([True, False])
    assert flags.sign_().tolist() == [True, False]
    assert tg.tensor([0.5, 1.5, 2.5]).round_().tolist() == [0.0, 2.0, 2.0]


def test_in_place_errors_are_torchs():
    with pytest.raises(TypeError, match="sin_: result type float32 can't be cast to the "
                                        "desired output type int64"):
        tg.tensor([1, 2]).sin_()
    with pytest.raises(TypeError, match="floor_: input has dtype bool"):
        tg.tensor([True]).floor_()
    with pytest.raises(TypeError, match="square_: result type int64 can't be cast"):
        tg.tensor([True]).square_()
    leaf = tg.from_torch(torch.randn(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.cos_()


def test_round_decimals_other_than_zero_are_refused():
    x = tg.from_torch(torch.randn(3))
    assert tg.round(x, decimals=0).shape == (3,)
    for call in (lambda: tg.round(x, decimals=2), lambda: x.round(1), lambda: x.round_(-1)):
        with pytest.raises(NotImplementedError, match="decimals=.* is not supported"):
            call()


def test_square_is_pow_two():
    """torch.square is x ** 2 (PowBackward0): integers wrap, bool becomes int64."""
    x = tg.from_torch(torch.randn(3, 4), requires_grad=True)
    assert tg.square(x).grad_fn.name() == (x ** 2).grad_fn.name()
    assert tg.tensor([200], dtype=tg.int32).square().tolist() == [40000]
    assert tg.tensor([100], dtype=torch.int8).square().tolist() == [16]  # wraps as torch
    assert tg.tensor([True, False]).square().dtype == torch.int64
