"""Scorers end to end: the judge and confidence on the real SmolLM2 model, the reward client against a real
scoring server on loopback, reference checking with math-verify."""

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ponder.errors import BackendError, InvalidRequest
from ponder.scorers.confidence import ConfidenceScorer
from ponder.scorers.judge import JudgeScorer
from ponder.scorers.reference import ReferenceScorer, equivalent
from ponder.scorers.registry import build_scorer
from ponder.scorers.reward_http import RewardHTTPScorer
from ponder.types import GenerationRequest, Problem, Prompt, SamplingParams, Trace

from conftest import free_port

Q = Problem("What is 2 + 2?", answer="4")


def test_judge_scores_with_p_yes_from_logprobs(engine):
    judge = JudgeScorer(engine)
    right, wrong = asyncio.run(judge.score(Q, [Trace.of("2 + 2 = 4. The answer is 4."), Trace.of("2 + 2 = 5. The answer is 5.")]))
    assert right is not None and wrong is not None and 0 <= wrong <= 1 and 0 <= right <= 1
    steps = Trace("2 + 2 = 4\n\nThe answer is 4", ("2 + 2 = 4", "The answer is 4"))
    [per_step] = asyncio.run(judge.score_steps(Q, [steps]))
    assert len(per_step) == 2 and all(0 <= s <= 1 for s in per_step)
    asked = judge.judgements
    asyncio.run(judge.score_steps(Q, [steps]))  # memoised: the same step prefixes are not judged again
    assert judge.judgements == asked


def test_confidence_from_real_logprobs(engine):
    [c] = engine.generate_sync([GenerationRequest(Prompt.chat("Say hi."), params=SamplingParams(temperature=0, max_tokens=8, logprobs=0))])
    lps = [t.logprob for t in c.samples[0].logprobs]
    [mean] = asyncio.run(ConfidenceScorer().score(Q, [Trace.of(c.samples[0].text, lps)]))
    [low] = asyncio.run(ConfidenceScorer("lowest_window", window=2).score(Q, [Trace.of(c.samples[0].text, lps)]))
    assert 0 < low <= mean <= 1
    assert asyncio.run(ConfidenceScorer().score(Q, [Trace.of("no logprobs")])) == [None]


def test_reference_scorer_and_task_checkers():
    s = ReferenceScorer()
    assert asyncio.run(s.score(Q, [Trace.of("The answer is 4.0"), Trace.of("\\boxed{5}")])) == [1.0, 0.0]
    assert asyncio.run(s.score(Problem("?"), [Trace.of("4")])) == [None]
    checked = Problem("?", answer="4", metadata=(("checker", lambda text: 0.5),))
    assert asyncio.run(s.score(checked, [Trace.of("4")])) == [0.5]  # the task's checker wins
    assert equivalent("\\frac{3}{6}", "0.5") and not equivalent("0.51", "0.5")


# -- a real reward-model server on loopback ---------------------------------------------------------------------

def make_reward_app() -> FastAPI:
    """Speaks vLLM's pooling and classify endpoints; judges a step good unless it mentions 'wrong'."""
    app = FastAPI()
    app.state.calls = 0

    @app.post("/v1/pooling")
    async def pooling(body: dict):
        app.state.calls += 1
        out = []
        for i, text in enumerate(body["input"]):
            steps = text.split("<extra_0>")[1:]  # question first; one separator after every step
            parts = text.split("<extra_0>")[:-1]
            rows = [[0.9, 0.1] if "wrong" in p else [0.2, 0.8] for p in parts]
            assert len(rows) == len(steps)
            out.append({"index": i, "object": "pooling", "data": rows})
        return {"object": "list", "data": out, "model": body["model"]}

    @app.post("/v1/classify")
    async def classify(body: dict):
        if body["model"] == "fail":
            return {"error": "x"}
        return {"data": [{"index": i, "probs": [0.3, 0.7] if "4" in t else [0.95, 0.05]} for i, t in enumerate(body["input"])]}

    return app


