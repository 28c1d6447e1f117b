"""Cross-entropy and linear + cross-entropy, forward + backward: time and peak memory
against torch (F.cross_entropy on materialised logits).

Core-ops targets at N=8192, C=32768 bf16: cross-entropy fwd+bwd >= 1.5x torch's speed
(one read of the logits, the gradient written in the forward); linear + cross-entropy
>= 1.5x less peak memory (the (N, C) logits are never held whole)."""

from __future__ import annotations

import torch
import torch.nn.functional as torch_F

import tritongrad as tg
from tritongrad.ops.loss import cross_entropy, linear_cross_entropy

from .common import Harness

MIB = 2**20


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def cross_entropy_case(h: Harness, N: int, C: int, dtype: torch.dtype,
                       target: float | None) -> None:
    logits = torch.randn(N, C, device=h.device).to(dtype)
    labels = torch.randint(0, C, (N,), device=h.device)
    ours_logits = tg.from_torch(logits.clone()).requires_grad_()
    ours_labels = tg.from_torch(labels)
    torch_logits = logits.clone().requires_grad_()

    def ours():
        ours_logits.grad = None
        cross_entropy(ours_logits, ours_labels).backward()

    def theirs():
        torch_logits.grad = None
        torch_F.cross_entropy(torch_logits, labels).backward()

    def no_grads():
        ours_logits.grad = torch_logits.grad = None

    case = f"fwd+bwd N={N} C={C} {_name(dtype)}"
    ms_ours, ms_torch = h.time_ms(ours), h.time_ms(theirs)
    mem_ours, mem_torch = h.peak_memory(ours, no_grads), h.peak_memory(theirs, no_grads)
    h.add("cross_entropy", case, "ms", ms_ours, ms_torch, higher_is_better=False, target=target,
          launches_tritongrad=h.tg_launches(ours), launches_torch=h.torch_launches(theirs),
          peak_bytes_tritongrad=mem_ours, peak_bytes_torch=mem_torch)
    if mem_ours is not None:
        h.add("cross_entropy", case, "peak MiB", mem_ours / MIB, mem_torch / MIB,
              higher_is_better=False)


def linear_cross_entropy_case(h: Harness, N: int, H: int, C: int, dtype: torch.dtype,
                              target: float | None) -> None:
    hidden = torch.randn(N, H, device=h.device).to(dtype)
    weight = (torch.randn(C, H, device=h.device) * H ** -0.5).to(dtype)
    labels = torch.randint(0, C, (N,), device=h.device)
    ours_hidden = tg.from_torch(hidden.clone()).requires_grad_()
    ours_weight = tg.from_torch(weight.clone()).requires_grad_()
    ours_labels = tg.from_torch(labels)
    torch_hidden = hidden.clone().requires_grad_()
    torch_weight = weight.clone().requires_grad_()

    def ours():
        ours_hidden.grad = ours_weight.grad = None
        linear_cross_entropy(ours_hidden, ours_weight, ours_labels).backward()

    def theirs():
        torch_hidden.grad = torch_weight.grad = None
        torch_F.cross_entropy(torch_hidden @ torch_weight.T, labels).backward()

    def no_grads():
        ours_hidden.grad = ours_weight.grad = None
        torch_hidden.grad = torch_weight.grad = None

    case = f"fwd+bwd N={N} H={H} C={C} {_name(dtype)}"
    ms_ours, ms_torch = h.time_ms(ours, reps=5), h.time_ms(theirs, reps=5)
    mem_ours, mem_torch = h.peak_memory(ours, no_grads), h.peak_memory(theirs, no_grads)
    flops = 3 * 2 * N * H * C  # logits, dhidden and dweight matmuls
    h.add("linear_ce", case, "ms", ms_ours, ms_torch, higher_is_better=False,
          tflops_tritongrad=flops / (ms_ours * 1e9), tflops_torch=flops / (ms_torch * 1e9),
          launches_tritongrad=h.tg_launches(ours), launches_torch=h.torch_launches(theirs))
    if mem_ours is not None:
        h.add("linear_ce", case, "peak MiB", mem_ours / MIB, mem_torch / MIB,
              higher_is_better=False, target=target)


def run(h: Harness) -> None:
    if h.smoke:
        cross_entropy_case(h, 16, 40, torch.float32, None)
        linear_cross_entropy_case(h, 16, 8, 40, torch.float32, None)
        return
    cross_entropy_case(h, 8192, 32768, torch.bfloat16, 1.5)
    if h.targets_only:
        pass  # the fp32 case has no target
    elif not h.out_of_time():
        cross_entropy_case(h, 4096, 8192, torch.float32, None)
    else:
        h.skip("cross_entropy fp32")
    if not h.out_of_time():
        linear_cross_entropy_case(h, 8192, 2048, 32768, torch.bfloat16, 1.5)
    else:
        h.skip("linear_ce")
