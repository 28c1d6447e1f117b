"""The one perf command: every benchmark against its torch equivalent, in one process.

    python perf/run.py                 # full mode (GPU): writes perf/results/<device>-<date>.*
    python perf/run.py --smoke         # tiny sizes under the interpreter: the harness works
    python perf/run.py --only matmul,train_step --budget 300 --out /tmp/perf
    python perf/run.py --targets       # only the cases that carry an issue's target

Outputs: a table of times and same-run ratios on stdout; ``<device>-<date>.json`` (device,
date, commit, versions, every figure); ``<device>-<date>.md`` (a markdown summary); and a
PNG per sweep when matplotlib is installed. Smoke runs are named ``<device>-smoke-<date>``
and their timings are labelled interpreter timings: they are never performance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `perf` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tritongrad as tg  # noqa: E402  (chooses the device and the interpreter first)
from perf import (  # noqa: E402
    bench_clip,
    bench_cross_entropy,
    bench_elementwise,
    bench_layer_norm,
    bench_layers,
    bench_matmul,
    bench_optim,
    bench_train_step,
)
from perf.common import RESULTS_DIR, Harness, run_bench, write_reports  # noqa: E402

# In priority order: under a time budget the first ones run. The quick ones with a target
# come first, so a short GPU lease still judges every target; the matmul sweep (many
# shapes to autotune) and torch.compile (tens of seconds of compiling) come last.
BENCHMARKS = {
    "clip": bench_clip.run,
    "elementwise": bench_elementwise.run,
    "cross_entropy": bench_cross_entropy.run,
    "train_step": bench_train_step.run,
    "matmul": bench_matmul.run,
    "optim": bench_optim.run,
    "torch_compile": bench_train_step.run_torch_compile,
    "layer_norm": bench_layer_norm.run,  # no target: after everything that has one
    "layers": bench_layers.run,  # no target: conv2d, max_pool2d, batch_norm, embedding
}
# The benchmarks with an issue target; --targets runs only their target cases.
TARGET_BENCHMARKS = ["train_step", "matmul", "cross_entropy", "clip", "elementwise"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes; the default on a machine without a GPU")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {RESULTS_DIR})")
    parser.add_argument("--only", default="",
                        help="comma-separated benchmarks: " + ", ".join(BENCHMARKS))
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds; benchmarks (and sweep points) past it are skipped")
    parser.add_argument("--targets", action="store_true",
                        help="only the cases with a target (files named <device>-targets-*)")
    args = parser.parse_args(argv)

    cuda = tg.device().type == "cuda"
    smoke = args.smoke or not cuda
    if not cuda and not args.smoke:
        print("no GPU: running the smoke mode (interpreter timings, not performance)")
    names = ([n.strip() for n in args.only.split(",") if n.strip()]
             or (TARGET_BENCHMARKS if args.targets else list(BENCHMARKS)))
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}")

    started = time.perf_counter()
    with Harness(smoke=smoke, budget_s=args.budget, targets_only=args.targets) as h:
        print(f"tritongrad perf, {'smoke' if smoke else 'full'} mode on {h.device}; "
              f"timing: {h.clock}", flush=True)
        out_dir = args.out or RESULTS_DIR
        done = 0
        try:
            for name in names:
                run_bench(h, name, BENCHMARKS[name])
                done += 1
                # after every benchmark: a run killed by a time limit keeps what it measured
                write_reports(h, out_dir, time.perf_counter() - started, plots=False)
        except KeyboardInterrupt:  # Ctrl-C, or gpu_check.sh's SIGINT at its time limit
            print("\ninterrupted: reporting what was measured", file=sys.stderr, flush=True)
            if done < len(names):
                h.errors.append({"bench": names[done],
                                 "error": "interrupted (SIGINT) while running"})
                h.skipped.extend(names[done + 1:])
    paths = write_reports(h, out_dir, time.perf_counter() - started)
    print("\n" + Path(paths["markdown"]).read_text())
    print("wrote:")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    if h.errors:
        print(f"\n{len(h.errors)} benchmark(s) failed: "
              + ", ".join(e["bench"] for e in h.errors), file=sys.stderr)
        return 1
    missed = [r for r in h.results if r.meets_target is False]
    if missed:
        print("\ntargets missed: " + "; ".join(f"{r.bench} {r.case}" for r in missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
