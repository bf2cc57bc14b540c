"""LLM-as-judge (a generative verifier): ask a model whether a solution or a step is correct, and score with
the probability it gives to "Yes" — read from the next-token logprobs, not parsed from text (as in Zhang et al.
2024, Generative Verifiers, arXiv:2408.15240). The judge can be the model being searched (self-judgement, works
offline with the model at hand) or any other Generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ponder.accounting import charge
from ponder.protocols import Generator
from ponder.types import GenerationRequest, Problem, Prompt, SamplingParams, Trace, Usage

SYSTEM = "You are a careful grader. You check reasoning and answers for mistakes."
OUTCOME = ("Question:\n{question}\n\nProposed solution:\n{solution}\n\n"
           "Is the proposed solution correct? Answer with a single word, Yes or No.")
STEP = ("Question:\n{question}\n\nSolution so far:\n{steps}\n\n"
        "Is the last step (step {k}) correct? Answer with a single word, Yes or No.")
YES = frozenset({"yes", "y", "correct", "true"})
NO = frozenset({"no", "n", "incorrect", "false", "wrong"})


def p_yes(top: Sequence[tuple[str, float]]) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the top next tokens; ``None`` if neither appears.

    >>> round(p_yes([("Yes", math.log(0.6)), ("No", math.log(0.2)), ("The", math.log(0.1))]), 3)
    0.75
    """
    yes = sum(math.exp(lp) for tok, lp in top if tok.strip().strip(".,!*").lower() in YES)
    no = sum(math.exp(lp) for tok, lp in top if tok.strip().strip(".,!*").lower() in NO)
    if yes + no <= 0:
        return None
    return yes / (yes + no)


class JudgeScorer:
    """Scores by a judge model's P(yes). Step scores are memoised per step prefix, so tree search pays once per node."""

    def __init__(self, generator: Generator, *, top_logprobs: int = 20, max_chars: int = 6000):
        self.generator = generator
        self.top_logprobs = top_logprobs
        self.max_chars = max_chars
        self.name = f"judge({getattr(generator, 'name', 'model')})"
        self._memo: dict[tuple[str, tuple[str, ...]], float | None] = {}
        self.judgements = 0  # judge calls made (memo misses), for accounting
        self.last_usage: list[Usage] = []  # what each prompt of the latest score() call cost, in order

    def _params(self) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=1, logprobs=self.top_logprobs)

    async def _ask(self, prompts: list[str]) -> list[float | None]:
        if not prompts:
            self.last_usage = []
            return []
        self.judgements += len(prompts)
        reqs = [GenerationRequest(Prompt.chat(p, SYSTEM), params=self._params()) for p in prompts]
        out = []
        completions = await self.generator.generate(reqs)
        self.last_usage = [c.usage for c in completions]
        for c in completions:
            charge(c.usage)
            s = c.samples[0]
            top = s.logprobs[0].top if s.logprobs else ()
            out.append(p_yes(top))
        return out

    def _clip(self, text: str) -> str:
        return text if len(text) <= self.max_chars else "…" + text[-self.max_chars :]

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]:
        return await self._ask([OUTCOME.format(question=problem.question, solution=self._clip(t.text)) for t in traces])

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]:
        wanted: dict[tuple[str, tuple[str, ...]], str] = {}
        for t in traces:
            for k in range(1, len(t.steps) + 1):
                key = (problem.question, t.steps[:k])
                if key not in self._memo and key not in wanted:
                    shown = "\n".join(f"Step {i + 1}: {s.strip()}" for i, s in enumerate(t.steps[:k]))
                    wanted[key] = STEP.format(question=problem.question, steps=self._clip(shown), k=k)
        for key, value in zip(wanted, await self._ask(list(wanted.values())), strict=True):
            self._memo[key] = value
        out: list[list[float] | None] = []
        for t in traces:
            scores = [self._memo[(problem.question, t.steps[:k])] for k in range(1, len(t.steps) + 1)]
            out.append([0.5 if s is None else s for s in scores] if scores else None)
        return out
