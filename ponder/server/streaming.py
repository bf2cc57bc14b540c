"""Streaming a search's one path to the client as it decodes (strategies whose answer's trace is the text of their
one request: ``StrategyInfo.streams_path``), with progress ticks between the pieces."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

from ponder.progress import Tick, counters_of
from ponder.protocols import Generator
from ponder.types import Completion, GenerationRequest


class TextTap:
    """A Generator that asks the backend to hand every single-sample request's text to ``sink`` as it grows."""

    def __init__(self, inner: Generator, sink: Callable[[int, str], None]):
        self.inner, self.sink, self.name = inner, sink, inner.name

    @property
    def stats(self):
        return counters_of(self.inner)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return await self.inner.generate([replace(r, on_text=self.sink) if r.n == 1 else r for r in requests])

    async def aclose(self) -> None:
        """The wrapped generator belongs to the server."""


def tap(generator: Generator) -> tuple[TextTap, asyncio.Queue]:
    """A tapped generator and the queue its text arrives on (thread-safe: the engine calls from its own thread)."""
    pieces: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    return TextTap(generator, lambda index, piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)), pieces


async def pieces_and_ticks(task: asyncio.Future, pieces: asyncio.Queue, generator, interval: float) -> AsyncIterator[str | Tick]:
    """The text pieces as they arrive, and a Tick whenever ``interval`` passes without one, until the task is done
    and every piece it produced has been handed on."""
    counters = counters_of(generator)
    base = counters.completion_tokens if counters is not None else 0
    t0 = time.monotonic()
    while not (task.done() and pieces.empty()):
        getter = asyncio.ensure_future(pieces.get())
        done, _ = await asyncio.wait([getter, task], timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            yield getter.result()
            continue
        getter.cancel()
        if not done:
            yield Tick(time.monotonic() - t0, counters.completion_tokens - base if counters else None,
                       counters.active_sequences if counters else None)
