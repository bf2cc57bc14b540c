"""Watching a search while it runs: strategies report what they do (a node added to the tree, a node scored, a
branch pruned, visits backed up) to whoever is listening, and nobody pays for it when nobody is.

A listener is a plain callable taking one event dict; :func:`listening` installs one for the code run inside it (a
context variable, so concurrent searches on one event loop each report to their own listener). The trace explorer
(``/ui``) streams these events to the browser; the final :class:`ponder.types.Result` carries the same tree whole.

>>> seen = []
>>> with listening(seen.append):
...     emit("node", id=1, parent=0)
>>> emit("node", id=2, parent=0)  # nobody listening: nothing happens
>>> seen
[{'event': 'node', 'id': 1, 'parent': 0}]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

Listener = Callable[[dict[str, Any]], None]

_listener: ContextVar[Listener | None] = ContextVar("ponder_search_listener", default=None)


def active() -> bool:
    """Whether anyone listens (strategies skip building events nobody reads)."""
    return _listener.get() is not None


def emit(event: str, **data: Any) -> None:
    """Report one event of the running search to the listener, if there is one."""
    listener = _listener.get()
    if listener is not None:
        listener({"event": event, **data})


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the events of the searches run inside this block (and the tasks they start) to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
