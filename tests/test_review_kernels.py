"""Regressions from the kernels review: GPU argument typing of float scalars, and copy_
between overlapping views.

Triton's interpreter passes a Python float argument through as an exact float64, while a
GPU launch types it fp32 unless the parameter is annotated (``tl.float64``). So a kernel
that computes an fp64 result from a host scalar is exact on CPU and silently rounded on a
GPU. The ``gpu_float_typing`` fixture makes the interpreter type float arguments the way a
GPU launch does (with triton's own reading of the annotations), so CPU tests see it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch
from triton.runtime.jit import KernelParam

import tritongrad
import tritongrad.kernels as kernel_package
from tritongrad.kernels import _launch
from tritongrad.kernels import copy as copy_kernels
from tritongrad.kernels import elementwise, mse
from tritongrad.kernels._checks import LayoutError

DEVICE = tritongrad.device()


def _python_fn(kernel):
    fn = kernel
    while hasattr(fn, "fn"):  # Autotuner -> InterpretedFunction / JITFunction -> python
        fn = fn.fn
    return fn


def _gpu_type_of_float(param: inspect.Parameter, index: int) -> str:
    """The type a GPU launch gives a Python float passed to ``param``: its annotation as
    triton reads it, else fp32."""
    annotated = KernelParam(index, param, False, False).annotation_type
    return annotated or "fp32"


@pytest.fixture
def gpu_float_typing(monkeypatch):
    original = _launch.launch

    def launch(kernel, grid, *args, **kwargs):
        params = list(inspect.signature(_python_fn(kernel)).parameters.values())
        typed = []
        for i, arg in enumerate(args):
            if isinstance(arg, float) and i < len(params):
                kind = _gpu_type_of_float(params[i], i)
                if kind == "fp32":
                    arg = float(np.float32(arg))
                else:
                    assert kind == "fp64", (params[i].name, kind)
            typed.append(arg)
        return original(kernel, grid, *typed, **kwargs)

    for info in pkgutil.iter_modules(kernel_package.__path__):
        module = importlib.import_module(f"tritongrad.kernels.{info.name}")
        if getattr(module, "launch", None) is original:
            monkeypatch.setattr(module, "launch", launch)
    yield


def test_fill_and_arange_keep_fp64_and_int64_values(gpu_float_typing):
    full = copy_kernels.full((5,), 0.1, torch.float64, DEVICE)
    assert torch.equal(full, torch.full((5,), 0.1, dtype=torch.float64, device=DEVICE))
    big = copy_kernels.full((3,), 2**40 + 1, torch.int64, DEVICE)
    assert big.tolist() == [2**40 + 1] * 3
    steps = copy_kernels.arange(0.0, 1.0, 0.1, torch.float64, DEVICE)
    assert torch.equal(steps, torch.arange(0.0, 1.0, 0.1, dtype=torch.float64, device=DEVICE))
    ints = copy_kernels.arange(16777217, 16777300, 1, torch.int64, DEVICE)
    assert torch.equal(ints, torch.arange(16777217, 16777300, device=DEVICE))


def test_fp64_scalar_ops_see_the_exact_scalar(gpu_float_typing):
    x = torch.randn(7, 13, dtype=torch.float64, device=DEVICE)
    y = torch.randn(7, 13, dtype=torch.float64, device=DEVICE)
    assert torch.equal(elementwise.binary_scalar("mul", x, 0.1), x * 0.1)
    assert torch.equal(elementwise.binary_scalar("add", x, 0.1), x + 0.1)
    # torch may fuse a + alpha * b into one FMA: an ulp apart, far below fp32's 0.1 error
    torch.testing.assert_close(elementwise.binary("add", x, y, alpha=0.1),
                               torch.add(x, y, alpha=0.1), rtol=1e-13, atol=1e-15)


def test_fp64_mse_mean_scale_is_exact(gpu_float_typing):
    # 1/3 rounded to fp32 is off by 3e-8 relative: inside fp64's table tolerance (1e-7), so
    # compare tighter than the table (fp64 arithmetic gives ~1e-16 here).
    x = torch.randn(3, dtype=torch.float64, device=DEVICE)
    t = torch.randn(3, dtype=torch.float64, device=DEVICE)
    loss = mse.mse_fwd(x, t, "mean")
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(x, t), rtol=1e-13, atol=0)
    grad_output = torch.tensor(1.0, dtype=torch.float64, device=DEVICE)
    grad_input, _ = mse.mse_bwd(grad_output, x, t, "mean")
    torch.testing.assert_close(grad_input, 2.0 * (x - t) / 3, rtol=1e-13, atol=0)


# ----------------------------------------------------------------------------- copy_


def test_copy_into_partial_overlap_raises_like_torch():
    x = torch.arange(3000.0, device=DEVICE)
    with pytest.raises(LayoutError, match="single memory location"):
        copy_kernels.copy_into(x[1:], x[:-1])  # programs would read what others wrote
    assert torch.equal(x, torch.arange(3000.0, device=DEVICE))  # nothing written
    square = torch.arange(16.0, device=DEVICE).reshape(4, 4)
    with pytest.raises(LayoutError, match="single memory location"):
        copy_kernels.copy_into(square, square.T)
    same = torch.arange(10.0, device=DEVICE)
    copy_kernels.copy_into(same, same)  # the very same view: a no-op, as torch
    assert torch.equal(same, torch.arange(10.0, device=DEVICE))


def test_copy_into_interleaved_views_is_exact():
    # Strided views whose memory ranges overlap: torch cannot tell and copies; the result
    # must not depend on the order programs run in.
    a = torch.arange(40 * 60.0, device=DEVICE).reshape(40, 60)
    expected = a[:, :-1].clone()
    copy_kernels.copy_into(a[:, 1:], a[:, :-1])
    assert torch.equal(a[:, 1:], expected)
    b = torch.arange(4000.0, device=DEVICE)
    copy_kernels.copy_into(b[::2], b[1::2])
    assert torch.equal(b[::2], torch.arange(1.0, 4000.0, 2.0, device=DEVICE))
