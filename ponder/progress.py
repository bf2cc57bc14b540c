"""Progress while a search runs: one helper for the command line's status line and the server's progress chunks.

``ticks`` yields a :class:`Tick` every ``interval`` seconds until the task is done, reading the generator's live
counters when it has them (:class:`ponder.protocols.ReportsProgress`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ponder.protocols import ProgressCounters, ReportsProgress


@dataclass(frozen=True)
class Tick:
    seconds: float
    completion_tokens: int | None = None  # generated since the search began (None: the backend cannot say)
    active_sequences: int | None = None

    def describe(self) -> str:
        """A status line: ``thinking… 120 tokens, 4 paths in flight, 3.0 s (40 tok/s)``.

        >>> Tick(3.0, 120, 4).describe(), Tick(1.5).describe()
        ('thinking… 120 tokens, 4 paths in flight, 3.0 s (40 tok/s)', 'thinking… 1.5 s')
        """
        if self.completion_tokens is None:
            return f"thinking… {self.seconds:.1f} s"
        rate = self.completion_tokens / max(self.seconds, 1e-9)
        return (f"thinking… {self.completion_tokens} tokens, {self.active_sequences} paths in flight, "
                f"{self.seconds:.1f} s ({rate:.0f} tok/s)")

    def to_dict(self) -> dict:
        out: dict = {"seconds": round(self.seconds, 2)}
        if self.completion_tokens is not None:
            out["engine_completion_tokens"] = self.completion_tokens
        return out


def counters_of(generator) -> ProgressCounters | None:
    """The generator's live counters, or None when it keeps none."""
    return generator.stats if isinstance(generator, ReportsProgress) else None


class Ticker:
    """Ticks for one search: seconds since it began and, where the generator keeps counters, the tokens generated
    since then and the paths in flight."""

    def __init__(self, generator):
        self.counters = counters_of(generator)
        self.base = self.counters.completion_tokens if self.counters is not None else 0
        self.t0 = time.monotonic()

    def tick(self) -> Tick:
        seconds = time.monotonic() - self.t0
        if self.counters is None:
            return Tick(seconds)
        return Tick(seconds, self.counters.completion_tokens - self.base, self.counters.active_sequences)


async def ticks(task: asyncio.Future, generator, interval: float) -> AsyncIterator[Tick]:
    """A Tick every ``interval`` seconds while ``task`` runs (none once it is done)."""
    ticker = Ticker(generator)
    while not task.done():
        await asyncio.wait([task], timeout=interval)
        if task.done():
            return
        yield ticker.tick()
