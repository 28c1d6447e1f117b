"""tg.optim.lr_scheduler against torch.optim.lr_scheduler: every rate of 30 steps equal
(==, not close), the rates reaching the device lr tensor and the optimizer kernels,
state dicts (ours <-> torch's), SequentialLR, ReduceLROnPlateau and OneCycleLR's momentum."""

import math
import warnings

import pytest
import torch

import tritongrad as tg
from tritongrad.kernels._checks import UnsupportedError
from tritongrad.optim import SGD, Adam, lr_scheduler
from tests.test_optim import assert_params_match, make_params, set_grads

TS = torch.optim.lr_scheduler
STEPS = 30


def two_group_pair(opt_name="sgd"):
    """(ours, torch's) optimizers over two param groups with different rates; the params
    are tiny: these tests are about the schedule, not the update."""
    ours, theirs = make_params(shapes=[(3,), (2,)])
    if opt_name == "sgd":
        opt = SGD([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.3}], lr=0.1, momentum=0.9)
        topt = torch.optim.SGD([{"params": theirs[:1]}, {"params": theirs[1:], "lr": 0.3}],
                               lr=0.1, momentum=0.9, foreach=False)
    else:
        opt = Adam([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.03}], lr=0.01)
        topt = torch.optim.Adam([{"params": theirs[:1]}, {"params": theirs[1:], "lr": 0.03}],
                                lr=0.01, foreach=False)
    return opt, topt


def device_lrs(opt):
    return [float(opt.lr_tensor(i)[0]) for i in range(len(opt.param_groups))]


def fp32(values):
    return [float(torch.tensor(v, dtype=torch.float32)) for v in values]


def assert_same_state(sched, tsched, opt, topt):
    assert sched.get_last_lr() == tsched.get_last_lr()
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
    # what the kernels read: the fp32 rounding of the very same rate
    assert device_lrs(opt) == fp32(g["lr"] for g in topt.param_groups)
    for key in ("momentum", "betas"):
        if key in topt.param_groups[0]:
            assert [g[key] for g in opt.param_groups] == [g[key] for g in topt.param_groups]


def lr_lambda(epoch):
    return 0.95 ** epoch


class Warmup:
    """A callable object: its __dict__ travels in the state dict (torch's rule)."""

    def __init__(self, length):
        self.length = length

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.length)


SCHEDULERS = {
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "exponential-up": lambda m, o: m.ExponentialLR(o, gamma=1.07),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3),
    "multistep-unsorted": lambda m, o: m.MultiStepLR(o, milestones=[12, 2], gamma=0.5),
    "lambda": lambda m, o: m.LambdaLR(o, lr_lambda=lr_lambda),
    "lambda-per-group": lambda m, o: m.LambdaLR(o, lr_lambda=[lr_lambda, Warmup(7)]),
    "multiplicative": lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.97),
    "multiplicative-epoch": lambda m, o: m.MultiplicativeLR(o, lambda e: 1.0 - 0.01 * (e % 4)),
    "linear": lambda m, o: m.LinearLR(o),
    "linear-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05,
                                            total_iters=17),
    "linear-warmup": lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=9),
    "constant": lambda m, o: m.ConstantLR(o),
    "constant-long": lambda m, o: m.ConstantLR(o, factor=0.7, total_iters=13),
    "step": lambda m, o: m.StepLR(o, step_size=4, gamma=0.7),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "onecycle": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS + 1),
    "onecycle-linear-3phase": lambda m, o: m.OneCycleLR(
        o, max_lr=[0.5, 2.0], epochs=4, steps_per_epoch=8, anneal_strategy="linear",
        three_phase=True, pct_start=0.25),
    "onecycle-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, total_steps=40, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0),
    "sequential": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=5),
            m.CosineAnnealingLR(o, T_max=11, eta_min=0.002)], milestones=[5]),
    "sequential-3": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=2), m.ExponentialLR(o, gamma=0.8),
            m.StepLR(o, step_size=3, gamma=0.5)], milestones=[3, 10]),
}


