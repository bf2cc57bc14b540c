"""``ponder serve --passthrough``: the server answers as the bare model would, no search and nothing added to the
prompt, so another tool (a peer's search, an agent framework) can run on ponder's engine and every token it spends
is counted here (``/metrics``: ``ponder_tokens_total{strategy="passthrough"}``), not taken from the tool's own
accounting.

A request is one batched call to the engine: the messages rendered with the model's chat template (or the raw
prompt of a completion), ``n`` samples (sample i seeded ``seed + i``), the OpenAI sampling fields honoured
(``max_completion_tokens`` as well as ``max_tokens``; ``stop``; ``logprobs``/``top_logprobs``; llama.cpp's
``top_k`` and ``min_p`` extensions). Where a request leaves top-p, top-k or min-p unset, the server's sampling
defaults apply: OpenAI's (top-p 1, no top-k) unless it was started with ponder's own (``--passthrough-sampling
ponder``: top-k 40, top-p 0.95, what ponder's strategies sample with), so a tool compared with ponder's strategies
draws from the same distribution. The ``ponder`` field and ``reasoning_effort`` are refused: there is no search to
configure.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ponder.errors import InvalidRequest
from ponder.server.responses import ApiError, sse
from ponder.server.schema import ChatRequest, CompletionRequest
from ponder.types import MAX_TOP_K, Completion, GenerationRequest, Message, Prompt, Sample, SamplingParams

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True)
class SamplingDefaults:
    """What a pass-through request samples with where it sets no top-p, top-k or min-p."""

    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k
    min_p: float = 0.0


def sampling_defaults(name: str) -> SamplingDefaults:
    """``openai``: the OpenAI API's (top-p 1, no top-k); ``ponder``: what ponder's own strategies sample with.

    >>> sampling_defaults("ponder")
    SamplingDefaults(top_p=0.95, top_k=40, min_p=0.0)
    """
    if name == "openai":
        return SamplingDefaults()
    if name == "ponder":
        from ponder.strategies.base import SamplingOptions

        fields = SamplingOptions.model_fields
        return SamplingDefaults(fields["top_p"].default, fields["top_k"].default, fields["min_p"].default)
    raise InvalidRequest(f"unknown pass-through sampling defaults {name!r}: openai or ponder")


def _extension(extra: dict[str, Any], name: str, kind: type, low: float, high: float, default):
    """A llama.cpp sampling extension (``top_k``, ``min_p``) of the request, checked, or the default."""
    value = extra.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()) \
            or not low <= value <= high:
        raise ApiError(400, f"{name} must be {'an integer' if kind is int else 'a number'} in [{low:g}, {high:g}], got {value!r}",
                       param=name)
    return kind(value)


def request_of(req: ChatRequest | CompletionRequest, *, max_n: int, max_tokens: int, max_prompt_chars: int,
               deadline: float, defaults: SamplingDefaults = SamplingDefaults()) -> GenerationRequest:
    """The engine request a pass-through request asks for, or a 400 saying what cannot be passed through."""
    if req.ponder is not None or getattr(req, "reasoning_effort", None):
        raise ApiError(400, "this server passes requests through to the model (--passthrough): no ponder options or "
                            "reasoning_effort", param="ponder")
    if req.n > max_n:
        raise ApiError(400, f"n must be at most {max_n} on this server, got {req.n}", param="n")
    extra = req.model_extra or {}
    logprobs = None
    if extra.get("logprobs") is True or isinstance(extra.get("logprobs"), int) and not isinstance(extra.get("logprobs"), bool):
        top = extra.get("top_logprobs", 0 if extra.get("logprobs") is True else extra.get("logprobs"))
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise ApiError(400, "top_logprobs must be an integer in [0, 20]", param="top_logprobs")
        logprobs = top
    if isinstance(req, ChatRequest):
        messages = []
        for m in req.messages:
            if m.role not in ROLES:
                raise ApiError(400, f"message role {m.role!r} cannot be passed through (system, developer, user, assistant)",
                               param="messages")
            messages.append(Message(ROLES[m.role], m.text()))
        prompt = Prompt(messages=tuple(messages))
        chars = sum(len(m.content) for m in messages)
    else:
        prompt, chars = Prompt.raw(req.prompt), len(req.prompt)
    if chars > max_prompt_chars:
        raise ApiError(400, f"the prompt is {chars} characters; this server takes at most {max_prompt_chars}", param="messages")
    asked = getattr(req, "max_completion_tokens", None) or req.max_tokens or min(1024, max_tokens // max(1, req.n))
    if asked * req.n > max_tokens:
        raise ApiError(400, f"{req.n} samples of {asked} tokens is above this server's cap of {max_tokens} generated "
                            "tokens a request", param="max_tokens")
    stop = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    try:
        params = SamplingParams(temperature=1.0 if req.temperature is None else req.temperature,  # OpenAI's default
                                top_p=req.top_p or defaults.top_p, top_k=_extension(extra, "top_k", int, 0, MAX_TOP_K, defaults.top_k),
                                min_p=_extension(extra, "min_p", float, 0, 0.999, defaults.min_p), max_tokens=asked,
                                stop=tuple(stop), seed=req.seed, logprobs=logprobs)
        return GenerationRequest(prompt, n=req.n, params=params, deadline=deadline)
    except InvalidRequest as exc:
        raise ApiError(400, str(exc)) from None


def finish(s: Sample) -> str:
    return "length" if s.finish_reason in ("length", "deadline", "low_confidence") else "stop"


def logprobs_of(s: Sample, kind: str) -> dict[str, Any] | None:
    if s.logprobs is None:
        return None
    if kind == "chat":
        return {"content": [{"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
                             "top_logprobs": [{"token": a, "logprob": b, "bytes": list(a.encode())} for a, b in t.top]}
                            for t in s.logprobs]}
    return {"tokens": [t.token for t in s.logprobs], "token_logprobs": [t.logprob for t in s.logprobs],
            "top_logprobs": [dict(t.top) for t in s.logprobs], "text_offset": []}


def usage_of(c: Completion) -> dict[str, Any]:
    u = c.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens}}


def response(kind: str, model: str, c: Completion) -> dict[str, Any]:
    rid, created = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}", int(time.time())
    if kind == "chat":
        choices = [{"index": i, "message": {"role": "assistant", "content": s.text}, "logprobs": logprobs_of(s, kind),
                    "finish_reason": finish(s)} for i, s in enumerate(c.samples)]
        return {"id": rid, "object": "chat.completion", "created": created, "model": model, "choices": choices,
                "usage": usage_of(c)}
    choices = [{"index": i, "text": s.text, "logprobs": logprobs_of(s, kind), "finish_reason": finish(s)}
               for i, s in enumerate(c.samples)]
    return {"id": rid, "object": "text_completion", "created": created, "model": model, "choices": choices, "usage": usage_of(c)}


async def stream(kind: str, model: str, request: GenerationRequest, generate, include_usage: bool) -> AsyncIterator[bytes]:
    """The samples' text as the engine decodes it (a delta per piece, by sample index), then each finish reason."""
    rid, created = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}", int(time.time())
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    tapped = GenerationRequest(request.prompt, request.n, request.params, request.prefix, request.deadline,
                               on_text=lambda i, piece: loop.call_soon_threadsafe(pieces.put_nowait, (i, piece)))
    task = asyncio.ensure_future(generate(tapped))

    def chunk(choices, **extra):
        return sse({"id": rid, "object": obj, "created": created, "model": model, "choices": choices, **extra})

    def delta(i: int, text: str, fin=None):
        if kind == "chat":
            return chunk([{"index": i, "delta": {"content": text}, "logprobs": None, "finish_reason": fin}])
        return chunk([{"index": i, "text": text, "logprobs": None, "finish_reason": fin}])

    sent = [""] * request.n
    try:
        if kind == "chat":
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None} for i in range(request.n)])
        while not (task.done() and pieces.empty()):
            getter = asyncio.ensure_future(pieces.get())
            done, _ = await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                i, piece = getter.result()
                sent[i] += piece
                yield delta(i, piece)
            else:
                getter.cancel()
        try:
            completion = task.result()
        except ApiError as exc:
            yield sse(exc.body())
            yield b"data: [DONE]\n\n"
            return
        for i, s in enumerate(completion.samples):  # what was not streamed (a backend that cannot stream), then the end
            rest = s.text[len(sent[i]):] if s.text.startswith(sent[i]) else ""
            yield delta(i, rest, finish(s)) if kind != "chat" else delta(i, rest) + chunk(
                [{"index": i, "delta": {}, "logprobs": logprobs_of(s, kind), "finish_reason": finish(s)}])
        if include_usage:
            yield chunk([], usage=usage_of(completion))
        yield b"data: [DONE]\n\n"
    finally:
        if not task.done():
            task.cancel()
