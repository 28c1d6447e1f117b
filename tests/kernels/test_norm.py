"""Multi-tensor norm / clip_grad_norm_ and the differentiable norm and clip_norm kernels,
against torch."""

import math

import pytest
import torch

import tritongrad
from tests.launches import recorded_launches
from tests.test_review_kernels import gpu_float_typing  # noqa: F401 (fixture: GPU typing)
from tritongrad.kernels import norm as norm_kernels
from tritongrad.kernels._checks import LayoutError, ShapeError, ValueCheckError
from tritongrad.testing.compare import assert_close
from tritongrad.testing.ref_norm import clip_norm_reference

DEVICE = tritongrad.device()
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]
INF = math.inf
# Division by a zero norm happens in a tl.where branch that is then discarded; numpy warns.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def lowest_precision(dtypes):
    """The loosest tolerance among dtypes: torch rounds each dtype group's norm to that
    dtype before combining, so every result is only as exact as the coarsest group."""
    order = [torch.float32, torch.float16, torch.bfloat16]
    return max(dtypes, key=order.index)


def torch_clip(grads, max_norm, norm_type, **kwargs):
    params = []
    for g in grads:
        p = torch.zeros_like(g, requires_grad=True)
        p.grad = g.clone()
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, **kwargs)
    return total, [p.grad for p in params]


def mixed_grads(count, scale=1.0):
    dtypes = FLOAT_DTYPES
    sizes = [1, 7, 33, 130, 4099]
    return [(torch.randn(sizes[i % len(sizes)], device=DEVICE) * scale).to(dtypes[i % 3])
            for i in range(count)]


def test_pointer_table_reads_three_dtypes():
    """Indirect pointer loads (tl.load(table + i).to(pointer_type)) work here: the basis of
    every multi-tensor kernel, and listed as unsupported by Triton's interpreter docs."""
    tensors = [torch.full((5,), 1.0, dtype=d, device=DEVICE) for d in FLOAT_DTYPES]
    total = norm_kernels.total_norm(tensors, 2.0)
    # as torch: each tensor's norm sqrt(5) rounded to its dtype, then the norm of those
    assert_close(total, torch.nn.utils.get_total_norm(tensors, 2.0).float(),
                 dtype=torch.float32)
    assert total.item() != pytest.approx(math.sqrt(15.0), rel=1e-5)  # the rounding shows


