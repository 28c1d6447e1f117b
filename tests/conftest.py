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
