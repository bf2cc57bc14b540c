"""bench/peers.py's own pieces: items run side by side against a real pass-through server on loopback, each charged
from its own ledger; the store's migration; and the its_hub runner's answer projection (the smallest fix to its self-consistency, which votes on whole texts as shipped)."""

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import bench.peers as peers

ROOT = Path(__file__).resolve().parent.parent


FAKE_RUNNER = """
import json, sys
import httpx
job = json.load(sys.stdin)
texts = []
for i in range(job["budget"]):  # a peer that samples one request a path, as the real ones do
    r = httpx.post(job["endpoint"] + "/chat/completions", timeout=30, json={"model": job["model"], "max_tokens": 16,
                   "messages": [{"role": "user", "content": job["questions"][0]["prompt"]}], "seed": i})
    texts.append(r.json()["choices"][0]["message"]["content"])
print(json.dumps({"id": job["questions"][0]["id"], "text": texts[-1]}))
"""


@pytest.fixture
def fake_peer(tmp_path, monkeypatch):
    """A peer named "fake" whose runner (FAKE_RUNNER) runs on this interpreter."""
    (tmp_path / "fake_runner.py").write_text(FAKE_RUNNER)
    monkeypatch.setattr(peers, "RUNNERS", tmp_path)
    monkeypatch.setitem(peers.PEERS, "fake", {"runner": "fake_runner.py", "approaches": ("sc",)})
    monkeypatch.setattr(peers, "venv_python", lambda peer: Path(sys.executable))


@contextmanager
def upstream(gen):
    """A real pass-through server on loopback over ``gen``, as the benchmark's Upstream sees it."""
    from test_server import Served

    from ponder.server import ServeConfig, create_app

    with Served(create_app(gen, ServeConfig(model_name="m", passthrough=True))) as s:
        up = object.__new__(peers.Upstream)
        up.url = s.url.removesuffix("/v1")
        yield up


def test_items_run_side_by_side_are_each_charged_exactly_what_they_sent(tmp_path, fake_peer, capsys):
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    task = ArithmeticTask()
    problems = task.problems(5, 1)
    # each item's text says its own question back, at a length of its own, so a mix-up of items would show
    gen = ScriptedGenerator(lambda req, i: "so " * (len(req.prompt.messages[-1].content) % 7) + "The answer is 4")
    with upstream(gen) as up:
        db = peers.open_store(tmp_path / "peers.sqlite")
        peers.run_peer(db, up, "fake", "sc", "m", 3, problems, task, concurrency=3)
        rows = db.execute("SELECT item, requests, completion_tokens, prompt_tokens, concurrency, answer FROM rows").fetchall()
        metrics = httpx.get(up.url + "/metrics").text
        # an item that failed side by side (its requests queued past the peer's client timeout) is run again, alone
        db.execute("UPDATE rows SET error='TimeoutError', text='' WHERE item=?", (problems[0].id,))
        peers.run_peer(db, up, "fake", "sc", "m", 3, problems, task, concurrency=1)
        again = db.execute("SELECT item, error, concurrency FROM rows ORDER BY concurrency").fetchall()
    assert again[0] == (problems[0].id, None, 1) and all(c == 3 for _, _, c in again[1:])
    said = capsys.readouterr().err.splitlines()  # a line a pass: what ran, how many at once, how many failed
    assert said[0].startswith(f"fake/sc: 5 items ({problems[0].id} ... {problems[-1].id}), 3 at a time, 0 failed, ")
    assert said[1].startswith(f"fake/sc: 1 item ({problems[0].id} ... {problems[0].id}), 1 at a time, 0 failed, ")
    assert sorted(r[0] for r in rows) == sorted(p.id for p in problems)
    assert all(r[1] == 3 and r[4] == 3 and r[5] == "4" for r in rows)
    total = sum(float(line.split()[-1]) for line in metrics.splitlines()
                if line.startswith('ponder_tokens_total{kind="completion",strategy="passthrough"}'))
    assert sum(r[2] for r in rows) == total > 0  # the ledgers split the upstream's count exactly, item by item
    assert len({r[2] for r in rows}) > 1  # items of different lengths were charged differently


def test_a_peer_sending_its_paths_at_once_runs_only_as_many_items_as_the_upstream_decodes(tmp_path, fake_peer, monkeypatch):
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    monkeypatch.setitem(peers.PEERS, "fake", {**peers.PEERS["fake"], "paths_at_once": True})
    monkeypatch.setattr(peers, "UPSTREAM_DECODING", 6)
    task = ArithmeticTask()
    problems = task.problems(4, 1)
    with upstream(ScriptedGenerator(lambda req, i: "The answer is 4")) as up:
        db = peers.open_store(tmp_path / "peers.sqlite")
        peers.run_peer(db, up, "fake", "sc", "m", 3, problems, task, concurrency=4)
    # 6 paths decoded at once, 3 an item: 2 items side by side, however many were asked for
    assert {c for (c,) in db.execute("SELECT concurrency FROM rows")} == {2}


