"""Charging what scorers spend to the strategy run they serve.

A judge scorer asks the model for verdicts: real requests, prompt tokens and a verdict token each, which the
strategy's own meter never sees. The scorer charges them here; every registered strategy runs inside
``scorer_usage()`` (see ``StrategyInfo``), which adds them to its Result's usage. A nested strategy run (``auto``
running ``weighted_best_of_n``) gets its own account, and its Result, usage included, is added to the outer run's
meter like any sub-run: nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from ponder.types import Result, Usage


@dataclass
class Account:
    usage: Usage = field(default_factory=Usage)


_current: ContextVar[Account | None] = ContextVar("ponder_scorer_account", default=None)


def charge(usage: Usage) -> None:
    """Charge a scorer's spending to the run in progress (nothing happens outside one)."""
    account = _current.get()
    if account is not None:
        account.usage = account.usage + usage


@contextmanager
def scorer_usage() -> Iterator[Account]:
    """An account for the scorer spending of the code inside the block (tasks it starts share it)."""
    account = Account()
    token = _current.set(account)
    try:
        yield account
    finally:
        _current.reset(token)


def spent_so_far() -> Usage:
    """What scorers have charged to the run in progress until now (nothing outside one)."""
    account = _current.get()
    return account.usage if account is not None else Usage()


def with_scorer_usage(r: Result, spent: Usage) -> Result:
    """``r`` with its scorers' spending added to its usage and listed apart in ``extra["scorer_usage"]`` (the
    scorer's time is already in the run's wall time, so only its requests and tokens are added)."""
    if spent.requests == 0 and spent.total_tokens == 0:
        return r
    spent = replace(spent, seconds=0.0)
    return replace(r, usage=r.usage + spent, extra=r.extra + (("scorer_usage", {
        "requests": spent.requests, "prompt_tokens": spent.prompt_tokens,
        "cached_prompt_tokens": spent.cached_prompt_tokens, "completion_tokens": spent.completion_tokens}),))
