"""Parity of the loss Functions (mse_loss, cross_entropy, linear_cross_entropy) with torch,
forward and every input's gradient, in fp32, fp16 and bf16."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.ops import loss as losses
from tritongrad.testing import assert_parity
from tritongrad.testing.parity import constant
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["mean", "sum", "none"]


def labels(n_rows, n_cols, ignored=(), ignore_index=-100):
    target = torch.randint(0, n_cols, (n_rows,))
    for row in ignored:
        target[row] = ignore_index
    return target


# --- mse_loss -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 7), (13, 5)])
def test_mse_loss(dtype, reduction, shape):
    assert_parity(lambda x, y: losses.mse_loss(x, y, reduction=reduction),
                  lambda x, y: F.mse_loss(x, y, reduction=reduction),
                  torch.randn(shape), torch.randn(shape), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_loss_on_views(dtype):
    assert_parity(lambda x, y: losses.mse_loss(x.T, y[:, ::2]),
                  lambda x, y: F.mse_loss(x.T, y[:, ::2]),
                  torch.randn(9, 4), torch.randn(4, 18), dtype=dtype)


def test_mse_loss_only_input_grad():
    x = tg.randn(3, 4, requires_grad=True)
    target = tg.randn(3, 4)
    losses.mse_loss(x, target, reduction="sum").backward()
    assert target.grad is None
    assert_close(x.grad, 2 * (x.torch() - target.torch()), dtype=torch.float32)


# --- cross_entropy --------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n_cols,label_smoothing", [(2, 0.0), (5, 0.1), (37, 0.0)])
def test_cross_entropy(dtype, reduction, n_cols, label_smoothing):
    target = labels(6, n_cols, ignored=(1,))
    assert_parity(
        lambda x, t: losses.cross_entropy(x, t, reduction=reduction,
                                          label_smoothing=label_smoothing),
        lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
        3 * torch.randn(6, n_cols), target, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_on_views_and_negative_ignore_index(dtype):
    target = torch.tensor([0, -1, 3, 6])
    assert_parity(lambda x, t: losses.cross_entropy(x.T, t, ignore_index=-1),
                  lambda x, t: F.cross_entropy(x.T, t, ignore_index=-1),
                  torch.randn(7, 4), target, dtype=dtype)
    assert_parity(lambda x, t: losses.cross_entropy(x[:, 2:9], t, reduction="sum"),
                  lambda x, t: F.cross_entropy(x[:, 2:9], t, reduction="sum"),
                  torch.randn(4, 12), target.clamp_min(0), dtype=dtype)


def test_cross_entropy_retain_graph_and_no_grad_paths():
    logits = tg.randn(4, 6, requires_grad=True)
    target = tg.from_torch(labels(4, 6, ignored=(2,)))
    loss = losses.cross_entropy(logits, target)
    loss.backward(retain_graph=True)
    first = logits.grad.torch().clone()
    loss.backward()  # the saved gradient buffer was not overwritten by the first backward
    assert_close(logits.grad, 2 * first, dtype=torch.float32)

    frozen = tg.from_torch(logits.torch())
    assert not losses.cross_entropy(frozen, target).requires_grad
    with tg.no_grad():
        assert not losses.cross_entropy(logits, target).requires_grad


def _ce_backward_pair(x, target, reduction, hook=None, **kw):
    """(ours, torch's) logits gradient after ``loss.backward()`` with the implicit one."""
    ours = tg.from_torch(x.clone()).requires_grad_()
    loss = losses.cross_entropy(ours, tg.from_torch(target), reduction=reduction, **kw)
    if hook is not None:
        loss.register_hook(hook)
    loss.backward()
    ref = x.clone().requires_grad_()
    ref_loss = F.cross_entropy(ref, target, reduction=reduction, **kw)
    if hook is not None:
        ref_loss.register_hook(lambda g: g * 3.0)
    ref_loss.backward()
    return ours.grad, ref.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_backward_of_the_loss_itself_hands_over_the_forward_gradient(
        dtype, reduction):
    """loss.backward(): the forward's gradient (divided by the valid-row count for 'mean')
    becomes logits.grad with no backward launch and no copy; fp16 divides in backward."""
    x = (3 * torch.randn(5, 37)).to(dtype)
    target = labels(5, 37, ignored=(3,))
    ours, ref = _ce_backward_pair(x, target, reduction, label_smoothing=0.1)
    assert_close(ours, ref, dtype=dtype)
    logits = tg.from_torch(x.clone()).requires_grad_()
    loss = losses.cross_entropy(logits, tg.from_torch(target), reduction=reduction)
    with recorded_launches() as launches:
        loss.backward()
    expected = ["fill_kernel"]  # the seed alone
    if dtype == torch.float16:
        expected.append("cross_entropy_bwd_kernel")
    assert [info.kernel_name for info in launches] == expected


def test_cross_entropy_fp16_gradient_survives_loss_scaling():
    """fp16's usual recipe, (loss * S).backward(): the gradient must not have been divided
    by the row count in fp16 first, where p / N underflows (p ~ 1/C, here 1/(2048 * 512)
    is below fp16's smallest normal 6e-5, and many values are below its subnormals)."""
    x = torch.randn(512, 2048)
    target = torch.randint(0, 2048, (512,))
    logits = tg.from_torch(x.half()).requires_grad_()
    (losses.cross_entropy(logits, tg.from_torch(target)) * 1024.0).backward()
    ref = x.double().requires_grad_()
    (F.cross_entropy(ref, target) * 1024.0).backward()
    ours = logits.grad.torch().double()
    assert (ours == 0).sum().item() == 0
    relative = (ours - ref.grad).abs() / ref.grad.abs()
    assert relative.median().item() < 2e-3  # fp16's own rounding: 2^-11 relative


def test_cross_entropy_all_rows_ignored_and_a_hook_on_the_loss():
    x = torch.randn(3, 6)
    ours, ref = _ce_backward_pair(x, torch.full((3,), -100), "mean")
    assert torch.equal(ours.torch(), torch.zeros_like(x)) and torch.equal(ref, ours.torch())

    # a hook that writes into the seed in place: the one is no longer known, and the
    # gradient is scaled by what the hook left there
    def triple_in_place(g):
        g.mul_(3.0)

    target = labels(3, 6)
    ours, ref = _ce_backward_pair(x, target, "mean", hook=triple_in_place)
    assert_close(ours, ref, dtype=torch.float32)
    ours, ref = _ce_backward_pair(x, target, "sum", hook=lambda g: g * 3.0)
    assert_close(ours, ref, dtype=torch.float32)


def test_cross_entropy_label_errors_and_check_switch(monkeypatch):
    logits = tg.randn(3, 10, requires_grad=True)
    with pytest.raises(tg.OutOfRangeError, match=r"Target 10 is out of bounds\."):
        losses.cross_entropy(logits, tg.from_torch(torch.tensor([1, 10, 2])))
    # torch names the first bad label in row order, skipping ignored rows, wherever the
    # rows' programs happened to run
    for labels_, first in (([-100, 12, 10], 12), ([10, 20, 30], 10), ([3, -5, 11], -5)):
        with pytest.raises(tg.OutOfRangeError, match=rf"Target {first} is out of bounds\."):
            losses.cross_entropy(logits, tg.from_torch(torch.tensor(labels_)))
    assert logits.grad is None  # the error came before any gradient reached the user
    with pytest.raises(tg.DTypeError, match="expected target dtype to be Long"):
        losses.cross_entropy(logits, tg.from_torch(torch.tensor([1, 2, 3], dtype=torch.int32)))
    with pytest.raises(tg.ShapeError, match=r"batch_size \(3\) to match target batch_size \(2\)"):
        losses.cross_entropy(logits, tg.from_torch(torch.tensor([1, 2])))
    monkeypatch.setattr(losses, "CHECK_LABELS", False)  # benchmarking: no host sync
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bad = tg.from_torch(torch.tensor([1, 10, 2]))
        loss = losses.cross_entropy(logits, bad, reduction="none")
    assert loss.torch()[1].isnan()


# --- linear_cross_entropy --------------------------------------------------------

def _linear_ce_parity(dtype, reduction, bias, label_smoothing=0.0, n_rows=9):
    hidden, weight = torch.randn(n_rows, 6), torch.randn(11, 6) / 2
    target = labels(n_rows, 11, ignored=(0, 5))
    bias_value = torch.randn(11) if bias else None
    assert_parity(
        lambda h, w, t, b: losses.linear_cross_entropy(h, w, t, b, reduction=reduction,
                                                       label_smoothing=label_smoothing),
        lambda h, w, t, b: F.cross_entropy(F.linear(h, w, b), t, reduction=reduction,
                                           label_smoothing=label_smoothing),
        hidden, weight, target, bias_value, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_linear_cross_entropy_in_chunks(monkeypatch, dtype, reduction):
    monkeypatch.setattr(losses, "LINEAR_CE_CHUNK_ROWS", 4)  # 9 rows: chunks of 4, 4, 1
    with recorded_launches() as launches:
        _linear_ce_parity(dtype, reduction, bias=True, label_smoothing=0.1)
    rows = [info.grid[0] for info in launches if info.kernel_name == "cross_entropy_fwd_kernel"]
    # never more than one chunk of logits at a time ('none' recomputes them in backward)
    assert rows == [4, 4, 1] * (2 if reduction == "none" else 1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_linear_cross_entropy_default_chunks_no_bias(reduction):
    _linear_ce_parity(torch.float32, reduction, bias=False, n_rows=13)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_linear_cross_entropy_weight_only_grad(monkeypatch, reduction):
    monkeypatch.setattr(losses, "LINEAR_CE_CHUNK_ROWS", 3)
    hidden, weight, bias = torch.randn(5, 4), torch.randn(7, 4), torch.randn(7)
    target = labels(5, 7, ignored=(3,))
    ref_weight = weight.clone().requires_grad_()
    ref = F.cross_entropy(F.linear(hidden, ref_weight, bias), target, reduction=reduction)
    ref.sum().backward()
    w = tg.from_torch(weight, requires_grad=True)
    ours = losses.linear_cross_entropy(tg.from_torch(hidden), w, tg.from_torch(target),
                                       tg.from_torch(bias), reduction=reduction)
    ours.sum().backward()
    assert_close(ours, ref, dtype=torch.float32)
    assert_close(w.grad, ref_weight.grad, dtype=torch.float32)


def test_linear_cross_entropy_errors():
    hidden, weight = tg.randn(3, 4, requires_grad=True), tg.randn(5, 4)
    with pytest.raises(tg.OutOfRangeError, match=r"Target 5 is out of bounds\."):
        losses.linear_cross_entropy(hidden, weight, tg.from_torch(torch.tensor([0, 5, 1])))
    with pytest.raises(tg.OutOfRangeError, match=r"Target 7 is out of bounds\."):
        losses.linear_cross_entropy(hidden, weight, tg.from_torch(torch.tensor([0, 7, 6])))
    with pytest.raises(tg.ShapeError, match=r"batch_size \(3\) to match target batch_size \(2\)"):
        losses.linear_cross_entropy(hidden, weight, tg.from_torch(torch.tensor([0, 1])))
    with pytest.raises(tg.ShapeError, match="hidden size"):
        losses.linear_cross_entropy(hidden, tg.randn(5, 3), tg.from_torch(torch.tensor([0, 1, 2])))


def test_mse_loss_takes_torchs_legacy_arguments_in_torchs_order():
    # torch's third and fourth positional arguments are size_average and reduce
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    tx, ty = tg.from_torch(x.to(tg.device())), tg.from_torch(y.to(tg.device()))
    for args in ((False, None), (None, False), (True, True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's deprecation notice
            want = F.mse_loss(x, y, *args)
        assert_close(losses.mse_loss(tx, ty, *args), want, dtype=torch.float32)


# --- fp64 (gradcheck users) ---------------------------------------------------------
# Logits 1e4 + O(1e-3): fp32's spacing at 1e4 is 1e-3, so an fp32 computation would miss
# torch's fp64 loss and gradients by ~1e-4 relative, far past the fp64 tolerance.

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_fp64(reduction):
    target = labels(6, 9, ignored=(1,))
    weight = constant(torch.rand(9, dtype=torch.float64) + 0.5)  # no gradient, as torch
    assert_parity(
        lambda x, t, w: losses.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1),
        lambda x, t, w: F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1),
        1e4 + 1e-3 * torch.randn(6, 9, dtype=torch.float64), target, weight,
        dtype=torch.float64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_linear_cross_entropy_fp64(monkeypatch, reduction):
    monkeypatch.setattr(losses, "LINEAR_CE_CHUNK_ROWS", 4)  # 7 rows: 2 chunks accumulate dW
    target = labels(7, 10, ignored=(2,))
    assert_parity(
        lambda h, w, t, b: losses.linear_cross_entropy(h, w, t, b, reduction=reduction),
        lambda h, w, t, b: F.cross_entropy(F.linear(h, w, b), t, reduction=reduction),
        torch.randn(7, 16, dtype=torch.float64), 0.3 * torch.randn(10, 16, dtype=torch.float64),
        target, 1e4 + 1e-3 * torch.randn(10, dtype=torch.float64), dtype=torch.float64)
