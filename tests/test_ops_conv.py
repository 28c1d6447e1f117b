"""F.conv2d, F.unfold, F.fold and nn.Conv2d through autograd against torch.autograd: the output
and the gradients of input, weight and bias in fp32 / fp16 / bf16 / fp64, odd sizes, every
geometry parameter, groups, unbatched and channels-last inputs; gradients nobody asked for
are not computed; a small CNN's training step; the module; the argument errors."""

import math

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn
from tritongrad.kernels._checks import DeviceError, DTypeError, ShapeError, UnsupportedError
from tritongrad.nn import functional as F
from tritongrad.testing import assert_close, assert_parity, gradcheck
from tritongrad.testing.ref_conv import conv2d_reference, fold_reference, unfold_reference

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


@pytest.fixture(autouse=True)
def ieee_torch_convolutions():
    """On a GPU, torch's cuDNN convolutions take TF32 inputs by default; ours compute IEEE
    fp32 (unless tg.backends.matmul.allow_tf32), so the torch modules here run without."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = saved


def channels_last(n, c, h, w):
    return randn(n, h, w, c).permute(0, 3, 1, 2)  # an NCHW view of NHWC memory


# name: (input, weight shape, bias, conv2d keyword arguments)
CASES = {
    "3x3": (lambda: randn(2, 3, 7, 9), (4, 3, 3, 3), True, {}),
    "1x1-batch1": (lambda: randn(1, 5, 7, 9), (3, 5, 1, 1), True, {}),
    "2x3-stride2-pad1-dil2": (lambda: randn(2, 3, 7, 9), (4, 3, 2, 3), True,
                              dict(stride=2, padding=1, dilation=2)),
    "unbatched-pad1-no-bias": (lambda: randn(3, 7, 9), (4, 3, 3, 3), False, dict(padding=1)),
    "channels-last": (lambda: channels_last(2, 3, 7, 9), (4, 3, 3, 3), True,
                      dict(padding=(1, 2))),
    "stride-pair-no-bias": (lambda: randn(2, 3, 7, 9), (4, 3, 3, 3), False, dict(stride=(2, 1))),
    "same-even-kernel": (lambda: randn(2, 3, 6, 7), (4, 3, 2, 4), True, dict(padding="same")),
    "same-dilated": (lambda: randn(1, 2, 5, 6), (3, 2, 3, 3), True,
                     dict(padding="same", dilation=(2, 1))),
    "valid": (lambda: randn(2, 3, 5, 5), (2, 3, 3, 3), True, dict(padding="valid")),
    "groups-2": (lambda: randn(2, 4, 6, 5), (6, 2, 3, 3), True, dict(groups=2, padding=1)),
    "depthwise": (lambda: randn(1, 3, 5, 5), (3, 1, 3, 3), True, dict(groups=3)),
    "sliced-input": (lambda: randn(2, 6, 9, 11)[:, ::2, 1:8, ::1], (4, 3, 3, 3), True, {}),
}


# every dtype for these; fp32 for the rest (the interpreter's time is the budget)
ALL_DTYPE_CASES = ("3x3", "2x3-stride2-pad1-dil2", "unbatched-pad1-no-bias", "channels-last",
                   "groups-2")
PARITY_PARAMS = [(case, dtype) for case in sorted(CASES) for dtype in DTYPES
                 if case in ALL_DTYPE_CASES or dtype == torch.float32]


@pytest.mark.parametrize("case,dtype", PARITY_PARAMS, ids=str)
def test_conv2d_parity(case, dtype):
    """y, dx, dw and db against torch (fp16 / bf16: torch in fp32 on the same rounded values,
    rounded once; see ref_conv)."""
    torch.manual_seed(0)
    make, w_shape, has_bias, kwargs = CASES[case]
    x = make()
    weight = randn(*w_shape) * 0.3
    bias = randn(w_shape[0]) if has_bias else None
    assert_parity(lambda t, w, b: F.conv2d(t, w, b, **kwargs),
                  lambda t, w, b: conv2d_reference(t, w, b, **kwargs),
                  x, weight, bias, dtype=dtype)


def test_non_contiguous_weight_and_output_gradient():
    """A weight whose (C, kH, kW) dims do not merge, and an output gradient arriving as a
    transposed view (through the transpose after the conv)."""
    torch.manual_seed(1)
    weight = randn(3, 3, 4, 5).permute(3, 2, 0, 1) * 0.3  # (5, 4, 3, 3), no merged view
    assert_parity(lambda t, w, b: F.conv2d(t, w, b, padding=1).transpose(1, 3),
                  lambda t, w, b: conv2d_reference(t, w, b, padding=1).transpose(1, 3),
                  randn(2, 4, 5, 6), weight, randn(5), dtype=torch.float32)


def test_gradcheck_fp64():
    torch.manual_seed(2)
    x = tg.from_torch(randn(1, 2, 4, 3).double(), requires_grad=True)
    w = tg.from_torch(randn(2, 1, 2, 2).double(), requires_grad=True)
    b = tg.from_torch(randn(2).double(), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2),
                     (x, w, b), fast_mode=True)


def backward_launches(requires, groups=1):
    """The kernels conv2d's backward launches when (x, weight, bias) require grad as given."""
    torch.manual_seed(3)
    x = tg.from_torch(randn(2, 4, 5, 6), requires_grad=requires[0])
    w = tg.from_torch(randn(6, 4 // groups, 3, 3), requires_grad=requires[1])
    b = tg.from_torch(randn(6), requires_grad=requires[2])
    y = F.conv2d(x, w, b, padding=1, groups=groups)
    grad = tg.from_torch(randn(*y.shape))
    with recorded_launches() as launches:
        y.backward(grad)
    for leaf, wanted in zip((x, w, b), requires):
        assert (leaf.grad is not None) == wanted
    return [info.kernel_name for info in launches]


def test_needs_input_grad_skips_unwanted_gradients():
    # dx: W^T dY then fold; dW and db: dY laid out (O, N L), unfold, one matmul giving both
    assert backward_launches((True, True, True)) == [
        "matmul_kernel", "fold_kernel", "copy_kernel", "unfold_kernel", "matmul_kernel"]
    assert backward_launches((True, False, False)) == ["matmul_kernel", "fold_kernel"]
    assert backward_launches((False, True, False)) == [
        "copy_kernel", "unfold_kernel", "matmul_kernel"]
    bias_only = backward_launches((False, False, True))
    assert "matmul_kernel" not in bias_only and "unfold_kernel" not in bias_only
    assert bias_only[-1] == "sum_kernel"
    # groups: one matmul for every group's dW, db by the sum kernel
    grouped = backward_launches((False, True, True), groups=2)
    assert grouped.count("matmul_kernel") == 1 and grouped[-1] == "sum_kernel"


def test_empty_batch():
    x = tg.from_torch(torch.empty(0, 3, 5, 5, device=DEVICE), requires_grad=True)
    w = tg.from_torch(randn(4, 3, 3, 3), requires_grad=True)
    b = tg.from_torch(randn(4), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert tuple(y.shape) == (0, 4, 5, 5)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 5, 5)
    assert torch.equal(w.grad.torch(), torch.zeros(4, 3, 3, 3, device=DEVICE))
    assert torch.equal(b.grad.torch(), torch.zeros(4, device=DEVICE))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_unfold_fold_parity(dtype):
    torch.manual_seed(4)
    for x, args in ((randn(2, 3, 7, 9), ((2, 3), 2, 1, 2)), (randn(3, 5, 4), (3, 1, 1, 1))):
        assert_parity(lambda t: F.unfold(t, *args), lambda t: unfold_reference(t, *args),
                      x, dtype=dtype)
    cols = randn(2, 27, 63)
    assert_parity(lambda t: F.fold(t, (7, 9), 3, 1, 1, 1),
                  lambda t: fold_reference(t, (7, 9), 3, 1, 1, 1), cols, dtype=dtype)
    assert_parity(lambda t: F.fold(t, (5, 6), (2, 3), (2, 1), 0, (1, 2)),
                  lambda t: fold_reference(t, (5, 6), (2, 3), (2, 1), 0, (1, 2)),
                  randn(12, 6), dtype=dtype)  # unbatched: (C kH kW, L)


# ----------------------------------------------------------------------------- the module


def test_module_repr_state_dict_and_init():
    variants = [dict(in_channels=3, out_channels=4, kernel_size=3),
                dict(in_channels=3, out_channels=4, kernel_size=(2, 3), stride=2, padding="valid",
                     dilation=2, bias=False),
                dict(in_channels=4, out_channels=6, kernel_size=3, padding="same", groups=2),
                dict(in_channels=2, out_channels=2, kernel_size=1, padding=(1, 0))]
    tg.manual_seed(5)
    for kwargs in variants:
        ours, theirs = nn.Conv2d(**kwargs), torch.nn.Conv2d(**kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in ours.state_dict().items():
            assert tuple(value.shape) == tuple(theirs.state_dict()[key].shape)
        # torch's bounds: kaiming_uniform(a=sqrt(5)) and the bias both U(+-1/sqrt(fan_in))
        fan_in = kwargs["in_channels"] // kwargs.get("groups", 1) * math.prod(
            ours.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        for param in ours.parameters():
            values = param.torch()
            assert values.abs().max() <= bound and values.abs().max() > 0.5 * bound
        assert ours.weight.dtype == torch.float32


def test_module_matches_torch_after_loading_its_state_dict():
    torch.manual_seed(6)
    theirs = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, device=DEVICE)
    ours = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    result = ours.load_state_dict(theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert_parity(ours, theirs, randn(2, 3, 7, 9), dtype=torch.float32)  # y and dx
    half = nn.Conv2d(3, 4, 3, bias=False, dtype=torch.bfloat16)
    assert half.weight.dtype == torch.bfloat16 and half.bias is None


def test_cnn_training_steps_match_torch():
    """Conv2d -> relu -> flatten -> Linear -> cross_entropy, two SGD steps with momentum:
    loss, every gradient and the updated parameters against torch."""
    torch.manual_seed(7)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1),
                                 torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 4 * 4, 10)).to(DEVICE)
    ours = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))
    ours.load_state_dict(theirs.state_dict())
    their_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    our_opt = tg.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    for step in range(2):
        images, labels = randn(5, 1, 7, 8), torch.randint(0, 10, (5,), device=DEVICE)
        their_opt.zero_grad()
        their_loss = torch.nn.functional.cross_entropy(theirs(images), labels)
        their_loss.backward()
        our_opt.zero_grad()
        our_loss = F.cross_entropy(ours(tg.from_torch(images)), tg.from_torch(labels))
        our_loss.backward()
        assert_close(our_loss, their_loss.detach(), dtype=torch.float32, name=f"loss {step}")
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            assert_close(p.grad, q.grad, dtype=torch.float32, name=f"step {step} d{name}")
        their_opt.step()
        our_opt.step()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            assert_close(p, q.detach(), dtype=torch.float32, name=f"step {step} {name}")


