"""Fakes that ship with the package, to prove strategies exactly: a scripted generator with a call history.

>>> import asyncio
>>> from ponder.types import GenerationRequest, Prompt
>>> gen = ScriptedGenerator(["The answer is 4", "The answer is 5"])
>>> [c] = asyncio.run(gen.generate([GenerationRequest(Prompt.chat("2+2?"), n=2)]))
>>> [s.text for s in c.samples], len(gen.calls)
(['The answer is 4', 'The answer is 5'], 1)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ponder.errors import BackendError
from ponder.types import Completion, Execution, GenerationRequest, Sample, TokenLogprob, Usage


@dataclass(frozen=True)
class Scripted:
    """One scripted completion: its text and the logprob every token of it gets."""

    text: str
    logprob: float = -0.1


Script = Sequence[str | Scripted] | Callable[[GenerationRequest, int], str | Scripted]


def _words(text: str) -> list[str]:
    """Tokens of the fake tokenizer: whitespace-separated words, each keeping its leading space."""
    out: list[str] = []
    for i, w in enumerate(text.split(" ")):
        out.append(w if i == 0 else " " + w)
    return [w for w in out if w]


class ScriptedGenerator:
    """A Generator that answers from a script instead of a model.

    ``script`` is a list of completions handed out in order (one per sample, across calls), or a function
    ``(request, sample_index) -> text`` for answers that depend on the prompt or prefix. Tokens are words. Stop
    strings, ``max_tokens`` and logprobs are honoured as a real backend would; ``calls`` records every request.
    With ``seconds_per_token`` each call takes that long per decoding step (the samples of a call decode together)
    and a request's ``deadline`` ends its samples there, finish reason ``deadline``, as on the embedded backend.
    """

    name = "scripted"

    def __init__(self, script: Script, seconds_per_token: float = 0.0):
        self.script = script
        self.seconds_per_token = seconds_per_token
        self.calls: list[list[GenerationRequest]] = []
        self._next = 0

    def _take(self, request: GenerationRequest, index: int) -> Scripted:
        if callable(self.script):
            item = self.script(request, index)
        else:
            if self._next >= len(self.script):
                raise BackendError(f"the script ran out after {self._next} completions")
            item = self.script[self._next]
            self._next += 1
        return item if isinstance(item, Scripted) else Scripted(item)

    def _sample(self, request: GenerationRequest, index: int, steps_left: int | None = None) -> Sample:
        item = self._take(request, index)
        p = request.params
        words = _words(item.text)
        finish = "eos"
        if len(words) > p.max_tokens:
            words, finish = words[: p.max_tokens], "length"
        if steps_left is not None and len(words) > steps_left:
            words, finish = words[:steps_left], "deadline"
        text = "".join(words)
        if p.stop:
            hits = [i for i in (text.find(s) for s in p.stop) if i >= 0]
            if hits:
                cut = min(hits)
                # the fake tokenizer stops at the word that completes the stop string, as a real backend would
                done = 0
                kept = []
                for w in words:
                    kept.append(w)
                    done += len(w)
                    if done >= cut + 1:
                        break
                words, text, finish = kept, text[:cut], "stop"
        if p.confidence_stop is not None:
            window, threshold = p.confidence_stop
            if item.logprob < threshold and len(words) >= window:  # every token has the item's logprob
                words, finish = words[: int(window)], "low_confidence"
                text = "".join(words)
        logprobs = None
        if p.logprobs is not None:
            logprobs = tuple(TokenLogprob(w, item.logprob) for w in words)
        return Sample(text=text, token_ids=tuple(range(len(words))), finish_reason=finish, logprobs=logprobs)  # type: ignore[arg-type]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        self.calls.append(list(requests))
        out = []
        start = time.monotonic()
        for r in requests:
            steps_left = None
            if self.seconds_per_token and r.deadline is not None:
                steps_left = max(0, int((r.deadline - start) / self.seconds_per_token))
            samples = tuple(self._sample(r, i, steps_left) for i in range(r.n))
            prompt_tokens = sum(len(_words(m.content)) for m in r.prompt.messages) + len(_words(r.prompt.text or "")) + len(_words(r.prefix))
            usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=sum(s.n_tokens for s in samples), requests=1)
            out.append(Completion(samples, usage))
        longest = max((s.n_tokens for c in out for s in c.samples), default=0)
        streamed = [(r, c) for r, c in zip(requests, out, strict=True) if r.on_text is not None]
        if streamed:  # word by word, as a streaming backend hands out text while it decodes
            for step in range(longest):
                if self.seconds_per_token:
                    await asyncio.sleep(self.seconds_per_token)
                for r, c in streamed:
                    for i, s in enumerate(c.samples):
                        words = _words(s.text)
                        if step < len(words):
                            r.on_text(i, words[step])
        elif self.seconds_per_token:
            await asyncio.sleep(self.seconds_per_token * longest)
        return out

    async def aclose(self) -> None:
        return None


class RecordingGenerator:
    """Wraps a real Generator, keeping every call's requests (``calls``, as ScriptedGenerator does); closing it
    leaves the wrapped generator open, so a test or benchmark can share one engine."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name
        self.calls: list[list[GenerationRequest]] = []

    @property
    def requests(self) -> list[GenerationRequest]:
        return [r for call in self.calls for r in call]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        self.calls.append(list(requests))
        return await self.inner.generate(requests)

    async def aclose(self) -> None:
        return None


