"""tg.max / tg.min (with and without a dim), amax / amin and argmin: forward and gradient
parity with torch (MaxDim, AMax, MaxAll), return types, ties, NaN and errors."""

import pytest
import torch

import tritongrad as tg
from tritongrad.testing import assert_parity
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on x / 0

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
NAN = float("nan")


def distinct(*shape):
    """Pairwise different values, exact in fp16 and bf16 (k / 8, |k| <= 128): without ties
    the gradient's place is the same on every device."""
    n = torch.Size(shape).numel()
    return ((torch.randperm(n, device="cpu").float() - n // 2) / 8).reshape(shape)


INPUTS = {
    "row": lambda: distinct(1, 13),
    "odd": lambda: distinct(7, 13),
    "3d": lambda: distinct(3, 4, 5),
    "transposed": lambda: distinct(13, 7).T,
    "sliced": lambda: distinct(9, 20)[::2, 3:17],
}
# (input, tg op, torch op): each op on odd shapes, every dim of a 3-D tensor, negative dims,
# keepdim, tuple dims (interleaved ones too), views
CASES = [
    ("row", lambda x: x.max(), torch.max),
    ("transposed", lambda x: tg.min(x), torch.min),
    ("odd", lambda x: x.max(1), lambda x: x.max(1)),
    ("3d", lambda x: tg.max(x, 0, keepdim=True), lambda x: torch.max(x, 0, keepdim=True)),
    ("3d", lambda x: x.min(dim=1), lambda x: x.min(dim=1)),
    ("sliced", lambda x: x.min(-1, True), lambda x: x.min(-1, True)),
    ("3d", lambda x: x.amax((0, 2)), lambda x: x.amax((0, 2))),
    ("transposed", lambda x: tg.amin(x, -2, keepdim=True), lambda x: torch.amin(x, -2, True)),
    ("3d", lambda x: x.amin(2), lambda x: x.amin(2)),
    ("sliced", lambda x: x.amax(), lambda x: x.amax()),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_and_gradient_parity(case, dtype):
    name, ours, theirs = CASES[case]
    assert_parity(ours, theirs, INPUTS[name](), dtype=dtype)


def test_return_types_and_autograd_metadata():
    x = tg.from_torch(distinct(3, 4).to(tg.device()), requires_grad=True)
    result = x.max(1)
    values, indices = result  # unpacks as torch's (values, indices)
    assert result.values is values and result.indices is indices
    assert type(result).__name__ == "max" and type(tg.min(x, 0)).__name__ == "min"
    assert repr(result).startswith("max(values=tensor(")
    assert values.grad_fn is not None and values.requires_grad
    assert indices.dtype == torch.int64 and indices.grad_fn is None and not indices.requires_grad
    assert x.max().shape == () and x.amin().shape == () and x.amax(()).shape == ()
    assert tg.max(x, -1, keepdim=True).values.shape == (3, 1)
    assert x.amax([0, 1], keepdim=True).shape == (1, 1)
    scalar = tg.tensor(2.5, requires_grad=True)
    assert scalar.max(0).indices.item() == 0 and scalar.amax(0).item() == 2.5
    scalar.max(-1)[0].backward()
    assert scalar.grad.item() == 1.0
    with tg.no_grad():
        assert x.max(0).values.grad_fn is None


def torch_cpu_grads(fn, x, grad):
    leaf = x.detach().cpu().clone().requires_grad_(True)
    out = fn(leaf)
    (out[0] if isinstance(out, tuple) else out).backward(grad.cpu())
    return out, leaf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_ties_and_nan_match_torch_on_the_cpu(dtype):
    """Ties: max(dim) picks the first index and sends it the whole gradient; max() and amax
    split it evenly. NaN: it wins, max() splits among the NaNs, amax's slice turns NaN."""
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0], [NAN, 5.0, NAN, 5.0], [2.0, 2.0, 2.0, 2.0]],
                     device="cpu").to(dtype)
    ops = [lambda t: t.max(1), lambda t: t.min(0, keepdim=True), lambda t: t.amax(1),
           lambda t: t.amin((0, 1)), lambda t: t.max(), lambda t: t.min()]
    for op in ops:
        ours_x = tg.from_torch(x.to(tg.device()), requires_grad=True)
        out = op(ours_x)
        values = out[0] if isinstance(out, tuple) else out
        grad = torch.arange(1.0, values.numel() + 1, device="cpu").reshape(values.shape).to(dtype)
        values.backward(tg.from_torch(grad.to(tg.device())))
        expected, expected_grad = torch_cpu_grads(op, x, grad)
        if isinstance(out, tuple):
            assert torch.equal(out.indices.torch().cpu(), expected.indices)
            expected = expected.values
        assert_close(values, expected, dtype=dtype)
        assert_close(ours_x.grad, expected_grad, dtype=dtype)