# ----------------------------------------------------------------------------- errors


def fails_before_launch(error, message, call):
    with recorded_launches() as launches, pytest.raises(error, match=message):
        call()
    assert launches == [], message


def test_conv2d_argument_errors():
    def t(*shape, dtype=torch.float32):
        return tg.from_torch(randn(*shape).to(dtype))

    x, w, b = t(2, 3, 7, 9), t(4, 3, 3, 3), t(4)
    cases = [
        (ShapeError, r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got "
                     r"input of size: \[7, 9\]", lambda: F.conv2d(x[0, 0], w)),
        (ShapeError, r"4-D weight .* got weight of size \[3, 3, 3\]", lambda: F.conv2d(x, w[0])),
        (ShapeError, r"Given groups=1, weight of size \[4, 3, 3, 3\], expected input\[2, 5, 7, "
                     r"9\] to have 3 channels, but got 5 channels instead",
         lambda: F.conv2d(t(2, 5, 7, 9), w)),
        (ShapeError, r"Given groups=2, weight of size \[4, 3, 3, 3\], expected input\[2, 3, 7, "
                     r"9\] to have 6 channels, but got 3 channels instead",
         lambda: F.conv2d(x, w, groups=2)),
        (ShapeError, r"expected weight to be divisible by 2 at dimension 0, but got weight of "
                     r"size \[3, 3, 3, 3\]", lambda: F.conv2d(x, t(3, 3, 3, 3), groups=2)),
        (ShapeError, r"Calculated padded input size per channel: \(2 x 2\). Kernel size: "
                     r"\(3 x 3\). Kernel size can't be greater than actual input size",
         lambda: F.conv2d(t(1, 3, 2, 2), w)),
        (ShapeError, r"Calculated padded input size per channel: \(4 x 4\). Kernel size: "
                     r"\(5 x 5\)", lambda: F.conv2d(t(1, 3, 4, 4), w, dilation=2)),
        (ShapeError, r"expected bias to be 1-dimensional with 4 elements, but got bias of size "
                     r"\[5\]", lambda: F.conv2d(x, w, t(5))),
        (ValueError, "padding='same' is not supported for strided convolutions",
         lambda: F.conv2d(x, w, padding="same", stride=2)),
        (ValueError, "Invalid padding string: 'full'", lambda: F.conv2d(x, w, padding="full")),
        (ValueError, "negative padding is not supported", lambda: F.conv2d(x, w, padding=-1)),
        (ValueError, "non-positive stride is not supported", lambda: F.conv2d(x, w, stride=0)),
        (ValueError, "non-positive dilation is not supported",
         lambda: F.conv2d(x, w, dilation=(1, 0))),
        (ValueError, "non-positive groups is not supported", lambda: F.conv2d(x, w, groups=0)),
        (ShapeError, r"list of 2 values to match the convolution dimensions, but got "
                     r"stride=\[1, 2, 3\]", lambda: F.conv2d(x, w, stride=(1, 2, 3))),
        (TypeError, "stride must be an int", lambda: F.conv2d(x, w, stride=1.5)),
        (DTypeError, r"Input type \(float32\) and weight type \(float64\) should be the same",
         lambda: F.conv2d(x, t(4, 3, 3, 3, dtype=torch.float64))),
        (DTypeError, r"Input type \(float32\) and bias type \(float16\) should be the same",
         lambda: F.conv2d(x, w, t(4, dtype=torch.float16))),
        (DTypeError, "input has dtype int64",
         lambda: F.conv2d(t(1, 3, 5, 5, dtype=torch.int64), w)),
        (TypeError, "argument 'weight' must be Tensor", lambda: F.conv2d(x, w.torch())),
        (DeviceError, "weight is on meta",
         lambda: F.conv2d(x, tg.Tensor._wrap(torch.empty(4, 3, 3, 3, device="meta")))),
        (ShapeError, r"Only 3D or 4D input Tensors are supported \(got 2D",
         lambda: F.unfold(x[0, 0], 2)),
        (ShapeError, r"Expected 2D or 3D \(batch mode\) tensor .* but got: \[2, 3, 7, 9\]",
         lambda: F.fold(x, (7, 9), 2)),
    ]
    for error, message, call in cases:
        fails_before_launch(error, message, call)


def test_module_argument_errors():
    for kwargs, error, message in [
        (dict(groups=0), ValueError, "groups must be a positive integer"),
        (dict(groups=2), ValueError, "in_channels must be divisible by groups"),
        (dict(padding="full"), ValueError, "Invalid padding string 'full'"),
        (dict(padding="same", stride=2), ValueError, "not supported for strided convolutions"),
        (dict(padding_mode="reflect"), UnsupportedError, "padding_mode='reflect' is not "
                                                         "implemented"),
        (dict(padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    ]:
        with pytest.raises(error, match=message):
            nn.Conv2d(3, 4, 3, **kwargs)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
