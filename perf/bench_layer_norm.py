"""LayerNorm, forward and forward + backward (input, weight and bias gradients), against
torch.nn.functional.layer_norm on the same inputs: time, and GB/s of minimum traffic
(forward: x read, y written; backward: x and dy read, dx written; the parameters and
their gradients are small beside them and left out). No target yet."""

from __future__ import annotations

import torch
import torch.nn.functional as torch_F

import tritongrad as tg
from tritongrad.nn import functional as F

from .common import Harness


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def layer_norm_case(h: Harness, rows: int, cols: int, dtype: torch.dtype) -> None:
    x = torch.randn(rows, cols, device=h.device).to(dtype)
    weight = torch.randn(cols, device=h.device).to(dtype)
    bias = torch.randn(cols, device=h.device).to(dtype)
    grad = torch.randn(rows, cols, device=h.device).to(dtype)
    ours_x, ours_w, ours_b = (tg.from_torch(t.clone()).requires_grad_() for t in (x, weight, bias))
    ours_grad = tg.from_torch(grad)
    torch_x, torch_w, torch_b = (t.clone().requires_grad_() for t in (x, weight, bias))
    shape = (cols,)

    def ours_fwd():
        with tg.no_grad():
            F.layer_norm(ours_x, shape, ours_w, ours_b)

    def theirs_fwd():
        with torch.no_grad():
            torch_F.layer_norm(torch_x, shape, torch_w, torch_b)

    def ours_fwd_bwd():
        ours_x.grad = ours_w.grad = ours_b.grad = None
        F.layer_norm(ours_x, shape, ours_w, ours_b).backward(ours_grad)

    def theirs_fwd_bwd():
        torch_x.grad = torch_w.grad = torch_b.grad = None
        torch_F.layer_norm(torch_x, shape, torch_w, torch_b).backward(grad)

    n_bytes = rows * cols * x.element_size()
    case = f"{rows}x{cols} {_name(dtype)}"
    for label, ours, theirs, traffic in (("fwd", ours_fwd, theirs_fwd, 2 * n_bytes),
                                         ("fwd+bwd", ours_fwd_bwd, theirs_fwd_bwd, 5 * n_bytes)):
        ms_ours, ms_torch = h.time_ms(ours), h.time_ms(theirs)
        h.add("layer_norm", f"{label} {case}", "ms", ms_ours, ms_torch, higher_is_better=False,
              gbps_tritongrad=traffic / (ms_ours * 1e6), gbps_torch=traffic / (ms_torch * 1e6),
              launches_tritongrad=h.tg_launches(ours), launches_torch=h.torch_launches(theirs))


def run(h: Harness) -> None:
    # transformer-like widths: one block per row (1024), and the column loop (8192)
    shapes = [(64, 256)] if h.smoke else [(8192, 1024), (4096, 8192)]
    dtypes = [torch.float32] if h.smoke else [torch.bfloat16, torch.float32]
    for dtype in dtypes:
        for rows, cols in shapes:
            if h.out_of_time():
                h.skip(f"layer_norm {rows}x{cols} {_name(dtype)}")
                continue
            layer_norm_case(h, rows, cols, dtype)
