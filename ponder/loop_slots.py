"""A concurrency limit that any event loop may use: an ``asyncio.Semaphore`` belongs to the loop it first waited in,
so an object that limits its own work (programs in the sandbox, tests run by a scorer) and outlives one
``asyncio.run`` keeps one semaphore a loop."""

from __future__ import annotations

import asyncio
import weakref


class LoopSlots:
    """At most ``n`` holders at once within each event loop: ``async with slots(): ...``."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"at least one slot is needed, got {n}")
        self.n = n
        self._sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def __call__(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if (sem := self._sems.get(loop)) is None:
            sem = self._sems[loop] = asyncio.Semaphore(self.n)
        return sem
