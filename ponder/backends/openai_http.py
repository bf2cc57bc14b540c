"""A Generator over any OpenAI-compatible server: vLLM, SGLang, llama-server, Ollama, llama-cpp-python, OpenAI.

Chat prompts go to ``/v1/chat/completions``, raw-text prompts to ``/v1/completions``. ``n`` is sent as is; a
server that returns fewer choices than asked (llama-server, Ollama and llama-cpp-python ignore ``n``) is topped up
with one request per missing sample, sample ``i`` seeded ``seed + i``, and remembered so later calls split at once.
A continuation of an assistant ``prefix`` is sent as a trailing assistant message with vLLM/SGLang's
``continue_final_message`` (llama-server treats a trailing assistant message as a prefill the same way); with a
raw-text prompt the prefix is simply appended. Transient failures (connection errors, timeouts, 429 and 5xx) are
retried with exponential backoff and jitter, honouring ``Retry-After``; anything else fails at once with the
server's own message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from ponder.errors import BackendError, BackendUnavailable, InvalidRequest
from ponder.http import DeadlinePassed, post_json
from ponder.types import Completion, GenerationRequest, Sample, TokenLogprob, Usage


class OpenAIHTTPGenerator:
    """``OpenAIHTTPGenerator("http://127.0.0.1:8000/v1", model="qwen")`` — see the module docstring."""

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None, max_concurrency: int = 8,
                 timeout: float = 600.0, connect_timeout: float = 10.0, max_retries: int = 4, backoff: float = 0.5,
                 name: str | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise InvalidRequest(f"server URL must start with http:// or https://, got {base_url!r}")
        if max_concurrency < 1:
            raise InvalidRequest(f"max_concurrency must be >= 1, got {max_concurrency}")
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.model = model
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.name = name or model or self.base_url
        self.honours_n: bool | None = None  # learnt from the first n > 1 request
        self.http_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _ensure_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
            self._client = httpx.AsyncClient(timeout=self.timeout, headers=headers, limits=limits)
            self._sem = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        assert self._sem is not None
        return self._client, self._sem

    async def _post(self, path: str, body: dict[str, Any], deadline: float | None) -> dict[str, Any]:
        client, sem = self._ensure_client()

        def count() -> None:
            self.http_requests += 1

        return await post_json(client, self.base_url + path, body, max_retries=self.max_retries, backoff=self.backoff,
                               deadline=deadline, semaphore=sem, on_attempt=count)

    async def _model_name(self) -> str:
        if self.model is None:
            client, _ = self._ensure_client()
            try:
                resp = await client.get(self.base_url + "/models")
                resp.raise_for_status()
                data = resp.json().get("data") or []
                self.model = data[0]["id"]
            except (httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
                raise BackendUnavailable(f"no model given and {self.base_url}/models did not name one ({exc})") from None
        return self.model

    # -- one request ---------------------------------------------------------------------------------------------

    def _body(self, request: GenerationRequest, model: str, n: int, seed: int | None) -> tuple[str, dict[str, Any]]:
        p = request.params
        body: dict[str, Any] = {"model": model, "n": n, "max_tokens": p.max_tokens, "temperature": p.temperature,
                                "top_p": p.top_p}
        if p.top_k > 0:
            body["top_k"] = p.top_k  # vLLM, SGLang, llama-server, Ollama accept these extensions
        if p.min_p > 0:
            body["min_p"] = p.min_p
        if p.stop:
            body["stop"] = list(p.stop)
        if seed is not None:
            body["seed"] = seed
        if p.ignore_eos:
            body["ignore_eos"] = True
        if request.prompt.text is not None:
            body["prompt"] = request.prompt.text + request.prefix
            if p.logprobs is not None:
                body["logprobs"] = p.logprobs
            return "/completions", body
        messages = [{"role": m.role, "content": m.content} for m in request.prompt.messages]
        if request.prefix:
            messages.append({"role": "assistant", "content": request.prefix})
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        body["messages"] = messages
        if p.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = p.logprobs
        return "/chat/completions", body

    async def _call(self, request: GenerationRequest, model: str, n: int, seed: int | None) -> tuple[list[Sample], Usage]:
        path, body = self._body(request, model, n, seed)
        t0 = time.perf_counter()
        data = await self._post(path, body, request.deadline)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise BackendError(f"{self.base_url}{path} returned no choices: {str(data)[:200]}")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        usage = data.get("usage") or {}
        completion_tokens = int(usage.get("completion_tokens") or 0)
        samples = [_sample(c, chat=path == "/chat/completions") for c in choices[:n]]
        _fill_token_counts(samples, completion_tokens)
        details = usage.get("prompt_tokens_details") or {}
        u = Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            cached_prompt_tokens=int(details.get("cached_tokens") or 0),
            completion_tokens=sum(s.n_tokens for s in samples),
            seconds=time.perf_counter() - t0,
            requests=1,
        )
        return samples, u

    async def _one(self, request: GenerationRequest) -> Completion:
        model = await self._model_name()
        t0 = time.perf_counter()
        seed = request.params.seed
        n = request.n
        samples: list[Sample] = []
        usage = Usage()
        try:
            if n == 1 or self.honours_n is not False:
                got, usage = await self._call(request, model, n, seed)
                samples.extend(got)
                if n > 1:
                    self.honours_n = len(got) >= n
            missing = range(len(samples), n)
            if missing:
                seeds = [None if seed is None else seed + i for i in missing]
                parts = await asyncio.gather(*(self._call(request, model, 1, s) for s in seeds))
                for got, u in parts:
                    samples.extend(got)
                    usage = usage + u
        except DeadlinePassed:
            pass
        samples += [Sample("", (), "deadline") for _ in range(n - len(samples))]
        return Completion(tuple(samples), usage.with_seconds(time.perf_counter() - t0))

    # -- the Generator protocol ----------------------------------------------------------------------------------

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def generate_sync(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return asyncio.run(self.generate(requests))

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.aclose()
            except RuntimeError:  # its event loop is gone: nothing left to close
                pass
            self._client = None

    def close(self) -> None:
        if self._client is not None:
            try:
                asyncio.run(self.aclose())
            except RuntimeError:
                self._client = None


def _finish(choice: dict[str, Any]) -> str:
    reason = choice.get("finish_reason")
    if reason == "length":
        return "length"
    if reason == "stop":
        # vLLM/SGLang say which stop string matched; a None stop_reason means end-of-sequence
        return "stop" if isinstance(choice.get("stop_reason"), str) else "eos"
    return "eos"


def _sample(choice: dict[str, Any], *, chat: bool) -> Sample:
    if chat:
        text = (choice.get("message") or {}).get("content") or ""
        lp = choice.get("logprobs") or {}
        content = lp.get("content") if isinstance(lp, dict) else None
        logprobs = None
        if content is not None:
            logprobs = tuple(
                TokenLogprob(t.get("token", ""), float(t.get("logprob", 0.0)),
                             tuple((a.get("token", ""), float(a.get("logprob", 0.0))) for a in t.get("top_logprobs") or ()))
                for t in content
            )
    else:
        text = choice.get("text") or ""
        lp = choice.get("logprobs") or None
        logprobs = None
        if lp and lp.get("tokens") is not None:
            tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
            logprobs = tuple(
                TokenLogprob(tok, float(l if l is not None else 0.0),
                             tuple(sorted(((k, float(v)) for k, v in (top or {}).items()), key=lambda kv: -kv[1])))
                for tok, l, top in zip(lp["tokens"], lp.get("token_logprobs") or [], tops, strict=False)
            )
    return Sample(text=text, token_ids=(), finish_reason=_finish(choice),  # type: ignore[arg-type]
                  logprobs=logprobs, num_tokens=len(logprobs) if logprobs is not None else None)


def _fill_token_counts(samples: list[Sample], completion_tokens: int) -> None:
    """Per-sample token counts when the server gave only a total: exact for one sample, else split by text length."""
    unknown = [i for i, s in enumerate(samples) if s.num_tokens is None]
    if not unknown:
        return
    known = sum(s.n_tokens for s in samples if s.num_tokens is not None)
    left = max(0, completion_tokens - known)
    chars = [max(1, len(samples[i].text)) for i in unknown]
    total = sum(chars)
    shares = [left * c // total for c in chars]
    shares[-1] += left - sum(shares)
    for i, share in zip(unknown, shares, strict=True):
        s = samples[i]
        samples[i] = Sample(s.text, s.token_ids, s.finish_reason, s.logprobs, num_tokens=share)
