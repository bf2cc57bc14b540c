"""Spending compute only where a question needs it: stop sampling once the vote is settled, and stop traces
whose confidence collapses.

- ``adaptive_majority``: sample in rounds and stop when the vote is settled, by the Beta or Dirichlet criterion of
  Adaptive-Consistency (Aggarwal et al. 2023, arXiv:2305.11860) or the window criterion of Early-Stopping
  Self-Consistency (Li et al. 2024, arXiv:2401.10480).
- ``deepconf``: DeepConf online (Fu et al. 2025, arXiv:2508.15260): a few warm-up traces set a confidence
  threshold; later traces are stopped by the backend as soon as their sliding-window confidence drops below it
  (real tokens saved on the embedded backend), no more are drawn once the confident traces' weighted vote reaches
  a consensus, and the confident traces vote, weighted by confidence.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from ponder import observe
from ponder.protocols import Executor, Generator
from ponder.scorers.confidence import trace_confidence
from ponder.strategies.base import Meter, SamplingOptions, fit_samples, result, vote
from ponder.strategies.execution import candidates_of
from ponder.types import Budget, Candidate, GenerationRequest, Problem, Result


def beta_settled(counts: list[int]) -> float:
    """P(the leading answer's share beats the runner-up's) under a uniform prior: with top-two counts a, b this is
    P(X > 1/2) for X ~ Beta(a + 1, b + 1) = P(Binomial(a + b + 1, 1/2) >= b + 1) (Adaptive-Consistency's Beta
    criterion).

    >>> round(beta_settled([4, 0]), 4), round(beta_settled([2, 2]), 2), round(beta_settled([5]), 4)
    (0.9688, 0.5, 0.9844)
    """
    top = sorted(counts, reverse=True) + [0, 0]
    a, b = top[0], top[1]
    n = a + b + 1
    return sum(math.comb(n, j) for j in range(b + 1, n + 1)) / 2**n


def dirichlet_settled(counts: list[int], draws: int = 4000, seed: int = 0) -> float:
    """P(the leading answer has the largest probability) under Dirichlet(counts + 1), by seeded Monte Carlo."""
    if not counts:
        return 0.0
    alpha = np.asarray(sorted(counts, reverse=True), dtype=float) + 1.0
    if alpha.size == 1:
        alpha = np.append(alpha, 1.0)  # some unseen answer
    p = np.random.default_rng(seed).dirichlet(alpha, size=draws)
    return float((p.argmax(axis=1) == 0).mean())


class AdaptiveMajorityParams(SamplingOptions):
    batch: int = Field(2, ge=1, le=64, description="samples per round")
    max_samples: int = Field(16, ge=1, le=256, description="give up settling after this many")
    criterion: Literal["beta", "dirichlet", "esc"] = "beta"
    threshold: float = Field(0.95, gt=0, lt=1, description="stop when P(settled) reaches this (beta, dirichlet)")
    window: int = Field(4, ge=2, description="esc: stop when the last `window` answers all agree")
    greedy_first: bool = Field(False, description="the first sample is the greedy decode (temperature 0): the model's "
                                                  "most likely answer votes first; the others are sampled as usual")
    give_up_after: int | None = Field(None, ge=2, description="stop after this many samples if no answer has yet "
                                                              "appeared twice: the vote is not converging, the plurality "
                                                              "(ties to the more confident answer) is returned")


def scattered(answers: list[str | None]) -> bool:
    """No answer has appeared twice (unparsed answers count as all different).

    >>> scattered(["1", "2", None, None]), scattered(["1", "2", "1"])
    (True, False)
    """
    keys = [a for a in answers if a is not None]
    return len(set(keys)) == len(keys)


def settled(answers: list[str | None], p: AdaptiveMajorityParams) -> float:
    keys = [a for a in answers if a is not None]
    if p.criterion == "esc":
        last = answers[-p.window :]
        return 1.0 if len(last) == p.window and last[0] is not None and len(set(last)) == 1 else 0.0
    counts = list(Counter(keys).values())
    if not counts:
        return 0.0
    return beta_settled(counts) if p.criterion == "beta" else dirichlet_settled(counts)


async def adaptive_majority(problem: Problem, generator: Generator, scorer, budget: Budget, params: AdaptiveMajorityParams,
                            *, executor: Executor | None = None) -> Result:
    """Majority voting that stops as soon as the vote is settled: ``batch`` samples per round (one batched call
    each), then the criterion decides whether another round is worth it. Easy questions stop after a round or two;
    contested ones use up to ``max_samples``. With ``greedy_first`` the first round opens with the greedy decode;
    with ``give_up_after`` a vote whose first samples all differ stops there (a question the model cannot settle:
    more samples of a scattered vote seldom find the right answer). With ``prompt=pal`` the samples are programs,
    run through ``executor`` (the sandbox by default), voting on what they print."""
    meter = Meter(budget)
    candidates: list[Candidate] = []
    history: list[float] = []
    prompt = params.prompt_for(problem)
    stopped = None
    gave_up = False
    bar = 1.0 if params.criterion == "esc" else params.threshold
    while len(candidates) < params.max_samples:
        stopped = meter.exhausted()
        if stopped:
            break
        n, max_tokens = fit_samples(meter, min(params.batch, params.max_samples - len(candidates)), params.max_tokens)
        if n == 0:
            break
        requests = []
        if params.greedy_first and not candidates:  # the greedy decode, then n - 1 samples in the same batch
            requests.append(GenerationRequest(prompt, n=1, deadline=meter.deadline,
                                              params=params.sampling(temperature=0.0, max_tokens=max_tokens, logprobs=0, seed=None)))
        sampled = len(candidates) - (1 if params.greedy_first and candidates else 0)  # sampled draws so far
        if n - len(requests):
            seed = None if params.seed is None else params.seed + sampled
            requests.append(GenerationRequest(prompt, n=n - len(requests), deadline=meter.deadline,
                                              params=params.sampling(max_tokens=max_tokens, logprobs=0, seed=seed)))
        completions = await generator.generate(requests)
        meter.add(completions)
        candidates += await candidates_of([s for c in completions for s in c.samples], params.prompt, meter, executor)
        keys = [x.key for x in candidates]
        history.append(settled(keys, params))
        if observe.active():  # the explorer shows the vote as it stands after each round, and how settled it is
            observe.emit("votes", votes=dict(vote(candidates).votes), settled=round(history[-1], 4), samples=len(candidates))
        if history[-1] >= bar:
            stopped = None
            break
        if params.give_up_after is not None and len(candidates) >= params.give_up_after and scattered(keys):
            stopped, gave_up = None, True
            break
    v = vote(candidates)
    return result("adaptive_majority", params, meter, candidates, chosen=v.chosen, votes=v.votes, stopped_by=stopped,
                  extra={"samples": len(candidates), "settled": [round(h, 4) for h in history],
                         "settled_early": bool(history) and history[-1] >= bar, "gave_up": gave_up})


class DeepConfParams(SamplingOptions):
    warmup: int = Field(4, ge=1, le=64, description="full traces that set the confidence threshold")
    n: int = Field(16, ge=1, le=256, description="traces in all, warm-up included")
    keep_percent: float = Field(90.0, gt=0, le=100, description="threshold = the (100 - keep)th percentile of warm-up confidence")
    window: int = Field(32, ge=2, description="tokens in the sliding confidence window")
    consensus: float | None = Field(0.95, gt=0.5, le=1, description="stop drawing traces once the confidence-weighted "
                                                                     "vote's leading share reaches this (DeepConf's tau); "
                                                                     "none: draw all n")
    batch: int = Field(4, ge=1, le=64, description="traces per round after the warm-up (one batched call each)")

    @field_validator("consensus", mode="before")
    @classmethod
    def _none(cls, v):
        return None if isinstance(v, str) and v.strip().lower() in ("none", "off", "") else v


MIN_CONSENSUS_VOTES = 2  # one confident trace is no consensus: with a small warm-up a high keep threshold admits one


def consensus_share(votes: list[tuple[str, float]]) -> float:
    """The leading answer's share of a confidence-weighted vote (DeepConf's beta), from (answer, weight) pairs;
    0 with fewer than ``MIN_CONSENSUS_VOTES`` voters.

    >>> consensus_share([("3", 0.9), ("3", 0.9), ("8", 0.2)]), consensus_share([("3", 0.9)])
    (0.9, 0.0)
    """
    if len(votes) < MIN_CONSENSUS_VOTES:
        return 0.0
    tally: Counter = Counter()
    for key, w in votes:
        tally[key] += w
    return max(tally.values()) / sum(tally.values())


async def deepconf(problem: Problem, generator: Generator, scorer, budget: Budget, params: DeepConfParams) -> Result:
    """DeepConf online: ``warmup`` traces are generated in full; the threshold is the (100 - keep_percent)th
    percentile of their lowest sliding-window confidence (mean logprob over ``window`` tokens); the remaining
    traces are generated in rounds of ``batch`` with that threshold as a stop rule, so the backend abandons a trace
    the moment its confidence drops. After the warm-up and after each round, the confident traces' vote, each
    weighted by its confidence, is checked: once the leading answer holds ``consensus`` of the weight (and at
    least two confident traces vote), no more traces are drawn (the paper's adaptive sampling). At most ``n``
    traces in all; the confident traces vote."""
    meter = Meter(budget)
    prompt = params.prompt_for(problem)
    n0, max_tokens = fit_samples(meter, min(params.warmup, params.n), params.max_tokens)
    [c0] = await generator.generate([GenerationRequest(prompt, n=n0, params=params.sampling(max_tokens=max_tokens, logprobs=0),
                                                       deadline=meter.deadline)])
    meter.add([c0])
    warm = list(await candidates_of(c0.samples, params.prompt, meter))
    confs = [math.log(trace_confidence(c.token_logprobs, "lowest_window", params.window)) for c in warm if c.token_logprobs]
    threshold = float(np.percentile(confs, 100 - params.keep_percent)) if confs else -math.inf

    def weight(c: Candidate) -> float:
        """The trace's vote: its lowest-window confidence if it is confident, else nothing."""
        if c.finish_reason == "low_confidence" or not c.token_logprobs:
            return 0.0
        conf = trace_confidence(c.token_logprobs, "lowest_window", params.window)
        return conf if math.log(conf) >= threshold else 0.0

    candidates, weights = list(warm), [weight(c) for c in warm]
    shares: list[float] = []

    def settled() -> bool:
        share = consensus_share([(c.key, w) for c, w in zip(candidates, weights) if c.key is not None and w > 0])
        shares.append(round(share, 4))
        return params.consensus is not None and share >= params.consensus

    round_size = params.batch if params.consensus is not None else params.n  # no consensus to check: one call
    stopped = None
    settled_early = settled()
    while not settled_early and len(candidates) < params.n:
        stopped = meter.exhausted()
        if stopped:
            break
        n1, max_tokens = fit_samples(meter, min(round_size, params.n - len(candidates)), params.max_tokens)
        if n1 == 0:
            break
        seed = None if params.seed is None else params.seed + len(candidates)
        p1 = params.sampling(max_tokens=max_tokens, logprobs=0, seed=seed,
                             confidence_stop=(params.window, threshold) if math.isfinite(threshold) else None)
        [c1] = await generator.generate([GenerationRequest(prompt, n=n1, params=p1, deadline=meter.deadline)])
        meter.add([c1])
        new = list(await candidates_of(c1.samples, params.prompt, meter))
        candidates += new
        weights += [weight(c) for c in new]
        settled_early = settled()
    rest = candidates[len(warm):]
    v = vote(candidates, weights)
    if v.chosen is None:
        v = vote(candidates)
    stopped_early = sum(1 for c in rest if c.finish_reason == "low_confidence")
    return result("deepconf", params, meter, candidates, chosen=v.chosen, votes=v.votes, stopped_by=stopped,
                  extra={"threshold_logprob": round(threshold, 4) if math.isfinite(threshold) else None,
                         "stopped_early": stopped_early, "tokens_in_stopped_traces": sum(c.tokens for c in rest if c.finish_reason == "low_confidence"),
                         "voting_traces": sum(1 for w in weights if w > 0), "traces": len(candidates),
                         "consensus": shares, "settled_early": settled_early})


EFFORT = {
    "low": {"batch": 2, "max_samples": 4, "threshold": 0.85},
    "medium": {"batch": 4, "max_samples": 8, "threshold": 0.9},
    "high": {"batch": 4, "max_samples": 16, "threshold": 0.95},
}


class AutoParams(SamplingOptions):
    effort: Literal["low", "medium", "high"] = Field("medium", description="low: <= 4 samples, medium: <= 8, high: <= 16")
    policy: str | dict | None = Field(None, description="a policy file from `ponder policy fit`, or 'default' (the one shipped, fitted on gsm_symbolic with the default model): choose strategy and budget by "
                                                        "the agreement of a first probe of samples (ponder serve takes policy names only)")


async def auto(problem: Problem, generator: Generator, scorer, budget: Budget, params: AutoParams) -> Result:
    """Compute by need: adaptive majority with the effort level's round size, sample cap and settling threshold
    (see ``EFFORT``): an easy question stops after its first agreeing round, a contested one gets the level's cap.
    Reports the question's difficulty as seen online (1 - the winning answer's vote share)."""
    if params.policy:
        return await _auto_with_policy(problem, generator, scorer, budget, params)
    sampling = {k: v for k, v in params.model_dump().items() if k not in ("effort", "policy")}
    inner = AdaptiveMajorityParams(**sampling, **EFFORT[params.effort])
    r = await adaptive_majority(problem, generator, scorer, budget, inner)
    total = sum(w for _, w in r.votes)
    difficulty = 1.0 - (r.votes[0][1] / total) if total else 1.0
    return Result(strategy="auto", answer=r.answer, candidates=r.candidates, usage=r.usage, seconds=r.seconds,
                  params=tuple(params.model_dump().items()), votes=r.votes, chosen=r.chosen, stopped_by=r.stopped_by,
                  extra=r.extra + (("difficulty", round(difficulty, 4)), ("effort", params.effort)))


async def _auto_with_policy(problem: Problem, generator: Generator, scorer, budget: Budget, params: AutoParams) -> Result:
    """Probe, read the question's difficulty, then spend what the fitted policy says for that difficulty. A
    majority choice reuses the probe's samples; any other strategy runs with the budget mapped to its size."""
    from ponder.strategies.policy import Policy, probe_agreement
    from ponder.strategies.registry import get, resolve_scorer

    policy = Policy.load(params.policy)
    meter = Meter(budget)
    sampling = {k: v for k, v in params.model_dump().items() if k not in ("effort", "policy")}
    n, max_tokens = fit_samples(meter, policy.probe, params.max_tokens)
    [c] = await generator.generate([GenerationRequest(params.prompt_for(problem), n=n, params=params.sampling(max_tokens=max_tokens, logprobs=0),
                                                      deadline=meter.deadline)])
    meter.add([c])
    probe = list(await candidates_of(c.samples, params.prompt, meter))
    agreement = probe_agreement([x.key for x in probe])
    choice = policy.choose(agreement)
    candidates = list(probe)
    if choice.strategy == "majority" or meter.exhausted():
        more = max(0, choice.budget - len(probe)) if choice.strategy == "majority" else 0
        n2, max_tokens = fit_samples(meter, more, params.max_tokens)
        if n2:
            seed = None if params.seed is None else params.seed + len(probe)
            [c2] = await generator.generate([GenerationRequest(params.prompt_for(problem), n=n2, deadline=meter.deadline,
                                                               params=params.sampling(max_tokens=max_tokens, logprobs=0, seed=seed))])
            meter.add([c2])
            candidates += await candidates_of(c2.samples, params.prompt, meter)
        v = vote(candidates)
        chosen, votes = v.chosen, v.votes
    else:
        info = get(choice.strategy)
        axis = info.budget_params(choice.budget)
        fields = info.params.model_fields
        inherited = {k: v for k, v in sampling.items() if k in fields and not (k == "temperature" and choice.strategy == "greedy")}
        inner = info.parse_params({**inherited, **axis})
        r = await info.run(problem, generator, resolve_scorer(info, scorer, generator), meter.remaining(), inner)
        meter.charge(r)
        candidates += list(r.candidates)
        chosen = None if r.chosen is None else len(probe) + r.chosen
        votes = r.votes
    return result("auto", params, meter, candidates, chosen=chosen, votes=votes,
                  extra={"probe_agreement": round(agreement, 4), "difficulty": round(1 - agreement, 4),
                         "policy_choice": f"{choice.strategy}@{choice.budget}", "policy": params.policy if isinstance(params.policy, str) else params.policy.get("name", "inline")})
