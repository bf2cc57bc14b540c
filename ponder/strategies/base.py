"""What every strategy shares: sampling options, budget accounting, turning samples into candidates, voting."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ponder.errors import InvalidRequest
from ponder.scorers.answers import extract_answer, normalize_answer
from ponder.protocols import Scorer
from ponder.types import (MAX_NEW_TOKENS, MAX_SEED, MAX_STOP_CHARS, MAX_STOP_STRINGS, MAX_TEMPERATURE, MAX_TOP_K, Budget,
                          Candidate, Completion, Problem, Prompt, Result, Sample, SamplingParams, Usage)


class SamplingOptions(BaseModel):
    """Sampling knobs every strategy accepts. Defaults suit reasoning with small instruct models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0, le=MAX_TEMPERATURE, allow_inf_nan=False, description="0 means greedy")
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(40, ge=0, le=MAX_TOP_K, description="0 disables top-k")
    min_p: float = Field(0.0, ge=0, lt=1)
    max_tokens: int = Field(512, ge=1, le=MAX_NEW_TOKENS, description="new tokens per completion")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="sample i uses seed + i; None draws a random seed")
    stop: tuple[str, ...] = Field((), max_length=MAX_STOP_STRINGS, description="a completion ends at the first of these strings")
    prompt: str | None = Field(None, description="the instruction given with the question: cot, boxed, pal, tir, none, or a text "
                                                 "file (library and CLI); None: the strategy's default")
    shots: int = Field(0, ge=0, le=16, description="few-shot examples from bank, as earlier turns of the chat")
    bank: str | None = Field(None, description="an exemplar bank (JSONL from `ponder traces exemplars`) for shots")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_strings(cls, v):
        v = (v,) if isinstance(v, str) else tuple(v or ())
        if not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in v):
            raise ValueError(f"stop strings must be non-empty strings of at most {MAX_STOP_CHARS} characters")
        return v

    def prompt_for(self, problem: Problem, default: str | None = None) -> Prompt:
        """The problem's prompt under this strategy's proposal template: ``prompt`` if set, else ``default`` (a
        template name), else the problem's own instruction."""
        from ponder.strategies.prompts import instruction, with_shots

        ref = self.prompt or default
        prompt = problem.prompt() if ref is None else replace(problem, instruction=instruction(ref)).prompt()
        if self.shots:
            if self.bank is None:
                raise InvalidRequest(f"shots={self.shots} needs bank=FILE (an exemplar bank from `ponder traces exemplars`)")
            prompt = with_shots(prompt, problem, self.bank, self.shots)
        return prompt

    def sampling(self, **overrides) -> SamplingParams:
        """These options as SamplingParams; a strategy's own ``stop`` strings are added to the user's."""
        base = dict(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k, min_p=self.min_p,
                    max_tokens=self.max_tokens, seed=self.seed)
        stop = tuple(overrides.pop("stop", ())) + tuple(s for s in self.stop if s not in overrides.get("stop", ()))
        base.update(overrides)
        return SamplingParams(**base, stop=stop)


