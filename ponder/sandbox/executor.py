"""The default Executor: each program in its own kernel sandbox, several at once (one per core by default)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from ponder.loop_slots import LoopSlots
from ponder.sandbox.process import SandboxLimits, SandboxResult, run_python
from ponder.types import Execution


def execution(code: str, r: SandboxResult) -> Execution:
    """A sandbox run as the Execution a strategy keeps in its trace."""
    error = None
    if r.timed_out:
        error = "timeout"
    elif r.output_truncated:
        error = "output cut at the cap"
    elif r.signal:
        error = f"killed by {r.signal}"
    elif r.returncode != 0:
        error = f"exit status {r.returncode}"
    return Execution(code=code, stdout=r.stdout, stderr=r.stderr, ok=r.ok, seconds=r.seconds, error=error)


class SandboxExecutor:
    """Runs programs with :func:`ponder.sandbox.run_python` under ``limits`` (the wall time given per call wins),
    at most ``max_parallel`` at once in each event loop that uses it (one executor may serve one ``asyncio.run``
    after another: :class:`ponder.loop_slots.LoopSlots`)."""

    def __init__(self, limits: SandboxLimits | None = None, max_parallel: int | None = None):
        self.limits = limits or SandboxLimits(wall_seconds=2.0, cpu_seconds=2, memory_mb=512, max_output_bytes=64 * 1024)
        self._slots = LoopSlots(max_parallel or max(1, os.cpu_count() or 1))

    async def _one(self, code: str, wall_seconds: float) -> Execution:
        limits = SandboxLimits(**{**self.limits.__dict__, "wall_seconds": wall_seconds,
                                  "cpu_seconds": max(1, int(wall_seconds + 0.999))})
        async with self._slots():
            r = await asyncio.to_thread(run_python, code, limits=limits)
        return execution(code, r)

    async def execute(self, programs: Sequence[str], *, wall_seconds: float) -> list[Execution]:
        return list(await asyncio.gather(*(self._one(code, wall_seconds) for code in programs)))
