"""README.md stays true: its Python example runs and its test command is what CI runs (docs: tests/test_docs.py)."""

import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_ci_runs_the_readme_test_command():
    test_cmd = next(line for b in _blocks("bash") for line in b.splitlines() if "--test" in line and not line.startswith("#"))
    assert test_cmd.strip() in (ROOT / ".ci" / "run").read_text()


def test_python_example_runs(smol_path, tmp_path):
    [example] = [b for b in _blocks("python") if "open_generator" in b]
    p = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "tokens" in p.stdout
