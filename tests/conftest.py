import os
import sys

# tritongrad picks the device itself; importing it first switches Triton's
# interpreter on (no GPU) before any kernel module is defined.
import tritongrad  # noqa: F401
import pytest
import torch
from torch.overrides import TorchFunctionMode

DEVICE = tritongrad.device()
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


# --- test tensors live on tritongrad's device ----------------------------------------------
# Tests build their inputs and torch references with plain ``torch.randn(...)``,
# ``torch.tensor(...)``, ``torch.zeros(...)``. On a GPU those must be on cuda, as tritongrad
# refuses (rightly) a torch tensor on another device. This mode gives every such call made
# *from a file under tests/* the device tritongrad computes on, unless the call names one.
# Why not ``torch.set_default_device``:
#  - random draws are made on the CPU and then moved, so a GPU run sees the very numbers the
#    CPU suite sees (inputs chosen away from kinks and ties stay so), and a CPU
#    ``torch.Generator`` passed to ``torch.randn`` still works (a cuda draw refuses one);
#  - calls from tritongrad, kernels/, torch itself or any other library keep torch's own
#    default (cpu): the product must work for users who never set a default device, and a
#    library call that forgets ``device=`` must fail here as it would for them.
# A test that needs a tensor elsewhere (a foreign device for a DeviceError) names it.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_RANDOM_CONSTRUCTORS = {torch.rand, torch.randn, torch.randint, torch.randperm}
_CONSTRUCTORS = _RANDOM_CONSTRUCTORS | {
    torch.tensor, torch.as_tensor, torch.asarray, torch.scalar_tensor, torch.empty,
    torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.arange, torch.linspace,
    torch.logspace, torch.eye, torch.tril_indices, torch.triu_indices,
}


class _TestTensorsOnDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if (func in _CONSTRUCTORS and kwargs.get("device") is None and "out" not in kwargs
                and sys._getframe(1).f_code.co_filename.startswith(_TESTS_DIR)):
            if func not in _RANDOM_CONSTRUCTORS:
                kwargs["device"] = DEVICE
                return func(*args, **kwargs)
            requires_grad = kwargs.pop("requires_grad", False)
            return func(*args, **kwargs).to(DEVICE).requires_grad_(requires_grad)
        return func(*args, **kwargs)


if DEVICE.type != "cpu":
    # entered once per (xdist worker) process, before any test module is collected, so
    # module-level tensors and parametrize values are covered too
    _TestTensorsOnDevice().__enter__()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def pytest_report_header(config):
    return f"tritongrad device: {DEVICE} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')})"


@pytest.fixture(scope="session")
def sm90_report(tmp_path_factory):
    """Every kernel compiled for sm_90 in a subprocess (see tests/compile_sm90.py).

    TRITONGRAD_SKIP_COMPILE_TEST=1 skips it: perf/gpu_check.sh sets it on a lent GPU,
    whose minutes are better spent running kernels (CI compiles for sm_90 on every push,
    under triton 3.9 and 3.6)."""
    from tests.test_compile_sm90 import run_compile

    if os.environ.get("TRITONGRAD_SKIP_COMPILE_TEST") == "1":
        pytest.skip("sm_90 compile test skipped (TRITONGRAD_SKIP_COMPILE_TEST=1)")

    return run_compile(tmp_path_factory.mktemp("sm90"))


def ptx_of(report: dict, label_prefix: str) -> dict:
    """{label: ptx text} for the compiled specs whose label starts with label_prefix."""
    from pathlib import Path

    return {c["label"]: Path(c["ptx"]).read_text() for c in report["compiled"]
            if c["label"].startswith(label_prefix)}


# --- CI time budget per area -------------------------------------------------------------
# The whole CPU suite must stay under 10 minutes on 2 cores. Each area has a budget of
# summed test time (one core); the terminal summary reports each area against it, so a
# slow new test is visible in CI output before the total becomes a problem.
AREA_BUDGET_S = {
    "kernels": 150,  # tests/kernels/: launchers against torch
    "core": 60,  # engine, tensor, core ops
    "ops": 120,  # matmul, losses, norm, relu Functions
    "training": 150,  # nn, optim, serialization, training parity, examples
    "tools": 90,  # parity tools, profiler, perf smoke, compile tests, packaging
    "reliability": 90,  # bad inputs, memory, anomaly, determinism, offsets, fuzz
}
_AREA_OF_FILE = {
    "test_autograd": "core", "test_tensor": "core", "test_ops_core": "core",
    "test_nn": "training", "test_optim": "training", "test_serialization": "training",
    "test_nn_containers": "training", "test_lr_schedulers": "training",
    "test_training_parity": "training", "test_examples": "training",
    "test_clip_grad_norm": "ops",
    "test_parity_tools": "tools", "test_references": "tools", "test_profiler": "tools",
    "test_perf_smoke": "tools", "test_launch_count": "tools", "test_graphs": "tools",
    "test_compile_sm90": "tools", "test_packaging": "tools", "test_readme": "tools",
    "test_review_kernels": "kernels", "test_review_library": "training",
    "test_bad_inputs": "reliability", "test_memory": "reliability",
    "test_anomaly": "reliability", "test_determinism": "reliability",
    "test_large_offsets": "reliability", "test_fuzz": "reliability",
}


def _area(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    if path.startswith("tests/kernels/"):
        return "kernels"
    stem = path.rsplit("/", 1)[-1].removesuffix(".py")
    if stem.startswith("test_ops_"):
        return "core" if stem == "test_ops_core" else "ops"
    return _AREA_OF_FILE.get(stem, "other")


def pytest_terminal_summary(terminalreporter):
    spent: dict = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) and hasattr(report, "duration"):
                area = _area(report.nodeid)
                spent[area] = spent.get(area, 0.0) + report.duration
    if not spent:
        return
    terminalreporter.section("time per area (summed over workers) / budget")
    for area, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        budget = AREA_BUDGET_S.get(area)
        flag = "  OVER BUDGET" if budget is not None and seconds > budget else ""
        shown = f"{budget} s" if budget is not None else "no budget: add the file to conftest"
        terminalreporter.write_line(f"{area:12s} {seconds:7.1f} s / {shown}{flag}")
