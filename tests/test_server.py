"""ponder serve, driven by the official openai client over a real uvicorn on loopback, on the real SmolLM2."""

import asyncio
import socket
import threading
import time

import httpx
import openai
import pytest
import uvicorn

from ponder.backends.openai_http import OpenAIHTTPGenerator
from ponder.server import ServeConfig, create_app

from conftest import free_port


class Served:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.app = app

    def __enter__(self):
        self.thread.start()
        for _ in range(200):
            try:
                httpx.get(self.url.replace("/v1", "/health"), timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)

    def client(self, **kw):
        return openai.OpenAI(base_url=self.url, api_key=kw.pop("api_key", "none"), max_retries=0, **kw)


@pytest.fixture(scope="module")
def served(engine):
    app = create_app(engine, ServeConfig(model_name="smol", default_strategy="majority?n=3&max_tokens=48&seed=1",
                                         max_seconds=60, max_tokens_total=4000, max_n=3))
    with Served(app) as s:
        yield s


Q = [{"role": "user", "content": "What is 3 + 4?"}]


def test_plain_chat_answers_in_the_openai_schema(served):
    r = served.client().chat.completions.create(model="smol", messages=Q)
    msg = r.choices[0].message
    extra = r.model_extra["ponder"]
    assert r.object == "chat.completion" and r.choices[0].finish_reason in ("stop", "length")
    assert msg.content is not None and msg.model_extra["reasoning_content"]
    assert extra["strategy"] == "majority" and len(extra["choices"][0]["candidates"]) == 3
    u = r.usage
    assert u.completion_tokens == sum(c["tokens"] for c in extra["choices"][0]["candidates"])
    assert u.completion_tokens_details.reasoning_tokens == u.completion_tokens and u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_each_way_of_choosing_a_strategy(served):
    c = served.client()
    r = c.chat.completions.create(model="majority-2/smol", messages=Q, max_tokens=32)
    assert r.model_extra["ponder"]["strategy"] == "majority" and r.model_extra["ponder"]["params"]["n"] == 2
    r = c.chat.completions.create(model="smol", messages=Q, extra_body={"ponder": {
        "strategy": "beam", "params": {"width": 2, "keep": 1, "max_depth": 2, "max_step_tokens": 16, "max_tokens": 32},
        "budget": {"max_seconds": 30}}})
    assert r.model_extra["ponder"]["strategy"] == "beam" and r.model_extra["ponder"]["params"]["width"] == 2
    r = c.chat.completions.create(model="smol", messages=Q, reasoning_effort="low", max_tokens=32)
    assert r.model_extra["ponder"]["strategy"] == "auto" and r.model_extra["ponder"]["params"]["effort"] == "low"
    r = c.chat.completions.create(model="smol", messages=Q, reasoning_effort="minimal", max_tokens=32)
    assert r.model_extra["ponder"]["strategy"] == "greedy"


def test_n_choices_and_completions_endpoint(served):
    c = served.client()
    r = c.chat.completions.create(model="smol", messages=Q, n=2, seed=5, max_tokens=32)
    assert [ch.index for ch in r.choices] == [0, 1] and len(r.model_extra["ponder"]["choices"]) == 2
    t = c.completions.create(model="greedy/smol", prompt="What is 2 + 2?", max_tokens=24)
    assert t.object == "text_completion" and t.choices[0].text


