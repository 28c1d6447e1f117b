"""The bad-input catalogue: one test per case.

Each case raises a tritongrad error (``tg.TritongradError``, which also subclasses the
builtin a PyTorch user expects: ValueError, TypeError, RuntimeError or IndexError) whose
message names the shapes, dtypes or devices involved. The error comes before any
user-visible state changes: outputs, ``.grad`` and optimizer state are left as they
were. Metadata checks launch nothing (``no_launches``); value checks (a label out of
range, a non-finite norm) read a device-side flag and raise before anything is written
where the user can see it.

Degenerate inputs that are not errors (empty tensors, NaN and Inf in losses, mixed
dtypes in elementwise ops) must behave as torch does.
"""

from __future__ import annotations

import contextlib
import re

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn, optim, serialization
from tritongrad.autograd import Function
from tritongrad.nn_utils_clip import clip_grad_norm_
from tritongrad.ops.loss import cross_entropy, linear_cross_entropy, mse_loss
from tritongrad.ops.matmul import linear, matmul
from tritongrad.testing import assert_parity

DEVICE = tg.device()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy: inf - inf, 0/0


@contextlib.contextmanager
def no_launches():
    """Fails the test if any kernel is launched inside the block."""
    with recorded_launches() as launches:
        yield
    names = [info.kernel_name for info in launches]
    assert not names, f"the check ran after kernels were launched: {names}"


@contextlib.contextmanager
def tg_error(builtin: type, match: str):
    """A tritongrad error that is also the builtin ``builtin``, its message matching."""
    with pytest.raises(tg.TritongradError, match=match) as info:
        yield info
    assert isinstance(info.value, builtin), (type(info.value).__mro__, builtin)


def fails_before_launch(builtin: type, match: str, call) -> None:
    """``call()`` raises the tritongrad error without launching any kernel."""
    with no_launches(), tg_error(builtin, match):
        call()


def leaf(*shape, dtype=torch.float32):
    return tg.from_torch(torch.randn(*shape).to(dtype), requires_grad=True)


def same_bits(a, b) -> bool:
    a = a.torch() if isinstance(a, tg.Tensor) else a
    b = b.torch() if isinstance(b, tg.Tensor) else b
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(
        a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


# ----------------------------------------------------------------------------- matmul


def test_matmul_mismatched_inner_dims():
    a, b = leaf(2, 3), leaf(4, 5)
    fails_before_launch(ValueError, r"shapes cannot be multiplied \(2x3 and 4x5\)",
                        lambda: matmul(a, b))


def test_matmul_mismatched_batch_sizes():
    a, b = leaf(2, 3, 4), leaf(3, 4, 5)
    fails_before_launch(ValueError, r"batch.*\(2, 3, 4\).*\(3, 4, 5\)", lambda: matmul(a, b))


@pytest.mark.parametrize("shape_a,shape_b", [((3,), (3, 4)), ((1, 2, 3, 4), (1, 2, 4, 3))])
def test_matmul_needs_2d_or_3d(shape_a, shape_b):
    a, b = leaf(*shape_a), leaf(*shape_b)
    fails_before_launch(ValueError, "2-D or 3-D, got shape " + re.escape(str(tuple(shape_a))),
                        lambda: matmul(a, b))


def test_matmul_mixed_dtypes():
    a, b, w = leaf(2, 3), leaf(3, 4, dtype=torch.float16), leaf(4, 3, dtype=torch.float64)
    fails_before_launch(TypeError, "same dtype.*float32 != float16", lambda: matmul(a, b))
    fails_before_launch(TypeError, "float32 != float64", lambda: linear(a, w))


def test_loss_mixed_dtypes():
    x, half = leaf(2, 3), leaf(2, 3, dtype=torch.float16)
    logits64, w16, target = leaf(2, 3, dtype=torch.float64), leaf(4, 3, dtype=torch.float16), \
        tg.tensor([0, 1])
    fails_before_launch(TypeError, "same dtype.*float32 != float16", lambda: mse_loss(x, half))
    # fp64 logits are taken (computed in fp64); fp32 class weights with them are not
    weight32 = tg.from_torch(torch.ones(3))
    fails_before_launch(TypeError, "expected weight dtype float64",
                        lambda: cross_entropy(logits64, target, weight=weight32))
    fails_before_launch(TypeError, "float32.*float16|float16.*float32",
                        lambda: linear_cross_entropy(x, w16, target))


@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float16), (torch.bfloat16, torch.float32),
                                    (torch.float16, torch.bfloat16)])
