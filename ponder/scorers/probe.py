"""The learned verifier as a scorer: ``probe?path=FILE`` scores each path (outcome) or each step prefix (steps) by
a probe on the generating model's own hidden states (:mod:`ponder.verifier.probe`), and on the answer the path
votes for when the probe sees answers (``Trace.answer``: a program's printed value). The generating engine reads the
states (``read_hidden_states``): a path it just generated is still in its cache, so only what the trace appends (a
program's output block) is evaluated. The tokens read are charged to the run as prompt tokens, those taken from the
cache as cached ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ponder.accounting import charge
from ponder.errors import InvalidRequest
from ponder.protocols import Generator, ReadsHiddenStates
from ponder.types import Problem, Trace, Usage


class ProbeScorer:
    name = "probe"

    def __init__(self, generator: Generator, path: str):
        from ponder.verifier.probe import Probe

        if not isinstance(generator, ReadsHiddenStates):
            raise InvalidRequest("the probe scorer reads the model's hidden states: it needs the embedded backend")
        self.generator, self.probe = generator, Probe.load(path)
        self.probe.check_model(generator.model_sha256)
        # stored judgements are keyed by the scorer's name: a probe's carries its weights' hash, so another probe
        # file (retrained, another kind) never reads this one's stored scores
        self.name = f"probe:{self.probe.fingerprint()}"

    async def _scores(self, problem: Problem, texts: Sequence[str], answers: Sequence[str | None]) -> list[float]:
        if not texts:
            return []
        # the question under the instruction the probe's training paths were drawn with (PAL's, for programs)
        prompt = problem.prompt() if self.probe.instruction is None else replace(problem, instruction=self.probe.instruction).prompt()
        read = await self.generator.read_hidden_states([prompt] * len(texts), list(texts))
        charge(Usage(prompt_tokens=read.tokens, cached_prompt_tokens=read.reused, requests=len(texts)))
        return [float(s) for s in self.probe.score(self.probe.features(read.states, answers))]

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]:
        return list(await self._scores(problem, [t.text for t in traces], [t.answer for t in traces]))

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]:
        prefixes, answers, owners = [], [], []
        for i, t in enumerate(traces):
            steps = t.step_prefixes()
            for j, prefix in enumerate(steps):
                prefixes.append(prefix)
                answers.append(t.answer if j == len(steps) - 1 else None)  # a prefix has answered nothing yet
                owners.append(i)
        flat = await self._scores(problem, prefixes, answers)
        out: list[list[float] | None] = [[] for _ in traces]
        for i, s in zip(owners, flat, strict=True):
            out[i].append(s)
        return [x if x else None for x in out]
