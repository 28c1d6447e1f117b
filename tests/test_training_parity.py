"""Whole training runs against torch: the same MLP from identical initial weights, fed
the same batches for 50 steps, must produce the same loss at every step (fp32 table
tolerance) and the same final weights.

(a) SGD with momentum (and weight decay) on MSE; (b) Adam on cross-entropy with
clip_grad_norm_ at a norm small enough that every step clips. Both models are
nn.Sequential, so the Linear+ReLU pairs run fused on our side."""

import itertools

import pytest
import torch

import tritongrad as tg
from tests.test_review_kernels import gpu_float_typing  # noqa: F401 (fixture: GPU typing)
from tritongrad import nn, optim
from tritongrad.testing import assert_close

DEVICE = tg.device()
STEPS = 50
SIZES = (12, 16, 16, 5)
BATCH = 8


def twin_models(seed: int):
    """(ours, torch's): one MLP, our initial weights copied into torch's."""
    tg.manual_seed(seed)
    layers, torch_layers = [], []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(n_in, n_out))
        torch_layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
            torch_layers.append(torch.nn.ReLU())
    ours, theirs = nn.Sequential(*layers), torch.nn.Sequential(*torch_layers).to(DEVICE)
    theirs.load_state_dict({k: v.torch().clone() for k, v in ours.state_dict().items()})
    return ours, theirs


def batches(seed: int, classification: bool):
    """Learnable data: targets from a fixed random linear teacher of the inputs."""
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(SIZES[0], SIZES[-1], generator=generator)
    for _ in range(STEPS):
        x = torch.randn(BATCH, SIZES[0], generator=generator)
        y = (x @ teacher).argmax(dim=1) if classification else x @ teacher * 0.3
        yield x.to(DEVICE), y.to(DEVICE)


def train_both(ours, theirs, optimizer, torch_optimizer, loss_fn, torch_loss_fn, data,
               max_norm=None):
    losses, torch_losses, norms, torch_norms = [], [], [], []
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(ours(tg.from_torch(x)), tg.from_torch(y))
        loss.backward()
        if max_norm is not None:
            norms.append(float(nn.utils.clip_grad_norm_(ours.parameters(), max_norm).item()))
        optimizer.step()
        losses.append(loss.item())

        torch_optimizer.zero_grad()
        torch_loss = torch_loss_fn(theirs(x), y)
        torch_loss.backward()
        if max_norm is not None:
            torch_norms.append(float(torch.nn.utils.clip_grad_norm_(theirs.parameters(),
                                                                    max_norm)))
        torch_optimizer.step()
        torch_losses.append(torch_loss.item())
    return losses, torch_losses, norms, torch_norms


def assert_same_run(losses, torch_losses, ours, theirs):
    # every step's loss, then the weights the 50 steps arrived at
    assert_close(torch.tensor(losses), torch.tensor(torch_losses), dtype=torch.float32,
                 name="per-step loss")
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p, q.detach(), dtype=torch.float32, name=f"final {name}")


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_sgd_momentum_mse_run_matches_torch(nesterov):
    ours, theirs = twin_models(seed=0)
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=nesterov)
    losses, torch_losses, _, _ = train_both(
        ours, theirs, optim.SGD(ours.parameters(), **kwargs),
        torch.optim.SGD(theirs.parameters(), **kwargs),
        nn.MSELoss(), torch.nn.MSELoss(), batches(1, classification=False))
    # it trained (so the comparison means something)
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])
    assert_same_run(losses, torch_losses, ours, theirs)


def test_adam_cross_entropy_with_clipping_run_matches_torch():
    ours, theirs = twin_models(seed=1)
    losses, torch_losses, norms, torch_norms = train_both(
        ours, theirs, optim.Adam(ours.parameters(), lr=2e-2),
        torch.optim.Adam(theirs.parameters(), lr=2e-2),
        nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), batches(2, classification=True),
        max_norm=0.2)
    assert sum(n > 0.2 for n in norms) > STEPS // 2  # most steps really clip
    assert_close(torch.tensor(norms), torch.tensor(torch_norms), dtype=torch.float32,
                 name="pre-clip gradient norm")
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])
    assert_same_run(losses, torch_losses, ours, theirs)


@pytest.mark.usefixtures("gpu_float_typing")


def test_fp64_mlp_step_matches_torch():
    """gradcheck users train in fp64: Linear -> ReLU -> Linear -> cross_entropy ->
    clip_grad_norm_ -> Adam, 3 steps, every value fp64, against torch's fp64 run at the fp64
    tolerance. Made so that fp32 arithmetic would show: the output bias sits near 1e4
    (fp32's spacing there is 1e-3), so the logits' differences, the loss, its gradient and
    that bias's own updates are lost in fp32; the updates of every parameter, divided by lr,
    are O(1) values that an fp32 optimizer misses by ~1e-6."""
    tg.manual_seed(4)
    ours = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)).double()
    theirs = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(),
                                 torch.nn.Linear(16, 5)).double().to(DEVICE)
    initial = {k: v.torch().clone() for k, v in ours.state_dict().items()}
    initial["2.bias"] += 1e4
    ours.load_state_dict(initial)
    theirs.load_state_dict({k: v.clone() for k, v in initial.items()})
    assert all(v.dtype == torch.float64 for v in initial.values())
    data = [(x.double(), y) for x, y in itertools.islice(batches(5, classification=True), 3)]
    lr = 1e-2
    losses, torch_losses, norms, torch_norms = train_both(
        ours, theirs, optim.Adam(ours.parameters(), lr=lr),
        torch.optim.Adam(theirs.parameters(), lr=lr, foreach=False),
        nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), data, max_norm=0.1)
    assert all(n > 0.1 for n in torch_norms)  # every step clips
    fp64 = torch.float64
    assert_close(torch.tensor(losses, dtype=fp64), torch.tensor(torch_losses, dtype=fp64),
                 dtype=fp64, name="per-step loss")
    norms, torch_norms = torch.tensor(norms, dtype=fp64), torch.tensor(torch_norms, dtype=fp64)
    assert_close(norms, torch_norms, dtype=fp64, name="pre-clip gradient norm")
    # tighter than the table on purpose: an fp32 norm (6e-8 relative) would pass it
    assert_close(norms, torch_norms, rtol=1e-10, atol=0.0, name="pre-clip norm (fp64)")
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert p.dtype == fp64
        assert_close(p, q.detach(), dtype=fp64, name=f"final {name}")
        assert_close((p.torch() - initial[name]) / lr, (q.detach() - initial[name]) / lr,
                     dtype=fp64, name=f"update of {name} / lr")
