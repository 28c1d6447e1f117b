"""The engine: graph shapes, accumulation, retain_graph, autograd.grad, hooks,
grad modes, custom Functions, and torch's errors."""

import gc
import weakref

import pytest
import torch

import tritongrad as tg
from tritongrad.autograd import Function
from tritongrad.testing import assert_close


def leaf(values, **kw):
    return tg.tensor(values, requires_grad=True, **kw)


def test_diamond_graph_sums_both_paths():
    x = leaf([1.0, 2.0, 3.0])
    a = x * 2.0
    b = x.exp()
    (a * b).sum().backward()
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ((tx * 2.0) * tx.exp()).sum().backward()
    assert_close(x.grad, tx.grad)


def test_reused_node_and_accumulation_over_two_backwards():
    x = leaf([0.5, -1.5])
    y = x * x
    z = y + y  # y used twice
    z.sum().backward()
    assert_close(x.grad, torch.tensor([2.0, -6.0]))
    (x * 3.0).sum().backward()  # accumulates into .grad
    assert_close(x.grad, torch.tensor([5.0, -3.0]))


def test_leaf_grad_is_not_shared_between_two_leaves():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()  # add passes the same gradient to both
    a.grad.mul_(10.0)
    assert_close(b.grad, torch.tensor([1.0, 1.0]))


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.torch().clone()
    y.backward()
    assert_close(x.grad, first * 2)


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_autograd_grad_does_not_touch_grad_and_allow_unused():
    x, unused = leaf([1.0, 2.0]), leaf([5.0])
    y = (x * x).sum()
    (gx,) = tg.autograd.grad(y, [x], retain_graph=True)
    assert x.grad is None
    assert_close(gx, torch.tensor([2.0, 4.0]))
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        tg.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = tg.autograd.grad(y, [x, unused], allow_unused=True)
    assert gu is None


def test_autograd_grad_of_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    y = (h * h).sum()
    (gh,) = tg.autograd.grad(y, [h])
    assert_close(gh, torch.tensor([6.0, 12.0]))
    assert x.grad is None


def test_hooks_on_leaf_and_intermediate_and_retain_grad():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    h = x * 2.0
    h.retain_grad()
    handle = h.register_hook(lambda g: g * 10.0)  # replaces the gradient flowing on
    (h * h).sum().backward()
    assert_close(h.grad, torch.tensor([40.0, 80.0]))
    assert seen == [[80.0, 160.0]]
    assert_close(x.grad, torch.tensor([80.0, 160.0]))
    handle.remove()


def test_no_grad_and_enable_grad():
    x = leaf([1.0])
    with tg.no_grad():
        y = x * 2.0
        with tg.enable_grad():
            z = x * 2.0
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @tg.no_grad()
    def f(t):
        return t * 2.0

    assert not f(x).requires_grad


def test_grad_fn_and_next_functions():
    x = leaf([1.0])
    y = x * 2.0 + 1.0
    assert y.grad_fn.name() == "ScalarOpBackward"
    (child, nr), = [e for e in y.grad_fn.next_functions if e[0] is not None]
    assert child.name() == "ScalarOpBackward"
    assert child.next_functions[0][0].name() == "AccumulateGrad"
    assert x.is_leaf and not y.is_leaf
    assert "grad_fn=<ScalarOpBackward>" in repr(y)


class Identity(Function):
    """A kernel-free Function, so the chain test measures the engine alone."""

    @staticmethod
    def forward(ctx, x):
        return tg.Tensor._wrap(x.torch())

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_chain_of_10000_ops_has_no_recursion_limit():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(10_000):
        y = Identity.apply(y)
    y.backward(tg.tensor([1.0, 1.0]))
    assert_close(x.grad, torch.tensor([1.0, 1.0]))


class ScaleBy(Function):
    """y = x * k with a non-tensor argument and two outputs."""

    @staticmethod
    def forward(ctx, x, k: float):
        ctx.k = k
        ctx.save_for_backward(x)
        return x * k, x * (2 * k)

    @staticmethod
    def backward(ctx, grad_a, grad_b):
        (x,) = ctx.saved_tensors
        assert tuple(x.shape) == (2,)
        return grad_a * ctx.k + grad_b * (2 * ctx.k), None


def test_custom_function_multiple_outputs_and_needs_input_grad():
    x = leaf([1.0, 2.0])
    a, b = ScaleBy.apply(x, 3.0)
    (a.sum() + b.sum()).backward()
    assert_close(x.grad, torch.tensor([9.0, 9.0]))


