"""tanh, sigmoid, GELU and SiLU through autograd against torch.autograd: the functional
ops, the Tensor methods, the nn modules, needs_input_grad and the argument errors."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn
from tritongrad.nn import functional as F
from tritongrad.testing import assert_parity, gradcheck
from tritongrad.testing.compare import assert_close

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]

OPS = {
    "tanh": (F.tanh, torch.tanh),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "gelu": (F.gelu, torch.nn.functional.gelu),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"),
                  lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
    "silu": (F.silu, torch.nn.functional.silu),
}


def randn(*shape):
    return torch.randn(*shape, device=DEVICE) * 3.0


CASES = {
    "2d": lambda: randn(33, 100),
    "1-row": lambda: randn(1, 129),
    "transposed": lambda: randn(100, 7).T,
    "sliced": lambda: randn(10, 66)[::3, 1::2],
    "scalar": lambda: randn(()),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", sorted(OPS))
def test_parity_output_and_input_grad(op, dtype):
    ours, theirs = OPS[op]
    torch.manual_seed(0)
    for name, make in CASES.items():
        try:
            assert_parity(ours, theirs, make(), dtype=dtype)
        except AssertionError as error:
            raise AssertionError(f"{op} {name}: {error}") from None


def test_tensor_methods_and_top_level_functions():
    x = randn(7, 13)
    assert_parity(lambda t: t.tanh(), torch.tanh, x, dtype=torch.float32)
    assert_parity(lambda t: t.sigmoid(), torch.sigmoid, x, dtype=torch.float32)
    assert_parity(tg.tanh, torch.tanh, x, dtype=torch.float32)
    assert_parity(tg.sigmoid, torch.sigmoid, x, dtype=torch.float32)


def test_modules_match_torch_modules():
    x = randn(5, 9)
    pairs = [(nn.Tanh(), torch.nn.Tanh()), (nn.Sigmoid(), torch.nn.Sigmoid()),
             (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
             (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
             (nn.SiLU(), torch.nn.SiLU())]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert_parity(ours, theirs, x, dtype=torch.float32)
    # inplace is accepted (and shown) as torch's; the result is a new tensor
    assert repr(nn.SiLU(inplace=True)) == repr(torch.nn.SiLU(inplace=True))
    model = nn.Sequential(nn.Linear(9, 6), nn.GELU(), nn.Linear(6, 4), nn.Tanh())
    assert tuple(model(tg.from_torch(x)).shape) == (5, 4)


def test_fp64_gradcheck():
    """Finite differences in float64 (the parity report's gradcheck runs 3x4 cases too)."""
    x = tg.from_torch(torch.randn(2, 3, dtype=torch.float64, device=DEVICE) * 3.0,
                      requires_grad=True)
    for op, (ours, _) in OPS.items():
        assert gradcheck(ours, (x,), fast_mode=True), op


def test_saves_output_or_input_and_one_launch_each_way():
    """tanh and sigmoid save y (their derivative is a function of y), GELU and SiLU save x.
    Each direction is one launch, and no backward kernel runs for an input that needs no
    gradient (the op has one tensor input, so no node is recorded at all)."""
    for op, (ours, _) in OPS.items():
        x = tg.from_torch(randn(4, 6), requires_grad=True)
        with recorded_launches() as launches:
            y = ours(x)
            (saved,) = y.grad_fn.saved_tensors
            kept = y if op in ("tanh", "sigmoid") else x
            assert saved.torch().data_ptr() == kept.torch().data_ptr(), op
            y.backward(tg.ones_like(y))
        names = [info.kernel_name for info in launches]
        assert names.count("activation_fwd_kernel") == 1, (op, names)
        assert names.count("activation_bwd_kernel") == 1, (op, names)
    x = tg.from_torch(randn(4, 6))
    w = tg.from_torch(randn(4, 6), requires_grad=True)
    with recorded_launches() as launches:
        (F.silu(x) * w).sum().backward()
    assert "activation_bwd_kernel" not in [info.kernel_name for info in launches]
    assert x.grad is None and w.grad is not None


def test_invalid_approximate_is_torch_error():
    x = tg.from_torch(randn(3))
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="foo")
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        nn.GELU(approximate="erf")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_saturated_tails_and_nan_through_autograd():
    x = torch.tensor([-1000.0, -100.0, -40.0, 40.0, 50.0, float("nan")], device=DEVICE)
    for op, (ours, theirs) in OPS.items():
        assert_parity(ours, theirs, x, dtype=torch.float32)


