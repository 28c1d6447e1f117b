"""activation_fwd / activation_bwd against torch: tanh, sigmoid, GELU both forms and SiLU
in depth (views, extremes), then Mish and the parametrized leaky ReLU, ELU, softplus and
hardtanh (special values, kinks, parameters)."""

import pytest
import torch
import torch.nn.functional as F

import tritongrad
from tritongrad.kernels._checks import DeviceError, DTypeError, ShapeError
from tritongrad.kernels.activation import (
    ACTIVATION_BLOCK,
    ACTIVATIONS,
    PARAMS,
    SAVES_OUTPUT,
    activation_bwd,
    activation_fwd,
)
from tritongrad.testing.compare import assert_close

DEVICE = tritongrad.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]

FORWARD = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}
# torch's own backward formulas, fed the tensor our backward reads (y or x)
BACKWARD = {
    "tanh": torch.ops.aten.tanh_backward,
    "sigmoid": torch.ops.aten.sigmoid_backward,
    "gelu": lambda g, x: torch.ops.aten.gelu_backward(g, x, approximate="none"),
    "gelu_tanh": lambda g, x: torch.ops.aten.gelu_backward(g, x, approximate="tanh"),
    "silu": torch.ops.aten.silu_backward,
}
SMOOTH = tuple(FORWARD)  # the activations without parameters tested in depth below


def views(dtype):
    """Contiguous, 1-row, several-block, transposed, sliced, permuted, expanded, scalar and
    empty inputs, at 3 * randn so the tails saturate."""
    def r(*shape):
        return (torch.randn(*shape, device=DEVICE) * 3.0).to(dtype)

    return {
        "contiguous": r(33, 100),
        "one-row": r(1, 129),
        "several-blocks": r(ACTIVATION_BLOCK + 7),
        "transposed": r(7, 33).T,
        "sliced": r(9, 40, 3)[1::2, ::3, 1],
        "3d-permuted": r(3, 5, 7).permute(2, 0, 1),
        "expanded": r(1, 33).expand(5, 33),
        "scalar": r(()),
        "empty": r(0, 4),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", SMOOTH)
def test_fwd_and_bwd_match_torch(op, dtype):
    torch.manual_seed(0)
    for name, x in views(dtype).items():
        y = activation_fwd(x, op)
        assert y.is_contiguous() and y.shape == x.shape and y.dtype == dtype, name
        expected = FORWARD[op](x)
        assert_close(y, expected, dtype=dtype, name=f"{name} output")
        grad_y = torch.randn(x.shape, device=DEVICE).to(dtype)
        grad_y = grad_y.T.contiguous().T if grad_y.dim() == 2 else grad_y  # other strides
        saved = expected if SAVES_OUTPUT[op] else x  # torch's output: judge the backward alone
        assert_close(activation_bwd(grad_y, saved, op), BACKWARD[op](grad_y, saved),
                     dtype=dtype, name=f"{name} grad")


INF, NAN = float("inf"), float("nan")
# The interpreter's numpy warns on the IEEE inf * 0 and overflow these inputs are about.
IEEE_WARNINGS = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                           "ignore:invalid value encountered:RuntimeWarning",
                                           "ignore:divide by zero encountered:RuntimeWarning")
EXTREMES = [-INF, INF, NAN, -1e20, -1000.0, -100.0, -50.0, -40.0, -20.0, -5.0, -0.6, -0.5,
            -1e-3, -1e-30, -0.0, 0.0, 1e-30, 1e-3, 0.5, 0.6, 5.0, 20.0, 40.0, 50.0, 100.0,
            1000.0, 1e20]


def float64_truth(op, x):
    """torch in float64 on x's values, as (y, dy/dx), rounded to x's dtype. Where torch's
    own lower-precision CPU kernels overflow (gelu(inf) gives NaN in fp32/bf16; the
    gelu_tanh gradient at |x| = 1e20 squares x to inf in fp32) float64 gives the limit."""
    x64 = x.to(torch.float64).requires_grad_()
    y64 = FORWARD[op](x64)
    (grad64,) = torch.autograd.grad(y64.sum(), x64)
    return y64.detach().to(x.dtype), grad64.to(x.dtype)


