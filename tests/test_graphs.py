"""compile_step: whole-step CUDA graphs.

On CPU: the step runs as a plain function and warns once; the static-input binding is
checked directly; and a recorded step's launches, replayed with their arguments frozen as
a graph freezes them, match eager steps across an lr change and with dropout. On a GPU: 20 replayed training steps, across a learning-rate change,
match 20 eager steps (Adam's step count and the lr live in device memory), the RNG offset
advances across replays, and a replay is one graph launch plus the input copies."""

import warnings

import pytest
import torch

import tritongrad as tg
import tritongrad.graphs as graphs
from tritongrad import profiler
from tritongrad.graphs import CompiledStep, compile_step
from tritongrad.kernels._checks import ShapeError
from tritongrad.testing import assert_close

CUDA = tg.device().type == "cuda"
gpu = pytest.mark.skipif(not CUDA, reason="CUDA graphs need a GPU")


# ----------------------------------------------------------------------------- CPU


@pytest.mark.skipif(CUDA, reason="the interpreter path")
def test_interpreter_runs_the_plain_function_and_warns_once(monkeypatch):
    monkeypatch.setattr(graphs, "_warned_no_gpu", False)
    seen = []

    def step(x, scale=1.0):
        seen.append(x)
        return x * scale

    compiled = compile_step(step)
    x = tg.randn(3)
    with pytest.warns(RuntimeWarning, match="need a GPU"):
        out = compiled(x, scale=2.0)
    assert_close(out.torch(), x.torch() * 2.0, dtype=torch.float32)
    assert seen[0] is x  # the caller's tensor itself: no static copy on the CPU path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        compiled(x)
        compile_step(step)(x)
    assert compiled.calls == 2 and not compiled.captured
    assert not graphs.graphs_available() and not graphs.is_capturing()


def test_decorator_form_and_arguments():
    @compile_step(warmup=2, name="train")
    def step(x):
        return x

    assert isinstance(step, CompiledStep) and step.warmup == 2 and step.name == "train"
    with pytest.raises(ValueError, match="warmup"):
        compile_step(lambda x: x, warmup=0)
    with pytest.raises(TypeError):
        compile_step(3)


def test_static_inputs_are_copies_with_fixed_shapes():
    step = CompiledStep(lambda x, y, n=1: None)
    x, y = tg.randn(4, 3), tg.tensor([1, 0, 2, 1])
    args, kwargs = step._bind((x, y), {"n": 5})
    static_x, static_y = args
    assert kwargs["n"] == 5
    assert static_x.torch().data_ptr() != x.torch().data_ptr()
    assert torch.equal(static_x.torch(), x.torch()) and torch.equal(static_y.torch(), y.torch())
    x2 = tg.randn(4, 3)
    args2, _ = step._bind((x2, y), {"n": 5})
    assert args2[0] is static_x and torch.equal(static_x.torch(), x2.torch())
    # writing into the static buffer directly skips the copy
    with profiler.profile() as prof:
        step._bind((static_x, static_y), {"n": 5})
    assert prof.launches == 0
    with pytest.raises(ShapeError, match="argument 0"):
        step._bind((tg.randn(5, 3), y), {"n": 5})
    with pytest.raises(ShapeError, match="argument 2"):
        step._bind((x, y), {"n": 6})
    with pytest.raises(ValueError, match="requires grad"):
        CompiledStep(lambda x: x)._bind((tg.randn(2, requires_grad=True),), {})


class LaunchTape:
    """A CUDA graph's contract, emulated on any backend: record every kernel launch of one
    step (kernel, grid, arguments), then replay them with the very same arguments (the
    same buffers, the same scalars) and no Python in between. Anything that changes
    between steps but reached a kernel as a scalar argument, instead of through device
    memory, replays stale, and the run drifts from eager steps."""

    def __init__(self, monkeypatch):
        import importlib
        import pkgutil

        import tritongrad.kernels as kernel_pkg
        from tritongrad.kernels import _launch

        self.tape = None
        original = _launch.launch

        def recording_launch(kernel, grid, *args, **kwargs):
            if self.tape is not None:
                meta = {k: v for k, v in kwargs.items() if k not in ("flops", "bytes_moved")}
                self.tape.append((kernel, grid, args, meta))
            return original(kernel, grid, *args, **kwargs)

        for info in pkgutil.iter_modules(kernel_pkg.__path__):
            module = importlib.import_module(f"tritongrad.kernels.{info.name}")
            if getattr(module, "launch", None) is original:
                monkeypatch.setattr(module, "launch", recording_launch)

    def record(self, fn, *args):
        self.tape = []
        try:
            return fn(*args)
        finally:
            self.tape, self.recorded = None, self.tape

    def replay(self) -> None:
        for kernel, grid, args, meta in self.recorded:
            kernel[grid](*args, **meta)


