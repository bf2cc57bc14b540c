"""The command line, run as a user runs it: a subprocess, on the real SmolLM2 model."""

import json
import subprocess
import sys

from ponder import models


def ponder(*args, input=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "ponder", *args], capture_output=True, text=True, input=input, timeout=timeout)


def test_ask_json_on_the_test_model(smol_path):
    p = ponder("ask", "What is 2 + 2?", "--model", "smollm2-135m", "-s", "majority", "--n", "4", "--max-tokens", "64", "--seed", "3", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert {"answer", "votes", "usage", "candidates"} <= set(out)
    assert len(out["candidates"]) == 4
    assert out["usage"]["completion_tokens"] == sum(c["tokens"] for c in out["candidates"]) > 0
    assert sum(out["votes"].values()) == sum(1 for c in out["candidates"] if c["key"] is not None)
    if out["votes"]:
        assert out["candidates"][out["chosen"]]["key"] == next(iter(out["votes"]))
    again = json.loads(ponder("ask", "What is 2 + 2?", "--model", "smollm2-135m", "-s", "majority", "--n", "4", "--max-tokens", "64",
                              "--seed", "3", "--json").stdout)
    assert again["answer"] == out["answer"] and again["votes"] == out["votes"]


def test_ask_defaults_to_the_benchmark_choice_and_honours_the_budget_flags(smol_path):
    from ponder.defaults import ASK_STRATEGY

    p = ponder("ask", "What is 5 + 3?", "--model", "smollm2-135m", "--max-tokens", "48", "--seed", "1", "--max-samples", "3",
               "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["strategy"] == ASK_STRATEGY.split("?")[0] and 1 <= len(out["candidates"]) <= 3
    p = ponder("ask", "What is 5 + 3?", "--model", "smollm2-135m", "--max-tokens", "48", "--max-tokens-total", "40",
               "--deadline-s", "30", "--json")
    out = json.loads(p.stdout)
    assert out["usage"]["completion_tokens"] <= 40 and out["stopped_by"] == "max_tokens"
    p = ponder("ask", "What is 5 + 3?", "--model", "smollm2-135m", "-s", "auto", "--n", "4")
    assert p.returncode != 0 and "--n does not apply to 'auto'" in p.stderr and "--max-samples 4" in p.stderr


def test_ask_table_by_default(smol_path):
    p = ponder("ask", "-", "--model", str(smol_path), "-s", "greedy", "--max-tokens", "32", input="What is 3 + 4?")
    assert p.returncode == 0, p.stderr
    assert "answer:" in p.stdout and "completion tokens" in p.stdout


def test_bad_input_gets_a_clear_message():
    p = ponder("ask", "hi", "--strategy", "telepathy")
    assert p.returncode == 1 and "unknown strategy 'telepathy'; known strategies:" in p.stderr
    p = ponder("ask", "hi", "--model", "gpt-9")
    assert p.returncode == 1 and "unknown model 'gpt-9'" in p.stderr
    p = ponder("ask", "hi", "--param", "nonsense")
    assert p.returncode == 1 and "KEY=VALUE" in p.stderr
    p = ponder("ask", "hi", "-s", "greedy", "--n", "3")
    assert p.returncode == 1 and "--n does not apply to 'greedy'" in p.stderr
    assert "Traceback" not in p.stderr


def test_models_list_and_path(smol_path):
    p = ponder("models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    assert rows[models.DEFAULT_MODEL]["default"] and rows["smollm2-135m"]["pulled"]
    assert ponder("models", "path", "smollm2-135m").stdout.strip() == str(smol_path)
    p = ponder("models", "path", "nope")
    assert p.returncode == 1 and "unknown model" in p.stderr


def test_ask_cascades_to_a_larger_model(smol_path):
    p = ponder("ask", "What is 2 + 2?", "--model", "smollm2-135m", "-s", "majority", "--n", "3", "--max-tokens", "32", "--seed", "1",
               "--escalate-to", str(smol_path), "--min-agreement", "1.01", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["strategy"] == "cascade" and out["extra"]["escalated"] is True and len(out["candidates"]) == 4


def test_report_without_matplotlib_names_the_extra(tmp_path):
    """A missing optional dependency is one line naming the extra to install, its brackets intact (rich markup
    would eat '[eval]')."""

    from ponder.evaluation.store import Key, Store

    db = tmp_path / "r.sqlite"
    store = Store(db)
    store.start_run("r", {"task": "t"})
    store.put_result(Key("r", "t", "i", "m", "greedy", "{}", 0), 1, {
        "answer": "4", "reference": "4", "correct": 1.0, "prompt_tokens": 3, "cached_prompt_tokens": 0, "completion_tokens": 2,
        "seconds": 0.1, "n_candidates": 1, "n_correct": 1, "stopped_by": None})
    store.close()
    blocker = tmp_path / "nomatplotlib"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('blocked for this test')\n")
    import os

    p = subprocess.run([sys.executable, "-m", "ponder", "report", "r", "--db", str(db), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(blocker)})
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "pip install 'ponder[eval]'" in " ".join(p.stderr.split())


def test_eval_max_tokens_bounds_every_spec_that_does_not_set_its_own(smol_path, tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "Write a long story about the sea.", "answer": "x"}\n')
    db = tmp_path / "e.sqlite"
    p = ponder("eval", "--task", f"jsonl:{data}", "-m", "smollm2-135m", "-s", "greedy,majority?max_tokens=12", "--budgets", "2",
               "--limit", "1", "--max-tokens", "6", "--db", str(db), "--run", "mt")
    assert p.returncode == 0, p.stderr
    from ponder.evaluation.store import Store

    rows = {r["strategy"]: r for r in Store(db).results("mt")}
    assert rows["greedy"]["completion_tokens"] <= 6 and 6 < rows["majority"]["completion_tokens"] <= 24
