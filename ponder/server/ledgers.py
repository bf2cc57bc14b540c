"""Per-client token ledgers for ``ponder serve --passthrough``: a client that sends its requests under
``/ledger/TAG/v1/...`` has every token of them counted in TAG's ledger (``GET /ledger/TAG``) as well as in
``/metrics``. Many runs of another tool can then share one engine at once (their samples batched together) and
each run's cost is still read at the server, never taken from the tool's own accounting.

A tag is 1-128 letters, digits, ``.``, ``_`` or ``-``. The server keeps the newest ``capacity`` ledgers; an older
one is dropped (its tokens stay in ``/metrics``), so a client reads its ledger when its run ends.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import asdict, dataclass

from ponder.server.responses import ApiError
from ponder.types import Usage

TAG = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass
class Ledger:
    """What one tag's requests cost: answered and failed requests, tokens evaluated, reused and generated."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Ledgers:
    """The newest ``capacity`` tags' ledgers.

    >>> books = Ledgers(capacity=2)
    >>> books.charge("a", Usage(prompt_tokens=10, completion_tokens=5))
    >>> books.charge("a", None)  # a request that failed
    >>> books.get("a").to_dict()
    {'requests': 1, 'errors': 1, 'prompt_tokens': 10, 'cached_prompt_tokens': 0, 'completion_tokens': 5}
    >>> books.charge("b", None); books.charge("c", None)
    >>> books.get("a") is None  # the oldest went when a third tag came
    True
    """

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._books: OrderedDict[str, Ledger] = OrderedDict()

    def charge(self, tag: str, usage: Usage | None) -> None:
        """Count one request under ``tag``: its usage, or a failure when ``usage`` is None."""
        book = self._books.pop(tag, None) or Ledger()
        self._books[tag] = book
        while len(self._books) > self.capacity:
            self._books.popitem(last=False)
        if usage is None:
            book.errors += 1
            return
        book.requests += 1
        book.prompt_tokens += usage.prompt_tokens
        book.cached_prompt_tokens += usage.cached_prompt_tokens
        book.completion_tokens += usage.completion_tokens

    def get(self, tag: str) -> Ledger | None:
        return self._books.get(tag)


def checked_tag(tag: str) -> str:
    """``tag`` if it is a valid ledger name, else a 400 saying what one is."""
    if not TAG.match(tag):
        raise ApiError(400, "a ledger tag is 1-128 letters, digits, '.', '_' or '-'", param="tag")
    return tag