@dataclass
class Meter:
    """Tracks what a strategy has spent against its Budget."""

    budget: Budget
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    samples: int = 0
    limited: str | None = None  # the budget axis that made a request smaller than the strategy asked for
    shortened: bool = False  # the token budget cut max_tokens below what the strategy asked for
    deadline_hit: bool = False  # a sample was ended by the deadline

    @property
    def deadline(self) -> float | None:
        return self.started + self.budget.max_seconds if self.budget.max_seconds is not None else None

    def add(self, completions: Sequence[Completion]) -> None:
        for c in completions:
            self.usage = self.usage + c.usage
            self.samples += len(c.samples)
            self.deadline_hit = self.deadline_hit or any(s.finish_reason == "deadline" for s in c.samples)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def seconds_left(self) -> float | None:
        return None if self.budget.max_seconds is None else max(0.0, self.budget.max_seconds - self.elapsed())

    def samples_left(self) -> int | None:
        return None if self.budget.max_samples is None else max(0, self.budget.max_samples - self.samples)

    def tokens_left(self) -> int | None:
        return None if self.budget.max_tokens is None else max(0, self.budget.max_tokens - self.usage.completion_tokens)

    def exhausted(self) -> str | None:
        """The budget axis that is used up, or None (the deadline first: past it nothing more may be asked)."""
        if self.budget.max_seconds is not None and (self.deadline_hit or self.elapsed() >= self.budget.max_seconds):
            return "max_seconds"
        if self.budget.max_samples is not None and self.samples >= self.budget.max_samples:
            return "max_samples"
        if self.budget.max_tokens is not None and self.usage.completion_tokens >= self.budget.max_tokens:
            return "max_tokens"
        return None

    def charge(self, sub: Result) -> None:
        """Count a sub-search (another strategy run inside this one) against the budget."""
        self.usage = self.usage + sub.usage
        self.samples += len(sub.candidates)

    def remaining(self) -> Budget:
        """What is left, as the Budget of a sub-search (never below one token, one sample, one millisecond)."""
        b = self.budget
        return Budget(None if b.max_tokens is None else max(1, b.max_tokens - self.usage.completion_tokens),
                      None if b.max_samples is None else max(1, b.max_samples - self.samples),
                      None if b.max_seconds is None else max(0.001, b.max_seconds - self.elapsed()))

    def final_usage(self) -> Usage:
        return self.usage.with_seconds(self.elapsed())


