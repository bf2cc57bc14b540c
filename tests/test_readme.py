"""README.md stays true: its Python example runs, its test command is what CI runs, every strategy is documented."""

import re
import subprocess
import sys
from pathlib import Path

from ponder.strategies import available

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


def test_every_strategy_is_in_the_readme_table():
    for name, info in available().items():
        assert re.search(rf"^\| `{name}` \|", README, re.M), f"strategy {name} is not documented in README.md"


def test_every_strategy_parameter_is_in_its_readme_row():
    """Each strategy's own parameters (those beyond the shared sampling options) are named in its row; dvts and
    mcts may refer to beam's step parameters instead of repeating them."""
    from ponder.strategies.base import SamplingOptions

    step_params = set(available()["beam"].params.model_fields) - set(SamplingOptions.model_fields)
    for name, info in available().items():
        row = re.search(rf"^\| `{name}` \|.*$", README, re.M).group(0)
        for field in set(info.params.model_fields) - set(SamplingOptions.model_fields):
            assert f"`{field}`" in row or (field in step_params and "the step parameters" in row), (name, field)
