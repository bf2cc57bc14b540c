"""program (program-aided reasoning): programs in one batch, each run through the Executor, a vote over what
they print. Proved on a scripted generator and executor, then on the real sandbox, the real engine and the
evaluator."""

import asyncio
import os

import pytest

from ponder.evaluation.runner import EvalConfig, evaluate, prefix_result
from ponder.evaluation.store import Store
from ponder.sandbox.executor import SandboxExecutor
from ponder.strategies import parse_spec, run
from ponder.strategies.sampling import choose_by_vote as vote
from ponder.strategies.programs import PAL_INSTRUCTION, program
from ponder.testing import ArithmeticTask, RecordingGenerator, ScriptedExecutor, ScriptedGenerator, ScriptedScorer
from ponder.types import Budget, Execution, Problem

PROBLEM = Problem("A bakery sells 14 muffins at 3 dollars and 23 cookies at 2 dollars. How much money?", answer="88")


def block(code: str) -> str:
    return f"Let me compute it.\n```python\n{code}\n```"


def printed(code: str) -> str:
    """A scripted run: evaluate the print(...) argument, as Python would."""
    inner = code.split("print(", 1)[1].rsplit(")", 1)[0]
    return f"{eval(inner)}\n"


def go(spec, gen, executor, **kw):
    info, params = parse_spec(spec, kw.pop("overrides", None))
    return asyncio.run(program(PROBLEM, gen, None, kw.pop("budget", Budget()), params, executor=executor))


def test_programs_are_run_and_their_printed_answers_vote():
    gen = ScriptedGenerator([block("print(14 * 3 + 23 * 2)"), block("print(98)"), block("print(42 + 46)"),
                             "The answer is 98.", block("raise ValueError('oops')\nprint(1)"), block("x = 1")])
    ex = ScriptedExecutor(lambda code: (_ for _ in ()).throw(ValueError("oops")) if "raise" in code else
                          (printed(code) if "print" in code else ""))
    r = go("program?n=6", gen, ex)
    assert r.answer == "88" and dict(r.votes) == {"88": 2.0, "98": 1.0}
    assert len(ex.calls) == 1 and len(ex.calls[0]) == 5  # one batch; the reply with no code is not run
    assert dict(r.extra) == {"programs": 6, "ran": 5, "failed": 1, "abstained": 3}
    c0 = r.candidates[0]
    assert c0.executions[0].code == "print(14 * 3 + 23 * 2)\n" and c0.executions[0].stdout == "88\n"
    assert "```output\n88\n```" in c0.text and c0.text.rstrip().endswith("\\boxed{88}.")
    assert r.candidates[3].key is None and r.candidates[3].executions == ()  # prose is no program: it abstains
    assert r.candidates[4].key is None and "oops" in r.candidates[4].text  # the error is in the trace
    assert r.candidates[5].key is None  # ran, printed nothing
    assert r.usage.tool_calls == 5 and r.usage.tool_seconds == pytest.approx(0.05)


def test_one_batch_with_the_greedy_program_first_and_the_pal_instruction():
    gen = ScriptedGenerator(lambda req, i: block("print(88)"))
    go("program?n=4&seed=11&temperature=0.8", gen, ScriptedExecutor(printed))
    [call] = gen.calls
    assert [(r.n, r.params.temperature) for r in call] == [(1, 0.0), (3, 0.8)] and call[1].params.seed == 11
    assert PAL_INSTRUCTION in call[0].prompt.messages[-1].content
    gen = ScriptedGenerator(lambda req, i: block("print(88)"))
    go("program?n=3&greedy_first=false", gen, ScriptedExecutor(printed))
    assert [(r.n, r.params.temperature) for r in gen.calls[0]] == [(3, 0.7)]


def test_budgets_hold_and_a_spent_deadline_still_runs_briefly():
    gen = ScriptedGenerator(lambda req, i: block("print(88)") + " pad" * 40)
    r = go("program?n=8&max_tokens=100", gen, ScriptedExecutor(printed), budget=Budget(max_samples=3, max_tokens=60))
    assert len(r.candidates) == 3 and r.usage.completion_tokens <= 60


def test_a_hostile_program_is_contained_by_the_real_sandbox():
    gen = ScriptedGenerator([block("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(1)"),
                             block("import ctypes\nctypes.CDLL(None).system(b'touch /tmp/ponder-owned')\nprint(2)"),
                             block("while True:\n    pass"), block("print(14 * 3 + 23 * 2)")])
    r = go("program?n=4&wall_seconds=1", gen, SandboxExecutor())
    assert r.answer == "88" and os.getpid() > 0 and not os.path.exists("/tmp/ponder-owned")
    assert [c.executions[0].error for c in r.candidates[:3]][2] == "timeout"
    assert all(c.key is None for c in r.candidates[:3])


