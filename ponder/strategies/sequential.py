"""Thinking longer instead of wider: budget forcing (s1) and self-refinement."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pydantic import Field, model_validator

from ponder.protocols import Generator, Scorer
from ponder.strategies.base import (Meter, SamplingOptions, chosen_logprobs, make_candidate, result, score_candidates,
                                   to_candidate, vote)
from ponder.types import Budget, Candidate, GenerationRequest, Problem, Prompt, Result, Sample


class BudgetForcingParams(SamplingOptions):
    n: int = Field(1, ge=1, le=64, description="independent forced traces, decoded together and voted on")
    min_tokens: int = Field(256, ge=0, description="thinking shorter than this is extended with the wait word")
    max_thinking_tokens: int = Field(1024, ge=1, description="thinking is cut here and the answer forced")
    wait: str = Field("Wait", min_length=1, description="appended when the model stops too early")
    max_waits: int = Field(4, ge=0, description="most extensions per trace")
    answer_prefix: str = Field("\n\nThe answer is", description="appended to force the final answer")
    answer_tokens: int = Field(24, ge=1, description="tokens allowed for the forced answer")

    @model_validator(mode="after")
    def _order(self):
        if self.min_tokens > self.max_thinking_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) exceeds max_thinking_tokens ({self.max_thinking_tokens})")
        return self


@dataclass
class _Forced:
    text: str = ""
    tokens: int = 0
    waits: int = 0
    state: str = "thinking"  # thinking -> answering -> done
    finish: str = "eos"
    logprobs: list[float] = field(default_factory=list)


async def budget_forcing(problem: Problem, generator: Generator, scorer, budget: Budget, params: BudgetForcingParams) -> Result:
    """Budget forcing (s1, Muennighoff et al. 2025, arXiv:2501.19393): control how long the model thinks. When it
    ends before ``min_tokens``, its end is suppressed and ``wait`` appended so it reconsiders (at most
    ``max_waits`` times); when it reaches ``max_thinking_tokens`` its thinking is cut and ``answer_prefix``
    appended to force the final answer. ``n`` traces are forced side by side in one batch and voted on."""
    meter = Meter(budget)
    traces = [_Forced() for _ in range(params.n)]
    prompt = params.prompt_for(problem)
    rounds = 0
    stopped = None
    while any(t.state != "done" for t in traces):
        active = [t for t in traces if t.state != "done"]
        tok_left = meter.tokens_left()
        stopped = meter.exhausted() or ("max_tokens" if tok_left is not None and tok_left < len(active) else None)
        if stopped and rounds:  # what each trace has so far is its answer
            for t in active:
                t.state, t.finish = "done", ("deadline" if stopped == "max_seconds" else "length")
            break
        requests = []
        for i, t in enumerate(active):
            if t.state == "thinking":
                left = params.max_thinking_tokens - t.tokens
                p = params.sampling(max_tokens=max(1, left), logprobs=0,
                                    seed=None if params.seed is None else params.seed + 97 * rounds + i)
            else:
                p = params.sampling(temperature=0.0, max_tokens=params.answer_tokens, stop=("\n",), logprobs=0)
            tok_left = meter.tokens_left()
            if tok_left is not None:
                p = replace(p, max_tokens=max(1, min(p.max_tokens, tok_left // len(active))))
            requests.append(GenerationRequest(prompt, params=p, prefix=t.text, deadline=meter.deadline))
        completions = await generator.generate(requests)
        meter.add(completions)
        rounds += 1
        for t, c in zip(active, completions, strict=True):
            s: Sample = c.samples[0]
            t.text += s.text
            t.tokens += s.n_tokens
            t.logprobs += list(chosen_logprobs(s) or ())
            if t.state == "answering" or s.finish_reason == "deadline":
                t.state, t.finish = "done", ("deadline" if s.finish_reason == "deadline" else "eos")
            elif s.finish_reason == "length" or t.tokens >= params.max_thinking_tokens:
                t.text += params.answer_prefix  # the maximum: cut the thinking, force the answer
                t.state = "answering"
            elif t.tokens < params.min_tokens and t.waits < params.max_waits:
                t.text = t.text.rstrip() + "\n\n" + params.wait  # too early: suppress the end, make it reconsider
                t.waits += 1
            else:
                t.state, t.finish = "done", s.finish_reason
    candidates = [make_candidate(t.text, tokens=t.tokens, finish_reason=t.finish, token_logprobs=tuple(t.logprobs))
                  for t in traces]
    v = vote(candidates)
    return result("budget_forcing", params, meter, candidates, chosen=v.chosen, votes=v.votes, stopped_by=stopped,
                  extra={"waits": [t.waits for t in traces], "thinking_tokens": [t.tokens for t in traces], "rounds": rounds})


class SelfRefineParams(SamplingOptions):
    rounds: int = Field(2, ge=1, le=10, description="critique-and-revise rounds after the first answer")


REFINE = ("{question}\n\nHere is a proposed solution:\n\n{answer}\n\n"
          "Check every step of this solution for mistakes. Then write a corrected, complete solution. "
          "If it is already correct, repeat its reasoning briefly. End with: The answer is <answer>.")


async def self_refine(problem: Problem, generator: Generator, scorer: Scorer, budget: Budget, params: SelfRefineParams) -> Result:
    """Self-Refine (Madaan et al. 2023, arXiv:2303.17651): answer, then for ``rounds`` rounds ask the model to
    critique its latest answer and write a revised one. Every version is scored; the best-scored is returned
    (the latest one if the scorer abstains on all)."""
    meter = Meter(budget)
    candidates: list[Candidate] = []
    prompt = params.prompt_for(problem)
    latest = None
    stopped = None
    for r in range(params.rounds + 1):
        stopped = meter.exhausted()
        if r and stopped:
            break
        if latest is not None:
            prompt = Prompt.chat(REFINE.format(question=problem.question, answer=latest.text) +
                                 (f"\n\n{problem.instruction}" if problem.instruction else ""), problem.system)
        p = params.sampling(logprobs=0, seed=None if params.seed is None else params.seed + r)
        tok_left = meter.tokens_left()
        if tok_left is not None:
            p = replace(p, max_tokens=max(1, min(params.max_tokens, tok_left)))
        [c] = await generator.generate([GenerationRequest(prompt, params=p, deadline=meter.deadline)])
        meter.add([c])
        latest = to_candidate(c.samples[0])
        candidates.append(latest)
    scored = await score_candidates(scorer, problem, candidates)
    idx = [i for i, c in enumerate(scored) if c.score is not None]
    chosen = max(idx, key=lambda i: (scored[i].score, i)) if idx else len(scored) - 1
    return result("self_refine", params, meter, scored, chosen=chosen, scorer=scorer, stopped_by=stopped,
                  extra={"versions": len(scored)})
