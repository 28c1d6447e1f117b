"""F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d and nn.MaxPool2d / AvgPool2d /
AdaptiveAvgPool2d through autograd against torch.autograd: outputs, max indices (exactly)
and input gradients in fp32 / fp16 / bf16, fp64 gradcheck, the modules' signatures and
reprs, a small CNN head, and the argument errors."""

import inspect

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn
from tritongrad.nn import functional as F
from tritongrad.testing import assert_close, assert_parity, gradcheck
from tritongrad.testing.ref_pool import (
    adaptive_avg_pool2d_reference,
    avg_pool2d_reference,
    max_pool2d_reference,
)

DEVICE = tg.device()
# fp32 and bf16 here; tests/kernels/test_pool.py runs the launchers in all four dtypes
DTYPES = [torch.float32, torch.bfloat16]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


def channels_last(n, c, h, w):
    return randn(n, h, w, c).permute(0, 3, 1, 2)


# name: (input, kwargs of max_pool2d)
MAX_CASES = {
    "k2-odd": (lambda: randn(2, 3, 7, 9), dict(kernel_size=2)),
    "k3-s1-p1-overlap-unbatched": (lambda: randn(3, 7, 9),
                                   dict(kernel_size=3, stride=1, padding=1)),
    "ceil-dilated-channels-last": (lambda: channels_last(1, 3, 9, 7),
                                   dict(kernel_size=(3, 2), stride=2, padding=1, dilation=2,
                                        ceil_mode=True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(MAX_CASES))
def test_max_pool2d_parity_and_indices(case, dtype):
    torch.manual_seed(0)
    make, kwargs = MAX_CASES[case]
    x = make()
    window = (kwargs["kernel_size"], kwargs.get("stride"), kwargs.get("padding", 0),
              kwargs.get("dilation", 1), kwargs.get("ceil_mode", False))
    comparisons = assert_parity(lambda t: F.max_pool2d(t, *window, return_indices=True),
                                lambda t: max_pool2d_reference(t, *window), x, dtype=dtype)
    assert [c.name for c in comparisons] == ["output 0", "output 1", "grad of input 0"]
    # the parity tolerance is loose for integers in bf16: the indices must be equal
    ours = F.max_pool2d(tg.from_torch(x.to(dtype)), return_indices=True, **kwargs)
    theirs = torch.nn.functional.max_pool2d(x.to(dtype).float(), return_indices=True,
                                            **kwargs)
    assert ours[1].dtype == torch.int64
    assert torch.equal(ours[1].torch(), theirs[1])
    assert isinstance(F.max_pool2d(tg.from_torch(x), **kwargs), tg.Tensor)  # values only


# name: (input, args of avg_pool2d after the input)
AVG_CASES = {
    "k2-odd": (lambda: randn(2, 3, 7, 9), (2,)),
    "k3-s1-p1-overlap-exclude-pad": (lambda: randn(1, 2, 7, 9), (3, 1, 1, False, False)),
    "ceil-divisor-channels-last-unbatched": (lambda: channels_last(1, 3, 9, 7)[0],
                                             ((3, 2), 2, (1, 0), True, True, 4)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(AVG_CASES))
def test_avg_pool2d_parity(case, dtype):
    torch.manual_seed(1)
    make, args = AVG_CASES[case]
    full = args + (None, 0, False, True, None)[len(args) - 1:]
    assert_parity(lambda t: F.avg_pool2d(t, *args), lambda t: avg_pool2d_reference(t, *full),
                  make(), dtype=dtype)


ADAPTIVE_CASES = {
    "3x4": (lambda: randn(2, 3, 7, 9), (3, 4)),
    "global-channels-last": (lambda: channels_last(2, 3, 7, 9), 1),
    "None-upsample-unbatched": (lambda: randn(3, 7, 9), (None, 11)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d_parity(case, dtype):
    torch.manual_seed(2)
    make, size = ADAPTIVE_CASES[case]
    assert_parity(lambda t: F.adaptive_avg_pool2d(t, size),
                  lambda t: adaptive_avg_pool2d_reference(t, size), make(), dtype=dtype)


def test_nan_inf_and_ties_through_autograd():
    """Ties (values in {0, 1}) in overlapping windows, a NaN and -inf rows: the same
    outputs, indices and gradients as torch in fp32."""
    torch.manual_seed(3)
    x = torch.randint(0, 2, (1, 2, 7, 9)).float()
    x[0, 0, 3, 3] = float("nan")
    x[0, 1, :2] = float("-inf")
    comparisons = assert_parity(lambda t: F.max_pool2d(t, 3, 1, 1, return_indices=True),
                                lambda t: max_pool2d_reference(t, 3, 1, 1, 1, False), x,
                                dtype=torch.float32)
    assert comparisons[1].max_abs == 0.0  # indices identical
    assert_parity(lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: avg_pool2d_reference(
        t, 3, 2, 1, False, True, None), x, dtype=torch.float32)


@pytest.mark.parametrize("name", ["max", "avg", "adaptive"])
def test_fp64_gradcheck(name):
    torch.manual_seed(4)
    x = tg.from_torch(randn(1, 1, 3, 5).double(), requires_grad=True)
    fn = {"max": lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
          "avg": lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
          "adaptive": lambda t: F.adaptive_avg_pool2d(t, (3, 2))}[name]
    assert gradcheck(fn, (x,), fast_mode=True)  # 30 forwards, one backward


def test_modules_match_torch_signatures_and_reprs():
    for ours, theirs in ((nn.MaxPool2d, torch.nn.MaxPool2d), (nn.AvgPool2d, torch.nn.AvgPool2d),
                         (nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d)):
        mine = inspect.signature(ours.__init__).parameters
        torch_params = inspect.signature(theirs.__init__).parameters
        assert [(p.name, p.default) for p in mine.values()] == \
            [(p.name, p.default) for p in torch_params.values()]
    variants = [(nn.MaxPool2d, torch.nn.MaxPool2d, (2,), {}),
                (nn.MaxPool2d, torch.nn.MaxPool2d, ((3, 2),),
                 dict(stride=1, padding=1, dilation=2, return_indices=True, ceil_mode=True)),
                (nn.AvgPool2d, torch.nn.AvgPool2d, (3,), {}),
                (nn.AvgPool2d, torch.nn.AvgPool2d, (3, 1, 1, True, False, 4), {}),
                (nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, ((None, 7),), {}),
                (nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, (1,), {})]
    for ours, theirs, args, kwargs in variants:
        mine, torch_module = ours(*args, **kwargs), theirs(*args, **kwargs)
        assert repr(mine) == repr(torch_module)
        assert vars(torch_module)["stride" if ours is not nn.AdaptiveAvgPool2d
                                  else "output_size"] == getattr(
            mine, "stride" if ours is not nn.AdaptiveAvgPool2d else "output_size")
        assert list(mine.parameters()) == [] and mine.state_dict() == {}


def test_modules_forward_and_backward_as_torch():
    torch.manual_seed(5)
    x = randn(2, 3, 7, 9)
    for ours, theirs in ((nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                          torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
                         (nn.AvgPool2d(2, 1, 1, count_include_pad=False),
                          torch.nn.AvgPool2d(2, 1, 1, count_include_pad=False)),
                         (nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3)))):
        assert_parity(ours, theirs, x, dtype=torch.float32)
    y, indices = nn.MaxPool2d(2, return_indices=True)(tg.from_torch(x))
    assert torch.equal(indices.torch(), torch.nn.MaxPool2d(2, return_indices=True)(x)[1])


def test_small_cnn_head_against_torch():
    """max pool -> avg pool -> global pool -> flatten -> linear, the pattern of a small
    CNN's head, forward and every gradient against torch."""
    torch.manual_seed(6)
    ours = nn.Sequential(nn.MaxPool2d(2, 1), nn.AvgPool2d(3, 2, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(3, 4))
    theirs = torch.nn.Sequential(torch.nn.MaxPool2d(2, 1), torch.nn.AvgPool2d(3, 2, 1),
                                 torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(3, 4))
    ours.load_state_dict(theirs.state_dict())
    assert_parity(ours, theirs, randn(2, 3, 7, 9), dtype=torch.float32)


def test_needs_input_grad_and_saved_indices():
    torch.manual_seed(7)
    x = tg.from_torch(randn(1, 2, 7, 9))  # no grad: forward only, nothing recorded
    with recorded_launches() as launches:
        y, indices = F.max_pool2d(x, 2, return_indices=True)
        z = F.avg_pool2d(x, 2)
    assert not y.requires_grad and not indices.requires_grad and not z.requires_grad
    assert [i.kernel_name for i in launches] == ["max_pool2d_fwd_kernel",
                                                 "avg_pool2d_fwd_kernel"]
    x = tg.from_torch(randn(1, 2, 7, 9), requires_grad=True)
    y, indices = F.max_pool2d(x, 3, 1, return_indices=True)
    assert y.requires_grad and not indices.requires_grad
    assert y.grad_fn.name() == "MaxPool2dBackward"
    with recorded_launches() as launches:
        y.sum().backward()
    assert "max_pool2d_bwd_kernel" in [i.kernel_name for i in launches]
    assert x.grad is not None and tuple(x.grad.shape) == (1, 2, 7, 9)


def test_errors_through_the_functional_api():
    x = tg.from_torch(randn(1, 2, 5, 5))
    with pytest.raises(tg.ShapeError, match=r"max_pool2d: Expected 3D or 4D"):
        F.max_pool2d(tg.from_torch(randn(5, 5)), 2)
    with pytest.raises(tg.ShapeError, match=r"Given input size: \(2x5x5\). Calculated output "
                                            r"size: \(2x0x0\). Output size is too small"):
        F.avg_pool2d(x, 6, 1)
    with pytest.raises(tg.ShapeError, match=r"pad should be at most half of effective kernel"):
        nn.MaxPool2d(2, padding=2)(x)
    with pytest.raises(TypeError, match=r"max_pool2d: input has dtype int64"):
        F.max_pool2d(tg.tensor([[[[1, 2], [3, 4]]]]), 2)
    with pytest.raises(TypeError, match=r"adaptive_avg_pool2d: input must be a Tensor"):
        F.adaptive_avg_pool2d([[1.0]], 1)
    with pytest.raises(tg.ShapeError, match=r"output_size must be 2"):
        nn.AdaptiveAvgPool2d((1, 2, 3))(x)
    with pytest.raises(tg.ShapeError, match=r"divisor must be not zero"):
        nn.AvgPool2d(2, divisor_override=0)(x)
    # a torch tensor on tritongrad's device is taken as a constant input, as other ops do
    assert_close(F.adaptive_avg_pool2d(x.torch(), 1),
                 torch.nn.functional.adaptive_avg_pool2d(x.torch(), 1), dtype=torch.float32)
