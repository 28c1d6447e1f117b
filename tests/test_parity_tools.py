"""The parity tools: a planted wrong gradient is caught, at the right place, by
assert_parity, the parity report (FAIL row, non-zero exit), shadow mode (during a
real two-layer training step) and gradcheck; and every correct built-in op passes
all of them.

``CASES`` below is also a case module for the CLI:
``python -m tritongrad parity --cases tests.test_parity_tools --ops planted_transposed_dw``.
"""

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F

import tritongrad as tg
from tritongrad import nn, optim
from tritongrad.autograd import Function, engine, function
from tritongrad.kernels import copy as copy_kernels
from tritongrad.kernels import cross_entropy as ce_kernels
from tritongrad.kernels import elementwise as ew_kernels
from tritongrad.kernels import norm as norm_kernels
from tritongrad.kernels.matmul import matmul as mm
from tritongrad.kernels.reduction import sum as sum_kernel
from tritongrad.ops.copy import Cast
from tritongrad.tensor import Tensor
from tritongrad.testing import ParityError, assert_parity
from tritongrad.testing.cases import (BF16, FP16, FP32, FP64, ParityCase, all_cases, builtin_cases,
                                      randn, select, spec)
from tritongrad.testing.gradcheck import GradcheckError, NoFloat64Error, gradcheck
from tritongrad.testing.parity import random_grad_outputs
from tritongrad.testing.report import format_table, main as report_main, run_report
from tritongrad.testing.shadow import ShadowMismatch, shadow

ROOT = Path(__file__).resolve().parents[1]

# Masked-off lanes of interpreted kernels may divide garbage by zero; no kernel stores it.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# --- planted bugs --------------------------------------------------------------------------------


def _linear_forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    ctx.save_for_backward(x, weight)
    return Tensor._wrap(mm(x._data, weight._data.T, bias=bias._data))


class LinearTransposedWeightGrad(Function):
    """y = x W^T + b whose weight gradient comes out transposed: X^T dY instead of
    dY^T X. With a square W the shape still fits, so only the values are wrong."""

    forward = staticmethod(_linear_forward)
    torch_reference = staticmethod(torch_F.linear)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g = grad._data
        grad_x = mm(g, weight._data)
        grad_w = mm(x._data.T, g)  # planted bug: dW = dY^T X is mm(g.T, x)
        grad_b = sum_kernel(g, (0,))
        return Tensor._wrap(grad_x), Tensor._wrap(grad_w), Tensor._wrap(grad_b)


class LinearScaledInputGrad(Function):
    """y = x W^T + b whose input gradient is off by a factor of 2."""

    forward = staticmethod(_linear_forward)
    torch_reference = staticmethod(torch_F.linear)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g = grad._data
        grad_x = ew_kernels.binary_scalar("mul", mm(g, weight._data), 2.0)  # planted bug
        grad_w = mm(g.T, x._data)
        grad_b = sum_kernel(g, (0,))
        return Tensor._wrap(grad_x), Tensor._wrap(grad_w), Tensor._wrap(grad_b)


class TripleIgnoringGrad(Function):
    """y = 3x whose backward returns 3 everywhere: right only when the incoming gradient is ones."""

    torch_reference = staticmethod(lambda x: x * 3.0)

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return Tensor._wrap(ew_kernels.binary_scalar("mul", x._data, 3.0))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(copy_kernels.full(tuple(grad.shape), 3.0, grad.dtype, grad.device))


BAD_INPUT = {LinearTransposedWeightGrad: 1, LinearScaledInputGrad: 0}


def linear_args(s, d, g):
    return randn(g, s.shapes[0]), randn(g, s.shapes[1]), randn(g, s.shapes[2])


SQUARE = spec((5, 6), (6, 6), (6,))
CASES = [
    ParityCase("planted_transposed_dw", LinearTransposedWeightGrad, linear_args, (SQUARE,),
               dtypes=(FP32, FP16, BF16, FP64)),
    ParityCase("planted_scaled_dx", LinearScaledInputGrad, linear_args, (SQUARE,),
               dtypes=(FP32, FP16, BF16, FP64)),
]


def square_linear_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return linear_args(SQUARE, FP32, g)


# --- assert_parity -------------------------------------------------------------------------------


