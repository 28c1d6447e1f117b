"""The README's first example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["x"].grad is not None and namespace["w"].grad is not None
    assert "tensor(" in capsys.readouterr().out


def test_readme_opens_with_the_two_commands_ci_runs():
    text = README.read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", text, re.S)[:2]
    assert "examples/train_digits.py" in commands[0]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci, "the README's test command must be the one .ci/run calls"