def test_prefix_results_vote_over_the_first_k_programs():
    gen = ScriptedGenerator([block("print(88)"), block("print(98)"), block("print(98)"), block("print(88)")])
    r = go("program?n=4", gen, ScriptedExecutor(printed))
    one, three = prefix_result(r, 1, vote), prefix_result(r, 3, vote)
    assert one.answer == "88" and len(one.candidates) == 1 and one.usage.requests == 1
    assert three.answer == "98" and three.usage.completion_tokens == sum(c.tokens for c in r.candidates[:3])
    assert three.usage.tool_calls == 3 and prefix_result(r, 4, vote).usage.completion_tokens == r.usage.completion_tokens


@pytest.mark.e2e
def test_program_on_smollm2_through_the_engine_and_the_sandbox(engine):
    rec = RecordingGenerator(engine)
    r = asyncio.run(run("program?n=3&max_tokens=64&seed=3", Problem("What is 6 * 7? Print it."), rec))
    assert len(r.candidates) == 3 and len(rec.calls) == 1 and r.usage.completion_tokens > 0
    ran = [c for c in r.candidates if c.executions]
    assert dict(r.extra)["ran"] == len(ran) == r.usage.tool_calls
    for c in ran:
        e = c.executions[0]
        assert isinstance(e, Execution) and e.seconds > 0 and "```output" in c.text


@pytest.mark.e2e
def test_the_evaluator_runs_one_program_batch_for_all_budgets(engine, tmp_path):
    store = Store(tmp_path / "p.sqlite")
    rec = RecordingGenerator(engine)
    cfg = EvalConfig(run="p", task="arith", models=("smol",), strategies=("program?max_tokens=48",), budgets=(1, 2, 4),
                     limit=2, seed=5, workers=2)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: rec))
    rows = store.results("p")
    assert sorted((r["item"], r["budget"]) for r in rows) == sorted((i, b) for i in {r["item"] for r in rows} for b in (1, 2, 4))
    assert {r["n_candidates"] for r in rows} == {1, 2, 4}
    assert len(rec.calls) == 2 and all(sum(q.n for q in call) == 4 for call in rec.calls)  # one batch of 4 per item
    by = {(r["item"], r["budget"]): r for r in rows}
    for item in {r["item"] for r in rows}:
        assert by[(item, 1)]["completion_tokens"] <= by[(item, 2)]["completion_tokens"] <= by[(item, 4)]["completion_tokens"]
    calls = len(rec.calls)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: rec))
    assert len(rec.calls) == calls  # resumed: nothing recomputed


