"""Bookkeeping of llama.cpp sequence slots as a prefix cache.

The embedded engine runs one llama.cpp context with a unified KV cache and ``n_slots`` sequence ids. A slot is
*free*, *busy* (a sequence being prefilled or decoded) or *cached* (a finished sequence whose KV is kept so a
later request that starts with the same tokens can copy it instead of evaluating it again). With a unified
cache, copying a prefix from one sequence id to another shares the cells, it does not duplicate them.

This module only decides; the engine performs the llama.cpp calls that the decisions imply.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class Slot:
    id: int
    tokens: list[int] = field(default_factory=list)  # tokens whose KV this slot holds (or will, once evaluated)
    state: str = "free"  # free | busy | cached
    evaluated: int = 0  # how many of ``tokens`` are already in the KV cache
    last_used: int = 0


@dataclass(frozen=True)
class PrefixMatch:
    slot: int | None  # the slot to copy from, or None when nothing useful is cached
    length: int  # how many leading tokens to copy
    pending: bool  # True if the best source is still being evaluated: wait a step and match again


class SlotTable:
    """Chooses slots for new sequences and the cached prefix each one can start from.

    >>> t = SlotTable(2)
    >>> a = t.acquire(); t.assign(a, [1, 2, 3]); t.mark_evaluated(a, 3); t.release(a)
    >>> t.best_prefix([1, 2, 9])
    PrefixMatch(slot=0, length=2, pending=False)
    """

    def __init__(self, n_slots: int):
        self.slots = [Slot(i) for i in range(n_slots)]
        self._clock = itertools.count(1)

    def n_available(self) -> int:
        return sum(1 for s in self.slots if s.state != "busy")

    def best_prefix(self, tokens: list[int]) -> PrefixMatch:
        """The slot sharing the longest prefix with ``tokens`` (at most ``len(tokens) - 1``: the last token must be
        evaluated to get logits). A busy slot counts only for the part it has evaluated, unless waiting for it
        would save more than it costs (``pending``)."""
        limit = len(tokens) - 1
        best, best_len, best_pending = None, 0, False
        for s in self.slots:
            if s.state == "free" or not s.tokens:
                continue
            n = min(common_prefix(s.tokens, tokens), limit)
            ready = min(n, s.evaluated)
            if ready > best_len:
                best, best_len, best_pending = s.id, ready, False
            if s.state == "busy" and n > ready and n > best_len:
                best, best_len, best_pending = s.id, n, True
        if best_pending:
            # only worth waiting for if the pending part is long; otherwise take what is ready now
            ready_best = self.best_ready(tokens)
            if best_len - ready_best.length < 8:
                return ready_best
        return PrefixMatch(best, best_len, best_pending)

    def best_ready(self, tokens: list[int]) -> PrefixMatch:
        limit = len(tokens) - 1
        best, best_len = None, 0
        for s in self.slots:
            if s.state == "free" or not s.tokens:
                continue
            n = min(common_prefix(s.tokens, tokens), limit, s.evaluated)
            if n > best_len:
                best, best_len = s.id, n
        return PrefixMatch(best, best_len, False)

    def acquire(self, protect: frozenset[int] = frozenset()) -> int | None:
        """A slot for a new sequence: a free one, else the least recently used cached one (which the caller must
        clear in llama.cpp). None if every slot is busy or protected."""
        free = [s for s in self.slots if s.state == "free"]
        if free:
            slot = free[0]
        else:
            cached = [s for s in self.slots if s.state == "cached" and s.id not in protect]
            if not cached:
                return None
            slot = min(cached, key=lambda s: s.last_used)
        slot.state, slot.tokens, slot.evaluated, slot.last_used = "busy", [], 0, next(self._clock)
        return slot.id

    def take(self, slot_id: int, keep: int) -> None:
        """Claim a cached slot for a new sequence that starts with its first ``keep`` tokens (the caller trims the
        rest from llama.cpp): no copy at all."""
        s = self.slots[slot_id]
        assert s.state == "cached", s.state
        del s.tokens[keep:]
        s.state, s.evaluated, s.last_used = "busy", min(s.evaluated, keep), next(self._clock)

    def assign(self, slot_id: int, tokens: list[int]) -> None:
        self.slots[slot_id].tokens = list(tokens)

    def mark_evaluated(self, slot_id: int, n: int) -> None:
        self.slots[slot_id].evaluated = n

    def append(self, slot_id: int, token: int) -> None:
        """A sampled token that will be evaluated into this slot's KV at the next step."""
        self.slots[slot_id].tokens.append(token)

    def release(self, slot_id: int) -> None:
        """The sequence is done; keep what was evaluated as a cache entry."""
        s = self.slots[slot_id]
        del s.tokens[s.evaluated :]
        s.state = "cached" if s.tokens else "free"
        s.last_used = next(self._clock)

    def forget(self, slot_id: int) -> None:
        """The slot's KV was cleared: it holds nothing."""
        s = self.slots[slot_id]
        s.state, s.tokens, s.evaluated = "free", [], 0

    def evict_lru(self, protect: frozenset[int] = frozenset()) -> int | None:
        """Drop the least recently used cached entry; return its slot id (to clear in llama.cpp) or None."""
        cached = [s for s in self.slots if s.state == "cached" and s.id not in protect]
        if not cached:
            return None
        s = min(cached, key=lambda s: s.last_used)
        s.state, s.tokens, s.evaluated = "free", [], 0
        return s.id
