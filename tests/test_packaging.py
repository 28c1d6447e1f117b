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


def _import_in_a_fresh_process(code: str, **env_overrides) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=str(ROOT))


def test_triton_imported_first_is_refused_clearly_on_the_interpreter():
    if tritongrad.device().type != "cpu":
        return  # on a GPU there is no interpreter to be too late for
    code = "import triton, tritongrad as tg; print(tg.randn(3).shape)"
    refused = _import_in_a_fresh_process(code)
    assert refused.returncode != 0
    assert "ImportError: tritongrad runs its kernels through Triton's interpreter" in refused.stderr
    assert "Import tritongrad before triton" in refused.stderr
    # the two ways out the message names both work
    assert _import_in_a_fresh_process(code, TRITON_INTERPRET="1").returncode == 0
    swapped = _import_in_a_fresh_process("import tritongrad as tg, triton; print(tg.randn(3).shape)")
    assert swapped.returncode == 0, swapped.stderr