def test_replaying_a_recorded_step_matches_eager_steps_across_an_lr_change(monkeypatch):
    # What compile_step relies on, checked without a GPU: Adam's step count, the learning
    # rate (a scheduler changes it after step 4) and dropout's RNG offset live in device
    # memory, and a step's first gradients are written, not accumulated into zeros.
    from tritongrad.nn import Dropout

    torch.manual_seed(0)
    batches = [(tg.randn(16, 20), tg.tensor(torch.randint(0, 5, (16,)))) for _ in range(8)]
    eager_model, eager_step, eager_sched = _mlp_and_step(seed=1, step_size=4, dropout=0.25)
    tape_model, tape_step, tape_sched = _mlp_and_step(seed=1, step_size=4, dropout=0.25)
    assert any(isinstance(m, Dropout) for m in tape_model.modules())
    tape = LaunchTape(monkeypatch)
    static_x, static_y = tg.zeros(16, 20), tg.zeros(16, dtype=torch.int64)
    eager_losses, tape_losses = [], []
    # One global generator serves both runs: each keeps its own [seed, offset], swapped in
    # place (the tape's kernels hold the generator's buffer, as a graph would).
    eager_rng = tape_rng = tg.get_rng_state()
    for i, (x, y) in enumerate(batches):
        tg.set_rng_state(eager_rng)
        eager_losses.append(eager_step(x, y).torch().clone())
        eager_rng = tg.get_rng_state()
        tg.set_rng_state(tape_rng)
        static_x.copy_(x)  # a graph's static inputs, written outside the step
        static_y.copy_(y)
        if i == 0:
            loss = tape_step(static_x, static_y)  # warm-up: creates Adam's state
        elif i == 1:
            loss = tape.record(tape_step, static_x, static_y)
        else:
            tape.replay()
        tape_losses.append(loss.torch().clone())
        tape_rng = tg.get_rng_state()
        eager_sched.step()
        tape_sched.step()
    assert len(tape.recorded) >= 10
    assert not torch.equal(tape_losses[2], tape_losses[3])  # replays did work
    assert int(tape_rng[1]) > 0 and torch.equal(tape_rng, eager_rng)  # dropout drew alike
    for i, (ours, ref) in enumerate(zip(tape_losses, eager_losses)):
        assert torch.equal(ours, ref), f"step {i}: replayed loss {ours} != eager {ref}"
    for p_tape, p_eager in zip(tape_model.parameters(), eager_model.parameters()):
        assert torch.equal(p_tape.torch(), p_eager.torch())


# ----------------------------------------------------------------------------- GPU


def _mlp_and_step(seed: int, lr: float = 1e-2, step_size: int = 10, dropout: float = 0.0):
    from tritongrad.nn import Dropout, Linear, ReLU, Sequential
    from tritongrad.nn.functional import cross_entropy
    from tritongrad.nn_utils_clip import clip_grad_norm_
    from tritongrad.optim import Adam
    from tritongrad.optim import StepLR

    tg.manual_seed(seed)
    layers = [Linear(20, 32), ReLU(), Linear(32, 32), ReLU()]
    layers += [Dropout(dropout)] if dropout else []
    model = Sequential(*layers, Linear(32, 5))
    opt = Adam(model.parameters(), lr=lr)
    sched = StepLR(opt, step_size=step_size, gamma=0.1)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return loss

    return model, step, sched


@gpu
def test_twenty_replayed_steps_across_an_lr_change_match_eager():
    torch.manual_seed(0)
    batches = [(tg.randn(16, 20), tg.tensor(torch.randint(0, 5, (16,)))) for _ in range(20)]
    eager_model, eager_step, eager_sched = _mlp_and_step(seed=1)
    graph_model, graph_step, graph_sched = _mlp_and_step(seed=1)
    compiled = compile_step(graph_step)
    eager_losses, graph_losses = [], []
    for x, y in batches:
        eager_losses.append(eager_step(x, y).torch().clone())
        graph_losses.append(compiled(x, y).torch().clone())
        eager_sched.step()  # lr 1e-2 -> 1e-3 after step 10, written to device memory
        graph_sched.step()
    assert compiled.captured and compiled.calls == 20
    assert compiled.kernels <= 16  # the whole step: forward, backward, clip and Adam
    for ours, ref in zip(graph_losses, eager_losses):
        assert_close(ours, ref, dtype=torch.float32)
    for p_graph, p_eager in zip(graph_model.parameters(), eager_model.parameters()):
        assert_close(p_graph.torch(), p_eager.torch(), dtype=torch.float32)
    # a replay is one graph launch: the profiler sees only the two input copies
    with profiler.profile() as prof:
        compiled(*batches[0])
    assert prof.graph_replays == 1 and prof.graph_kernels == compiled.kernels
    assert prof.launches == 2


@gpu
def test_rng_offset_advances_across_replays():
    from tritongrad.nn.functional import dropout

    ones = tg.ones(256)

    def draw(x):
        return dropout(x, 0.5)

    tg.manual_seed(3)
    eager = [draw(ones).torch().clone() for _ in range(4)]
    tg.manual_seed(3)
    compiled = compile_step(draw)
    replayed = [compiled(ones).torch().clone() for _ in range(4)]
    assert compiled.captured
    assert not torch.equal(replayed[2], replayed[3])  # fresh numbers on every replay
    for ours, ref in zip(replayed, eager):
        assert torch.equal(ours, ref)


@gpu
def test_shape_change_needs_reset():
    compiled = compile_step(lambda x: x * 2.0)
    compiled(tg.randn(4))
    compiled(tg.randn(4))
    with pytest.raises(ShapeError):
        compiled(tg.randn(5))
    compiled.reset()
    out = compiled(tg.ones(5))
    assert_close(out.torch(), torch.full((5,), 2.0, device=out.device), dtype=torch.float32)
