"""One MLP training step (2 hidden layers, fused linear_relu, fused cross-entropy,
clip_grad_norm_, Adam, zero_grad(set_to_none=True)) takes at most 16 kernel launches,
counted by the profiler. A count, not a time: it cannot be flaky.

The budget, launch by launch (15):
  forward   3  linear_relu, linear_relu, linear: one matmul each (bias, ReLU in the epilogue)
            3  cross-entropy: count the valid rows (n_valid), the row kernel (row losses
               and d loss / d logits, fp32 so already divided by n_valid), the reduction
  backward  1  backward()'s seed dloss/dloss = 1 (a fill, in a 'backward seed' row)
            0  cross-entropy: the gradient is backward()'s implicit seed of 1, so its
               backward hands on the forward's d loss / d logits buffer with no launch
            2  output linear: dW (db fused as its row sums), dX
            2  hidden linear_relu: dW (+db, ReLU mask as prologue), dX (mask prologue)
            1  input linear_relu: dW (+db); no dX, the input needs no gradient
               leaf gradients are stolen by the engine (no zero fill, no copy, no add)
  clip      2  partial norms, then finalize + scale
  Adam      1  one multi-tensor launch for all six parameters
"""

import pytest
import torch

import tritongrad as tg
from tritongrad import profiler
from tritongrad.nn import Linear, ReLU, Sequential
from tritongrad.nn.functional import cross_entropy
from tritongrad.nn_utils_clip import clip_grad_norm_
from tritongrad.optim import Adam

BUDGET = 16


def make_step(batch=4, sizes=(12, 16, 16, 5)):
    torch.manual_seed(0)
    model = Sequential(Linear(sizes[0], sizes[1]), ReLU(), Linear(sizes[1], sizes[2]), ReLU(),
                       Linear(sizes[2], sizes[3]))
    opt = Adam(model.parameters(), lr=1e-3)
    x = tg.randn(batch, sizes[0])
    y = tg.tensor(torch.randint(0, sizes[3], (batch,)))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    return model, step


def test_mlp_training_step_launch_count():
    model, step = make_step()
    step()  # the first step creates Adam's state (zeros: allocations, not launches)
    with profiler.profile() as prof:
        step()
    by_phase = {phase: prof.count(phase=phase) for phase in ("forward", "backward")}
    detail = "\n" + prof.table(sort_by="name")
    assert prof.launches <= BUDGET, detail
    # the intended budget, piece by piece, so a regression names its op
    assert prof.count(op="LinearReLU", phase="forward") == 2, detail
    assert prof.count(op="Linear", phase="forward") == 1, detail
    # count valid rows, rows (loss and d loss / d logits), reduce; backward of the loss
    # itself (the implicit one) hands the forward's gradient buffer on with no launch
    assert prof.count(op="CrossEntropy", phase="forward") == 3, detail
    assert prof.count(op="CrossEntropy", phase="backward") == 0, detail
    assert prof.count(op="Linear", phase="backward") == 2, detail
    assert prof.count(op="LinearReLU", phase="backward") == 3, detail
    assert prof.count(kernel="multi_norm_partials_kernel") == 1, detail
    assert prof.count(kernel="multi_norm_finalize_kernel") == 1, detail
    assert prof.count(kernel="adam_kernel") == 1, detail
    assert prof.count(op="backward seed", phase="backward", kernel="fill_kernel") == 1, detail
    # nothing else: outside the forward and backward only clip and Adam
    outside = [e.kernel for e in prof.events if e.phase not in ("forward", "backward")]
    assert sorted(outside) == sorted(["multi_norm_partials_kernel",
                                      "multi_norm_finalize_kernel", "adam_kernel"]), (
        outside, by_phase)


def test_launch_count_does_not_depend_on_the_step_number():
    _, step = make_step()
    counts = []
    for _ in range(3):
        with profiler.profile() as prof:
            step()
        counts.append(prof.launches)
    assert counts[0] == counts[1] == counts[2] <= BUDGET


@pytest.mark.parametrize("batch", [1, 7])
def test_launch_count_does_not_depend_on_the_batch(batch):
    _, step = make_step(batch=batch)
    with profiler.profile() as prof:
        step()
    assert prof.launches <= BUDGET, prof.table()


def test_leaf_gradients_are_written_directly():
    """With set_to_none the engine must hand each parameter its fresh gradient: no zero
    fill and no accumulate launch (and the gradient is the one torch computes)."""
    model, step = make_step()
    with profiler.profile() as prof:
        step()
    assert prof.count(kernel="binary_kernel") == 0
    assert prof.count(kernel="copy_kernel") == 0
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape
