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
