"""Element-wise launchers against torch, at the table tolerance for each dtype."""

import pytest
import torch

from tests.conftest import DEVICE
from tritongrad.kernels import elementwise as ew
from tritongrad.kernels._checks import DTypeError, LayoutError, ShapeError
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on NaN/inf/0 inputs

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, float("nan"), float("inf"), float("-inf")]

TORCH_BINARY = {
    "add": lambda a, b, alpha: torch.add(a, b, alpha=alpha),
    "sub": lambda a, b, alpha: torch.sub(a, b, alpha=alpha),
    "mul": lambda a, b, alpha: a * b,
    "div": lambda a, b, alpha: a / b,
}


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def special_values(dtype):
    """Every pair of SPECIAL values, as two 1-D tensors."""
    values = torch.tensor(SPECIAL, dtype=torch.float64)
    a = values.repeat_interleave(len(SPECIAL))
    b = values.repeat(len(SPECIAL))
    return a.to(dtype).to(DEVICE), b.to(dtype).to(DEVICE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((1, 1), (1, 1)), ((7, 13), (7, 13)), ((3, 1, 5), (4, 5)), ((13,), (7, 13)), ((), (2, 3))],
)
def test_binary_matches_torch(op, dtype, shape_a, shape_b):
    a, b = randn(*shape_a, dtype=dtype), randn(*shape_b, dtype=dtype)
    assert_close(ew.binary(op, a, b), TORCH_BINARY[op](a, b, 1.0), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["add", "sub"])