def test_streaming_sends_progress_then_the_answer(served):
    stream = served.client().chat.completions.create(model="smol", messages=Q, stream=True, stream_options={"include_usage": True})
    content, reasoning, progress, usage, finish = "", "", 0, None, None
    for chunk in stream:
        if chunk.model_extra.get("ponder", {}).get("progress"):
            progress += 1
        for ch in chunk.choices:
            content += ch.delta.content or ""
            reasoning += (ch.delta.model_extra or {}).get("reasoning_content") or ""
            finish = ch.finish_reason or finish
        usage = chunk.usage or usage
    assert content and reasoning and finish in ("stop", "length")
    assert progress >= 1 and usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("kwargs, fragment", [
    ({"model": "telepathy-3/smol"}, "unknown strategy 'telepathy'"),
    ({"extra_body": {"ponder": {"strategy": "beam?width=5&keep=2"}}}, "multiple of keep"),
    ({"extra_body": {"ponder": {"params": {"widht": 3}}}}, "known parameters"),
    ({"extra_body": {"ponder": {"budget": {"max_seconds": 10_000}}}}, "above this server's cap"),
    ({"extra_body": {"ponder": {"colour": "blue"}}}, "ponder.colour"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "system", "content": "only a system message"}]}, "non-empty user message"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "x" * 40_000}]}, "this server takes at most"),
    ({"n": 9}, "n must be at most 3"),
    ({"temperature": 7}, "temperature"),
    ({"extra_body": {"ponder": {"scorer": "oracle", "strategy": "best_of_n?n=2"}}}, "unknown scorer 'oracle'"),
])
def test_validation_errors_are_clear_400s(served, kwargs, fragment):
    args = {"model": "smol", "messages": Q, **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        served.client().chat.completions.create(**args)
    assert e.value.status_code == 400 and fragment in e.value.body["message"]


def test_raw_http_errors(served):
    base = served.url
    r = httpx.post(base + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(base + "/nothing-here").status_code == 404
    assert httpx.get(base.replace("/v1", "/health")).json()["status"] == "ok"
    models = httpx.get(base + "/models").json()["data"]
    assert {"smol", "majority/smol", "mcts/smol"} <= {m["id"] for m in models}
    metrics = httpx.get(base.replace("/v1", "/metrics")).text
    assert "ponder_requests_total" in metrics and "ponder_request_seconds_bucket" in metrics


def test_deadline_returns_the_best_answer_so_far(served):
    t = time.monotonic()
    r = served.client().chat.completions.create(model="smol", messages=[{"role": "user", "content": "Write a very long story."}],
                                                extra_body={"ponder": {"strategy": "budget_forcing?min_tokens=3000&max_thinking_tokens=3500&max_waits=50",
                                                                       "budget": {"max_seconds": 1.5}}})
    assert time.monotonic() - t < 10
    assert r.model_extra["ponder"]["choices"][0]["stopped_by"] == "max_seconds"


def test_client_disconnect_stops_decoding(served, engine):
    before = engine.stats.requests_cancelled
    body = {"model": "smol", "messages": [{"role": "user", "content": "Tell a long story."}],
            "ponder": {"strategy": "budget_forcing?min_tokens=3000&max_thinking_tokens=3500&max_waits=50&n=2"}}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(served.url + "/chat/completions", json=body, timeout=httpx.Timeout(1.5, connect=5))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and engine.stats.requests_cancelled == before:
        time.sleep(0.1)
    assert engine.stats.requests_cancelled > before
    time.sleep(0.5)
    assert engine.stats.active_sequences == 0 or engine.engine._active == []


def test_auth(engine):
    app = create_app(engine, ServeConfig(model_name="smol", default_strategy="greedy?max_tokens=8", api_key="s3cret"))
    with Served(app) as s:
        with pytest.raises(openai.AuthenticationError):
            s.client(api_key="wrong").chat.completions.create(model="smol", messages=Q)
        assert s.client(api_key="s3cret").chat.completions.create(model="smol", messages=Q).choices
        assert httpx.get(s.url.replace("/v1", "/health")).status_code == 200  # health needs no key


def test_full_queue_answers_429(engine):
    app = create_app(engine, ServeConfig(model_name="smol", default_strategy="majority?n=2&max_tokens=200", max_concurrent=1, max_queue=0))
    with Served(app) as s:
        async def both():
            async with httpx.AsyncClient(timeout=300) as c:  # the 200 decodes 2 x 200 tokens; slow on a loaded 2-core machine
                body = {"model": "smol", "messages": Q}
                return await asyncio.gather(c.post(s.url + "/chat/completions", json=body), c.post(s.url + "/chat/completions", json=body))

        codes = sorted(r.status_code for r in asyncio.run(both()))
        assert codes == [200, 429]


def test_upstream_down_is_a_502():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    gen = OpenAIHTTPGenerator(f"http://127.0.0.1:{dead}/v1", model="m", max_retries=1, backoff=0.05)
    app = create_app(gen, ServeConfig(model_name="m", default_strategy="greedy"))
    with Served(app) as s:
        with pytest.raises(openai.APIStatusError) as e:
            s.client().chat.completions.create(model="m", messages=Q)
        assert e.value.status_code == 502 and "unavailable" in e.value.body["message"]


def test_upstream_mode_over_a_real_server(llama_server):
    gen = OpenAIHTTPGenerator(llama_server.url, model="smol")
    app = create_app(gen, ServeConfig(model_name="smol", default_strategy="majority?n=2&max_tokens=24&seed=1"))
    with Served(app) as s:
        r = s.client().chat.completions.create(model="smol", messages=Q)
        assert len(r.model_extra["ponder"]["choices"][0]["candidates"]) == 2


def test_greedy_streams_its_tokens_as_the_engine_decodes_them(served):
    """The embedded engine hands each piece of text over as it decodes; text a stop string cuts is never sent."""
    stream = served.client().chat.completions.create(model="greedy/smol", messages=[{"role": "user", "content": "Count: 1, 2, 3, 4"}],
                                                     stream=True, max_tokens=40, stop=["9"])
    pieces, content, final = [], "", None
    for chunk in stream:
        for ch in chunk.choices:
            piece = (ch.delta.model_extra or {}).get("reasoning_content")
            if piece:
                pieces.append(piece)
            content += ch.delta.content or ""
        final = chunk.model_extra.get("ponder") or final
    assert len(pieces) > 3 and not any("9" in p for p in pieces)
    [cand] = final["choices"][0]["candidates"]
    assert cand["tokens"] <= 40
