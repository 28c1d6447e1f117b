"""tg.optim against torch.optim: 20 steps from identical params and grads, schedulers,
state_dict round trips, skipped params and the launch count."""

import pytest
import torch

import tritongrad as tg
from tests.launches import recorded_launches
from tritongrad.kernels.norm import UnsupportedError
from tritongrad.optim import SGD, Adam, AdamW, CosineAnnealingLR, StepLR
from tritongrad.testing.compare import assert_close

DEVICE = tg.device()
SHAPES = [(5, 3), (1,), (17,), (2, 3, 4)]


def on_device(t, requires_grad=False):
    """A tg Tensor over a copy of ``t`` on tritongrad's device."""
    return tg.from_torch(t.to(DEVICE, copy=True), requires_grad=requires_grad)


def make_params(shapes=SHAPES, dtype=torch.float32):
    values = [torch.randn(s).to(dtype) for s in shapes]
    ours = [on_device(v, requires_grad=True) for v in values]
    theirs = [v.clone().requires_grad_() for v in values]
    return ours, theirs


def set_grads(ours, theirs, skip=()):
    for i, (p, ref) in enumerate(zip(ours, theirs)):
        if i in skip:
            continue
        grad = torch.randn(ref.shape).to(ref.dtype)
        p.grad = on_device(grad)
        ref.grad = grad.clone()


def run(opt, topt, ours, theirs, steps=20, schedulers=(), skip=()):
    for _ in range(steps):
        set_grads(ours, theirs, skip)
        opt.step()
        topt.step()
        for ours_sched, torch_sched in schedulers:
            ours_sched.step()
            torch_sched.step()
        opt.zero_grad()
        topt.zero_grad()


def assert_params_match(ours, theirs, dtype=torch.float32):
    for i, (p, ref) in enumerate(zip(ours, theirs)):
        assert_close(p, ref.detach(), dtype=dtype, name=f"param {i}")


OPTIMIZERS = [
    (SGD, torch.optim.SGD, {"lr": 0.05}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.2,
                            "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                            "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    (Adam, torch.optim.Adam, {"lr": 0.01}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.3, "eps": 1e-6}),
]


@pytest.mark.parametrize("ours_cls,torch_cls,kwargs", OPTIMIZERS,
                         ids=[f"{o.__name__}-{k}" for o, _, k in OPTIMIZERS])
def test_matches_torch_after_20_steps(ours_cls, torch_cls, kwargs):
    ours, theirs = make_params()
    opt = ours_cls(ours, **kwargs)
    topt = torch_cls(theirs, foreach=False, **kwargs)
    run(opt, topt, ours, theirs)
    assert_params_match(ours, theirs)


@pytest.mark.parametrize("sched", ["step", "cosine"])
def test_schedulers_change_the_device_lr(sched):
    ours, theirs = make_params()
    opt = SGD(ours, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(theirs, lr=0.1, momentum=0.9, foreach=False)
    if sched == "step":
        pair = (StepLR(opt, step_size=3, gamma=0.5),
                torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5))
    else:
        pair = (CosineAnnealingLR(opt, T_max=7, eta_min=0.001),
                torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=7, eta_min=0.001))
    run(opt, topt, ours, theirs, schedulers=[pair])
    assert pair[0].get_last_lr() == pair[1].get_last_lr()
    assert float(opt.lr_tensor(0)[0]) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-7)
    assert_params_match(ours, theirs)


def test_lr_set_by_hand_reaches_the_kernel():
    ours, theirs = make_params()
    opt = Adam(ours, lr=0.01)
    topt = torch.optim.Adam(theirs, lr=0.01, foreach=False)
    run(opt, topt, ours, theirs, steps=2)
    opt.param_groups[0]["lr"] = topt.param_groups[0]["lr"] = 0.05
    run(opt, topt, ours, theirs, steps=2)
    assert_params_match(ours, theirs)


def test_one_launch_per_group_and_dtype():
    ours, _ = make_params()
    half = [on_device(torch.randn(6).half(), requires_grad=True)]
    extra = [on_device(torch.randn(3), requires_grad=True)]
    opt = AdamW([{"params": ours}, {"params": half + extra, "lr": 0.1}])
    for p in ours + half + opt.param_groups[1]["params"]:
        p.grad = on_device(torch.randn(p.shape).to(p.dtype))
    with recorded_launches() as launches:
        opt.step()
    assert len(launches) == 3  # group 0: fp32; group 1: fp16 and fp32


def test_param_without_grad_is_skipped():
    ours, theirs = make_params()
    opt = Adam(ours, lr=0.01)
    topt = torch.optim.Adam(theirs, lr=0.01, foreach=False)
    before = ours[2].torch().clone()
    run(opt, topt, ours, theirs, steps=5, skip={2})
    assert torch.equal(ours[2].torch(), before)
    assert ours[2] not in opt.state and ours[0] in opt.state
    assert_params_match(ours, theirs)


