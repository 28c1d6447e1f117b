"""The examples run: simple_nn.py and train_digits.py in their fast CI modes, the digits
run reaches >= 95% held-out accuracy on CPU, --compare-torch tracks torch step for step,
and a missing optional dependency produces an install hint, not a traceback."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tritongrad.testing import assert_close

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simple_nn_runs_as_a_script_and_the_loss_falls():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "simple_nn.py"), "--fast"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "loss fell from" in proc.stdout
    result = load_example("simple_nn").main(["--fast"])
    losses = result["losses"]
    assert len(losses) == 30 and losses[-1] < 0.5 * losses[0]


def test_train_digits_fast_mode_tracks_torch():
    pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    # with the progress bar (tqdm is in the test extra; plain prints without it)
    result = load_example("train_digits").main(["--fast", "--compare-torch"])
    assert result["accuracy"] > 0.85  # one epoch
    # same initial weights, same batches: torch's curve, step for step
    assert_close(torch.tensor(result["losses"]), torch.tensor(result["torch_losses"]),
                 dtype=torch.float32, name="per-step loss")


def test_train_digits_cnn_tracks_torch():
    # Conv2d + MaxPool2d + Linear: torch's curve step for step (a few small batches: the
    # interpreter takes about a second per CNN step at batch 16)
    pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    result = load_example("train_digits").main(["--model", "cnn", "--batch-size", "16",
                                                "--max-steps", "4", "--no-progress",
                                                "--compare-torch"])
    assert len(result["losses"]) == 4
    assert_close(torch.tensor(result["losses"]), torch.tensor(result["torch_losses"]),
                 dtype=torch.float32, name="per-step loss")


def test_train_digits_reaches_95_percent_held_out():
    # the full default run (3 epochs, about 35 s on one core through the interpreter)
    pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    result = load_example("train_digits").main(["--no-progress"])
    assert result["accuracy"] >= 0.95, result["accuracies"]


def test_train_digits_plot_or_install_hint(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    example = load_example("train_digits")
    target = tmp_path / "curves.png"
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(SystemExit, match="pip install matplotlib"):
            example.main(["--fast", "--plot", str(target)])
    else:
        example.main(["--fast", "--no-progress", "--plot", str(target)])
        assert target.stat().st_size > 0


def test_train_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    example = load_example("train_digits")
    monkeypatch.setattr(example, "optional",
                        lambda name: None if name.startswith("sklearn") else
                        importlib.import_module(name))
    with pytest.raises(SystemExit, match=r"pip install scikit-learn.*\n.*\.\[examples\]"):
        example.main(["--fast"])
