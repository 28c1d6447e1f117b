"""A whole MLP training step: MLP 784-256-256-10 at batch 128 and 1024, cross-entropy +
clip_grad_norm_(1.0) + Adam, zero_grad(set_to_none=True).

Steps/s and kernel launches per step for tritongrad eager, tritongrad ``compile_step``
(one CUDA-graph replay per step), torch eager and ``torch.compile`` (where it works): each
case has a "steps/s" row and a "launches" row (lower is better). Steps are timed back to
back with one sync at the end, so host overhead counts, as it does in a training loop.
Targets at batch 128: eager >= 1.0x torch eager, compile_step >= 3x.

Smoke mode runs one tiny case of each, torch.compile included (about 5-20 s of compiling
on a CPU), so CI runs this code; those figures are interpreter and CPU timings, not
performance.
"""

from __future__ import annotations

import time
import warnings

import torch

import tritongrad as tg
from tritongrad.graphs import compile_step
from tritongrad.nn import Linear, ReLU, Sequential
from tritongrad.nn.functional import cross_entropy
from tritongrad.nn_utils_clip import clip_grad_norm_
from tritongrad.optim import Adam

from .common import Harness

ITERS = 100


def _models(sizes: tuple, device):
    ours = Sequential(Linear(sizes[0], sizes[1]), ReLU(), Linear(sizes[1], sizes[2]), ReLU(),
                      Linear(sizes[2], sizes[3]))
    theirs = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1]), torch.nn.ReLU(),
                                 torch.nn.Linear(sizes[1], sizes[2]), torch.nn.ReLU(),
                                 torch.nn.Linear(sizes[2], sizes[3])).to(device)
    with torch.no_grad():  # the same initial weights
        for p_torch, p_ours in zip(theirs.parameters(), ours.parameters()):
            p_torch.copy_(p_ours.torch())
    return ours, theirs


def _tg_step(model, opt):
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    return step


def _torch_step(model, opt):
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    return step


def case(h: Harness, sizes: tuple, batch: int) -> None:
    label = f"MLP {'-'.join(map(str, sizes))} b={batch}"
    x = torch.randn(batch, sizes[0], device=h.device)
    y = torch.randint(0, sizes[-1], (batch,), device=h.device)
    tx, ty = tg.from_torch(x), tg.from_torch(y)
    iters = ITERS

    ours_model, torch_model = _models(sizes, h.device)
    ours = _tg_step(ours_model, Adam(ours_model.parameters(), lr=1e-3))
    theirs = _torch_step(torch_model, torch.optim.Adam(torch_model.parameters(), lr=1e-3))
    first_loss = (float(ours(tx, ty).item()), float(theirs(x, y).item()))

    ms_ours = h.loop_ms(lambda: ours(tx, ty), iters)
    ms_torch = h.loop_ms(lambda: theirs(x, y), iters)
    launches_ours = h.tg_launches(lambda: ours(tx, ty))
    launches_torch = h.torch_launches(lambda: theirs(x, y))
    h.add("train_step", f"{label} eager", "steps/s", 1e3 / ms_ours, 1e3 / ms_torch,
          higher_is_better=True, target=1.0 if batch == 128 else None,
          ms_tritongrad=ms_ours, ms_torch=ms_torch, launches_tritongrad=launches_ours,
          launches_torch=launches_torch, first_loss=first_loss)
    h.add("train_step", f"{label} eager", "launches", launches_ours, launches_torch,
          higher_is_better=False)

    # compile_step: a fresh model, so the graph captures its own optimizer state
    graph_model = _models(sizes, h.device)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's "graphs need a GPU" notice
        graphed = compile_step(_tg_step(graph_model, Adam(graph_model.parameters(), lr=1e-3)))
        t0 = time.perf_counter()
        graphed(tx, ty)  # warm-up (eager)
        graphed(tx, ty)  # capture + replay
        h.sync()
        capture_s = time.perf_counter() - t0
        ms_graph = h.loop_ms(lambda: graphed(tx, ty), iters)
        launches_graph = h.tg_launches(lambda: graphed(tx, ty))
    note = ("one graph replay per step plus the input copies; "
            f"{graphed.kernels} kernels in the graph" if graphed.captured
            else "no GPU: compile_step ran the plain function")
    h.add("train_step", f"{label} compile_step", "steps/s", 1e3 / ms_graph, 1e3 / ms_torch,
          higher_is_better=True, target=3.0 if batch == 128 and graphed.captured else None,
          ms_tritongrad=ms_graph, ms_torch=ms_torch, host_launches_tritongrad=launches_graph,
          kernels_in_graph=graphed.kernels, capture_s=capture_s, note=note)
    # Launches from the host: with a captured graph only the input copies (the replay's
    # kernels are in kernels_in_graph); without a GPU, those of the plain function.
    h.add("train_step", f"{label} compile_step", "launches", launches_graph, launches_torch,
          higher_is_better=False, kernels_in_graph=graphed.kernels,
          note=("host launches per step: the input copies, plus one graph replay of "
                f"{graphed.kernels} kernels" if graphed.captured
                else "no GPU: compile_step ran the plain function"))


