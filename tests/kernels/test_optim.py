"""Fused multi-tensor SGD and Adam/AdamW launchers against torch.optim's single-tensor path."""

import pytest
import torch

import tritongrad
from tests.launches import recorded_launches
from tests.test_review_kernels import gpu_float_typing  # noqa: F401 (fixture: GPU typing)
from tritongrad.kernels import optim as optim_kernels
from tritongrad.kernels._checks import LayoutError, ShapeError
from tritongrad.kernels.norm import UnsupportedError
from tritongrad.testing.compare import assert_close

DEVICE = tritongrad.device()
# 1 element, odd sizes, and one parameter spanning two chunks (two step slots).
SHAPES = [(1,), (3, 7), (optim_kernels.CHUNK + 3,), (2, 5, 3)]


def run_pair(kind, torch_kwargs, dtype=torch.float32, steps=20, lr=0.01, ref_dtype=None,
             grad_floor=0.0, initial=None):
    """Our launcher and torch.optim (foreach=False, in ref_dtype) from the same params and
    grads; grad_floor pushes |grad| away from 0. ``initial``: a list that receives copies of
    the starting params. fp64 params get an fp64 lr tensor."""
    torch.manual_seed(0)
    params = [torch.randn(s, device=DEVICE).to(dtype) for s in SHAPES]
    if initial is not None:
        initial.extend(p.clone() for p in params)
    ref = [p.detach().to(ref_dtype or dtype, copy=True).requires_grad_() for p in params]
    lr_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    lr_tensor = torch.full((1,), lr, dtype=lr_dtype, device=DEVICE)
    slots = [optim_kernels.new_step_slots(p) for p in params]
    buf_a = [torch.zeros_like(p) for p in params]
    buf_b = [torch.zeros_like(p) for p in params]
    if kind == "sgd":
        opt = torch.optim.SGD(ref, lr=lr, foreach=False, **torch_kwargs)
    else:
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        opt = cls(ref, lr=lr, foreach=False, **torch_kwargs)
    with recorded_launches() as launches:
        for _ in range(steps):
            grads = [torch.randn(p.shape, device=DEVICE) for p in params]
            grads = [(g + grad_floor * g.sign()).to(dtype) for g in grads]
            for r, g in zip(ref, grads):
                r.grad = g.to(r.dtype, copy=True)
            opt.step()
            if kind == "sgd":
                optim_kernels.sgd_step_(
                    params, grads, buf_a, slots, lr_tensor,
                    momentum=torch_kwargs.get("momentum", 0.0),
                    dampening=torch_kwargs.get("dampening", 0.0),
                    nesterov=torch_kwargs.get("nesterov", False),
                    weight_decay=torch_kwargs.get("weight_decay", 0.0),
                    maximize=torch_kwargs.get("maximize", False))
            else:
                beta1, beta2 = torch_kwargs.get("betas", (0.9, 0.999))
                optim_kernels.adam_step_(
                    params, grads, buf_a, buf_b, slots, lr_tensor, beta1=beta1, beta2=beta2,
                    eps=torch_kwargs.get("eps", 1e-8),
                    weight_decay=torch_kwargs.get("weight_decay", 0.0 if kind == "adam" else 1e-2),
                    decoupled=kind == "adamw", maximize=torch_kwargs.get("maximize", False))
    return params, ref, opt, buf_a, slots, len(launches)


SGD_CASES = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05},
    {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
    {"momentum": 0.5, "maximize": True},
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_torch(kwargs):
    params, ref, opt, bufs, slots, launches = run_pair("sgd", kwargs)
    assert launches == 20  # one launch per step for the whole list
    for p, r in zip(params, ref):
        assert_close(p, r.detach(), dtype=torch.float32)
    if kwargs.get("momentum"):
        for b, r in zip(bufs, ref):
            assert_close(b, opt.state[r]["momentum_buffer"], dtype=torch.float32)
        assert all(int(s.min()) == 20 and int(s.max()) == 20 for s in slots)


ADAM_CASES = [
    ("adam", {}),
    ("adam", {"weight_decay": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"maximize": True}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.3, "betas": (0.5, 0.9)}),
]


