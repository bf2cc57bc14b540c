"""Cascade: answer with the small model; escalate to a larger one only when the small model is unsure.

``await cascade(problem, small, large)`` runs over two explicit Generators, which may be on different backends
(an embedded small model, a large one behind an OpenAI-compatible server). The registered strategy
``cascade?large=MODEL&small_spec=…&large_spec=…`` is the same over one generator that opens the large model by name
(:class:`ponder.protocols.OpensModels`: the CLI, the server and the evaluator give it one), so it runs wherever
the other strategies run; ``ponder ask --escalate-to MODEL`` is its shorthand.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import InvalidRequest
from ponder.protocols import Generator, OpensModels, Scorer
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


class CascadeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    large: str = Field(description="the model escalated to (a registry name; a server offers the models its operator named)")
    small_spec: str = Field("auto?effort=low", description="the strategy the first model answers with")
    large_spec: str = Field("greedy", description="the strategy the large model answers with when asked")
    min_agreement: float = Field(0.75, ge=0, le=2, description="escalate when the first answer's vote share is below this (above 1: always)")

    def model_post_init(self, __context) -> None:
        for field in ("small_spec", "large_spec"):
            info, _ = parse_spec(getattr(self, field))  # a bad sub-spec is refused when the cascade is parsed
            if info.name == "cascade":
                raise InvalidRequest(f"{field} cannot itself be a cascade")


class _OnFirstUse:
    """The large model, opened only if the cascade escalates to it (the router keeps it open after that)."""

    def __init__(self, router: OpensModels, name: str):
        self.router, self.name, self._gen = router, name, None

    async def generate(self, requests):
        if self._gen is None:
            self._gen = self.router.for_model(self.name)
        return await self._gen.generate(requests)

    async def aclose(self) -> None:
        """The router owns what it opened."""


async def cascade_strategy(problem: Problem, generator: Generator, scorer, budget: Budget, params: CascadeParams) -> Result:
    """The cascade as a strategy: the first model is ``generator``'s own, the large one is opened by name
    (``params.large``) through it. A scorer given applies to the first model's strategy."""
    if not isinstance(generator, OpensModels):
        raise InvalidRequest("cascade needs a generator that can open the large model by name "
                             "(ponder.backends.router.ModelRouter; the CLI, the server and the evaluator give one)")
    return await cascade(problem, generator, _OnFirstUse(generator, params.large), small_spec=params.small_spec, large_spec=params.large_spec,
                         min_agreement=params.min_agreement, budget=budget, small_scorer=scorer)
