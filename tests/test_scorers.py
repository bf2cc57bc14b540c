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
