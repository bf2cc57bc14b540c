"""The server takes no file paths or URLs from its clients, refuses early and clearly, and honours what it accepts.

A real uvicorn on loopback; the generator is the real SmolLM2 engine where what it says matters, a scripted one
where only the server's decisions do.
"""

import asyncio
import http.server
import json
import os
import threading

import httpx
import openai
import pytest

from ponder.server import ServeConfig, create_app
from ponder.strategies.policy import Policy
from ponder.testing import ScriptedGenerator

from test_server import Q, Served


class Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server that counts what reaches it (the target a forged request would hit)."""

    hits: list = []

    def do_POST(self):  # noqa: N802
        Recorder.hits.append(self.path)
        inputs = json.loads(self.rfile.read(int(self.headers["content-length"])))["input"]
        body = json.dumps({"data": [{"index": i, "probs": [0.1, 0.9]} for i in range(len(inputs))]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def recorder():
    Recorder.hits = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def _scripted():
    return ScriptedGenerator(lambda req, i: "Step one.\n\nThe answer is 7.")


def _post(s, body, **kw):
    return httpx.post(s.url + "/chat/completions", json={"model": "smol", "messages": Q, **body}, timeout=60, **kw)


def test_policies_are_names_never_paths(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    mine = Policy.load("default").to_dict()
    (tmp_path / "mine.json").write_text(json.dumps(mine))
    from ponder.strategies.policy import load_named_policies

    named = {k: p.to_dict() for k, p in load_named_policies(tmp_path).items() if k != "default"}
    app = create_app(_scripted(), ServeConfig(model_name="smol", policies=named))
    with Served(app) as s:
        for ref in ("/etc/passwd", str(fifo), str(tmp_path / "mine.json"), "../mine", "nope"):
            r = _post(s, {"ponder": {"strategy": f"auto?policy={ref}&max_tokens=8"}})
            assert r.status_code == 400, (ref, r.text)
            assert "default, mine" in r.json()["error"]["message"] and "root:" not in r.text
        r = _post(s, {"ponder": {"strategy": "auto", "params": {"policy": {"probe": 1, "cost_weight": 0, "bins": []}}}})
        assert r.status_code == 400  # not inline either
        for name in ("default", "mine"):
            r = _post(s, {"ponder": {"strategy": f"auto?policy={name}&max_tokens=8"}})
            assert r.status_code == 200, r.text
            assert r.json()["ponder"]["choices"][0]["extra"]["policy"] == name
        assert httpx.get(s.url.replace("/v1", "/health"), timeout=5).status_code == 200  # the loop never blocked


def test_reward_models_are_named_by_the_operator(recorder):
    app = create_app(_scripted(), ServeConfig(model_name="smol", reward_urls={"rm": recorder}))
    with Served(app) as s:
        for scorer in (f"reward?url={recorder}", f"reward?url={recorder}&name=rm", "reward?name=other", "reward"):
            r = _post(s, {"ponder": {"strategy": "best_of_n?n=2&max_tokens=8", "scorer": scorer}})
            assert r.status_code == 400, (scorer, r.text)
        assert Recorder.hits == []  # nothing the client named was called
        r = _post(s, {"ponder": {"strategy": "best_of_n?n=2&max_tokens=8", "scorer": "reward?name=rm&kind=orm"}})
        assert r.status_code == 200, r.text
        assert Recorder.hits  # the operator's server was


def test_a_streaming_request_to_a_full_queue_is_a_429_before_the_stream():
    """Only the server's decision matters: a scripted search that takes 6 s holds the one slot, and the streamed
    request is sent once the server reports it running (not after a guessed delay)."""
    slow_text = " ".join(["word"] * 120) + " The answer is 7."
    gen = ScriptedGenerator(lambda req, i: slow_text, seconds_per_token=0.05)
    app = create_app(gen, ServeConfig(model_name="smol", default_strategy="greedy", max_concurrent=1, max_queue=0))
    with Served(app) as s:
        async def both():
            async with httpx.AsyncClient(timeout=60) as c:
                body = {"model": "smol", "messages": Q}
                slow = asyncio.ensure_future(c.post(s.url + "/chat/completions", json=body))
                for _ in range(400):
                    if app.state.ponder._active == 1:
                        break
                    await asyncio.sleep(0.025)
                assert app.state.ponder._active == 1
                streamed = await c.post(s.url + "/chat/completions", json={**body, "stream": True})
                return await slow, streamed

        slow, streamed = asyncio.run(both())
        assert slow.status_code == 200
        assert streamed.status_code == 429 and streamed.headers["retry-after"] == "1"
        assert streamed.headers["content-type"].startswith("application/json")


def test_stop_is_honoured_or_refused(engine):
    """Properties only: a warm engine need not repeat a decode, so the cut text is not compared with a free one."""
    app = create_app(engine, ServeConfig(model_name="smol", default_strategy="greedy?max_tokens=64"))
    with Served(app) as s:
        c = s.client()
        stops = [",", " ", "\n"]  # 64 tokens without any of them would be a surprise; the cut is what is tested
        r = c.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Count: 1, 2, 3, 4, 5, 6"}], stop=stops)
        cut = r.choices[0].message.reasoning_content or ""
        cand = r.model_extra["ponder"]["choices"][0]["candidates"][0]
        assert not any(x in cut for x in stops) and r.model_extra["ponder"]["params"]["stop"] == stops
        assert cand["finish_reason"] == "stop" and cand["tokens"] < 64, (cut, cand)  # cut at a stop, not at the length
        with pytest.raises(openai.BadRequestError) as e:
            c.chat.completions.create(model="beam/smol", messages=Q, stop=["\n"])
        assert "stop" in e.value.body["message"]


@pytest.mark.parametrize("params, fragment", [
    ({"temperature": 1e308}, "temperature"),
    ({"top_k": 2**70}, "top_k"),
    ({"seed": -1}, "seed"),
    ({"max_tokens": 10**9}, "max_tokens"),
])
def test_ponder_params_meet_the_same_bounds_as_the_top_level(params, fragment):
    app = create_app(_scripted(), ServeConfig(model_name="smol", default_strategy="majority?n=2"))
    with Served(app) as s:
        r = _post(s, {"ponder": {"params": params}})
        assert r.status_code == 400 and fragment in r.json()["error"]["message"]
        top = {k: v for k, v in params.items() if k in ("temperature", "seed", "max_tokens")}  # top_k has none
        if top:
            assert _post(s, top).status_code == 400


def test_request_bodies_are_capped():
    app = create_app(_scripted(), ServeConfig(model_name="smol", default_strategy="greedy", max_body_bytes=64 * 1024))
    with Served(app) as s:
        big = {"role": "user", "content": "x" * 100_000}
        r = httpx.post(s.url + "/chat/completions", json={"model": "smol", "messages": [big]}, timeout=30)
        assert r.status_code == 413 and "limit of 65536 bytes" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: counted as it arrives
            yield b'{"model": "smol", "messages": [{"role": "user", "content": "'
            for _ in range(100):
                yield b"x" * 1024
            yield b'"}]}'

        r = httpx.post(s.url + "/chat/completions", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 413
        assert _post(s, {}).status_code == 200  # small bodies still pass


def test_a_client_error_inside_the_search_is_a_400_not_a_502():
    from ponder.errors import InvalidRequest

    class Refusing(ScriptedGenerator):
        async def generate(self, requests):
            raise InvalidRequest("this backend cannot sample with these parameters")

    app = create_app(Refusing([]), ServeConfig(model_name="smol", default_strategy="greedy"))
    with Served(app) as s:
        r = _post(s, {})
        assert r.status_code == 400 and "cannot sample" in r.json()["error"]["message"]


def test_prompts_are_template_names_never_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET INSTRUCTION")
    app = create_app(_scripted(), ServeConfig(model_name="smol", default_strategy="greedy"))
    with Served(app) as s:
        r = _post(s, {"ponder": {"strategy": f"greedy?prompt={secret}"}})
        assert r.status_code == 400 and "boxed, cot" in r.json()["error"]["message"] and "SECRET" not in r.text
        assert _post(s, {"ponder": {"strategy": "greedy?prompt=boxed"}}).status_code == 200


def test_a_cascade_escalates_only_to_the_models_the_operator_offers():
    opened = []

    def open_model(name):
        opened.append(name)
        return ScriptedGenerator(lambda req, i: "The answer is 7.")

    small = ScriptedGenerator(lambda req, i: f"The answer is {i}.")  # never agrees with itself
    app = create_app(small, ServeConfig(model_name="smol", cascade_models=("big",)), open_model=open_model)
    with Served(app) as s:
        for other in ("/etc/passwd", "gpt-9", "../big"):
            r = _post(s, {"ponder": {"strategy": f"cascade?large={other}&small_spec=majority%3Fn%3D3"}})
            assert r.status_code == 400 and "big" in r.json()["error"]["message"], (other, r.text)
        assert opened == []
        r = _post(s, {"ponder": {"strategy": "cascade?large=big&small_spec=majority%3Fn%3D3"}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"] == "7" and opened == ["big"]
        assert dict(body["ponder"]["choices"][0]["extra"])["escalated"] is True
        r = _post(s, {"ponder": {"strategy": "cascade?large=big&small_spec=majority%3Fn%3D3"}})
        assert r.status_code == 200 and opened == ["big"]  # opened once, kept


def _stream(s, body):
    """The SSE events of a streamed request, parsed."""
    events = []
    with httpx.stream("POST", s.url + "/chat/completions", json={"model": "smol", "messages": Q, "stream": True, **body},
                      timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[len("data: "):]))
    return events


def test_a_one_path_strategy_streams_its_trace_as_it_decodes():
    text = " ".join(f"w{i}" for i in range(40)) + " The answer is 7."
    gen = ScriptedGenerator(lambda req, i: text, seconds_per_token=0.02)
    app = create_app(gen, ServeConfig(model_name="smol", default_strategy="greedy", progress_interval=0.2))
    with Served(app) as s:
        events = _stream(s, {})
        deltas = [ch["delta"].get("reasoning_content") for e in events for ch in e.get("choices", []) if "delta" in ch]
        pieces = [d for d in deltas if d]
        assert len(pieces) > 10 and "".join(pieces) == text  # word by word, nothing sent twice
        contents = "".join(ch["delta"].get("content") or "" for e in events for ch in e.get("choices", []) if "delta" in ch)
        assert contents == "7"
        assert gen.calls[0][0].on_text is not None
        # a search (many paths) streams progress, then its chosen trace once
        app2 = create_app(ScriptedGenerator(lambda req, i: text, seconds_per_token=0.02),
                          ServeConfig(model_name="smol", default_strategy="majority?n=3", progress_interval=0.1))
    with Served(app2) as s2:
        events = _stream(s2, {})
        pieces = [ch["delta"]["reasoning_content"] for e in events for ch in e.get("choices", [])
                  if ch.get("delta", {}).get("reasoning_content")]
        assert pieces == [text] and any(e.get("ponder", {}).get("progress") for e in events)


def test_budget_forcing_streams_its_one_path_with_the_words_it_inserts():
    """The strategy puts "Wait" into its own path between requests: the stream hands it on in place, so the deltas
    add up to the trace the response reports."""
    def script(req, i):
        if not req.prefix:
            return "I think it is 7."
        return " Let me check: 3 + 4 is 7 indeed, so it stays 7."

    gen = ScriptedGenerator(script, seconds_per_token=0.01)
    app = create_app(gen, ServeConfig(model_name="smol", default_strategy="budget_forcing?min_tokens=6&max_waits=1&n=1",
                                      progress_interval=0.2))
    with Served(app) as s:
        events = _stream(s, {})
        whole = _post(s, {}).json()["choices"][0]["message"]["reasoning_content"]  # the same script, not streamed
    pieces = [ch["delta"]["reasoning_content"] for e in events for ch in e.get("choices", []) if ch.get("delta", {}).get("reasoning_content")]
    streamed = "".join(pieces)
    assert len(pieces) > 5 and "Wait" in streamed and streamed.startswith("I think it is 7.")
    assert streamed.split() == whole.split()  # the same words in the same order (a trimmed space may differ)
    assert len(gen.calls) >= 2  # it did continue its path
