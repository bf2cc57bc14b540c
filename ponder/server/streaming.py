"""Streaming a search's one path to the client as it decodes (strategies whose answer's trace is the text of their
one request: ``StrategyInfo.streams_path``), with progress ticks between the pieces."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

from ponder.progress import Tick, Ticker, counters_of
from ponder.protocols import Generator
from ponder.types import Completion, GenerationRequest


class TextTap:
    """A Generator for a strategy that builds one path (``streams_path``): the backend hands each request's text to
    ``sink`` as it grows, and text the strategy itself puts into the path between requests (budget forcing's "Wait",
    a tool's output block: the next request's prefix beyond what was streamed) is handed on first. If the strategy
    rewrites its path otherwise, streaming stops and the trace is sent whole at the end."""

    def __init__(self, inner: Generator, sink: Callable[[int, str], None]):
        self.inner, self.name = inner, inner.name
        self._sink = sink
        self.sent = ""
        self.broken = False

    @property
    def stats(self):
        return counters_of(self.inner)

    def _emit(self, index: int, piece: str) -> None:
        if not self.broken:
            self.sent += piece
            self._sink(index, piece)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if len(requests) != 1 or requests[0].n != 1:
            self.broken = True  # more than one path at a time: nothing to stream
            return await self.inner.generate(requests)
        [req] = requests
        prefix = req.prefix
        if prefix.startswith(self.sent):
            if len(prefix) > len(self.sent):
                self._emit(0, prefix[len(self.sent):])
        elif self.sent.rstrip() and prefix.startswith(self.sent.rstrip()):  # trailing space trimmed before an insert
            self._emit(0, prefix[len(self.sent.rstrip()):])
        else:
            self.broken = True
        return await self.inner.generate([replace(req, on_text=self._emit)])

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
    ticker = Ticker(generator)
    while not (task.done() and pieces.empty()):
        getter = asyncio.ensure_future(pieces.get())
        done, _ = await asyncio.wait([getter, task], timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            yield getter.result()
            continue
        getter.cancel()
        if not done:
            yield ticker.tick()


class EventLog:
    """The search's events (``ponder.observe``) and its paths' text as it decodes, gathered from any thread and
    handed to the stream in batches: consecutive text of one path is joined, so a stream carries one event per path
    per batch, not one per token."""

    def __init__(self) -> None:
        self._events: deque[dict] = deque()

    def __call__(self, event: dict) -> None:
        self._events.append(event)  # deque.append is atomic: the engine's thread and the event loop both call it

    def drain(self) -> list[dict]:
        """The events so far, each path's text since the last other event joined into one (paths decode in step, so
        their pieces interleave token by token).

        >>> log = EventLog()
        >>> for e in ({"event": "text", "path": 0, "text": "a"}, {"event": "text", "path": 1, "text": "x"},
        ...           {"event": "text", "path": 0, "text": "b"}, {"event": "path_end", "first": 0, "paths": []},
        ...           {"event": "text", "path": 0, "text": "c"}):
        ...     log(e)
        >>> [(e["event"], e.get("text")) for e in log.drain()]
        [('text', 'ab'), ('text', 'x'), ('path_end', None), ('text', 'c')]
        """
        out: list[dict] = []
        open_text: dict[int, int] = {}  # path -> index in out of its text event since the last other event
        while self._events:
            e = self._events.popleft()
            if e["event"] != "text":
                out.append(e)
                open_text.clear()
            elif e["path"] in open_text:
                i = open_text[e["path"]]
                out[i] = {**out[i], "text": out[i]["text"] + e["text"]}
            else:
                open_text[e["path"]] = len(out)
                out.append(dict(e))
        return out


class PathTap:
    """A Generator that reports every sample's text as it decodes (``text`` events with a path number: the n-th
    sample this search asked for) and when each ends (``path_end``), for the trace explorer's live view."""

    def __init__(self, inner: Generator, log: Callable[[dict], None]):
        self.inner, self.name, self._log = inner, inner.name, log
        self._paths = 0

    @property
    def stats(self):
        return counters_of(self.inner)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        tapped, firsts = [], []
        for req in requests:
            first = self._paths
            self._paths += req.n
            firsts.append(first)
            self._log({"event": "paths", "first": first, "n": req.n})
            tapped.append(replace(req, on_text=self._sink(req.on_text, first)))
        completions = await self.inner.generate(tapped)
        for first, completion in zip(firsts, completions, strict=True):
            self._log({"event": "path_end", "first": first,
                       "paths": [[s.finish_reason, s.n_tokens] for s in completion.samples]})
        return completions

    def _sink(self, outer: Callable[[int, str], None] | None, first: int) -> Callable[[int, str], None]:
        def on_text(index: int, piece: str) -> None:
            self._log({"event": "text", "path": first + index, "text": piece})
            if outer is not None:
                outer(index, piece)
        return on_text

    async def aclose(self) -> None:
        """The wrapped generator belongs to the server."""
