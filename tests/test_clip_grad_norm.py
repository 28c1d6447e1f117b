"""clip_grad_norm_ on tg parameters against torch.nn.utils.clip_grad_norm_."""

import math

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.kernels._checks import ValueCheckError
from tritongrad.nn_utils_clip import clip_grad_norm_
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SIZES = [(1,), (7,), (3, 11), (130,), (2, 3, 5), (4099,)]
DEVICE = tg.device()
# inf * 0 = NaN when an inf norm scales the grads, as in torch; numpy warns about it.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def make_pairs(count, scale=1.0):
    """(tg params with grads, torch params with the same grads), mixed sizes and dtypes."""
    ours, theirs = [], []
    for i in range(count):
        dtype = DTYPES[i % 3]
        shape = SIZES[i % len(SIZES)]
        grad = (torch.randn(shape) * scale).to(dtype)
        p = tg.zeros(*shape, dtype=dtype, requires_grad=True)
        p.grad = tg.from_torch(grad.to(DEVICE, copy=True))
        ref = torch.zeros(shape, dtype=dtype, requires_grad=True)
        ref.grad = grad.clone()
        ours.append(p)
        theirs.append(ref)
    return ours, theirs


def coarsest(params):
    """torch rounds each dtype group's norm to that dtype before combining them, so results
    are compared at the tolerance of the least precise dtype present."""
    order = [torch.float32, torch.float16, torch.bfloat16]
    return max((p.dtype for p in params), key=order.index)


@pytest.mark.parametrize("count", [1, 3, 150])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_matches_torch(count, norm_type):
    ours, theirs = make_pairs(count)
    max_norm = 0.7
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    with recorded_launches() as launches:
        total = clip_grad_norm_(ours, max_norm, norm_type)
    assert len(launches) == 2
    assert isinstance(total, tg.Tensor) and total.shape == ()
    assert total.dtype == want.dtype  # the grads' promoted dtype, as torch
    dtype = coarsest(ours)
    assert_close(total.float(), want.float(), dtype=dtype, name="total_norm")
    for i, (p, ref) in enumerate(zip(ours, theirs)):
        assert p.grad.dtype == ref.grad.dtype
        assert_close(p.grad, ref.grad, dtype=dtype, name=f"grad {i}")


def test_345_and_a_single_tensor():
    p = tg.zeros(3, requires_grad=True)
    p.grad = tg.tensor([3.0, 4.0, 0.0])
    total = clip_grad_norm_(p, 1.0)
    assert float(total) == pytest.approx(5.0, rel=1e-6)
    assert_close(p.grad, torch.tensor([0.6, 0.8, 0.0]), dtype=torch.float32)


def test_no_grads_returns_zero_and_params_without_grad_are_skipped():
    a, b = tg.zeros(4, requires_grad=True), tg.zeros(2, requires_grad=True)
    assert float(clip_grad_norm_([a, b], 1.0)) == 0.0
    b.grad = tg.tensor([6.0, 8.0])
    assert float(clip_grad_norm_([a, b], 5.0)) == pytest.approx(10.0, rel=1e-6)
    assert a.grad is None
    assert_close(b.grad, torch.tensor([3.0, 4.0]), dtype=torch.float32)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_norm_like_torch(bad):
    ours, theirs = make_pairs(3)
    ours[1].grad.torch()[0] = bad
    theirs[1].grad[0] = bad
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    total = clip_grad_norm_(ours, 1.0)
    assert_close(total, want.float(), dtype=torch.float32)
    for p, ref in zip(ours, theirs):  # NaN (and zeros for an inf norm) exactly where torch has
        assert_close(p.grad, ref.grad, dtype=coarsest(ours))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_norm_and_coefficient_round_as_torch(dtype):
    # fp16: |g| = 1.2e5 is past fp16's 65504, so torch's norm is inf and the coefficient
    # max_norm / inf zeroes the grads; a finite fp32 coefficient would leave grads next
    # to a returned inf. bf16: the coefficient comes from the bf16-rounded norm.
    values = [[60000.0, 60000.0, -60000.0, 60000.0], [3.0, 4.5, -7.25]]
    ours = [tg.zeros(len(v), dtype=dtype, requires_grad=True) for v in values]
    theirs = [torch.zeros(len(v), dtype=dtype, requires_grad=True) for v in values]
    for p, q, v in zip(ours, theirs, values):
        p.grad = tg.tensor(v, dtype=dtype)
        q.grad = torch.tensor(v, dtype=dtype)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1000.0)
    total = clip_grad_norm_(ours, 1000.0)
    assert total.dtype == dtype
    torch.testing.assert_close(total.torch().cpu(), want, rtol=0, atol=0)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.grad.torch().cpu(), q.grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype,scale,max_norm", [(torch.bfloat16, 1.0, 1e-3),
                                                   (torch.float16, 1e-6, 1e-9),
                                                   (torch.float32, 1.0, 0.37)])
