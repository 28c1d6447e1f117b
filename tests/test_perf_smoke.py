"""The perf suite's smoke mode runs, and writes its JSON record and markdown summary with
the interpreter label (never presented as performance). CI also runs the whole smoke mode
(.ci/run); this test runs a fast subset in-process."""

import json
import re

import pytest
import torch

import tritongrad as tg
import tritongrad.ops.loss as loss_ops
from perf import run as perf_run
from perf.common import Harness, Result, markdown_summary
from tests.test_launch_count import BUDGET as STEP_LAUNCH_BUDGET


def test_smoke_subset_writes_json_and_markdown(tmp_path, capsys):
    before = loss_ops.CHECK_LABELS
    code = perf_run.main(["--smoke", "--only", "matmul,clip", "--out", str(tmp_path)])
    assert code == 0
    assert loss_ops.CHECK_LABELS == before  # the harness restores what it changed
    [json_path] = tmp_path.glob("*.json")
    [md_path] = tmp_path.glob("*.md")
    assert "-smoke-" in json_path.name  # ignored by git: perf/results/*-smoke*
    record = json.loads(json_path.read_text())
    for key in ("device", "date", "commit", "versions", "mode", "timing", "results"):
        assert key in record
    assert record["mode"] == "smoke"
    if tg.device().type == "cpu":  # never presented as performance
        assert "interpreter" in record["timing"] and "NOT performance" in record["timing"]
    assert {"torch", "triton", "python"} <= set(record["versions"])
    benches = {r["bench"] for r in record["results"]}
    assert {"matmul", "linear", "linear_relu", "clip_grad_norm_"} <= benches
    for r in record["results"]:
        assert r["target"] is None  # smoke runs judge no targets
        if r["ours"] and r["theirs"]:
            assert r["ratio"] is not None and r["ratio"] > 0
    clip_launches = next(r for r in record["results"]
                         if r["bench"] == "clip_grad_norm_" and r["metric"] == "launches")
    assert clip_launches["ours"] == 2
    square = record["sweeps"]["matmul square (n x n x n)"]["series"]
    assert [x for x, _ in square["tritongrad fp32"]] == [32, 64]
    text = md_path.read_text()
    assert "| bench |" in text
    assert ("NOT performance" in text) == (tg.device().type == "cpu")
    assert "matmul" in capsys.readouterr().out


def test_smoke_train_step_reports_launches_and_torch_compile(tmp_path, capsys, monkeypatch):
    """The training step's launch counts are rows of the table (not only JSON values), the
    torch.compile comparison runs in smoke mode, and smoke mode shows no ratio."""
    # torch.compile itself runs in CI's whole smoke run (5-20 s of compiling on a CPU);
    # here a pass-through stands in, so this test checks the benchmark's own code.
    monkeypatch.setattr(torch, "compile", lambda fn: fn)
    code = perf_run.main(["--smoke", "--only", "train_step,torch_compile",
                          "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    [json_path] = tmp_path.glob("*.json")
    [md_path] = tmp_path.glob("*.md")
    record = json.loads(json_path.read_text())
    assert not record["errors"]
    rows = {(r["case"].split(" b=8 ")[-1], r["metric"]): r for r in record["results"]
            if r["bench"] == "train_step"}
    for case in ("eager", "compile_step", "compile_step vs torch.compile"):
        assert (case, "steps/s") in rows, sorted(rows)
        assert (case, "launches") in rows, sorted(rows)
    eager = rows[("eager", "launches")]
    assert 0 < eager["ours"] <= STEP_LAUNCH_BUDGET  # tests/test_launch_count.py's budget
    assert rows[("eager", "steps/s")]["values"]["launches_tritongrad"] == eager["ours"]
    if tg.device().type == "cpu":  # compile_step runs the plain function: the same launches
        assert rows[("compile_step", "launches")]["ours"] == eager["ours"]
        for metric in ("steps/s", "launches"):
            assert "NOT performance" in rows[("compile_step vs torch.compile", metric)]["note"]
    # smoke mode prints no ratio, in the table on stdout or in the summary (JSON keeps them)
    assert rows[("eager", "steps/s")]["ratio"] is not None
    assert not re.search(r"ratio \d", out), out
    table = [line for line in md_path.read_text().splitlines() if line.startswith("| train")]
    assert table and all(line.split(" | ")[5] == "-" for line in table), table
    if tg.device().type == "cpu":  # the header above those rows says what they are
        assert "NOT performance" in out and "NOT performance" in md_path.read_text()


def test_summary_of_a_smoke_record_hides_ratios():
    h = Harness(smoke=True)
    result = h.add("x", "time", "ms", 2.0, 6.0, higher_is_better=False)
    assert result.ratio == pytest.approx(3.0)  # kept for the JSON
    record = {"device": "cpu", "date": "2026-01-01", "commit": "abc",
              "mode": "smoke (targets only)", "versions": {}, "timing": "wall clock",
              "skipped": [], "errors": [], "interpreter": False,
              "results": [dict(result.__dict__, meets_target=result.meets_target)]}
    text = markdown_summary(record)
    assert "3.00x" not in text and "| x | time | ms | 2 | 6 | - | - |" in text
    assert "not representative performance" in text


def test_unknown_benchmark_is_an_error(tmp_path):
    with pytest.raises(SystemExit):
        perf_run.main(["--smoke", "--only", "nope", "--out", str(tmp_path)])


def test_ratios_targets_and_summary():
    h = Harness(smoke=False)
    faster = h.add("x", "time", "ms", 2.0, 6.0, higher_is_better=False, target=2.0)
    slower = h.add("x", "rate", "TFLOP/s", 400.0, 800.0, higher_is_better=True, target=0.9)
    assert faster.ratio == pytest.approx(3.0) and faster.meets_target
    assert slower.ratio == pytest.approx(0.5) and slower.meets_target is False
    fraction = Result("relu", "fwd", "GB/s", 2600.0, 2700.0, 0.96, target=0.8,
                      values={"fraction_of_hbm": 0.78}, target_on="fraction_of_hbm")
    assert fraction.meets_target is False
    record = {"device": "NVIDIA H100", "date": "2026-01-01", "commit": "abc", "mode": "full",
              "versions": {"torch": "2.11"}, "timing": "CUDA events", "skipped": [],
              "errors": [], "results": [dict(r.__dict__, meets_target=r.meets_target)
                                        for r in (faster, slower)]}
    text = markdown_summary(record)
    assert "3.00x" in text and "**missed**" in text and "2x ok" in text
    assert "NOT performance" not in text


def test_explore_picks_sweeps_and_refuses_unknown_ones(capsys):
    from perf import explore

    with pytest.raises(SystemExit) as refused:
        explore.main(["--only", "elementwise,bogus"])
    assert refused.value.code == 2 and "bogus" in capsys.readouterr().err
    assert list(explore.SWEEPS)[0] == "elementwise"  # the open MSE target is measured first
    if tg.device().type == "cpu":
        assert explore.main(["--only", "elementwise"]) == 0
        assert "needs a GPU" in capsys.readouterr().out