def test_custom_function_unused_output_gets_zero_grad():
    x = leaf([1.0, 2.0])
    a, _ = ScaleBy.apply(x, 3.0)
    a.sum().backward()
    assert_close(x.grad, torch.tensor([3.0, 3.0]))


class WrongCount(Function):
    @staticmethod
    def forward(ctx, x, y):
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        return tg.ones(3)


def test_custom_function_wrong_gradient_count_names_function():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"WrongCountBackward.*incorrect number of gradients"):
        WrongCount.apply(x, x).sum().backward()


def test_custom_function_wrong_gradient_shape_names_function():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"WrongShapeBackward.*invalid gradient at index 0.*\[3\].*\[2\]"):
        WrongShape.apply(x).sum().backward()


def test_mark_non_differentiable():
    class Pair(Function):
        @staticmethod
        def forward(ctx, x):
            idx = x * 0.0
            ctx.mark_non_differentiable(idx)
            return x * 2.0, idx

        @staticmethod
        def backward(ctx, grad, grad_idx):
            return grad * 2.0

    x = leaf([1.0])
    y, idx = Pair.apply(x)
    assert y.requires_grad and not idx.requires_grad


def test_error_backward_on_non_scalar():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2.0).backward()


def test_error_backward_without_grad():
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        x.sum().backward()


def test_error_gradient_shape_mismatch():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of \[3\]"):
        (x * 2.0).backward(tg.ones(3))


def test_error_inplace_on_leaf_requiring_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        x.add_(1.0)
    with tg.no_grad():
        x.add_(1.0)  # allowed, as in torch
    assert x.tolist() == [2.0, 3.0]


def test_error_saved_tensor_modified_in_place_names_versions():
    x = leaf([1.0, 2.0])
    w = tg.tensor([3.0, 4.0])
    y = (x * w).sum()
    w.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*MulBackward.*version 1; expected version 0"):
        y.backward()


def test_version_counter_is_shared_by_views_and_torch_alias():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    view = x[0]
    alias = x.torch()
    v0 = x._version
    view.mul_(2.0)
    assert x._version == v0 + 1 == alias._version
    alias.add_(1.0)  # torch's own in-place op on the alias
    assert x._version == v0 + 2


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point"):
        tg.tensor([1, 2, 3]).requires_grad_()


def test_saved_tensors_and_graph_are_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()
    node = weakref.ref(y.grad_fn)
    saved = weakref.ref(y.grad_fn._saved[0].data)
    loss = y.sum()
    loss.backward()
    del y, loss
    gc.collect()
    assert node() is None
    assert saved() is None


# --- review: ownership of leaf gradients, autograd.grad, grad modes ---------------------


def test_leaf_grad_never_aliases_a_tensor_that_backward_returned_as_is():
    coef = tg.tensor([1.0, 2.0, 3.0])

    class ReturnsUserTensor(Function):  # d(out)/dx given as a tensor the user still holds
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return coef

    class ReturnsSavedTensor(Function):  # returns what it saved (an input) as the gradient
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(w)
            return x * w

        @staticmethod
        def backward(ctx, grad):
            (w,) = ctx.saved_tensors
            return w, None

    x = leaf([1.0, 1.0, 1.0])
    for _ in range(2):  # the second backward accumulates into x.grad in place
        ReturnsUserTensor.apply(x).backward(tg.ones(3))
    assert coef.tolist() == [1.0, 2.0, 3.0]
    assert_close(x.grad, torch.tensor([2.0, 4.0, 6.0]))
    x.grad.mul_(0.0)  # an optimizer-style in-place update of .grad
    assert coef.tolist() == [1.0, 2.0, 3.0]

    w = tg.tensor([5.0, 6.0])
    x = leaf([1.0, 1.0])
    ReturnsSavedTensor.apply(x, w).sum().backward()
    x.grad.zero_()
    assert w.tolist() == [5.0, 6.0]


def test_leaf_hook_that_keeps_its_gradient_does_not_share_it_with_grad():
    x = leaf([1.0, 2.0])
    kept = []
    x.register_hook(kept.append)
    (x * 3.0).sum().backward()
    x.grad.zero_()
    assert kept[0].tolist() == [3.0, 3.0]


def _grads_of(lib, inputs_of, with_hooks):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    if with_hooks:
        x.register_hook(lambda g: g * 5.0)
        y.register_hook(lambda g: g * 7.0)
    z = (y * y).sum()
    inputs = inputs_of(x, y)
    return [g.tolist() for g in lib.autograd.grad(z, inputs)]


