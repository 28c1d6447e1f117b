"""Philox uniform_, normal_ and dropout with a device-side [seed, offset] state."""

import math

import pytest
import torch

import tritongrad
from tests.launches import recorded_launches
from tritongrad.kernels import random as rng
from tritongrad.kernels._checks import LayoutError, OutOfRangeError, ShapeError
from tritongrad.testing.compare import assert_close

DEVICE = tritongrad.device()
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
N = 40_000  # 10 programs; the mean of N U(0,1) draws has std 0.0014


def state(seed=7):
    return rng.new_rng_state(seed, DEVICE)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_uniform_statistics(dtype):
    out = torch.empty(N, device=DEVICE, dtype=dtype)
    rng.uniform_(out, -2.0, 6.0, state())
    values = out.float()
    assert float(values.min()) >= -2.0 and float(values.max()) <= 6.0
    assert abs(float(values.mean()) - 2.0) < 0.05  # 8 * 0.0014 * ~4.5 sigma
    assert abs(float(values.std()) - 8 / math.sqrt(12)) < 0.05


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_normal_statistics(dtype):
    out = torch.empty(200, 200, device=DEVICE, dtype=dtype)
    rng.normal_(out, 1.5, 3.0, state())
    values = out.float()
    assert abs(float(values.mean()) - 1.5) < 0.07  # std of the mean: 0.015
    assert abs(float(values.std()) - 3.0) < 0.05


def test_same_state_reproduces_and_offset_advances():
    s1, s2 = state(123), state(123)
    a, b = torch.empty(1000, device=DEVICE), torch.empty(1000, device=DEVICE)
    rng.normal_(a, 0.0, 1.0, s1)
    rng.normal_(b, 0.0, 1.0, s2)
    assert torch.equal(a, b)
    assert s1.tolist() == [123, 1000]
    c = torch.empty(1000, device=DEVICE)
    rng.normal_(c, 0.0, 1.0, s1)  # successive calls differ
    assert not torch.equal(a, c)
    d = torch.empty(1000, device=DEVICE)
    rng.normal_(d, 0.0, 1.0, state(124))  # other seeds differ
    assert not torch.equal(a, d)


def test_offset_advance_is_a_device_kernel():
    with recorded_launches() as launches:
        rng.uniform_(torch.empty(10, device=DEVICE), 0.0, 1.0, state())
    names = [info.kernel_name for info in launches]
    assert names == ["fill_random_kernel", "rng_advance_kernel"]


def test_strided_out_gets_the_same_values_as_contiguous():
    base = torch.zeros(7, 10, device=DEVICE)
    rng.uniform_(base.t(), 0.0, 1.0, state(3))  # a transposed view, filled in place
    want = torch.empty(10, 7, device=DEVICE)
    rng.uniform_(want, 0.0, 1.0, state(3))
    assert torch.equal(base.t(), want)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_forward_backward_share_the_mask(dtype, p):
    x = (torch.rand(33, 131, device=DEVICE) + 0.5).to(dtype).t()  # no zeros; transposed
    st = state(11)
    y, seed_offset = rng.dropout_fwd(x, p, st)
    assert seed_offset.tolist() == [11, 0] and st.tolist() == [11, x.numel()]
    mask = y != 0
    keep = float(mask.float().mean())
    assert abs(keep - (1 - p)) < 0.02
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    want_y = torch.where(mask, x.float() * scale, 0.0).to(dtype)
    assert_close(y, want_y, dtype=dtype, name="y")
    grad = torch.randn(x.shape, device=DEVICE).to(dtype)
    grad_x = rng.dropout_bwd(grad, p, seed_offset)
    want = torch.where(mask, grad.float() * scale, 0.0).to(dtype)
    assert_close(grad_x, want, dtype=dtype, name="grad_x")