def test_elementwise_mixed_dtypes_promote_like_torch(dtypes):
    a = torch.randn(3, 4).to(dtypes[0])
    b = torch.randn(4).to(dtypes[1])
    assert_parity(lambda x, y: x * y + x, lambda x, y: x * y + x, a, b,
                  dtype=torch.promote_types(*dtypes))
    out = tg.from_torch(a) + tg.from_torch(b)
    assert out.dtype == torch.promote_types(*dtypes)


# ----------------------------------------------------------------------------- devices


def test_meta_tensor_is_another_device():
    meta = torch.empty(2, 3, device="meta")
    with tg_error(RuntimeError, "same device.*meta"):
        tg.from_torch(meta)
    with tg_error(RuntimeError, "meta"):
        tg.Tensor(meta)
    with tg_error(RuntimeError, "meta"):
        tg.tensor(meta)
    wrapped = tg.Tensor._wrap(meta)  # past the entry points: every launcher checks too
    x, w, target = tg.randn(2, 3), tg.randn(4, 2), tg.tensor([0, 1])
    fails_before_launch(RuntimeError, "b is on meta", lambda: x + wrapped)
    fails_before_launch(RuntimeError, "mat2 is on meta", lambda: matmul(w, wrapped))
    fails_before_launch(RuntimeError, "target is on meta", lambda: mse_loss(x, wrapped))
    fails_before_launch(RuntimeError, "logits is on meta", lambda: cross_entropy(wrapped, target))


@pytest.mark.skipif(DEVICE.type == "cpu" and not torch.cuda.is_available(),
                    reason="torch has no CUDA here: the meta test covers other devices")
def test_tensor_on_the_other_of_cpu_and_cuda():
    other = "cpu" if DEVICE.type == "cuda" else "cuda"
    foreign = torch.randn(2, 3, device=other)
    with tg_error(RuntimeError, f"same device.*{other}"):
        tg.from_torch(foreign)
    x = tg.randn(3, 2)
    fails_before_launch(RuntimeError, other, lambda: matmul(tg.Tensor._wrap(foreign), x))


# ----------------------------------------------------------------------------- in place


def test_inplace_through_expanded_view():
    base = tg.tensor([1.0, 2.0, 3.0])
    expanded = base.expand(4, 3)  # stride 0: four rows share one memory row
    ones, zeros = tg.ones(4, 3), tg.zeros(4, 3)
    for op in (lambda: expanded.add_(1.0), lambda: expanded.mul_(ones),
               lambda: expanded.fill_(0.0), lambda: expanded.copy_(zeros),
               lambda: expanded.__setitem__(slice(None), 0.0)):
        fails_before_launch(ValueError, r"shape \(4, 3\), strides \(0, 1\).*same memory", op)
    assert base.tolist() == [1.0, 2.0, 3.0]


def test_integer_tensor_cannot_require_grad():
    with tg_error(TypeError, "floating point.*int64"):
        tg.tensor([1, 2, 3], requires_grad=True)
    with tg_error(TypeError, "floating point.*int32"):
        tg.zeros(3, dtype=torch.int32, requires_grad=True)
    labels = tg.tensor([1, 2])
    with tg_error(TypeError, "floating point"):
        labels.requires_grad_()
    with tg_error(TypeError, "floating point"):
        nn.Parameter(torch.tensor([1, 2]))
    assert not labels.requires_grad


# ----------------------------------------------------------------------------- losses


def test_cross_entropy_float_targets():
    logits, target = leaf(2, 3), tg.tensor([0.0, 1.0])
    fails_before_launch(TypeError, "expected target dtype to be Long.*float32",
                        lambda: cross_entropy(logits, target))


def test_cross_entropy_label_out_of_range():
    logits = leaf(2, 3)
    logits.grad = tg.ones(2, 3)
    with tg_error(IndexError, r"Target 10 is out of bounds\."):
        cross_entropy(logits, tg.tensor([0, 10]))
    assert logits.grad.tolist() == [[1.0] * 3] * 2


