"""The learned verifier: a probe learns a planted signal, refuses another model's states, scores as a scorer; and
the whole path (stored run -> hidden states -> probe -> best_of_n with it) on SmolLM2 through the real engine."""

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest

from ponder.errors import InvalidRequest
from ponder.verifier.probe import Probe, auroc, fit
from ponder.verifier.train import Features, held_out, train


def planted(n=400, dim=64, seed=0):
    """Features where right paths lean along one hidden direction, buried in noise of 64 dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    direction = rng.normal(size=dim)
    x = rng.normal(size=(n, dim)) * 3 + np.outer(np.where(y, 1.0, -1.0), direction) * 0.8 + 5.0
    return x, y.astype(float)


@pytest.mark.parametrize("kind", ["logistic", "centroid"])
def test_a_probe_learns_a_planted_signal_and_generalises(kind, tmp_path):
    x, y = planted()
    probe = fit(x[:300], y[:300], kind=kind, model_sha256="a" * 64, model_name="m")
    held = auroc(probe.score(x[300:]).tolist(), y[300:].tolist())
    assert held > 0.9, held
    rng = np.random.default_rng(1)
    noise = fit(rng.normal(size=(300, 64)), y[:300], kind=kind, model_sha256="a" * 64)
    assert 0.3 < auroc(noise.score(rng.normal(size=(100, 64))).tolist(), y[300:].tolist()) < 0.7  # no signal, no skill
    again = Probe.load(probe.save(tmp_path / "p.json"))
    assert np.allclose(again.score(x[300:]), probe.score(x[300:]), atol=1e-4)
    assert (tmp_path / "p.json").stat().st_size < 10_000


def test_a_probe_refuses_another_models_states_and_bad_input(tmp_path):
    x, y = planted()
    probe = fit(x, y, model_sha256="a" * 64, model_name="m")
    with pytest.raises(InvalidRequest, match="sha256"):
        probe.check_model("b" * 64)
    with pytest.raises(InvalidRequest, match="features"):
        probe.score(np.zeros((2, 3)))
    with pytest.raises(InvalidRequest, match="right and wrong"):
        fit(x, np.ones(len(x)), model_sha256="a" * 64)
    (tmp_path / "bad.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(InvalidRequest, match="version"):
        Probe.load(tmp_path / "bad.json")


class _StatesOf:
    """A generator whose hidden states are given rows (a scripted stand-in for the embedded engine's reader)."""

    def __init__(self, sha: str, rows: np.ndarray):
        self.model_sha256, self.rows, self.asked, self.read = sha, rows, 0, []

    async def read_hidden_states(self, prompts, completions):
        from ponder.backends.hidden_states import HiddenStates

        got = self.rows[self.asked:self.asked + len(completions)]
        self.asked += len(completions)
        self.read += list(completions)
        return HiddenStates(got, tokens=10 * len(completions), reused=5 * (len(completions) - 1))

    async def generate(self, requests):  # a Generator too
        raise AssertionError("scoring generates nothing")


def test_a_bare_probe_scores_with_the_one_shipped_for_the_model(tmp_path, monkeypatch):
    """`probe` with no path finds the probe shipped for the generator's model by its sha256 (ponder serve offers it
    as probe?name=default); a model with none shipped gets a clear error; what reading cost is charged."""
    from ponder.scorers.registry import build_scorer
    from ponder.types import Problem, Trace
    from ponder.verifier import bundled

    x, y = planted()
    monkeypatch.setattr(bundled, "PROBES", tmp_path)
    fit(x, y, model_sha256="a" * 64, model_name="m").save(tmp_path / "m.json")
    (tmp_path / "broken.json").write_text("{not json")
    assert bundled.shipped() == {"a" * 64: tmp_path / "m.json"}
    gen = _StatesOf("a" * 64, x[:3])
    scorer = build_scorer("probe", gen)
    scores = asyncio.run(scorer.score(Problem("q?"), [Trace(text=t) for t in ("1", "2", "3")]))
    assert np.allclose(scores, Probe.load(tmp_path / "m.json").score(x[:3]), atol=1e-6)
    with pytest.raises(InvalidRequest, match="no probe ships for this model"):
        build_scorer("probe", _StatesOf("b" * 64, x[:3]))


def test_training_holds_items_out_before_the_final_fit():
    x, y = planted()
    items = [f"item-{i // 4}" for i in range(len(y))]  # 4 paths an item
    probe = train(Features(x, y, items), model_sha256="a" * 64, model_name="m", trained_on="synthetic")
    assert probe.metrics["heldout_auroc"] > 0.85 and probe.metrics["heldout_paths"] > 40
    assert all(held_out(i, 0.25) == held_out(i, 0.25) for i in items)
    sides = {}
    for i in items:
        sides.setdefault(i, set()).add(held_out(i, 0.25))
    assert all(len(s) == 1 for s in sides.values())  # an item's paths never straddle the split


def test_a_probe_that_sees_answers_learns_from_them_and_the_scorer_hands_them_over(tmp_path):
    """Where the right paths differ only in their answer (integers, the wrong ones fractions or nothing), a probe on
    the states alone is at chance and one that sees answers is not; it keeps that through its file, has its own
    fingerprint, and the scorer gives it each trace's answer (a prefix none)."""
    from ponder.scorers.probe import ProbeScorer
    from ponder.types import Problem, Trace

    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.5).astype(float)
    x = rng.normal(size=(n, 16))  # no signal in the state
    answers = tuple(str(int(rng.integers(1, 500))) if r else rng.choice([None, f"{rng.random() * 100:.2f}"]) for r in y)
    items = [f"item-{i // 4}" for i in range(n)]
    blind = train(Features(x, y, items, (), answers), model_sha256="a" * 64, model_name="m", trained_on="t")
    seeing = train(Features(x, y, items, (), answers), model_sha256="a" * 64, model_name="m", trained_on="t", sees_answer=True)
    assert blind.metrics["heldout_auroc"] < 0.7 < 0.9 < seeing.metrics["heldout_auroc"]
    assert seeing.sees_answer and seeing.dim == 16 + 4 and seeing.fingerprint() != blind.fingerprint()
    again = Probe.load(seeing.save(tmp_path / "s.json"))
    assert again.sees_answer and np.allclose(again.score(again.features(x[:5], answers[:5])),
                                             seeing.score(seeing.features(x[:5], answers[:5])), atol=1e-4)
    with pytest.raises(InvalidRequest, match="answer"):
        train(Features(x, y, items), model_sha256="a" * 64, model_name="m", trained_on="t", sees_answer=True)

    gen = _StatesOf("a" * 64, x[:6])
    scorer = ProbeScorer(gen, str(tmp_path / "s.json"))
    traces = [Trace(text="t", steps=("t",), answer=a) for a in ("12", "1.25", None)]
    got = asyncio.run(scorer.score(Problem("q?"), traces))
    want = seeing.score(seeing.features(x[:3], ["12", "1.25", None]))
    assert np.allclose(got, want, atol=1e-5) and got[0] > got[1]
    path = Trace(text="a\n\nb\n```output\n12\n```", steps=("a", "b"), answer="12")
    steps = asyncio.run(scorer.score_steps(Problem("q?"), [path]))
    assert np.allclose(steps[0], seeing.score(seeing.features(x[3:5], [None, "12"])), atol=1e-5)
    assert gen.read[-2:] == ["a", path.text]  # each step's prefix as the model wrote it; the last with its output


