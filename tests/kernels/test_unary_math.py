"""unary_math / unary_math_bwd (log1p, expm1, rsqrt, reciprocal, sin, cos, log2, log10, sign,
floor, ceil, round, trunc) against torch: every dtype, strided views, special values,
integer inputs, in place, and the errors."""

import pytest
import torch

from tests.conftest import DEVICE
from tritongrad.kernels._checks import DeviceError, DTypeError, LayoutError, ShapeError
from tritongrad.kernels.unary_math import (
    FLOAT_MATH_OPS,
    MATH_OPS,
    SAVES_OUTPUT,
    STEP_OPS,
    UNARY_MATH_BLOCK,
    unary_math,
    unary_math_bwd,
)
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on NaN/inf/0 inputs

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
INF, NAN = float("inf"), float("nan")
SPECIAL = [0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 1e-30, -1e-30, 1e-7, -1e-7, 1e30, -1e30]
# ties of round (half to even), both signs, and the fp32 integer range edge 2^23 + 1 (odd)
STEPS = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.3, 0.3, 8388609.0, -8388609.0, 1e-40,
         -1e-40]
# per op: (low, high) of the uniform draws, clear of where fp16 squares/cubes overflow
DOMAINS = {"log1p": (-0.99, 5.0), "expm1": (-12.0, 12.0), "rsqrt": (0.05, 50.0),
           "reciprocal": (-8.0, 8.0), "sin": (-20.0, 20.0), "cos": (-20.0, 20.0),
           "log2": (0.01, 100.0), "log10": (0.01, 100.0)}


def values_of(op, dtype):
    """An 11 x 23 transposed view (strides (1, 11)): uniform draws over the op's domain
    (the step ops: 4 randn) with SPECIAL and STEPS in the first row."""
    if op in STEP_OPS:
        x = torch.randn(23, 11, dtype=torch.float64) * 4.0
    else:
        low, high = DOMAINS[op]
        x = torch.rand(23, 11, dtype=torch.float64) * (high - low) + low
    specials = torch.tensor(SPECIAL + STEPS, dtype=torch.float64)
    if dtype == torch.bfloat16:
        # the interpreter misreads bf16 subnormals (its bf16 -> fp32 load gives 0 for 1e-40,
        # 4.4e-39 for 1e-39; the copy kernel shows it too): normal values only
        specials[specials.abs() == 1e-40] *= 1e10
    x[:, 0] = specials[:23]
    x[:3, 1] = specials[23:]
    return x.to(dtype).to(DEVICE).T


def torch_grad(op, x, grad):
    leaf = x.detach().clone().requires_grad_(True)
    (result,) = torch.autograd.grad(getattr(torch, op)(leaf), leaf, grad)
    return result


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_and_backward_match_torch(dtype):
    for op in MATH_OPS:
        x = values_of(op, dtype)
        assert not x.is_contiguous()
        y = unary_math(op, x)
        expected = getattr(torch, op)(x)
        assert y.dtype == dtype and y.shape == x.shape and y.is_contiguous(), op
        assert_close(y, expected, dtype=dtype, name=f"{op} output")
        # the sign of zero results too (round(-0.3) = -0.0, log1p(-0.0) = -0.0, ...)
        zeros = expected == 0
        assert torch.equal(y[zeros].signbit(), expected[zeros].signbit()), op
        if op in FLOAT_MATH_OPS:
            grad = torch.randn(x.shape, dtype=torch.float64).to(dtype).to(DEVICE)
            saved = expected if SAVES_OUTPUT[op] else x
            assert_close(unary_math_bwd(op, grad, saved), torch_grad(op, x, grad),
                         dtype=dtype, name=f"{op} grad")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_log1p_and_expm1_are_accurate_near_zero(dtype):
    """No 1 + x / e^x - 1 cancellation: a few ulp of the float64 (for fp64: torch's) value
    for |x| down to 1e-30, where the naive forms give 0 or lose every digit."""
    magnitudes = torch.logspace(-30, 0, 61, dtype=torch.float64)
    x = torch.cat([magnitudes, -magnitudes * 0.999]).to(dtype).to(DEVICE)
    eps = torch.finfo(dtype).eps
    for op in ("log1p", "expm1"):
        got = unary_math(op, x).double()
        exact = getattr(torch, op)(x.double())
        assert ((got - exact).abs() <= 4 * eps * exact.abs()).all(), (op, got, exact)


