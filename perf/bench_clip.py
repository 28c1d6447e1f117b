"""clip_grad_norm_ over 200 gradient tensors: time and kernel launches against torch's
foreach path (core-ops target: >= 2x faster, 2 launches)."""

from __future__ import annotations

import torch

import tritongrad as tg
from tritongrad.nn_utils_clip import clip_grad_norm_

from .common import Harness


def shapes(smoke: bool) -> list[tuple]:
    """200 tensors like a model's: 100 weight matrices and 100 bias vectors."""
    if smoke:
        return [(8, 16), (16,)] * 2
    return [(512, 512), (512,)] * 100


def run(h: Harness) -> None:
    sizes = shapes(h.smoke)
    grads = [torch.randn(s, device=h.device) for s in sizes]
    # max_norm well under the norm, so both clip every step (the scaling always runs)
    max_norm = 1.0
    ours_params = []
    for g in grads:
        p = tg.from_torch(torch.zeros_like(g)).requires_grad_()
        p.grad = tg.from_torch(g.clone())
        ours_params.append(p)
    torch_params = []
    for g in grads:
        p = torch.zeros_like(g).requires_grad_()
        p.grad = g.clone()
        torch_params.append(p)

    # repeated clipping shrinks the grads toward max_norm; the work per call is the same
    def ours():
        clip_grad_norm_(ours_params, max_norm)

    def theirs():
        torch.nn.utils.clip_grad_norm_(torch_params, max_norm, foreach=True)

    numel = sum(g.numel() for g in grads)
    case = f"{len(sizes)} tensors, {numel / 1e6:.1f}M fp32"
    # What a training loop pays: calls back to back, host work included (for 200 small
    # tensors that is most of the cost); the target is judged on it. Device time alone next.
    ms_ours, ms_torch = h.loop_ms(ours, 50), h.loop_ms(theirs, 50)
    launches = h.tg_launches(ours)
    h.add("clip_grad_norm_", case, "ms (loop)", ms_ours, ms_torch, higher_is_better=False,
          target=2.0, launches_tritongrad=launches, launches_torch=h.torch_launches(theirs),
          gbps_tritongrad=3 * 4 * numel / (ms_ours * 1e6),
          note="target: >= 2x torch foreach, 2 launches; back-to-back calls, host included")
    dev_ours, dev_torch = h.time_ms(ours), h.time_ms(theirs)
    h.add("clip_grad_norm_", case, "ms (device)", dev_ours, dev_torch, higher_is_better=False,
          gbps_tritongrad=3 * 4 * numel / (dev_ours * 1e6))
    h.add("clip_grad_norm_", case, "launches", launches, h.torch_launches(theirs),
          higher_is_better=False)
