"""Parity of softmax and log_softmax with torch, forward and backward, along any dim."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn
from tritongrad.kernels import softmax as softmax_kernels
from tritongrad.nn import functional as F
from tritongrad.testing import assert_close, assert_parity, gradcheck

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE) * 3.0


CASES = {
    "2d-last": (lambda: randn(33, 100), -1),
    "1-row": (lambda: randn(1, 129), 1),
    "odd-3d-middle": (lambda: randn(3, 7, 33), 1),
    "odd-3d-first": (lambda: randn(3, 7, 33), 0),
    "transposed": (lambda: randn(100, 7).T, 1),
    "sliced": (lambda: randn(10, 66)[::3, 1::2], 0),
    "1-d": (lambda: randn(13), 0),
    "scalar": (lambda: randn(()), 0),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_parity(case, log, dtype):
    make, dim = CASES[case]
    ours = F.log_softmax if log else F.softmax
    theirs = torch.log_softmax if log else torch.softmax
    if dtype == torch.float32:
        assert_parity(lambda t: ours(t, dim), lambda t: theirs(t, dim), make(), dtype=dtype)
        return
    # fp16/bf16: the output against torch's, and the gradient against torch's backward of
    # the same saved output. log_softmax's gx = g - exp(y) sum(g) multiplies a one-ulp
    # difference in y by |sum g| (about 10 for 100 columns), past fp16's rtol: an end-to-end
    # gradient would judge the forward's last bit a second time (1 of 3300 elements did).
    x = make().to(dtype)
    x_tg = tg.from_torch(x, requires_grad=True)
    y = ours(x_tg, dim)
    assert_close(y, theirs(x, dim), dtype=dtype, name="output")
    g = torch.randn(x.shape, device=DEVICE).to(dtype)
    y.backward(tg.from_torch(g))
    torch_backward = torch._log_softmax_backward_data if log else torch._softmax_backward_data
    expected = torch_backward(g, y.torch(), dim % max(x.dim(), 1), dtype) if x.dim() else \
        torch_backward(g.reshape(1), y.torch().reshape(1), 0, dtype).reshape(())
    assert_close(x_tg.grad, expected, dtype=dtype, name="grad")


@pytest.mark.parametrize("log", [False, True])
def test_rows_wider_than_a_block(monkeypatch, log):
    monkeypatch.setattr(softmax_kernels, "MAX_BLOCK_C", 64)  # 300 columns: 5 blocks
    x = randn(3, 300)
    x[1, 250] = 40.0  # the row max arrives in a late block: earlier sums are rescaled
    x[2, :70] = float("-inf")  # a first block of -inf
    ours = F.log_softmax if log else F.softmax
    theirs = torch.log_softmax if log else torch.softmax
    assert_parity(lambda t: ours(t, 1), lambda t: theirs(t, 1), x, dtype=torch.float32)


def test_infinities_and_nan_as_torch():
    inf = float("inf")
    x = torch.tensor([[-inf, -inf, -inf], [1.0, -inf, 2.0], [inf, 0.0, 1.0],
                      [float("nan"), 1.0, 2.0]], device=DEVICE)
    for log in (False, True):
        got = (F.log_softmax if log else F.softmax)(tg.from_torch(x), 1).torch()
        want = (torch.log_softmax if log else torch.softmax)(x, 1)
        torch.testing.assert_close(got, want, equal_nan=True)


def test_fp64_gradcheck_methods_and_modules():
    x = tg.from_torch(torch.randn(3, 5, dtype=torch.float64, device=DEVICE), requires_grad=True)
    assert gradcheck(lambda t: t.softmax(1), (x,))
    assert gradcheck(lambda t: t.log_softmax(0), (x,))
    y = torch.randn(4, 6, device=DEVICE)
    torch.testing.assert_close(nn.Softmax(dim=1)(tg.from_torch(y)).torch(), torch.softmax(y, 1))
    torch.testing.assert_close(nn.LogSoftmax(dim=0)(tg.from_torch(y)).torch(),
                               torch.log_softmax(y, 0))
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"


def test_one_launch_each_way_and_errors():
    x = tg.from_torch(randn(5, 9), requires_grad=True)
    with recorded_launches() as launches:
        F.softmax(x, 1).sum().backward()
    names = [info.kernel_name for info in launches]
    assert names.count("softmax_fwd_kernel") == 1 and names.count("softmax_bwd_kernel") == 1
    with pytest.raises(TypeError, match="dim="):
        F.softmax(x)
    with pytest.raises(TypeError, match="floating point.*int64"):
        F.softmax(tg.tensor([1, 2]), 0)
    assert F.softmax(tg.tensor([1, 2]), 0, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(tg.ShapeError, match=r"Dimension out of range.*\[-2, 1\].*2"):
        F.log_softmax(x, 2)
