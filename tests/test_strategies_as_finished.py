"""Work on each sample as it ends (ponder.strategies.as_finished): a program runs, and a verifier that judges each
path alone scores it, while the batch's longer paths still decode; a backend that never says when a sample ends
gets the same result; the work's spending is charged to the run; a failing piece of work or generation loses
nothing quietly."""

import asyncio

import pytest

from ponder.accounting import charge
from ponder.strategies.as_finished import generate_then, sample_candidates
from ponder.strategies.base import Meter
from ponder.strategies.registry import parse_spec
from ponder.testing import ScriptedExecutor, ScriptedGenerator, ScriptedScorer
from ponder.types import Budget, GenerationRequest, Problem, Prompt, Usage

PROBLEM = Problem(id="p", question="14 cakes at $3 and 23 at $2: total?", answer="88")


def block(code: str, words: int = 0) -> str:
    return "pad " * words + f"```python\n{code}\n```"


class Logged:
    """A generator that notes in ``log`` when its batch is done (the moment the old code started any work)."""

    def __init__(self, inner, log):
        self.inner, self.log, self.name = inner, log, "logged"

    async def generate(self, requests):
        out = await self.inner.generate(requests)
        self.log.append("batch done")
        return out

    async def aclose(self):
        return None


class Silent(Logged):
    """A backend that cannot tell when a sample ends: it drops the hook."""

    async def generate(self, requests):
        from dataclasses import replace
        return await super().generate([replace(r, on_sample=None) for r in requests])


def scripted(lengths, seconds_per_token=0.002):
    return ScriptedGenerator([block(f"print({i} + 86)", words=n) for i, n in enumerate(lengths)],
                             seconds_per_token=seconds_per_token)


def test_a_short_program_runs_while_the_long_one_still_decodes():
    log = []
    ex = ScriptedExecutor(lambda code: log.append(code) or str(eval(code[6:-2])) + "\n")
    gen = Logged(scripted([2, 60, 5]), log)
    req = GenerationRequest(PROBLEM.prompt(), n=3)
    cands = asyncio.run(sample_candidates(gen, [req], Meter(Budget()), execute=True, executor=ex))
    assert log.index("batch done") == 2  # both short programs ran before the long path ended
    assert [c.answer for c in cands] == ["86", "87", "88"]  # in sample order, whatever order they ended in
    assert [len(c) for c in ex.calls] == [1, 1, 1]


def test_a_backend_that_never_says_gets_the_same_candidates():
    def run(wrap):
        log = []
        ex = ScriptedExecutor(lambda code: str(eval(code[6:-2])) + "\n")
        sc = ScriptedScorer(outcome=lambda text: 0.1 * len(text), per_trace=True)
        meter = Meter(Budget())
        cands = asyncio.run(sample_candidates(wrap(scripted([2, 30, 5]), log), [GenerationRequest(PROBLEM.prompt(), n=3)],
                                              meter, execute=True, executor=ex, scorer=sc, problem=PROBLEM))
        return cands, meter.usage, log
    early, early_usage, _ = run(Logged)
    late, late_usage, log = run(Silent)
    assert early == late and early_usage == late_usage and log == ["batch done"]
    assert early_usage.tool_calls == 3 and all(c.score is not None for c in early)


def test_a_verifier_that_judges_each_path_alone_scores_each_as_it_ends_and_others_see_all_at_once():
    log = []

    class Alone(ScriptedScorer):
        async def score(self, problem, traces):
            log.append(f"score {len(traces)}")
            return await super().score(problem, traces)

    for per_trace, expect in [(True, ["score 1", "score 1", "batch done", "score 1"]), (False, ["batch done", "score 3"])]:
        log.clear()
        sc = Alone(outcome=lambda text: 1.0, per_trace=per_trace)
        asyncio.run(sample_candidates(Logged(scripted([2, 60, 5]), log), [GenerationRequest(PROBLEM.prompt(), n=3)],
                                      Meter(Budget()), scorer=sc, problem=PROBLEM))
        assert log == expect


def test_what_a_verifier_spends_on_paths_scored_early_is_charged_to_the_run():
    class Charging(ScriptedScorer):
        async def score(self, problem, traces):
            charge(Usage(prompt_tokens=7 * len(traces), requests=len(traces)))
            return await super().score(problem, traces)

    info, params = parse_spec("weighted_best_of_n?n=4&prompt=pal")

    def prompt_tokens(scorer):
        r = asyncio.run(info.run(PROBLEM, scripted([2, 40, 5, 9]), scorer, Budget(), params))
        return r.usage.prompt_tokens

    free = prompt_tokens(ScriptedScorer(outcome=lambda text: 1.0, per_trace=True))
    assert prompt_tokens(Charging(outcome=lambda text: 1.0, per_trace=True)) == free + 28  # each early read is on the bill
    assert prompt_tokens(Charging(outcome=lambda text: 1.0, per_trace=False)) == free + 28


def test_failing_work_is_raised_after_the_rest_settles_and_a_failing_batch_cancels_the_work():
    async def work(sample):
        if "61" in sample.text:
            raise ValueError("this one broke")
        return sample.text

    gen = ScriptedGenerator([block("print(60)", 1), block("print(61)", 3)], seconds_per_token=0.001)
    with pytest.raises(ValueError, match="this one broke"):
        asyncio.run(generate_then(gen, [GenerationRequest(PROBLEM.prompt(), n=2)], work))

    class Broken(ScriptedGenerator):
        async def generate(self, requests):
            requests[0].on_sample(0, (await super().generate(requests))[0].samples[0])
            await asyncio.sleep(0.01)  # the work on the ended sample has begun
            raise RuntimeError("the backend fell over")

    started = []

    async def slow(sample):
        started.append(sample)
        await asyncio.sleep(10)

    async def go():
        with pytest.raises(RuntimeError, match="fell over"):
            await generate_then(Broken([block("print(1)")]), [GenerationRequest(Prompt(text="q"), n=1)], slow)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.sleep(0)
        return pending

    pending = asyncio.run(go())
    assert len(started) == 1 and all(t.cancelled() or t.done() for t in pending)
