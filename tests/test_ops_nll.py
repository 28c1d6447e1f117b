"""F.nll_loss / nn.NLLLoss against torch: forward and the input gradient through the engine,
in fp32, fp16 and bf16."""

import warnings

import pytest
import torch
import torch.nn.functional as torch_F

import tritongrad as tg
import tritongrad.nn.functional as F
from tritongrad import nn
from tritongrad.ops import loss as losses
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["mean", "sum", "none"]


def ours_and_torch(values, target, dtype, grad_output=None, tg_fn=None, torch_fn=None, **kw):
    """(loss, grad) of tritongrad and of torch (fp32 on the same rounded values, cast back).
    ``values`` may be a view (its strides are kept on both sides)."""
    values = values.to(dtype) if values.dtype != dtype else values
    x = tg.from_torch(values, requires_grad=True)
    loss = (tg_fn or F.nll_loss)(x, tg.from_torch(target), **kw)
    if grad_output is None:
        grad_output = torch.randn(loss.shape).to(dtype)
    loss.backward(tg.from_torch(grad_output))
    ref_x = values.detach().float().requires_grad_()
    torch_kw = {k: (v.float() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    ref = (torch_fn or torch_F.nll_loss)(ref_x, target, **torch_kw)
    ref.backward(grad_output.float())
    assert loss.dtype == dtype and x.grad.dtype == dtype
    assert_close(loss, ref.detach().to(dtype), dtype=dtype, name="loss")
    assert_close(x.grad, ref_x.grad.to(dtype), dtype=dtype, name="grad_input")
    return loss, x.grad


def labels(n_rows, n_cols, ignored=(), ignore_index=-100):
    target = torch.randint(0, n_cols, (n_rows,))
    for row in ignored:
        target[row] = ignore_index
    return target


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 5), (6, 37)])
def test_nll_loss(dtype, reduction, shape):
    target = labels(*shape, ignored=(1,) if shape[0] > 1 else ())
    ours_and_torch(torch.randn(shape), target, dtype, reduction=reduction)
    ours_and_torch(torch.randn(shape), target, dtype, reduction=reduction,
                   weight=(torch.rand(shape[1]) + 0.1).to(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_and_ignore_index(dtype):
    target = torch.tensor([0, -1, 3, 6])
    ours_and_torch(torch.randn(7, 4).to(dtype).T, target, dtype, ignore_index=-1)  # transposed
    ours_and_torch(torch.randn(4, 12).to(dtype)[:, 2:9], target.clamp_min(0), dtype,
                   reduction="sum", ignore_index=3)  # sliced, in-range ignore_index


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_weight_sum_and_all_ignored(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loss, grad = ours_and_torch(torch.randn(4, 4), torch.tensor([0, 1, -100, 3]), dtype,
                                    grad_output=torch.tensor(1.5).to(dtype),
                                    weight=torch.tensor([1.0, -1.0, 1.0, 0.0]).to(dtype))
        assert not grad.torch().isfinite().all()
        loss, grad = ours_and_torch(torch.randn(3, 4), torch.full((3,), -100), dtype,
                                    grad_output=torch.tensor(1.0).to(dtype))
    assert loss.torch().isnan() and (grad.torch() == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_after_log_softmax_matches_torch_cross_entropy(dtype):
    target = labels(5, 11, ignored=(3,))
    weight = (torch.rand(11) + 0.1).to(dtype)
    for reduction in REDUCTIONS:
        ours_and_torch(3 * torch.randn(5, 11), target, dtype, reduction=reduction, weight=weight,
                       tg_fn=lambda x, t, **kw: F.nll_loss(F.log_softmax(x, 1), t, **kw),
                       torch_fn=torch_F.cross_entropy)


def test_module_weight_buffer_and_legacy_flags():
    weight = tg.from_torch(torch.rand(6) + 0.1)
    module = nn.NLLLoss(weight=weight, ignore_index=2, reduction="sum")
    assert "weight" in dict(module.named_buffers()) and not list(module.parameters())
    x, target = torch.randn(5, 6), torch.tensor([0, 2, 5, 1, 2])
    ours_and_torch(x, target, torch.float32, tg_fn=lambda i, t: module(i, t),
                   torch_fn=lambda i, t: torch.nn.NLLLoss(weight=weight.torch(), ignore_index=2,
                                                          reduction="sum")(i, t))
    assert nn.NLLLoss(reduce=False).reduction == "none"
    assert nn.NLLLoss(size_average=False).reduction == "sum"
    ours_and_torch(x, target, torch.float32, size_average=False, reduce=None,
                   torch_fn=lambda i, t, **kw: torch_F.nll_loss(i, t, reduction="sum"))


def test_errors_come_before_any_gradient():
    x = tg.randn(3, 7, requires_grad=True)
    for labels_, first in (([1, 7, 2], 7), ([-100, 12, 10], 12), ([3, -5, 11], -5)):
        with pytest.raises(tg.OutOfRangeError, match=rf"Target {first} is out of bounds\."):
            F.nll_loss(x, tg.from_torch(torch.tensor(labels_)))
    with pytest.raises(tg.DTypeError, match="expected target dtype to be Long"):
        F.nll_loss(x, tg.from_torch(torch.tensor([1, 2, 3], dtype=torch.int32)))
    with pytest.raises(tg.ShapeError, match=r"Expected input batch_size \(3\) to match target "
                                            r"batch_size \(2\)\."):
        F.nll_loss(x, tg.from_torch(torch.tensor([1, 2])))
    weight = tg.ones(7, requires_grad=True)
    with pytest.raises(tg.UnsupportedError, match="derivative for 'weight'"):
        F.nll_loss(x, tg.from_torch(torch.tensor([1, 2, 3])), weight=weight)
    assert x.grad is None


def test_check_labels_switch(monkeypatch):
    monkeypatch.setattr(losses, "CHECK_LABELS", False)  # benchmarking: no host sync
    x = tg.randn(3, 10, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loss = F.nll_loss(x, tg.from_torch(torch.tensor([1, 10, 2])), reduction="none")
    assert loss.torch()[1].isnan()


def test_target_changed_in_place_before_backward():
    x = tg.randn(3, 4, requires_grad=True)
    target = tg.from_torch(torch.tensor([0, 1, 2]))
    loss = F.nll_loss(x, target)
    target.add_(1) if hasattr(target, "add_") else pytest.skip("no in-place add")
    with pytest.raises(Exception, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_1d_input_as_torch(dtype, reduction):
    # torch takes (C,) input with a 0-d label (or a (1,) one): a 0-d loss for every reduction
    weight = (torch.rand(6) + 0.1).to(dtype)
    for kw in ({}, {"weight": weight}, {"ignore_index": 2}):
        loss, grad = ours_and_torch(torch.randn(6), torch.tensor(2), dtype,
                                    grad_output=torch.randn(()).to(dtype), reduction=reduction,
                                    **kw)
        assert loss.shape == () and grad.shape == (6,)
    x = tg.randn(6)
    assert F.nll_loss(x, tg.from_torch(torch.tensor([3])), reduction=reduction).shape == ()
    with pytest.raises(tg.ShapeError, match="For 1D input, 1D target must have size 1"):
        F.nll_loss(x, tg.from_torch(torch.tensor([1, 2])))
    with pytest.raises(tg.OutOfRangeError, match=r"Target 6 is out of bounds\."):
        F.nll_loss(x, tg.from_torch(torch.tensor(6)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_fp64(reduction):
    # fp64 in, fp64 out, computed in fp64 (torch in fp64 too): picked values 1e8, 1.5,
    # -1e8, 1/3 add up to 1.83 in fp64, to 0.33 in fp32
    values = torch.randn(5, 6, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, -100, 5])
    values[0, 0], values[1, 2], values[2, 1], values[4, 5] = 1e8, 1.5, -1e8, 1.0 / 3.0
    weight = torch.tensor([1.0, 2.0, 1.0, 0.5, 3.0, 1.0 / 3.0], dtype=torch.float64)
    for kw in ({}, {"weight": weight}):
        x = tg.from_torch(values, requires_grad=True)
        loss = F.nll_loss(x, tg.from_torch(target), reduction=reduction,
                          **{k: tg.from_torch(v) for k, v in kw.items()})
        grad_output = torch.rand(loss.shape, dtype=torch.float64) + 0.5
        loss.backward(tg.from_torch(grad_output))
        ref_x = values.clone().requires_grad_()
        ref = torch_F.nll_loss(ref_x, target, reduction=reduction, **kw)
        ref.backward(grad_output)
        assert loss.dtype == x.grad.dtype == torch.float64
        assert_close(loss, ref.detach(), dtype=torch.float64, name="loss")
        assert_close(x.grad, ref_x.grad, dtype=torch.float64, name="grad_input")