@pytest.fixture(scope="module")
def reward_server():
    port = free_port()
    app = make_reward_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(10)


def test_prm_client_scores_every_step(reward_server):
    url, app = reward_server
    prm = build_scorer(f"reward?url={url}&kind=prm")
    traces = [Trace("a\n\nb", ("first step", "second step")), Trace("x", ("fine", "this is wrong", "after"))]
    assert asyncio.run(prm.score_steps(Q, traces)) == [[0.8, 0.8], [0.8, 0.1, 0.8]]
    assert asyncio.run(prm.score(Q, traces)) == [0.8, 0.8]  # outcome = last step
    assert app.state.calls == 2


def test_orm_client_and_errors(reward_server):
    url, _ = reward_server
    orm = RewardHTTPScorer(url, kind="orm")
    assert asyncio.run(orm.score(Q, [Trace.of("The answer is 4"), Trace.of("The answer is 5")])) == [0.7, 0.05]
    assert asyncio.run(orm.score_steps(Q, [Trace.of("x")])) == [None]
    with pytest.raises(BackendError, match="returned no results"):
        asyncio.run(RewardHTTPScorer(url, kind="orm", model="fail").score(Q, [Trace.of("4")]))
    with pytest.raises(InvalidRequest):
        build_scorer("reward?url=ftp://x")
    with pytest.raises(InvalidRequest, match="url"):
        build_scorer("reward")


def test_a_judge_scorers_spending_is_in_the_result_once_even_nested(tmp_path):
    """Every judge request is in the Result's usage: counted exactly against the generator's own requests, once,
    also when the scored strategy runs inside another (auto's policy, the cascade)."""
    from ponder.evaluation.policy_fit import Bin, Policy
    from ponder.strategies import run
    from ponder.strategies.cascade import cascade
    from ponder.testing import ScriptedGenerator

    def answer(req, i):
        return "Yes" if req.params.max_tokens == 1 else f"The answer is {i % 2}"

    gen = ScriptedGenerator(answer)
    r = asyncio.run(run("weighted_best_of_n?n=3&seed=1", Problem("What is x?"), gen))
    assert sum(len(call) for call in gen.calls) == 4 and r.usage.requests == 4  # one sampling request and three verdicts
    assert dict(r.extra)["scorer_usage"]["requests"] == 3 and r.usage.completion_tokens == sum(c.tokens for c in r.candidates) + 3
    outer = ScriptedGenerator(answer)
    r2 = asyncio.run(cascade(Problem("What is x?"), outer, outer, small_spec="weighted_best_of_n?n=3&seed=1",
                             large_spec="weighted_best_of_n?n=2&seed=1", min_agreement=1.01))
    assert r2.usage.requests == sum(1 for call in outer.calls for _ in call) == 4 + 3
    path = Policy(2, 0.0, (Bin(1.0 + 1e-9, "weighted_best_of_n", 2, 1, 1.0, 10),), "t").save(tmp_path / "p.json")
    nested = ScriptedGenerator(answer)
    r3 = asyncio.run(run(f"auto?policy={path}&seed=1", Problem("What is x?"), nested))
    assert dict(r3.extra)["policy_choice"] == "weighted_best_of_n@2"
    assert r3.usage.requests == sum(1 for call in nested.calls for _ in call)


def test_judge_spending_matches_what_the_engine_did(engine):
    import copy

    from ponder.strategies import run

    before = copy.copy(engine.stats)
    r = asyncio.run(run("weighted_best_of_n?n=2&max_tokens=24&seed=4", Problem("What is 17 + 25?"), engine))
    after = copy.copy(engine.stats)
    assert r.usage.requests == after.requests - before.requests == 3
    assert r.usage.prompt_tokens == after.prompt_tokens - before.prompt_tokens
    assert r.usage.completion_tokens == after.completion_tokens - before.completion_tokens
    assert r.usage.evaluated_prompt_tokens == after.prompt_tokens_evaluated - before.prompt_tokens_evaluated