def fit_samples(meter: Meter, n: int, max_tokens: int) -> tuple[int, int]:
    """How many samples of how many tokens each fit in what is left of the budget: never more samples than samples
    or tokens are left (a sample costs at least one token), so the budget holds exactly."""
    asked = (n, max_tokens)
    left = meter.samples_left()
    n = n if left is None else max(0, min(n, left))
    if n < asked[0]:
        meter.limited = "max_samples"
    tok_left = meter.tokens_left()
    if tok_left is not None:
        fits = min(n, tok_left)
        if fits:
            max_tokens = max(1, min(max_tokens, tok_left // fits))
        if fits < n:
            meter.limited = "max_tokens"
        elif fits and max_tokens < asked[1]:
            meter.shortened = True
        n = fits
    return n, max_tokens


def chosen_logprobs(sample: Sample) -> tuple[float, ...] | None:
    return tuple(t.logprob for t in sample.logprobs) if sample.logprobs is not None else None


def make_candidate(text: str, *, tokens: int, finish_reason: str, token_logprobs: tuple[float, ...] | None = None,
                   steps: tuple[str, ...] = (), step_logprobs: tuple[tuple[float, ...], ...] | None = None,
                   score: float | None = None, step_scores: tuple[float, ...] = (),
                   mean_logprob: float | None = None) -> Candidate:
    """A candidate from its text: the final answer extracted and normalised, confidence = mean token logprob. A
    path cut off (``length``, ``deadline``, ``low_confidence``) answers only where it states an answer."""
    answer = extract_answer(text, complete=finish_reason not in CUT_OFF) if text else None
    return Candidate(
        text=text,
        answer=answer,
        key=normalize_answer(answer) if answer is not None else None,
        tokens=tokens,
        finish_reason=finish_reason,  # type: ignore[arg-type]
        steps=steps,
        score=score,
        step_scores=step_scores,
        confidence=sum(token_logprobs) / len(token_logprobs) if token_logprobs else mean_logprob,
        token_logprobs=token_logprobs,
        step_logprobs=step_logprobs,
    )


def to_candidate(sample: Sample) -> Candidate:
    return make_candidate(sample.text, tokens=sample.n_tokens, finish_reason=sample.finish_reason,
                          token_logprobs=chosen_logprobs(sample), mean_logprob=sample.mean_logprob)


async def score_candidates(scorer: Scorer, problem: Problem, candidates: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """The candidates with ``score`` set by the scorer's outcome judgement (``None`` where it abstains)."""
    if not candidates:
        return ()
    scores = await scorer.score(problem, [c.trace() for c in candidates])
    return tuple(replace(c, score=s) for c, s in zip(candidates, scores, strict=True))


CUT_OFF = ("length", "deadline", "low_confidence")  # finish reasons of a path that did not end on its own


def result(name: str, params: BaseModel, meter: Meter, candidates: Sequence[Candidate], *, chosen: int | None,
           votes: tuple[tuple[str, float], ...] = (), scorer: Scorer | None = None, stopped_by: str | None = None,
           extra: dict | None = None, tree: tuple = ()) -> Result:
    """The Result of a strategy run, with usage and time taken from the meter (and, for tree searches, the tree)."""
    if stopped_by is None and any(c.finish_reason == "deadline" for c in candidates):
        stopped_by = "max_seconds"
    if meter.shortened and not meter.limited and any(c.finish_reason == "length" for c in candidates):
        meter.limited = "max_tokens"  # a sample ran into the shortened length
    stopped_by = stopped_by or meter.limited
    if chosen is None and candidates:  # no answer anywhere: still hand back the most confident trace to read
        chosen = max(range(len(candidates)), key=lambda i: (candidates[i].confidence if candidates[i].confidence is not None else -math.inf, -i))
    return Result(
        strategy=name,
        answer=candidates[chosen].answer if chosen is not None else None,
        candidates=tuple(candidates),
        usage=meter.final_usage(),
        seconds=meter.elapsed(),
        params=tuple(params.model_dump().items()),
        votes=votes,
        chosen=chosen,
        stopped_by=stopped_by,
        scorer=getattr(scorer, "name", None),
        extra=tuple({**(extra or {}), **_cut_off(candidates)}.items()),
        tree=tuple(tree),
    )


def _cut_off(candidates: Sequence[Candidate]) -> dict:
    """How many cut-off paths abstained (stated no answer), when any did."""
    n = sum(1 for c in candidates if c.key is None and c.finish_reason in CUT_OFF and c.text and not c.executions)
    return {"cut_off_abstained": n} if n else {}


def score_weights(candidates: Sequence[Candidate]) -> list[float]:
    """Each candidate's weight in a score-weighted vote: its score, 0 where the scorer abstained."""
    return [c.score or 0.0 for c in candidates]


@dataclass(frozen=True)
class Vote:
    answer: str | None  # the winning answer as one of its candidates wrote it
    key: str | None
    chosen: int | None
    votes: tuple[tuple[str, float], ...]


def vote(candidates: Sequence[Candidate], weights: Sequence[float] | None = None) -> Vote:
    """Weighted plurality over normalised answers; candidates without an answer do not vote.

    Ties are broken by the summed confidence (``exp`` of mean token logprob) of each tied answer's candidates,
    then by which answer appeared first. The representative candidate is the most confident one of the winner.

    >>> from ponder.types import Candidate
    >>> c = lambda k, conf: Candidate(text=k, answer=k, key=k, tokens=1, finish_reason="eos", confidence=conf)
    >>> vote([c("1", -0.9), c("2", -0.1), c("1", -0.5), c("2", -0.2)]).key   # 2 votes each: "2" is more confident
    '2'
    """
    weights = list(weights) if weights is not None else [1.0] * len(candidates)
    tally: dict[str, float] = defaultdict(float)
    conf: dict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for i, (cand, w) in enumerate(zip(candidates, weights, strict=True)):
        if cand.key is None:
            continue
        tally[cand.key] += w
        conf[cand.key] += math.exp(cand.confidence) if cand.confidence is not None else 0.0
        first.setdefault(cand.key, i)
    if not tally:
        return Vote(None, None, None, ())
    order = sorted(tally, key=lambda k: (-tally[k], -conf[k], first[k]))
    winner = order[0]
    members = [i for i, c in enumerate(candidates) if c.key == winner]
    chosen = max(members, key=lambda i: (candidates[i].confidence if candidates[i].confidence is not None else -math.inf, -i))
    return Vote(candidates[chosen].answer, winner, chosen, tuple((k, round(tally[k], 6)) for k in order))
