"""Anomaly mode: ``with tg.autograd.detect_anomaly():`` reports the first op that produced
a NaN or Inf, in the forward or the backward, naming the op and the user's source line
where that op was called in the forward."""

from __future__ import annotations

import inspect

import pytest
import torch

import tritongrad as tg
from tritongrad.autograd import anomaly, engine, function
from tritongrad.ops.loss import cross_entropy
from tritongrad.ops.matmul import linear

detect_anomaly = getattr(tg.autograd, "detect_anomaly", anomaly.detect_anomaly)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy: 0/0 in the interpreter


def leaf(values):
    return tg.tensor(values, requires_grad=True)


def _line_of(marker: str) -> str:
    """'test_anomaly.py", line N' of the source line holding ``marker`` in this file."""
    lines = inspect.getsource(inspect.getmodule(_line_of)).splitlines()
    number = next(i for i, text in enumerate(lines, 1) if marker in text and "_line_of" not in text)
    return f'test_anomaly.py", line {number}'


def test_forward_reports_first_op_and_user_line():
    x = leaf([1.0, 0.0, 2.0])
    with detect_anomaly():
        a = x * 0.0
        with pytest.raises(anomaly.AnomalyError) as info:
            b = a / a  # FORWARD-NAN
            b.exp()  # propagates the NaN: must not be the one reported
    message = str(info.value)
    assert "Function 'Div' returned nan values in its 0th output (forward)" in message
    assert "from finite inputs" in message
    assert _line_of("# FORWARD-NAN") in message
    assert "b = a / a" in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, tg.TritongradError)


def test_forward_inf_and_already_non_finite_input():
    x = leaf([1.0, 1000.0])
    with detect_anomaly():
        with pytest.raises(anomaly.AnomalyError, match=r"'Exp' returned inf values.*finite"):
            x.exp()
        y = tg.tensor([float("nan"), 1.0])  # user data: no op produced it
        with pytest.raises(anomaly.AnomalyError, match="input 1 already held nan values"):
            x + y


def test_backward_reports_node_and_forward_line():
    x = leaf([0.0, 4.0])  # sqrt is finite at 0, its gradient 1 / (2 sqrt x) is not
    with detect_anomaly():
        y = x.sqrt()  # BACKWARD-INF
        loss = (y * 3.0).sum()
        with pytest.raises(anomaly.AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert "Function 'SqrtBackward' returned inf values in its 0th output." in message
    assert _line_of("# BACKWARD-INF") in message and "y = x.sqrt()" in message
    assert x.grad is None  # the error came before any leaf got a gradient


def test_backward_nan_in_a_model():
    w = tg.tensor([[1.0, -1.0], [2.0, 0.5]], requires_grad=True)
    x = tg.tensor([[0.0, 1.0], [1.0, 1.0]])
    # log(0) = -inf in the forward is allowed here (check_forward=False, torch's behaviour);
    # its gradient 1/0 = inf is the first non-finite value backward produces
    with detect_anomaly(check_forward=False):
        h = linear(x, w)
        z = h * 0.0
        y = z.log()  # LOG-ZERO
        with pytest.raises(anomaly.AnomalyError) as info:
            y.sum().backward()
    message = str(info.value)
    assert "'LogBackward' returned inf values" in message and _line_of("# LOG-ZERO") in message
    assert w.grad is None


def test_forward_check_catches_log_of_zero():
    z = tg.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(anomaly.AnomalyError, match=r"'Log' returned inf"):
        z.log()


def test_cross_entropy_nan_logits_are_reported():
    logits = tg.tensor([[float("nan"), 1.0], [0.5, 0.2]], requires_grad=True)
    with detect_anomaly(), pytest.raises(anomaly.AnomalyError, match="'CrossEntropy' returned nan"):
        cross_entropy(logits, tg.tensor([0, 1]))


def test_no_anomaly_leaves_results_unchanged_and_observers_removed():
    x_values = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]
    results = []
    for mode in (False, True):
        x = tg.tensor(x_values, requires_grad=True)
        if mode:
            with detect_anomaly():
                (x.exp() * x).sum().backward()
        else:
            (x.exp() * x).sum().backward()
        results.append(x.grad.torch().clone())
    assert torch.equal(results[0], results[1])
    assert anomaly._on_apply not in function.apply_observers
    assert anomaly._on_backward not in engine.backward_observers
    assert not anomaly.is_anomaly_enabled()


def test_without_anomaly_mode_nan_passes_silently():
    x = leaf([0.0])
    assert torch.isnan((x / x).torch()).all()  # no error: the mode costs nothing when off


def test_node_created_before_the_mode_has_no_trace():
    x = leaf([0.0, 1.0])
    y = x.sqrt()
    with detect_anomaly(), pytest.raises(anomaly.AnomalyError, match="no forward trace"):
        y.sum().backward()


def test_decorator_and_nesting():
    @detect_anomaly()
    def step(t):
        with detect_anomaly():
            inner = t * 1.0
        return inner / 0.0

    with pytest.raises(anomaly.AnomalyError, match="'ScalarOp' returned inf"):
        step(leaf([1.0]))
    assert not anomaly.is_anomaly_enabled() and not function.apply_observers


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_nonfinite_flag_kernel(dtype):
    from tritongrad.kernels.finite import INF_BIT, NAN_BIT, nonfinite_code

    x = torch.randn(37, 50).to(dtype)
    x[0, 0] = torch.finfo(dtype).max  # large but finite
    assert nonfinite_code(x) == 0
    x[3, 7] = float("nan")
    assert nonfinite_code(x.T) == NAN_BIT  # read through strides
    x[30, 49] = float("-inf")
    assert nonfinite_code(x) == NAN_BIT | INF_BIT
    assert nonfinite_code(x[:, ::3]) == 0  # the slice skips both columns 7 and 49
    assert nonfinite_code(torch.full((1,), float("inf"), dtype=dtype).expand(4, 6)) == INF_BIT
    assert nonfinite_code(torch.tensor([1, 2])) == 0 and nonfinite_code(x[:0]) == 0