@pytest.mark.parametrize("count", [1, 3, 150])
@pytest.mark.parametrize("norm_type", [2.0, INF])
def test_clip_grad_norm_matches_torch(count, norm_type):
    grads = mixed_grads(count)
    max_norm = 0.5 if norm_type == 2.0 else 0.3
    want_total, want_grads = torch_clip(grads, max_norm, norm_type)
    with recorded_launches() as launches:
        total = norm_kernels.clip_grad_norm_(grads, max_norm, norm_type)
    assert len(launches) == 2, [info.kernel_name for info in launches]
    dtype = lowest_precision({g.dtype for g in grads})
    assert total.dtype == torch.float32 and total.dim() == 0
    assert_close(total, want_total.float(), dtype=dtype, name="total_norm")
    for i, (got, want) in enumerate(zip(grads, want_grads)):
        assert got.dtype == want.dtype
        assert_close(got, want, dtype=dtype, name=f"grad {i}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_clip_grad_norm_one_dtype_below_threshold_untouched(dtype):
    grads = [torch.randn(70, device=DEVICE).to(dtype), torch.randn(3, 5, device=DEVICE).to(dtype)]
    before = [g.clone() for g in grads]
    want_total, want_grads = torch_clip(grads, 100.0, 2.0)
    total = norm_kernels.clip_grad_norm_(grads, 100.0)
    assert_close(total, want_total.float(), dtype=dtype)
    for got, want, orig in zip(grads, want_grads, before):
        assert_close(got, want, dtype=dtype)
        assert_close(got, orig, dtype=dtype)


def test_clip_grad_norm_345():
    grads = [torch.tensor([3.0, 4.0, 0.0], device=DEVICE)]
    total = norm_kernels.clip_grad_norm_(grads, 1.0)
    assert float(total) == pytest.approx(5.0, rel=1e-6)
    want_total, want_grads = torch_clip([torch.tensor([3.0, 4.0, 0.0])], 1.0, 2.0)
    assert_close(grads[0], want_grads[0], dtype=torch.float32)


def test_clip_grad_norm_empty():
    with recorded_launches() as launches:
        total = norm_kernels.clip_grad_norm_([], 1.0)
    assert float(total) == 0.0 and launches == []
    empty = [torch.empty(0, device=DEVICE)]
    assert float(norm_kernels.clip_grad_norm_(empty, 1.0, INF)) == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("norm_type", [2.0, INF])
def test_clip_grad_norm_nonfinite_like_torch(bad, norm_type):
    values = torch.tensor([1.0, bad, -2.0, 0.5])
    grads = [values.clone().to(DEVICE), torch.ones(5, device=DEVICE)]
    want_total, want_grads = torch_clip([values, torch.ones(5)], 1.0, norm_type)
    total = norm_kernels.clip_grad_norm_(grads, 1.0, norm_type)
    assert_close(total, want_total, dtype=torch.float32)
    for got, want in zip(grads, want_grads):
        assert_close(got, want, dtype=torch.float32)  # NaN where torch has NaN


def test_clip_grad_norm_error_if_nonfinite_raises_before_changes():
    grads = [torch.tensor([1.0, float("inf")], device=DEVICE), torch.ones(3, device=DEVICE)]
    before = [g.clone() for g in grads]
    with pytest.raises(ValueCheckError, match="total norm of order 2.0 for gradients from "
                                              "`parameters` is non-finite"):
        norm_kernels.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    for got, orig in zip(grads, before):
        assert torch.equal(got, orig)
    finite = [torch.tensor([3.0, 4.0], device=DEVICE)]
    with recorded_launches() as launches:  # partials, norm only (read on the host), norm + scale
        total = norm_kernels.clip_grad_norm_(finite, 1.0, error_if_nonfinite=True)
    assert len(launches) == 3
    assert float(total) == pytest.approx(5.0, rel=1e-6)
    assert_close(finite[0], torch.tensor([0.6, 0.8]), dtype=torch.float32)


def test_clip_grad_norm_deterministic():
    grads = mixed_grads(7, scale=3.0)
    copies = [g.clone() for g in grads]
    first = norm_kernels.clip_grad_norm_(grads, 1.0)
    second = norm_kernels.clip_grad_norm_(copies, 1.0)
    assert torch.equal(first, second)
    assert all(torch.equal(a, b) for a, b in zip(grads, copies))


def test_clip_grad_norm_checks():
    with pytest.raises(LayoutError, match="contiguous"):
        norm_kernels.clip_grad_norm_([torch.randn(4, 6, device=DEVICE).t()], 1.0)
    with pytest.raises(norm_kernels.UnsupportedError, match="norm_type 1.0"):
        norm_kernels.clip_grad_norm_([torch.randn(4, device=DEVICE)], 1.0, norm_type=1)
    with pytest.raises(TypeError, match="int64"):  # fp64 is taken (computed in fp64)
        norm_kernels.clip_grad_norm_([torch.ones(4, dtype=torch.int64, device=DEVICE)], 1.0)


def test_clip_grad_norm_rejects_the_same_gradient_twice():
    # Each chunk is scaled in place by the program that owns it: a tensor listed twice would
    # be scaled by two programs at once (a race on a GPU), so it is refused before any launch.
    grad = torch.full((10,), 3.0, device=DEVICE)
    other = torch.ones(4, device=DEVICE)
    with pytest.raises(LayoutError, match=r"tensors\[0\] and tensors\[2\]"):
        norm_kernels.clip_grad_norm_([grad, other, grad], 1.0)
    assert bool((grad == 3.0).all())
    empty = torch.empty(0, device=DEVICE)
    norm_kernels.clip_grad_norm_([empty, empty, other], 1.0)  # empty tensors hold nothing


def test_total_norm_one_launch_pair():
    grads = mixed_grads(5)
    with recorded_launches() as launches:
        total = norm_kernels.total_norm(grads, INF)
    assert len(launches) == 2
    want = max(float(g.float().abs().max()) for g in grads)
    assert float(total) == want


# ----------------------------------------------------------------------------- norm, clip_norm

SHAPES = [
    ("row", lambda d: torch.randn(1, 37, device=DEVICE, dtype=d)),
    ("odd", lambda d: torch.randn(5, 131, device=DEVICE, dtype=d)),
    ("transposed", lambda d: torch.randn(37, 6, device=DEVICE, dtype=d).t()),
    ("sliced", lambda d: torch.randn(9, 40, device=DEVICE, dtype=d)[::2, 3:30]),
    ("3d", lambda d: torch.randn(3, 4, 5, device=DEVICE, dtype=d).transpose(0, 2)),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", [2.0, INF])
@pytest.mark.parametrize("name,make", SHAPES)
@pytest.mark.parametrize("dim", [None, 1, 0])
def test_norm_fwd_bwd(dtype, p, name, make, dim):
    x = make(dtype)
    keepdim = name == "odd"
    x_ref = x.detach().clone().requires_grad_()
    want = torch.linalg.vector_norm(x_ref, p, dim=dim, keepdim=keepdim)
    grad = torch.randn(want.shape, device=DEVICE).to(dtype)
    want.backward(grad)
    got = norm_kernels.norm_fwd(x, p, dim, keepdim)
    assert got.dtype == dtype and got.shape == want.shape
    assert_close(got, want, dtype=dtype, name="norm")
    grad_x = norm_kernels.norm_bwd(grad, x, got, p, dim, keepdim)
    assert_close(grad_x, x_ref.grad, dtype=dtype, name="grad_x")


@pytest.mark.parametrize("dim", [None, 1])
def test_norm_inf_ties_split_gradient_like_torch(dim):
    x = torch.tensor([[3.0, -3.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0]], device=DEVICE)
    x_ref = x.clone().requires_grad_()
    want = torch.linalg.vector_norm(x_ref, INF, dim=dim)
    want.backward(torch.ones_like(want))
    got = norm_kernels.norm_fwd(x, INF, dim)
    grad_x = norm_kernels.norm_bwd(torch.ones_like(got), x, got, INF, dim)
    assert_close(grad_x, x_ref.grad, dtype=torch.float32)


def test_norm_zero_vector_gradient_is_zero():
    x = torch.zeros(2, 5, device=DEVICE)
    for dim in (None, 1):
        n = norm_kernels.norm_fwd(x, 2.0, dim)
        gx = norm_kernels.norm_bwd(torch.ones_like(n), x, n, 2.0, dim)
        assert torch.equal(gx, torch.zeros_like(x))


def test_norm_rejects_other_orders():
    with pytest.raises(norm_kernels.UnsupportedError, match="order 1"):
        norm_kernels.norm_fwd(torch.randn(3, device=DEVICE), 1)
    with pytest.raises(ShapeError, match="dim 2"):
        norm_kernels.norm_fwd(torch.randn(3, 4, device=DEVICE), 2, dim=2)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name,make", SHAPES)
@pytest.mark.parametrize("dim", [None, 1])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # both sides of the threshold
def test_clip_norm_fwd_bwd(dtype, name, make, dim, max_norm):
    x = make(dtype)
    x_ref = x.detach().clone().requires_grad_()
    want = clip_norm_reference(x_ref, max_norm, dim)
    grad = torch.randn(x.shape, device=DEVICE).to(dtype)
    want.backward(grad)
    y, norms = norm_kernels.clip_norm_fwd(x, max_norm, dim)
    assert norms.dtype == torch.float32
    assert_close(y, want, dtype=dtype, name="y")
    grad_x = norm_kernels.clip_norm_bwd(grad, x, norms, max_norm, dim)
    assert_close(grad_x, x_ref.grad, dtype=dtype, name="grad_x")
    if max_norm > 100:  # below the threshold: y = x and grad_x = grad exactly
        assert torch.equal(y, x.contiguous()) and torch.equal(grad_x, grad)


def test_clip_norm_rows_on_both_sides_and_zero_row():
    x = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], device=DEVICE)
    grad = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]], device=DEVICE)
    y, norms = norm_kernels.clip_norm_fwd(x, 1.0, dim=1)
    assert_close(norms, torch.tensor([5.0, 0.5, 0.0]), dtype=torch.float32)
    assert_close(y, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]), dtype=torch.float32)
    grad_x = norm_kernels.clip_norm_bwd(grad, x, norms, 1.0, dim=1)
    # row 0: n = 5 > c = 1: (c/n)(g - x (x.g)/n^2) = 0.2 * ([1, 2] - [3, 4] * 11/25)
    row0 = [0.2 * (1.0 - 3.0 * 11 / 25), 0.2 * (2.0 - 4.0 * 11 / 25)]
    want = torch.tensor([row0, [3.0, -1.0], [0.5, 0.25]])
    assert_close(grad_x, want, dtype=torch.float32)
    y0, n0 = norm_kernels.clip_norm_fwd(torch.zeros(4, device=DEVICE), 1.0)
    g0 = norm_kernels.clip_norm_bwd(torch.ones(4, device=DEVICE), torch.zeros(4, device=DEVICE),
                                    n0, 1.0)
    assert float(n0) == 0.0
    assert torch.equal(y0, torch.zeros(4, device=DEVICE))
    assert torch.equal(g0, torch.ones(4, device=DEVICE))


