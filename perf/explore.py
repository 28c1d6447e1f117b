"""Tuning sweeps on a GPU: the time of each variant of a kernel's tunable, same run, same
inputs, so the defaults in kernels/ can be chosen from measurements rather than guesses.

    python perf/explore.py [--out DIR] [--only elementwise,cross_entropy,matmul,host]
        # writes DIR/explore.md after every sweep (a GPU is required); an interrupt (the
        # SIGINT of gpu_check.sh's time limit) keeps the sweeps already done

Sweeps (device time, triton.testing.do_bench median):
- cross-entropy forward + backward at N=8192, C=32768, bf16, for each widest column block
  ``kernels.cross_entropy.MAX_BLOCK_C`` (32768: a row in registers, read once; smaller:
  online softmax over blocks, the gradient pass re-reads the row, mostly from L2);
- ReLU forward and MSE forward at 2^26 elements, fp32 and bf16, for each block size, and
  the MSE forward for each program count of its reduction (``MAX_PARTIALS``);
- matmul 4096^3 bf16 and fp16: the autotuner's choice and every config's time;
- where the host time of an eager MLP training step goes (cProfile, top functions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import tritongrad as tg  # noqa: E402
from tritongrad.kernels import cross_entropy as ce_kernels  # noqa: E402
from tritongrad.kernels import matmul as matmul_kernels  # noqa: E402
from tritongrad.kernels import mse as mse_kernels  # noqa: E402
from tritongrad.kernels import relu as relu_kernels  # noqa: E402
from tritongrad.ops.loss import cross_entropy  # noqa: E402


def bench(fn) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def cross_entropy_sweep(rows: list) -> None:
    N, C = 8192, 32768
    logits = tg.from_torch(torch.randn(N, C, device="cuda").to(torch.bfloat16))
    logits.requires_grad_()
    target = tg.from_torch(torch.randint(0, C, (N,), device="cuda"))
    ref = logits.torch().detach().clone().requires_grad_()

    def torch_step():
        ref.grad = None
        torch.nn.functional.cross_entropy(ref, target.torch()).backward()

    base = bench(torch_step)
    saved = ce_kernels.MAX_BLOCK_C
    try:
        for block in (32768, 16384, 8192, 4096, 2048):
            ce_kernels.MAX_BLOCK_C = block

            def step():
                logits.grad = None
                cross_entropy(logits, target).backward()

            step()
            torch_step()
            err = (logits.grad.torch().float() - ref.grad.float()).abs().max().item()
            ms = bench(step)
            rows.append(("cross_entropy 8192x32768 bf16", f"MAX_BLOCK_C={block}", ms, base,
                         f"max |grad - torch| {err:.2e}"))
    finally:
        ce_kernels.MAX_BLOCK_C = saved


def elementwise_sweep(rows: list) -> None:
    n = 2**26
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(n, device="cuda").to(dtype)
        y = torch.randn(n, device="cuda").to(dtype)
        name = str(dtype).replace("torch.", "")
        base_relu = bench(lambda: torch.relu(x))
        base_mse = bench(lambda: torch.nn.functional.mse_loss(x, y))
        saved = relu_kernels.RELU_BLOCK, mse_kernels.BLOCK
        try:
            for block in (1024, 2048, 4096, 8192):
                relu_kernels.RELU_BLOCK = block
                mse_kernels.BLOCK = block
                ms = bench(lambda: relu_kernels.relu_fwd(x))
                gbps = 2 * n * x.element_size() / (ms * 1e6)
                rows.append((f"relu fwd 2^26 {name}", f"BLOCK={block}", ms, base_relu,
                             f"{gbps:.0f} GB/s"))
                ms = bench(lambda: mse_kernels.mse_fwd(x, y, "mean"))
                gbps = 2 * n * x.element_size() / (ms * 1e6)
                rows.append((f"mse fwd 2^26 {name}", f"BLOCK={block}", ms, base_mse,
                             f"{gbps:.0f} GB/s"))
        finally:
            relu_kernels.RELU_BLOCK, mse_kernels.BLOCK = saved
        saved_partials = mse_kernels.MAX_PARTIALS
        try:  # programs of the MSE forward reduction (the launcher: one launch)
            for programs in (512, 1024, 2048, 4096, 8192, 16384):
                mse_kernels.MAX_PARTIALS = programs
                ms = bench(lambda: mse_kernels.mse_fwd(x, y, "mean"))
                gbps = 2 * n * x.element_size() / (ms * 1e6)
                rows.append((f"mse fwd 2^26 {name}", f"MAX_PARTIALS={programs}", ms, base_mse,
                             f"{gbps:.0f} GB/s"))
        finally:
            mse_kernels.MAX_PARTIALS = saved_partials


def matmul_sweep(rows: list) -> None:
    n = 4096
    kernel = matmul_kernels.matmul_kernel
    for dtype in (torch.bfloat16, torch.float16):
        a = torch.randn(n, n, device="cuda").to(dtype)
        b = torch.randn(n, n, device="cuda").to(dtype)
        matmul_kernels.matmul(a, b)  # autotunes
        base = bench(lambda: torch.matmul(a, b))
        ours = bench(lambda: matmul_kernels.matmul(a, b))
        name = str(dtype).replace("torch.", "")
        tflops = 2 * n**3 / 1e9
        rows.append((f"matmul 4096^3 {name}", f"chosen {kernel.best_config}", ours, base,
                     f"{tflops / ours:.0f} vs {tflops / base:.0f} TFLOP/s"))
        for config, timing in (getattr(kernel, "configs_timings", None) or {}).items():
            ms = timing[0] if isinstance(timing, (list, tuple)) else timing
            rows.append((f"matmul 4096^3 {name}", f"autotune {config}", float(ms), base,
                         f"{tflops / float(ms):.0f} TFLOP/s"))


def host_profile() -> str:
    """cProfile of 50 eager training steps (MLP 784-256-256-10, batch 128, cross-entropy,
    clip, Adam): the functions with the most own time, as a text block."""
    import cProfile
    import io
    import pstats

    from perf.bench_train_step import _models, _tg_step
    from tritongrad.optim import Adam

    model = _models((784, 256, 256, 10), "cuda")[0]
    step = _tg_step(model, Adam(model.parameters(), lr=1e-3))
    x = tg.from_torch(torch.randn(128, 784, device="cuda"))
    y = tg.from_torch(torch.randint(0, 10, (128,), device="cuda"))
    for _ in range(3):
        step(x, y)
    torch.cuda.synchronize()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(50):
        step(x, y)
    torch.cuda.synchronize()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
    return out.getvalue()


SWEEPS = {"elementwise": lambda rows: elementwise_sweep(rows),  # the open MSE target first
          "cross_entropy": lambda rows: cross_entropy_sweep(rows),
          "matmul": lambda rows: matmul_sweep(rows)}


def _report(rows: list, host: str | None) -> str:
    lines = [f"# tuning sweeps: {torch.cuda.get_device_name()}", "",
             "| case | variant | ms | torch ms | torch/ours | note |", "|---|---|---:|---:|---:|---|"]
    for case, variant, ms, base, note in rows:
        lines.append(f"| {case} | {variant} | {ms:.4f} | {base:.4f} | {base / ms:.2f}x | {note} |")
    text = "\n".join(lines) + "\n"
    if host is not None:
        text += "\n## host profile, 50 eager training steps\n\n```\n" + host + "```\n"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("perf/results"))
    parser.add_argument("--only", default=",".join([*SWEEPS, "host"]),
                        help="comma-separated sweeps, in the order given: "
                             + ", ".join([*SWEEPS, "host"]))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SWEEPS and name != "host"]
    if unknown:
        parser.error(f"unknown sweeps {unknown}; known: {[*SWEEPS, 'host']}")
    if tg.device().type != "cuda":
        print("perf/explore.py needs a GPU (timings under the interpreter mean nothing)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list = []
    host = None
    try:
        for name in chosen:
            if name == "host":
                try:
                    host = host_profile()
                except Exception as error:
                    host = f"host profile failed: {type(error).__name__}: {error}\n"
            else:
                try:
                    SWEEPS[name](rows)
                except Exception as error:  # keep the other sweeps
                    rows.append((name, "failed", float("nan"), float("nan"),
                                 f"{type(error).__name__}: {str(error)[:200]}"))
            (args.out / "explore.md").write_text(_report(rows, host))
            print(f"{name} done", flush=True)
    except KeyboardInterrupt:  # the time limit: what was measured is already written
        rows.append(("interrupted", "-", float("nan"), float("nan"), "time limit"))
        (args.out / "explore.md").write_text(_report(rows, host))
    print(_report(rows, host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