def run(h: Harness) -> None:
    if h.smoke:
        case(h, (32, 16, 16, 10), 8)
        return
    for batch in (128,) if h.targets_only else (128, 1024):
        if h.out_of_time():
            h.skip(f"train_step b={batch}")
            continue
        case(h, (784, 256, 256, 10), batch)


def run_torch_compile(h: Harness) -> None:
    """Last in the suite: compiling takes tens of seconds per shape."""
    if h.smoke:
        # One tiny case, so CI runs this code: torch.compile of a CPU step measures torch's
        # CPU code generation against the interpreter, not performance.
        torch_compile_case(h, (32, 16, 16, 10), 8)
        return
    for batch in (128, 1024):
        if h.out_of_time():
            h.skip(f"torch.compile b={batch}")
            continue
        torch_compile_case(h, (784, 256, 256, 10), batch)


def torch_compile_case(h: Harness, sizes: tuple, batch: int) -> None:
    """torch.compile against torch eager and our compile_step, on fresh models."""
    label = f"MLP {'-'.join(map(str, sizes))} b={batch}"
    case_name = f"{label} compile_step vs torch.compile"
    smoke_note = ""
    if h.smoke:
        smoke_note = ("smoke: tiny sizes, launch-bound; not representative performance"
                      if h.cuda else "smoke: torch.compile on the CPU against the Triton "
                      "interpreter, to run the code; NOT performance")
    x = torch.randn(batch, sizes[0], device=h.device)
    y = torch.randint(0, sizes[-1], (batch,), device=h.device)
    tx, ty = tg.from_torch(x), tg.from_torch(y)
    graph_model = _models(sizes, h.device)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's "graphs need a GPU" notice
        graphed = compile_step(_tg_step(graph_model, Adam(graph_model.parameters(), lr=1e-3)))
        ms_graph = h.loop_ms(lambda: graphed(tx, ty), ITERS)
        launches_graph = h.tg_launches(lambda: graphed(tx, ty))
    try:
        compiled_model = _models(sizes, h.device)[1]
        compiled = torch.compile(_torch_step(compiled_model, torch.optim.Adam(
            compiled_model.parameters(), lr=1e-3)))
        t0 = time.perf_counter()
        compiled(x, y)
        compiled(x, y)
        h.sync()
        compile_s = time.perf_counter() - t0
        ms_compiled = h.loop_ms(lambda: compiled(x, y), ITERS)
        launches_compiled = h.torch_launches(lambda: compiled(x, y))
    except Exception as error:  # torch.compile is optional: record why it did not run
        h.add("train_step", case_name, "steps/s", 1e3 / ms_graph, None, higher_is_better=True,
              note=f"torch.compile failed: {type(error).__name__}: {str(error)[:300]}"
              + (f"; {smoke_note}" if smoke_note else ""))
        return
    h.add("train_step", case_name, "steps/s", 1e3 / ms_graph, 1e3 / ms_compiled,
          higher_is_better=True, ms_tritongrad_graph=ms_graph, ms_torch_compile=ms_compiled,
          compile_s=compile_s, launches_torch_compile=launches_compiled, note=smoke_note)
    h.add("train_step", case_name, "launches", launches_graph, launches_compiled,
          higher_is_better=False, kernels_in_graph=graphed.kernels, note=smoke_note)
    if smoke_note:
        print(f"  ({smoke_note})", flush=True)
