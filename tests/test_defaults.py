"""The defaults follow the data: ``ponder ask`` with no options runs the configuration the headline benchmark found
best within its time budget (``default_config`` in bench/results/scaling.json)."""

import json
from pathlib import Path

from ponder import defaults
from ponder.strategies import parse_spec

ROOT = Path(__file__).resolve().parent.parent


def test_ask_runs_the_configuration_the_benchmark_chose():
    chosen = json.loads((ROOT / "bench" / "results" / "scaling.json").read_text())["default_config"]
    assert chosen["seconds"] <= defaults.ASK_SECONDS
    assert chosen["model"] == defaults.DEFAULT_MODEL
    ours, theirs = parse_spec(defaults.ASK_STRATEGY), parse_spec(chosen["spec"])
    assert (ours[0].name, ours[1]) == (theirs[0].name, theirs[1].model_copy(update={"max_tokens": ours[1].max_tokens}))


def test_the_install_pulls_the_default_model():
    assert "ponder.defaults" in (ROOT / "scripts" / "install.sh").read_text()