def _sums(req, i):
    """Right sums, one word longer for every sample index, from the question in the request."""
    import re

    a, b = map(int, re.search(r"What is (\d+) \+ (\d+)", req.prompt.messages[-1].content).groups())
    return "so " * i + f"The answer is {a + b}"


def test_the_speed_comparison_times_both_sides_item_after_item_and_resumes(tmp_path, fake_peer):
    from ponder.evaluation.contention import cpu_model
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    task = ArithmeticTask()
    problems = task.problems(3, 1)
    items = {p.id for p in problems}
    upstream_gen, ponder_gen = ScriptedGenerator(_sums), ScriptedGenerator(_sums, seconds_per_token=0.002)
    with upstream(upstream_gen) as up:
        db = peers.open_store(tmp_path / "peers.sqlite")
        # ponder's side is the headline's own phase behind the label: majority over 2 paths of the small model
        pair = peers.time_alone(db, up, ("fake", "sc"), ("majority", 2), peers.SMALL, 4, problems[:2], task, ponder_gen)
        assert peers.timing_summary(db, pair, items) is None  # the third item is not timed yet
        calls = len(ponder_gen.calls)
        pair = peers.time_alone(db, up, ("fake", "sc"), ("majority", 2), peers.SMALL, 4, problems, task, ponder_gen)
        assert len(ponder_gen.calls) == calls + 1  # resumed: only the item not timed before ran again
        peer_requests = upstream_gen.calls[:]
        # --retime: both sides answer every item again in this run (after a change to ponder's speed)
        peers.time_alone(db, up, ("fake", "sc"), ("majority", 2), peers.SMALL, 4, problems, task, ponder_gen, again=True)
        assert len(ponder_gen.calls) == calls + 1 + 3 and len(upstream_gen.calls) == len(peer_requests) + 3 * 4
    assert pair == peers.pair_key(("fake", "sc"), 4, ("majority", 2), peers.SMALL)
    assert all(r.params.max_tokens == 384 for call in ponder_gen.calls for r in call)  # the phase's token cap
    summary = peers.timing_summary(db, pair, items)
    assert summary["items"] == 3 and summary["peer"]["accuracy"] == summary["ponder"]["accuracy"] == 1.0
    # the peer's 4 paths (one request each, so each its first sample: 4 words) against ponder's 2 in one batch (4 + 5)
    assert summary["peer"]["completion_tokens"] == 16 and summary["ponder"]["completion_tokens"] == 9
    rows = db.execute("SELECT tool, seconds FROM timings WHERE pair=?", (pair,)).fetchall()
    mean = {tool: sum(x for t, x in rows if t == tool) / 3 for tool in ("fake", "ponder")}
    assert summary["speedup"] == round(mean["fake"] / mean["ponder"], 2)
    assert summary["peer_approach"] == "fake/sc" and peers.timed_pairs(db, peers.SMALL, items) == [summary]
    assert summary["machine"] == cpu_model()  # both sides timed on this machine, each row says so
    assert summary["batching"] is None  # a scripted ponder has no engine whose decode steps could be timed
    assert peers.timed_pairs(db, peers.SMALL, items | {"not-timed"}) == []  # a pair counts only once it covers every item


def test_what_batching_buys_is_measured_on_ponders_engine_beside_its_pair(tmp_path, engine):
    gen = engine  # the embedded engine (SmolLM2), as the benchmark's ponder side runs on its own
    db = peers.open_store(tmp_path / "peers.sqlite")
    assert peers.batching_gain(db, "pair") is None
    peers.decode_floor(db, "pair", gen, [1, 4])
    gain = peers.batching_gain(db, "pair")
    assert gain["sequences"] == 4 and 0 < gain["ms_per_step_1"] and 0 < gain["ms_per_step_n"]
    # from the unrounded milliseconds (no speed is judged here: that is the benchmark's figure)
    assert gain["gain"] == pytest.approx(4 * gain["ms_per_step_1"] / gain["ms_per_step_n"], rel=0.05)
    # the engine still serves after its slots were borrowed for the bare steps
    from ponder.types import GenerationRequest, Prompt, SamplingParams

    [c] = gen.generate_sync([GenerationRequest(Prompt.chat("Say hi"), n=2, params=SamplingParams(max_tokens=4, seed=1))])
    assert len(c.samples) == 2 and all(s.n_tokens > 0 for s in c.samples)