@pytest.mark.parametrize("p", [0.5, 1.0])
def test_dropout_multiplies_by_its_mask_as_torch(p):
    # torch computes x * mask / (1 - p): a dropped NaN or inf gives NaN, not 0 (and a NaN
    # incoming gradient reaches every element)
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0] * 50, device=DEVICE)
    y, seed_offset = rng.dropout_fwd(x, p, state(2))
    dropped = rng.dropout_bwd(torch.ones_like(x), p, seed_offset) == 0
    assert bool(dropped.any())
    assert bool(y[dropped & ~x.isfinite()].isnan().all())
    assert bool((y[dropped & x.isfinite()] == 0).all())
    grad = rng.dropout_bwd(torch.full_like(x, float("nan")), p, seed_offset)
    assert bool(grad.isnan().all())


def test_dropout_successive_masks_differ():
    x = torch.ones(2000, device=DEVICE)
    st = state(5)
    y1, so1 = rng.dropout_fwd(x, 0.5, st)
    y2, so2 = rng.dropout_fwd(x, 0.5, st)
    assert so1.tolist() == [5, 0] and so2.tolist() == [5, 2000]
    assert not torch.equal(y1, y2)


def test_checks():
    with pytest.raises(OutOfRangeError, match="between 0 and 1"):
        rng.dropout_fwd(torch.ones(3, device=DEVICE), 1.5, state())
    with pytest.raises(ShapeError, match="seed, offset"):
        bad_state = torch.zeros(3, dtype=torch.int64, device=DEVICE)
        rng.uniform_(torch.ones(3, device=DEVICE), 0.0, 1.0, bad_state)
    with pytest.raises(TypeError, match="int64"):
        rng.uniform_(torch.ones(3, device=DEVICE), 0.0, 1.0, torch.zeros(2, device=DEVICE))
    with pytest.raises(LayoutError, match="expanded"):
        rng.normal_(torch.ones(1, 3, device=DEVICE).expand(4, 3), 0.0, 1.0, state())
    with pytest.raises(OutOfRangeError, match="std"):
        rng.normal_(torch.ones(3, device=DEVICE), 0.0, -1.0, state())


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_uniform_never_returns_high(dtype):
    # torch.rand is [0, 1): tl.rand can return exactly 1.0, and rounding to bf16 (fp16)
    # carries about 0.2% (0.03%) of draws up to 1.0; those become `low`, as in torch.
    out = torch.empty(100_000, device=DEVICE, dtype=dtype)
    rng.uniform_(out, 0.0, 1.0, state(0))
    assert float(out.max()) < 1.0
    assert float(out.min()) >= 0.0
    out = torch.empty(1000, device=DEVICE, dtype=dtype)
    rng.uniform_(out, 3.0, 3.0, state(0))  # an empty range gives `low`, as torch
    assert bool((out == 3.0).all())


def test_fp64_draws_are_the_fp32_draws_in_fp64_arithmetic():
    # the same Philox numbers: fp64 output equals the fp32 draw up to fp32's rounding, and
    # mean/std/bounds are applied in fp64 (0.1 is not rounded to fp32 first)
    for fill, a, b in ((rng.normal_, 0.1, 3.0), (rng.uniform_, 0.1, 0.7)):
        out64 = torch.empty(5000, device=DEVICE, dtype=torch.float64)
        out32 = torch.empty(5000, device=DEVICE)
        fill(out64, a, b, state(9))
        fill(out32, a, b, state(9))
        assert_close(out64.float(), out32, dtype=torch.float32)
        draw = (out64 - a) / b if fill is rng.normal_ else (out64 - a) / (b - a)
        # fp64 arithmetic: (out - a) / b gives back the fp32 draw to fp64 rounding; fp32
        # arithmetic would leave errors of about 1e-8
        assert float((draw - draw.float().double()).abs().max()) < 1e-13
    x = torch.full((3, 2000), 1.0, device=DEVICE, dtype=torch.float64)
    y, _ = rng.dropout_fwd(x, 0.3, state(4))
    kept = y[y != 0]
    assert torch.equal(kept, torch.full_like(kept, 1.0 / 0.7))  # exact fp64 scale


def test_uniform_rejects_reversed_range():
    with pytest.raises(OutOfRangeError, match="from=2.0 > to=1.0"):
        rng.uniform_(torch.ones(3, device=DEVICE), 2.0, 1.0, state())