def test_norm_whole_tensor_spans_several_chunks():
    x = torch.randn(3 * norm_kernels.CHUNK + 5, device=DEVICE)
    x_ref = x.clone().requires_grad_()
    want = clip_norm_reference(x_ref, 1.0, None)
    grad = torch.randn_like(x)
    want.backward(grad)
    y, norms = norm_kernels.clip_norm_fwd(x, 1.0)
    assert_close(y, want, dtype=torch.float32)
    assert_close(norm_kernels.clip_norm_bwd(grad, x, norms, 1.0), x_ref.grad, dtype=torch.float32)
    want = torch.linalg.vector_norm(x)
    assert_close(norm_kernels.norm_fwd(x, 2.0), want, dtype=torch.float32)


# ----------------------------------------------------------------------------- fp64
#
# fp64 inputs are computed in fp64 (gradcheck users). Rows of size 1e150 square past fp32's
# range (and past fp64's only at 1e154), so an fp32 computation gives inf norms and zero or
# NaN results where torch's fp64 ones are finite: the fp64-tolerance comparisons below fail
# for fp32 arithmetic. Host numbers (max_norm, eps) rounded to fp32 would move results by
# about 1e-8 relative, inside the table's fp64 tolerance, so those cases are also compared
# at 1e-12 (tighter than the table on purpose), with host numbers typed as a GPU launch
# types them (the gpu_float_typing fixture: fp32 unless annotated tl.float64).

