"""Optimizer steps: SGD (momentum) and Adam, one fused multi-tensor launch each, against
torch.optim's default (foreach) path, on the MLP's six parameters (launch-bound) and on
200 larger tensors (bandwidth-bound)."""

from __future__ import annotations

import torch

import tritongrad as tg
from tritongrad.optim import SGD, Adam

from .common import Harness

MLP_SHAPES = [(256, 784), (256,), (256, 256), (256,), (10, 256), (10,)]


def _params(shapes, device):
    values = [torch.randn(s, device=device) * 0.1 for s in shapes]
    grads = [torch.randn(s, device=device) * 0.01 for s in shapes]
    ours = []
    for v, g in zip(values, grads):
        p = tg.from_torch(v.clone()).requires_grad_()
        p.grad = tg.from_torch(g.clone())
        ours.append(p)
    theirs = []
    for v, g in zip(values, grads):
        p = v.clone().requires_grad_()
        p.grad = g.clone()
        theirs.append(p)
    return ours, theirs


def run(h: Harness) -> None:
    if h.smoke:
        sets = {"mlp-like (4 tensors)": [(8, 16), (8,), (4, 8), (4,)]}
    else:
        sets = {"MLP 784-256-256-10": MLP_SHAPES, "200 tensors": [(512, 512), (512,)] * 100}
    for label, shapes in sets.items():
        if h.out_of_time():
            h.skip(f"optim {label}")
            continue
        numel = sum(torch.Size(s).numel() for s in shapes)
        case = f"{label}, {numel / 1e6:.2f}M fp32"
        for name, ours_cls, torch_cls, kwargs in (
            ("SGD", SGD, torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
            ("Adam", Adam, torch.optim.Adam, {"lr": 1e-3}),
        ):
            ours_params, torch_params = _params(shapes, h.device)
            ours_opt = ours_cls(ours_params, **kwargs)
            torch_opt = torch_cls(torch_params, **kwargs)
            ms_ours, ms_torch = h.time_ms(ours_opt.step), h.time_ms(torch_opt.step)
            h.add(f"optim.{name}", case, "ms", ms_ours, ms_torch, higher_is_better=False,
                  launches_tritongrad=h.tg_launches(ours_opt.step),
                  launches_torch=h.torch_launches(torch_opt.step))
            if name == "Adam" and h.cuda:
                fused_params = _params(shapes, h.device)[1]
                fused = torch.optim.Adam(fused_params, fused=True, **kwargs)
                ms_fused = h.time_ms(fused.step)
                h.add("optim.Adam", case + " vs fused", "ms", ms_ours, ms_fused,
                      higher_is_better=False, note="torch.optim.Adam(fused=True)")