def test_binary_alpha(op, dtype):
    a, b = randn(7, 13, dtype=dtype), randn(13, dtype=dtype)
    assert_close(ew.binary(op, a, b, alpha=0.3), TORCH_BINARY[op](a, b, 0.3), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_nan_inf(op, dtype):
    a, b = special_values(dtype)
    assert_close(ew.binary(op, a, b), TORCH_BINARY[op](a, b, 1.0), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_binary_strided_views(dtype):
    base = randn(13, 14, dtype=dtype)
    a = base.t()  # transposed: strides (1, 14)
    b = base[:, ::2].t()  # (7, 13) of a stride-2 slice, transposed
    assert_close(ew.binary("mul", a[:7], b), a[:7] * b, dtype=dtype)
    c = randn(7, 1, dtype=dtype).expand(7, 13)  # stride-0 dim
    assert_close(ew.binary("div", b, c), b / c, dtype=dtype)


def test_binary_multi_program_flat():
    a, b = randn(3001), randn(3001)  # three programs of the flat path
    assert_close(ew.binary("sub", a, b, alpha=2.0), torch.sub(a, b, alpha=2.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_binary_out_view_and_in_place(dtype):
    a, b = randn(7, 13, dtype=dtype), randn(13, dtype=dtype)
    expected = a + b
    ew.binary("add", a, b, out=a)  # a.add_(b)
    assert_close(a, expected, dtype=dtype)
    big = randn(7, 26, dtype=dtype)
    untouched = big[:, 1::2].clone()
    out = big[:, ::2]  # a strided view
    result = ew.binary("mul", a, b, out=out)
    assert result is out
    assert_close(big[:, ::2], a * b, dtype=dtype)
    assert torch.equal(big[:, 1::2], untouched)


def test_binary_in_place_transposed_matches_torch():
    t = randn(13, 7)
    b = randn(13)
    expected = t.t() - b
    ew.binary("sub", t.t(), b, out=t.t())
    assert_close(t.t(), expected)


def test_binary_zero_elements():
    a, b = randn(0, 5), randn(5)
    out = ew.binary("add", a, b)
    assert out.shape == (0, 5)


def test_binary_errors():
    a = randn(3, 4)
    with pytest.raises(ShapeError, match=r"\(3, 4\).*\(5,\)"):
        ew.binary("add", a, randn(5))
    with pytest.raises(DTypeError, match="float32.*float16|float16.*float32"):
        ew.binary("add", a, randn(3, 4, dtype=torch.float16))
    with pytest.raises(ShapeError, match=r"\(3, 1\).*\(3, 4\)"):
        ew.binary("add", a, a, out=randn(3, 1))
    with pytest.raises(LayoutError):
        ew.binary("add", a, a, out=randn(3, 1).expand(3, 4))
    with pytest.raises(LayoutError):  # reads a[0] after writing it: partial overlap
        row = randn(2, 4)
        ew.binary("add", row[1:].expand(2, 4), row[1:], out=row)
    with pytest.raises(ValueError):
        ew.binary("pow", a, a)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize("reverse", [False, True])
def test_binary_scalar(op, reverse, dtype):
    x = randn(7, 13, dtype=dtype)
    if op == "pow" and not reverse:
        x = x.abs() + 0.1  # a fractional power of a negative number is NaN in both
    scalar = 1.7
    ours = ew.binary_scalar(op, x, scalar, reverse=reverse)
    if reverse:
        expected = getattr(torch, op)(torch.tensor(scalar, dtype=dtype), x)
    else:
        expected = getattr(torch, op)(x, scalar)
    assert_close(ours, expected, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0, 3.0, 0.5, -0.5, -1.0, -2.0, -3.0, 2.5,
                                      float("inf"), float("nan")])
def test_pow_special_values(exponent, dtype):
    x = torch.tensor(SPECIAL + [0.3, 7.0], dtype=dtype, device=DEVICE)
    assert_close(ew.binary_scalar("pow", x, exponent), x ** exponent, dtype=dtype)
    base = torch.tensor(exponent, dtype=dtype)
    assert_close(ew.binary_scalar("pow", x, exponent, reverse=True), torch.pow(base, x),
                 dtype=dtype)


def test_scalar_is_exact_for_fp64():
    x = randn(5, dtype=torch.float64)
    assert torch.equal(ew.binary_scalar("mul", x, 0.1), x * 0.1)
    assert torch.equal(ew.binary("add", x, x, alpha=0.1), torch.add(x, x, alpha=0.1))


def test_binary_scalar_in_place_and_empty():
    x = randn(4, 6)
    expected = x[:, ::2] * 3.0
    ew.binary_scalar("mul", x[:, ::2], 3.0, out=x[:, ::2])
    assert_close(x[:, ::2], expected)
    assert ew.binary_scalar("add", randn(0), 1.0).shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["neg", "exp", "log", "sqrt", "abs"])
def test_unary(op, dtype):
    x = randn(7, 13, dtype=dtype)
    if op in ("log", "sqrt"):
        x = x.abs() + 0.01
    assert_close(ew.unary(op, x), getattr(torch, op)(x), dtype=dtype)
    view = randn(13, 14, dtype=dtype)[:, ::2].t()
    if op in ("log", "sqrt"):
        view = view.abs()
    assert_close(ew.unary(op, view), getattr(torch, op)(view), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("op", ["neg", "exp", "log", "sqrt", "abs"])
def test_unary_nan_inf(op, dtype):
    x = torch.tensor(SPECIAL, dtype=dtype, device=DEVICE)
    assert_close(ew.unary(op, x), getattr(torch, op)(x), dtype=dtype)


def _torch_pow_grad(x, exponent, grad):
    leaf = x.detach().clone().requires_grad_(True)
    (leaf ** exponent).backward(grad)
    return leaf.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0, 0.5, -1.0, 3.0, 2.5])
def test_pow_scalar_bwd(exponent, dtype):
    x = (randn(7, 13, dtype=dtype).abs() + 0.1).to(dtype)
    x[0, :3] = 0.0  # torch's value at x = 0: 0 for e=0, 1 for e=1, inf for e<1
    grad = randn(7, 13, dtype=dtype)
    expected = _torch_pow_grad(x, exponent, grad)
    assert_close(ew.pow_scalar_bwd(grad, x, exponent), expected, dtype=dtype)
    # a transposed x with a contiguous grad
    xt = x.t()
    grad_t = randn(13, 7, dtype=dtype)
    assert_close(ew.pow_scalar_bwd(grad_t, xt, exponent), _torch_pow_grad(xt, exponent, grad_t),
                 dtype=dtype)


def _torch_binary_grads(op, a, b, grad):
    """torch's gradients of a*b or a/b before the broadcast dims are summed, which is
    what the launchers return: differentiate with respect to the expanded inputs."""
    shape = grad.shape
    a_full = a.expand(shape).detach().clone().requires_grad_(True)
    b_full = b.expand(shape).detach().clone().requires_grad_(True)
    out = a_full * b_full if op == "mul" else a_full / b_full
    return torch.autograd.grad(out, (a_full, b_full), grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["mul", "div"])
@pytest.mark.parametrize("shape_a, shape_b", [((7, 13), (7, 13)), ((3, 1, 5), (4, 5))])
def test_mul_div_bwd(op, dtype, shape_a, shape_b):
    a, b = randn(*shape_a, dtype=dtype), randn(*shape_b, dtype=dtype)
    if op == "div":
        b = (b.abs() + 0.5).to(dtype)  # keep a/b**2 in fp16 range
    shape = torch.broadcast_shapes(a.shape, b.shape)
    grad = randn(*shape, dtype=dtype)
    expected_a, expected_b = _torch_binary_grads(op, a, b, grad)
    launcher = ew.mul_bwd if op == "mul" else ew.div_bwd
    grad_a, grad_b = launcher(grad, a, b, True, True)
    assert_close(grad_a, expected_a, dtype=dtype, name="grad_a")
    assert_close(grad_b, expected_b, dtype=dtype, name="grad_b")
    only_a = launcher(grad, a, b, True, False)
    only_b = launcher(grad, a, b, False, True)
    assert only_a[1] is None and only_b[0] is None
    assert_close(only_a[0], expected_a, dtype=dtype, name="grad_a alone")
    assert_close(only_b[1], expected_b, dtype=dtype, name="grad_b alone")


def test_mul_div_bwd_strided_grad_and_errors():
    a, b = randn(13, 7).t(), randn(7, 26)[:, ::2]
    grad = randn(13, 7).t()
    grad_a, grad_b = ew.div_bwd(grad, a, b)
    assert_close(grad_a, grad / b)
    assert_close(grad_b, -grad * a / (b * b))
    assert grad_a.is_contiguous()
    with pytest.raises(ShapeError, match=r"\(7, 12\)"):
        ew.mul_bwd(randn(7, 12), a, b)


# --- maximum / minimum and the abs backward ---------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_special_values_and_backward(dtype, op):
    a, b = special_values(dtype)
    reference = getattr(torch, op)
    assert_close(ew.binary(op, a, b), reference(a, b), dtype=dtype)
    # gradients, from torch.autograd on the same values; a broadcast (stride-0) operand and
    # a strided upstream gradient
    ta = a.double().requires_grad_()
    tb = b.double().requires_grad_()
    grad = randn(2 * a.numel(), dtype=dtype)[::2]
    reference(ta, tb).backward(grad.double())
    grad_a, grad_b = ew.max_min_bwd(op, grad, a, b)
    assert_close(grad_a, ta.grad.to(dtype), dtype=dtype, name="grad_a")
    assert_close(grad_b, tb.grad.to(dtype), dtype=dtype, name="grad_b")
    row = randn(1, 5, dtype=dtype)
    col = randn(3, 1, dtype=dtype).expand(3, 5)
    only_b = ew.max_min_bwd(op, randn(3, 5, dtype=dtype), row.expand(3, 5), col,
                            need_a=False)
    assert only_b[0] is None and only_b[1].shape == (3, 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_abs_backward(dtype):
    x = special_values(dtype)[0]
    grad = randn(x.numel(), dtype=dtype)
    tx = x.double().requires_grad_()
    tx.abs().backward(grad.double())
    assert_close(ew.abs_bwd(grad, x), tx.grad.to(dtype), dtype=dtype)
