"""Compile every kernel in tritongrad.kernels for an sm_90 GPU target, on a CPU machine.

Run in a subprocess by tests/test_compile_sm90.py, with the interpreter off and
TRITONGRAD_COMPILE_ONLY=1 so nothing is launched. The interpreter cannot see
what only the compiler rejects (a `break`, a call to a plain Python function);
this does.

Usage: python tests/compile_sm90.py OUT_DIR   (writes OUT_DIR/report.json and one .ptx per spec)
"""

import importlib
import json
import os
import pkgutil
import sys
import traceback

os.environ["TRITON_INTERPRET"] = "0"
os.environ["TRITONGRAD_COMPILE_ONLY"] = "1"

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

import tritongrad.kernels as kernel_pkg  # noqa: E402


FLOAT_SCALARS = {"fp16", "bf16", "fp32", "fp64"}


def _mistyped_float_args(fn, signature: dict) -> str:
    """Float scalar arguments whose spec type differs from the type a real launch gives the
    Python float passed to them: the annotation as triton reads it, else fp32. (A string
    annotation "fp64" under `from __future__ import annotations` reads as "'fp64'" and is
    ignored, so the spec compiled fp64 while every launch ran fp32.)"""
    problems = []
    for param in fn.params:
        spec_type = signature.get(param.name)
        if param.is_constexpr or spec_type not in FLOAT_SCALARS:
            continue
        launched = param.annotation_type or "fp32"
        if launched != spec_type:
            problems.append(f"{param.name}: the spec says {spec_type} but a launch types a "
                            f"Python float {launched} (annotate it tl.float64 for fp64)")
    return "; ".join(problems)


def main(out_dir: str) -> int:
    os.makedirs(out_dir, exist_ok=True)
    target = GPUTarget("cuda", 90, 32)
    report = {"triton": triton.__version__, "compiled": [], "errors": [], "uncovered": []}
    jit_functions = {}
    covered = set()
    for info in pkgutil.iter_modules(kernel_pkg.__path__):
        module = importlib.import_module(f"tritongrad.kernels.{info.name}")
        for attr, value in vars(module).items():
            if isinstance(value, triton.runtime.jit.JITFunction) and value.__module__ == module.__name__:
                jit_functions[f"{info.name}.{attr}"] = value
        for spec in getattr(module, "COMPILE_SPECS", []):
            fn = spec.jit_function
            name = f"{info.name}.{fn.__name__}"
            label = f"{name}[{spec.label}]" if spec.label else name
            covered.add(fn)
            mistyped = _mistyped_float_args(fn, spec.signature)
            if mistyped:
                report["errors"].append({"label": label, "error": mistyped})
            try:
                compiled = triton.compile(ASTSource(fn, spec.signature, spec.constexprs), target=target)
                ptx_file = os.path.join(out_dir, label.replace("/", "_") + ".ptx")
                with open(ptx_file, "w") as f:
                    f.write(compiled.asm["ptx"])
                report["compiled"].append({"label": label, "ptx": ptx_file})
            except Exception:  # report every failure, not just the first
                report["errors"].append({"label": label, "error": traceback.format_exc(limit=3)})
    # A helper @triton.jit function (called from kernels) is covered when a
    # kernel that calls it compiles; only kernels with a pointer argument must have specs.
    for name, fn in jit_functions.items():
        if fn not in covered and any(a.endswith("_ptr") for a in fn.arg_names):
            report["uncovered"].append(name)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}))
    return 0 if not report["errors"] and not report["uncovered"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
