"""The evaluator end to end on SmolLM2: every task family, the store, resume after a kill, metrics, the report."""

import asyncio
import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from ponder.evaluation.metrics import bootstrap_ci, mean_pass_at_k, pass_at_k
from ponder.evaluation.report import coverage, export, summarize, write_report
from ponder.evaluation.runner import EvalConfig, evaluate
from ponder.evaluation.store import Store
from ponder.tasks import load_task
from ponder.testing import RecordingGenerator
from ponder.errors import InvalidRequest


def test_pass_at_k_matches_hand_computed_cases():
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=4, c=1, k=3: 1 - C(3,3)/C(4,3) = 1 - 1/4
    assert pass_at_k(4, 1, 3) == pytest.approx(0.75)
    assert pass_at_k(3, 0, 3) == 0.0 and pass_at_k(3, 1, 3) == 1.0
    assert mean_pass_at_k([(4, 1), (4, 0)], 1) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1, 0, 0, 1, 1, 0, 1, 1, 0, 1]
    a, b = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    assert a == b and a[1] <= a[0] <= a[2] and a[0] == pytest.approx(0.6)
    spread = [0.1 * i ** 1.3 for i in range(30)]
    assert bootstrap_ci(spread, seed=4) != bootstrap_ci(spread, seed=5)  # the seed is really used


def run_eval(engine, store, task, strategies, budgets, limit=2, run="r"):
    cfg = EvalConfig(run=run, task=task.name, models=("smol",), strategies=strategies, budgets=budgets, limit=limit, seed=1, workers=2)
    return asyncio.run(evaluate(store, task, cfg, lambda m: RecordingGenerator(engine)))


def test_jsonl_task_grid_store_and_rerun(engine, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"question": "What is 2 + 2?", "answer": "4"}, {"question": "What is 3 + 5?", "answer": 8, "id": "b"},
        {"question": "Capital of France?", "answer": "Paris", "checker": "contains"}]) + "\n")
    store = Store(tmp_path / "eval.sqlite")
    task = load_task(f"jsonl:{data}")
    strategies = ("greedy?max_tokens=32", "majority?max_tokens=32")
    p = run_eval(engine, store, task, strategies, (1, 2, 4), limit=3)
    assert p.total == 3 * (1 + 3) and p.done == p.total and p.skipped == 0
    rows = store.results("r")
    assert len(rows) == 12
    maj = [r for r in rows if r["strategy"] == "majority"]
    # budgets reuse samples: 4 drawn per item, budget k reads the first k
    assert {r["n_candidates"] for r in maj} == {1, 2, 4}
    samples = list(store.all_samples("r"))
    assert len(samples) == 3 * (4 + 1)  # 4 sampled draws and greedy's one completion per item
    from ponder.evaluation.store import unpack_logprobs

    for s in samples:  # every generated token's logprob is kept (float32), and the confidence is their mean
        lps = unpack_logprobs(s["token_logprobs"])
        assert len(lps) == s["tokens"] and all(x <= 0 for x in lps)
        assert sum(lps) / len(lps) == pytest.approx(s["confidence"], abs=1e-5)
    by_item = {}
    for r in maj:
        by_item.setdefault(r["item"], {})[r["budget"]] = r["completion_tokens"]
    for toks in by_item.values():
        assert toks[1] <= toks[2] <= toks[4]
    again = run_eval(engine, store, task, strategies, (1, 2, 4), limit=3)
    assert again.skipped == again.total  # nothing recomputed
    # weighted best-of-n reads the same samples and adds only one judgement per sample
    before = engine.stats.completion_tokens
    cfg = EvalConfig(run="r", task=task.name, models=("smol",), strategies=("weighted_best_of_n?max_tokens=32",),
                     budgets=(1, 2, 4), limit=3, seed=1, workers=2, scorer="confidence")
    asyncio.run(evaluate(store, task, cfg, lambda m: RecordingGenerator(engine)))
    assert engine.stats.completion_tokens == before and len(list(store.all_samples("r"))) == 15
    assert store.db.execute("SELECT count(*) FROM scores").fetchone()[0] == 12
    assert len(store.results("r")) == 12 + 3 * 3
    summary = summarize(store, "r")
    assert {(s["strategy"], s["budget"]) for s in summary} >= {("greedy", 1), ("majority", 1), ("majority", 2), ("majority", 4)}
    drawn = {}  # per item, whether each sampled draw (temperature > 0) is right, in draw order
    for s in samples:
        if json.loads(s["params"])["temperature"] > 0:
            drawn.setdefault(s["item"], []).append(s["correct"] > 0)
    for s in summary:
        if s["strategy"] == "majority":  # a right answer among the first k draws, read from the samples themselves
            assert s["any_correct"] == sum(any(d[:s["budget"]]) for d in drawn.values()) / len(drawn) >= s["accuracy"]
    cov = coverage(store, "r")
    assert [k for k, _ in cov[("smol", "samples")]] == [1, 2, 4]
    paths = write_report(store, "r", tmp_path / "report")
    for name in ("accuracy_vs_tokens.png", "coverage.png", "accuracy_vs_seconds.png"):
        assert paths[name].stat().st_size > 5000 and paths[name].read_bytes()[:4] == b"\x89PNG"
    page = paths["report.html"].read_text()
    assert page.count("<tr><td>smol</td><td>majority</td>") == 3 and "<td>greedy</td>" in page
    out = export(store, "r", tmp_path / "r.csv")
    assert len(list(csv.DictReader(out.open()))) == 21
    assert len(export(store, "r", tmp_path / "r.jsonl").read_text().splitlines()) == 21