def test_a_store_from_before_side_by_side_runs_gains_the_columns(tmp_path):
    import sqlite3

    old = sqlite3.connect(tmp_path / "p.sqlite")
    old.execute(peers.SCHEMA.replace("concurrency INTEGER NOT NULL DEFAULT 1, ", ""))
    old.execute(peers.TIMINGS)
    old.execute("INSERT INTO rows VALUES ('p','a','m',8,'i','t','1',1.0,10,20,2,3.5,NULL)")
    old.execute("INSERT INTO timings VALUES ('pair','p','a','m',8,'i',3.5,10,1.0)")
    old.commit()
    old.close()
    db = peers.open_store(tmp_path / "p.sqlite")
    assert db.execute("SELECT item, concurrency FROM rows").fetchall() == [("i", 1)]
    assert db.execute("SELECT item, machine FROM timings").fetchall() == [("i", None)]  # timed where, not recorded


def test_the_runner_votes_on_the_stated_answer_with_the_fix(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench/peer_runners"))  # a runner runs as a script: its folder is on its path
    spec = importlib.util.spec_from_file_location("its_hub_runner", ROOT / "bench/peer_runners/its_hub_runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)  # imports only the standard library at module level: its_hub is imported in main()
    assert runner.answer_projection("14 * 3 = 42, 42 + 46 = 88. The answer is 88.") == "88"
    assert runner.answer_projection("so 1,200 + 5 = 1,205 in total") == "1205"
    assert runner.answer_projection("The answer is: $-3") == "-3"
    assert runner.answer_projection("no numbers") == "no numbers"


def test_the_optillm_runner_votes_on_stated_answers_with_the_fix(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench/peer_runners"))
    spec = importlib.util.spec_from_file_location("optillm_runner", ROOT / "bench/peer_runners/optillm_runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)  # the standard library only at module level: optillm is imported in run()
    texts = ["42 + 46 = 98. The answer is 98.", "so 88 in all. The answer is 88", "It made 88 dollars."]
    assert runner.voted_on_answers(texts) == texts[1]  # 88 twice (stated, then the last number) beats 98 once
    assert runner.voted_on_answers([]) == ""
    assert set(runner.__doc__.split("``")[1::2]) >= {"self_consistency", "self_consistency_answer", "bon", "moa", "re2", "cot_reflection"}


def _stored(tmp_path, texts: dict[str, tuple[str, float]]):
    db = peers.open_store(tmp_path / "peers.sqlite")
    for item, (text, correct) in texts.items():
        db.execute("INSERT INTO rows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   ("p", "self_consistency_answer", "m", 8, item, text, None, correct, 10, 20, 8, 3.0, None, 1))
    return db


def test_texts_the_peers_and_ponder_read_differently_are_counted_with_the_ones_ponder_lost(tmp_path):
    from ponder.testing import ArithmeticTask

    task = ArithmeticTask()
    problems = task.problems(3, 1)  # 1 + 3 = 4, 2 + 5 = 7, 3 + 7 = 10
    db = _stored(tmp_path, {"sum-1-0": ("\\boxed{5} was a slip: 1 + 3 = 4", 0.0),  # ponder reads the box, the peers 4
                            "sum-1-1": ("2 + 5 = 7. The answer is 7.", 1.0), "sum-1-2": ("", 0.0)})
    [row] = peers.extraction_disagreements(db, "m", 8, {p.id for p in problems}, task, problems)
    assert row == {"tool": "p", "approach": "self_consistency_answer", "texts": 2, "readings_differ": 1,
                   "right_only_by_peers_reading": 1}


def test_a_peer_vote_is_set_against_ponders_item_by_item(tmp_path, monkeypatch):
    db = _stored(tmp_path, {"a": ("", 1.0), "b": ("", 1.0), "c": ("", 0.0), "d": ("", 0.0)})
    monkeypatch.setattr(peers, "ponder_vote_by_item", lambda model, budget, items: {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0})
    [row] = peers.versus_ponder_vote(db, "m", 8, {"a", "b", "c", "d"})
    assert (row["both_right"], row["peer_only"], row["ponder_only"], row["neither"]) == (1, 1, 1, 1)
    assert row["mcnemar_p"] == 1.0 and row["ponder"] == "majority@8"
    assert peers.versus_ponder_vote(db, "m", 8, {"a", "b", "c", "d", "e"}) == []  # a peer row short of items is left out


def test_an_upstream_that_cannot_start_says_why_at_once():
    """The server exits at once when its model is not there: the benchmark says why, instead of polling its health
    for minutes (as it did on a fresh machine whose default model was not yet pulled)."""
    with pytest.raises(RuntimeError, match=r"exited with status [1-9].*no-such-model"):
        peers.Upstream("no-such-model")