@pytest.mark.e2e
def test_program_from_the_cli_and_the_server(smol_path, engine):
    import json
    import subprocess
    import sys

    import httpx

    from ponder.server import ServeConfig, create_app
    from test_server import Q, Served

    p = subprocess.run([sys.executable, "-m", "ponder", "ask", "What is 6 * 7?", "--model", "smollm2-135m", "-s", "program",
                        "--n", "2", "--max-tokens", "48", "--seed", "2", "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["strategy"] == "program" and len(out["candidates"]) == 2 and "tool_calls" in out["usage"]
    app = create_app(engine, ServeConfig(model_name="smol", max_n=2))
    with Served(app) as s:
        r = httpx.post(s.url + "/chat/completions", json={"model": "program-2/smol", "messages": Q, "max_tokens": 48}, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ponder"]["strategy"] == "program" and len(body["ponder"]["choices"][0]["candidates"]) == 2


# -- tir ---------------------------------------------------------------------------------------------------------

FIRST = "The muffins and cookies:\n```python\nprint(14 * 3 + 23 * 2)\n```\n"


def model_writing(*segments: str):
    """A scripted model that writes ``segments[k]`` after it has seen k output blocks (the last one forever after);
    each call continues from the request's prefix, as the engine does."""
    def script(req, i):
        seen = req.prefix.count("```output\n")
        since = req.prefix
        if seen:
            since = req.prefix.rsplit("```output\n", 1)[1].partition("```\n")[2]
        seg = segments[min(seen, len(segments) - 1)]
        assert seg.startswith(since), (seg, since)
        return seg[len(since):]
    return script


def tool_script(after_output: str, first: str = FIRST):
    return model_writing(first, after_output)


def run_tir(spec, gen, executor, budget=None):
    from ponder.strategies.programs import tir

    info, params = parse_spec(spec)
    return asyncio.run(tir(PROBLEM, gen, None, budget or Budget(), params, executor=executor))


def test_tir_runs_a_block_appends_its_output_and_continues_from_the_prefix():
    gen = ScriptedGenerator(tool_script("So the bakery made \\boxed{88} dollars."))
    ex = ScriptedExecutor(printed)
    r = run_tir("tir?n=1", gen, ex)
    assert r.answer == "88" and dict(r.extra)["tool_calls"] == 1 and r.usage.tool_calls == 1
    prefixes = [call[0].prefix for call in gen.calls]
    # stopped at the opening fence, then at the closing one (the block ran), then decoded on after the output
    assert prefixes[0] == "" and prefixes[1].endswith("```") and prefixes[2].endswith("```output\n88\n```\n")
    assert all(call[0].params.stop == ("```",) for call in gen.calls)
    c = r.candidates[0]
    assert c.executions[0].code == "print(14 * 3 + 23 * 2)\n" and "```output\n88\n```" in c.text
    assert c.steps[0].endswith("```output\n88\n```\n") and "boxed{88}" in c.steps[-1]


def test_an_erring_block_gets_its_error_back_and_the_model_can_fix_it():
    script = model_writing("Compute:\n```python\nprint(totl)\n```\n", "Fixed:\n```python\nprint(14 * 3 + 23 * 2)\n```\n",
                           "\\boxed{88}")

    def run_it(code):
        if "totl" in code:
            raise NameError("name 'totl' is not defined")
        return printed(code)

    r = run_tir("tir?n=1", ScriptedGenerator(script), ScriptedExecutor(run_it))
    c = r.candidates[0]
    assert [e.ok for e in c.executions] == [False, True] and "NameError: name 'totl' is not defined" in c.text
    assert r.answer == "88" and dict(r.extra)["failed"] == 1


def test_max_calls_is_honoured():
    script = model_writing("Again:\n```python\nprint(1)\n```\n")  # another block after every output, forever
    gen = ScriptedGenerator(script)
    ex = ScriptedExecutor(printed)
    r = run_tir("tir?n=1&max_calls=2&max_tokens=200", gen, ex)
    assert len(ex.calls) == 2 and len(r.candidates[0].executions) == 2
    assert gen.calls[-1][0].params.stop == ()  # once the calls are spent, the rest decodes as text


def test_n_traces_each_step_on_their_own():
    """A trace whose block has run goes on decoding while another's long segment is still decoding: nobody waits for
    a round to finish. Seeds as before: the greedy trace first, then seed + 1, seed + 2."""
    import time

    started: dict[str, float] = {}

    def script(req, i):
        if req.params.temperature == 0:  # the greedy trace thinks aloud for a long time and computes nothing
            return "word " * 200 + "\\boxed{88}"
        if "```output" in req.prefix:
            started.setdefault(f"continued {req.params.seed}", time.monotonic())
        return tool_script("\\boxed{88}")(req, i)

    gen = ScriptedGenerator(script, seconds_per_token=0.005)  # the greedy trace's one segment: 1 s
    t0 = time.monotonic()
    r = run_tir("tir?n=3&seed=5", gen, ScriptedExecutor(printed))
    wall = time.monotonic() - t0
    assert r.answer == "88" and all(len(call) == 1 for call in gen.calls)
    assert wall >= 1.0 and all(t - t0 < 0.6 for t in started.values()) and len(started) == 2, (wall, started)
    firsts = {(c[0].params.seed, c[0].params.temperature) for c in gen.calls if c[0].prefix == ""}
    assert firsts == {(None, 0.0), (6, 0.7), (7, 0.7)}
    assert [len(c.executions) for c in r.candidates] == [0, 1, 1]


def test_a_hostile_block_is_contained():
    first = "```python\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n```\n"
    r = run_tir("tir?n=1&wall_seconds=2", ScriptedGenerator(tool_script("No luck.", first)), SandboxExecutor())
    e = r.candidates[0].executions[0]
    assert not e.ok and os.getpid() > 0 and "```output" in r.candidates[0].text


def test_tir_budgets_hold():
    gen = ScriptedGenerator(tool_script("word " * 50 + "\\boxed{88}"))
    r = run_tir("tir?n=4", gen, ScriptedExecutor(printed), budget=Budget(max_tokens=60))
    assert r.usage.completion_tokens <= 60 and r.stopped_by == "max_tokens"


@pytest.mark.e2e
def test_tir_on_smollm2_continues_from_the_cached_prefix(engine):
    rec = RecordingGenerator(engine)
    r = asyncio.run(run("tir?n=2&max_tokens=96&seed=4", Problem("Use Python to compute 123 * 45."), rec))
    assert len(r.candidates) == 2 and r.usage.completion_tokens > 0
    assert all(len(call) <= 2 for call in rec.calls)
    if len(rec.calls) > 1:  # a continuation round: its prompt and prefix came from the cache
        assert r.usage.cached_prompt_tokens > 0


# -- answers by execution in every sampling strategy, and replays over program draws -----------------------------


def test_majority_and_adaptive_majority_with_the_pal_prompt_vote_on_executed_answers():
    gen = ScriptedGenerator([block("print(14 * 3 + 23 * 2)"), block("print(42 + 46)"), block("print(98)"), "It is 98."])
    ex = ScriptedExecutor(printed)
    info, params = parse_spec("majority?n=4&prompt=pal")
    r = asyncio.run(info.run(PROBLEM, gen, None, Budget(), params))  # the default executor is the real sandbox
    assert r.answer == "88" and dict(r.votes) == {"88": 2.0, "98": 1.0} and r.usage.tool_calls == 3
    assert PAL_INSTRUCTION in gen.calls[0][0].prompt.messages[-1].content
    assert r.candidates[0].completion == block("print(14 * 3 + 23 * 2)") and "\\boxed{88}" in r.candidates[0].text
    from ponder.strategies.adaptive import adaptive_majority

    gen = ScriptedGenerator(lambda req, i: block("print(14 * 3 + 23 * 2)"))
    _, params = parse_spec("adaptive_majority?prompt=pal&batch=2&max_samples=16&threshold=0.8")
    r = asyncio.run(adaptive_majority(PROBLEM, gen, None, Budget(), params, executor=ex))
    assert r.answer == "88" and len(r.candidates) == 2 and len(ex.calls) == 1  # agreeing programs settle at once
    _, params = parse_spec("majority?n=2")  # a text prompt: nothing is executed
    r = asyncio.run(parse_spec("majority")[0].run(PROBLEM, ScriptedGenerator(["The answer is 88."] * 2), None, Budget(), params))
    assert r.answer == "88" and r.usage.tool_calls == 0


def _summing_programs(req, i):
    """A scripted model that writes the program summing the question's two numbers (ArithmeticTask's questions)."""
    import re

    a, b = re.findall(r"\d+", req.prompt.messages[-1].content.split("?")[0])[-2:]
    return block(f"print({a} + {b})")


def test_the_evaluator_stores_program_draws_so_adaptive_rules_replay_them_and_banks_read_them(tmp_path):
    from ponder.traces.exemplars import build_bank

    store = Store(tmp_path / "draws.sqlite")
    rec = RecordingGenerator(ScriptedGenerator(_summing_programs))
    adaptive = "adaptive_majority?prompt=pal&greedy_first=true&batch=2&max_tokens=48"
    cfg = EvalConfig(run="d", task="arithmetic", models=("scripted",), strategies=("program?max_tokens=48",),
                     budgets=(1, 2, 4), limit=2, seed=5, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: rec))
    drawn = len(rec.calls)
    assert drawn == 2  # one batch per item
    samples = list(store.all_samples("d"))
    assert len(samples) == 2 * 4 and all(s["correct"] == 1.0 and "```output" not in s["text"] for s in samples)
    assert sorted({s["idx"] for s in samples}) == [0, 1, 2]  # a greedy set (idx 0) and a sampled set (idx 0-2)
    cfg2 = EvalConfig(**{**cfg.__dict__, "strategies": ("program?max_tokens=48", adaptive)})
    asyncio.run(evaluate(store, ArithmeticTask(), cfg2, lambda m: rec))
    assert len(rec.calls) == drawn  # the adaptive rule was served the stored programs and executed them again
    rows = [r for r in store.results("d") if r["strategy"] == "adaptive_majority"]
    assert len(rows) == 2 * 3 and all(r["correct"] == 1.0 for r in rows)
    assert {r["n_candidates"] for r in rows if r["budget"] == 4} == {4}  # beta at 0.95 wants all four
    bank = build_bank(store, "d", task="ponder.testing:ArithmeticTask")
    assert len(bank) == 2 and all(e["answer"].startswith("Let me compute it.\n```python") for e in bank)


def test_an_adaptive_rule_with_nothing_stored_draws_once_for_all_its_budgets(tmp_path):
    store = Store(tmp_path / "once.sqlite")
    rec = RecordingGenerator(ScriptedGenerator(lambda req, i: block(f"print({i % 2})")))  # never settles
    cfg = EvalConfig(run="o", task="arithmetic", models=("scripted",), budgets=(2, 4), limit=1, seed=5, workers=1,
                     strategies=("adaptive_majority?prompt=pal&greedy_first=true&batch=2&max_tokens=48",))
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, lambda m: rec))
    drawn = sum(q.n for call in rec.calls for q in call)
    assert drawn == 4  # budget 2's draws are stored and replayed at budget 4, which draws only the 2 more it needs
    assert len(list(store.all_samples("o"))) == 4
    assert sorted(r["n_candidates"] for r in store.results("o")) == [2, 4]