def build(name, opt_name="sgd"):
    opt, topt = two_group_pair(opt_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "scheduler before optimizer" warnings
        return opt, topt, SCHEDULERS[name](lr_scheduler, opt), SCHEDULERS[name](TS, topt)


def step_both(sched, tsched):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step()
        tsched.step()


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_rates_equal_torch_for_30_steps(name):
    opt, topt, sched, tsched = build(name)
    assert_same_state(sched, tsched, opt, topt)
    for _ in range(STEPS):
        step_both(sched, tsched)
        assert_same_state(sched, tsched, opt, topt)


@pytest.mark.parametrize("name", ["onecycle", "onecycle-linear-3phase", "multiplicative"])
def test_rates_and_betas_equal_torch_with_adam(name):
    opt, topt, sched, tsched = build(name, "adam")
    for _ in range(STEPS):
        step_both(sched, tsched)
        assert_same_state(sched, tsched, opt, topt)


@pytest.mark.parametrize("name", ["linear-warmup", "onecycle", "sequential", "lambda-per-group"])
def test_state_dict_round_trips_and_matches_torch(name):
    opt, topt, sched, tsched = build(name)
    for _ in range(6):
        step_both(sched, tsched)
    state, tstate = sched.state_dict(), tsched.state_dict()
    assert set(state) == set(tstate)
    # fresh schedulers resume from the saved states: ours from ours, ours from torch's
    opt2, _, resumed, _ = build(name)
    opt2.load_state_dict(opt.state_dict())
    resumed.load_state_dict(state)
    opt3, _, from_torch, _ = build(name)
    opt3.load_state_dict(topt.state_dict())
    from_torch.load_state_dict(tstate)
    for _ in range(8):
        step_both(sched, tsched)
        resumed.step()
        from_torch.step()
        assert resumed.get_last_lr() == from_torch.get_last_lr() == tsched.get_last_lr()
        assert_same_state(from_torch, tsched, opt3, topt)


def test_multistep_state_survives_a_checkpoint(tmp_path):
    opt, _, sched, tsched = build("multistep")
    for _ in range(4):
        step_both(sched, tsched)
    tg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt")
    checkpoint = tg.load(tmp_path / "ckpt")
    opt2 = two_group_pair()[0]
    resumed = lr_scheduler.MultiStepLR(opt2, milestones=[1], gamma=0.3)
    opt2.load_state_dict(checkpoint["opt"])
    resumed.load_state_dict(checkpoint["sched"])
    for _ in range(20):
        step_both(sched, tsched)
        resumed.step()
        assert resumed.get_last_lr() == tsched.get_last_lr()
    with pytest.warns(UserWarning, match="epoch parameter"):
        resumed.step(9)  # the closed form needs the Counter back
    with pytest.warns(UserWarning):
        tsched.step(9)
    assert resumed.get_last_lr() == tsched.get_last_lr()


@pytest.mark.parametrize("name", ["exponential", "multistep", "linear-decay", "constant-long",
                                  "step", "cosine", "lambda"])
def test_step_with_epoch_uses_torch_closed_form(name):
    opt, topt, sched, tsched = build(name)
    for epoch in (3, 11, 5, 20, 0):
        with pytest.warns(UserWarning, match="epoch parameter"):
            sched.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tsched.step(epoch)
        assert_same_state(sched, tsched, opt, topt)


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.1, cooldown=2),
    dict(mode="min", threshold_mode="abs", threshold=0.05, patience=1, min_lr=[0.01, 0.05]),
    dict(mode="max", threshold_mode="abs", patience=0, factor=0.3, min_lr=0.02, eps=1e-3),
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_on_plateau_equals_torch(kwargs):
    opt, topt = two_group_pair()
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    tsched = TS.ReduceLROnPlateau(topt, **kwargs)
    gen = torch.Generator().manual_seed(1)
    metrics = (1.0 + 0.1 * torch.randn(STEPS, generator=gen)).tolist()
    metrics[5:12] = [0.5] * 7  # a plateau, then noise
    for i, metric in enumerate(metrics):
        # the metric as a float, a 0-d tg Tensor (read with .item()) and a torch scalar
        ours = [metric, tg.tensor(metric), torch.tensor(metric)][i % 3]
        sched.step(ours)
        tsched.step(metric)
        assert_same_state(sched, tsched, opt, topt)
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == \
            (tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter)
    assert opt.param_groups[0]["lr"] < 0.1  # it did reduce
    state = sched.state_dict()
    assert set(state) == set(tsched.state_dict())
    resumed = lr_scheduler.ReduceLROnPlateau(two_group_pair()[0])
    resumed.load_state_dict(tsched.state_dict())
    assert (resumed.mode, resumed.best, resumed.mode_worse) == \
        (tsched.mode, tsched.best, tsched.mode_worse)


def run_training(opt, topt, ours, theirs, sched, tsched, steps, metric=None):
    """Optimizer steps from identical grads, the schedulers stepped between them."""
    for i in range(steps):
        set_grads(ours, theirs)
        opt.step()
        topt.step()
        if metric is None:
            step_both(sched, tsched)
        else:
            sched.step(metric(i))
            tsched.step(metric(i))
        opt.zero_grad()
        topt.zero_grad()


