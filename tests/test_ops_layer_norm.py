"""F.layer_norm and nn.LayerNorm through autograd against torch.autograd: the output and
the gradients of input, weight and bias in fp32 / fp16 / bf16, odd shapes and layouts,
constant rows, the module and its state dict, needs_input_grad and the argument errors."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad import nn
from tritongrad.kernels import layer_norm as layer_norm_kernels
from tritongrad.nn import functional as F
from tritongrad.testing import assert_close, assert_parity, gradcheck
from tritongrad.testing.ref_layer_norm import layer_norm_reference

DEVICE = tg.device()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def randn(*shape):
    return torch.randn(*shape, device=DEVICE)


# name: (x, normalized_shape, parameters: "wb" both, "w" weight only, "" none)
CASES = {
    "2d": (lambda: randn(33, 100) * 2.0 + 0.5, (100,), "wb"),
    "1-row": (lambda: randn(1, 129), (129,), "wb"),
    "width-7": (lambda: randn(5, 7), (7,), "wb"),
    "width-1000": (lambda: randn(3, 1000), (1000,), "wb"),
    "3d-last-1": (lambda: randn(2, 3, 20), (20,), "wb"),
    "3d-last-2": (lambda: randn(2, 3, 20), (3, 20), "wb"),
    "transposed": (lambda: randn(100, 7).T, (100,), "wb"),
    "sliced": (lambda: randn(10, 66)[::3, 1::2], (33,), "wb"),
    "no-affine": (lambda: randn(9, 31), (31,), ""),
    "weight-only": (lambda: randn(9, 31), (31,), "w"),
}


def params(normalized, which):
    weight = randn(*normalized) * 0.5 + 1.0 if "w" in which else None
    bias = randn(*normalized) if "b" in which else None
    return weight, bias


def check_parity(x, normalized, weight, bias, dtype, eps=1e-5):
    """Output and every gradient against torch (fp16 / bf16: torch in fp32 on the same
    rounded values, rounded once; see ref_layer_norm)."""
    assert_parity(lambda t, w, b: F.layer_norm(t, normalized, w, b, eps),
                  lambda t, w, b: layer_norm_reference(t, normalized, w, b, eps),
                  x, weight, bias, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parity(case, dtype):
    torch.manual_seed(0)
    make, normalized, which = CASES[case]
    x = make()
    weight, bias = params(normalized, which)
    check_parity(x, normalized, weight, bias, dtype)


def run_ours(x, normalized, weight, bias, grad):
    leaves = [None if t is None else tg.from_torch(t, requires_grad=True)
              for t in (x, weight, bias)]
    y = F.layer_norm(leaves[0], normalized, leaves[1], leaves[2])
    y.backward(tg.from_torch(grad))
    return y, [None if t is None else t.grad for t in leaves]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_width_one_and_constant_rows(dtype):
    """var = 0: x_hat = 0, y = bias, dx = rstd (g - mean g) with rstd = 1/sqrt(eps) ~ 316.
    Judged against torch in fp64, rounded: torch's own fp32 dx for width 1 is rounding noise
    times 316 (3e-5, where the exact value is 0)."""
    torch.manual_seed(1)
    constant = torch.tensor([2.5, 0.0, -1.0], device=DEVICE)[:, None].expand(3, 8)
    for x, normalized in ((randn(6, 1) * 3.0, (1,)),
                          (torch.cat([constant, randn(1, 8)]), (8,)),
                          (randn(2, 3, 1), (3, 1))):
        x = x.to(dtype)
        weight, bias = (t.to(dtype) for t in params(normalized, "wb"))
        grad = randn(*x.shape).to(dtype)
        y, grads = run_ours(x, normalized, weight, bias, grad)
        leaves = [t.double().requires_grad_(True) for t in (x, weight, bias)]
        y_ref = torch.nn.functional.layer_norm(leaves[0], normalized, leaves[1], leaves[2])
        y_ref.backward(grad.double())
        assert y.dtype == dtype
        assert_close(y, y_ref.detach().to(dtype), dtype=dtype, name=f"{normalized} y")
        for ours, leaf, name in zip(grads, leaves, ("dx", "dw", "db")):
            assert ours.dtype == dtype
            assert_close(ours, leaf.grad.to(dtype), dtype=dtype, name=f"{normalized} {name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_wide_rows_through_the_column_loop(monkeypatch, dtype):
    monkeypatch.setattr(layer_norm_kernels, "MAX_BLOCK_C", 32)  # 100 columns: 4 blocks
    monkeypatch.setattr(layer_norm_kernels, "TILE", 64)
    torch.manual_seed(2)
    weight, bias = params((100,), "wb")
    check_parity(randn(5, 100) * 2.0 + 3.0, (100,), weight, bias, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_input_with_fp32_module(dtype):
    """An fp32 nn.LayerNorm on fp16 / bf16 activations, as torch allows on the CPU: y and dx
    in the input's dtype, weight.grad and bias.grad in fp32."""
    torch.manual_seed(3)
    ours, theirs = nn.LayerNorm(24), torch.nn.LayerNorm(24)
    with torch.no_grad():
        theirs.weight.copy_(randn(24))
        theirs.bias.copy_(randn(24))
    ours.load_state_dict(theirs.state_dict())
    x = randn(6, 24).to(dtype)
    assert_parity(lambda t, w, b: F.layer_norm(t, (24,), w, b),
                  lambda t, w, b: layer_norm_reference(t, (24,), w, b),
                  x, ours.weight.torch(), ours.bias.torch(), dtype=None)
    y = ours(tg.from_torch(x))
    y.sum().backward()
    assert y.dtype == dtype and ours.weight.grad.dtype == torch.float32