@pytest.mark.parametrize("kind,kwargs", ADAM_CASES, ids=str)
def test_adam_matches_torch(kind, kwargs):
    params, ref, opt, exp_avgs, slots, launches = run_pair(kind, kwargs)
    assert launches == 20
    for p, r, m in zip(params, ref, exp_avgs):
        assert_close(p, r.detach(), dtype=torch.float32)
        assert_close(m, opt.state[r]["exp_avg"], dtype=torch.float32)
        assert float(opt.state[r]["step"]) == 20
    # One slot per chunk, every slot counted each step.
    assert [s.numel() for s in slots] == [optim_kernels.chunk_count(p.numel()) for p in params]
    assert all(int(s.min()) == 20 and int(s.max()) == 20 for s in slots)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind,kwargs", [("sgd", {"momentum": 0.9, "weight_decay": 0.01}),
                                         ("adam", {}), ("adamw", {})], ids=str)
def test_low_precision_params(dtype, kind, kwargs):
    """State in the param dtype, math in fp32. torch.optim in fp16 rounds after every op and
    its eps=1e-8 underflows to 0 in fp16 (measured: -inf params after 3 Adam steps), so the
    reference is torch in fp32 from the same rounded params and grads, at the dtype's
    tolerance. |grad| >= 0.1 keeps (1 - beta2) g^2 inside fp16's range: smaller values
    flush the fp16 exp_avg_sq to 0, as they do in torch."""
    params, ref, _, _, _, _ = run_pair(kind, kwargs, dtype=dtype, steps=3,
                                       ref_dtype=torch.float32, grad_floor=0.1)
    for p, r in zip(params, ref):
        assert p.dtype == dtype
        assert_close(p, r.detach().to(dtype), dtype=dtype)


def test_mixed_dtypes_one_launch_per_dtype():
    params = [torch.randn(5, device=DEVICE), torch.randn(6, device=DEVICE).half(),
              torch.randn(7, device=DEVICE)]
    grads = [torch.ones_like(p) for p in params]
    lr = torch.full((1,), 0.5, device=DEVICE)
    before = [p.clone() for p in params]
    with recorded_launches() as launches:
        optim_kernels.sgd_step_(params, grads, None, None, lr)
    assert len(launches) == 2
    for p, b in zip(params, before):
        assert_close(p, b.float() - 0.5, dtype=p.dtype)


def test_lr_is_read_from_the_device():
    params = [torch.zeros(4, device=DEVICE)]
    lr = torch.full((1,), 1.0, device=DEVICE)
    optim_kernels.sgd_step_(params, [torch.ones(4, device=DEVICE)], None, None, lr)
    lr.copy_(torch.tensor([0.25], device="cpu"))  # what a scheduler does: a host->device copy
    optim_kernels.sgd_step_(params, [torch.ones(4, device=DEVICE)], None, None, lr)
    assert_close(params[0], torch.full((4,), -1.25), dtype=torch.float32)


def test_checks():
    p = torch.randn(4, 6, device=DEVICE)
    lr = torch.full((1,), 0.1, device=DEVICE)
    slots = [optim_kernels.new_step_slots(p)]
    with pytest.raises(UnsupportedError, match="amsgrad"):
        optim_kernels.adam_step_([p], [p], [p], [p], slots, lr, amsgrad=True)
    with pytest.raises(LayoutError, match="contiguous"):
        optim_kernels.sgd_step_([p.t()], [p.t()], None, None, lr)
    with pytest.raises(ShapeError, match="grads"):
        optim_kernels.sgd_step_([p], [torch.zeros(3, device=DEVICE)], None, None, lr)
    with pytest.raises(TypeError, match="float16"):
        optim_kernels.sgd_step_([p], [p.half()], None, None, lr)
    with pytest.raises(ShapeError, match="momentum"):
        optim_kernels.sgd_step_([p], [p], None, None, lr, momentum=0.9)
    with pytest.raises(TypeError, match="lr"):
        optim_kernels.sgd_step_([p], [p], None, None, lr.half())
    with pytest.raises(TypeError, match="float64 params need a float64 lr"):  # fp32 is inexact
        optim_kernels.sgd_step_([p.double()], [p.double()], None, None, lr)