def test_coefficient_is_torchs_reciprocal_times_max_norm(dtype, scale, max_norm):
    # torch's max_norm / (norm + 1e-6) is reciprocal() * max_norm, rounded twice in the
    # norm's dtype: bf16 coefficients then differ from one division by an ulp (7.7e-3 of
    # the grads), and an fp16 norm below 1.5e-5 has an infinite reciprocal: not clipped.
    gen = torch.Generator().manual_seed(1)
    values = [torch.randn(n, generator=gen) * scale for n in (25000, 7, 300)]
    ours = [tg.zeros(len(v), dtype=dtype, requires_grad=True) for v in values]
    theirs = [torch.zeros(len(v), dtype=dtype, requires_grad=True) for v in values]
    for p, q, v in zip(ours, theirs, values):
        p.grad = tg.from_torch(v.to(dtype).to(tg.device()))
        q.grad = v.to(dtype).clone()
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float("inf"))
    total = clip_grad_norm_(ours, max_norm, norm_type=float("inf"))
    torch.testing.assert_close(total.torch().cpu(), want, rtol=0, atol=0)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.grad.torch().cpu(), q.grad, rtol=0, atol=0)


def test_mixed_dtypes_round_each_tensors_norm_as_torch():
    # torch takes each gradient's norm in its own dtype, then the norm of those: one fp16
    # gradient with a norm past 65504 makes the total inf (and zeroes every gradient) even
    # beside fp32 ones, and a bf16 gradient's norm keeps 8 bits. Several chunks per tensor.
    gen = torch.Generator().manual_seed(0)
    cases = [[(torch.full((2,), 60000.0), torch.float16), (torch.tensor([1.0, 2.0]), torch.float32)],
             [(torch.tensor([0.1, 0.3, 0.7]), torch.bfloat16), (torch.tensor([1.5, 2.0]), torch.float32)],
             [(torch.randn(n, generator=gen), dtype) for n, dtype in
              [(9000, torch.bfloat16), (5, torch.float32), (4097, torch.float16),
               (12000, torch.float32), (1, torch.bfloat16)]]]
    for case in cases:
        ours = [tg.zeros(len(v), dtype=d, requires_grad=True) for v, d in case]
        theirs = [torch.zeros(len(v), dtype=d, requires_grad=True) for v, d in case]
        for p, q, (v, d) in zip(ours, theirs, case):
            p.grad = tg.from_torch(v.to(d).to(tg.device()))
            q.grad = v.to(d).clone()  # torch scales in place: never the tensor ours reads
        want = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        total = clip_grad_norm_(ours, 1.0)
        torch.testing.assert_close(total.torch().cpu(), want, rtol=0, atol=0)
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p.grad.torch().cpu(), q.grad, rtol=0, atol=0)


def test_error_if_nonfinite_raises_before_touching_grads():
    ours, _ = make_pairs(3)
    ours[2].grad.torch()[0] = float("inf")
    before = [p.grad.torch().clone() for p in ours]
    with pytest.raises(ValueCheckError, match="is non-finite, so it cannot be clipped"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    for p, orig in zip(ours, before):
        assert torch.equal(p.grad.torch(), orig)


def test_grads_get_a_new_version():
    p = tg.zeros(5, requires_grad=True)
    p.grad = tg.ones(5)
    version = p.grad._version
    clip_grad_norm_([p], 0.1)
    assert p.grad._version > version


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_total_norm_comes_back_in_the_grads_dtype(dtype):
    grads = [torch.randn(7, 3).to(dtype), torch.randn(5).to(dtype)]
    ours, theirs = [], []
    for g in grads:
        p = tg.zeros(*g.shape, dtype=dtype, requires_grad=True)
        p.grad = tg.from_torch(g.to(DEVICE, copy=True))
        ref = torch.zeros(g.shape, dtype=dtype, requires_grad=True)
        ref.grad = g.clone()
        ours.append(p)
        theirs.append(ref)
    want = torch.nn.utils.clip_grad_norm_(theirs, 0.5)
    total = clip_grad_norm_(ours, 0.5)
    assert total.dtype == want.dtype == dtype
    assert_close(total.float(), want.float(), dtype=dtype, name="total_norm")
    for p, ref in zip(ours, theirs):
        assert_close(p.grad, ref.grad, dtype=dtype)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_fp64_grads_alone_and_beside_others_as_torch(norm_type):
    # gradcheck users' fp64 gradients: normed and clipped in fp64 (1e150 squares past fp32's
    # range), alone or beside fp32/fp16/bf16 ones, whose norms are each rounded to their own
    # dtype while the total and the coefficient are fp64 (the promoted dtype), as torch.
    gen = torch.Generator().manual_seed(3)
    fp64 = torch.float64
    cases = [[(torch.randn(40, generator=gen, dtype=fp64) * 1e150, fp64),
              (torch.randn(5, generator=gen, dtype=fp64), fp64)],
             [(torch.randn(33, generator=gen, dtype=fp64), fp64),
              (torch.randn(4097, generator=gen) * 0.01, torch.float16),
              (torch.randn(9, generator=gen), torch.bfloat16),
              (torch.randn(6, generator=gen), torch.float32)]]
    for case in cases:
        ours = [tg.zeros(len(v), dtype=d, requires_grad=True) for v, d in case]
        theirs = [torch.zeros(len(v), dtype=d, requires_grad=True) for v, d in case]
        for p, q, (v, d) in zip(ours, theirs, case):
            p.grad = tg.from_torch(v.to(d).to(DEVICE))
            q.grad = v.to(d).clone()
        want = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
        with recorded_launches() as launches:
            total = clip_grad_norm_(ours, 0.5, norm_type)
        assert len(launches) == 2
        assert total.dtype == want.dtype == fp64
        assert_close(total, want, dtype=fp64, name="total_norm")
        for p, q in zip(ours, theirs):
            assert p.grad.dtype == q.grad.dtype
            assert_close(p.grad, q.grad, dtype=q.grad.dtype, name=f"{q.grad.dtype} grad")
