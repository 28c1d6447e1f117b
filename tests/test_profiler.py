"""The profiler: launch counts, op/phase/node attribution, FLOP and byte formulas checked
against hand-computed values (matmul, cross-entropy), the table, the Chrome trace, record
scopes and users' own kernels, and the peaks table."""

import json

import pytest
import torch
import triton
import triton.language as tl

import tritongrad as tg
from tritongrad import profiler
from tritongrad.kernels._launch import launch
from tritongrad.ops.loss import cross_entropy
from tritongrad.ops.matmul import linear, matmul


CUDA = tg.device().type == "cuda"
CLOCK = "CUDA events" if CUDA else "wall clock (Triton interpreter)"


def leaf(*shape, dtype=torch.float32, requires_grad=True):
    return tg.tensor(torch.randn(*shape), dtype=dtype, requires_grad=requires_grad)


def only(events, **match):
    found = [e for e in events if all(getattr(e, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_linear_forward_backward_counts_and_formulas(dtype):
    M, K, N = 8, 16, 32  # x (M, K), weight (N, K), bias (N,)
    x, w, b = leaf(M, K, dtype=dtype), leaf(N, K, dtype=dtype), leaf(N, dtype=dtype)
    size = torch.empty((), dtype=dtype).element_size()
    grad_y = tg.ones(M, N, dtype=dtype)
    with profiler.profile() as prof:
        y = linear(x, w, b)
        y.backward(grad_y)
    events = prof.events
    # forward: one fused launch, Y = X W^T + b: 2*M*N*K flops (a multiply and an add per
    # term); bytes: X and W read once, Y written once, the bias read once.
    fwd = only(events, op="Linear", phase="forward")
    assert fwd.kernel == "matmul_kernel"
    assert fwd.node == "LinearBackward" and fwd.node_id is not None
    assert fwd.flops == 2 * M * N * K
    assert fwd.bytes_moved == (M * K + N * K + M * N) * size + N * size
    # backward: dW = dY^T X with db as the row sums of dY^T (one launch), dX = dY W.
    bwd = [e for e in events if e.op == "Linear" and e.phase == "backward"]
    assert len(bwd) == 2 and all(e.kernel == "matmul_kernel" for e in bwd)
    assert all(e.node == "LinearBackward" and e.node_id == fwd.node_id for e in bwd)
    grad_w, grad_x = bwd
    assert grad_w.flops == 2 * N * K * M
    # dY^T (N, M) and X (M, K) read, dW (N, K) written, db (N,) written in the bias dtype
    assert grad_w.bytes_moved == (N * M + M * K + N * K) * size + N * size
    assert grad_x.flops == 2 * M * K * N
    assert grad_x.bytes_moved == (M * N + N * K + M * K) * size
    assert prof.launches == 3
    stats = prof.op_stats()
    assert stats[("Linear", "forward")].calls == 1
    assert stats[("Linear", "backward")].launches == 2
    assert stats[("Linear", "backward")].flops == 4 * M * N * K


def test_batched_matmul_flops():
    a, b = leaf(3, 4, 5), leaf(3, 5, 6)
    with profiler.profile() as prof:
        matmul(a, b)
    event = only(prof.events, op="MatMul")
    assert event.flops == 2 * 3 * 4 * 6 * 5
    assert event.bytes_moved == (3 * 4 * 5 + 3 * 5 * 6 + 3 * 4 * 6) * 4


def test_cross_entropy_counts_and_formulas():
    N, C = 6, 10
    logits = leaf(N, C)
    target = tg.tensor(torch.randint(0, C, (N,)))
    with profiler.profile() as prof:
        loss = cross_entropy(logits, target)
        loss.backward()
    events = prof.events
    fwd = [e for e in events if e.op == "CrossEntropy" and e.phase == "forward"]
    assert [e.kernel for e in fwd] == ["count_valid_kernel", "cross_entropy_fwd_kernel",
                                       "cross_entropy_reduce_kernel"]
    count, rows, reduce = fwd
    # one label compare per row; N int64 targets read, the int64 count written
    assert count.grid == (1,) and count.flops == N and count.bytes_moved == N * 8 + 8
    assert rows.grid == (N,)  # one program per row
    # per element: max, shift, exp, sum (4) for the loss; exp(x - lse), one-hot and
    # smoothing terms (4) for the gradient written in the same pass
    assert rows.flops == N * C * (4 + 4)
    # logits read once (a row fits one block), gradient written once, and per row an int64
    # target read and an fp32 row loss written
    assert rows.bytes_moved == N * C * 4 * 2 + N * (8 + 4)
    # sum of N row losses and N label compares; reads N fp32 losses and N int64 targets,
    # writes the 0-d loss and the int64 count
    assert reduce.flops == 2 * N
    assert reduce.bytes_moved == N * (4 + 8) + 16
    # backward() seeds with dloss/dloss = 1: one fill, in a 'backward seed' row; the forward's
    # gradient (already divided by the row count) is then the answer: no backward launch
    seed = only(events, phase="backward")
    assert (seed.kernel, seed.op) == ("fill_kernel", "backward seed")
    assert prof.launches == 4
    assert prof.count(phase="forward") == 3 and prof.count(op="CrossEntropy", phase="backward") == 0

    # any other incoming gradient: one scaling launch over the stored (N, C) gradient,
    # read and written once
    with profiler.profile() as prof:
        loss = cross_entropy(logits, target)
        loss.backward(tg.tensor(2.0))
    scale = only(prof.events, op="CrossEntropy", phase="backward")
    assert scale.kernel == "cross_entropy_bwd_kernel"
    assert scale.flops == N * C
    assert scale.bytes_moved == N * C * (4 + 4)


def test_calls_count_op_invocations_not_launches():
    x, w = leaf(4, 8, requires_grad=False), leaf(16, 8, requires_grad=False)
    with profiler.profile() as prof:
        for _ in range(3):
            linear(x, w)
    row = prof.op_stats()[("Linear", "forward")]
    assert (row.calls, row.launches) == (3, 3)


def test_launch_count_stops_when_the_profile_ends():
    x = leaf(4, 8)
    with profiler.profile() as prof:
        x + x
    x + x
    assert prof.launches == 1
    with profiler.profile() as outer:
        with profiler.profile() as inner:
            x * x
        x * x
    assert (inner.launches, outer.launches) == (1, 2)


def test_table_labels_sorting_and_row_limit():
    x, w = leaf(4, 8), leaf(16, 8)
    with profiler.profile() as prof:
        linear(x, w).sum().backward()
    text = prof.table()
    assert f"times: {CLOCK}" in text
    assert ("not performance" in text) == (not CUDA)
    header = next(line for line in text.splitlines() if line.startswith("op "))
    for column in ("calls", "launches", "total ms", "TFLOP/s", "GB/s", "%peak FLOP", "%peak BW"):
        assert column in header
    assert f"{prof.launches} kernel launches" in text
    by_name = prof.table(sort_by="name")
    body = by_name.splitlines()[by_name.splitlines().index(header) + 2:-1]
    names = [line.split()[0] for line in body]
    assert names == sorted(names)
    limited = prof.table(row_limit=1)
    assert "more rows" in limited
    with pytest.raises(ValueError, match="sort_by"):
        prof.table(sort_by="colour")
    assert repr(text) == str(text)  # prints as a table at a prompt


def test_percent_of_peak_uses_the_given_peaks():
    fake = profiler.DevicePeaks("fake", {"bf16": 1e-6, "fp32": 2e-6}, 1e-3)
    x, w = leaf(8, 16, requires_grad=False), leaf(32, 16, requires_grad=False)
    linear(x, w)  # compile (and autotune) first: on a GPU the first launch's events span it
    with profiler.profile(peaks=fake, dtype=torch.float32) as prof:
        linear(x, w)
    row = prof.op_stats()[("Linear", "forward")]
    assert row.tflops == pytest.approx(row.flops / (row.time_us * 1e6))
    assert row.gbps == pytest.approx(row.bytes_moved / (row.time_us * 1e3))
    line = next(line for line in prof.table().splitlines() if line.startswith("Linear"))
    cells = line.split()
    # the cells are printed with one decimal: abs=0.05 is their rounding, not slack
    assert float(cells[-2]) == pytest.approx(100 * row.tflops / 2e-6, rel=1e-2, abs=0.05)
    assert float(cells[-1]) == pytest.approx(100 * row.gbps / 1e-3, rel=1e-2, abs=0.05)
    assert "peaks: fake" in prof.table()


def test_peaks_table_covers_hopper_and_ampere():
    assert profiler.peaks_for("NVIDIA H100 80GB HBM3").hbm_gbps == 3350
    assert profiler.peaks_for("NVIDIA H100 PCIe").hbm_gbps == 2000
    assert profiler.peaks_for("NVIDIA H200").hbm_gbps == 4800
    assert profiler.peaks_for("NVIDIA A100-SXM4-80GB").tflops["bf16"] == 312
    assert profiler.peaks_for("NVIDIA GeForce GTX 1080") is None
    for key in ("H100", "H200", "A100"):
        peaks = profiler.PEAKS[key]
        assert {"bf16", "fp16", "tf32", "fp32"} <= set(peaks.tflops)
    assert profiler.profile(peaks="H200").peaks is profiler.PEAKS["H200"]
    if not CUDA:
        assert profiler.profile().peaks is None  # the interpreter has no peak


def test_chrome_trace_is_valid_and_has_one_event_per_launch(tmp_path):
    logits = leaf(4, 6)
    target = tg.tensor([0, 5, 2, 1])
    with profiler.profile() as prof:
        with profiler.record("step"):
            cross_entropy(logits, target).backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    document = json.loads(path.read_text())
    events = document["traceEvents"]
    kernels = [e for e in events if e["ph"] == "X" and e["cat"] != "scope"]
    assert len(kernels) == prof.launches == 4
    for e in kernels:
        assert {"name", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert e["dur"] >= 0 and e["ts"] >= 0
        assert e["args"]["op"] in ("CrossEntropy", "backward seed")
    scopes = [e for e in events if e["ph"] == "X" and e["cat"] == "scope"]
    assert [s["name"] for s in scopes] == ["step"] and scopes[0]["args"]["launches"] == 4
    assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in events)
    assert document["otherData"]["clock"] == CLOCK


@triton.jit
def _user_scale_kernel(x_ptr, out_ptr, numel, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < numel
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, x * 2.0, mask=mask)


def test_users_kernels_through_the_hook_and_in_record_scopes():
    x = torch.randn(100).to(tg.device())
    out = torch.empty_like(x)
    with profiler.profile() as prof:
        # through the hook, outside any op: a row named after the kernel
        launch(_user_scale_kernel, (1,), x, out, 100, BLOCK=128, flops=100, bytes_moved=800)
        # through the hook inside a record scope: counted in the scope's row
        with profiler.record("my_scale"):
            launch(_user_scale_kernel, (1,), x, out, 100, BLOCK=128, flops=100,
                   bytes_moved=800)
        # launched directly: the hook cannot see it; the scope gives its counts
        with profiler.record("raw_scale", flops=100, bytes_moved=800, launches=1):
            _user_scale_kernel[(1,)](x, out, 100, BLOCK=128)
    torch.testing.assert_close(out, x * 2)
    stats = prof.op_stats()
    hooked = stats[("_user_scale_kernel", "other")]
    assert (hooked.calls, hooked.launches, hooked.flops, hooked.bytes_moved) == (1, 1, 100, 800)
    scoped = stats[("my_scale", "record")]
    assert (scoped.calls, scoped.launches, scoped.flops) == (1, 1, 100)
    raw = stats[("raw_scale", "record")]
    assert (raw.calls, raw.launches, raw.bytes_moved) == (1, 1, 800)
    assert raw.time_us > 0
    assert prof.launches == 3
    text = prof.table()
    assert "my_scale" in text and "raw_scale" in text and "_user_scale_kernel" in text


def test_user_function_is_attributed_like_builtin_ops():
    class Double(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = torch.empty_like(x._data)
            launch(_user_scale_kernel, (1,), x._data, out, x.numel(), BLOCK=64,
                   flops=x.numel(), bytes_moved=8 * x.numel())
            return tg.Tensor._wrap(out)

        @staticmethod
        def backward(ctx, grad):
            out = torch.empty_like(grad._data)
            launch(_user_scale_kernel, (1,), grad._data, out, grad.numel(), BLOCK=64,
                   flops=grad.numel(), bytes_moved=8 * grad.numel())
            return tg.Tensor._wrap(out)

    x, grad = leaf(10), tg.ones(10)
    with profiler.profile() as prof:
        Double.apply(x).backward(grad)
    assert only(prof.events, op="Double", phase="forward").node == "DoubleBackward"
    assert only(prof.events, op="Double", phase="backward").flops == 10
    torch.testing.assert_close(x.grad.torch(), torch.full((10,), 2.0))


def test_record_without_a_profile_is_harmless():
    with profiler.record("nothing"):
        leaf(3) + 1.0
    assert not profiler.active()


def test_driver_hooks_time_the_launch_itself_not_the_host_work_around_it():
    """On a GPU, Triton's launch enter/exit hooks mark the driver launch itself, so a first
    launch's JIT compile (or an autotuner's benchmark runs, which come before the real
    launch: the last enter wins) does not count as kernel time. Simulated here with the
    wall clock: begin, slow host work, enter, exit, end."""
    import time

    from tritongrad.kernels._launch import LaunchInfo

    info = LaunchInfo("k", (1,))
    with profiler.profile() as prof:
        prof.begin(info)
        time.sleep(0.05)  # "compiling"
        prof._launch_enter(None)  # an autotuner's benchmark launch
        prof._launch_exit(None)
        time.sleep(0.02)
        prof._launch_enter(None)  # the launch that counts
        prof._launch_exit(None)
        time.sleep(0.05)
        prof.end(info)
        prof.begin(info)  # no hooks fired (the interpreter): begin to end
        time.sleep(0.03)
        prof.end(info)
    hooked, plain = prof.events
    assert hooked.duration_us < 10_000
    assert plain.duration_us >= 30_000


# ----------------------------------------------------------------------------- audit fixes


def _train_step(optimizer_cls=None):
    """A tiny model and one training step: forward, backward, clip, optimizer step."""
    from tritongrad.nn import Linear, ReLU, Sequential
    from tritongrad.nn.functional import cross_entropy as ce
    from tritongrad.nn_utils_clip import clip_grad_norm_

    torch.manual_seed(0)
    model = Sequential(Linear(6, 8), ReLU(), Linear(8, 3))
    opt = (optimizer_cls or tg.optim.Adam)(model.parameters(), lr=1e-3)
    x = tg.randn(4, 6)
    y = tg.tensor(torch.randint(0, 3, (4,)))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = ce(model(x), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def _row_line(text, op, phase):
    """The table line of row (op, phase), split into cells (op names hold no spaces)."""
    for line in text.splitlines():
        cells = line.split()
        if len(cells) > 2 and cells[0] == op and cells[1] == phase:
            return cells
    raise AssertionError(f"no row {op} {phase} in\n{text}")


@pytest.mark.parametrize("peaks, dtype", [
    (profiler.DevicePeaks("mine", {"fp32": 1.0}, 100.0), None),  # no bf16 entry
    (profiler.DevicePeaks("mine", {"bf16": 1.0, "fp32": 1.0}, 100.0), "tf32"),  # no tf32
    (profiler.DevicePeaks("mine", {}, None), torch.float16),  # nothing at all
])
def test_table_shows_missing_peaks_as_n_a(peaks, dtype):
    step = _train_step()
    step()
    with profiler.profile(peaks=peaks, dtype=dtype) as prof:
        step()
    text = prof.table()
    header = next(line for line in text.splitlines() if line.startswith("peaks:"))
    assert "mine" in header
    if dtype is None:  # every row is fp32 (no dtype: fp32 too), which the table has
        assert "fp32 1;" in header and "n/a" not in text
    else:
        # the rate a row needs and the table lacks shows as n/a, not as "-" (no FLOPs or
        # no time); rows without a float tensor (Adam's) use the profile's dtype
        assert f"{profiler._dtype_key(dtype)} n/a" in header
        assert _row_line(text, "Adam.step", "optimizer")[-2] == "n/a"
    if peaks.hbm_gbps is None:
        assert "HBM n/a" in header
        assert _row_line(text, "Adam.step", "optimizer")[-1] == "n/a"


def test_unknown_peaks_name_raises_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"'B200'.*H100.*H200"):
        profiler.profile(peaks="B200")
    with pytest.raises(TypeError, match="peaks"):
        profiler.profile(peaks=3.0)
    # a device name containing a PEAKS key still finds it
    assert profiler.profile(peaks="NVIDIA H100 80GB HBM3").peaks is profiler.PEAKS["H100"]
    assert profiler.profile(peaks="h200").peaks is profiler.PEAKS["H200"]


def test_engine_gradient_bookkeeping_is_attributed_to_accumulate_grad():
    x, y, ones = leaf(5), leaf(5), tg.ones(5)
    with profiler.profile() as prof:
        # x feeds two ops: their gradients are summed at x's AccumulateGrad (one add)
        ((x * 2.0) + (x * 3.0)).backward(ones)
        # x.grad exists now: the second backward adds into it (one add)
        ((x * 2.0) + (x * 3.0)).backward(ones)
        # a gradient the caller still holds is copied, not kept, as the leaf's .grad
        y.backward(ones)
    accumulate = [e for e in prof.events if e.op == "AccumulateGrad"]
    assert sorted(e.kernel for e in accumulate) == ["binary_kernel"] * 3 + ["copy_kernel"]
    assert all(e.phase == "backward" and e.node == "AccumulateGrad" and e.node_id is not None
               for e in accumulate)
    assert prof.count(phase="other") == 0
    assert prof.op_stats()[("AccumulateGrad", "backward")].calls == 4
    torch.testing.assert_close(x.grad.torch(), torch.full((5,), 10.0))


def test_retain_grad_and_dtype_casts_are_attributed_to_accumulate_grad():
    x, ones = leaf(4), tg.ones(4)
    half = tg.ones(4, dtype=torch.float16)

    class ToHalf(tg.autograd.Function):  # returns its input's gradient in the wrong dtype
        @staticmethod
        def forward(ctx, t):
            return t * 1.0

        @staticmethod
        def backward(ctx, grad):
            return half

    with profiler.profile() as prof:
        h = ToHalf.apply(x * 2.0)
        h.retain_grad()
        (h * 3.0).backward(ones)  # h.grad: a copy of the gradient flowing through
    assert prof.count(phase="other") == 0
    copies = [e for e in prof.events if e.kernel == "copy_kernel"]
    # h.grad (retained at h's node, before it runs), then ToHalf's fp16 gradient cast to
    # the fp32 of its input
    assert [(e.op, e.phase, e.node) for e in copies] == [
        ("AccumulateGrad", "backward", "ToHalfBackward")] * 2


def test_backward_seed_is_attributed_to_backward():
    x = leaf(3)
    with profiler.profile() as prof:
        (x * 2.0).sum().backward()
    seed = only(prof.events, kernel="fill_kernel")
    assert (seed.op, seed.phase) == ("backward seed", "backward")


@pytest.mark.parametrize("optimizer", ["Adam", "SGD"])
def test_optimizer_and_clip_launches_have_named_scopes(optimizer, tmp_path):
    step = _train_step(getattr(tg.optim, optimizer))
    step()
    with profiler.profile() as prof:
        step()
    name = f"{optimizer}.step"
    kernel = {"Adam": "adam_kernel", "SGD": "sgd_kernel"}[optimizer]
    assert [e.kernel for e in prof.events if e.op == name] == [kernel]
    assert only(prof.events, kernel=kernel).phase == "optimizer"
    clip = [e for e in prof.events if e.op == "clip_grad_norm_"]
    assert [e.kernel for e in clip] == ["multi_norm_partials_kernel",
                                        "multi_norm_finalize_kernel"]
    assert all(e.phase == "optimizer" for e in clip)
    stats = prof.op_stats()
    assert stats[(name, "optimizer")].calls == 1
    assert stats[("clip_grad_norm_", "optimizer")].calls == 1
    assert _row_line(prof.table(), name, "optimizer")
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["name"] == "thread_name"}
    adam = next(e for e in events if e["ph"] == "X" and e["name"] == kernel)
    assert adam["cat"] == "optimizer" and adam["tid"] == tracks["optimizer"]


def test_zero_grad_without_set_to_none_is_an_optimizer_launch():
    p, q = leaf(4), leaf(3)
    opt = tg.optim.SGD([p, q], lr=0.1)
    p.grad, q.grad = tg.ones(4), tg.ones(3)
    with profiler.profile() as prof:
        opt.zero_grad(set_to_none=False)
    assert [(e.kernel, e.op, e.phase) for e in prof.events] == [
        ("fill_kernel", "SGD.zero_grad", "optimizer")] * 2  # one fill per gradient
    row = prof.op_stats()[("SGD.zero_grad", "optimizer")]
    assert (row.calls, row.launches) == (1, 2)


def test_record_rows_are_marked_inclusive_and_the_other_rows_sum_to_the_launches():
    step = _train_step()
    step()
    x = torch.randn(100).to(tg.device())
    out = torch.empty_like(x)
    with profiler.profile() as prof:
        with profiler.record("outer"):
            with profiler.record("inner"):
                step()
                launch(_user_scale_kernel, (1,), x, out, 100, BLOCK=128, flops=100,
                       bytes_moved=800)
            with profiler.record("raw", flops=100, bytes_moved=800, launches=1):
                _user_scale_kernel[(1,)](x, out, 100, BLOCK=128)
    hooked = len(prof.events)
    assert prof.launches == hooked + 1  # every hooked launch once, plus the one given
    stats = prof.op_stats()
    assert stats[("outer", "record")].inclusive and stats[("inner", "record")].inclusive
    assert stats[("outer", "record")].launches == prof.launches
    assert stats[("inner", "record")].launches == hooked
    exclusive = [r for r in stats.values() if not r.inclusive and r.phase != "graph"]
    assert sum(r.launches for r in exclusive) == prof.launches
    assert sum(r.flops for r in exclusive) == sum(e.flops for e in prof.events) + 100
    # launches made in a scope outside any op: a row named after the innermost scope
    assert prof.count(op="inner", phase="other", kernel="_user_scale_kernel") == 1
    assert (stats[("raw", "other")].launches, stats[("raw", "other")].bytes_moved) == (1, 800)
    text = prof.table()
    assert _row_line(text, "outer", "(inclusive)")  # "outer (inclusive)  record ..."
    assert "inclusive" in text.splitlines()[-1]


def test_a_graph_replay_in_a_record_scope_is_inside_it_but_not_in_the_launches():
    # what compile_step does around each replay (no GPU needed: nothing is launched)
    with profiler.profile() as prof:
        with profiler.record("epoch"):
            with profiler._graph_replay("compile_step:step", 5, 100, 200):
                pass
    stats = prof.op_stats()
    graph, epoch = stats[("compile_step:step", "graph")], stats[("epoch", "record")]
    assert not graph.inclusive and (graph.launches, graph.flops) == (5, 100)
    assert epoch.inclusive and (epoch.launches, epoch.flops, epoch.bytes_moved) == (5, 100, 200)
    assert prof.launches == 0 and (prof.graph_replays, prof.graph_kernels) == (1, 5)
    assert ("compile_step:step", "other") not in stats  # a replay's counts are its own row
    assert "5 kernels, not in the launches" in prof.table()


def test_percent_of_peak_uses_fp32_without_a_dtype_and_tf32_for_tf32_matmuls():
    from tritongrad.kernels import matmul as matmul_kernels

    rates = {"bf16": 1e-6, "fp16": 2e-6, "tf32": 4e-6, "fp32": 8e-6}
    fake = profiler.DevicePeaks("fake", rates, 1e-3)
    a, b = torch.randn(8, 16).to(tg.device()), torch.randn(16, 8).to(tg.device())
    step = _train_step()
    step()
    matmul_kernels.matmul(a, b, allow_tf32=True)  # compile first (GPU)
    matmul_kernels.matmul(a, b, allow_tf32=False)
    with profiler.profile(peaks=fake) as prof:
        step()
        with profiler.record("tf32"):
            matmul_kernels.matmul(a, b, allow_tf32=True)
        with profiler.record("ieee"):
            matmul_kernels.matmul(a, b, allow_tf32=False)
    assert only(prof.events, op="tf32").dtype == "tf32"
    assert only(prof.events, op="ieee").dtype == "fp32"
    assert only(prof.events, kernel="adam_kernel").dtype is None
    stats = prof.op_stats()
    text = prof.table()

    def percent(op, phase, rate):
        row = stats[(op, phase)]
        cell = _row_line(text, op, phase)[-2]
        assert float(cell) == pytest.approx(100 * row.tflops / rate, rel=1e-2, abs=0.05)

    percent("Adam.step", "optimizer", rates["fp32"])  # no dtype: the fp32 (CUDA-core) rate
    percent("clip_grad_norm_", "optimizer", rates["fp32"])
    percent("Linear", "forward", rates["fp32"])
    percent("tf32", "other", rates["tf32"])
    percent("ieee", "other", rates["fp32"])


def test_driver_hook_counts_a_raw_launch_in_a_record_scope():
    """On a GPU a kernel launched directly (``kernel[grid](...)``) fires Triton's launch
    hooks with no launch of ours pending: inside a record scope it is counted there (a
    scope given ``launches=`` keeps the count it was given). Simulated here."""
    assert profiler.launch is launch  # the public launch path

    class Metadata:  # what Triton passes its hooks (a LazyDict)
        data = {"name": "my_raw_kernel"}

    with profiler.profile() as prof:
        prof._launch_enter(Metadata())  # outside any scope: not ours to count
        prof._launch_exit(Metadata())
        with profiler.record("mine"):
            prof._launch_enter(Metadata())
            prof._launch_exit(Metadata())
        with profiler.record("given", launches=1):
            prof._launch_enter(Metadata())
            prof._launch_exit(Metadata())
    raw = only(prof.events, kernel="my_raw_kernel")
    assert (raw.op, raw.phase, raw.record) == ("mine", "other", "mine")
    assert raw.duration_us is not None
    assert prof.launches == 2
    assert prof.op_stats()[("mine", "record")].launches == 1