@pytest.mark.parametrize("cls,torch_cls,kwargs", [
    (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
])
def test_state_dict_round_trip(cls, torch_cls, kwargs):
    ours, theirs = make_params()
    opt = cls(ours, **kwargs)
    topt = torch_cls(theirs, foreach=False, **kwargs)
    run(opt, topt, ours, theirs, steps=4)
    saved = opt.state_dict()
    assert saved["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert set(saved["state"]) == {0, 1, 2, 3}
    # A fresh optimizer over the same params continues exactly like the old one would.
    fresh = cls(ours, lr=123.0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]
    for name, value in saved["state"][0].items():
        assert torch.equal(fresh.state[ours[0]][name], value)
        assert fresh.state[ours[0]][name] is not value  # copied, not aliased
    run(fresh, topt, ours, theirs, steps=4)
    assert_params_match(ours, theirs)


def test_load_torch_state_dict():
    ours, theirs = make_params()
    topt = torch.optim.Adam(theirs, lr=0.01, foreach=False)
    set_grads(ours, theirs)
    topt.step()
    for p, ref in zip(ours, theirs):
        p.torch().copy_(ref.detach())
    opt = Adam(ours, lr=0.01)
    opt.load_state_dict(topt.state_dict())  # torch's float 'step' fills every chunk slot
    run(opt, topt, ours, theirs, steps=3)
    assert_params_match(ours, theirs)


def test_zero_grad():
    ours, theirs = make_params()
    opt = SGD(ours, lr=0.1)
    set_grads(ours, theirs)
    opt.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad.torch(), torch.zeros(p.shape)) for p in ours)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)


def test_params_get_a_new_version():
    p = tg.zeros(4, requires_grad=True)
    p.grad = tg.ones(4)
    version = p._version
    SGD([p], lr=0.1).step()
    assert p._version > version


def test_errors():
    x = tg.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        SGD([x * 2.0], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([], lr=0.1)
    with pytest.raises(UnsupportedError, match="amsgrad"):
        Adam([x], amsgrad=True)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([x], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        AdamW([x], lr=-1.0)
    with pytest.raises(TypeError, match="iterable"):
        SGD(x, lr=0.1)


def test_bad_state_dict_or_grad_changes_nothing():
    ours, theirs = make_params()
    opt = Adam(ours, lr=0.01)
    set_grads(ours, theirs)
    opt.step()
    saved = opt.state_dict()
    bad = {"state": {**saved["state"], 0: {**saved["state"][0], "exp_avg": tg.zeros(7)}},
           "param_groups": saved["param_groups"]}
    kept = opt.state[ours[0]]["exp_avg"]
    with pytest.raises(tg.ShapeError, match="exp_avg"):
        opt.load_state_dict(bad)
    with pytest.raises(tg.TritongradError, match="param_groups"):
        opt.load_state_dict({"state": saved["state"]})
    assert opt.state[ours[0]]["exp_avg"] is kept
    fresh = Adam(ours, lr=0.01)
    ours[0].grad = tg.zeros(3)  # wrong shape: rejected before any state is created
    with pytest.raises(tg.ShapeError, match="shape"):
        fresh.step()
    assert len(fresh.state) == 0


@pytest.mark.parametrize("ours_cls,torch_cls,kwargs", [
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                            "weight_decay": 0.01}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1,
                              "eps": 0.1}),
], ids=["SGD", "Adam"])
def test_fp64_params_step_in_fp64(ours_cls, torch_cls, kwargs):
    # fp64 params: an fp64 device lr (a scheduler's new rate reaches it unrounded), fp64
    # state, and torch.optim's fp64 results; fp32 params of the same group read the rate
    # rounded to fp32, as from an fp32 one.
    ours, theirs = make_params(dtype=torch.float64)
    extra, extra_ref = make_params(shapes=[(4,)])
    opt = ours_cls([{"params": ours + extra}], **kwargs)
    topt = torch_cls([{"params": theirs + extra_ref}], foreach=False, **kwargs)
    assert opt.lr_tensor(0).dtype == torch.float64
    initial = [p.torch().clone() for p in ours]
    sched = (StepLR(opt, step_size=2, gamma=0.3),
             torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.3))
    run(opt, topt, ours + extra, theirs + extra_ref, steps=3, schedulers=[sched])
    assert float(opt.lr_tensor(0)[0]) == opt.param_groups[0]["lr"]  # exact, not rounded
    for p, ref, p0 in zip(ours, theirs, initial):
        assert p.dtype == torch.float64
        assert all(v.dtype == torch.float64 for k, v in opt.state[p].items() if k != "step")
        # updates (~lr in size) at the fp64 tolerance: fp32 arithmetic misses them by ~1e-6
        assert_close(p.torch() - p0, ref.detach() - p0, dtype=torch.float64, name="update")
    assert_params_match(extra, extra_ref)
