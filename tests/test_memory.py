"""Memory stays bounded: saved tensors and graphs are freed by reference counting alone
(no cycles), ``tg.memory_stats`` counts live tensors and bytes, and training keeps live
memory flat (150 steps on CPU, 1,000 on a GPU)."""

from __future__ import annotations

import contextlib
import gc
import weakref

import pytest
import torch

import tritongrad as tg
from tritongrad import nn, optim
from tritongrad.memory import memory_stats
from tritongrad.nn_utils_clip import clip_grad_norm_
from tritongrad.ops.loss import cross_entropy, mse_loss


@contextlib.contextmanager
def gc_disabled():
    """Only reference counting frees objects inside: anything kept alive by a cycle
    stays alive, so the tests below see it."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))


def test_saved_tensors_and_graph_are_freed_after_backward_without_cycles():
    model = _mlp()
    x = tg.randn(5, 6)
    target = tg.tensor([0, 1, 2, 3, 0])
    with gc_disabled():
        loss = cross_entropy(model(x), target)
        leaves = {t.torch().data_ptr() for t in [x, *model.parameters()]}
        nodes, saved = [], []
        stack = [loss.grad_fn]
        while stack:  # every node of the graph, and every activation it saved
            node = stack.pop()
            if node is None or any(n() is node for n in nodes):
                continue
            nodes.append(weakref.ref(node))
            saved += [weakref.ref(s.data) for s in (getattr(node, "_saved", None) or [])
                      if s is not None and s.data.data_ptr() not in leaves]
            stack += [child for child, _ in node.next_functions]
        assert len(nodes) >= 4 and saved, "the graph should hold nodes and saved activations"
        loss.backward()
        assert all(ref() is None for ref in saved), "backward must free saved activations"
        del loss
        alive = [ref().name() for ref in nodes if ref() is not None
                 and ref().name() != "AccumulateGrad"]
        assert not alive, f"graph nodes kept alive by a reference cycle: {alive}"


def test_graph_without_backward_is_freed_when_output_dies():
    x = tg.randn(4, 6, requires_grad=True)
    with gc_disabled():
        y = (x.exp() * x).sum()
        node = weakref.ref(y.grad_fn)
        saved = weakref.ref(y.grad_fn.next_functions[0][0]._saved[0].data)
        del y
        assert node() is None and saved() is None


def test_memory_stats_counts_tensors_and_distinct_bytes():
    with gc_disabled():
        before = memory_stats()
        a = tg.zeros(10, 20)  # 800 bytes
        b = a[2:5]  # a view: one more tensor, no new storage
        c = tg.zeros(7, dtype=torch.float16)  # 14 bytes
        during = memory_stats()
        assert during["tensors"] - before["tensors"] == 3
        assert during["storages"] - before["storages"] == 2
        assert during["bytes"] - before["bytes"] == 800 + 14
        del a, b, c
        after = memory_stats()
    assert (after["tensors"], after["bytes"]) == (before["tensors"], before["bytes"])


def test_memory_stats_counts_graphs_and_saved_tensors():
    x = tg.randn(8, 8, requires_grad=True)
    with gc_disabled():
        before = memory_stats()
        y = x.exp()  # saves its output: 256 bytes, viewed by y itself
        loss = (y * 3.0).sum()
        during = memory_stats()
        assert during["graph_nodes"] - before["graph_nodes"] == 3  # Exp, ScalarOp, Sum
        assert during["saved_tensors"] - before["saved_tensors"] == 1
        del y  # the graph still holds exp(x): now only through the saved tensor
        held = memory_stats()
        assert held["saved_bytes"] - before["saved_bytes"] == 256
        loss.backward()
        del loss
        after = memory_stats()
    assert after["graph_nodes"] == before["graph_nodes"]
    assert after["total_bytes"] == before["total_bytes"] + 256  # x.grad, and nothing else


def test_memory_stats_counts_a_nodes_private_buffers():
    """Cross-entropy keeps its (N, C) gradient private to its node (ctx.save_private):
    it is graph memory all the same."""
    from tritongrad.nn.functional import cross_entropy

    x = tg.randn(16, 40, requires_grad=True)
    target = tg.tensor(torch.randint(0, 40, (16,)))
    with gc_disabled():
        before = memory_stats()
        loss = cross_entropy(x, target)
        during = memory_stats()
        assert during["saved_tensors"] - before["saved_tensors"] == 1
        assert during["saved_bytes"] - before["saved_bytes"] == 16 * 40 * 4
        del loss


def _data(batch: int, n_in: int, n_out: int, classes: bool):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n_in, generator=generator)
    y = (torch.randint(0, n_out, (batch,), generator=generator) if classes
         else torch.randn(batch, n_out, generator=generator))
    return tg.from_torch(x.to(tg.device())), tg.from_torch(y.to(tg.device()))


def _measure_training(model, opt, loss_fn, x, y, steps: int, check_at: tuple, measure,
                      clip: bool = False) -> dict:
    seen = {}
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip:
            clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        del loss
        if step in check_at:
            seen[step] = measure()
    return seen


@pytest.mark.slow
def test_training_150_steps_keeps_live_memory_flat():
    # Linear + MSE + SGD with momentum: the cheapest training step under the interpreter
    # (about 0.1 s); the GPU test below runs the MLP with cross-entropy, Adam and clipping.
    tg.manual_seed(0)
    model = nn.Linear(6, 4)
    opt = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    x, y = _data(16, 6, 4, classes=False)
    keys = ("tensors", "storages", "bytes", "graph_nodes", "saved_tensors", "total_bytes")
    with gc_disabled():  # a leak through a cycle would grow here, not be collected away
        seen = _measure_training(model, opt, mse_loss, x, y, 150, (10, 150), memory_stats)
    first, last = seen[10], seen[150]
    assert {k: last[k] for k in keys} == {k: first[k] for k in keys}
    assert first["graph_nodes"] == 0 and first["saved_tensors"] == 0


@pytest.mark.gpu
@pytest.mark.skipif(tg.device().type != "cuda", reason="needs a GPU")
def test_training_1000_steps_keeps_cuda_memory_flat():
    def allocated() -> int:
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated()

    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = _data(256, 64, 10, classes=True)
    seen = _measure_training(model, opt, cross_entropy, x, y, 1000, (20, 1000), allocated,
                             clip=True)
    assert seen[1000] == seen[20], seen
