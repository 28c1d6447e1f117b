"""unfold / fold launchers (kernels/conv.py) against torch.nn.functional.unfold / fold: every
dtype, odd sizes, kernel / stride / padding / dilation, strided inputs and outputs,
asymmetric padding, the fold's output dtype, and the argument errors."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import conv
from tritongrad.kernels._checks import DeviceError, DTypeError, ShapeError
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]

# (image shape, kernel_size, dilation, padding, stride)
GEOMETRIES = {
    "3x3": ((2, 3, 7, 9), 3, 1, 0, 1),
    "3x3-pad1": ((2, 3, 7, 9), 3, 1, 1, 1),
    "2x3-stride2-dil2-pad1": ((2, 3, 7, 9), (2, 3), 2, 1, 2),
    "1x1-batch1": ((1, 5, 4, 6), 1, 1, 0, 1),
    "mixed-pairs": ((1, 2, 8, 5), (3, 1), (1, 2), (0, 2), (3, 1)),
    "whole-image": ((3, 2, 4, 5), (4, 5), 1, 0, 1),
}


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_unfold_and_fold_match_torch(name, dtype):
    shape, kernel, dilation, padding, stride = GEOMETRIES[name]
    torch.manual_seed(0)
    x = randn(*shape, dtype=dtype)
    cols = conv.unfold(x, kernel, dilation, padding, stride)
    expected = F.unfold(x, kernel, dilation, padding, stride)
    assert cols.dtype == dtype and cols.is_contiguous()
    assert torch.equal(cols, expected)  # a copy: exact in every dtype
    # fold sums in fp32 (fp64) and rounds once: judged against torch in fp64, rounded
    grad = randn(*expected.shape, dtype=dtype)
    folded = conv.fold(grad, shape[2:], kernel, dilation, padding, stride)
    reference = F.fold(grad.double(), shape[2:], kernel, dilation, padding, stride)
    assert folded.dtype == dtype and tuple(folded.shape) == shape
    assert_close(folded, reference.to(dtype), dtype=dtype, name=f"fold {name}")


def test_strided_views_in_and_out():
    """A channels-last image and a transposed column buffer are read and written in place
    (one launch each, no copy), as the conv uses them."""
    torch.manual_seed(1)
    x = randn(2, 7, 9, 3).permute(0, 3, 1, 2)  # NCHW view of NHWC memory
    buffer = torch.empty(2, 63, 27, device=DEVICE)  # (N, L, C KH KW)
    with recorded_launches() as launches:
        out = conv.unfold(x, 3, padding=1, out=buffer.transpose(1, 2))
    assert [info.kernel_name for info in launches] == ["unfold_kernel"]
    assert out.data_ptr() == buffer.data_ptr()
    assert torch.equal(out, F.unfold(x, 3, padding=1))
    cols = randn(2, 63, 27).transpose(1, 2)  # fold reads a transposed view
    sliced = randn(3, 28, 130)[::2, 1:, ::2]  # (2, 27, 65) with odd strides
    for value, size in ((cols, (7, 9)), (sliced[:, :, :63], (7, 9))):
        assert_close(conv.fold(value, size, 3, padding=1),
                     F.fold(value, size, 3, padding=1), dtype=torch.float32)


def test_asymmetric_padding_is_torch_pad_then_unfold():
    """padding_end pads the bottom / right edges alone (conv2d's padding='same' with an
    even kernel): the same as zero-padding x first, then unfolding with no padding."""
    torch.manual_seed(2)
    x = randn(2, 3, 5, 6)
    cols = conv.unfold(x, (2, 4), 1, (0, 1), 1, padding_end=(1, 2))
    padded = F.pad(x, (1, 2, 0, 1))  # (left, right, top, bottom)
    assert torch.equal(cols, F.unfold(padded, (2, 4)))
    grad = randn(*cols.shape)
    folded = conv.fold(grad, (5, 6), (2, 4), 1, (0, 1), 1, padding_end=(1, 2))
    reference = F.fold(grad.double(), (6, 9), (2, 4))[:, :, 0:5, 1:7]
    assert_close(folded, reference.float(), dtype=torch.float32)


@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16], ids=str)
def test_fold_of_fp32_columns_into_half_image(out_dtype):
    torch.manual_seed(3)
    cols = randn(2, 18, 35)
    folded = conv.fold(cols, (7, 9), (3, 2), 1, 1, (1, 2), out_dtype=out_dtype)
    assert folded.dtype == out_dtype
    reference = F.fold(cols.double(), (7, 9), (3, 2), 1, 1, (1, 2))
    assert_close(folded, reference.to(out_dtype), dtype=out_dtype)


def test_empty_batch_launches_nothing():
    with recorded_launches() as launches:
        cols = conv.unfold(torch.empty(0, 3, 5, 5, device=DEVICE), 3)
        image = conv.fold(torch.empty(0, 27, 9, device=DEVICE), (5, 5), 3)
    assert tuple(cols.shape) == (0, 27, 9) and tuple(image.shape) == (0, 3, 5, 5)
    assert launches == []


def test_errors_before_launch():
    x = randn(1, 2, 7, 9)
    cases = [
        (ShapeError, r"must be 4-D, got shape \(2, 7, 9\)", lambda: conv.unfold(x[0], 3)),
        (DTypeError, "input has dtype int64", lambda: conv.unfold(x.long(), 3)),
        (ShapeError, r"calculated shape of the array of sliding blocks as \(0, 8\)",
         lambda: conv.unfold(x, (8, 2))),
        (ValueError, "negative padding is not supported", lambda: conv.unfold(x, 2, padding=-1)),
        (ValueError, "non-positive stride is not supported", lambda: conv.unfold(x, 2, stride=0)),
        (ValueError, "non-positive dilation", lambda: conv.unfold(x, 2, dilation=(1, 0))),
        (ShapeError, "list of 2 values .* got kernel_size=\\[1, 2, 3\\]",
         lambda: conv.unfold(x, (1, 2, 3))),
        (TypeError, "kernel_size must be an int", lambda: conv.unfold(x, 2.5)),
        (ShapeError, r"out has shape \(1, 8, 56\), expected \(1, 8, 48\)",
         lambda: conv.unfold(x, 2, out=torch.empty(1, 8, 56, device=DEVICE))),
        (DTypeError, "out has dtype float16",
         lambda: conv.unfold(x, 2, out=torch.empty(1, 8, 48, device=DEVICE).half())),
        (ValueError, "same memory location",
         lambda: conv.unfold(x, 2, out=torch.empty(1, 8, 1, device=DEVICE).expand(1, 8, 48))),
        (ShapeError, r"divisible by the product of kernel_size, but got input.size\(1\)=13",
         lambda: conv.fold(randn(2, 13, 20), (5, 6), 2)),
        (ShapeError, r"sliding blocks 4 \* 5 = 20, but got input.size\(2\)=21",
         lambda: conv.fold(randn(2, 12, 21), (5, 6), 2)),
        (ShapeError, r"must be 3-D, got shape \(12, 20\)", lambda: conv.fold(randn(12, 20),
                                                                               (5, 6), 2)),
        (DeviceError, "input is on meta",
         lambda: conv.unfold(torch.empty(1, 2, 7, 9, device="meta"), 3)),
    ]
    for error, message, call in cases:
        with recorded_launches() as launches, pytest.raises(error, match=message):
            call()
        assert launches == [], message