@IEEE_WARNINGS
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", SMOOTH)
def test_large_magnitudes_infinities_and_nan(op, dtype):
    x = torch.tensor(EXTREMES, device=DEVICE).to(dtype)
    y = activation_fwd(x, op)
    expected_y, expected_grad = float64_truth(op, x)
    assert_close(y, expected_y, dtype=dtype)
    grad = activation_bwd(torch.ones_like(x), y if SAVES_OUTPUT[op] else x, op)
    assert_close(grad, expected_grad, dtype=dtype, name="grad")
    # no NaN from overflow: NaN only where torch float64 has one (NaN input; +-inf for gelu
    # and silu, whose x * 0 is NaN in torch too)
    finite = x.isfinite()
    assert not y[finite].isnan().any() and not grad[finite].isnan().any()


def test_float64_computes_in_float64():
    """The gradcheck path: fp64 in, fp64 math (erf, exp and the tanh series), fp64 out."""
    x = (torch.randn(7, 33, device=DEVICE) * 3.0).double().T
    grad_y = torch.randn(x.shape, device=DEVICE).double()
    for op in SMOOTH:
        y = activation_fwd(x, op)
        assert y.dtype == torch.float64
        assert_close(y, FORWARD[op](x), dtype=torch.float64, name=op)
        saved = y if SAVES_OUTPUT[op] else x
        assert_close(activation_bwd(grad_y, saved, op), BACKWARD[op](grad_y, saved),
                     dtype=torch.float64, name=f"{op} grad")


@IEEE_WARNINGS
def test_torch_float32_agrees_away_from_its_overflows():
    """The float64 truth above is torch's own float32 result too, except at the two points
    where torch's float32 CPU kernels overflow to NaN and we give the limit."""
    x = torch.tensor(EXTREMES, device=DEVICE)
    for op in SMOOTH:
        expected, ours = FORWARD[op](x), activation_fwd(x, op)
        known = (x == INF) if op == "gelu" else torch.zeros_like(x, dtype=torch.bool)
        assert_close(ours[~known], expected[~known], dtype=torch.float32, name=op)
        assert expected[known].isnan().all() and (ours[known] == INF).all()
    x_grad = x.clone().requires_grad_()
    (torch_grad,) = torch.autograd.grad(F.gelu(x_grad, approximate="tanh").sum(), x_grad)
    ours = activation_bwd(torch.ones_like(x), x, "gelu_tanh")
    big = x.abs() == 1e20
    assert torch_grad[big].isnan().all() and ours[big].tolist() == [0.0, 1.0]
    assert_close(ours[~big], torch_grad[~big], dtype=torch.float32, name="gelu_tanh grad")


@IEEE_WARNINGS
def test_nan_gradient_and_signed_zero_like_torch():
    x = torch.tensor([-30.0, -1.0, 0.0, 2.0, 30.0, -0.0], device=DEVICE)
    grad_y = torch.tensor([NAN, 1.0, NAN, NAN, NAN, 1.0], device=DEVICE)
    for op in SMOOTH:
        y = activation_fwd(x, op)
        saved = y if SAVES_OUTPUT[op] else x
        got, want = activation_bwd(grad_y, saved, op), BACKWARD[op](grad_y, saved)
        assert torch.equal(got.isnan(), want.isnan()), op
        # tanh(-0) = -0 and gelu(-0) = -0 as torch; sigmoid(-0) = 0.5
        assert torch.equal(y[-1:].signbit(), FORWARD[op](x[-1:]).signbit()), op


def test_tanh_small_arguments_keep_relative_accuracy():
    """The Taylor branch (|x| < 0.55): tanh(x) / x stays right where 1 - e^-2|x| cancels."""
    x = torch.tensor([1e-30, -1e-8, 1e-4, -3e-3, 0.1, -0.3, 0.5499, 0.55, -0.5501], device=DEVICE)
    expected = torch.tanh(x.double())
    got = activation_fwd(x, "tanh").double()
    assert ((got - expected).abs() <= 2 * torch.finfo(torch.float32).eps * expected.abs()).all()