def test_reasoning_gym_humaneval_and_custom_tasks(engine, tmp_path):
    store = Store(tmp_path / "e.sqlite")
    rg = load_task("rg:chain_sum?min_terms=2&max_terms=2")
    run_eval(engine, store, rg, ("greedy?max_tokens=48",), (1,), limit=2, run="rg")
    assert len(store.results("rg")) == 2
    problem = rg.problems(2, 1)[0]
    assert rg.score(problem, f"The answer is {problem.answer}") == 1.0 and rg.score(problem, "no idea") == 0.0
    he = load_task("humaneval")
    run_eval(engine, store, he, ("greedy?max_tokens=64",), (1,), limit=1, run="he")
    assert len(store.results("he")) == 1
    p0 = he.problems(1, 0)[0]
    canonical = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
    assert he.score(p0, canonical) == 1.0 and he.score(p0, "    return True\n") == 0.0
    custom = load_task("ponder.testing:ArithmeticTask")
    run_eval(engine, store, custom, ("majority?max_tokens=32",), (1, 2), limit=2, run="custom")
    assert len(store.results("custom")) == 4
    with pytest.raises(InvalidRequest):
        load_task("nope")
    with pytest.raises(InvalidRequest, match="does not exist"):
        load_task("jsonl:/no/such/file.jsonl")