def test_round_is_half_to_even_and_keeps_signed_zero():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -0.2, 1e-40, -1e-40, 2.0**23 - 0.5,
                      2.0**23 + 1, -(2.0**23) - 1, 0.49999997, -0.49999997], device=DEVICE)
    y = unary_math("round", x)
    assert y.tolist() == torch.round(x).tolist()
    assert y[:7].tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 4.0]
    assert torch.equal(y.signbit(), torch.round(x).signbit())
    # floor/ceil/trunc of subnormals (a GPU's ftz floor would flush them to 0)
    tiny = torch.tensor([1e-40, -1e-40], device=DEVICE)
    assert unary_math("floor", tiny).tolist() == [0.0, -1.0]
    assert unary_math("ceil", tiny).tolist() == [1.0, -0.0]
    assert unary_math("ceil", tiny).signbit().tolist() == [False, True]
    assert unary_math("trunc", tiny).signbit().tolist() == [False, True]


def test_sign_of_nan_and_negative_zero_is_torch_zero():
    x = torch.tensor([NAN, -0.0, 0.0, -INF, 3.0], device=DEVICE)
    y = unary_math("sign", x)
    assert y.tolist() == [0.0, 0.0, 0.0, -1.0, 1.0] == torch.sign(x).tolist()
    assert not y.signbit()[:3].any()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8, torch.uint8], ids=str)
def test_integer_inputs(dtype):
    low = 0 if dtype == torch.uint8 else -100
    x = torch.randint(low, 100, (7, 9), dtype=dtype)[:, ::2]
    for op in STEP_OPS:  # exact, the dtype kept
        y = unary_math(op, x)
        assert y.dtype == dtype and torch.equal(y, getattr(torch, op)(x)), op
    for op in ("sin", "log1p", "rsqrt", "reciprocal"):  # converted in the kernel, float32 out
        y = unary_math(op, x)
        expected = getattr(torch, op)(x)
        assert y.dtype == expected.dtype == torch.float32, op
        assert_close(y, expected, dtype=torch.float32, name=op)


def test_bool_inputs():
    x = torch.tensor([[True, False, True]])
    for op in ("expm1", "cos", "log2"):
        y = unary_math(op, x)
        assert y.dtype == torch.float32, op
        assert_close(y, getattr(torch, op)(x), dtype=torch.float32, name=op)
    with pytest.raises(DTypeError, match="floor: input has dtype bool"):
        unary_math("floor", x)


def test_out_in_place_several_programs_and_empty():
    x = torch.randn(UNARY_MATH_BLOCK + 37, dtype=torch.float64) * 3
    expected = torch.floor(x)
    assert unary_math("floor", x, out=x) is x
    assert torch.equal(x, expected)
    # a transposed in-place target: written through its own strides
    base = torch.randn(5, 8)
    view = base.T
    expected = torch.cos(view)
    unary_math("cos", view, out=view)
    assert_close(view, expected, dtype=torch.float32)
    assert unary_math("sin", torch.empty(0, 3)).shape == (0, 3)
    assert unary_math_bwd("sin", torch.empty(0, 3), torch.empty(0, 3)).shape == (0, 3)


def test_bad_inputs():
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="unknown op 'exp2'"):
        unary_math("exp2", x)
    with pytest.raises(ValueError, match="unknown op 'floor'"):
        unary_math_bwd("floor", x, x)
    with pytest.raises(DeviceError, match="sin: .*meta"):
        unary_math("sin", torch.empty(3, device="meta"))
    with pytest.raises(DTypeError, match="log1p: .*out has dtype float16; supported: float32"):
        unary_math("log1p", x, out=x.half())
    with pytest.raises(ShapeError, match=r"output with shape \(4, 3\)"):
        unary_math("cos", x, out=torch.empty(4, 3))
    with pytest.raises(LayoutError, match="partially overlaps"):
        unary_math("sin", x[:, :3], out=x[:, 1:])
    with pytest.raises(ShapeError, match=r"sin_backward.*\(4, 3\).*input.*\(3, 4\)"):
        unary_math_bwd("sin", torch.randn(4, 3), x)
    with pytest.raises(DTypeError, match="rsqrt_backward.*float16 != float32"):
        unary_math_bwd("rsqrt", x.half(), x)
    with pytest.raises(DTypeError, match="log2_backward.*int64"):
        unary_math_bwd("log2", x.long(), x.long())