def test_tanh_small_arguments_keep_relative_accuracy_in_float64():
    """fp64 takes the series below |x| = 0.1: before, (1 - e^-2|x|) / (1 + e^-2|x|) gave
    tanh(1e-17) = 0, tanh(1e-12) off by 2.2e-5 relative (the fp64 tolerance's atol hid it)."""
    x = torch.tensor([1e-300, -1e-20, 1e-17, -1e-12, 1e-9, 1e-6, -1e-3, 0.05, 0.0999, 0.1,
                      -0.3, 0.54, -0.0], dtype=torch.float64, device=DEVICE)
    expected = torch.tanh(x)
    for op, got in (("tanh", activation_fwd(x, "tanh")),
                    ("gelu_tanh", activation_fwd(x, "gelu_tanh"))):
        if op == "gelu_tanh":
            expected = F.gelu(x, approximate="tanh")
        assert ((got - expected).abs() <= 4 * torch.finfo(torch.float64).eps
                * expected.abs()).all(), (op, got, expected)
        assert torch.equal(got.signbit(), expected.signbit()), op


def test_bad_inputs():
    x = torch.randn(3, 4, device=DEVICE)
    with pytest.raises(DTypeError, match="tanh: input has dtype int64"):
        activation_fwd(x.long(), "tanh")
    with pytest.raises(DeviceError, match="gelu: .*meta"):
        activation_fwd(torch.empty(3, 4, device="meta"), "gelu")
    with pytest.raises(ShapeError, match=r"silu_backward.*\(4, 3\).*input.*\(3, 4\)"):
        activation_bwd(torch.randn(4, 3, device=DEVICE), x, "silu")
    with pytest.raises(DTypeError, match="sigmoid_backward.*float16 != float32"):
        activation_bwd(x.half(), x, "sigmoid")
    with pytest.raises(DeviceError, match="tanh_backward.*output.*meta"):
        activation_bwd(x, torch.empty(3, 4, device="meta"), "tanh")
    with pytest.raises(ValueError, match="unknown op 'relu6'"):
        activation_fwd(x, "relu6")


# --- Mish, leaky ReLU, ELU, softplus, hardtanh ---------------------------------------------

# (op, kernel params, torch function of x): the defaults, and parameters that move the kinks
PARAMETRIZED = [
    ("mish", (), F.mish),
    ("leaky_relu", (0.01,), F.leaky_relu),
    ("leaky_relu", (-0.3,), lambda x: F.leaky_relu(x, -0.3)),
    ("elu", (1.0,), F.elu),
    ("elu", (0.7,), lambda x: F.elu(x, 0.7)),
    ("softplus", (1.0, 20.0), F.softplus),
    ("softplus", (2.0, 3.0), lambda x: F.softplus(x, beta=2.0, threshold=3.0)),
    ("softplus", (-0.5, 2.0), lambda x: F.softplus(x, beta=-0.5, threshold=2.0)),
    ("hardtanh", (-1.0, 1.0), F.hardtanh),
    ("hardtanh", (0.0, 6.0), F.relu6),
    ("hardtanh", (-0.1, 0.1), lambda x: F.hardtanh(x, -0.1, 0.1)),
]
# the kinks (0, the bounds, beta x == threshold and either side), infinities, NaN, saturation
KINKS = [0.0, -0.0, 1.0, -1.0, 6.0, 0.1, -0.1, 1.5, 1.5000001, 20.0, 20.000002, -4.0, -4.0000005,
         INF, -INF, NAN, 1e-30, -1e-30, 50.0, -50.0, 100.0, -100.0, 1e20, -1e20]


def kink_view(dtype):
    """A 13 x 23 transposed view (strides (1, 13)): 4 * randn, the KINKS in its first row."""
    x = torch.randn(23, 13, dtype=torch.float64) * 4.0
    x[:, 0] = torch.tensor(KINKS[:23], dtype=torch.float64)
    x[0, 1] = KINKS[23]
    return x.to(dtype).to(DEVICE).T


def torch_grad(torch_fn, x, grad):
    leaf = x.detach().clone().requires_grad_(True)
    (result,) = torch.autograd.grad(torch_fn(leaf), leaf, grad)
    return result


@IEEE_WARNINGS
@pytest.mark.parametrize("dtype", DTYPES + [torch.float64], ids=str)
def test_parametrized_activations_match_torch(dtype):
    x = kink_view(dtype)
    grad = torch.randn(x.shape, dtype=torch.float64).to(dtype).to(DEVICE)
    for op, params, torch_fn in PARAMETRIZED:
        name = f"{op}{params}"
        y = activation_fwd(x, op, *params)
        expected = torch_fn(x)
        assert y.dtype == dtype and y.is_contiguous(), name
        assert_close(y, expected, dtype=dtype, name=f"{name} output")
        zeros = expected == 0
        assert torch.equal(y[zeros].signbit(), expected[zeros].signbit()), name
        got_grad = activation_bwd(grad, x, op, *params)
        expected_grad = torch_grad(torch_fn, x, grad)
        if op == "hardtanh":
            # at NaN torch's CPU kernels disagree with themselves: the scalar loop (and CUDA)
            # pass the gradient ((x <= lo || x >= hi) ? 0 : grad), the vectorized loop gives
            # 0. We follow the formula; judged on its own here.
            nan = x.isnan()
            assert torch.equal(got_grad[nan], grad[nan]), name
            expected_grad = torch.where(nan, grad, expected_grad)
        assert_close(got_grad, expected_grad, dtype=dtype, name=f"{name} grad")


