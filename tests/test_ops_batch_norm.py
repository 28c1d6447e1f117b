"""F.batch_norm, nn.BatchNorm1d and nn.BatchNorm2d against torch: the output and the
gradients of input, weight and bias in fp32 / fp16 / bf16 (fp64 by gradcheck), in training
and eval; the running statistics over several steps (momentum and the cumulative average),
the modules' buffers and state dicts, a BatchNorm1d MLP training step, and the errors."""

import pytest
import torch

import tritongrad as tg
from tritongrad import nn
from tritongrad.nn import functional as F
from tritongrad.testing import assert_close, assert_parity, gradcheck
from tritongrad.testing.parity import constant
from tritongrad.testing.ref_moments import batch_norm_reference

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


def running(channels):
    return randn(channels), torch.rand(channels, device=DEVICE) + 0.5


def check_state(ours, theirs, name):
    """Every parameter and buffer as torch's: floats at the table's tolerance, the int64
    num_batches_tracked exactly."""
    for key, value in theirs.state_dict().items():
        mine = ours.state_dict()[key].torch()
        if value.is_floating_point():
            assert_close(mine, value, name=f"{name} {key}")
        else:
            assert mine.dtype == value.dtype and torch.equal(mine, value), key


# name: (x, training, affine)
CASES = {
    "1d-train": (lambda: randn(9, 5) * 2.0 + 0.5, True, True),
    "1d-3d-eval": (lambda: randn(4, 3, 7), False, True),
    "2d-train": (lambda: randn(2, 3, 4, 5), True, True),
    "2d-eval-no-affine": (lambda: randn(2, 3, 4, 5), False, False),
    "transposed-train": (lambda: randn(5, 8).T, True, True),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parity(case, dtype):
    torch.manual_seed(0)
    make, training, affine = CASES[case]
    x = make()
    channels = x.shape[1]
    weight = randn(channels) * 0.5 + 1.0 if affine else None
    bias = randn(channels) if affine else None
    running_mean, running_var = running(channels)
    assert_parity(lambda t, rm, rv, w, b: F.batch_norm(t, rm, rv, w, b, training),
                  lambda t, rm, rv, w, b: batch_norm_reference(t, rm, rv, w, b, training),
                  x, constant(running_mean), constant(running_var), weight, bias, dtype=dtype)


def test_running_statistics_follow_torch_over_steps():
    """F.batch_norm updates running_mean / running_var in place (unbiased variance), with
    torch's momentum; fp32 statistics for an fp16 input."""
    torch.manual_seed(1)
    ours = [tg.from_torch(t.clone()) for t in running(4)]
    theirs = [t.torch().clone() for t in ours]
    for step in range(3):
        x = randn(6, 4, 3) * (step + 1.0) + step
        version = ours[0]._version
        F.batch_norm(tg.from_torch(x.half()), ours[0], ours[1], training=True, momentum=0.2)
        torch.nn.functional.batch_norm(x.half().float(), theirs[0], theirs[1], training=True,
                                       momentum=0.2)
        assert ours[0]._version > version  # written in place: saved copies are stale
    assert_close(ours[0], theirs[0], name="running_mean")
    assert_close(ours[1], theirs[1], name="running_var")


def test_modules_match_torch_over_training_and_eval():
    """BatchNorm1d (2-D and 3-D input) and BatchNorm2d, with momentum 0.1 and None (the
    cumulative average over num_batches_tracked), training steps then eval: outputs,
    gradients and every buffer as torch's."""
    torch.manual_seed(2)
    for cls, shape, kwargs in [("BatchNorm1d", (8, 3), {}),
                               ("BatchNorm1d", (4, 3, 5), {"momentum": None}),
                               ("BatchNorm2d", (2, 3, 4, 4), {"eps": 1e-3, "momentum": 0.3})]:
        ours, theirs = getattr(nn, cls)(3, **kwargs), getattr(torch.nn, cls)(3, **kwargs)
        with torch.no_grad():
            theirs.weight.copy_(randn(3))
            theirs.bias.copy_(randn(3))
        ours.load_state_dict(theirs.state_dict())
        for step in range(3):
            x = randn(*shape) * 2.0 + step
            t = tg.from_torch(x, requires_grad=True)
            y = ours(t)
            x_ref = x.clone().requires_grad_(True)
            y_ref = theirs(x_ref)
            grad = randn(*shape)
            y.backward(tg.from_torch(grad))
            y_ref.backward(grad)
            assert_close(y, y_ref, name=f"{cls} y step {step}")
            assert_close(t.grad, x_ref.grad, name=f"{cls} dx step {step}")
        for name, param in ours.named_parameters():
            assert_close(param.grad, getattr(theirs, name).grad, name=f"{cls} {name}.grad")
        check_state(ours, theirs, cls)
        assert ours.num_batches_tracked.item() == 3
        ours.eval()
        theirs.eval()
        x = randn(*shape)
        assert_parity(ours, theirs, x, dtype=torch.float32)  # y and dx in eval mode
        before = ours.running_mean.torch().clone()
        ours(tg.from_torch(x))
        assert torch.equal(ours.running_mean.torch(), before)  # eval leaves them alone


def test_mlp_with_batch_norm_trains_as_torch():
    """Linear -> BatchNorm1d -> ReLU -> Linear, MSE, two SGD steps: parameters, running
    statistics and the loss match torch's."""
    torch.manual_seed(3)
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8),
                                 torch.nn.ReLU(), torch.nn.Linear(8, 2))
    ours = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    ours.load_state_dict(theirs.state_dict())
    opt, opt_ref = tg.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(
        theirs.parameters(), lr=0.1)
    for step in range(2):
        x, target = randn(10, 6), randn(10, 2)
        loss = F.mse_loss(ours(tg.from_torch(x)), tg.from_torch(target))
        loss_ref = torch.nn.functional.mse_loss(theirs(x), target)
        opt.zero_grad()
        opt_ref.zero_grad()
        loss.backward()
        loss_ref.backward()
        opt.step()
        opt_ref.step()
        assert_close(loss, loss_ref, name=f"loss step {step}")
    check_state(ours, theirs, "mlp")


