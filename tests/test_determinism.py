"""Determinism: two seeded training runs give bitwise-identical parameters, and no kernel
used in training contains an atomic instruction.

A CPU run alone cannot fail the first check: the interpreter runs programs in order.
So the sm_90 PTX of every kernel family used in training is read too: ``atom.`` and
``red.`` (an atomic whose result is unused) are the instructions whose order the GPU
does not fix. On a GPU the two-run comparison also runs for real, in one process and
across two processes (where autotuning could pick different configs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

import tritongrad as tg
from tests.conftest import ptx_of
from tritongrad import nn, optim
from tritongrad.determinism import (
    are_deterministic_algorithms_enabled,
    use_deterministic_algorithms,
)
from tritongrad.nn_utils_clip import clip_grad_norm_
from tritongrad.ops.loss import cross_entropy, mse_loss

use_deterministic_algorithms = getattr(tg, "use_deterministic_algorithms",
                                       use_deterministic_algorithms)

# Every kernel family a training step can launch (forward, backward, optimizer,
# clipping, dropout and initialisation), as labels in the sm_90 compile report.
TRAINING_FAMILIES = ["matmul.", "relu.", "cross_entropy.", "mse.", "norm.", "optim.",
                     "elementwise.", "reduction.", "copy.", "random.", "embedding.", "gather.", "conv."]

# An atomic instruction, optionally predicated: "atom.global.add.f32 ..." or
# "@%p1 red.global.add.f32 ...". Anchored at the line start so comments and labels
# such as "$L__tmp_red." never match.
ATOMIC = re.compile(r"^\s*(@!?%\w+\s+)?(atom|red)\.[\w.]*", re.MULTILINE)

# One-launch reductions elect the program that finishes with an integer ticket
# (kernels/_arrivals.py). The ticket only says who adds the partials, which it does in
# index order, so the values never depend on the order the programs arrived in.
ARRIVAL_TICKET = re.compile(r"atom\.global\.gpu\.acq_rel\.add\.u32$")
TICKET_KERNELS = ("mse.mse_reduce_kernel",)


def atomic_lines(ptx: str) -> list[str]:
    return [m.group(0).strip() + "..." for m in ATOMIC.finditer(ptx)]


def order_dependent_atomics(label: str, ptx: str) -> list[str]:
    """Atomics whose result could depend on the order programs run in: every atomic,
    except an arrival ticket in a kernel that is known to use one."""
    ticket_ok = label.split("[")[0] in TICKET_KERNELS
    return [line for line in atomic_lines(ptx)
            if not (ticket_ok and ARRIVAL_TICKET.search(line[:-3].split()[-1]))]


def test_no_atomics_in_any_training_kernel(sm90_report):
    assert not sm90_report["errors"], sm90_report["errors"]
    found = {}
    for family in TRAINING_FAMILIES:
        ptx = ptx_of(sm90_report, family)
        assert ptx, f"no compiled kernel of family {family!r}: the check would be vacuous"
        for label, text in ptx.items():
            if order_dependent_atomics(label, text):
                found[label] = order_dependent_atomics(label, text)[:3]
    assert not found, f"atomic instructions (non-deterministic order on a GPU): {found}"


def test_the_ticket_exception_is_narrow(sm90_report):
    """The MSE reduction's PTX has its ticket, and the allowance covers nothing else:
    the same ticket in another kernel, or a float atomic in the MSE kernel, still counts."""
    (label, ptx), *_ = ptx_of(sm90_report, "mse.mse_reduce_kernel").items()
    assert atomic_lines(ptx) and not order_dependent_atomics(label, ptx)
    assert order_dependent_atomics("relu.relu_fwd_kernel", ptx)
    float_atomic = "\t@%p1 atom.global.gpu.acq_rel.add.f32 %r1, [%rd1], %r2;\n"
    assert order_dependent_atomics(label, ptx + float_atomic)


ATOMIC_KERNEL = '''
import triton, triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

@triton.jit
def k(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.atomic_add(out_ptr, tl.sum(tl.load(x_ptr + offs), axis=0))

compiled = triton.compile(ASTSource(k, {"x_ptr": "*fp32", "out_ptr": "*fp32",
                                        "BLOCK": "constexpr"}, {"BLOCK": 128}),
                          target=GPUTarget("cuda", 90, 32))
print(compiled.asm["ptx"])
'''


def test_atomic_detector_finds_a_real_atomic(tmp_path):
    """The PTX check can fail: an atomic_add kernel compiled for sm_90 trips it."""
    script = tmp_path / "atomic_kernel.py"
    script.write_text(textwrap.dedent(ATOMIC_KERNEL))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_INTERPRET"] = "0"
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert atomic_lines(proc.stdout), "an atomic_add kernel should show atom./red. in its PTX"
    assert not atomic_lines("// red.global is mentioned in a comment\n$L__red.: mov.u32 %r1, 0;")


def _train(steps: int) -> list[torch.Tensor]:
    """A seeded run exercising every training kernel family: init (random), fused
    linear+relu, dropout, cross-entropy, MSE, clipping, Adam and SGD."""
    tg.manual_seed(1234)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 3))
    adam = optim.Adam(model[0].parameters(), lr=1e-2)
    sgd = optim.SGD(model[3].parameters(), lr=1e-2, momentum=0.9)
    x = tg.randn(12, 6)
    target = tg.tensor([0, 1, 2] * 4)
    regress = tg.randn(12, 3)
    for _ in range(steps):
        adam.zero_grad()
        sgd.zero_grad()
        out = model(x)
        loss = cross_entropy(out, target) + mse_loss(out, regress) * 0.5
        loss.backward()
        clip_grad_norm_(model.parameters(), 0.5)
        adam.step()
        sgd.step()
    return [p.torch().clone() for p in model.parameters()]


def _bits(tensors) -> list[torch.Tensor]:
    return [t.detach().cpu().contiguous().view(torch.uint8) for t in tensors]


@pytest.mark.parametrize("deterministic", [False, True])
def test_two_seeded_runs_are_bitwise_identical(deterministic):
    previous = are_deterministic_algorithms_enabled()
    use_deterministic_algorithms(deterministic)
    try:
        first, second = _train(3), _train(3)
    finally:
        use_deterministic_algorithms(previous)
    assert all(torch.equal(a, b) for a, b in zip(_bits(first), _bits(second)))
    third = _train(4)  # and the comparison can fail: one more step changes the bits
    assert not all(torch.equal(a, b) for a, b in zip(_bits(first), _bits(third)))


def test_deterministic_mode_pins_autotuned_kernels():
    from tritongrad.determinism import _autotuners

    tuners = _autotuners()
    assert tuners, "matmul is autotuned: there should be at least one tuner"
    before = [list(t.configs) for t in tuners]
    use_deterministic_algorithms(True)
    try:
        assert are_deterministic_algorithms_enabled()
        assert all(t.configs == b[-1:] for t, b in zip(tuners, before))
    finally:
        use_deterministic_algorithms(False)
    assert [list(t.configs) for t in tuners] == before


TWO_PROCESS_RUN = '''
import sys, torch
sys.path.insert(0, {root!r})
import tritongrad as tg
from tritongrad.determinism import use_deterministic_algorithms
from tests.test_determinism import _train
use_deterministic_algorithms(True)
params = _train(20)
torch.save([p.cpu() for p in params], sys.argv[1])
'''


@pytest.mark.gpu
@pytest.mark.skipif(tg.device().type != "cuda", reason="needs a GPU")
def test_two_processes_give_bitwise_identical_parameters(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "run.py"
    script.write_text(TWO_PROCESS_RUN.format(root=root))
    results = []
    for i in range(2):
        out = tmp_path / f"params{i}.pt"
        proc = subprocess.run([sys.executable, str(script), str(out)], capture_output=True,
                              text=True, timeout=600, cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(torch.load(out))
    assert all(torch.equal(a, b) for a, b in zip(_bits(results[0]), _bits(results[1])))