FP64 = torch.float64
HUGE = 1e150


def assert_exact_fp64(ours, ref, name):
    assert_close(ours, ref, rtol=1e-12, atol=0.0, name=name)


def huge_rows(*shape):
    """fp64 randn with every other row (dim 0) scaled to 1e150."""
    x = torch.randn(*shape, dtype=FP64, device=DEVICE)
    x[::2] *= HUGE
    return x


@pytest.mark.parametrize("p", [2.0, INF])
@pytest.mark.parametrize("dim", [None, 1, 0])
def test_fp64_norm_fwd_bwd(p, dim):
    x = huge_rows(6, 37)[:, 3:]  # sliced: row stride 37
    if dim is None:
        x = x[1:2] * HUGE  # one row: a whole-tensor norm of 1e150 and a gradient of O(1)
    x_ref = x.detach().clone().requires_grad_()
    want = torch.linalg.vector_norm(x_ref, p, dim=dim)
    grad = torch.randn(want.shape, dtype=FP64, device=DEVICE)
    want.backward(grad)
    got = norm_kernels.norm_fwd(x, p, dim)
    assert got.dtype == FP64
    assert_close(got, want, dtype=FP64, name="norm")
    assert_close(norm_kernels.norm_bwd(grad, x, got, p, dim), x_ref.grad, dtype=FP64,
                 name="grad_x")