def test_cross_entropy_label_minus_one_without_ignore_index():
    logits = leaf(2, 3)
    with tg_error(IndexError, r"Target -1 is out of bounds\."):
        cross_entropy(logits, tg.tensor([0, -1]))
    with tg_error(IndexError, r"Target -1 is out of bounds\."):
        linear_cross_entropy(leaf(2, 4), leaf(3, 4), tg.tensor([0, -1]))
    assert logits.grad is None
    target = torch.tensor([0, -1])
    assert_parity(lambda x, t: cross_entropy(x, t, ignore_index=-1),
                  lambda x, t: torch.nn.functional.cross_entropy(x, t, ignore_index=-1),
                  torch.randn(2, 3), target)


def test_cross_entropy_mismatched_batch_sizes():
    logits, target = leaf(2, 3), tg.tensor([0, 1, 2])
    fails_before_launch(ValueError, r"input batch_size \(2\) to match target batch_size \(3\)",
                        lambda: cross_entropy(logits, target))


def test_mse_mismatched_shapes():
    a, b = leaf(2, 3), leaf(3)
    fails_before_launch(ValueError, r"\(2, 3\).*\(3,\)", lambda: mse_loss(a, b))


# ----------------------------------------------------------------------------- clipping


def test_clip_grad_norm_non_finite_with_error_if_nonfinite():
    a, b = leaf(3), leaf(2)
    a.grad = tg.tensor([1.0, float("inf"), 2.0])
    b.grad = tg.tensor([3.0, 4.0])
    before = [a.grad.torch().clone(), b.grad.torch().clone()]
    with tg_error(RuntimeError, "total norm of order 2.0 .* non-finite"):
        clip_grad_norm_([a, b], max_norm=1.0, error_if_nonfinite=True)
    assert same_bits(a.grad, before[0]) and same_bits(b.grad, before[1])
    b.grad = tg.tensor([float("nan"), 4.0])
    with tg_error(RuntimeError, "non-finite"):
        clip_grad_norm_([a, b], max_norm=1.0, error_if_nonfinite=True)
    # error_if_nonfinite=False scales by the non-finite norm, as torch does
    clip_grad_norm_([a, b], max_norm=1.0)
    assert torch.isnan(b.grad.torch()).all() and not torch.isfinite(a.grad.torch()).any()


# ----------------------------------------------------------------------------- autograd


def _two_branch_loss():
    """loss = sum(x * w) + sum(y): y's branch reaches its leaf before MulBackward runs."""
    x, w, y = leaf(3), leaf(3), leaf(2)
    return x, w, y, (x * w).sum() + y.sum()


def test_second_backward_without_retain_graph():
    x, w, y, loss = _two_branch_loss()
    loss.backward()
    grads = [t.grad.torch().clone() for t in (x, w, y)]
    one = tg.tensor(1.0)
    fails_before_launch(RuntimeError, "backward through the graph a second time",
                        lambda: loss.backward(one))
    assert all(same_bits(t.grad, g) for t, g in zip((x, w, y), grads))


def test_backward_on_non_scalar():
    x = leaf(2, 3)
    y = x * 2.0
    fails_before_launch(RuntimeError, "grad can be implicitly created only for scalar",
                        lambda: y.backward())
    assert x.grad is None


def test_inplace_change_to_saved_tensor():
    x, y = leaf(3), leaf(2)
    w = tg.randn(3)
    loss = (x * w).sum() + y.sum()
    w.mul_(2.0)  # MulBackward saved w at version 0
    one = tg.tensor(1.0)  # an explicit root gradient: backward itself launches nothing first
    fails_before_launch(RuntimeError, r"modified by an inplace operation.*MulBackward"
                                      r".*version 1; expected version 0",
                        lambda: loss.backward(one))
    assert x.grad is None and y.grad is None


def test_inplace_change_to_leaf_that_requires_grad():
    x = leaf(3)
    before = x.torch().clone()
    ones, zeros = tg.ones(3), tg.zeros(3)
    for op in (lambda: x.add_(1.0), lambda: x.mul_(ones), lambda: x.fill_(0.0),
               lambda: x.copy_(zeros), lambda: x.__setitem__(0, 5.0)):
        fails_before_launch(RuntimeError, "leaf Variable that requires grad .* in-place", op)
    assert same_bits(x, before)


