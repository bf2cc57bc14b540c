"""Replaying stored draws: a Generator that serves a strategy's requests for independent samples of an item's
prompt from the samples an evaluation stored (drawing more, through its source, only when it needs more), so an
adaptive rule is judged on the very draws the fixed-budget vote saw. See ``ponder.evaluation.runner``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ponder.protocols import Generator
from ponder.strategies.base import SamplingOptions
from ponder.strategies.prompts import TEMPLATES
from ponder.types import Completion, GenerationRequest, Problem, Sample, TokenLogprob, Usage


class SampleSource(Protocol):
    """Where a replay finds an item's shared samples (the evaluator, in practice)."""

    seed: int  # sample i of the shared stream was drawn with seed + i

    def stored_samples(self, model: str, problem: Problem, options: SamplingOptions) -> list: ...

    async def shared_samples(self, model: str, live: Generator, problem: Problem, options: SamplingOptions, need: int) -> list: ...


def confidence_stop_at(logprobs: Sequence[float], window: int, threshold: float) -> int | None:
    """How many tokens a decode with ``confidence_stop=(window, threshold)`` keeps: the embedded engine ends a
    sample, keeping the token it just sampled, as soon as the mean logprob of its last ``window`` tokens falls below
    ``threshold``. None if it never does.

    >>> confidence_stop_at([-0.1, -0.1, -3.0, -0.1], window=2, threshold=-1.0), confidence_stop_at([-0.1] * 4, 2, -1.0)
    (3, None)
    """
    total = 0.0
    for i, lp in enumerate(logprobs):
        total += lp
        if i >= window:
            total -= logprobs[i - window]
        if i + 1 >= window and total / window < threshold:
            return i + 1
    return None


def stored_sample(row, confidence_stop: tuple[int, float] | None = None) -> Sample:
    """A stored draw as the backend gave it, or as a decode with ``confidence_stop`` would have ended it: cut
    after the token where the window's confidence fell (finish ``low_confidence``; the cut trace's partial text is
    not stored, so it comes back empty)."""
    from ponder.evaluation.store import unpack_logprobs

    lps = unpack_logprobs(row["token_logprobs"]) if "token_logprobs" in row.keys() else None
    logprobs = tuple(TokenLogprob("", x) for x in lps) if lps is not None else None
    cut = confidence_stop_at(lps, *confidence_stop) if confidence_stop is not None and lps is not None else None
    if cut is not None:
        return Sample(text="", token_ids=(), finish_reason="low_confidence", num_tokens=cut, logprobs=logprobs[:cut])
    return Sample(text=row["text"], token_ids=(), finish_reason=row["finish"], num_tokens=row["tokens"],
                  logprobs=logprobs, mean_logprob=row["confidence"])


class ReplayGenerator:
    """A Generator for one item that serves requests for independent samples of the item's prompt from the
    evaluator's shared samples drawn at the same sampling parameters (sample i of a request with seed s is shared
    sample s - run seed + i; a temperature-0 request gets the stored greedy completion), drawing and storing more on
    the live generator when a stored set runs out (or none is stored yet: the first rule to ask draws the set the
    others replay). A request with a confidence stop (DeepConf) gets the stored draws cut where the engine would
    have cut them, from their stored token logprobs. Requests that are no independent draw of a known prompt
    template (other prompts, prefixes, stop strings, confidence stops without stored draws with token logprobs) go
    to the live generator. ``seconds`` sums the stored generation time of the tokens it served from draws stored
    before the request (a draw made live for it took the caller's own wall time, which counts it once)."""

    def __init__(self, source: SampleSource, model: str, live: Generator, problem: Problem) -> None:
        self.source, self.model, self.live, self.problem = source, model, live, problem
        self.name = getattr(live, "name", model)
        self.served = 0
        self.seconds = 0.0

    def _shared_set(self, req: GenerationRequest) -> tuple[SamplingOptions, int, list] | None:
        """The sampling options of the stored set that answers ``req``, the index of its first sample, and the
        draws stored so far."""
        p = req.params
        if req.prefix or p.stop or p.ignore_eos or (p.logprobs or 0) > 0:
            return None
        template = next((t for t in (None, *TEMPLATES) if req.prompt == SamplingOptions(prompt=t).prompt_for(self.problem)), False)
        if template is False:  # a prompt no stored set was drawn with
            return None
        options = SamplingOptions(temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, min_p=p.min_p, max_tokens=p.max_tokens,
                                  prompt=template)
        stored = self.source.stored_samples(self.model, self.problem, options)
        if p.confidence_stop is not None and (not stored or stored[0]["token_logprobs"] is None):
            return None  # a confidence stop needs every token's logprob of stored draws
        # nothing stored yet: the draws are made once through the source and stored, so every other budget (and
        # every other rule) replays them
        if p.temperature == 0:
            return options, 0, stored
        if p.seed is None or p.seed < self.source.seed:
            return None
        return options, p.seed - self.source.seed, stored

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        out: list[Completion] = []
        for req in requests:
            found = self._shared_set(req)
            if found is None:
                [c] = await self.live.generate([req])
                out.append(c)
                continue
            options, first, rows = found
            need = 1 if req.params.temperature == 0 else first + req.n
            stored = len(rows)
            if stored < need:
                rows = await self.source.shared_samples(self.model, self.live, self.problem, options, need)
            at = range(first, first + req.n) if req.params.temperature else [0] * req.n
            served = [rows[i] for i in at]
            samples = tuple(stored_sample(r, req.params.confidence_stop) for r in served)
            # a cut sample took its share of the draw's time
            shares = [r["seconds"] * s.n_tokens / max(1, r["tokens"]) for r, s in zip(served, samples, strict=True)]
            self.served += len(served)
            # what was drawn live just now is in the caller's own wall time already: only stored draws add theirs
            self.seconds += sum(x for i, x in zip(at, shares, strict=True) if i < stored)
            seconds = sum(shares)
            out.append(Completion(samples, Usage(prompt_tokens=rows[0]["prompt_tokens"],
                                                 completion_tokens=sum(s.n_tokens for s in samples), seconds=seconds)))
        return out

    async def aclose(self) -> None:
        """The live generator belongs to the sample source's owner; nothing to close here."""