def test_a_killed_run_resumes_without_losing_or_duplicating(smol_path, tmp_path):
    db = tmp_path / "kill.sqlite"
    cmd = [sys.executable, "-m", "ponder", "eval", "--task", "ponder.testing:ArithmeticTask", "--model", "smollm2-135m",
           "--strategies", "greedy?max_tokens=24,majority?max_tokens=24", "--budgets", "1,2", "--limit", "8",
           "--workers", "1", "--run", "k", "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_end = time.monotonic() + 240
    n = 0
    while time.monotonic() < t_end:
        time.sleep(0.3)
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= 4:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert 4 <= n < 24, n
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "already stored" in done.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 8 * 3
    assert con.execute("SELECT count(DISTINCT item || strategy || budget) FROM results").fetchone()[0] == 24
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 8 * (2 + 1)  # two draws and the greedy one per item
    rep = subprocess.run([sys.executable, "-m", "ponder", "report", "k", "--db", str(db), "--out", str(tmp_path / "rep")],
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0 and (tmp_path / "rep" / "report.html").exists()


FRACTAL = """```python
def transform(g):
    n = len(g)
    out = [[0] * (n * n) for _ in range(n * n)]
    for i in range(n):
        for j in range(n):
            if g[i][j]:
                for a in range(n):
                    for b in range(n):
                        out[i * n + a][j * n + b] = g[a][b]
    return out
```"""


def test_arc_direct_and_program_search(engine, tmp_path):
    direct = load_task("arc:training")
    p = direct.problems(1, 0)[0]
    assert p.id == "007bbfb7" and "Test input:" in p.question
    assert direct.score(p, "I think:\n" + p.answer) == 1.0 and direct.score(p, "0 0\n0 0") == 0.0
    prog = load_task("arc-program:training")
    q = prog.problems(1, 0)[0]
    assert prog.score(q, FRACTAL) == 1.0  # reproduces every training pair and the test output
    assert prog.score(q, "```python\ndef transform(g):\n    return g\n```") == 0.0
    assert prog.score(q, "```python\nimport os\nos.kill(os.getppid(), 9)\n```") == 0.0  # in the sandbox
    # the code verifier filters candidate programs on the training pairs alone
    from ponder.scorers.code import CodeVerifier
    from ponder.types import Trace

    assert asyncio.run(CodeVerifier().score(q, [Trace.of(FRACTAL), Trace.of("def transform(g): return g")])) == [1.0, 0.0]
    store = Store(tmp_path / "arc.sqlite")
    run_eval(engine, store, direct, ("greedy?max_tokens=64",), (1,), limit=1, run="arc")
    run_eval(engine, store, prog, ("verified_sampling?batch=2&max_tokens=64",), (2,), limit=1, run="arcp")
    assert len(store.results("arc")) == 1 and len(store.results("arcp")) == 1


def test_policy_fit_learns_a_policy_that_auto_follows(engine, tmp_path):
    from ponder.evaluation.policy_fit import Policy, fit_policy
    from ponder.strategies import run as run_strategy
    from ponder.testing import ArithmeticTask

    store = Store(tmp_path / "plan.sqlite")
    task = ArithmeticTask()
    run_eval(engine, store, task, ("greedy?max_tokens=32", "majority?max_tokens=32"), (1, 2, 4), limit=4, run="p")
    policy = fit_policy(store, "p", probe=2, cost_weight=0.0)
    assert policy.bins and sum(b.items for b in policy.bins) == 4
    # on the data it was fitted on, choosing per bin is never worse than the best single fixed choice (cost weight 0)
    policy_acc = sum(b.accuracy * b.items for b in policy.bins) / sum(b.items for b in policy.bins)
    choosable = [row for row in summarize(store, "p") if not (row["strategy"] == "majority" and row["budget"] < 2)]
    assert policy_acc >= max(row["accuracy"] for row in choosable) - 1e-9
    path = policy.save(tmp_path / "policy.json")
    assert Policy.load(path) == policy
    r = asyncio.run(run_strategy(f"auto?policy={path}&max_tokens=32&seed=3", task.problems(1, 7)[0], engine))
    extra = dict(r.extra)
    assert extra["policy_choice"] in {f"{b.strategy}@{b.budget}" for b in policy.bins} and 0 <= extra["difficulty"] <= 1
    with pytest.raises(InvalidRequest, match="cannot read the policy"):
        asyncio.run(run_strategy(f"auto?policy={tmp_path / 'missing.json'}", task.problems(1, 7)[0], engine))


def test_policy_fit_compares_options_on_the_same_items_only(tmp_path):
    """A strategy stored for only some items of a bin (a run still in progress), or in several variants, must not
    win the bin on its subset; ``strategies`` limits the options."""
    from ponder.evaluation.policy_fit import fit_policy
    from ponder.evaluation.store import Key

    store = Store(tmp_path / "partial.sqlite")
    draw = '{"temperature": 0.7}'
    for i in range(4):  # four items, all with split probes (agreement 0.5)
        item = f"q{i}"
        store.put_samples(Key("r", "t", item, "m", "samples", draw, 0), [
            {"idx": j, "text": "", "answer": str(j % 2), "key": str(j % 2), "tokens": 10, "finish": "eos", "confidence": None,
             "score": None, "correct": 0.0, "prompt_tokens": 5, "seconds": 0.1} for j in range(4)])

        def result(strategy, params, budget, correct, tokens):
            store.put_result(Key("r", "t", item, "m", strategy, params, 0), budget, {
                "answer": "x", "reference": "y", "correct": correct, "prompt_tokens": 5, "cached_prompt_tokens": 0,
                "completion_tokens": tokens, "seconds": 0.1, "n_candidates": 1, "n_correct": int(correct), "stopped_by": None})

        result("majority", draw, 4, 1.0 if i < 2 else 0.0, 40)  # 0.5 on all four items
        if i == 0:
            result("weighted_best_of_n", draw, 16, 1.0, 160)  # perfect, but only on one item
        for criterion in ("beta", "esc"):  # two variants of one strategy: ambiguous, never an option
            result("adaptive_majority", f'{{"criterion": "{criterion}"}}', 16, 1.0, 80)
        result("sample", draw, 1, 0.25 * (i == 3), 10)
    policy = fit_policy(store, "r", probe=4, cost_weight=0.0)
    [b] = policy.bins
    assert (b.strategy, b.budget, b.items, b.accuracy) == ("majority", 4, 4, 0.5)
    [b] = fit_policy(store, "r", probe=4, cost_weight=0.0, strategies={"sample"}).bins
    assert (b.strategy, b.items) == ("sample", 4)


def test_scored_rows_count_the_judges_tokens_and_old_stores_are_judged_again(engine, tmp_path):
    """weighted_best_of_n at budget k costs its k samples plus judging those k; a store from before judge costs were
    recorded gains the columns, and its unpriced judgements are made again rather than counted as free."""
    from ponder.testing import ArithmeticTask

    db = tmp_path / "judged.sqlite"
    task = ArithmeticTask()
    run_eval(engine, Store(db), task, ("majority?max_tokens=24", "weighted_best_of_n?max_tokens=24"), (1, 2), limit=1, run="j")
    store = Store(db)
    rows = {(r["strategy"], r["budget"]): r for r in store.results("j")}
    judged = store.db.execute("SELECT idx, prompt_tokens, completion_tokens, seconds FROM scores ORDER BY idx").fetchall()
    assert len(judged) == 2 and all(r["prompt_tokens"] > 0 and r["completion_tokens"] == 1 and r["seconds"] > 0 for r in judged)
    for b in (1, 2):
        m, w = rows[("majority", b)], rows[("weighted_best_of_n", b)]
        assert w["prompt_tokens"] == m["prompt_tokens"] + sum(r["prompt_tokens"] for r in judged[:b])
        assert w["completion_tokens"] == m["completion_tokens"] + b
        # and the judgements' time: the row's seconds are its samples' plus its judgements' shares of the scoring call
        assert w["seconds"] == pytest.approx(m["seconds"] + sum(r["seconds"] for r in judged[:b]))
        assert w["seconds"] > m["seconds"]
    # an older store: judgements without their cost, and rows derived from them that left the judge out
    with store.db:
        store.db.execute("UPDATE scores SET prompt_tokens = NULL, cached_prompt_tokens = NULL, completion_tokens = NULL")
        store.db.execute("UPDATE results SET prompt_tokens = 1, completion_tokens = 1 WHERE strategy = 'weighted_best_of_n'")
    before = engine.stats.requests
    run_eval(engine, Store(db), task, ("weighted_best_of_n?max_tokens=24",), (1, 2), limit=1, run="j")
    assert engine.stats.requests - before == 2  # the two samples judged again, none drawn again
    again = {r["budget"]: r for r in Store(db).results("j") if r["strategy"] == "weighted_best_of_n"}
    for b in (1, 2):  # the stale rows were derived again, with the judge's tokens
        assert again[b]["prompt_tokens"] == rows[("weighted_best_of_n", b)]["prompt_tokens"]
        assert again[b]["completion_tokens"] == rows[("weighted_best_of_n", b)]["completion_tokens"]
    assert len(again) == 2
    before = engine.stats.requests
    run_eval(engine, Store(db), task, ("weighted_best_of_n?max_tokens=24",), (1, 2), limit=1, run="j")
    assert engine.stats.requests == before  # now priced: nothing is judged or derived again


def test_a_store_from_before_judge_costs_gains_the_columns(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute("""CREATE TABLE scores (run TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL, model TEXT NOT NULL,
                   strategy TEXT NOT NULL, params TEXT NOT NULL, seed INTEGER NOT NULL, idx INTEGER NOT NULL,
                   scorer TEXT NOT NULL, score REAL, PRIMARY KEY (run, task, item, model, strategy, params, seed, idx, scorer))""")
    con.execute("INSERT INTO scores VALUES ('r','t','i','m','samples','{}',0,0,'judge',0.8)")
    con.commit()
    con.close()
    from ponder.evaluation.store import Key

    assert Store(db).scores(Key("r", "t", "i", "m", "samples", "{}", 0), "judge") == {0: (0.8, None)}
    # a store that recorded a judgement's tokens before its time: the tokens count, the time reads as 0
    store = Store(db)
    with store.db:
        store.db.execute("UPDATE scores SET prompt_tokens = 40, cached_prompt_tokens = 0, completion_tokens = 1")
    [(score, usage)] = store.scores(Key("r", "t", "i", "m", "samples", "{}", 0), "judge").values()
    assert (score, usage.prompt_tokens, usage.completion_tokens, usage.seconds) == (0.8, 40, 1, 0.0)


def test_a_store_from_before_token_logprobs_keeps_its_samples_and_takes_new_ones(tmp_path):
    import sqlite3

    from ponder.evaluation.store import SCHEMA, Key, unpack_logprobs

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA)  # the samples table as it was: no token_logprobs column
    con.execute("INSERT INTO samples VALUES ('r','t','i','m','samples','{}',0,0,'x',NULL,NULL,1,'eos',-0.5,NULL,0,3,0.1)")
    con.commit()
    con.close()
    store = Store(db)
    key = Key("r", "t", "i", "m", "samples", "{}", 0)
    row = dict(text="y", answer="2", key="2", tokens=2, finish="eos", confidence=-0.25, score=None, correct=1.0,
               prompt_tokens=0, seconds=0.1)
    store.put_samples(key, [{**row, "idx": 1, "token_logprobs": (-0.25, -0.25)}, {**row, "idx": 2}])
    old, new, none = store.samples(key)
    assert old["text"] == "x" and old["token_logprobs"] is None
    assert unpack_logprobs(new["token_logprobs"]) == (-0.25, -0.25) and none["token_logprobs"] is None


def test_policy_choice_by_agreement():
    from ponder.evaluation.policy_fit import Bin, Policy

    p = Policy(4, 0.0, (Bin(0.5, "majority", 16, 3, 0.3, 900), Bin(1.0 + 1e-9, "greedy", 1, 5, 0.9, 80)), "x")
    assert p.choose(0.25).strategy == "majority" and p.choose(1.0).strategy == "greedy" and p.choose(0.75).budget == 1


def test_adaptive_strategies_replay_the_shared_samples(engine, tmp_path):
    """adaptive_majority and auto run for real, but their sample requests are served from the stored draws of the
    fixed-budget vote (sample i = seed + i): no new tokens, costs equal to the draws they consumed, and a variant
    label per criterion in the summary."""
    from ponder.evaluation.replay import ReplayGenerator
    from ponder.testing import ArithmeticTask
    from ponder.types import GenerationRequest, SamplingParams

    store = Store(tmp_path / "replay.sqlite")
    task = ArithmeticTask()
    run_eval(engine, store, task, ("majority?max_tokens=32",), (8,), limit=3, run="a")
    before = engine.stats.completion_tokens
    run_eval(engine, store, task, ("adaptive_majority?max_tokens=32&batch=2", "adaptive_majority?max_tokens=32&batch=2&criterion=esc&window=3",
                                   "auto?max_tokens=32&effort=low"), (8,), limit=3, run="a")
    assert engine.stats.completion_tokens == before  # everything came from the store
    samples = {}
    for s in store.all_samples("a"):
        samples.setdefault(s["item"], []).append(s)
    rows = [r for r in store.results("a") if r["strategy"] in ("adaptive_majority", "auto")]
    assert len(rows) == 3 * 3 and {r["budget"] for r in rows if r["strategy"] == "auto"} == {1}
    for r in rows:
        used = samples[r["item"]][: r["n_candidates"]]
        assert r["completion_tokens"] == sum(s["tokens"] for s in used) and r["seconds"] > 0
        assert r["n_candidates"] <= 8 and r["n_correct"] == sum(1 for s in used if s["correct"] > 0)
    labels = {s["strategy"] for s in summarize(store, "a")}
    assert {"adaptive_majority?criterion=esc&window=3", "adaptive_majority?criterion=beta&window=4", "auto", "majority"} <= labels
    # a request no stored set answers yet (another temperature) is drawn once on the live model and stored, then replayed
    from ponder.evaluation.runner import Evaluator

    problem = task.problems(1, 1)[0]
    ev = Evaluator(store, task, EvalConfig(run="a", task=task.name, models=("smol",), strategies=(), seed=1))
    replay = ReplayGenerator(ev, "smol", RecordingGenerator(engine), problem)
    [c] = asyncio.run(replay.generate([GenerationRequest(problem.prompt(), n=2, params=SamplingParams(temperature=0.7, top_p=0.95, top_k=40, max_tokens=32, seed=1, logprobs=0))]))
    assert replay.served == 2 and engine.stats.completion_tokens == before
    hot = GenerationRequest(problem.prompt(), n=1, params=SamplingParams(temperature=1.0, max_tokens=8, seed=1))
    [c2] = asyncio.run(replay.generate([hot]))
    drew = engine.stats.completion_tokens
    assert drew > before and c2.samples[0].n_tokens <= 8
    [c3] = asyncio.run(replay.generate([hot]))
    assert engine.stats.completion_tokens == drew and c3.samples[0].text == c2.samples[0].text  # stored, then replayed
    # a prefix continuation is never a shared draw: it goes to the live model
    [c4] = asyncio.run(replay.generate([GenerationRequest(problem.prompt(), n=1, prefix="Let me think.",
                                                          params=SamplingParams(temperature=0.0, max_tokens=4))]))
    assert engine.stats.completion_tokens > drew


def test_greedy_first_adaptive_vote_replays_the_stored_greedy_and_sampled_draws(engine, tmp_path):
    """adaptive_majority?greedy_first: its greedy request is served the stored greedy completion and its sampled
    requests the fixed vote's draws from the first on; its cost is the greedy draw's tokens plus the sampled ones'."""
    from ponder.testing import ArithmeticTask

    store = Store(tmp_path / "anchor.sqlite")
    task = ArithmeticTask()
    run_eval(engine, store, task, ("greedy?max_tokens=32", "majority?max_tokens=32"), (8,), limit=3, run="g")
    before = engine.stats.completion_tokens
    run_eval(engine, store, task, ("adaptive_majority?max_tokens=32&batch=2&greedy_first=true&give_up_after=4",), (8,), limit=3, run="g")
    assert engine.stats.completion_tokens == before  # all from the store
    draws: dict[tuple[str, str], list] = {}
    for s in store.all_samples("g"):
        draws.setdefault((s["item"], '"temperature": 0.0' in s["params"]), []).append(s)
    rows = [r for r in store.results("g") if r["strategy"] == "adaptive_majority"]
    assert len(rows) == 3
    for r in rows:
        [greedy] = draws[(r["item"], True)]
        used = [greedy] + draws[(r["item"], False)][: r["n_candidates"] - 1]
        assert 2 <= r["n_candidates"] <= 8 and r["completion_tokens"] == sum(s["tokens"] for s in used)
        assert r["n_correct"] == sum(1 for s in used if s["correct"] > 0)


def test_deepconf_replays_stored_draws_cut_where_the_engine_would_cut_them(engine, tmp_path):
    """deepconf on the evaluator: its warm-up and confidence-stopped requests are served the fixed vote's stored
    draws, the stopped ones cut after the token where the stored logprobs' window falls below the threshold (what
    the engine does while decoding), so its cost is the tokens a live run would generate, and no token is new."""
    from ponder.evaluation.replay import ReplayGenerator, confidence_stop_at
    from ponder.evaluation.runner import Evaluator
    from ponder.evaluation.store import unpack_logprobs
    from ponder.testing import ArithmeticTask
    from ponder.types import GenerationRequest, SamplingParams

    store = Store(tmp_path / "deepconf.sqlite")
    task = ArithmeticTask()
    run_eval(engine, store, task, ("majority?max_tokens=32",), (8,), limit=3, run="d")
    before = engine.stats.completion_tokens
    run_eval(engine, store, task, ("deepconf?max_tokens=32&warmup=2&keep_percent=50&window=4&consensus=none",), (8,), limit=3, run="d")
    assert engine.stats.completion_tokens == before
    draws: dict[str, list] = {}
    for s in store.all_samples("d"):
        draws.setdefault(s["item"], []).append(s)
    rows = [r for r in store.results("d") if r["strategy"] == "deepconf"]
    assert len(rows) == 3 and all(r["n_candidates"] == 8 for r in rows)
    full = sum(s["tokens"] for r in rows for s in draws[r["item"]])
    warm = sum(s["tokens"] for r in rows for s in draws[r["item"]][:2])
    assert warm < sum(r["completion_tokens"] for r in rows) < full  # some later draws were cut, none of the warm-up
    # with the consensus stop (a low bar, so that some item may settle): rounds of 2 replay a prefix of the same
    # stream, each draw cut alike, so a row costs at most the full run's tokens, and nothing new is generated
    run_eval(engine, store, task, ("deepconf?max_tokens=32&warmup=2&keep_percent=50&window=4&batch=2&consensus=0.51",), (8,),
             limit=3, run="d")
    assert engine.stats.completion_tokens == before
    settled = {r["item"]: r for r in store.results("d") if r["strategy"] == "deepconf" and '"consensus": 0.51' in r["params"]}
    assert len(settled) == 3
    for r in rows:
        s = settled[r["item"]]
        assert s["n_candidates"] in (2, 4, 6, 8) and s["completion_tokens"] <= r["completion_tokens"]
        assert (s["n_candidates"] == 8) == (s["completion_tokens"] == r["completion_tokens"])
    # the cut itself: a confidence-stopped request gets each draw cut at confidence_stop_at of its stored logprobs
    problem = task.problems(1, 1)[0]
    ev = Evaluator(store, task, EvalConfig(run="d", task=task.name, models=("smol",), strategies=(), seed=1))
    replay = ReplayGenerator(ev, "smol", RecordingGenerator(engine), problem)
    stored = draws[problem.id]
    lps = [unpack_logprobs(s["token_logprobs"]) for s in stored]
    threshold = sorted(sum(x[:4]) / 4 for x in lps)[4]  # a window-4 threshold that cuts some draws and not others
    p = SamplingParams(temperature=0.7, top_p=0.95, top_k=40, max_tokens=32, seed=1, logprobs=0, confidence_stop=(4, threshold))
    [c] = asyncio.run(replay.generate([GenerationRequest(problem.prompt(), n=8, params=p)]))
    assert engine.stats.completion_tokens == before
    for sample, s, x in zip(c.samples, stored, lps, strict=True):
        cut = confidence_stop_at(x, 4, threshold)
        assert (sample.finish_reason, sample.n_tokens) == (("low_confidence", cut) if cut else (s["finish"], s["tokens"]))
    assert {s.finish_reason for s in c.samples} >= {"low_confidence"} and c.usage.completion_tokens == sum(s.n_tokens for s in c.samples)


def test_mcts_curve_costs_one_search_to_its_largest_budget(engine, tmp_path):
    """mcts is anytime: the evaluator runs one search to the largest budget's iterations and stores its answer
    after each smaller budget's iterations, each costed up to there. Separate searches per budget would have
    generated every row's tokens; the one search generates the largest row's and only the completions made to
    answer early, so strictly less than the rows' sum whenever an early answer shares any step with the search."""
    from ponder.testing import ArithmeticTask

    store = Store(tmp_path / "mcts.sqlite")
    spec = "mcts?expand=2&max_depth=2&max_step_tokens=16&max_tokens=32"
    before = engine.stats.completion_tokens
    p = run_eval(engine, store, ArithmeticTask(), (spec,), (1, 2, 4), limit=1, run="m")
    spent = engine.stats.completion_tokens - before
    rows = {r["budget"]: r for r in store.results("m")}
    assert p.done == p.total == 3 and sorted(rows) == [1, 2, 4]
    assert all(r["completion_tokens"] > 0 and r["prompt_tokens"] > 0 and r["seconds"] > 0 for r in rows.values())
    # the judge's verdicts are counted: one verdict token per judged step, on top of what the search generated
    assert rows[4]["completion_tokens"] <= spent < sum(r["completion_tokens"] for r in rows.values())
    assert rows[1]["seconds"] <= rows[4]["seconds"] and rows[2]["seconds"] <= rows[4]["seconds"]
    again = run_eval(engine, store, ArithmeticTask(), (spec,), (1, 2, 4), limit=1, run="m")
    assert again.skipped == again.total and engine.stats.completion_tokens - before == spent


def test_a_prompt_template_gets_its_own_shared_samples_and_its_replays(engine, tmp_path):
    """majority?prompt=boxed draws its own shared set (not the default prompt's), and an adaptive rule with the
    same prompt is replayed on exactly that set, asking the live model for nothing."""
    from ponder.testing import ArithmeticTask

    store = Store(tmp_path / "prompt.sqlite")
    rec = RecordingGenerator(engine)
    base = dict(run="pr", task="arithmetic", models=("smol",), budgets=(2,), limit=1, seed=2, workers=1)
    specs = ("majority?max_tokens=24", "majority?max_tokens=24&prompt=boxed")
    asyncio.run(evaluate(store, ArithmeticTask(), EvalConfig(strategies=specs, **base), lambda m: rec))
    assert len(rec.calls) == 2 and "boxed" in rec.calls[1][0].prompt.messages[-1].content
    drawn = len(rec.calls)
    adaptive = "adaptive_majority?max_tokens=24&prompt=boxed&batch=1&threshold=0.5"
    asyncio.run(evaluate(store, ArithmeticTask(), EvalConfig(strategies=(*specs, adaptive), **base), lambda m: rec))
    assert len(rec.calls) == drawn
    assert any(r["strategy"] == "adaptive_majority" for r in store.results("pr"))


def test_an_exemplar_bank_from_a_run_holds_only_verified_paths_of_other_items(engine, tmp_path):
    """`ponder traces exemplars`: the stored paths the task's scorer marked right, one per item, none from the
    items another run evaluated; the bank then feeds shots= on new questions."""
    from typer.testing import CliRunner

    from ponder.cli import app
    from ponder.testing import ArithmeticTask

    store = Store(tmp_path / "bank.sqlite")
    run_eval(engine, store, ArithmeticTask(), ("majority?max_tokens=40",), (4,), limit=4, run="train")
    run_eval(engine, store, ArithmeticTask(), ("greedy?max_tokens=40",), (1,), limit=2, run="heldout")
    out = tmp_path / "bank.jsonl"
    r = CliRunner().invoke(app, ["traces", "exemplars", "train", "--db", str(tmp_path / "bank.sqlite"), "--out", str(out),
                                 "--exclude-run", "heldout", "--task", "ponder.testing:ArithmeticTask"])
    assert r.exit_code == 0, r.output
    bank = [json.loads(line) for line in out.read_text().splitlines()]
    right = {s["item"] for s in store.all_samples("train") if s["correct"] > 0}
    held = {r["item"] for r in store.results("heldout")}
    assert bank and {e["item"] for e in bank} == right - held and len(bank) == len({e["item"] for e in bank})
    tasks = {p.id: p for p in ArithmeticTask().problems(4, 1)}
    for e in bank:
        assert e["question"] == tasks[e["item"]].question and ArithmeticTask().score(tasks[e["item"]], e["answer"]) == 1.0


def test_a_cut_off_path_abstains_and_stored_rows_are_derived_again(tmp_path):
    """A path that ran into max_tokens votes only for an answer it stated; rows stored under older rules are derived
    again from the stored samples (nothing generated), so every row of a store reads answers alike."""
    from ponder.evaluation.runner import Evaluator
    from ponder.evaluation.store import Key
    from ponder.strategies import run
    from ponder.testing import ArithmeticTask, ScriptedGenerator
    from ponder.types import Problem

    texts = ["The answer is 4.", "so far 10 + 20 = 30 and then 99", "so far 10 + 20 = 30 and then 99"]
    gen = ScriptedGenerator(lambda req, i: texts[i % 3])
    store = Store(tmp_path / "cut.sqlite")
    cfg = EvalConfig(run="c", task="arithmetic", models=("m",), strategies=("majority?max_tokens=8",), budgets=(3,), limit=1,
                     seed=1, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: gen))
    [row] = store.results("c")
    assert row["answer"] == "4" and row["correct"] == 1.0  # the two cut-off paths' "99" does not outvote it
    r = asyncio.run(run("majority?n=3&max_tokens=8", Problem("1 + 3?"), ScriptedGenerator(lambda req, i: texts[i % 3])))
    assert r.answer == "4" and dict(r.extra)["cut_off_abstained"] == 2
    key = Key("c", "arithmetic", row["item"], "m", "majority", row["params"], 1)
    store.put_result(key, 3, {**dict(row), "answer": "99", "correct": 0.0}, replace=True)  # as an older rule stored it
    ev = Evaluator(store, ArithmeticTask(), cfg)
    assert ev.rederive("m", ArithmeticTask().problems(1, 1)) == 1 and len(gen.calls) == 1
    [again] = store.results("c")
    assert again["answer"] == "4" and again["correct"] == 1.0


def test_a_runs_named_scorer_is_part_of_its_results_key(tmp_path):
    """Two runs of one scored strategy under different scorers keep two sets of results (neither is skipped as
    done, neither passes for the other); a strategy that uses no scorer is stored once whatever the run names."""
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    texts = ["The answer is 4.", "The answer is 5.", "The answer is 4."]
    gen = ScriptedGenerator(lambda req, i: texts[i % 3])
    store = Store(tmp_path / "s.sqlite")
    for scorer in ("confidence", "reference", "reference"):
        cfg = EvalConfig(run="s", task="arithmetic", models=("m",), strategies=("weighted_best_of_n?max_tokens=8", "majority?max_tokens=8"),
                         budgets=(3,), limit=1, seed=1, workers=1, scorer=scorer)
        asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: gen))
    rows = store.results("s")
    scored = sorted(json.loads(r["params"]).get("scorer") for r in rows if r["strategy"] == "weighted_best_of_n")
    assert scored == ["confidence", "reference"]
    assert [json.loads(r["params"]).get("scorer") for r in rows if r["strategy"] == "majority"] == [None]
    assert len(gen.calls) == 1  # one draw of 3 samples served every row: judging adds no generation here