def test_a_candidate_hands_its_voted_answer_to_the_scorer():
    from ponder.strategies.base import make_candidate

    c = make_candidate("so \\boxed{1,200}", tokens=3, finish_reason="eos")
    assert c.trace().answer == c.key == "1200"
    assert make_candidate("no answer here", tokens=3, finish_reason="eos").trace().answer is None


def test_the_whole_path_on_smollm2(engine, tmp_path):
    """A stored run's paths -> SmolLM2's hidden states -> a probe -> the probe scores best_of_n's paths."""
    from ponder.evaluation.runner import EvalConfig, evaluate
    from ponder.scorers.registry import build_scorer
    from ponder.strategies import run
    from ponder.testing import ArithmeticTask, RecordingGenerator
    from ponder.types import Problem
    from ponder.verifier.train import read_features

    store_path = tmp_path / "v.sqlite"
    from ponder.evaluation.store import Store

    store = Store(store_path)
    cfg = EvalConfig(run="v", task="arithmetic", models=("smollm2-135m",), strategies=("majority?n=4&max_tokens=24",), budgets=(4,),
                     limit=6, seed=3, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: RecordingGenerator(engine)))
    feats = asyncio.run(read_features(store, "v", engine, task="ponder.testing:ArithmeticTask"))
    assert feats.x.shape[0] >= 6 and feats.x.shape[1] == 576 and np.isfinite(feats.x).all()
    labels = feats.y.copy()
    if labels.min() == labels.max():  # SmolLM2 may get all of them wrong: plant one label so both classes exist
        labels[0] = 1.0 - labels[0]
    probe = fit(feats.x, labels, model_sha256=engine.model_sha256, model_name="smol", kind="logistic")
    path = probe.save(tmp_path / "probe.json")
    scorer = build_scorer(f"probe?path={path}", engine)
    r = asyncio.run(run("best_of_n?n=3&max_tokens=24&seed=2", Problem("What is 3 + 4?"), engine, scorer=scorer))
    assert all(c.score is not None and 0 <= c.score <= 1 for c in r.candidates)
    assert r.usage.prompt_tokens > 0 and dict(r.extra)["scorer_usage"]["requests"] == 3
    p = subprocess.run([sys.executable, "-m", "ponder", "verifier", "train", "v", "--model", "smollm2-135m", "--db", str(store_path),
                        "--task", "ponder.testing:ArithmeticTask", "--sees-answer", "--out", str(tmp_path / "cli.json")],
                       capture_output=True, text=True, timeout=300)
    if feats.y.min() == feats.y.max():  # nothing to tell apart: a clear refusal, no file
        assert p.returncode != 0 and "right and wrong" in p.stderr and not (tmp_path / "cli.json").exists()
    else:
        assert p.returncode == 0, p.stderr
        assert Probe.load(tmp_path / "cli.json").sees_answer and Probe.load(tmp_path / "cli.json").dim == 576 + 4
    # a probe that also sees the answers: trained on the run's voted answers, scoring executed programs' answers
    assert len(feats.answers) == len(feats.y)
    seeing = train(Features(feats.x, labels, feats.items, (), feats.answers), model_sha256=engine.model_sha256,
                   model_name="smol", trained_on="v", sees_answer=True)
    r = asyncio.run(run("weighted_best_of_n?prompt=pal&n=2&max_tokens=32&seed=2", Problem("What is 3 + 4?"), engine,
                        scorer=build_scorer(f"probe?path={seeing.save(tmp_path / 'seeing.json')}", engine)))
    assert all(c.score is not None and 0 <= c.score <= 1 for c in r.candidates)
    # the same probe guiding beam search over programs: each step prefix read, every path that ends run
    r = asyncio.run(run("beam?prompt=pal&width=2&keep=1&max_depth=2&max_step_tokens=12&max_tokens=40&seed=2",
                        Problem("What is 3 + 4?"), engine, scorer=build_scorer(f"probe?path={tmp_path / 'seeing.json'}", engine)))
    assert r.candidates and all(c.step_scores and all(0 <= s <= 1 for s in c.step_scores) for c in r.candidates)
    assert r.usage.tool_calls == sum(1 for c in r.candidates if c.executions) and dict(r.extra)["scorer_usage"]["requests"] > 0
    wrong = Probe(**{**probe.__dict__, "model_sha256": "0" * 64})
    wrong.save(tmp_path / "other.json")
    with pytest.raises(InvalidRequest, match="sha256"):
        build_scorer(f"probe?path={tmp_path / 'other.json'}", engine)
    p = subprocess.run([sys.executable, "-m", "ponder", "verifier", "eval", "v", "--probe", str(path), "--model", "smollm2-135m",
                        "--db", str(store_path), "--task", "ponder.testing:ArithmeticTask", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["paths"] == len(feats.y) and (report["auroc"] is None or 0 <= report["auroc"] <= 1)
    # a server names its probes: a request names one, never a file
    from fastapi.testclient import TestClient

    from ponder.server import ServeConfig, create_app

    app = create_app(engine, ServeConfig(model_name="smol", probes={"mine": str(path), "other": str(tmp_path / "other.json")}))
    c = TestClient(app)
    ask = lambda scorer: c.post("/v1/chat/completions", json={  # noqa: E731
        "model": "smol", "messages": [{"role": "user", "content": "What is 3 + 4?"}],
        "ponder": {"strategy": "best_of_n?n=2&max_tokens=16&seed=1", "scorer": scorer}})
    for refused in (f"probe?path={path}", "probe?name=nope", "probe", "probe?name=other"):
        r = ask(refused)
        assert r.status_code == 400, (refused, r.text)
    assert "mine, other" in ask("probe?name=nope").json()["error"]["message"]
    assert "sha256" in ask("probe?name=other").json()["error"]["message"]
    r = ask("probe?name=mine")
    assert r.status_code == 200, r.text
    assert all(0 <= c["score"] <= 1 for c in r.json()["ponder"]["choices"][0]["candidates"])


def test_hidden_states_reuse_a_shared_question_and_equal_a_fresh_read(smol_path):
    """A question's paths read one after another evaluate the question once; each state equals the one a fresh
    context reads for that path alone (a causal model: the cache holds exactly the states a fresh read recomputes)."""
    from ponder.backends.hidden_states import HiddenStateReader
    from ponder.backends.llama_model import LlamaModel
    from ponder.types import Prompt

    model = LlamaModel(smol_path)
    question = "A bakery sells 14 muffins at 3 dollars and 23 cakes at 2 dollars. How much does it take in?"
    paths = ["14 * 3 = 42 and 23 * 2 = 46, so 88.", "14 * 3 = 42, 23 * 2 = 46: 42 + 46 = 98.", "It takes in 88 dollars."]
    seqs = [model.encode_prompt(Prompt.chat(question), p) for p in paths]
    shared = min(len(_common(seqs[0], s)) for s in seqs[1:])
    assert shared > len(model.encode_prompt(Prompt.chat(question))) - 2  # the chat-rendered question, at least
    reader = HiddenStateReader(smol_path, n_ctx=1024, n_threads=1)
    try:
        together = reader.read(seqs + [seqs[0]])
        fresh = []
        for s in seqs:
            reader._cached = [-1]  # noqa: SLF001 - forget the cache: the next read evaluates everything
            fresh.append(reader.read([s]))
    finally:
        reader.close()
    assert all(f.reused == 0 for f in fresh)
    np.testing.assert_allclose(together.states[:3], np.vstack([f.states for f in fresh]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(together.states[3], together.states[0], rtol=1e-4, atol=1e-4)
    assert together.tokens == sum(len(s) for s in seqs) + len(seqs[0])
    # each read evaluates only where it departs from the one before: the question is evaluated once
    order = seqs + [seqs[0]]
    assert together.reused == sum(len(_common(a, b)) for a, b in zip(order, order[1:]))
    assert together.reused >= 3 * shared


def _common(a, b):
    from ponder.backends.hidden_states import shared_prefix

    return a[:shared_prefix(a, b)]


def test_a_probes_stored_judgements_are_its_own(tmp_path, monkeypatch):
    """The evaluator stores a scorer's judgements under its name: two probe files never share a name (a retrained
    probe is judged afresh), the same file always has the same one."""
    from ponder.scorers.registry import build_scorer

    x, y = planted()
    one = fit(x, y, model_sha256="a" * 64).save(tmp_path / "one.json")
    two = fit(x[:200], y[:200], model_sha256="a" * 64).save(tmp_path / "two.json")
    names = [build_scorer(f"probe?path={p}", _StatesOf("a" * 64, x)).name for p in (one, two, one)]
    assert names[0] == names[2] != names[1] and all(n.startswith("probe:") for n in names)


def test_every_shipped_probe_loads_and_names_a_registry_model():
    """The probes in ponder/verifier/probes/ are valid probe files, each for a model ponder's registry serves (by
    its verified sha256), reading paths under the instruction they were trained with."""
    from ponder import models
    from ponder.verifier.bundled import shipped

    found = shipped()
    assert found, "no probe ships"
    known = {s.sha256: name for name, s in models.REGISTRY.items()}
    for sha, path in found.items():
        probe = Probe.load(path)
        assert sha in known and probe.model_name == known[sha], (path, probe.model_name)
        assert probe.kind == "logistic" and probe.dim == len(probe.weights) and probe.instruction
        # fitted on hundreds of labelled paths (the 1.5B model's: 480), and small enough to ship
        assert probe.metrics["paths"] >= 400 and path.stat().st_size < 64_000
