"""The sm_90 PTX of the matmul kernel: fp16/bf16 (and opt-in tf32) use Hopper's tensor
cores (wgmma); IEEE fp32 must not, or it would silently compute in tf32."""

import pytest

try:
    from tests.conftest import ptx_of
except ImportError:  # pragma: no cover - older conftest without the helper
    from pathlib import Path

    def ptx_of(report, label_prefix):
        return {c["label"]: Path(c["ptx"]).read_text() for c in report["compiled"]
                if c["label"].startswith(label_prefix)}

PREFIX = "matmul.matmul_kernel["


@pytest.mark.parametrize("label", ["fp16", "bf16", "fp32-tf32", "fp16-bias-relu",
                                   "bf16-mask-rowsum-acc"])
def test_tensor_core_specs_use_wgmma(sm90_report, label):
    ptx = ptx_of(sm90_report, PREFIX)
    assert f"{PREFIX}{label}]" in ptx, sorted(ptx)
    assert "wgmma" in ptx[f"{PREFIX}{label}]"]


@pytest.mark.parametrize("label", ["fp32-ieee", "fp32-ieee-bias-relu-mask-rowsum"])
def test_ieee_fp32_does_not_use_tensor_cores(sm90_report, label):
    ptx = ptx_of(sm90_report, PREFIX)[f"{PREFIX}{label}]"]
    assert "wgmma" not in ptx and "mma.sync" not in ptx


def test_fp64_uses_dmma(sm90_report):
    ptx = ptx_of(sm90_report, PREFIX)[f"{PREFIX}fp64]"]
    assert "mma.sync" in ptx and ".f64" in ptx


@pytest.mark.parametrize("label", ["fp64->bf16 flat", "fp64->fp16 flat"])
def test_fp64_to_16_bit_copy_rounds_through_fp32(sm90_report, label):
    """As torch: double -> float -> 16 bits, two roundings; a direct cvt from f64 rounds
    once and differs by an ulp near ties."""
    ptx = ptx_of(sm90_report, "copy.copy_kernel[")[f"copy.copy_kernel[{label}]"]
    assert "cvt.rn.f32.f64" in ptx
    assert "bf16.f64" not in ptx and "f16.f64" not in ptx