def test_stored_samples_reach_a_scorer_with_the_answers_they_vote_for():
    """The evaluator's replay hands a scorer the traces a live run would: each with its answer (phase 13's probe,
    which reads the printed answer, was handed none before this)."""
    from ponder.evaluation.runner import stored_candidates

    def row(text, key, prompt):
        return {"text": text, "answer": key, "key": key, "tokens": 5, "finish": "eos", "confidence": -0.1,
                "params": json.dumps({"prompt": prompt})}

    programs = stored_candidates([row("print(6 * 7)\n```output\n42\n```", "42", "pal"), row("oops", None, "pal")])
    assert [c.trace().answer for c in programs] == ["42", None]
    paths = stored_candidates([row("so the answer is 1,200.", "stale", None)])
    assert paths[0].trace().answer == "1200"  # chain of thought: read again by today's rules


def test_each_result_records_how_busy_the_rest_of_the_machine_was(tmp_path):
    """A result measured while another process kept a core busy says so (other_cpu, the summary's `contended`),
    and the processor it ran on (the summary's `machine`); a row derived again from its stored samples keeps what
    was measured when they were drawn."""
    from ponder.evaluation.contention import cpu_model
    from ponder.evaluation.runner import Evaluator
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    class SlowGenerator(ScriptedGenerator):
        async def generate(self, requests):
            await asyncio.sleep(1.5)  # the model "decodes" while the spinner below holds a core
            return await super().generate(requests)

    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 30: pass"])
    try:
        time.sleep(0.3)
        store = Store(tmp_path / "busy.sqlite")
        cfg = EvalConfig(run="b", task="arithmetic", models=("m",), strategies=("majority?max_tokens=8",), budgets=(2,),
                         limit=1, seed=1, workers=1)
        asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: SlowGenerator(["The answer is 4."] * 2)))
    finally:
        spinner.kill()
        spinner.wait()
    [row] = store.results("b")
    assert row["other_cpu"] >= 0.5, row["other_cpu"]
    [summary] = summarize(store, "b")
    assert summary["contended"] == 1.0
    assert row["machine"] == summary["machine"] == cpu_model() and cpu_model()
    store.db.execute("UPDATE results SET machine='an older machine'")  # as if measured elsewhere, then derived here
    Evaluator(store, ArithmeticTask(), cfg).rederive("m", ArithmeticTask().problems(1, 1))
    [again] = store.results("b")
    assert again["other_cpu"] == row["other_cpu"] and again["machine"] == "an older machine"
    # a busy-machine row can be dropped so that a resumed run measures it again; a quiet one stays
    assert store.delete_contended("b", "m", "majority", row["params"], cores=row["other_cpu"] + 0.1) == 0
    assert store.delete_contended("b", "m", "majority", row["params"], cores=0.5) == 1 and not store.results("b")