def test_functional_inplace_flags_are_accepted_as_torch_spells_them():
    # F.relu(x, inplace=True) and F.silu(x, inplace=True) are common in torch code; like
    # F.dropout here they return a new tensor with the same values
    ref = torch.randn(3, 5)
    x = tg.from_torch(ref.to(tg.device()))
    for ours, theirs in ((F.relu, torch.nn.functional.relu),
                         (F.silu, torch.nn.functional.silu)):
        got = ours(x, inplace=True).torch().cpu()
        assert_close(got, theirs(ref.clone(), inplace=True), dtype=torch.float32)


# --- leaky ReLU, ELU, softplus, hardtanh, ReLU6, Mish -----------------------------------------

TF = torch.nn.functional
PARAMETRIZED_OPS = {
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.2), lambda t: TF.leaky_relu(t, 0.2)),
    "elu": (lambda t: F.elu(t, alpha=0.5), lambda t: TF.elu(t, alpha=0.5)),
    "softplus": (lambda t: F.softplus(t, beta=2.0, threshold=4.0),
                 lambda t: TF.softplus(t, beta=2.0, threshold=4.0)),
    "hardtanh": (lambda t: F.hardtanh(t, -2.0, 1.5), lambda t: TF.hardtanh(t, -2.0, 1.5)),
    "relu6": (F.relu6, TF.relu6),
    "mish": (F.mish, TF.mish),
}


def odd_view():
    """A 5 x 7 view of 3 * randn with strides (1, 10), clear of the kinks (0, the bounds,
    beta x == threshold) by at least 1e-2."""
    x = randn(14, 5)[::2].T
    for kink in (0.0, -2.0, 1.5, 2.0, 6.0):
        x = torch.where((x - kink).abs() < 1e-2, x + 0.05, x)
    return x


@pytest.mark.parametrize("dtype", DTYPES + [torch.float64], ids=str)
def test_parametrized_parity_output_and_input_grad(dtype):
    x = odd_view()
    for op, (ours, theirs) in PARAMETRIZED_OPS.items():
        try:
            assert_parity(ours, theirs, x, dtype=dtype)
        except AssertionError as error:
            raise AssertionError(f"{op}: {error}") from None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on the infinities
def test_parametrized_defaults_zero_dim_and_special_values():
    special = torch.tensor([0.0, -0.0, 1.0, -1.0, 6.0, 20.0, 20.5, float("inf"), float("-inf"),
                            -30.0, 30.0])
    for ours, theirs in ((F.leaky_relu, TF.leaky_relu), (F.elu, TF.elu),
                         (F.softplus, TF.softplus), (F.hardtanh, TF.hardtanh)):
        assert_parity(ours, theirs, special, dtype=torch.float32)
        assert_parity(ours, theirs, randn(()), dtype=torch.float32)