class WrongCount(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad):
        return (grad,)  # two inputs, one gradient


class WrongShape(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2.0

    @staticmethod
    def backward(ctx, grad):
        return tg.ones(5)


def test_custom_function_wrong_number_of_gradients():
    a, b, y = leaf(3), leaf(3), leaf(2)
    loss = WrongCount.apply(a, b).sum() + y.sum()
    with tg_error(RuntimeError, r"WrongCountBackward.*incorrect number of gradients "
                                r"\(expected 2, got 1\)"):
        loss.backward()
    assert a.grad is None and b.grad is None and y.grad is None


def test_custom_function_gradient_of_wrong_shape():
    a, y = leaf(3), leaf(2)
    loss = WrongShape.apply(a).sum() + y.sum()
    with tg_error(RuntimeError, r"WrongShapeBackward.*invalid gradient at index 0.*\[5\].*\[3\]"):
        loss.backward()
    assert a.grad is None and y.grad is None


# ----------------------------------------------------------------------------- state


def _model_bits(model) -> dict:
    return {k: v.torch().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("problem", ["missing", "unexpected", "shape"])
def test_load_state_dict_bad_keys_or_shapes(problem):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = _model_bits(model)
    other = {k: tg.zeros(*v.shape) for k, v in model.state_dict().items()}
    message = {"missing": r'Missing key\(s\) in state_dict: "2.bias"',
               "unexpected": r'Unexpected key\(s\) in state_dict: "3.weight"',
               "shape": r"size mismatch for 2.weight.*\[5, 4\].*\[2, 4\]"}[problem]
    if problem == "missing":
        del other["2.bias"]
    elif problem == "unexpected":
        other["3.weight"] = tg.zeros(2, 2)
    else:
        other["2.weight"] = tg.zeros(5, 4)
    fails_before_launch(RuntimeError, message, lambda: model.load_state_dict(other))
    after = _model_bits(model)
    assert all(same_bits(after[k], before[k]) for k in before)  # nothing half-loaded


def _trained_adam():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = tg.ones(*p.shape)
    opt.step()
    return model, opt


def _state_bits(opt) -> list:
    return [(name, value.torch().clone() if isinstance(value, tg.Tensor) else
             value.clone() if isinstance(value, torch.Tensor) else value)
            for p in opt.state for name, value in sorted(opt.state[p].items())]


@pytest.mark.parametrize("problem", ["missing", "shape"])
def test_optimizer_load_state_dict_bad_keys_or_shapes(problem):
    model, opt = _trained_adam()
    saved = opt.state_dict()
    before = _state_bits(opt)
    if problem == "missing":
        bad = {"state": saved["state"]}
    else:
        bad = {"state": {0: {**saved["state"][0], "exp_avg": tg.zeros(5)}, 1: saved["state"][1]},
               "param_groups": saved["param_groups"]}
    with tg_error(ValueError if problem == "shape" else RuntimeError, "exp_avg|param_groups"):
        opt.load_state_dict(bad)
    after = _state_bits(opt)
    assert len(after) == len(before)
    assert all(n1 == n2 and (same_bits(v1, v2) if isinstance(v1, torch.Tensor) else v1 == v2)
               for (n1, v1), (n2, v2) in zip(after, before))


def test_optimizer_step_with_bad_grad_leaves_params_untouched():
    model = nn.Linear(3, 2)
    for make in (optim.SGD, optim.Adam):
        opt = make(model.parameters(), lr=0.1)
        before = _model_bits(model)
        model.weight.grad = tg.zeros(5)
        model.bias.grad = tg.ones(2)
        fails_before_launch(ValueError, r"grads\[0\] has shape \(5,\).*\(2, 3\)", opt.step)
        model.weight.grad = tg.zeros(2, 3, dtype=torch.float16)
        fails_before_launch(TypeError, "float16", opt.step)
        after = _model_bits(model)
        assert all(same_bits(after[k], before[k]) for k in before)


def test_optimizer_step_with_bad_grad_leaves_state_untouched():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    model.weight.grad = tg.zeros(5)
    model.bias.grad = tg.ones(2)
    with tg_error(ValueError, "shape"):
        opt.step()
    assert len(opt.state) == 0


def test_truncated_checkpoint(tmp_path):
    model = nn.Linear(3, 2)
    path = tmp_path / "model.tg"
    serialization.save({"model": model.state_dict(), "step": 3}, path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.tg").write_bytes(data[:cut])
        with tg_error(RuntimeError, "truncated"):
            serialization.load(tmp_path / "cut.tg")
    assert serialization.load(path)["step"] == 3


# ----------------------------------------------------------------------------- edge values

F = torch.nn.functional
EMPTY_CASES = {
    "matmul K=0": (lambda a, b: matmul(a, b), torch.matmul, (torch.randn(2, 0), torch.randn(0, 3))),
    "matmul M=0": (lambda a, b: matmul(a, b), torch.matmul, (torch.randn(0, 4), torch.randn(4, 3))),
    "linear N=0": (lambda x, w, b: linear(x, w, b), F.linear,
                   (torch.randn(0, 4), torch.randn(3, 4), torch.randn(3))),
    "mse mean": (lambda a, b: mse_loss(a, b), F.mse_loss, (torch.randn(0, 3), torch.randn(0, 3))),
    "mse sum": (lambda a, b: mse_loss(a, b, reduction="sum"),
                lambda a, b: F.mse_loss(a, b, reduction="sum"),
                (torch.randn(0), torch.randn(0))),
    "cross_entropy N=0": (lambda x, t: cross_entropy(x, t), F.cross_entropy,
                          (torch.randn(0, 5), torch.zeros(0, dtype=torch.int64))),
    "cross_entropy all ignored": (lambda x, t: cross_entropy(x, t), F.cross_entropy,
                                  (torch.randn(3, 5), torch.full((3,), -100))),
    "sum": (lambda x: x.sum(), torch.sum, (torch.randn(0, 3),)),
    "mean": (lambda x: x.mean(), torch.mean, (torch.randn(0, 3),)),
    "mean dim": (lambda x: x.mean(0), lambda x: x.mean(0), (torch.randn(0, 3),)),
    "add broadcast": (lambda a, b: a + b, torch.add, (torch.randn(0, 3), torch.randn(3))),
}


@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_empty_tensors_as_torch(case):
    ours, reference, inputs = EMPTY_CASES[case]
    assert_parity(ours, reference, *inputs)


INF, NAN = float("inf"), float("nan")
NON_FINITE_LOSSES = {
    # cross-entropy: -inf on a non-target class is fine; on the target, inf loss; a row
    # of -inf, or one holding NaN or +inf, gives NaN (the other rows stay finite for 'none')
    "ce -inf non-target": ([[-INF, 1.0, 2.0], [0.5, -INF, 0.0]], [1, 0]),
    "ce -inf on target": ([[-INF, 1.0, 2.0], [0.5, 0.1, 0.0]], [0, 1]),
    "ce row of -inf": ([[-INF, -INF, -INF], [0.5, 0.1, 0.0]], [0, 1]),
    "ce nan": ([[NAN, 1.0, 2.0], [0.5, 0.1, 0.0]], [1, 2]),
    "ce +inf": ([[INF, 1.0, 2.0], [0.5, 0.1, 0.0]], [1, 2]),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", sorted(NON_FINITE_LOSSES))
def test_cross_entropy_nan_and_inf_as_torch(case, reduction):
    logits, target = NON_FINITE_LOSSES[case]
    assert_parity(lambda x, t: cross_entropy(x, t, reduction=reduction),
                  lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                  torch.tensor(logits), torch.tensor(target))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_mse_nan_and_inf_as_torch(value, reduction):
    x = torch.tensor([[1.0, value, 3.0], [0.5, 0.25, -1.0]])
    y = torch.tensor([[1.5, 2.0, value], [0.0, 0.25, 1.0]])
    assert_parity(lambda a, b: mse_loss(a, b, reduction=reduction),
                  lambda a, b: F.mse_loss(a, b, reduction=reduction), x, y)


@pytest.mark.parametrize("value", [NAN, INF])
def test_linear_cross_entropy_nan_and_inf_as_torch(value):
    hidden = torch.randn(3, 4)
    hidden[1, 2] = value
    assert_parity(lambda h, w, t: linear_cross_entropy(h, w, t),
                  lambda h, w, t: F.cross_entropy(h @ w.T, t),
                  hidden, torch.randn(5, 4), torch.tensor([0, 4, 2]))