def test_a_fixed_checker_rescores_stored_samples_and_strategy_runs(tmp_path):
    """After a fix to a task's checker, the stored texts are scored again (nothing generated): samples, and a
    strategy run's candidates with its chosen one's `correct` and its `n_correct`; shared-sample rows follow their
    samples when derived again."""
    from ponder.evaluation.runner import Evaluator
    from ponder.evaluation.store import Key
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    texts = ["The answer is 4.", "The answer is -4.", "The answer is -4."]
    store = Store(tmp_path / "r.sqlite")
    cfg = EvalConfig(run="r", task="arithmetic", models=("m",), strategies=("majority?max_tokens=8",), budgets=(3,),
                     limit=1, seed=1, workers=1)
    lenient = ArithmeticTask()
    lenient.score = lambda problem, text: 1.0 if "4" in text else 0.0  # a checker that drops the sign
    asyncio.run(evaluate(store, lenient, cfg, lambda m: ScriptedGenerator(lambda req, i: texts[i % 3])))
    [row] = store.results("r")
    assert row["answer"] == "-4" and row["correct"] == 1.0
    key = Key("r", "arithmetic", row["item"], "m", "beam", "{}", 1)
    cands = [{"text": t, "answer": t.split()[-1].rstrip(".")} for t in texts]
    store.put_result(key, 2, {"trace": {"candidates": cands, "chosen": 1, "answer": "-4"}, "answer": "-4", "reference": "4",
                              "correct": 1.0, "prompt_tokens": 1, "cached_prompt_tokens": 0, "completion_tokens": 3,
                              "seconds": 1.0, "n_candidates": 3, "n_correct": 3, "stopped_by": None})
    problems = ArithmeticTask().problems(1, 1)
    assert problems[0].answer == "4"
    ev = Evaluator(store, ArithmeticTask(), cfg)
    assert ev.rescore(problems) == (2, 1)
    assert ev.rederive("m", problems) == 1
    rows = {r["strategy"]: r for r in store.results("r")}
    assert rows["majority"]["correct"] == 0.0 and rows["majority"]["n_correct"] == 1
    assert rows["beam"]["correct"] == 0.0 and rows["beam"]["n_correct"] == 1
    assert ev.rescore(problems) == (0, 0)  # scored by today's checker already