def test_new_modules_match_torch_modules():
    x = odd_view()
    pairs = [(nn.LeakyReLU(), torch.nn.LeakyReLU()), (nn.ELU(alpha=0.5), torch.nn.ELU(alpha=0.5)),
             (nn.Softplus(), torch.nn.Softplus()), (nn.Softplus(2, 5), torch.nn.Softplus(2, 5)),
             (nn.Hardtanh(), torch.nn.Hardtanh()), (nn.Hardtanh(-2, 3), torch.nn.Hardtanh(-2, 3)),
             (nn.ReLU6(), torch.nn.ReLU6()), (nn.Mish(), torch.nn.Mish())]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert_parity(ours, theirs, x, dtype=torch.float32)
    # inplace=True shows in the repr as torch's (torch's own modules would then write into a
    # leaf that requires grad, so only the repr is compared)
    for ours, theirs in ((nn.LeakyReLU(0.2, True), torch.nn.LeakyReLU(0.2, True)),
                         (nn.ELU(inplace=True), torch.nn.ELU(inplace=True)),
                         (nn.Hardtanh(-2, 3, True), torch.nn.Hardtanh(-2, 3, True)),
                         (nn.ReLU6(inplace=True), torch.nn.ReLU6(True)),
                         (nn.Mish(inplace=True), torch.nn.Mish(inplace=True))):
        assert repr(ours) == repr(theirs)
    assert isinstance(nn.ReLU6(), nn.Hardtanh)
    model = nn.Sequential(nn.Linear(7, 6), nn.LeakyReLU(0.1), nn.Linear(6, 4), nn.ReLU6())
    assert tuple(model(tg.from_torch(x)).shape) == (5, 4)


def test_inplace_flags_give_a_new_tensor_and_leave_the_input():
    """As F.relu here: inplace=True is accepted (torch code passes it) and ignored."""
    ref = torch.randn(3, 5)
    x = tg.from_torch(ref.clone())
    calls = [(lambda t, i: F.leaky_relu(t, 0.1, inplace=i), TF.leaky_relu, (0.1,)),
             (lambda t, i: F.elu(t, inplace=i), TF.elu, ()),
             (lambda t, i: F.hardtanh(t, inplace=i), TF.hardtanh, ()),
             (lambda t, i: F.relu6(t, inplace=i), TF.relu6, ()),
             (lambda t, i: F.mish(t, inplace=i), TF.mish, ())]
    for ours, theirs, args in calls:
        got = ours(x, True)
        assert got is not x
        assert_close(got, theirs(ref.clone(), *args, inplace=True), dtype=torch.float32)
        assert torch.equal(x.torch(), ref)
    layer = nn.LeakyReLU(inplace=True)
    assert layer(x) is not x and torch.equal(x.torch(), ref)


def test_hardtanh_bounds_and_integer_inputs_as_torch():
    x = tg.from_torch(randn(4))
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match=r"max_val \(1\) must be greater than min_val \(2\)"):
        nn.Hardtanh(2, 1)
    assert F.hardtanh(x, 0.5, 0.5).torch().eq(0.5).all()  # equal bounds: allowed, as torch
    with pytest.warns(FutureWarning, match="min_value"):
        assert nn.Hardtanh(min_value=-3.0).min_val == -3.0
    ints = torch.tensor([3, -2, 0, 9])
    for ours, theirs in ((F.hardtanh(tg.from_torch(ints), -1.5, 1.5),
                          TF.hardtanh(ints, -1.5, 1.5)),
                         (F.relu6(tg.from_torch(ints)), TF.relu6(ints))):
        assert ours.dtype == theirs.dtype == torch.int64 and ours.tolist() == theirs.tolist()
    with pytest.raises(TypeError, match="unsigned type with negative limits"):
        F.hardtanh(tg.from_torch(ints.abs().to(torch.uint8)))
    for fn in (F.hardtanh, F.relu6):  # as torch: a bool input is refused, not clamped
        with pytest.raises(TypeError, match="Bool inputs not supported for hardtanh"):
            fn(tg.from_torch(ints > 0))
    for fn in (F.leaky_relu, F.elu, F.softplus, F.mish):
        with pytest.raises(TypeError, match="input has dtype int64"):
            fn(tg.from_torch(ints))


def test_parametrized_fp64_gradcheck():
    x = tg.from_torch(odd_view()[:2, :3].double(), requires_grad=True)
    for op, (ours, _) in PARAMETRIZED_OPS.items():
        assert gradcheck(ours, (x,), fast_mode=True), op