class ScriptedScorer:
    """A Scorer from two functions: ``outcome(text) -> score`` and ``step(step_text) -> score`` (each may return
    None to abstain). Records every trace it was asked about."""

    name = "scripted"

    def __init__(self, outcome: Callable[[str], float | None] | None = None, step: Callable[[str], float | None] | None = None):
        self.outcome = outcome or (lambda text: None)
        self.step = step or (lambda text: None)
        self.outcome_calls: list[list[str]] = []
        self.step_calls: list[list[tuple[str, ...]]] = []

    async def score(self, problem, traces) -> list[float | None]:
        self.outcome_calls.append([t.text for t in traces])
        return [self.outcome(t.text) for t in traces]

    async def score_steps(self, problem, traces) -> list[list[float] | None]:
        self.step_calls.append([t.steps for t in traces])
        out = []
        for t in traces:
            scores = [self.step(s) for s in t.steps]
            out.append(None if any(s is None for s in scores) else scores)
        return out


class ArithmeticTask:
    """A tiny deterministic task (sums of two numbers) for tests and examples of a custom Task."""

    name = "arithmetic"

    def problems(self, limit, seed):
        from ponder.types import Problem

        n = limit or 10
        return [Problem(f"What is {seed + i} + {2 * i + 3}?", answer=str(seed + 3 * i + 3), id=f"sum-{seed}-{i}") for i in range(n)]

    def score(self, problem, text: str) -> float:
        from ponder.scorers.answers import extract_answer
        from ponder.scorers.reference import equivalent

        return float(equivalent(extract_answer(text), problem.answer))


class ScriptedExecutor:
    """An Executor that answers from a script instead of running code: ``script(code) -> stdout`` (a string), or
    an Execution for full control; a script that raises makes a failed run with the exception as its stderr.
    ``calls`` records every batch of programs.

    >>> import asyncio
    >>> ex = ScriptedExecutor(lambda code: str(eval(code.split("print(")[1].rstrip(")\\n"))) + "\\n")
    >>> [e.stdout for e in asyncio.run(ex.execute(["print(6 * 7)"], wall_seconds=1))]
    ['42\\n']
    """

    def __init__(self, script: Callable[[str], str | Execution], seconds: float = 0.01):
        self.script, self.seconds = script, seconds
        self.calls: list[list[str]] = []

    async def execute(self, programs, *, wall_seconds: float) -> list[Execution]:
        self.calls.append(list(programs))
        out = []
        for code in programs:
            try:
                got = self.script(code)
            except Exception as exc:  # the scripted program "raised"
                out.append(Execution(code, "", f"{type(exc).__name__}: {exc}\n", False, self.seconds, "exit status 1"))
                continue
            out.append(got if isinstance(got, Execution) else Execution(code, got, "", True, self.seconds))
        return out
