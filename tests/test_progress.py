"""One progress helper for the CLI and the server: ticks while a search runs, with the backend's counters when it
keeps them."""

import asyncio

from ponder.progress import Tick, counters_of, ticks
from ponder.testing import ScriptedGenerator


class Counting:
    """A generator-like object whose counters move while a task runs (as the engine's stats do)."""

    class Stats:
        completion_tokens = 100
        active_sequences = 3

    stats = Stats()


def test_ticks_come_while_the_task_runs_and_read_the_counters():
    gen = Counting()

    async def work():
        for _ in range(5):
            await asyncio.sleep(0.05)
            gen.stats.completion_tokens += 10
        return "done"

    async def watch():
        task = asyncio.ensure_future(work())
        seen = [t async for t in ticks(task, gen, 0.06)]
        return seen, await task

    seen, result = asyncio.run(watch())
    assert result == "done" and 2 <= len(seen) <= 5
    assert all(isinstance(t, Tick) and t.active_sequences == 3 for t in seen)
    assert [t.completion_tokens for t in seen] == sorted(t.completion_tokens for t in seen) and seen[-1].completion_tokens > 0
    assert seen[0].completion_tokens < 100  # counted from where the search began, not the backend's start


def test_a_backend_without_counters_gets_seconds_only():
    assert counters_of(ScriptedGenerator(["x"])) is None

    async def watch():
        task = asyncio.ensure_future(asyncio.sleep(0.15))
        return [t async for t in ticks(task, ScriptedGenerator(["x"]), 0.05)]

    seen = asyncio.run(watch())
    assert seen and all(t.completion_tokens is None and "tokens" not in t.to_dict() for t in seen)
