"""kernels/ installs as tritongrad.kernels (never a top-level `kernels`), in
editable installs and in wheels."""

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import tritongrad

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_import_as_a_subpackage():
    import tritongrad.kernels.copy as copy_module

    assert Path(copy_module.__file__).resolve().parent == (ROOT / "kernels").resolve() or \
        "site-packages" in copy_module.__file__
    spec = importlib.util.find_spec("kernels")
    assert spec is None or "tritongrad" not in str(spec.origin), "a top-level `kernels` came from us"


def test_wheel_contains_every_package_and_imports(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("tritongrad-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(n.startswith("kernels/") for n in names), "top-level kernels/ in the wheel"
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tritongrad").rglob("*.py")}
    sources |= {"tritongrad/kernels/" + p.name for p in (ROOT / "kernels").glob("*.py")}
    missing = sorted(s for s in sources if s not in names)
    assert not missing, f"files missing from the wheel (add their package to pyproject): {missing}"
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("import tritongrad, tritongrad.kernels.copy as c; "
            f"assert c.__file__.startswith({str(unpacked)!r}), c.__file__; print(tritongrad.device())")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert tritongrad.__version__
