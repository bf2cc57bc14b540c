"""Cascade: answer with the small model; escalate to a larger one only when the small model is unsure.

A cascade needs two generators, so it is a function over two explicit Generators rather than a registry entry
(whose strategies take one): ``await cascade(problem, small, large)``; ``ponder ask --escalate-to MODEL`` uses it.
The two may be on different backends (an embedded small model, a large one behind an OpenAI-compatible server).
"""

from __future__ import annotations

import time

from ponder.protocols import Generator, Scorer
from ponder.strategies.base import Meter
from ponder.strategies.registry import parse_spec, resolve_scorer
from ponder.types import Budget, Problem, Result, Usage


def agreement(r: Result) -> float:
    """The winning answer's share of the votes (0 when nothing voted)."""
    total = sum(w for _, w in r.votes)
    return r.votes[0][1] / total if total else 0.0


async def cascade(problem: Problem, small: Generator, large: Generator, *, small_spec: str = "auto?effort=low",
                  large_spec: str = "greedy", min_agreement: float = 0.75, budget: Budget | None = None,
                  small_scorer: Scorer | None = None, large_scorer: Scorer | None = None) -> Result:
    """Run ``small_spec`` on ``small``; if its answer's vote share is below ``min_agreement`` (or it has no answer),
    run ``large_spec`` on ``large`` and answer with that. The result holds both runs' candidates and usage. A
    strategy that scores without a scorer given gets its default one, judging with its own run's model."""
    meter = Meter(budget or Budget())
    t0 = meter.started
    info, params = parse_spec(small_spec)
    first = await info.run(problem, small, resolve_scorer(info, small_scorer, small), meter.budget, params)
    meter.charge(first)
    share = agreement(first)
    if first.answer is not None and share >= min_agreement:
        return Result(strategy="cascade", answer=first.answer, candidates=first.candidates, usage=first.usage,
                      seconds=time.monotonic() - t0, params=(("small", small_spec), ("large", large_spec),
                                                             ("min_agreement", min_agreement)),
                      votes=first.votes, chosen=first.chosen, stopped_by=first.stopped_by,
                      extra=(("escalated", False), ("small_agreement", round(share, 4))))
    info2, params2 = parse_spec(large_spec)
    second = await info2.run(problem, large, resolve_scorer(info2, large_scorer, large), meter.remaining(), params2)
    offset = len(first.candidates)
    return Result(strategy="cascade", answer=second.answer, candidates=first.candidates + second.candidates,
                  usage=Usage.total([first.usage, second.usage]).with_seconds(time.monotonic() - t0),
                  seconds=time.monotonic() - t0,
                  params=(("small", small_spec), ("large", large_spec), ("min_agreement", min_agreement)),
                  votes=second.votes, chosen=None if second.chosen is None else offset + second.chosen,
                  stopped_by=second.stopped_by,
                  extra=(("escalated", True), ("small_agreement", round(share, 4)), ("small_answer", first.answer)))
