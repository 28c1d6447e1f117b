"""F.embedding and nn.Embedding through autograd against torch.autograd: the output and the
weight gradient in every dtype, index shapes and layouts, padding_idx (positive and
negative), int32 indices, scale_grad_by_freq, the index check, the refused options, the
module (init, repr, state dict, from_pretrained), an Embedding -> Linear -> cross_entropy
training run against torch, and bitwise-repeatable gradients."""

import warnings

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn, optim
from tritongrad.nn import functional as F
from tritongrad.ops import loss as losses
from tritongrad.testing import assert_close, assert_parity, gradcheck
from tritongrad.testing.ref_embedding import embedding_reference

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


def indices(high, *shape, dtype=torch.int64):
    return torch.randint(0, high, shape, device=DEVICE).to(dtype)


def check_parity(index, weight, dtype, padding_idx=None, scale=False):
    assert_parity(lambda w: F.embedding(tg.from_torch(index), w, padding_idx=padding_idx,
                                        scale_grad_by_freq=scale),
                  lambda w: embedding_reference(index, w, padding_idx, scale),
                  weight, dtype=dtype)


# name: (weight, indices, padding_idx)
CASES = {
    "2d-repeats": (lambda: randn(12, 10), lambda: indices(4, 5, 7), None),
    "0-d": (lambda: randn(6, 9), lambda: torch.tensor(4, device=DEVICE), None),
    "1-d": (lambda: randn(6, 9), lambda: indices(6, 11), None),
    "all-same": (lambda: randn(6, 9), lambda: torch.full((40,), 2, device=DEVICE), None),
    "padding": (lambda: randn(8, 5), lambda: indices(8, 3, 6), 3),
    "padding-negative": (lambda: randn(8, 5), lambda: indices(8, 3, 6), -1),
    "int32": (lambda: randn(8, 5), lambda: indices(8, 4, 4, dtype=torch.int32), 0),
    "weight-T": (lambda: randn(17, 9).T, lambda: indices(9, 4, 3), None),
    "indices-T": (lambda: randn(9, 17), lambda: indices(9, 6, 4).T, None),
    "indices-strided": (lambda: randn(9, 17)[:, 1::2], lambda: indices(9, 30)[::4], 2),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parity(case, dtype):
    make_weight, make_indices, padding_idx = CASES[case]
    index, weight = make_indices(), make_weight()
    if index.dim():  # a repeated row, and the padding row hit (its gradient must be 0)
        (index if index.dim() == 1 else index[0])[:3] = (padding_idx or 1) % weight.shape[0]
    check_parity(index, weight, dtype, padding_idx)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_scale_grad_by_freq(dtype):
    index = torch.tensor([[0, 2, 2, 2], [5, 0, 1, 2]], device=DEVICE)
    check_parity(index, randn(7, 6), dtype, scale=True)
    check_parity(index, randn(7, 6), dtype, padding_idx=-2, scale=True)


def test_padding_row_gets_zero_gradient_and_keeps_its_value():
    weight = tg.from_torch(randn(5, 3), requires_grad=True)
    index = tg.from_torch(torch.tensor([[4, 1], [4, 4]], device=DEVICE))
    out = F.embedding(index, weight, padding_idx=-1)  # row 4
    assert torch.equal(out.torch()[0, 0], weight.torch()[4])  # forward reads it as it is
    out.sum().backward()
    grad = weight.grad.torch()
    assert not grad[4].any() and torch.equal(grad[1], torch.ones(3, device=DEVICE))


def test_errors_come_before_any_result():
    weight = tg.from_torch(randn(5, 3), requires_grad=True)
    for bad in ([0, 5], [-1], [[1, 2], [9, 0]]):
        with pytest.raises(tg.OutOfRangeError, match="index out of range in self"):
            F.embedding(tg.from_torch(torch.tensor(bad, device=DEVICE)), weight)
    with pytest.raises(tg.DTypeError, match="Long, Int; but got float32"):
        F.embedding(tg.from_torch(randn(3)), weight)
    with pytest.raises(tg.DTypeError, match="weight has dtype int64"):
        F.embedding(tg.tensor([1]), tg.tensor([[1, 2]]))
    with pytest.raises(tg.ShapeError, match="'weight' must be 2-D"):
        F.embedding(tg.tensor([1]), tg.from_torch(randn(5), requires_grad=True))
    with pytest.raises(tg.OutOfRangeError, match="Padding_idx must be within num_embeddings"):
        F.embedding(tg.tensor([1]), weight, padding_idx=5)
    with pytest.raises(tg.OutOfRangeError, match="Padding_idx must be within num_embeddings"):
        F.embedding(tg.tensor([1]), weight, padding_idx=-6)
    with pytest.raises(tg.UnsupportedError, match="max_norm=1.0 is not supported"):
        F.embedding(tg.tensor([1]), weight, max_norm=1.0)
    with pytest.raises(tg.UnsupportedError, match="sparse=True is not supported"):
        F.embedding(tg.tensor([1]), weight, sparse=True)
    assert weight.grad is None


def test_check_switch_skips_the_sync(monkeypatch):
    """The one documented switch of every device-side value check (ops/loss.py)."""
    monkeypatch.setattr(losses, "CHECK_LABELS", False)
    weight = tg.from_torch(randn(5, 3), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = F.embedding(tg.from_torch(torch.tensor([1, 7], device=DEVICE)), weight)
    assert out.torch()[1].isnan().all() and not out.torch()[0].isnan().any()
    out.sum().backward()  # the bad index adds nothing
    assert weight.grad.torch()[1].eq(1).all() and weight.grad.torch().sum() == 3


def test_no_weight_grad_no_backward():
    weight = tg.from_torch(randn(5, 3))
    with recorded_launches() as launches:
        out = F.embedding(tg.tensor([1, 2]), weight)
    assert not out.requires_grad and len(launches) == 1


def test_fp64_gradcheck():
    weight = tg.from_torch(randn(6, 3).double(), requires_grad=True)
    index = tg.from_torch(torch.tensor([[0, 5, 5], [2, 0, 3]], device=DEVICE))
    # repeats and an unused row; padding_idx and scale_grad_by_freq change the gradient
    # from the true derivative on purpose (torch's definition), so gradcheck would fail them
    assert gradcheck(lambda w: F.embedding(index, w), (weight,))


def test_module_init_repr_and_state_dict():
    tg.manual_seed(0)
    layer = nn.Embedding(64, 32, padding_idx=-3)
    assert layer.padding_idx == 61 and layer.weight.shape == (64, 32)
    values = layer.weight.torch()
    assert not values[61].any()
    rest = torch.cat([values[:61], values[62:]])
    assert abs(rest.mean().item()) < 0.05 and abs(rest.std().item() - 1.0) < 0.05  # N(0, 1)
    for kwargs in (dict(), dict(padding_idx=2), dict(scale_grad_by_freq=True),
                   dict(norm_type=1.0)):
        ours, theirs = nn.Embedding(10, 4, **kwargs), torch.nn.Embedding(10, 4, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == ["weight"]
        ours.load_state_dict(theirs.state_dict())  # a torch checkpoint loads directly
        index = indices(10, 3, 5)
        assert torch.equal(ours(tg.from_torch(index)).torch(), theirs(index.cpu()).to(DEVICE))
    assert nn.Embedding(3, 2, dtype=torch.float16).weight.dtype == torch.float16
    with pytest.raises(tg.UnsupportedError, match="max_norm"):
        nn.Embedding(10, 4, max_norm=2.0)
    with pytest.raises(tg.UnsupportedError, match="sparse=True"):
        nn.Embedding(10, 4, sparse=True)
    with pytest.raises(tg.OutOfRangeError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(10, 4, padding_idx=10)
    with pytest.raises(tg.DeviceError, match="cannot create Embedding"):
        nn.Embedding(10, 4, device="meta")


def test_from_pretrained():
    table = randn(6, 4)
    frozen = nn.Embedding.from_pretrained(table, padding_idx=1)
    assert not frozen.weight.requires_grad and frozen.padding_idx == 1
    assert frozen.weight.torch().data_ptr() == table.data_ptr()  # shares memory, as torch
    assert torch.equal(frozen.weight.torch()[1], table[1])  # the padding row is left alone
    assert repr(frozen) == repr(torch.nn.Embedding.from_pretrained(table.cpu(), padding_idx=1))
    trained = nn.Embedding.from_pretrained(tg.from_torch(table.clone()), freeze=False)
    trained(tg.tensor([[0, 0, 3]])).sum().backward()
    assert torch.equal(trained.weight.grad.torch()[0], torch.full((4,), 2.0, device=DEVICE))
    with pytest.raises(tg.ShapeError, match="expected to be 2-dimensional"):
        nn.Embedding.from_pretrained(randn(6))


def test_training_step_matches_torch():
    """Embedding -> Linear -> cross_entropy, three SGD steps with momentum, against torch
    from the same initial weights."""
    torch.manual_seed(7)
    theirs = torch.nn.Sequential(torch.nn.Embedding(20, 8, padding_idx=0),
                                 torch.nn.Linear(8, 5))
    ours = nn.Sequential(nn.Embedding(20, 8, padding_idx=0), nn.Linear(8, 5))
    ours.load_state_dict({k: v.to(DEVICE) for k, v in theirs.state_dict().items()})
    opt_ours = optim.SGD(ours.parameters(), lr=0.5, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9)
    tokens = indices(20, 4, 6)
    tokens[0, :3] = 0  # padding positions
    labels = indices(5, 24)
    for _ in range(3):
        opt_ours.zero_grad()
        logits = ours(tg.from_torch(tokens)).reshape(24, 5)
        loss = F.cross_entropy(logits, tg.from_torch(labels))
        loss.backward()
        opt_ours.step()
        opt_theirs.zero_grad()
        ref = torch.nn.functional.cross_entropy(theirs(tokens.cpu()).reshape(24, 5),
                                                labels.cpu())
        ref.backward()
        opt_theirs.step()
        assert_close(loss, ref.detach().to(DEVICE), dtype=torch.float32, name="loss")
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p, q.detach().to(DEVICE), dtype=torch.float32, name=name)
    assert torch.equal(ours[0].weight.torch()[0], theirs[0].weight[0].detach().to(DEVICE))


@pytest.mark.parametrize("deterministic", [False, True])
def test_gradients_are_bitwise_repeatable(deterministic):
    torch.manual_seed(8)
    table, index, grad = randn(12, 20), indices(12, 9, 30), randn(9, 30, 20)
    previous = tg.are_deterministic_algorithms_enabled()
    tg.use_deterministic_algorithms(deterministic)
    try:
        grads = []
        for _ in range(2):
            weight = tg.from_torch(table.clone(), requires_grad=True)
            F.embedding(tg.from_torch(index), weight).backward(tg.from_torch(grad))
            grads.append(weight.grad.torch().view(torch.int32))
    finally:
        tg.use_deterministic_algorithms(previous)
    assert torch.equal(grads[0], grads[1])