FP64_CASES = [
    ("sgd", {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05}),
    ("sgd", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01, "maximize": True}),
    # eps near sqrt(v): its rounding would show in the updates
    ("adam", {"weight_decay": 0.3, "betas": (0.8, 0.99), "eps": 0.1}),
    ("adamw", {"weight_decay": 0.3, "betas": (0.7, 0.9), "eps": 0.3}),
]


@pytest.mark.parametrize("kind,kwargs", FP64_CASES, ids=str)
@pytest.mark.usefixtures("gpu_float_typing")
def test_fp64_params_match_torch(kind, kwargs):
    """fp64 params: fp64 state, math and host numbers, against torch.optim in fp64. Updates
    p - p0 (about lr = 0.01 in size) are compared: an fp32 computation rounds p by ~1e-8,
    1e-6 of an update, past the fp64 tolerance. A host number rounded to fp32 (lr, betas,
    eps, weight decay: up to 6e-8 relative) hides inside that tolerance, so the updates are
    also compared at 1e-10 (tighter than the table on purpose), with host numbers typed as
    a GPU launch types them (gpu_float_typing)."""
    initial = []
    params, ref, opt, bufs, slots, launches = run_pair(kind, kwargs, dtype=torch.float64,
                                                       steps=3, initial=initial)
    assert launches == 3
    for p, r, p0, b in zip(params, ref, initial, bufs):
        assert p.dtype == b.dtype == torch.float64
        assert_close(p, r.detach(), dtype=torch.float64, name="param")
        assert_close(p - p0, r.detach() - p0, dtype=torch.float64, name="update")
        assert_close(p - p0, r.detach() - p0, rtol=1e-10, atol=0.0, name="update (exact)")
        state = opt.state[r]["momentum_buffer" if kind == "sgd" else "exp_avg"]
        assert_close(b, state, rtol=1e-12, atol=0.0, name="state")


@pytest.mark.usefixtures("gpu_float_typing")


def test_fp64_and_fp32_params_share_an_fp64_lr():
    # A group holding both reads one fp64 rate: fp64 params get it exactly, fp32 ones
    # rounded to fp32, exactly as from an fp32 rate tensor.
    p32 = torch.randn(6, device=DEVICE)
    p64 = torch.randn(5, dtype=torch.float64, device=DEVICE)
    grads = [torch.randn(6, device=DEVICE), torch.randn(5, dtype=torch.float64, device=DEVICE)]
    lr64 = torch.full((1,), 0.1, dtype=torch.float64, device=DEVICE)
    lr32 = torch.full((1,), 0.1, device=DEVICE)
    alone = p32.clone()
    optim_kernels.adam_step_([alone], grads[:1], [torch.zeros(6)], [torch.zeros(6)],
                             [optim_kernels.new_step_slots(alone)], lr32)
    params = [p32.clone(), p64.clone()]
    with recorded_launches() as launches:
        optim_kernels.adam_step_(params, grads, [torch.zeros_like(p) for p in params],
                                 [torch.zeros_like(p) for p in params],
                                 [optim_kernels.new_step_slots(p) for p in params], lr64)
    assert len(launches) == 2
    assert torch.equal(params[0], alone)
    ref = p64.clone().requires_grad_()
    ref.grad = grads[1].clone()
    torch.optim.Adam([ref], lr=0.1, foreach=False).step()
    assert_close(params[1] - p64, ref.detach() - p64, rtol=1e-10, atol=0.0, name="update")
