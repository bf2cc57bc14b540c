"""Strategies over whole completions sampled in parallel: greedy, sample, majority (self-consistency),
best-of-N, weighted best-of-N, and verified (repeated) sampling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pydantic import Field

from ponder.protocols import Generator, Scorer
from ponder.strategies.base import Meter, SamplingOptions, fit_samples, result, score_candidates, score_weights, vote
from ponder.strategies.execution import candidates_of
from ponder.types import Budget, Candidate, GenerationRequest, Problem, Result


# -- choice rules: which candidate a strategy answers with, given its candidates (the evaluator re-derives a
# budget-k result with the same rule over the first k stored samples) ------------------------------------------


def choose_first(candidates: Sequence[Candidate]) -> int | None:
    """greedy and sample: their one completion."""
    return 0 if candidates else None


def choose_by_vote(candidates: Sequence[Candidate]) -> int | None:
    """majority: the most frequent normalised answer (ties as in :func:`vote`)."""
    return vote(candidates).chosen


def choose_best_scored(candidates: Sequence[Candidate]) -> int | None:
    """best_of_n: the highest score (the earliest of equals); the vote when the scorer abstained on all."""
    scored = [i for i, c in enumerate(candidates) if c.score is not None]
    return max(scored, key=lambda i: (candidates[i].score, -i)) if scored else vote(candidates).chosen


def choose_by_weighted_vote(candidates: Sequence[Candidate]) -> int | None:
    """weighted_best_of_n: each answer's votes weighted by its candidates' scores (an abstention weighs 0)."""
    return vote(candidates, score_weights(candidates)).chosen


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
    request = GenerationRequest(params.prompt_for(problem), n=n, params=params.sampling(max_tokens=max_tokens, logprobs=0),
                                deadline=meter.deadline)
    [completion] = await generator.generate([request])
    meter.add([completion])
    candidates = await candidates_of(completion.samples, params.prompt, meter)
    v = vote(candidates)
    return result(name, params, meter, candidates, chosen=v.chosen, votes=v.votes)


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


class BestOfNParams(SamplingOptions):
    n: int = Field(8, ge=1, le=256, description="completions sampled in one batch")


class WeightedBestOfNParams(BestOfNParams):
    pass


class VerifiedSamplingParams(SamplingOptions):
    batch: int = Field(4, ge=1, le=256, description="samples drawn per round")
    max_samples: int = Field(32, ge=1, description="give up after this many samples")
    threshold: float = Field(0.5, description="a candidate passes when its score is at least this")


async def _sample_scored(problem: Problem, generator: Generator, scorer: Scorer, meter: Meter, params: SamplingOptions,
                         n: int) -> tuple:
    n, max_tokens = fit_samples(meter, n, params.max_tokens)
    if n == 0:
        return ()
    request = GenerationRequest(params.prompt_for(problem), n=n, params=params.sampling(max_tokens=max_tokens, logprobs=0),
                                deadline=meter.deadline)
    [completion] = await generator.generate([request])
    meter.add([completion])
    return await score_candidates(scorer, problem, await candidates_of(completion.samples, params.prompt, meter))


async def best_of_n(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: BestOfNParams) -> Result:
    """Best-of-N (Cobbe et al. 2021, arXiv:2110.14168; Lightman et al. 2023): sample ``n`` in one batch, let the
    verifier or reward model score each, return the highest-scored. If the scorer abstains on every candidate,
    falls back to the majority vote."""
    meter = Meter(budget)
    candidates = await _sample_scored(problem, generator, scorer, meter, params, params.n)
    if any(c.score is not None for c in candidates):
        return result("best_of_n", params, meter, candidates, chosen=choose_best_scored(candidates), scorer=scorer)
    v = vote(candidates)
    return result("best_of_n", params, meter, candidates, chosen=v.chosen, votes=v.votes, scorer=scorer,
                  extra={"fallback": "majority: the scorer abstained on every candidate"})


async def weighted_best_of_n(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget,
                             params: WeightedBestOfNParams) -> Result:
    """Weighted best-of-N (Li et al. 2023; Snell et al. 2024, arXiv:2408.03314; search-and-learn): sum each
    answer's scores over the candidates that reach it and return the answer with the largest sum. A candidate the
    scorer abstains on weighs 0."""
    meter = Meter(budget)
    candidates = await _sample_scored(problem, generator, scorer, meter, params, params.n)
    v = vote(candidates, score_weights(candidates))
    return result("weighted_best_of_n", params, meter, candidates, chosen=v.chosen, votes=v.votes, scorer=scorer)


async def verified_sampling(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget,
                            params: VerifiedSamplingParams) -> Result:
    """Repeated sampling until one passes the verifier (Brown et al. 2024, Large Language Monkeys,
    arXiv:2407.21787): draw ``batch`` samples per round, stop at the first candidate scoring at least
    ``threshold``; report how many samples that took. If none passes, return the highest-scored."""
    cap = params.max_samples if budget.max_samples is None else min(budget.max_samples, params.max_samples)
    meter = Meter(replace(budget, max_samples=cap))
    candidates: list = []
    passed: int | None = None
    rounds = 0
    while passed is None and not meter.exhausted():
        rounds += 1
        batch = await _sample_scored(problem, generator, scorer, meter, params, params.batch)
        if not batch:
            break
        for c in batch:
            candidates.append(c)
            if passed is None and c.score is not None and c.score >= params.threshold:
                passed = len(candidates) - 1
    if passed is not None:
        chosen = passed
    else:
        chosen = choose_best_scored(candidates)
    return result("verified_sampling", params, meter, candidates, chosen=chosen, scorer=scorer,
                  stopped_by=None if passed is not None else meter.exhausted(),
                  extra={"passed": passed is not None, "samples_to_pass": passed + 1 if passed is not None else None,
                         "rounds": rounds})