@pytest.mark.parametrize("fn_cls", [LinearTransposedWeightGrad, LinearScaledInputGrad])
def test_assert_parity_names_the_wrong_gradient_and_its_worst_element(fn_cls):
    bad = BAD_INPUT[fn_cls]
    x, w, b = square_linear_inputs()
    with pytest.raises(ParityError) as info:
        assert_parity(fn_cls.apply, torch_F.linear, x, w, b)
    failed = [c for c in info.value.comparisons if not c.ok]
    assert [c.name for c in failed] == [f"grad of input {bad}"]  # forward and the rest pass
    worst = failed[0]

    # The same gradients in torch, on the device assert_parity ran torch on: the
    # reference's, and the planted bug's
    leaves = [t.to(tg.device(), copy=True).requires_grad_(True) for t in (x, w, b)]
    out = torch_F.linear(*leaves)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1234),
                           device="cpu").to(out.device)  # as random_grad_outputs draws it
    ref = torch.autograd.grad(out, leaves, grad_out)[bad]
    buggy = ref.T if fn_cls is LinearTransposedWeightGrad else 2 * ref
    excess = (buggy - ref).abs() - (1e-5 + 1e-5 * ref.abs())
    expected_index = tuple(int(i) for i in np.unravel_index(int(excess.argmax()), ref.shape))
    assert worst.worst_index == expected_index
    message = str(info.value)
    assert f"grad of input {bad}: worst element at index {expected_index}" in message
    assert f"torch={float(ref[expected_index])!r}" in message
    assert "ours=" in message and "abs err" in message and "rel err" in message
    assert "tolerance rtol=1e-05, atol=1e-05" in message


def test_assert_parity_uses_the_dtype_row_of_the_table():
    x, w, b = square_linear_inputs()
    with pytest.raises(ParityError, match=r"tolerance rtol=0.05, atol=0.01"):
        assert_parity(LinearScaledInputGrad.apply, torch_F.linear, x, w, b, dtype=torch.bfloat16)


def test_default_grad_outputs_catch_a_backward_that_ignores_its_gradient():
    x = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)  # numpy inputs work too
    ones = [torch.ones(3, 4)]
    assert_parity(TripleIgnoringGrad.apply, lambda t: t * 3.0, x, grad_outputs=ones)  # fooled
    with pytest.raises(ParityError, match="grad of input 0"):
        assert_parity(TripleIgnoringGrad.apply, lambda t: t * 3.0, x)


def test_assert_parity_passes_the_correct_op():
    x, w, b = square_linear_inputs()
    comparisons = assert_parity(nn.functional.linear, torch_F.linear, x, w, b)
    assert [c.name for c in comparisons] == ["output 0", "grad of input 0", "grad of input 1",
                                             "grad of input 2"]


def test_assert_parity_takes_cpu_inputs_whatever_the_device():
    # a user's torch tensors may be on the CPU while tritongrad computes on cuda: torch's
    # side then runs on tritongrad's device, on the same values
    x, grad = torch.randn(3, 4, device="cpu"), torch.randn(3, 4, device="cpu")
    comparisons = assert_parity(lambda t: t * 2.0, lambda t: t * 2.0, x, grad_outputs=[grad])
    assert [c.name for c in comparisons] == ["output 0", "grad of input 0"]


def test_default_grad_outputs_follow_each_output():
    outputs = (torch.zeros(2, 3, device="meta", requires_grad=True),  # a device of its own
               torch.zeros(4, dtype=torch.float16, requires_grad=True),
               torch.zeros(2))  # needs no gradient
    grads = random_grad_outputs(outputs)
    assert [(g.device, g.dtype, g.shape) for g in grads[:2]] == [
        (o.device, o.dtype, o.shape) for o in outputs[:2]]
    assert grads[2] is None


# --- the parity report ---------------------------------------------------------------------------


def test_report_gives_fail_rows_naming_the_wrong_gradient():
    rows = run_report(cases=CASES, dtypes=[FP32, FP64])
    assert [(r.op, r.dtype, r.status) for r in rows] == [
        ("planted_transposed_dw", "float32", "FAIL"), ("planted_transposed_dw", "float64", "FAIL"),
        ("planted_scaled_dx", "float32", "FAIL"), ("planted_scaled_dx", "float64", "FAIL")]
    for row in rows:
        bad = 1 if row.op == "planted_transposed_dw" else 0
        assert [m.ok for m in row.outputs] == [True]
        assert [m.ok for m in row.grads] == [i != bad for i in range(3)]
    table = format_table(rows)
    line = next(t for t in table.splitlines() if t.startswith("planted_transposed_dw"))
    assert line.endswith("FAIL") and "d1 " in line and "!" in line.split("d1 ")[1].split()[0]
    assert "0 passed, 4 failed" in table
    assert "grad of input 1: worst element at index" in table