# -- tree search over programs: a block of code a step, every finished path run ---------------------------------


def _program_steps(req, i):
    """A scripted model writing a program a block at a time: its first block sets the numbers (two variants), the
    second prints the sum; the model stops at each blank line, as tree search asks."""
    if not req.prefix:
        return ["```python\na = 14 * 3\n\n", "```python\na = 14 * 4\n\n"][i % 2]
    return "b = a + 23 * 2\nprint(b)\n```"


def _exec_here(code: str) -> str:
    """A scripted run of the test's own (trusted) programs in this process: what they print."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    return out.getvalue()


def test_beam_over_programs_runs_each_finished_path_and_its_scorer_sees_the_output():
    from ponder.strategies.tree import beam

    ex = ScriptedExecutor(_exec_here)
    seen = []

    class Scorer(ScriptedScorer):
        async def score_steps(self, problem, traces):
            seen.extend((t.text, t.answer, t.step_prefixes()) for t in traces)
            return await super().score_steps(problem, traces)

    scorer = Scorer(step=lambda s: 0.9 if "14 * 3" in s else 0.4)
    _, params = parse_spec("beam?prompt=pal&width=2&keep=1&max_depth=3")
    gen = ScriptedGenerator(_program_steps)
    r = asyncio.run(beam(PROBLEM, gen, scorer, Budget(), params, executor=ex))
    assert r.answer == "88" and r.candidates[r.chosen].executions[0].stdout == "88\n"
    assert PAL_INSTRUCTION in gen.calls[0][0].prompt.messages[-1].content and gen.calls[0][0].params.stop == ("\n\n",)
    assert "\\boxed{88}" in r.candidates[r.chosen].text and r.candidates[r.chosen].completion.endswith("```")
    assert len(ex.calls) == 1 and len(ex.calls[0]) == 2  # the finished paths of one expansion run in one batch
    assert r.usage.tool_calls == 2
    # the open prefix is judged without an answer; a finished path with its output and its printed answer
    open_, done = [s for s in seen if s[1] is None], [s for s in seen if s[1] is not None]
    assert open_ and all("```output" not in text for text, _, _ in open_)
    assert {a for _, a, _ in done} == {"88"} and all("```output\n88\n```" in text for text, _, _ in done)
    text, _, prefixes_ = done[0]
    assert prefixes_[0] == "```python\na = 14 * 3" and prefixes_[-1] == text  # step prefixes keep the blank lines


def test_a_tree_path_the_budget_leaves_unfinished_is_run_too_and_a_text_prompt_runs_nothing():
    from ponder.strategies.tree import beam, mcts

    ex = ScriptedExecutor(lambda code: "42\n" if "print" in code else "")
    _, params = parse_spec("beam?prompt=pal&width=2&keep=1&max_depth=4")
    gen = ScriptedGenerator(lambda req, i: "```python\nx = 42\n\n" if not req.prefix else "print(x)\n\n")
    r = asyncio.run(beam(PROBLEM, gen, ScriptedScorer(step=lambda s: 0.5), Budget(max_samples=3), params, executor=ex))
    assert r.candidates and all(c.executions for c in r.candidates if "print" in c.completion)
    assert r.answer == "42" and r.usage.tool_calls == len(r.candidates)
    _, params = parse_spec("mcts?prompt=pal&iterations=3&expand=2")
    r = asyncio.run(mcts(PROBLEM, ScriptedGenerator(lambda req, i: "```python\nprint(42)\n```"), ScriptedScorer(step=lambda s: 0.5),
                         Budget(), params, executor=ex))
    assert r.answer == "42" and all(c.executions for c in r.candidates)
    ex = ScriptedExecutor(lambda code: "7\n")
    _, params = parse_spec("beam?width=2&keep=1")  # chain of thought: nothing is executed
    r = asyncio.run(beam(PROBLEM, ScriptedGenerator(lambda req, i: "print(7)\nThe answer is 8."), ScriptedScorer(step=lambda s: 0.5),
                         Budget(), params, executor=ex))
    assert r.answer == "8" and ex.calls == [] and r.usage.tool_calls == 0