def test_softmax_shift_idiom_gradient():
    """logits - logits.amax(1, keepdim=True): the shift's gradient flows through amax."""
    logits = distinct(6, 10)
    assert_parity(lambda t: (t - t.amax(1, keepdim=True)).exp().sum(1),
                  lambda t: (t - t.amax(1, keepdim=True)).exp().sum(1), logits)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool], ids=str)
def test_integer_and_bool_results_are_exact(dtype):
    data = torch.tensor([[3, -7, 2**30, 3], [0, 5, -2**30, 5]], device="cpu")
    data = data.bool() if dtype == torch.bool else data.to(dtype)
    x = tg.from_torch(data.to(tg.device()))
    checks = [(x.max(), data.max()), (tg.min(x), data.min()), (x.amax(0), data.amax(0)),
              (x.amin(1, keepdim=True), data.amin(1, keepdim=True))]
    result = x.max(1)
    checks += [(result.values, data.max(1).values), (result.indices, data.max(1).indices)]
    if dtype != torch.bool:  # torch's argmin refuses bool input, and so do we
        checks.append((x.argmin(1), data.argmin(1)))
    for ours, expected in checks:
        assert ours.dtype == expected.dtype and ours.grad_fn is None
        assert torch.equal(ours.torch().cpu(), expected), (ours, expected)


def test_argmin():
    data = torch.tensor([[2.0, -1.0, -1.0], [NAN, 0.0, NAN]], device="cpu")
    x = tg.from_torch(data.to(tg.device()))
    assert x.argmin(1).tolist() == data.argmin(1).tolist() == [1, 0]
    assert int(tg.argmin(x)) == int(data.argmin()) == 3
    assert tuple(x.argmin(0, keepdim=True).shape) == (1, 3)


def test_indices_changed_in_place_fail_backward():
    x = tg.from_torch(distinct(3, 4).to(tg.device()), requires_grad=True)
    values, indices = x.max(1)
    indices.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        values.sum().backward()


def test_errors():
    x = tg.zeros(2, 3)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                         r"of \[-2, 1\], but got 2\)"):
        x.max(2)
    with pytest.raises(IndexError, match="out of range"):
        x.amin((0, -3))
    with pytest.raises(tg.ShapeError, match="multiple times"):
        tg.amax(x, (1, -1))
    with pytest.raises(TypeError, match="dim must be an int"):
        x.min((0, 1))
    with pytest.raises(TypeError, match="keepdim needs a dim"):
        x.max(keepdim=True)
    empty = tg.zeros(0, 3)
    with pytest.raises(tg.ShapeError, match=r"max\(\): Expected reduction dim to be specified"):
        empty.max()
    with pytest.raises(tg.ShapeError, match=r"min\(\): Expected reduction dim 0 to have "
                                            r"non-zero size \(input shape \(0, 3\)\)"):
        empty.min(0)
    with pytest.raises(tg.ShapeError, match=r"amax\(\): Expected reduction dim to be specified"):
        empty.amax()
    with pytest.raises(tg.ShapeError, match=r"argmin\(\).*non-zero size"):
        empty.argmin(0)
    assert tuple(empty.max(1).values.shape) == (0,) and tuple(empty.amin(1).shape) == (0,)
    with pytest.raises(tg.DTypeError, match="argmin: x has dtype bool"):
        tg.tensor([True, False]).argmin()