def test_report_cli_exits_nonzero_on_the_planted_bug(tmp_path):
    path = tmp_path / "parity.json"
    result = subprocess.run(
        [sys.executable, "-m", "tritongrad", "parity", "--cases", "tests.test_parity_tools",
         "--ops", "planted_transposed_dw,linear", "--dtypes", "float32", "--json", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(t.startswith("planted_transposed_dw") and t.endswith("FAIL") for t in lines)
    assert all(t.endswith("PASS") for t in lines if t.startswith("linear "))
    report = json.loads(path.read_text())
    planted = [r for r in report["rows"] if r["op"] == "planted_transposed_dw"]
    assert [r["status"] for r in planted] == ["FAIL"]
    assert [g["ok"] for g in planted[0]["grads"]] == [True, False, True]
    assert report["failed"] == 1 and report["passed"] == 3  # linear: 3 shapes


def test_report_cli_exits_zero_when_every_row_passes(capsys):
    assert report_main(["--ops", "mse_loss,relu", "--quiet"]) == 0
    assert "15 passed, 0 failed" in capsys.readouterr().out  # (3 + 2 shapes) x 3 dtypes


def test_report_rejects_unknown_ops(capsys):
    assert report_main(["--ops", "no_such_op"]) == 2
    assert "no parity case for ['no_such_op']" in capsys.readouterr().err
    with pytest.raises(LookupError):
        select(CASES, ["nope"])


def test_env_var_adds_case_modules(monkeypatch):
    monkeypatch.setenv("TRITONGRAD_PARITY_CASES", "tests.test_parity_tools")
    names = {c.name for c in all_cases()}
    assert {"planted_transposed_dw", "planted_scaled_dx", "linear"} <= names


def test_report_passes_every_builtin_op():
    """Every case and shape in fp32, and the first shape in fp16 and bf16 (the
    whole default report, ``python -m tritongrad parity``, takes ~3x longer)."""
    cases = builtin_cases()
    rows = run_report(cases=cases, dtypes=[FP32])
    rows += run_report(cases=[dataclasses.replace(c, specs=c.specs[:1]) for c in cases],
                       dtypes=[FP16, BF16])
    failed = [f"{r.op} {r.dtype} {r.shape}: {r.error or [m.detail for m in r.grads + r.outputs]}"
              for r in rows if r.status != "PASS"]
    assert not failed, failed
    assert {r.op for r in rows} == {c.name for c in builtin_cases()}


def test_declared_dtypes_are_truthful():
    """A case without float64 in its dtypes really has no float64 kernels (the
    DTypeError gradcheck turns into NoFloat64Error), and skips in the report."""
    for case in builtin_cases():
        if FP64 in case.dtypes:
            continue
        rows = run_report(cases=[case], dtypes=[FP64])
        assert {r.status for r in rows} == {"SKIP"}
        with pytest.raises(NoFloat64Error, match=case.function.__name__):
            gradcheck(case.tg_callable(), case.args(case.smallest_spec(), FP64))


# --- shadow mode ---------------------------------------------------------------------------------


class PlantedLinear(nn.Linear):
    """nn.Linear running a planted-bug Function."""

    def __init__(self, features: int, function_cls: type):
        super().__init__(features, features)
        self.function_cls = function_cls

    def forward(self, x):
        return self.function_cls.apply(x, self.weight, self.bias)


def two_layer_model(bad_layer: int | None, function_cls: type = LinearTransposedWeightGrad):
    """6 -> 6 -> 4 features. The planted layer (square) is layer 0 or 1."""
    tg.manual_seed(0)
    first = PlantedLinear(6, function_cls) if bad_layer == 0 else nn.Linear(6, 6)
    if bad_layer == 1:
        return nn.Sequential(first, nn.ReLU(), PlantedLinear(6, function_cls),
                                nn.Linear(6, 4))
    return nn.Sequential(first, nn.ReLU(), nn.Linear(6, 4))


def training_step(model, sh_kwargs=None):
    g = torch.Generator().manual_seed(3)
    x = tg.from_torch(torch.randn(8, 6, generator=g))
    target = tg.from_torch(torch.randint(0, 4, (8,), generator=g))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    with shadow(**(sh_kwargs or {})) as sh:
        loss = nn.functional.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()
    return sh


@pytest.mark.parametrize("bad_layer,function_cls,expected_ops", [
    (0, LinearTransposedWeightGrad,
     ["LinearTransposedWeightGrad", "ReLU", "Linear", "CrossEntropy"]),
    (1, LinearTransposedWeightGrad,
     ["LinearReLU", "LinearTransposedWeightGrad", "Linear", "CrossEntropy"]),
    (1, LinearScaledInputGrad, ["LinearReLU", "LinearScaledInputGrad", "Linear", "CrossEntropy"]),
])
def test_shadow_names_the_planted_node_in_a_training_step(bad_layer, function_cls, expected_ops):
    model = two_layer_model(bad_layer, function_cls)
    with pytest.raises(ShadowMismatch) as info:
        training_step(model)
    record = info.value.record
    assert record.op == function_cls.__name__ and record.index == bad_layer
    assert record.status == "FAIL" and all(c.ok for c in record.forward)
    assert [c.name for c in record.failures()] == [f"grad of input {BAD_INPUT[function_cls]}"]
    message = str(info.value)
    assert f"node #{bad_layer} {function_cls.__name__}" in message and "backward" in message
    assert "inputs [8x6, 6x6, 6], dtype float32" in message
    assert "test_parity_tools.py" in message  # where the model ran the op


def test_shadow_report_table_lists_every_node():
    model = two_layer_model(1)
    sh = training_step(model, {"on_mismatch": "ignore"})
    assert [r.op for r in sh.records] == ["LinearReLU", "LinearTransposedWeightGrad", "Linear",
                                          "CrossEntropy"]
    assert [r.status for r in sh.records] == ["ok", "FAIL", "ok", "ok"]
    assert all(r.backward_index is not None for r in sh.records)
    assert [r.backward_index for r in sh.records] == [3, 2, 1, 0]  # backward runs newest first
    table = sh.table()
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["#", "op", "inputs", "dtype"]
    bad_line = next(line for line in lines if "LinearTransposedWeightGrad" in line)
    assert bad_line.endswith("FAIL") and "d1 " in bad_line
    assert "4 nodes: 3 ok, 1 failed, 0 unchecked" in table


def test_shadow_passes_a_correct_training_step():
    model = two_layer_model(None)
    sh = training_step(model)  # raises on any mismatch
    assert sh.ok and not sh.unchecked
    assert [r.op for r in sh.records] == ["LinearReLU", "Linear", "CrossEntropy"]
    assert all(r.forward and r.backward and r.status == "ok" for r in sh.records)


class NoReference(Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return Tensor._wrap(ew_kernels.binary_scalar("mul", x._data, 2.0))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(ew_kernels.binary_scalar("mul", grad._data, 2.0))


def test_shadow_lists_nodes_without_a_reference_as_unchecked(capsys):
    x = tg.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    with shadow() as sh:
        (NoReference.apply(x) * 3.0).sum().backward()
    assert [(r.op, r.status) for r in sh.records] == [("NoReference", "unchecked"),
                                                      ("ScalarOp", "ok"), ("Sum", "ok")]
    assert sh.ok
    text = sh.report()
    assert text in capsys.readouterr().out
    assert "1 unchecked" in text and "unchecked ops: NoReference" in text


class ForwardOffByOne(Function):
    """A forward that adds 1: caught in forward, before any backward."""

    torch_reference = staticmethod(lambda x: x * 1.0)

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return Tensor._wrap(ew_kernels.binary_scalar("add", x._data, 1.0))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad


def test_shadow_stop_at_first_raises_inside_the_faulty_forward():
    x = tg.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    with shadow(stop_at_first=True) as sh:
        y = x * 2.0
        with pytest.raises(ShadowMismatch, match=r"\(forward\) at node #1 ForwardOffByOne"):
            ForwardOffByOne.apply(y)
    assert sh.first_failure.op == "ForwardOffByOne"


def test_shadow_warn_mode_and_observers_are_removed():
    assert not function.apply_observers and not engine.backward_observers
    model = two_layer_model(0)
    with pytest.warns(UserWarning, match="LinearTransposedWeightGrad"):
        training_step(model, {"on_mismatch": "warn"})
    assert not function.apply_observers and not engine.backward_observers
    with pytest.raises(ZeroDivisionError):  # the block's own error wins, observers still go
        with shadow():
            1 / 0
    assert not function.apply_observers and not engine.backward_observers


def test_shadow_passes_every_builtin_op():
    """One fp32 row of every case, as a graph under shadow mode."""
    from tritongrad.testing.parity import _to_torch_input

    for case in builtin_cases():
        args = [_to_torch_input(a, None, tg.device()) for a in case.args(case.specs[0], FP32)]
        tg_args = [tg.from_torch(a, requires_grad=a.is_floating_point())
                   if isinstance(a, torch.Tensor) else a for a in args]
        with shadow() as sh:
            out = case.tg_callable()(*tg_args)
            out = out if isinstance(out, tuple) else (out,)
            out[0].backward(tg.ones_like(out[0]))
        assert [r.status for r in sh.records][:1] == ["ok"], case.name
        assert sh.records[0].backward, case.name


# --- gradcheck -----------------------------------------------------------------------------------


def small_square_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)


@pytest.mark.parametrize("fn_cls", [LinearTransposedWeightGrad, LinearScaledInputGrad])
def test_gradcheck_catches_the_planted_bug(fn_cls):
    bad = BAD_INPUT[fn_cls]
    with pytest.raises(GradcheckError, match=f"output 0 with respect to input {bad}: worst at "
                                             r"d output\(\d+, \d+\) / d input\("):
        gradcheck(fn_cls.apply, small_square_inputs())
    assert gradcheck(fn_cls.apply, small_square_inputs(), fast_mode=True,
                     raise_exception=False) is False


def test_gradcheck_passes_correct_ops_in_full_mode():
    assert gradcheck(nn.functional.linear, small_square_inputs())
    assert gradcheck(lambda a, b: (a * b).exp().sum(dim=1), (np.ones((2, 3)) * 0.3,
                                                              np.arange(3.0)))


def test_gradcheck_passes_every_builtin_op_with_float64_kernels():
    checked = []
    for case in builtin_cases():
        if FP64 not in case.dtypes or case.function is Cast:
            continue  # a cast's output is another dtype: nothing to difference in float64
        assert gradcheck(case.tg_callable(), case.args(case.smallest_spec(), FP64),
                         fast_mode=True), case.name
        checked.append(case.function.__name__)
    assert {"Add", "Mul", "Div", "Sum", "Mean", "MatMul", "Linear", "LinearReLU"} <= set(checked)


class BackwardWithoutFloat64(Function):
    """Forward in float64 (a copy); backward calls a kernel that has no float64 path."""

    torch_reference = staticmethod(lambda x: x.clone())

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return Tensor._wrap(copy_kernels.copy(x._data))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._wrap(norm_kernels.norm_fwd(grad._data, 2.0, None, False))


def test_gradcheck_says_which_op_has_no_float64_path(monkeypatch):
    # cross_entropy and norm have fp64 kernels now: take their fp64 away, as an op without
    # one would be
    monkeypatch.setattr(ce_kernels, "LOGIT_DTYPES", ce_kernels.LOGIT_DTYPES[:3])
    monkeypatch.setattr(norm_kernels, "NORM_DTYPES", norm_kernels.NORM_DTYPES[:3])
    logits, labels = np.zeros((3, 4)), np.array([0, 1, 3])
    with pytest.raises(NoFloat64Error, match=r"op CrossEntropy \(forward\) has no float64 path"):
        gradcheck(lambda x, t: nn.functional.cross_entropy(x, t), (logits, labels))
    with pytest.raises(NoFloat64Error,
                       match=r"op BackwardWithoutFloat64 \(backward\) has no float64 path"):
        gradcheck(BackwardWithoutFloat64.apply, (np.ones(3),))


def test_gradcheck_runs_without_torch_math(monkeypatch):
    """The differences are numpy's and the values our kernels': torch's math ops are
    never called (only allocation and host copies)."""
    calls = []
    for name in ("sub", "add", "mul", "div", "matmul"):
        original = getattr(torch.Tensor, f"__{name}__", None)
        if original is None:
            continue

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, f"__{name}__", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert gradcheck(nn.functional.linear, small_square_inputs())
    assert calls == []
