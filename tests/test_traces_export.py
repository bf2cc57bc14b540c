"""The flywheel's first turn: stored paths out as training records (TRL's dataset conventions), and step labels
by Monte-Carlo rollouts, on a scripted generator and a real store."""

import asyncio
import json
import re
import subprocess
import sys

import pytest

from ponder.errors import InvalidRequest
from ponder.evaluation.runner import EvalConfig, evaluate
from ponder.evaluation.store import Store
from ponder.testing import ArithmeticTask, ScriptedGenerator
from ponder.traces.export import export_records
from ponder.traces.step_labels import hard_labels, label_steps, steps_of

TASK = "ponder.testing:ArithmeticTask"


def _numbers(req):
    a, b = re.findall(r"(\d+) \+ (\d+)", req.prompt.messages[-1].content)[0]
    return int(a), int(b)


def paths(req, i):
    """Path i: two steps, then an answer; even paths add right, odd ones slip by one in the first step."""
    a, b = _numbers(req)
    if req.prefix:  # a rollout from a step prefix: right exactly when the prefix's first step was
        first = int(re.search(r"first (\d+)", req.prefix).group(1))
        return f"The answer is {first + b}."
    first = a if i % 2 == 0 else a + 1
    tag = 1 if i == 3 else i  # paths 1 and 3 are the same text: exported once
    return f"Take first {first} (path {tag}).\n\nAdd {b}.\n\nThe answer is {first + b}."


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "t.sqlite")
    cfg = EvalConfig(run="train", task="arithmetic", models=("m",), strategies=("majority?n=4",), budgets=(4,), limit=3,
                     seed=20, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: ScriptedGenerator(paths)))
    held = EvalConfig(run="bench", task="arithmetic", models=("m",), strategies=("majority?n=2",), budgets=(2,), limit=1,
                      seed=20, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), held, lambda m: ScriptedGenerator(paths)))
    return store


def test_sft_dpo_and_verifier_records_follow_trls_formats(store):
    sft = export_records(store, "train", "sft", task=TASK)
    assert len(sft) == 3 * 2 and all(r["messages"][-1]["role"] == "assistant" for r in sft)
    assert all(r["messages"][0]["role"] == "user" and "What is" in r["messages"][0]["content"] for r in sft)
    assert all("The answer is" in r["messages"][-1]["content"] and "first" in r["messages"][-1]["content"] for r in sft)
    dpo = export_records(store, "train", "dpo", task=TASK)
    assert len(dpo) == 3 * 1 and all(set(r) == {"prompt", "chosen", "rejected", "item"} for r in dpo)
    assert all(r["chosen"][0]["content"] != r["rejected"][0]["content"] for r in dpo)
    twice = export_records(store, "train", "verifier", task=TASK)
    assert len({r["completion"][0]["content"] for r in twice}) == len(twice)  # deduplicated by text
    ver = export_records(store, "train", "verifier", task=TASK)
    assert len(ver) == 9 and sum(r["label"] for r in ver) == 6 and all(set(r) == {"prompt", "completion", "label", "item"} for r in ver)
    # held out: the item the benchmark run evaluated is not exported; per_item caps records
    kept = export_records(store, "train", "verifier", task=TASK, exclude_runs=("bench",), per_item=1)
    assert len(kept) == 2 and len({r["item"] for r in kept}) == 2
    with pytest.raises(InvalidRequest, match="label-steps"):
        export_records(store, "train", "prm", task=TASK)
    with pytest.raises(InvalidRequest, match="format"):
        export_records(store, "train", "rlhf", task=TASK)


def test_step_labels_by_rollouts_then_prm_records(store):
    gen = ScriptedGenerator(paths)
    report = asyncio.run(label_steps(store, "train", gen, model="m", k=3, task=TASK))
    assert report.paths == 12 and report.steps == 36 and report.completion_tokens > 0
    assert all(len(call) == 2 and all(q.n == 3 and q.prefix for q in call) for call in gen.calls)  # one call a path
    labels = store.step_labels("train")
    right = [v["labels"] for (item, m, p, idx), v in labels.items() if idx % 2 == 0]
    wrong = [v["labels"] for (item, m, p, idx), v in labels.items() if idx % 2 == 1]
    assert all(x == [1.0, 1.0, 1.0] for x in right) and all(x == [0.0, 0.0, 0.0] for x in wrong)
    again = asyncio.run(label_steps(store, "train", ScriptedGenerator(paths), model="m", k=3, task=TASK))
    assert again.paths == 0 and again.skipped == 12  # resumed: nothing labelled twice
    prm = export_records(store, "train", "prm", task=TASK, step_labels=hard_labels(store, "train"))
    assert len(prm) == 9 and all(len(r["completions"]) == len(r["labels"]) == 3 for r in prm)
    assert all(isinstance(r["prompt"], str) and all(isinstance(x, bool) for x in r["labels"]) for r in prm)
    assert steps_of("a\n\nb") == ["a", "b"]


def test_the_cli_writes_jsonl_and_refuses_clearly(store, tmp_path):
    out = tmp_path / "dpo.jsonl"
    p = subprocess.run([sys.executable, "-m", "ponder", "traces", "export", "train", "--db", str(store.path), "--format", "dpo",
                        "--out", str(out), "--task", TASK, "--exclude-run", "bench"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 and "2 dpo records from 2 items" in p.stderr
    p = subprocess.run([sys.executable, "-m", "ponder", "traces", "export", "train", "--db", str(store.path), "--format", "prm",
                        "--task", TASK], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "label-steps" in p.stderr and "Traceback" not in p.stderr


def test_a_run_resumed_over_more_items_exports_them_all(store):
    # "train" ran on 3 items; the same run resumed on 5 (the same task and seed) must read back all 5, as
    # bench/verifier's training draws widened from 120 to 240 items
    more = EvalConfig(run="train", task="arithmetic", models=("m",), strategies=("majority?n=4",), budgets=(4,), limit=5,
                      seed=20, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), more, lambda m: ScriptedGenerator(paths)))
    assert store.run_config("train")["limit"] == 5
    assert len({r["item"] for r in export_records(store, "train", "verifier", task=TASK)}) == 5
    fewer = EvalConfig(run="train", task="arithmetic", models=("m",), strategies=("majority?n=4",), budgets=(4,), limit=2,
                       seed=20, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), fewer, lambda m: ScriptedGenerator(paths)))
    store.start_run("train", {**store.run_config("train"), "seed": 21, "limit": 9})  # other items: not this run's
    assert store.run_config("train")["limit"] == 5 and store.run_config("train")["seed"] == 20