def test_gradients_at_the_kinks_are_torchs():
    """leaky ReLU: the slope at 0; ELU: alpha at 0; hardtanh: 0 at both bounds; softplus:
    the curve at beta x == threshold, the line just above."""
    x, ones = torch.tensor([-0.0, 0.0]), torch.ones(2)
    for op, params, torch_fn, slope in (
            ("leaky_relu", (0.2,), lambda t: F.leaky_relu(t, 0.2), 0.2),
            ("elu", (0.7,), lambda t: F.elu(t, 0.7), 0.7)):
        got = activation_bwd(ones, x, op, *params)
        assert torch.equal(got, torch_grad(torch_fn, x, ones)), op
        assert got.tolist() == [pytest.approx(slope)] * 2, op
    bounds = torch.tensor([-1.0, 1.0, 0.0, 6.0])
    assert activation_bwd(torch.ones(4), bounds, "hardtanh", -1.0, 1.0).tolist() == [0, 0, 1, 0]
    assert activation_bwd(torch.ones(4), bounds, "hardtanh", 0.0, 6.0).tolist() == [0, 1, 0, 0]
    at_threshold = torch.tensor([1.0, 1.0000001])  # beta x = 2 = threshold, then just above
    grad = activation_bwd(torch.ones(2), at_threshold, "softplus", 2.0, 2.0)
    assert grad[0] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item()) and grad[1] == 1.0
    y = activation_fwd(at_threshold, "softplus", 2.0, 2.0)
    assert y[0] == pytest.approx(F.softplus(torch.tensor(2.0)).item() / 2)
    assert y[1] == at_threshold[1]
    # signed zeros: leaky ReLU and ELU return x itself at +-0; hardtanh keeps -0.0
    for op, params in (("leaky_relu", (0.1,)), ("elu", (1.0,)), ("hardtanh", (-1.0, 1.0))):
        assert activation_fwd(x, op, *params).signbit().tolist() == [True, False], op


@IEEE_WARNINGS
def test_softplus_and_mish_stay_finite_where_torch_overflows():
    """sp(z) = max(z, 0) + log1p(e^-|z|): where a raised threshold lets beta x pass ~88
    (fp32), torch's log1p(exp(z)) is inf and its backward e^z / (e^z + 1) NaN; ours give
    the limits, x and 1. Mish never has a threshold: both give x and 1 there."""
    x = torch.tensor([100.0, 1000.0, -1000.0])
    y = activation_fwd(x, "softplus", 1.0, 1e4)
    assert y.tolist() == [100.0, 1000.0, 0.0]
    assert torch.isinf(F.softplus(x, threshold=1e4)[:2]).all()
    assert activation_bwd(torch.ones(3), x, "softplus", 1.0, 1e4).tolist() == [1.0, 1.0, 0.0]
    assert activation_fwd(x, "mish").tolist() == F.mish(x).tolist()
    mish_grad = activation_bwd(torch.ones(3), x, "mish")
    assert mish_grad.tolist() == torch_grad(F.mish, x, torch.ones(3)).tolist()


def test_parameter_count_is_checked():
    x = torch.randn(3)
    assert set(PARAMS) == {"leaky_relu", "elu", "softplus", "hardtanh"}
    with pytest.raises(TypeError, match=r"softplus: takes 2 scalar parameter\(s\) \(beta, "
                                        r"threshold\), got 1"):
        activation_fwd(x, "softplus", 1.0)
    with pytest.raises(TypeError, match=r"mish: takes 0 scalar parameter\(s\) \(none\), got 1"):
        activation_bwd(x, x, "mish", 0.5)
    with pytest.raises(DTypeError, match="leaky_relu: input has dtype int64"):
        activation_fwd(x.long(), "leaky_relu", 0.01)
