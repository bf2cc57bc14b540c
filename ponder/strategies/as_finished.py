"""Work on each sample as it ends: run its program, score it, while the batch's other samples still decode.

A batch of ``n`` paths ends with its longest one; the others end earlier and would wait for it. Through the
request's ``on_sample`` hook the embedded engine says when each sample ends, and :func:`generate_then` starts the
strategy's work on it at once (a sandbox run, a verifier's read of the path, which the engine evaluates in the same
batches as the paths still decoding). A backend that does not call the hook loses nothing: the work on every sample
it did not report starts when the batch is done, so results never depend on the backend's timing, only when they
arrive does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from ponder.protocols import Executor, Generator, Scorer
from ponder.strategies.base import Meter, score_candidates, to_candidate
from ponder.strategies.execution import WALL_SECONDS, default_executor, run_program, with_execution
from ponder.types import Candidate, Completion, GenerationRequest, Problem, Sample

T = TypeVar("T")


async def generate_then(generator: Generator, requests: Sequence[GenerationRequest],
                        work: Callable[[Sample], Awaitable[T]]) -> tuple[list[Completion], list[list[T]]]:
    """The generator's completions of ``requests``, and ``work`` done on each of their samples (in the same order:
    one list per request), each started as soon as its sample ended. If generating fails, the work started is
    cancelled; if any work fails, the error is raised once every piece has settled."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the work runs in the strategy's context (the scorer account, the run's ids)
    started: dict[tuple[int, int], asyncio.Future[T]] = {}

    def start(key: tuple[int, int], sample: Sample) -> None:
        if key not in started:
            started[key] = asyncio.ensure_future(work(sample))

    def hook(r: int) -> Callable[[int, Sample], None]:
        def ended(index: int, sample: Sample) -> None:  # the engine's thread, or the loop's own for other backends
            loop.call_soon_threadsafe(start, (r, index), sample, context=context)
        return ended

    tapped = [replace(req, on_sample=_both(req.on_sample, hook(r))) for r, req in enumerate(requests)]
    try:
        completions = await generator.generate(tapped)
    except BaseException:
        for f in started.values():
            f.cancel()
        raise
    for r, c in enumerate(completions):
        for i, s in enumerate(c.samples):
            start((r, i), s)
    keys = [(r, i) for r, c in enumerate(completions) for i in range(len(c.samples))]
    settled = await asyncio.gather(*(started[k] for k in keys), return_exceptions=True)
    for k in set(started) - set(keys):  # a hook for a sample the completion does not hold: nothing waits on it
        started[k].cancel()
    failed = next((x for x in settled if isinstance(x, BaseException)), None)
    if failed is not None:
        raise failed
    done = iter(settled)
    return completions, [[next(done) for _ in c.samples] for c in completions]


def _both(first: Callable[[int, Sample], None] | None, then: Callable[[int, Sample], None]) -> Callable[[int, Sample], None]:
    """A hook that calls the request's own ``on_sample`` (if it had one) and then ``then``."""
    if first is None:
        return then

    def hook(index: int, sample: Sample) -> None:
        first(index, sample)
        then(index, sample)
    return hook


async def sample_candidates(generator: Generator, requests: Sequence[GenerationRequest], meter: Meter, *,
                            execute: bool = False, executor: Executor | None = None,
                            wall_seconds: float = WALL_SECONDS, scorer: Scorer | None = None,
                            problem: Problem | None = None) -> tuple[Candidate, ...]:
    """The samples of ``requests`` as candidates (their usage added to ``meter``), each made as its sample ends:
    its program run when ``execute`` (the prompt is an executing template, or the strategy is ``program``), and scored when ``scorer`` is given. A scorer that
    judges each trace by itself alone (``per_trace = True``: the learned verifier) scores each candidate as it
    is made; any other sees all of them at once, after the batch (a judgement relative to the others stays so)."""
    executor = (executor or default_executor()) if execute else None  # one executor: its limit on parallel runs holds
    alone = scorer is not None and getattr(scorer, "per_trace", False)

    async def made(sample: Sample) -> Candidate:
        candidate = to_candidate(sample)
        if executor is not None:
            candidate = with_execution(candidate, await run_program(sample.text, meter, executor, wall_seconds))
        if alone:
            [candidate] = await score_candidates(scorer, problem, [candidate])
        return candidate

    completions, made_per_request = await generate_then(generator, requests, made)
    meter.add(completions)
    candidates = tuple(c for per in made_per_request for c in per)
    if scorer is not None and not alone:
        candidates = await score_candidates(scorer, problem, candidates)
    return candidates
