"""Parity of the core ops (elementwise, reductions, views, casts) with torch.autograd,
forward and every input's gradient, in fp32, fp16 and bf16."""

import numpy as np
import pytest
import torch

import tritongrad as tg
from tritongrad.testing import assert_parity

DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# (shape of a, shape of b): equal, broadcast, 1x1, odd sizes
BINARY_SHAPES = [((1, 1), (1, 1)), ((7, 13), (7, 13)), ((3, 1, 5), (4, 5)), ((7, 13), (13,))]


def randn(*shape):
    return torch.randn(*shape)


def positive(*shape):
    return torch.rand(*shape) + 0.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BINARY_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_ops(op, shapes, dtype):
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    a, b = randn(*shapes[0]), positive(*shapes[1])
    assert_parity(fn, fn, a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_on_transposed_and_sliced_views(dtype):
    a = randn(13, 7)  # used transposed
    b = randn(7, 26)  # used with a stride-2 slice
    fn = lambda x, y: x.T * y[:, ::2] + x.T  # noqa: E731
    assert_parity(fn, fn, a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["radd", "rsub", "mul", "div", "rdiv", "pow2", "pow_half", "rpow", "neg", "exp", "log", "sqrt"])
def test_unary_and_scalar_ops(op, dtype):
    fns = {
        "radd": lambda x: 2.5 + x, "rsub": lambda x: 1.5 - x, "mul": lambda x: x * -3.0,
        "div": lambda x: x / 4.0, "rdiv": lambda x: 2.0 / x, "pow2": lambda x: x ** 2,
        "pow_half": lambda x: x ** 0.5, "rpow": lambda x: 2.0 ** x, "neg": lambda x: -x,
        "exp": lambda x: x.exp(), "log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(),
    }
    x = positive(7, 13).T  # non-contiguous input
    assert_parity(fns[op], fns[op], x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
@pytest.mark.parametrize("kind", ["sum", "mean"])
def test_reductions(kind, dim, keepdim, dtype):
    x = randn(3, 7, 5)
    if kind == "sum":
        fn = lambda t: t.sum(dim=dim, keepdim=keepdim) if dim is not None else t.sum()  # noqa: E731
    else:
        fn = lambda t: t.mean(dim=dim, keepdim=keepdim) if dim is not None else t.mean()  # noqa: E731
    assert_parity(fn, fn, x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_of_transposed_view(dtype):
    x = randn(13, 7)
    assert_parity(lambda t: t.T.sum(dim=1), lambda t: t.T.sum(dim=1), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_chain(dtype):
    def fn(t):
        v = t.reshape(3, 4, 5).permute(2, 0, 1).transpose(0, 1)
        v = v.unsqueeze(0).squeeze(0)[1:, ::2, 1]
        return v * 2.0

    assert_parity(fn, fn, randn(60), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_and_flatten(dtype):
    fn = lambda t: t.expand(4, 3, 5).flatten() * 1.0  # noqa: E731
    assert_parity(fn, fn, randn(3, 1), dtype=dtype)


@pytest.mark.parametrize("src,dst", [(torch.float32, torch.float16), (torch.float32, torch.bfloat16),
                                     (torch.bfloat16, torch.float32), (torch.float16, torch.float64)])
def test_casts_are_differentiable(src, dst):
    x = randn(7, 13).to(src)
    fn = lambda t: t.to(dst) * 2.0  # noqa: E731
    assert_parity(fn, fn, x, dtype=src)


def test_mixed_float_dtypes_promote_like_torch():
    a = tg.tensor(np.ones((2, 3)), dtype=torch.float16)
    b = tg.tensor(np.ones((2, 3)), dtype=torch.float32)
    assert (a + b).dtype == torch.float32
    assert (a * tg.tensor(2.0)).dtype == torch.float16  # a 0-d tensor does not promote
    assert (a * 2.0).dtype == torch.float16
    assert (tg.tensor([1, 2]) * 0.5).dtype == torch.float32


def test_clone_contiguous_and_cast_run_on_our_kernel():
    from tritongrad.kernels import _launch

    class Count(_launch.LaunchObserver):
        names = []

        def begin(self, info):
            self.names.append(info.kernel_name)

    counter = Count()
    _launch.add_launch_observer(counter)
    try:
        x = tg.tensor(np.arange(6.0).reshape(2, 3))
        x.T.contiguous()
        x.clone()
        x.half()
    finally:
        _launch.remove_launch_observer(counter)
    assert counter.names[-3:] == ["copy_kernel"] * 3
