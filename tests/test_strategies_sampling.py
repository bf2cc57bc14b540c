"""The sampling strategies' defining logic, proved on a scripted generator."""

import asyncio
import re

import pytest

from ponder.errors import InvalidRequest
from ponder.strategies import available, get, parse_spec, run
from ponder.testing import Scripted, ScriptedGenerator
from ponder.types import Budget, Problem

PROBLEM = Problem("What is 6 * 7?", answer="42")


def go(coro):
    return asyncio.run(coro)


def test_majority_votes_on_normalised_answers_in_one_batch():
    gen = ScriptedGenerator(["6*7 = 42. The answer is 42.", "The answer is 41", "so \\boxed{42.0}", "The answer is $42$",
                             "I am not sure"])
    r = go(run("majority?n=5", PROBLEM, gen, seed=7))
    assert r.answer in ("42", "42.0") and dict(r.votes) == {"42": 3.0, "41": 1.0}
    assert len(gen.calls) == 1 and gen.calls[0][0].n == 5  # one request, one batch of five
    assert gen.calls[0][0].params.seed == 7 and gen.calls[0][0].params.logprobs == 0
    assert r.candidates[4].key is None and r.chosen is not None and r.candidates[r.chosen].key == "42"
    assert r.usage.completion_tokens == sum(c.tokens for c in r.candidates)


def test_majority_breaks_ties_by_summed_confidence_then_first_seen():
    gen = ScriptedGenerator([Scripted("The answer is 1", -2.0), Scripted("The answer is 2", -0.1),
                             Scripted("The answer is 1", -2.0), Scripted("The answer is 2", -0.2)])
    r = go(run("majority?n=4", PROBLEM, gen))
    assert r.answer == "2" and r.candidates[r.chosen].confidence == pytest.approx(-0.1)
    gen = ScriptedGenerator([Scripted("The answer is 1", -0.5), Scripted("The answer is 2", -0.5)])
    assert go(run("majority?n=2", PROBLEM, gen)).answer == "1"


def test_no_answer_at_all_is_reported_as_none():
    r = go(run("majority?n=2", PROBLEM, ScriptedGenerator(["hmm", "no idea"])))
    assert r.answer is None and r.votes == () and r.text in ("hmm", "no idea")  # the trace is still there to read


def test_budget_caps_samples_and_tokens():
    gen = ScriptedGenerator(lambda req, i: "word " * 50 + "The answer is 42")
    r = go(run("majority?n=8&max_tokens=100", PROBLEM, gen, budget=Budget(max_samples=3, max_tokens=90)))
    req = gen.calls[0][0]
    assert req.n == 3 and req.params.max_tokens == 30  # 90 tokens shared by 3 samples
    assert all(c.finish_reason == "length" for c in r.candidates)
    assert r.usage.completion_tokens <= 90


def test_greedy_and_sample_ask_for_one_completion():
    gen = ScriptedGenerator(["The answer is 42", "The answer is 42"])
    g = go(run("greedy", PROBLEM, gen))
    s = go(run("sample?temperature=1.0", PROBLEM, gen))
    assert gen.calls[0][0].params.temperature == 0 and gen.calls[0][0].n == 1
    assert gen.calls[1][0].params.temperature == 1.0 and g.answer == s.answer == "42"


def test_registry_parses_specs_and_rejects_bad_ones():
    assert {"greedy", "sample", "majority"} <= set(available())
    info, params = parse_spec("majority?n=3&temperature=0.2", {"seed": "5"})
    assert info is get("majority") and (params.n, params.temperature, params.seed) == (3, 0.2, 5)
    with pytest.raises(InvalidRequest, match="unknown strategy 'vote'; known strategies: .*majority"):
        parse_spec("vote")
    with pytest.raises(InvalidRequest, match="n: .*greater than or equal to 1"):
        parse_spec("majority?n=0")
    with pytest.raises(InvalidRequest, match="known parameters: .*temperature"):
        parse_spec("majority?widht=3")
    with pytest.raises(InvalidRequest, match="temperature"):
        parse_spec("greedy?temperature=0.5")
    with pytest.raises(InvalidRequest):
        parse_spec("majority?n")


def test_the_prompt_parameter_chooses_the_proposal_distribution(tmp_path):
    from ponder.strategies.prompts import BOXED, PAL

    for spec, expect in (("majority?n=2", PROBLEM.instruction), ("majority?n=2&prompt=boxed", BOXED),
                         ("program?n=1", PAL), ("beam?width=2&max_depth=1&prompt=boxed", BOXED)):
        gen = ScriptedGenerator(lambda req, i: "The answer is \\boxed{42}")
        go(run(spec, PROBLEM, gen))
        assert gen.calls[0][0].prompt.messages[-1].content.endswith(expect), spec
    mine = tmp_path / "mine.txt"
    mine.write_text("Answer in one word.")
    gen = ScriptedGenerator(["The answer is 42"])
    go(run(f"greedy?prompt={mine}", PROBLEM, gen))
    assert gen.calls[0][0].prompt.messages[-1].content.endswith("Answer in one word.")
    gen = ScriptedGenerator(["The answer is 42"])
    go(run("greedy?prompt=none", PROBLEM, gen))
    assert gen.calls[0][0].prompt.messages[-1].content == PROBLEM.question
    with pytest.raises(InvalidRequest, match="prompt must be one of"):
        go(run("greedy?prompt=/nonexistent/file", PROBLEM, ScriptedGenerator(["x"])))


