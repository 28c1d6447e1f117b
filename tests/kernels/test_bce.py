"""bce_with_logits_fwd / bce_with_logits_bwd launchers against
torch.nn.functional.binary_cross_entropy_with_logits (forward, input and target gradients)."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from tritongrad.kernels._checks import DTypeError, ShapeError
from tritongrad.kernels.bce import bce_with_logits_bwd, bce_with_logits_fwd
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
REDUCTIONS = ["mean", "sum", "none"]
INF, NAN = float("inf"), float("nan")


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # inf - inf and 0 * inf in the interpreter's numpy are the intended NaN paths.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def reference(x, t, weight, pos_weight, reduction, grad_output):
    """torch in fp32 (fp64 for fp64) on the (already rounded) inputs; results cast back to
    x's dtype."""
    compute = torch.promote_types(x.dtype, torch.float32)
    xr = x.detach().to(compute).requires_grad_()
    tr = t.detach().to(compute).requires_grad_()
    loss = F.binary_cross_entropy_with_logits(
        xr, tr, None if weight is None else weight.to(compute), reduction=reduction,
        pos_weight=None if pos_weight is None else pos_weight.to(compute))
    gx, gt = torch.autograd.grad(loss, (xr, tr), grad_output.to(compute))
    return loss.detach().to(x.dtype), gx.to(x.dtype), gt.to(x.dtype)


def check(x, t, reduction, weight=None, pos_weight=None, grad_output=None, prescale=True):
    if grad_output is None:
        shape = x.shape if reduction == "none" else ()
        grad_output = torch.randn(shape).to(x.dtype)
    loss, gx, gt = bce_with_logits_fwd(x, t, weight, pos_weight, reduction,
                                       need_input=True, need_target=True, prescale=prescale)
    scale = 1.0 / x.numel() if reduction == "mean" and not prescale else 1.0
    gx, gt = bce_with_logits_bwd(grad_output, gx, gt, reduction, scale)
    ref_loss, ref_gx, ref_gt = reference(x, t, weight, pos_weight, reduction, grad_output)
    assert loss.dtype == x.dtype and tuple(loss.shape) == tuple(ref_loss.shape)
    assert_close(loss, ref_loss, dtype=x.dtype, name="loss")
    assert_close(gx, ref_gx, dtype=x.dtype, name="grad_input")
    assert_close(gt, ref_gt, dtype=x.dtype, name="grad_target")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch_with_weights(dtype, reduction):
    torch.manual_seed(0)
    x = (torch.randn(5, 37) * 4).to(dtype)
    t = torch.rand(5, 37).to(dtype)  # soft labels
    weight = torch.rand(37) + 0.5  # broadcast over rows
    pos_weight = torch.rand(37) * 3  # broadcast over the last dim
    check(x, t, reduction)
    check(x, t, reduction, weight=weight, pos_weight=pos_weight)
    check(x, t, reduction, weight=torch.rand(5, 1).to(dtype), prescale=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_odd_shapes_and_views(dtype):
    torch.manual_seed(1)
    check(torch.randn(1, 1).to(dtype), torch.rand(1, 1).to(dtype), "mean")
    check(torch.randn(3).to(dtype), torch.rand(3).to(dtype), "sum", pos_weight=torch.rand(3))
    base = (torch.randn(11, 6) * 3).to(dtype)
    x = base.T  # transposed
    t = torch.rand(6, 22).to(dtype)[:, ::2]  # stride-2 slice
    for reduction in REDUCTIONS:
        check(x, t, reduction, weight=torch.rand(11), pos_weight=torch.rand(6, 1) + 0.5)
    go = torch.randn(11, 6).to(dtype).T  # a non-contiguous grad_output for 'none'
    check(x, t, "none", grad_output=go)


def test_many_programs_deterministic():
    # > BLOCK elements: several partials, added in a fixed order.
    torch.manual_seed(2)
    x, t = torch.randn(3, 1500), torch.rand(3, 1500)
    check(x, t, "mean", pos_weight=torch.rand(1500))
    first = bce_with_logits_fwd(x, t, reduction="sum")[0]
    again = bce_with_logits_fwd(x, t, reduction="sum")[0]
    assert torch.equal(first, again)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, 2.0])
def test_extreme_logits(dtype, pos_weight):
    # |x| = 100 must not overflow; +-inf and NaN follow torch (NaN where torch gives NaN).
    values = [100.0, -100.0, INF, -INF, NAN, 0.0, 30.0, -30.0, 1e-3]
    x = torch.tensor(values * 3).to(dtype)
    t = torch.tensor([0.0] * 9 + [1.0] * 9 + [0.3] * 9).to(dtype)
    pw = None if pos_weight is None else torch.full((27,), pos_weight)
    check(x, t, "none", pos_weight=pw, grad_output=torch.ones(27).to(dtype))
    check(x[:6], t[:6], "sum", pos_weight=None if pw is None else pw[:6])


def test_fp64_is_computed_in_fp64():
    # 1 + 1e-12 is 1 in fp32: an fp32 computation would give the loss of x = 0 exactly
    x = torch.tensor([1e-12, -1e-12, 40.0], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    check(x, t, "none", grad_output=torch.ones(3, dtype=torch.float64))
    loss, gx, _ = bce_with_logits_fwd(x, t, reduction="none", need_input=True)
    assert loss[0].item() != loss[1].item() or gx[0].item() != gx[1].item()
    # an fp32 grad_output is applied in fp64
    check(x, t, "mean", grad_output=torch.tensor(0.3))


def test_empty():
    x = torch.empty(0, 3)
    assert torch.isnan(bce_with_logits_fwd(x, x, reduction="mean")[0])
    assert bce_with_logits_fwd(x, x, reduction="sum")[0].item() == 0.0
    assert bce_with_logits_fwd(x, x, reduction="none")[0].shape == (0, 3)


def test_bad_inputs_raise_before_launch():
    x = torch.randn(3, 1)
    with pytest.raises(ShapeError, match=r"Target size \(\(3,\)\) must be the same as input "
                                         r"size \(\(3, 1\)\)"):
        bce_with_logits_fwd(x, torch.rand(3))
    with pytest.raises(DTypeError, match="target dtype"):
        bce_with_logits_fwd(x, torch.rand(3, 1).half())
    with pytest.raises(ShapeError, match="pos_weight"):
        bce_with_logits_fwd(x, torch.rand(3, 1), pos_weight=torch.rand(2))
    with pytest.raises(ShapeError, match="weight"):
        bce_with_logits_fwd(x, torch.rand(3, 1), weight=torch.rand(3, 2))
    with pytest.raises(ValueError, match="reduction"):
        bce_with_logits_fwd(x, torch.rand(3, 1), reduction="avg")
    with pytest.raises(ShapeError, match="grad_output"):
        bce_with_logits_bwd(torch.ones(3), torch.ones(3, 1), None, "mean")
