"""Parity of MatMul, Linear and LinearReLU with torch, forward and every gradient."""

import pytest
import torch
import torch.nn.functional as F

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.kernels._checks import ShapeError
from tritongrad.kernels.matmul import matmul as kernel_matmul
from tritongrad.ops import matmul as matmul_ops
from tritongrad.ops.matmul import Linear, LinearReLU, MatMul, linear, linear_relu, matmul
from tritongrad.testing import assert_close, assert_parity, reference_for

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# The 12 (M, N, K) triples of the kernel tests, drawn from {1, 7, 33, 100, 129}.
from tests.kernels.test_matmul import SHAPES  # noqa: E402


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_matmul_parity(M, N, K, dtype):
    assert_parity(matmul, reference_for(MatMul), randn(M, K), randn(K, N), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["a.T", "b.T", "both.T"])
def test_matmul_parity_transposed_inputs(layout, dtype):
    M, N, K = 33, 7, 100
    a = randn(K, M).T if layout in ("a.T", "both.T") else randn(M, K)
    b = randn(N, K).T if layout in ("b.T", "both.T") else randn(K, N)
    assert_parity(matmul, torch.matmul, a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["3d@3d", "3d@2d", "2d@3d", "3d.T@3d"])
def test_matmul_parity_batched(case, dtype):
    B, M, N, K = 3, 7, 33, 100
    a = {"2d@3d": randn(M, K), "3d.T@3d": randn(B, K, M).transpose(1, 2)}.get(case, randn(B, M, K))
    b = randn(K, N) if case == "3d@2d" else randn(B, K, N)
    assert_parity(matmul, torch.matmul, a, b, dtype=dtype)


def test_matmul_fp64_and_operator():
    assert_parity(lambda a, b: a @ b, torch.matmul, randn(7, 33), randn(33, 100),
                  dtype=torch.float64)