def test_module_matches_torch_and_state_dict_round_trip():
    variants = [dict(normalized_shape=10), dict(normalized_shape=(4, 10), eps=1e-3),
                dict(normalized_shape=[10], bias=False),
                dict(normalized_shape=10, elementwise_affine=False)]
    torch.manual_seed(4)
    for kwargs in variants:
        ours, theirs = nn.LayerNorm(**kwargs), torch.nn.LayerNorm(**kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in ours.state_dict().items():  # initialised as torch: ones and zeros
            assert torch.equal(value.torch(), theirs.state_dict()[key])
        with torch.no_grad():
            for p in theirs.parameters():
                p.copy_(torch.randn(p.shape))
        result = ours.load_state_dict(theirs.state_dict())  # torch tensors load directly
        assert result.missing_keys == [] and result.unexpected_keys == []
        x = randn(3, 4, 10)
        assert_parity(ours, theirs, x, dtype=torch.float32)  # y and dx
        y = ours(tg.from_torch(x, requires_grad=True))
        y.backward(tg.from_torch(x))
        theirs.zero_grad()
        theirs(x.clone().requires_grad_(True)).backward(x)
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            assert_close(p.grad, q.grad, dtype=torch.float32, name=name)
        back = torch.nn.LayerNorm(**kwargs)
        back.load_state_dict({k: v.torch().clone() for k, v in ours.state_dict().items()})
        for key, value in back.state_dict().items():
            assert torch.equal(value, theirs.state_dict()[key])
    model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 2))
    assert "1.weight" in model.state_dict() and "1.bias" in model.state_dict()
    assert tuple(model(tg.from_torch(randn(5, 8))).shape) == (5, 2)


def test_needs_input_grad_and_launches():
    torch.manual_seed(5)
    layer = nn.LayerNorm(12)
    x = tg.from_torch(randn(4, 12))  # no grad for x: backward computes dw and db only
    with recorded_launches() as launches:
        layer(x).sum().backward()
    names = [info.kernel_name for info in launches if info.kernel_name.startswith("layer")]
    assert names == ["layer_norm_fwd_kernel", "layer_norm_bwd_kernel",
                     "layer_norm_sum_partials_kernel"]
    assert x.grad is None and layer.weight.grad is not None
    layer.zero_grad()
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    x = tg.from_torch(randn(4, 12), requires_grad=True)
    with recorded_launches() as launches:
        layer(x).sum().backward()
    names = [info.kernel_name for info in launches if info.kernel_name.startswith("layer")]
    assert names == ["layer_norm_fwd_kernel", "layer_norm_bwd_kernel"]  # dx only
    assert x.grad is not None and layer.weight.grad is None and layer.bias.grad is None
    with tg.no_grad():
        assert not layer(x).requires_grad


def test_fp64_gradcheck():
    torch.manual_seed(6)
    x = tg.from_torch(randn(2, 3, 4).double(), requires_grad=True)
    w = tg.from_torch(randn(3, 4).double(), requires_grad=True)
    b = tg.from_torch(randn(3, 4).double(), requires_grad=True)
    assert gradcheck(lambda t, ww, bb: F.layer_norm(t, (3, 4), ww, bb), (x, w, b))
    assert gradcheck(lambda t: F.layer_norm(t, 4, eps=1e-2), (x,))


def test_errors_name_shapes_and_dtypes():
    x = tg.from_torch(randn(3, 4))
    with pytest.raises(tg.ShapeError, match=r"Given normalized_shape=\[5\], expected input "
                                            r"with shape \[\*, 5\], but got input of "
                                            r"size\[3, 4\]"):
        F.layer_norm(x, (5,))
    with pytest.raises(tg.ShapeError, match=r"weight of shape \[3\] and normalized_shape"):
        F.layer_norm(x, (4,), tg.ones(3))
    with pytest.raises(TypeError, match=r"input float32, weight float16"):
        F.layer_norm(x, (4,), tg.ones(4, dtype=torch.float16))
    with pytest.raises(TypeError, match=r"int64"):
        F.layer_norm(tg.tensor([[1, 2]]), (2,))
    with pytest.raises(TypeError, match=r"normalized_shape must be an int or a tuple"):
        F.layer_norm(x, "4")
    with pytest.raises(tg.ShapeError, match=r"expected input with shape \[\*, 4\]"):
        nn.LayerNorm(4)(tg.from_torch(randn(4, 3)))