@pytest.mark.parametrize("opt_name,kwargs", [
    ("sgd", dict(momentum=0.9)),
    ("sgd", dict(momentum=0.9, nesterov=True)),
    ("adam", dict(betas=(0.9, 0.99))),
], ids=["sgd-momentum", "sgd-nesterov", "adam"])
def test_onecycle_rates_and_momentum_reach_the_kernels(opt_name, kwargs):
    ours, theirs = make_params()
    cls, tcls = (SGD, torch.optim.SGD) if opt_name == "sgd" else (Adam, torch.optim.Adam)
    opt, topt = cls(ours, lr=0.1, **kwargs), tcls(theirs, lr=0.1, foreach=False, **kwargs)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12, pct_start=0.4)
    tsched = TS.OneCycleLR(topt, max_lr=0.05, total_steps=12, pct_start=0.4)
    run_training(opt, topt, ours, theirs, sched, tsched, steps=11)
    assert_same_state(sched, tsched, opt, topt)
    assert_params_match(ours, theirs)


def test_plateau_and_sequential_rates_reach_the_kernels():
    ours, theirs = make_params()
    opt, topt = Adam(ours, lr=0.02), torch.optim.Adam(theirs, lr=0.02, foreach=False)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    tsched = TS.ReduceLROnPlateau(topt, patience=1, factor=0.5)
    run_training(opt, topt, ours, theirs, sched, tsched, steps=8, metric=lambda i: 1.0)
    assert opt.param_groups[0]["lr"] == 0.02 * 0.5 ** 3
    assert_params_match(ours, theirs)
    opt, topt = SGD(ours, lr=0.1, momentum=0.5), torch.optim.SGD(theirs, lr=0.1, momentum=0.5,
                                                                  foreach=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pair = [m.SequentialLR(o, [m.LinearLR(o, start_factor=0.25, total_iters=3),
                                   m.ExponentialLR(o, gamma=0.7)], milestones=[3])
                for m, o in ((lr_scheduler, opt), (TS, topt))]
    run_training(opt, topt, ours, theirs, *pair, steps=7)
    assert_params_match(ours, theirs)


def test_onecycle_refuses_to_cycle_momentum_of_a_captured_step():
    # Under a GPU, tg.compile_step's capture sets this flag in Optimizer.step: momentum and
    # betas are launch arguments that a graph freezes, while the lr lives on the device.
    opt, _ = two_group_pair()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    opt._captured_in_graph = True
    with pytest.raises(UnsupportedError, match="cycle_momentum=False"):
        sched.step()
    with pytest.raises(UnsupportedError, match="CUDA graph"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs_only = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)
    lrs_only.step()
    assert device_lrs(opt) == fp32(lrs_only.get_last_lr())


def test_errors_as_torch():
    opt, topt = two_group_pair()
    bad = [
        lambda m, o: m.LinearLR(o, start_factor=0.0),
        lambda m, o: m.LinearLR(o, end_factor=1.5),
        lambda m, o: m.ConstantLR(o, factor=2.0),
        lambda m, o: m.LambdaLR(o, lr_lambda=[lr_lambda]),
        lambda m, o: m.OneCycleLR(o, max_lr=1.0),
        lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=0),
        lambda m, o: m.OneCycleLR(o, max_lr=[1.0], total_steps=5),
        lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1),
        lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=5, anneal_strategy="exp"),
        lambda m, o: m.ReduceLROnPlateau(o, factor=1.0),
        lambda m, o: m.ReduceLROnPlateau(o, mode="up"),
        lambda m, o: m.ReduceLROnPlateau(o, threshold_mode="pct"),
        lambda m, o: m.ReduceLROnPlateau(o, min_lr=[0.1]),
        lambda m, o: m.SequentialLR(o, [m.ExponentialLR(o, 0.9)], milestones=[2]),
        lambda m, o: m.SequentialLR(o, [m.ReduceLROnPlateau(o), m.ExponentialLR(o, 0.9)],
                                    milestones=[2]),
    ]
    for make in bad:
        with pytest.raises(ValueError) as ours_error:
            make(lr_scheduler, opt)
        with pytest.raises(ValueError) as torch_error:
            make(TS, topt)
        assert str(ours_error.value).split()[:3] == str(torch_error.value).split()[:3]
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.ExponentialLR(topt, gamma=0.9)
    with pytest.raises(TypeError, match="lr_lambda should be a function"):
        lr_scheduler.MultiplicativeLR(opt, lr_lambda=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        lr_scheduler.ExponentialLR(opt, gamma=0.5).get_lr()
    assert math.isfinite(opt.param_groups[0]["lr"])
