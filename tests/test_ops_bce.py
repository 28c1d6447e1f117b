"""Parity of binary_cross_entropy_with_logits (and nn.BCEWithLogitsLoss) with torch: forward
and the input and target gradients, in fp32, fp16, bf16 and fp64."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import tritongrad as tg
from tritongrad.kernels._checks import ShapeError, UnsupportedError
from tritongrad.nn import functional as tgF
from tritongrad.testing import assert_parity
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
REDUCTIONS = ["mean", "sum", "none"]


def in_fp32(torch_fn):
    """torch in fp32 (fp64 for fp64) on the (already rounded) inputs, the result rounded
    back: torch's own fp16 arithmetic cancels in l sigma(x) - p t, where our kernels compute
    in fp32."""
    def run(*tensors):
        compute = torch.promote_types(tensors[0].dtype, torch.float32)
        return torch_fn(*(t.to(compute) for t in tensors)).to(tensors[0].dtype)
    return run


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- binary_cross_entropy_with_logits ----------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(dtype, reduction):
    torch.manual_seed(0)
    weight, pos_weight = torch.rand(4, 1) + 0.5, torch.rand(13) * 3
    tg_weight, tg_pos_weight = tg.from_torch(weight), tg.from_torch(pos_weight)
    # input and target both differentiable; the target holds soft labels
    assert_parity(lambda x, y: tgF.binary_cross_entropy_with_logits(
                      x, y, tg_weight, reduction=reduction, pos_weight=tg_pos_weight),
                  in_fp32(lambda x, y: F.binary_cross_entropy_with_logits(
                      x, y, weight, reduction=reduction, pos_weight=pos_weight)),
                  torch.randn(4, 13) * 3, torch.rand(4, 13), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_views_and_one_row(dtype):
    torch.manual_seed(1)
    assert_parity(lambda x, y: tgF.binary_cross_entropy_with_logits(x.T, y[:, ::2]),
                  in_fp32(lambda x, y: F.binary_cross_entropy_with_logits(x.T, y[:, ::2])),
                  torch.randn(9, 4), torch.rand(4, 18), dtype=dtype)
    assert_parity(lambda x, y: tgF.binary_cross_entropy_with_logits(x, y, reduction="sum"),
                  in_fp32(lambda x, y: F.binary_cross_entropy_with_logits(x, y,
                                                                          reduction="sum")),
                  torch.randn(1, 7), torch.rand(1, 7), dtype=dtype)


def test_bce_with_logits_module_and_legacy_flags():
    torch.manual_seed(2)
    x, t, pos_weight = torch.randn(5, 3), torch.rand(5, 3), torch.rand(3) + 0.5
    ours = tg.nn.BCEWithLogitsLoss(pos_weight=tg.from_torch(pos_weight), reduction="sum")
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="sum")
    assert_parity(lambda a, b: ours(a, b), lambda a, b: ref(a, b), x, t)
    legacy = tgF.binary_cross_entropy_with_logits(tg.from_torch(x), tg.from_torch(t),
                                                  reduce=False)
    assert tuple(legacy.shape) == (5, 3)


def test_bce_with_logits_grad_paths():
    torch.manual_seed(3)
    x, t = torch.randn(3, 4), torch.rand(3, 4)
    ref_x = x.clone().requires_grad_()
    ref_loss = F.binary_cross_entropy_with_logits(ref_x, t)
    ref_loss.backward()
    # only the input needs a gradient; retain_graph keeps the saved buffers alive
    ours_x = tg.from_torch(x.clone()).requires_grad_()
    target = tg.from_torch(t)
    loss = tgF.binary_cross_entropy_with_logits(ours_x, target)
    loss.backward(retain_graph=True)
    assert target.grad is None
    assert_close(ours_x.grad, ref_x.grad, dtype=torch.float32)
    loss.backward()  # the implicit-seed path hands the buffer over
    assert_close(ours_x.grad, 2 * ref_x.grad, dtype=torch.float32)
    # only the target
    ref_t = t.clone().requires_grad_()
    F.binary_cross_entropy_with_logits(x, ref_t, reduction="sum").backward()
    ours_t = tg.from_torch(t.clone()).requires_grad_()
    tgF.binary_cross_entropy_with_logits(tg.from_torch(x), ours_t, reduction="sum").backward()
    assert_close(ours_t.grad, ref_t.grad, dtype=torch.float32)
    with tg.no_grad():
        assert not tgF.binary_cross_entropy_with_logits(ours_x, target).requires_grad


def test_bce_with_logits_errors():
    x = tg.randn(3, 1, requires_grad=True)
    with pytest.raises(ShapeError, match=r"Target size \(\(3,\)\) must be the same as input"):
        tgF.binary_cross_entropy_with_logits(x, tg.randn(3))
    for name in ("weight", "pos_weight"):
        constant = tg.randn(1, requires_grad=True)
        with pytest.raises(UnsupportedError, match=name):
            tgF.binary_cross_entropy_with_logits(x, tg.randn(3, 1), **{name: constant})
