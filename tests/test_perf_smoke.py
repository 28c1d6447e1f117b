"""The perf suite's smoke mode runs, and writes its JSON record and markdown summary with
the interpreter label (never presented as performance). CI also runs the whole smoke mode
(.ci/run); this test runs a fast subset in-process."""

import json

import pytest

import tritongrad as tg
import tritongrad.ops.loss as loss_ops
from perf import run as perf_run
from perf.common import Harness, Result, markdown_summary


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