@pytest.mark.parametrize("with_hooks", [False, True])
@pytest.mark.parametrize("inputs_of", [lambda x, y: [y, x, y], lambda x, y: [x, x],
                                       lambda x, y: [y], lambda x, y: [x]])
def test_autograd_grad_repeated_inputs_and_hooks_match_torch(inputs_of, with_hooks):
    # an input listed twice gets its gradient twice; a leaf's hooks apply to what is
    # returned for it; a non-leaf's hooks apply unless its node runs anyway (torch's order)
    assert _grads_of(tg, inputs_of, with_hooks) == _grads_of(torch, inputs_of, with_hooks)


def test_autograd_grad_fires_no_hook_of_a_tensor_it_does_not_need():
    calls = []
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    x.register_hook(lambda g: calls.append("x"))
    h = x * 1.0
    h.register_hook(lambda g: calls.append("h"))
    (grad_y,) = tg.autograd.grad((h * y).sum(), [y])
    assert grad_y.tolist() == [1.0, 2.0] and calls == []  # as in torch


def test_backward_gradient_takes_the_output_dtype():
    x = leaf([1.0, 2.0])
    (x * x).backward(tg.ones(2, dtype=tg.float64))
    assert x.grad.dtype == torch.float32
    assert_close(x.grad, torch.tensor([2.0, 4.0]))
    y = leaf([1.0, 2.0])
    y.backward(tg.ones(2, dtype=tg.float16))  # a leaf's .grad keeps the leaf's dtype
    assert y.grad.dtype == torch.float32


def test_mark_non_differentiable_on_an_output_that_is_an_input():
    class PassIndex(Function):
        @staticmethod
        def forward(ctx, x, index):
            ctx.mark_non_differentiable(index)
            return x * 2.0, index

        @staticmethod
        def backward(ctx, grad, grad_index):
            return grad * 2.0, None

    x = leaf([1.0, 2.0])
    index = leaf([0.0, 1.0])
    out, same_index = PassIndex.apply(x, index)
    assert not same_index.requires_grad and same_index.grad_fn is None
    assert out.requires_grad


def test_function_apply_refuses_a_keyword_tensor_that_requires_grad():
    class Scale(Function):
        @staticmethod
        def forward(ctx, x, scale=None):
            return x * scale

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(RuntimeError, match="keyword argument 'scale'.*positionally"):
        Scale.apply(tg.tensor([1.0]), scale=leaf([2.0]))
    assert Scale.apply(leaf([1.0]), scale=tg.tensor([2.0])).tolist() == [2.0]


def test_set_grad_enabled_as_a_call_and_bare_decorators():
    x = leaf([1.0])
    try:
        tg.set_grad_enabled(False)  # a plain call switches recording off, as in torch
        assert not tg.is_grad_enabled() and not (x * 2.0).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled()

    @tg.no_grad
    def without():
        return tg.is_grad_enabled()

    @tg.set_grad_enabled(False)
    def disabled():
        return tg.is_grad_enabled()

    assert tg.is_grad_enabled()  # decorating does not change the mode
    assert without() is False and disabled() is False and tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_retain_grad_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="retain_grad on Tensor that has requires_grad=False"):
        tg.tensor([1.0]).retain_grad()


def test_the_same_root_twice_runs_once_with_the_sum():
    """torch accepts backward([l, l]): the node runs once, with both gradients added."""
    x = tg.randn(5, requires_grad=True)
    loss = (x * x).sum()
    tg.autograd.backward([loss, loss])
    assert_close(x.grad, 4 * x.torch(), dtype=torch.float32)


def test_a_failed_backward_that_handed_out_a_buffer_cannot_be_retried_silently():
    """Cross-entropy hands its private gradient buffer out of backward; when an observer
    (anomaly mode here) raises after that, a second backward must fail with torch's
    message, not read the missing buffer."""
    from tritongrad.nn.functional import cross_entropy

    values = torch.randn(3, 4)
    values[0, 1] = float("nan")
    x = tg.from_torch(values).requires_grad_()
    target = tg.tensor([0, 1, 2])
    with tg.autograd.detect_anomaly(check_forward=False):
        loss = cross_entropy(x, target)
        with pytest.raises(tg.autograd.AnomalyError):
            loss.backward()
    with pytest.raises(tg.autograd.AutogradError, match="second time"):
        loss.backward()