def test_matmul_skips_unwanted_grads():
    a = tg.from_torch(randn(7, 33), requires_grad=True)
    b = tg.from_torch(randn(33, 5))
    out = matmul(a, b)
    launches = count_launches(lambda: out.backward(tg.from_torch(randn(7, 5))))
    assert launches == ["matmul_kernel"]
    assert b.grad is None and a.grad is not None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("x_shape", [(33, 100), (1, 100), (2, 7, 100), (100,)], ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_parity(x_shape, with_bias, dtype):
    inputs = [randn(*x_shape), randn(33, 100)] + ([randn(33)] if with_bias else [])
    assert_parity(linear, reference_for(Linear), *inputs, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_linear_parity_transposed_input_and_weight(dtype):
    x = randn(100, 7).T  # (7, 100) with column-major strides
    w = randn(100, 33).T  # (33, 100), e.g. a tied, transposed weight
    assert_parity(linear, F.linear, x, w, randn(33), dtype=dtype)


def test_linear_folds_non_viewable_input():
    x = randn(7, 3, 100).transpose(0, 1)  # (3, 7, 100): leading dims do not merge
    assert_parity(linear, F.linear, x, randn(5, 100), randn(5), dtype=torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("x_shape", [(33, 100), (1, 7), (2, 7, 129), (129,)], ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_relu_parity(x_shape, with_bias, dtype):
    n_in = x_shape[-1]
    inputs = [randn(*x_shape), randn(33, n_in)] + ([randn(33)] if with_bias else [])
    # the registered reference is torch.relu(F.linear(...))
    assert_parity(linear_relu, reference_for(LinearReLU), *inputs, dtype=dtype)


def test_linear_relu_fp64():
    assert_parity(linear_relu, lambda *t: torch.relu(F.linear(*t)), randn(7, 33), randn(5, 33),
                  randn(5), dtype=torch.float64)


def count_launches(fn) -> list:
    with recorded_launches() as launches:
        fn()
    return [info.kernel_name for info in launches]


def test_linear_relu_is_one_forward_and_two_backward_launches():
    x = tg.from_torch(randn(33, 100), requires_grad=True)
    w = tg.from_torch(randn(7, 100), requires_grad=True)
    b = tg.from_torch(randn(7), requires_grad=True)
    out = []
    assert count_launches(lambda: out.append(linear_relu(x, w, b))) == ["matmul_kernel"]
    grad = tg.from_torch(randn(33, 7))
    assert count_launches(lambda: out[0].backward(grad)) == ["matmul_kernel", "matmul_kernel"]
    assert x.grad is not None and w.grad is not None and b.grad is not None


def test_linear_backward_fuses_bias_grad():
    x = tg.from_torch(randn(33, 100), requires_grad=True)
    w = tg.from_torch(randn(7, 100), requires_grad=True)
    b = tg.from_torch(randn(7), requires_grad=True)
    out = linear(x, w, b)
    grad = tg.from_torch(randn(33, 7))
    assert count_launches(lambda: out.backward(grad)) == ["matmul_kernel", "matmul_kernel"]


@pytest.mark.parametrize("fn", [linear, linear_relu])
def test_bias_only_gradient(fn):
    xt, wt, bt, gt = randn(33, 100), randn(7, 100), randn(7), randn(33, 7)
    b = tg.from_torch(bt, requires_grad=True)
    out = fn(tg.from_torch(xt), tg.from_torch(wt), b)
    out.backward(tg.from_torch(gt))
    bt = bt.clone().requires_grad_()
    ref = F.linear(xt, wt, bt)
    ref = torch.relu(ref) if fn is linear_relu else ref
    ref.backward(gt)
    assert_close(b.grad, bt.grad, dtype=torch.float32)


@pytest.mark.parametrize("fn", [linear, linear_relu])
def test_linear_wrong_feature_size_names_sizes(fn):
    x, w = tg.from_torch(randn(4, 10)), tg.from_torch(randn(3, 12))
    with pytest.raises(ShapeError, match=r"expected input with 12 features.*\(4, 10\) with 10"):
        fn(x, w)
    with pytest.raises(ShapeError, match=r"bias of shape \(3,\), got \(4,\)"):
        fn(tg.from_torch(randn(4, 12)), w, tg.from_torch(randn(4)))
    with pytest.raises(ShapeError, match="weight must be 2-D"):
        fn(x, tg.from_torch(randn(10)))


def test_matmul_shape_mismatch():
    with pytest.raises(ShapeError, match=r"\(2x3 and 4x5\)"):
        matmul(tg.from_torch(randn(2, 3)), tg.from_torch(randn(4, 5)))


# --- TF32: tg.backends.matmul.allow_tf32 ---------------------------------------------------


def tf32_bound(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-element bound on |x @ y - exact| with TF32 inputs and fp32 accumulation:
    ((1 + u_t)^2 - 1 + gamma_K (1 + u_t)^2) (|x| |y|), u_t = 2^-10 (derived in
    tests/kernels/test_matmul.py::test_tf32_opt_in)."""
    k = x.shape[-1]
    u_t, u = 2.0**-10, 2.0**-24
    gamma_k = k * u / (1 - k * u)
    return ((1 + u_t) ** 2 - 1 + gamma_k * (1 + u_t) ** 2) * (x.double().abs() @ y.double().abs())


@pytest.fixture
def tf32_on_both_sides():
    """TF32 allowed in tritongrad and in torch (the reference), restored afterwards."""
    before = tg.backends.matmul.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    tg.backends.matmul.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    yield
    tg.backends.matmul.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("fn_name", ["matmul", "linear", "linear_relu"])
def test_tf32_switch_against_torch_with_tf32_allowed(fn_name, tf32_on_both_sides):
    # Both results lie within the TF32 bound of the exact product, so they may differ by
    # twice it (rounding and summation order differ; a fixed rtol fails some elements on a
    # GPU). Every gradient is a product too, with its own bound.
    M, N, K = 100, 33, 129
    a, b, g = randn(M, K), randn(K, N), randn(M, N)
    fns = {"matmul": (lambda x, y: x @ y, lambda x, y: x @ y),
           "linear": (lambda x, w: linear(x, w), lambda x, w: F.linear(x, w)),
           "linear_relu": (lambda x, w: linear_relu(x, w), lambda x, w: torch.relu(F.linear(x, w)))}
    ours_fn, torch_fn = fns[fn_name]
    w = b if fn_name == "matmul" else b.T.contiguous()  # linear takes W as (out, in)
    if fn_name == "linear_relu":
        g = g * (F.linear(a, w) > 0)  # compare where the ReLU passes gradient
    x_t, w_t = a.clone().requires_grad_(), w.clone().requires_grad_()
    out_t = torch_fn(x_t, w_t)
    out_t.backward(g)
    x, wt = tg.from_torch(a, requires_grad=True), tg.from_torch(w, requires_grad=True)
    out = ours_fn(x, wt)
    out.backward(tg.from_torch(g))
    w_kn = w if fn_name == "matmul" else w.T
    checks = [("output", out.torch(), out_t, tf32_bound(a, w_kn)),
              ("grad x", x.grad.torch(), x_t.grad, tf32_bound(g, w_kn.T)),
              ("grad w", wt.grad.torch(), w_t.grad,
               tf32_bound(a.T, g) if fn_name == "matmul" else tf32_bound(g.T, a))]
    for name, ours, theirs, bound in checks:
        error = (ours.double() - theirs.double()).abs()
        assert (error <= 2 * bound).all(), f"{fn_name} {name}: {float(error.max()):.3g} over 2x bound"
    if DEVICE.type == "cuda":  # and the switch did something (the interpreter ignores it)
        tg.backends.matmul.allow_tf32 = False
        assert not torch.equal(ours_fn(tg.from_torch(a), tg.from_torch(w)).torch(), out.torch())


def test_tf32_switch_reaches_every_product(monkeypatch):
    seen = []

    def spy(a, b, **options):
        seen.append(options["allow_tf32"])
        return kernel_matmul(a, b, **options)

    monkeypatch.setattr(matmul_ops, "kernel_matmul", spy)
    x = tg.from_torch(randn(7, 33), requires_grad=True)
    w = tg.from_torch(randn(5, 33), requires_grad=True)
    target = tg.from_torch(torch.tensor([0, 1, 2, 3, 4, 0, 1], device=DEVICE))
    for allowed in (False, True):
        monkeypatch.setattr(tg.backends.matmul, "allow_tf32", allowed)
        seen.clear()
        (x @ w.T).sum().backward()
        linear(x, w).sum().backward()
        linear_relu(x, w).sum().backward()
        tg.nn.functional.linear_cross_entropy(x, w, target).backward()
        assert seen == [allowed] * 12, seen  # forward, dX and dW of each of the 4 ops
