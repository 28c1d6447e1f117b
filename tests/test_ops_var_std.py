"""tg.var / tg.std and Tensor.var / Tensor.std through autograd against torch.autograd: the
result and the input's gradient in fp32 / fp16 / bf16 (fp64 by gradcheck), torch's argument
forms (dim, unbiased, correction, keepdim), odd shapes and views, torch's values where no
degrees of freedom are left, and the argument errors."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.testing import assert_close, assert_parity, gradcheck
from tritongrad.testing.ref_moments import std_reference, var_reference

pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom:UserWarning",
                                        "ignore::RuntimeWarning")
DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


# name: (x, keyword arguments), each run as var and std
CASES = {
    "all": (lambda: randn(7, 13) * 2.0 + 0.5, {}),
    "dim-1": (lambda: randn(5, 33), {"dim": 1}),
    "dims-keepdim": (lambda: randn(3, 4, 5), {"dim": (0, 2), "keepdim": True}),
    "correction-0": (lambda: randn(6, 9), {"dim": 0, "correction": 0}),
    "correction-2-list": (lambda: randn(2, 3, 7), {"dim": [-1, 1], "correction": 2}),
    "transposed": (lambda: randn(9, 4).T, {"dim": 1, "unbiased": False}),
    "sliced-1-row": (lambda: randn(3, 40)[1:2, ::3], {"dim": -1}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parity(case, dtype):
    torch.manual_seed(0)
    make, kwargs = CASES[case]
    x = make()
    correction = kwargs.get("correction", 0 if kwargs.get("unbiased") is False else 1)
    dims = kwargs.get("dim")
    dims = (dims,) if isinstance(dims, int) else dims
    for name, reference in (("var", var_reference), ("std", std_reference)):
        assert_parity(lambda t, _n=name: getattr(t, _n)(**kwargs),
                      lambda t, _r=reference: _r(t, dims, correction,
                                                 kwargs.get("keepdim", False)),
                      x, dtype=dtype)


def test_argument_forms_match_torch():
    """torch's overloads: var(unbiased) with a bool in dim's place, var(dim, unbiased,
    keepdim) positionally, var(dim, *, correction, keepdim), and the module functions."""
    torch.manual_seed(1)
    x = randn(4, 6)
    t = tg.from_torch(x)
    forms = [
        (lambda a: a.var(True), lambda a: a.var(True)),
        (lambda a: a.std(False), lambda a: a.std(False)),
        (lambda a: a.var(0, True, True), lambda a: a.var(0, True, True)),
        (lambda a: a.std(1, False), lambda a: a.std(1, False)),
        (lambda a: a.var(dim=1, correction=0.5, keepdim=True),
         lambda a: a.var(dim=1, correction=0.5, keepdim=True)),
        (lambda a: a.var(keepdim=True), lambda a: a.var(keepdim=True)),
        (lambda a: a.std(unbiased=False), lambda a: a.std(unbiased=False)),
    ]
    for ours, theirs in forms:
        assert_close(ours(t), theirs(x))
    assert_close(tg.var(t, 1, unbiased=False), torch.var(x, 1, unbiased=False))
    assert_close(tg.std(t, dim=0, correction=2), torch.std(x, dim=0, correction=2))
    assert_close(tg.std(t), torch.std(x))


def test_no_degrees_of_freedom_as_torch():
    """One element (correction 1): NaN and a NaN gradient; equal elements over zero dof: NaN;
    std of equal elements: 0 with a zero gradient (torch's std == 0 branch); a 0-d input."""
    cases = [([3.0], {}), ([3.0, 3.0], {"correction": 2}), ([3.0, 4.0], {"correction": 2}),
             ([3.0, 4.0], {"dim": 0, "correction": 3}), ([2.0, 2.0, 2.0], {})]
    for values, kwargs in cases:
        for name in ("var", "std"):
            ours = tg.tensor(values, requires_grad=True)
            getattr(ours, name)(**kwargs).backward()
            theirs = torch.tensor(values, device=DEVICE, requires_grad=True)
            getattr(theirs, name)(**kwargs).backward()
            assert_close(getattr(ours, name)(**kwargs), getattr(theirs, name)(**kwargs),
                         name=f"{name}{values}{kwargs}")
            assert_close(ours.grad, theirs.grad, name=f"grad {name}{values}{kwargs}")
    scalar = tg.tensor(2.0, requires_grad=True)
    y = scalar.var(0, correction=0)
    y.backward()
    assert y.item() == 0.0 and scalar.grad.item() == 0.0


def test_fp64_gradcheck():
    torch.manual_seed(2)
    x = tg.from_torch(randn(2, 3, 2).double(), requires_grad=True)
    assert gradcheck(lambda t: t.var(dim=(0, 2), correction=0), (x,))
    x = tg.from_torch(randn(2, 3).double(), requires_grad=True)
    assert gradcheck(lambda t: t.std(1, keepdim=True), (x,))
    assert gradcheck(lambda t: tg.std(t), (x,))


def test_no_backward_without_grad_and_the_saved_result():
    x = tg.from_torch(randn(4, 5))
    with recorded_launches() as launches:
        y = x.std(1)
    assert not y.requires_grad and [i.kernel_name for i in launches] == ["moments_kernel"]
    x.requires_grad_(True)
    y = x.std(1)
    y.sum().backward()
    assert x.grad is not None
    # std's gradient reads its result: writing it in place first is an error, as torch
    y = x.std(1)
    with tg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_errors_name_arguments_and_dtypes():
    x = tg.from_torch(randn(3, 4))
    with pytest.raises(TypeError, match=r"either unbiased or correction, not both"):
        x.var(0, unbiased=True, correction=1)
    with pytest.raises(TypeError, match=r"argument 'unbiased' must be bool, not int"):
        x.var(1, 0)
    with pytest.raises(TypeError, match=r"var\(input, unbiased\) takes no other argument"):
        x.var(True, True)
    with pytest.raises(TypeError, match=r"argument 'correction' must be a number"):
        x.std(correction="1")
    with pytest.raises(TypeError, match=r"argument 'dim' must be an int or a tuple"):
        x.var(dim=1.5)
    with pytest.raises(tg.OutOfRangeError, match=r"Dimension out of range"):
        x.var(2)
    with pytest.raises(tg.ShapeError, match=r"appears multiple times"):
        x.std((0, -2))
    with pytest.raises(TypeError, match=r"std: input has dtype int64"):
        tg.tensor([[1, 2]]).std()