def test_shots_put_bank_exemplars_before_the_question(tmp_path):
    import json

    bank = tmp_path / "bank.jsonl"
    bank.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in [
        ("What is 2 * 3?", "2 * 3 = 6. The answer is 6"), (PROBLEM.question, "never shown: it is the question itself"),
        ("What is 5 + 5?", "5 + 5 = 10. The answer is 10")]))
    gen = ScriptedGenerator(["The answer is 42", "The answer is 42"])
    go(run(f"majority?n=2&shots=2&bank={bank}", PROBLEM, gen))
    msgs = gen.calls[0][0].prompt.messages
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[0].content.startswith("What is 2 * 3?") and msgs[0].content.endswith(PROBLEM.instruction)
    assert msgs[1].content.startswith("2 * 3 = 6") and msgs[3].content.startswith("5 + 5") and "never shown" not in str(msgs)
    with pytest.raises(InvalidRequest, match="fewer than shots=3"):
        go(run(f"greedy?shots=3&bank={bank}", PROBLEM, ScriptedGenerator(["x"])))
    with pytest.raises(InvalidRequest, match="needs bank"):
        go(run("greedy?shots=1", PROBLEM, ScriptedGenerator(["x"])))


# -- the cascade: one registration, a second model opened by name ------------------------------------------------


def test_the_cascade_escalates_only_when_the_first_vote_is_unsure():
    from ponder.backends.router import ModelRouter
    from ponder.errors import InvalidRequest
    from ponder.strategies import run as run_spec

    small = ScriptedGenerator(["The answer is 3.", "The answer is 4.", "The answer is 5.", "The answer is 6."])
    large = ScriptedGenerator(["The answer is 7."])
    opened = []
    router = ModelRouter(small, lambda name: opened.append(name) or large)
    spec = "cascade?large=big&small_spec=majority%3Fn%3D4&min_agreement=0.75"
    r = asyncio.run(run_spec(spec, Problem("3 + 4?"), router))
    assert r.answer == "7" and dict(r.extra)["escalated"] and opened == ["big"] and len(r.candidates) == 5
    assert r.usage.completion_tokens == sum(c.tokens for c in r.candidates)
    sure = ModelRouter(ScriptedGenerator(["The answer is 7."] * 4), lambda name: pytest.fail("escalated"))
    r = asyncio.run(run_spec(spec, Problem("3 + 4?"), sure))
    assert r.answer == "7" and not dict(r.extra)["escalated"]
    with pytest.raises(InvalidRequest, match="open the large model"):
        asyncio.run(run_spec(spec, Problem("3 + 4?"), ScriptedGenerator(["x"])))
    with pytest.raises(InvalidRequest, match="not offered"):
        ModelRouter(small, lambda name: large, allowed={"other"}).for_model("big")
    with pytest.raises(InvalidRequest):
        parse_spec("cascade?large=big&small_spec=telepathy")  # a bad inner spec is refused when parsed


def _sum_asked(req) -> int:
    a, b = re.findall(r"(\d+) \+ (\d+)", req.prompt.messages[-1].content)[0]
    return int(a) + int(b)


def test_the_evaluator_gives_a_cascade_the_model_it_escalates_to(tmp_path):
    from ponder.evaluation.runner import EvalConfig, evaluate
    from ponder.evaluation.store import Store
    from ponder.testing import ArithmeticTask

    opened = []
    gens = {"small": ScriptedGenerator(lambda req, i: f"The answer is {i}."),
            "big": ScriptedGenerator(lambda req, i: "The answer is %d." % _sum_asked(req))}

    def open_model(name):
        opened.append(name)
        return gens[name]

    store = Store(tmp_path / "c.sqlite")
    cfg = EvalConfig(run="c", task="arithmetic", models=("small",), strategies=("cascade?large=big&small_spec=majority%3Fn%3D2",),
                     budgets=(1,), limit=2, seed=1, workers=1)
    asyncio.run(evaluate(store, ArithmeticTask(), cfg, open_model))
    rows = store.results("c")
    assert opened == ["small", "big"] and len(rows) == 2 and {r["model"] for r in rows} == {"small"}
    assert [r["correct"] for r in rows] == [1.0, 1.0]  # the small model never agrees with itself; the large one sums
