"""Regression tests from the review of the user-facing library (nn, optim, parity tools,
perf harness): each failed before its fix."""

from pathlib import Path

import pytest
import torch

import tritongrad as tg
from tritongrad import nn
from tritongrad.autograd import Function
from tritongrad.kernels import copy as copy_kernels
from tritongrad.optim import SGD
from tritongrad.tensor import Tensor
from tritongrad.testing import ParityError, assert_close, assert_parity
from tritongrad.testing.shadow import ShadowMismatch, shadow

DEVICE = tg.device()
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# --- optim ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_loads_a_torch_sgd_state_dict_and_continues_exactly(nesterov):
    # torch.optim.SGD keeps only momentum_buffer (no step count): loading its state used to
    # make the next step() fail with KeyError: 'step'.
    kwargs = dict(lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    values = [torch.randn(4, 3), torch.randn(5)]
    theirs = [v.clone().requires_grad_() for v in values]
    topt = torch.optim.SGD(theirs, foreach=False, **kwargs)
    for _ in range(3):
        for p in theirs:
            p.grad = torch.randn(p.shape)
        topt.step()
    ours = [tg.from_torch(p.detach().clone().to(DEVICE), requires_grad=True) for p in theirs]
    opt = SGD(ours, **kwargs)
    opt.load_state_dict(topt.state_dict())
    for _ in range(3):
        for p, ref in zip(ours, theirs):
            grad = torch.randn(ref.shape)
            ref.grad = grad.clone()
            p.grad = tg.from_torch(grad.to(DEVICE))
        topt.step()
        opt.step()
    for p, ref in zip(ours, theirs):
        assert_close(p, ref.detach(), dtype=torch.float32)


def test_sgd_state_with_a_none_momentum_buffer_starts_one():
    # torch.optim.SGD (before 2.x's cleanup) saved momentum_buffer=None for parameters that
    # had no buffer yet; such a state used to fail the next step(). The buffer then starts
    # from the gradient, as in a fresh torch run.
    theirs = torch.randn(6).requires_grad_()
    topt = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, foreach=False)
    ours = tg.from_torch(theirs.detach().clone().to(DEVICE), requires_grad=True)
    opt = SGD([ours], lr=0.1, momentum=0.9)
    opt.load_state_dict({"state": {0: {"momentum_buffer": None}},
                         "param_groups": topt.state_dict()["param_groups"]})
    for _ in range(2):
        grad = torch.randn(6)
        theirs.grad = grad.clone()
        ours.grad = tg.from_torch(grad.to(DEVICE))
        topt.step()
        opt.step()
    assert_close(ours, theirs.detach(), dtype=torch.float32)


# --- nn.Sequential fusion ------------------------------------------------------------------------


def test_sequential_does_not_fuse_past_a_patched_forward():
    # ``module.forward = fn`` on an instance changes what module(x) runs; the fused
    # Linear+ReLU launch used to skip it.
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    x = tg.randn(3, 4)
    relu = model[1]
    relu.forward = lambda t: nn.functional.relu(t) * 3.0
    expected = model[2](relu(model[0](x)))
    assert_close(model(x), expected.torch(), dtype=torch.float32)

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    linear = model[0]
    linear.forward = lambda t: nn.functional.linear(t, linear.weight, linear.bias) - 1.0
    expected = nn.functional.relu(linear(x))
    assert_close(model(x), expected.torch(), dtype=torch.float32)


# --- parity tools: dtype ---------------------------------------------------------------------------


def test_assert_parity_fails_on_a_wrong_output_dtype():
    # Values within tolerance, dtype wrong (bf16 in, fp32 out): torch.testing would fail it.
    x = torch.randn(3, 4).bfloat16()
    with pytest.raises(ParityError, match="output 0: dtype float32 != torch's bfloat16"):
        assert_parity(lambda t: (t * 2.0).float(), lambda t: t * 2.0, x)
    assert_parity(lambda t: t * 2.0, lambda t: t * 2.0, x)


class DoubleInFloat32(Function):
    """y = 2x, computed and returned in fp32 whatever x's dtype (the planted bug)."""

    torch_reference = staticmethod(lambda x: x * 2.0)

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.dtype = x.dtype
        return Tensor._wrap(copy_kernels.copy(x._data, torch.float32) * 2.0)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return (Tensor._wrap(copy_kernels.copy(grad._data, ctx.dtype) * 2.0),)


def test_shadow_flags_a_wrong_output_dtype():
    x = tg.from_torch(torch.randn(5).to(DEVICE).half(), requires_grad=True)
    with pytest.raises(ShadowMismatch, match="dtype float32 != torch's float16"):
        with shadow() as sh:
            DoubleInFloat32.apply(x).sum().backward()
    assert sh.first_failure.op == "DoubleInFloat32"


# --- profiler ------------------------------------------------------------------------------------


def test_a_finished_profile_does_not_keep_the_graph_alive():
    # The profile remembered the last op's entry, which holds its autograd node: a profile
    # kept for its table pinned the whole forward graph and its saved activations.
    import gc
    import weakref

    weight = tg.randn(16, 8, requires_grad=True)
    with tg.profiler.profile() as prof:
        hidden = nn.functional.linear(tg.randn(4, 8), weight)
        out = nn.functional.relu(hidden)
    nodes = [weakref.ref(hidden.grad_fn), weakref.ref(out.grad_fn)]
    del hidden, out
    gc.collect()
    assert all(node() is None for node in nodes)
    assert prof.count(op="Linear", phase="forward") == 1  # the results are still there
    assert "ReLU" in prof.table()


# --- perf harness ----------------------------------------------------------------------------------


def test_perf_run_reports_what_it_measured_when_interrupted(tmp_path, monkeypatch):
    # gpu_check.sh stops perf/run.py with SIGINT at its time limit: the reports must still
    # hold the finished benchmarks, the interrupted one as an error and the rest as skipped.
    from perf import run as perf_run

    def measured(h):
        h.add("fake", "case", "ms", 1.0, 2.0, higher_is_better=False)

    def interrupted(h):
        raise KeyboardInterrupt

    monkeypatch.setattr(perf_run, "BENCHMARKS", {"first": measured, "second": interrupted,
                                                 "third": measured})
    code = perf_run.main(["--smoke", "--out", str(tmp_path)])
    assert code == 1
    [md] = tmp_path.glob("*.md")
    text = md.read_text()
    assert "| fake | case |" in text
    assert "second: interrupted" in text and "third" in text


def test_gpu_check_fits_its_budget_and_survives_slow_tests():
    script = (ROOT / "perf" / "gpu_check.sh").read_text()
    total = int(script.split("TOTAL_BUDGET=${TOTAL_BUDGET:-")[1].split("}")[0])
    assert total <= 480  # about 8 minutes in all
    # pytest stopped with SIGINT prints its failures; collection errors (a missing optional
    # dependency) must not stop every other test; pip must not wait on a missing network
    assert "timeout -s INT" in script and "--continue-on-collection-errors" in script
    assert "PIP_NO_INDEX=1" in script
