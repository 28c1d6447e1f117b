import os

# tritongrad picks the device itself; importing it first switches Triton's
# interpreter on (no GPU) before any kernel module is defined.
import tritongrad  # noqa: F401
import pytest
import torch

DEVICE = tritongrad.device()
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def pytest_report_header(config):
    return f"tritongrad device: {DEVICE} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')})"


@pytest.fixture(scope="session")
def sm90_report(tmp_path_factory):
    """Every kernel compiled for sm_90 in a subprocess (see tests/compile_sm90.py)."""
    from tests.test_compile_sm90 import run_compile

    return run_compile(tmp_path_factory.mktemp("sm90"))


def ptx_of(report: dict, label_prefix: str) -> dict:
    """{label: ptx text} for the compiled specs whose label starts with label_prefix."""
    from pathlib import Path

    return {c["label"]: Path(c["ptx"]).read_text() for c in report["compiled"]
            if c["label"].startswith(label_prefix)}