@pytest.mark.parametrize("dim", [None, 1])
@pytest.mark.usefixtures("gpu_float_typing")
def test_fp64_clip_norm_fwd_bwd(dim):
    for x, max_norm in ((huge_rows(4, 9), 0.1), (torch.randn(4, 9, dtype=FP64), 0.1),
                        (torch.randn(4, 9, dtype=FP64), 1e300)):
        x_ref = x.detach().clone().requires_grad_()
        want = clip_norm_reference(x_ref, max_norm, dim)
        grad = torch.randn(x.shape, dtype=FP64, device=DEVICE)
        want.backward(grad)
        y, norms = norm_kernels.clip_norm_fwd(x, max_norm, dim)
        assert norms.dtype == FP64
        grad_x = norm_kernels.clip_norm_bwd(grad, x, norms, max_norm, dim)
        assert_close(y, want, dtype=FP64, name="y")
        assert_close(grad_x, x_ref.grad, dtype=FP64, name="grad_x")
        if x.abs().max() < 10:  # ordinary sizes: max_norm reaches the kernels unrounded
            assert_exact_fp64(y, want, "y")
            assert_exact_fp64(grad_x, x_ref.grad, "grad_x")


@pytest.mark.parametrize("norm_type", [2.0, INF])
@pytest.mark.usefixtures("gpu_float_typing")
def test_fp64_clip_grad_norm_matches_torch(norm_type):
    grads = [huge_rows(3, 5), torch.randn(7, dtype=FP64, device=DEVICE),
             torch.randn(2 * norm_kernels.CHUNK + 1, dtype=FP64, device=DEVICE) * HUGE]
    want_total, want_grads = torch_clip(grads, 1.0, norm_type)
    with recorded_launches() as launches:
        total = norm_kernels.clip_grad_norm_(grads, 1.0, norm_type)
    assert len(launches) == 2
    assert total.dtype == FP64  # the default out dtype of an fp64 list
    assert_close(total, want_total, dtype=FP64, name="total_norm")
    for i, (got, want) in enumerate(zip(grads, want_grads)):
        assert_close(got, want, dtype=FP64, name=f"grad {i}")
    # ordinary sizes, max_norm 0.3: the clip coefficient is formed in fp64 from exact numbers
    grads = [torch.randn(5, dtype=FP64, device=DEVICE), torch.randn(3, 3, dtype=FP64)]
    want_total, want_grads = torch_clip(grads, 0.3, norm_type)
    assert_exact_fp64(norm_kernels.clip_grad_norm_(grads, 0.3, norm_type), want_total, "total")
    for got, want in zip(grads, want_grads):
        assert_exact_fp64(got, want, "grad")


@pytest.mark.usefixtures("gpu_float_typing")


def test_mixed_list_with_fp64_rounds_each_norm_to_its_dtype():
    # torch: each tensor's norm in its own dtype, the total in the promoted dtype (fp64),
    # the coefficient in fp64, and each gradient scaled in its dtype (fp16/bf16/fp32 by the
    # coefficient rounded to fp32). The fp16 and bf16 norms' rounding shows at the fp64
    # tolerance; the fp32 norm's (sqrt(2) rounded, 1e-8 relative) only at 1e-12.
    grads = [torch.randn(33, dtype=FP64, device=DEVICE),
             torch.randn(7, device=DEVICE).half(), torch.randn(9, device=DEVICE).bfloat16(),
             torch.ones(2, device=DEVICE), torch.randn(4, dtype=FP64, device=DEVICE)]
    originals = [g.clone() for g in grads]
    want_total, want_grads = torch_clip(grads, 0.5, 2.0)
    assert want_total.dtype == FP64
    total = norm_kernels.clip_grad_norm_(grads, 0.5)
    assert total.dtype == FP64
    assert_exact_fp64(total, want_total, "total_norm")
    for i, (got, want) in enumerate(zip(grads, want_grads)):
        assert got.dtype == want.dtype
        assert_close(got, want, dtype=got.dtype, name=f"grad {i}")
    assert_exact_fp64(grads[0], want_grads[0], "fp64 grad")
    # the comparison can fail: without the per-tensor rounding the total is off
    unrounded = torch.linalg.vector_norm(torch.cat([g.double().reshape(-1) for g in originals]))
    with pytest.raises(AssertionError, match="out of tolerance"):
        assert_close(unrounded, want_total, dtype=FP64)
