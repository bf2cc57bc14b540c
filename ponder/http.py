"""POST JSON with retries: shared by every HTTP client in ponder (generation servers, reward servers)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import httpx

from ponder.errors import BackendError, BackendUnavailable, ContextOverflow

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class DeadlinePassed(Exception):
    """The caller's deadline passed before an answer came."""


def error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)[:500]
        return str(err)[:500]
    except ValueError:
        return resp.text[:500] or resp.reason_phrase


def retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def post_json(client: httpx.AsyncClient, url: str, body: dict[str, Any], *, max_retries: int, backoff: float,
                    deadline: float | None = None, semaphore: asyncio.Semaphore | None = None,
                    on_attempt=None) -> dict[str, Any]:
    """POST ``body``; retry connection errors, timeouts, 429 and 5xx with exponential backoff and jitter (honouring
    ``Retry-After``); raise :class:`BackendUnavailable` when retries run out, :class:`BackendError` (or
    :class:`ContextOverflow`) at once for other 4xx, and :class:`DeadlinePassed` at the deadline."""
    last, wait = "", None
    for attempt in range(max_retries + 1):
        if attempt:
            delay = wait if wait is not None else backoff * (2 ** (attempt - 1)) * (0.5 + random.random())
            await asyncio.sleep(min(delay, 60.0))
        wait = None
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise DeadlinePassed()
        try:
            async with semaphore if semaphore is not None else contextlib.nullcontext():
                if on_attempt:
                    on_attempt()
                resp = await asyncio.wait_for(client.post(url, json=body), timeout)
        except TimeoutError:
            raise DeadlinePassed() from None
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}".rstrip(": ")
            continue
        if resp.status_code in RETRY_STATUS:
            last = f"HTTP {resp.status_code}: {error_text(resp)}"
            wait = retry_after(resp)
            continue
        if resp.status_code >= 400:
            msg = error_text(resp)
            if any(s in msg.lower() for s in ("context length", "context window", "maximum context", "too long")):
                raise ContextOverflow(f"{url} rejected the request as too long: {msg}")
            raise BackendError(f"{url} answered HTTP {resp.status_code}: {msg}")
        try:
            return resp.json()
        except ValueError:
            raise BackendError(f"{url} answered with something that is not JSON: {resp.text[:200]!r}") from None
    raise BackendUnavailable(f"could not get an answer from {url} after {max_retries + 1} attempts; last error: {last}")
