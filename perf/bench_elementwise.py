"""Bandwidth-bound ops: ReLU and MSE, forward and backward, in GB/s against torch and as a
fraction of the device's HBM bandwidth (core-ops target: >= 80% at 2**26 elements).

Bytes are the minimum traffic: every input read once, every output written once."""

from __future__ import annotations

import torch
import torch.nn.functional as torch_F

import tritongrad as tg
from tritongrad import profiler
from tritongrad.kernels.mse import mse_bwd
from tritongrad.kernels.relu import relu_bwd
from tritongrad.ops.activation import relu
from tritongrad.ops.loss import mse_loss

from .common import Harness


def _gbps(n_bytes: int, ms: float) -> float:
    return n_bytes / (ms * 1e6)


def _add(h: Harness, bench: str, case: str, n_bytes: int, ms_ours: float, ms_torch: float,
         target: float | None) -> None:
    peaks = profiler.peaks_for() if h.cuda else None
    ours, theirs = _gbps(n_bytes, ms_ours), _gbps(n_bytes, ms_torch)
    fraction = ours / peaks.hbm_gbps if peaks else None
    result = h.add(bench, case, "GB/s", ours, theirs, higher_is_better=True,
                   ms_tritongrad=ms_ours, ms_torch=ms_torch, bytes=n_bytes,
                   fraction_of_hbm=fraction, torch_fraction_of_hbm=(
                       theirs / peaks.hbm_gbps if peaks else None))
    # the target is a fraction of the hardware's bandwidth, not a ratio to torch
    if target is not None and fraction is not None and not h.smoke:
        result.note = f"{100 * fraction:.0f}% of HBM peak (target {100 * target:.0f}%)"
        result.target, result.target_on = target, "fraction_of_hbm"


def run(h: Harness) -> None:
    sizes = [2**12] if h.smoke else [2**26] if h.targets_only else [2**20, 2**26]
    dtypes = [torch.float32] if h.smoke else [torch.float32, torch.bfloat16]
    for dtype in dtypes:
        for n in sizes:
            if h.out_of_time():
                h.skip(f"relu/mse {n} {dtype}")
                continue
            name = f"2^{n.bit_length() - 1} {str(dtype).replace('torch.', '')}"
            target = 0.8 if n == 2**26 else None
            es = torch.empty((), dtype=dtype).element_size()
            x = torch.randn(n, device=h.device).to(dtype)
            y = torch.randn(n, device=h.device).to(dtype)
            grad = torch.randn(n, device=h.device).to(dtype)
            tx, ty = tg.from_torch(x), tg.from_torch(y)

            def ours_relu():
                with tg.no_grad():
                    relu(tx)

            _add(h, "relu", f"fwd {name}", 2 * n * es, h.time_ms(ours_relu),
                 h.time_ms(lambda: torch.relu(x)), target)
            out = torch.relu(x)
            _add(h, "relu", f"bwd {name}", 3 * n * es,
                 h.time_ms(lambda: relu_bwd(grad, out)),
                 h.time_ms(lambda: torch.ops.aten.threshold_backward(grad, out, 0)), None)

            def ours_mse():
                with tg.no_grad():
                    mse_loss(tx, ty)

            _add(h, "mse", f"fwd {name}", 2 * n * es, h.time_ms(ours_mse),
                 h.time_ms(lambda: torch_F.mse_loss(x, y)), target)
            scalar = torch.ones((), device=h.device, dtype=dtype)
            xr = x.clone().requires_grad_()

            def torch_mse_bwd():
                xr.grad = None
                torch_F.mse_loss(xr, y).backward()

            # backward reads input and target, writes the input's gradient; torch's time
            # includes its forward (there is no standalone backward call), so it is only
            # shown, with the ratio against our backward alone left out
            ms_ours = h.time_ms(lambda: mse_bwd(scalar, x, y, "mean", need_input=True,
                                                need_target=False))
            ms_torch = h.time_ms(torch_mse_bwd)
            h.add("mse", f"bwd {name}", "GB/s", _gbps(3 * n * es, ms_ours), None,
                  higher_is_better=True, ms_tritongrad=ms_ours, ms_torch_fwd_bwd=ms_torch,
                  note="torch has no standalone MSE backward: its fwd+bwd time is in values")