def test_resuming_a_finished_run_loads_no_model(tmp_path):
    """A run whose every result is stored opens no model when it is run again (its model may be gone: an adapter
    trained on another machine); an unfinished one opens it once."""
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    opened = []

    def opener(model):
        opened.append(model)
        return ScriptedGenerator(lambda req, i: "The answer is 4.")

    store = Store(tmp_path / "f.sqlite")
    cfg = EvalConfig(run="f", task="arithmetic", models=("m",), strategies=("majority?max_tokens=8",), budgets=(1, 3),
                     limit=2, seed=1, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, opener))
    assert opened == ["m"] and len(store.results("f")) == 4
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, opener))
    assert opened == ["m"]


def test_a_replayed_rule_drawing_live_counts_those_draws_seconds_once(tmp_path):
    """An adaptive rule is evaluated on a replay of the shared samples; where none are stored yet it draws them live,
    inside its own run. Their generation time is then already in the run's wall time and must not be added again as
    replayed time (it was: a row's seconds came out near twice the wall time it took)."""
    from ponder.testing import ArithmeticTask, ScriptedGenerator

    store = Store(tmp_path / "live.sqlite")
    gen = ScriptedGenerator(lambda req, i: "so " * 20 + "The answer is 4", seconds_per_token=0.01)
    config = EvalConfig(run="r", task="arithmetic", models=("m",), strategies=("adaptive_majority?max_tokens=64",),
                        budgets=(4,), limit=2, seed=0, workers=1)
    t0 = time.monotonic()
    asyncio.run(evaluate(store, ArithmeticTask(), config, lambda m: gen))
    wall = time.monotonic() - t0
    rows = store.results("r")
    assert len(rows) == 2 and all(r["completion_tokens"] > 0 for r in rows)
    assert sum(r["seconds"] for r in rows) <= wall  # each draw's time counted once (twice would exceed the wall)
    assert all(r["seconds"] >= 0.2 for r in rows)  # and counted: 24 decoding steps of 0.01 s at least
    # replayed on a second run of the same rule at another budget, the stored draws' time is what the row costs
    asyncio.run(evaluate(store, ArithmeticTask(), EvalConfig(**{**config.as_dict(), "budgets": (2, 4)}), lambda m: gen))
    assert all(r["seconds"] >= 0.2 for r in store.results("r"))
