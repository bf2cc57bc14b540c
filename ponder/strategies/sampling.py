"""Strategies that sample whole completions in parallel: greedy, sample, majority (self-consistency)."""

from __future__ import annotations

from pydantic import Field

from ponder.protocols import Generator
from ponder.strategies.base import Meter, SamplingOptions, fit_samples, to_candidate, vote
from ponder.types import Budget, GenerationRequest, Problem, Result


class GreedyParams(SamplingOptions):
    temperature: float = Field(0.0, ge=0, le=0, description="always 0")


class SampleParams(SamplingOptions):
    pass


class MajorityParams(SamplingOptions):
    n: int = Field(8, ge=1, le=256, description="completions sampled in one batch")


async def _sample_and_vote(name: str, problem: Problem, generator: Generator, budget: Budget, params: SamplingOptions,
                           n: int) -> Result:
    meter = Meter(budget)
    n, max_tokens = fit_samples(meter, n, params.max_tokens)
    # logprobs=0: the chosen token's logprob only, for the confidence that breaks ties
    request = GenerationRequest(problem.prompt(), n=n, params=params.sampling(max_tokens=max_tokens, logprobs=0),
                                deadline=meter.deadline)
    [completion] = await generator.generate([request])
    meter.add([completion])
    candidates = tuple(to_candidate(s) for s in completion.samples)
    v = vote(candidates)
    return Result(
        strategy=name,
        answer=v.answer,
        candidates=candidates,
        usage=meter.final_usage(),
        seconds=meter.elapsed(),
        params=tuple(params.model_dump().items()),
        votes=v.votes,
        chosen=v.chosen,
        stopped_by="max_seconds" if any(c.finish_reason == "deadline" for c in candidates) else None,
    )


async def greedy(problem: Problem, generator: Generator, scorer, budget: Budget, params: GreedyParams) -> Result:
    """One completion at temperature 0: the baseline every other strategy must beat."""
    return await _sample_and_vote("greedy", problem, generator, budget, params, 1)


async def sample(problem: Problem, generator: Generator, scorer, budget: Budget, params: SampleParams) -> Result:
    """One sampled completion: the cost unit of every other strategy."""
    return await _sample_and_vote("sample", problem, generator, budget, params, 1)


async def majority(problem: Problem, generator: Generator, scorer, budget: Budget, params: MajorityParams) -> Result:
    """Self-consistency (Wang et al. 2022, arXiv:2203.11171): sample ``n`` reasoning paths in one batch, extract
    each final answer, return the most frequent. Ties go to the answer whose paths are together more confident
    (summed exp mean token logprob), then to the answer seen first."""
    return await _sample_and_vote("majority", problem, generator, budget, params, params.n)
