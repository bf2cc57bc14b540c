"""``ponder serve``: the OpenAI chat and completions API in front of any strategy and any Generator.

Every request picks a strategy (an ``extra_body`` ``ponder.strategy``, else a model-name prefix such as
``majority-16/qwen2.5-coder-0.5b``, else ``reasoning_effort``, else the server's default), runs it within a
budget capped by the server, and answers in the OpenAI schema: the final answer as the message content, the chosen
trace as ``reasoning_content``, usage counting every token the search spent, and a ``ponder`` field with votes,
candidates and the strategy. Concurrent requests share the generator (the embedded engine batches them together).
A bounded queue answers 429 when full; a client that disconnects has its search cancelled.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, StreamingResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from ponder.backends.router import ModelRouter
from ponder.errors import InvalidRequest, PonderError
from ponder.protocols import Generator
from ponder.server.auth import BearerAuth
from ponder.server.ledgers import Ledgers, checked_tag
from ponder.server.limits import BodyLimit
from ponder.server.responses import (ApiError, chat_response, completion_response, content, finish_reason, ponder_field, sse,
                                     usage)
from ponder.server.schema import ChatRequest, CompletionRequest
from ponder import observe
from ponder.server.explorer import add_explorer
from ponder.server.streaming import EventLog, PathTap, pieces_and_ticks, tap
from ponder.strategies.prompts import TEMPLATES
from ponder.strategies.registry import StrategyInfo, get, parse_spec, resolve_scorer
from ponder.types import Budget, Completion, GenerationRequest, Problem, Result

EFFORTS = {"minimal": "greedy", "low": "auto?effort=low", "medium": "auto?effort=medium", "high": "auto?effort=high"}


@dataclass(frozen=True)
class ServeConfig:
    """What the server allows. Requests may ask for less, never for more (a larger budget is a 400)."""

    model_name: str
    default_strategy: str = "majority?n=4"
    efforts: dict[str, str] = field(default_factory=lambda: dict(EFFORTS))
    api_key: str | None = None
    max_concurrent: int = 16  # searches running at once (their samples are batched together by the backend)
    max_queue: int = 64  # searches waiting for a turn; beyond that: 429
    max_seconds: float = 300.0  # deadline of every search (default and cap)
    max_tokens_total: int = 32768  # generated tokens per request, all samples of all choices
    max_samples: int = 256
    max_n: int = 8
    max_prompt_chars: int = 32000
    max_body_bytes: int = 1 << 20  # a larger request body is refused with 413 before it is parsed
    progress_interval: float = 0.5
    # what requests may name but never supply: policies (``auto?policy=NAME``; ``default`` is always there) and
    # reward-model servers (``reward?name=NAME``), both set by the operator (``--policies DIR``, ``--reward-url``)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    reward_urls: dict[str, str] = field(default_factory=dict)
    # learned verifiers (``probe?name=NAME``), each a probe file the operator named (``ponder serve --probe``)
    probes: dict[str, str] = field(default_factory=dict)
    # further models requests may escalate to (``cascade?large=NAME``), opened on first use by ``create_app``'s
    # ``open_model`` (``ponder serve --cascade-model NAME``)
    cascade_models: tuple[str, ...] = ()
    # an evaluation store the trace explorer (/ui) reads stored runs from, read-only (``ponder serve --store``)
    store: str | None = None
    # answer as the bare model would, no search (``ponder serve --passthrough``: another tool's search on this engine,
    # its tokens counted here), sampling with these defaults where a request sets no top-p, top-k or min-p
    passthrough: bool = False
    passthrough_sampling: str = "openai"


@dataclass
class SearchJob:
    """A validated request: what to run, on what, within what."""

    info: StrategyInfo
    params: Any
    problem: Problem
    budget: Budget
    n: int
    scorer_spec: str | None
    model: str
    stream_usage: bool = False
    trace: bool = False  # the whole trace in the answer, and the search's events while it streams


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ponder_requests_total", "requests answered", ["strategy", "status"], registry=self.registry)
        self.tokens = Counter("ponder_tokens_total", "tokens spent", ["strategy", "kind"], registry=self.registry)
        self.latency = Histogram("ponder_request_seconds", "request latency", ["strategy"], registry=self.registry,
                                 buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300))
        self.queue = Gauge("ponder_queue_depth", "searches waiting for a turn", registry=self.registry)
        self.active = Gauge("ponder_active_searches", "searches running", registry=self.registry)


_ALIAS = re.compile(r"^(?P<name>[a-z_]+)-(?P<k>\d+)$")


def strategy_from_model(model: str) -> tuple[str | None, str]:
    """``majority-16/qwen`` -> (``majority-16``, ``qwen``); ``qwen`` -> (None, ``qwen``)."""
    if "/" in model:
        prefix, base = model.split("/", 1)
        return prefix, base
    return None, model


def alias_to_spec(alias: str) -> str:
    """``majority-16`` -> ``majority?n=16``; ``beam-8`` -> ``beam?width=8``; ``mcts-32`` -> ``mcts?iterations=32``
    (each strategy's registration names the parameter its size sets)."""
    m = _ALIAS.match(alias)
    if not m:
        return alias
    return get(m.group("name")).alias(int(m.group("k")))


class PonderServer:
    def __init__(self, generator: Generator, config: ServeConfig, open_model: Callable[[str], Generator] | None = None):
        self.generator, self.config = generator, config
        self.router = ModelRouter(generator, open_model or _no_models, allowed=set(config.cascade_models),
                                  default_name=config.model_name)
        self.metrics = Metrics()
        self.ledgers = Ledgers()  # per-client token ledgers of pass-through requests (/ledger/TAG)
        self._sem = asyncio.Semaphore(config.max_concurrent)
        self._waiting = 0
        self._active = 0

    # -- planning ------------------------------------------------------------------------------------------------

    def job_for(self, req: ChatRequest | CompletionRequest) -> SearchJob:
        c = self.config
        if req.n > c.max_n:
            raise ApiError(400, f"n must be at most {c.max_n} on this server, got {req.n}", param="n")
        opts = req.ponder
        prefix, base = strategy_from_model(req.model)
        try:
            if opts is not None and opts.strategy:
                spec = opts.strategy
            elif prefix:
                spec = alias_to_spec(prefix)
            elif req.reasoning_effort:
                spec = c.efforts[req.reasoning_effort]
            else:
                spec = c.default_strategy
            name = spec.partition("?")[0]
            info = get(name)
            overrides: dict[str, Any] = dict(opts.params) if opts else {}
            fields = info.params.model_fields
            max_tokens = getattr(req, "max_completion_tokens", None) or req.max_tokens
            stop = [req.stop] if isinstance(req.stop, str) else req.stop
            if stop and "stop" not in fields:
                raise InvalidRequest(f"strategy {info.name!r} does not take stop strings")
            for key, value in (("temperature", req.temperature), ("top_p", req.top_p), ("seed", req.seed),
                               ("max_tokens", max_tokens), ("stop", stop or None)):
                if value is not None and key in fields and key not in overrides:
                    overrides[key] = value
            info, params = parse_spec(spec, overrides)
            params = self._named_policy(params)
            for other in info.models_named(params):  # only the models the operator offers, checked before the queue
                self.router.check(other)
            if getattr(params, "prompt", None) not in (None, *TEMPLATES):  # a name, never a file on the server
                raise InvalidRequest(f"prompt must be one of {', '.join(sorted(TEMPLATES))}")
            if getattr(params, "bank", None) is not None:
                raise InvalidRequest("this server takes no exemplar bank files from requests (bank=…)")
        except InvalidRequest as exc:
            raise ApiError(400, str(exc), param="ponder.strategy") from None
        budget = self._budget(opts.budget if opts else None)
        problem = self._problem(req, opts.instruction if opts else None)
        stream_usage = bool((req.stream_options or {}).get("include_usage"))
        scorer = self._named_scorer(opts.scorer) if opts and opts.scorer else None
        return SearchJob(info, params, problem, budget, req.n, scorer, req.model, stream_usage, bool(opts and opts.trace))

    def _named_policy(self, params):
        """A policy is named, never a path: the name's policy (loaded when the server started) goes in inline."""
        ref = getattr(params, "policy", None)
        if ref is None:
            return params
        known = {"default": None, **self.config.policies}
        if not isinstance(ref, str) or ref not in known:
            raise InvalidRequest(f"policy must be one of this server's policies ({', '.join(sorted(known))}), by name")
        policy = self.config.policies.get(ref)
        return params if policy is None else params.model_copy(update={"policy": {"name": ref, **policy}})

    def _named_scorer(self, spec: str) -> str:
        """A scorer spec with no operator-only parameter (URLs, paths); ``reward?name=NAME`` becomes its URL and
        ``probe?name=NAME`` its file, both as the operator configured them."""
        from ponder.scorers.registry import available as scorers
        from ponder.specs import join_spec, split_spec

        named = {"reward": ("url", self.config.reward_urls, "reward model", "--reward-url NAME=URL"),
                 "probe": ("path", self.config.probes, "probe", "--probe NAME=FILE")}
        try:
            name, values = split_spec(spec, "scorer")
            info = scorers().get(name)
            if info is None:
                return spec  # the registry's own error names the known scorers
            refused = sorted(set(values) & set(info.operator_params))
            if refused:
                hint = ""
                if name in named:
                    _, table, what, _ = named[name]
                    hint = f"; name one of its {what}s with {name}?name=… ({', '.join(sorted(table)) or 'none configured'})"
                raise InvalidRequest(f"scorer {name!r}: {', '.join(refused)} is set by the server's operator, not by requests" + hint)
            if name in named:
                param, table, what, flag = named[name]
                ref = values.pop("name", "default" if "default" in table else None)  # unnamed: the one named default
                if ref not in table:
                    raise InvalidRequest(f"unknown {what} {ref!r}; this server has: {', '.join(sorted(table)) or f'none (ponder serve {flag})'}")
                values[param] = table[ref]
            return join_spec(name, values)
        except InvalidRequest as exc:
            raise ApiError(400, str(exc), param="ponder.scorer") from None

    def _budget(self, asked) -> Budget:
        c = self.config
        caps = {"max_tokens": c.max_tokens_total, "max_samples": c.max_samples, "max_seconds": c.max_seconds}
        values = dict(caps)
        if asked is not None:
            for key, cap in caps.items():
                v = getattr(asked, key)
                if v is None:
                    continue
                if v > cap:
                    raise ApiError(400, f"budget {key}={v} is above this server's cap of {cap}", param=f"ponder.budget.{key}")
                values[key] = v
        return Budget(**values)

    def _problem(self, req, instruction: str | None) -> Problem:
        if isinstance(req, ChatRequest):
            system = "\n\n".join(m.text() for m in req.messages if m.role in ("system", "developer")) or None
            turns = [m for m in req.messages if m.role not in ("system", "developer")]
            last_user = max(i for i, m in enumerate(turns) if m.role == "user" and m.text().strip())
            question = turns[last_user].text()
            earlier = turns[:last_user]
            if earlier:
                history = "\n\n".join(f"{m.role}: {m.text()}" for m in earlier)
                question = f"Conversation so far:\n{history}\n\nNow answer:\n{question}"
        else:
            system, question = None, req.prompt
        if len(question) + len(system or "") > self.config.max_prompt_chars:
            raise ApiError(400, f"the prompt is {len(question) + len(system or '')} characters; this server takes at most "
                                f"{self.config.max_prompt_chars}", param="messages")
        kw = {} if instruction is None else {"instruction": instruction or None}
        try:
            return Problem(question, system=system, **kw)
        except InvalidRequest as exc:
            raise ApiError(400, str(exc), param="messages") from None

    # -- running -------------------------------------------------------------------------------------------------

    def admit(self) -> None:
        """Take a place in the queue, or refuse with 429 now (before any response, streamed or not, has begun)."""
        c = self.config
        if self._active + self._waiting >= c.max_concurrent + c.max_queue:
            raise ApiError(429, f"ponder is busy: {self._active} searches running and {self._waiting} waiting; retry shortly",
                           type_="rate_limit_error", headers={"Retry-After": "1"})
        self._waiting += 1
        self.metrics.queue.set(self._waiting)

    @asynccontextmanager
    async def slot(self, admitted: bool = False) -> AsyncIterator[None]:
        """A place in the queue (or 429, unless ``admitted``: :meth:`admit` already took it), then a running slot for
        the block, the gauges kept."""
        if not admitted:
            self.admit()
        try:
            await self._sem.acquire()
        finally:
            self._waiting -= 1
            self.metrics.queue.set(self._waiting)
        self._active += 1
        self.metrics.active.set(self._active)
        try:
            yield
        finally:
            self._active -= 1
            self.metrics.active.set(self._active)
            self._sem.release()

    async def solve(self, job: SearchJob, admitted: bool = False, generator: Generator | None = None) -> list[Result]:
        """Run the job's strategy ``n`` times (different seeds) once a slot is free; 429 if the queue is full.
        ``admitted``: :meth:`admit` already took this request's place in the queue."""
        async with self.slot(admitted):
            try:
                scorer = resolve_scorer(job.info, job.scorer_spec, self.generator)
            except InvalidRequest as exc:
                raise ApiError(400, str(exc), param="ponder.scorer") from None
            runs = []
            for i in range(job.n):
                params = job.params
                if job.n > 1 and getattr(params, "seed", None) is not None:
                    params = params.model_copy(update={"seed": params.seed + 7919 * i})
                budget = job.budget
                if job.n > 1 and budget.max_tokens is not None:
                    budget = replace(budget, max_tokens=max(1, budget.max_tokens // job.n))
                gen = generator or (self.router if job.info.needs_models else self.generator)
                runs.append(job.info.run(job.problem, gen, scorer, budget, params))
            return list(await asyncio.gather(*runs))

    async def passthrough(self, request: GenerationRequest, admitted: bool = False, tag: str | None = None) -> Completion:
        """One pass-through request: a place in the queue (or 429), a slot, one call to the engine, its tokens counted
        (also in ``tag``'s ledger, when the client named one)."""
        async with self.slot(admitted):
            t0 = time.monotonic()
            try:
                [completion] = await self.generator.generate([request])
            except PonderError as exc:
                self.metrics.requests.labels("passthrough", "error").inc()
                if tag is not None:
                    self.ledgers.charge(tag, None)
                raise ApiError.from_backend(exc) from None
        if tag is not None:
            self.ledgers.charge(tag, completion.usage)
        self.metrics.requests.labels("passthrough", "ok").inc()
        self.metrics.latency.labels("passthrough").observe(time.monotonic() - t0)
        self.metrics.tokens.labels("passthrough", "prompt").inc(completion.usage.prompt_tokens)
        self.metrics.tokens.labels("passthrough", "completion").inc(completion.usage.completion_tokens)
        return completion

    def record(self, job: SearchJob, results: list[Result], status: str, seconds: float) -> None:
        name = job.info.name
        self.metrics.requests.labels(name, status).inc()
        self.metrics.latency.labels(name).observe(seconds)
        for r in results:
            self.metrics.tokens.labels(name, "prompt").inc(r.usage.prompt_tokens)
            self.metrics.tokens.labels(name, "completion").inc(r.usage.completion_tokens)


# -- the app --------------------------------------------------------------------------------------------------


def _no_models(name: str) -> Generator:
    raise InvalidRequest(f"this server opens no other models (asked for {name!r})")


def create_app(generator: Generator, config: ServeConfig, open_model: Callable[[str], Generator] | None = None) -> FastAPI:
    """The app over ``generator``; ``open_model`` opens the operator's ``cascade_models`` when a request escalates."""
    app = FastAPI(title="ponder", version="0.1.0", description="OpenAI-compatible inference-time scaling server")
    server = PonderServer(generator, config, open_model)
    app.state.ponder = server

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        msg = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errs[:5])
        param = ".".join(str(p) for p in errs[0]["loc"][1:]) if errs else None
        return ApiError(400, f"invalid request: {msg}", param=param).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return ApiError(exc.status_code, str(exc.detail), type_="not_found_error" if exc.status_code == 404 else "invalid_request_error").response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # the last line of defence: never a bare crash
        return ApiError(500, f"internal error: {type(exc).__name__}: {exc}", type_="server_error").response()

    add_explorer(app, server)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    if config.api_key:
        app.add_middleware(BearerAuth, api_key=config.api_key)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": config.model_name, "active": server._active, "waiting": server._waiting}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        from ponder.strategies import available

        now = int(time.time())
        data = [{"id": config.model_name, "object": "model", "created": now, "owned_by": "ponder"}]
        data += [{"id": f"{name}/{config.model_name}", "object": "model", "created": now, "owned_by": "ponder"} for name in available()]
        return {"object": "list", "data": data}

    async def unless_gone(request: Request, work: Awaitable, on_gone: Callable[[], None] | None = None):
        """Await ``work``, cancelling it (and answering 499) if the client goes away first."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                await asyncio.wait([task], timeout=0.25)
                if not task.done() and await request.is_disconnected():
                    task.cancel()
                    if on_gone is not None:
                        on_gone()
                    raise ApiError(499, "client disconnected", type_="client_closed")
            return task.result()
        finally:
            if not task.done():
                task.cancel()

    async def run_job(request: Request, job: SearchJob) -> list[Result]:
        """Solve, cancelling the search if the client goes away; map backend failures to HTTP errors."""
        t0 = time.monotonic()
        try:
            results = await unless_gone(request, server.solve(job),
                                        lambda: server.metrics.requests.labels(job.info.name, "disconnected").inc())
        except ApiError:
            raise
        except PonderError as exc:
            raise ApiError.from_backend(exc) from None
        server.record(job, results, "ok", time.monotonic() - t0)
        return results

    async def stream(request: Request, job: SearchJob, kind: str) -> AsyncIterator[bytes]:
        rid, created = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}", int(time.time())
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
        # a strategy that builds one path streams its text as it decodes; others stream progress only (no pieces)
        runner, pieces, log = None, asyncio.Queue(), EventLog()
        watched = PathTap(generator, log) if job.trace and not job.info.needs_models else None
        if job.info.streams_path and job.n == 1 and getattr(job.params, "n", 1) == 1:
            runner, pieces = tap(watched or generator)
        if job.trace:  # the search's own events (tree nodes, scores, visits) go to the same log
            with observe.listening(log):
                task = asyncio.ensure_future(server.solve(job, admitted=True, generator=runner or watched))
        else:
            task = asyncio.ensure_future(server.solve(job, admitted=True, generator=runner))
        t0 = time.monotonic()

        def chunk(choices, **extra):
            return sse({"id": rid, "object": obj, "created": created, "model": job.model, "choices": choices, **extra})

        def text_delta(i: int, text: str, finish=None):
            if kind == "chat":
                return chunk([{"index": i, "delta": {"reasoning_content": text}, "finish_reason": finish}])
            return chunk([{"index": i, "text": text, "logprobs": None, "finish_reason": finish}])

        try:
            if kind == "chat":
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None} for i in range(job.n)])
            async for got in pieces_and_ticks(task, pieces, generator, config.progress_interval):
                if isinstance(got, str):
                    yield text_delta(0, got)
                else:
                    yield chunk([], ponder={"progress": got.to_dict()})
                events = log.drain()
                if events:
                    yield chunk([], ponder={"events": events})
            events = log.drain()
            if events:
                yield chunk([], ponder={"events": events})
            try:
                results = task.result()
            except (ApiError, PonderError) as exc:  # the same errors as without streaming, as an SSE event
                yield sse((exc if isinstance(exc, ApiError) else ApiError.from_backend(exc)).body())
                yield b"data: [DONE]\n\n"
                return
            server.record(job, results, "ok", time.monotonic() - t0)
            sent = runner.sent if runner is not None else ""  # every piece it handed on has been sent by now
            for i, r in enumerate(results):
                trace = r.text or ""
                rest = trace[len(sent):] if i == 0 and trace.startswith(sent) else trace if i else ""
                if kind == "chat":
                    if rest:
                        yield text_delta(i, rest)
                    yield chunk([{"index": i, "delta": {"content": content(r)}, "finish_reason": None}])
                    yield chunk([{"index": i, "delta": {}, "finish_reason": finish_reason(r)}])
                else:
                    yield text_delta(i, rest, finish_reason(r))
            tail = {"ponder": ponder_field(results, job.trace)}
            if job.stream_usage:
                tail["usage"] = usage(results)
            yield chunk([], **tail)
            yield b"data: [DONE]\n\n"
        finally:
            if not task.done():  # the client went away: stop the search, and the backend stops decoding it
                task.cancel()
                server.metrics.requests.labels(job.info.name, "disconnected").inc()

    async def passthrough(body: ChatRequest | CompletionRequest, request: Request, kind: str, tag: str | None = None):
        from ponder.server import passthrough as pt

        req = pt.request_of(body, max_n=config.max_n, max_tokens=config.max_tokens_total,
                            max_prompt_chars=config.max_prompt_chars, deadline=time.monotonic() + config.max_seconds,
                            defaults=pt.sampling_defaults(config.passthrough_sampling))
        if body.stream:
            server.admit()
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(pt.stream(kind, body.model, req, lambda r: server.passthrough(r, admitted=True, tag=tag),
                                               include_usage),
                                     media_type="text/event-stream")
        return pt.response(kind, body.model, await unless_gone(request, server.passthrough(req, tag=tag)))

    async def respond(body: ChatRequest | CompletionRequest, request: Request, kind: str):
        if config.passthrough:
            return await passthrough(body, request, kind)
        job = server.job_for(body)
        if body.stream:
            server.admit()  # a full queue is a 429 with Retry-After, not a 200 stream carrying an error
            return StreamingResponse(stream(request, job, kind), media_type="text/event-stream")
        results = await run_job(request, job)
        make, prefix = (chat_response, "chatcmpl") if kind == "chat" else (completion_response, "cmpl")
        return make(job.model, results, f"{prefix}-{uuid.uuid4().hex}", int(time.time()), job.trace)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        return await respond(body, request, "chat")

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        return await respond(body, request, "text")

    def ledger_tag(tag: str) -> str:
        if not config.passthrough:
            raise ApiError(404, "ledgers count pass-through requests: this server runs searches (start it with --passthrough)",
                           type_="not_found_error")
        return checked_tag(tag)

    @app.post("/ledger/{tag}/v1/chat/completions")
    async def ledger_chat(tag: str, body: ChatRequest, request: Request):
        return await passthrough(body, request, "chat", ledger_tag(tag))

    @app.post("/ledger/{tag}/v1/completions")
    async def ledger_completions(tag: str, body: CompletionRequest, request: Request):
        return await passthrough(body, request, "text", ledger_tag(tag))

    @app.get("/ledger/{tag}/v1/models")
    async def ledger_models(tag: str):
        ledger_tag(tag)
        return await models()

    @app.get("/ledger/{tag}")
    async def ledger(tag: str):
        book = server.ledgers.get(ledger_tag(tag))
        if book is None:
            raise ApiError(404, f"no ledger {tag!r}: no request was sent under /ledger/{tag}/v1 (or it was dropped as one "
                                f"of the oldest of {server.ledgers.capacity})", type_="not_found_error")
        return {"tag": tag, **book.to_dict()}

    return app