def test_state_dict_buffers_and_options():
    variants = [dict(), dict(affine=False), dict(track_running_stats=False),
                dict(eps=1e-3, momentum=None), dict(bias=False)]
    for kwargs in variants:
        ours, theirs = nn.BatchNorm2d(4, **kwargs), torch.nn.BatchNorm2d(4, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        for key, value in ours.state_dict().items():  # initialised as torch
            assert value.dtype == theirs.state_dict()[key].dtype
            assert torch.equal(value.torch(), theirs.state_dict()[key])
        state = {k: (v + 1 if v.is_floating_point() else v + 5)
                 for k, v in theirs.state_dict().items()}
        result = ours.load_state_dict(state)
        assert result.missing_keys == [] and result.unexpected_keys == []
        back = torch.nn.BatchNorm2d(4, **kwargs)
        back.load_state_dict({k: v.torch().clone() for k, v in ours.state_dict().items()})
        for key, value in back.state_dict().items():
            assert torch.equal(value, state[key]), key
    # without running statistics, eval normalizes with the batch's, as torch
    ours, theirs = nn.BatchNorm1d(3, track_running_stats=False), torch.nn.BatchNorm1d(
        3, track_running_stats=False)
    ours.eval()
    theirs.eval()
    assert ours.running_mean is None
    assert_parity(ours, theirs, randn(5, 3), dtype=torch.float32)
    half = nn.BatchNorm1d(3).half()  # buffers follow the module's dtype, the count stays int
    assert half.running_var.dtype == torch.float16
    assert half.num_batches_tracked.dtype == torch.int64
    half(tg.from_torch(randn(4, 3).half()))
    assert half.num_batches_tracked.item() == 1


def test_eval_gradients_and_saved_running_statistics():
    """Eval's backward: dx = w rstd g from the running statistics; dw and db still flow.
    Changing the running statistics in place before backward is an error, as torch."""
    torch.manual_seed(4)
    x = tg.from_torch(randn(2, 3, 4).double(), requires_grad=True)
    w = tg.from_torch(randn(3).double(), requires_grad=True)
    b = tg.from_torch(randn(3).double(), requires_grad=True)
    rm, rv = (tg.from_torch(t.double()) for t in running(3))
    assert gradcheck(lambda t, ww, bb: F.batch_norm(t, rm, rv, ww, bb, False), (x, w, b))
    assert gradcheck(lambda t, ww: F.batch_norm(t, rm, rv, ww, None, True), (x, w))
    y = F.batch_norm(x, rm, rv, w, b, training=False)
    rm.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_errors_name_shapes_and_arguments():
    x = tg.from_torch(randn(4, 3))
    rm, rv = (tg.from_torch(t) for t in running(3))
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when "
                                         r"training, got input size torch.Size\(\[1, 3\]\)"):
        nn.BatchNorm1d(3)(tg.from_torch(randn(1, 3)))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(tg.from_torch(randn(2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        nn.BatchNorm2d(3)(x)
    with pytest.raises(tg.ShapeError, match=r"running_mean should contain 3 elements not 4"):
        nn.BatchNorm1d(4)(x)
    with pytest.raises(RuntimeError, match=r"running_mean must be defined in evaluation mode"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(TypeError, match=r"argument 'momentum' must be float, not NoneType"):
        F.batch_norm(x, rm, rv, training=True, momentum=None)
    with pytest.raises(TypeError, match=r"argument 'weight' must be Tensor, not Tensor"):
        F.batch_norm(x, rm, rv, torch.ones(3, device=DEVICE))
    with pytest.raises(TypeError, match=r"input float32, weight float16"):
        F.batch_norm(x, None, None, tg.ones(3, dtype=torch.float16), training=True)


def test_eps_checked_as_torch():
    """torch's F.batch_norm refuses eps <= 0 in training and eps < 0 in eval (review: both
    ran here, and eps = 0 divided a constant channel by zero)."""
    x = tg.from_torch(randn(4, 3))
    rm, rv = (tg.from_torch(t) for t in running(3))
    with pytest.raises(ValueError, match=r"eps must be positive during training, but got 0.0"):
        F.batch_norm(x, rm, rv, training=True, eps=0.0)
    with pytest.raises(ValueError, match=r"eps must be positive during training"):
        nn.BatchNorm1d(3, eps=0.0)(x)
    with pytest.raises(ValueError, match=r"eps must be non-negative, but got -1e-05"):
        F.batch_norm(x, rm, rv, training=False, eps=-1e-5)
    assert_close(F.batch_norm(x, rm, rv, training=False, eps=0.0),
                 torch.nn.functional.batch_norm(x.torch(), rm.torch(), rv.torch(), eps=0.0))
