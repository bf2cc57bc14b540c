"""ponder serve --passthrough: the bare model behind the OpenAI API (no search, nothing added to the prompt), so
another tool's search runs on ponder's engine with every token counted here. On the scripted generator (exact
requests) and on SmolLM2 through the official client."""

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from ponder.server import ServeConfig, create_app
from ponder.testing import ScriptedGenerator

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "Let me see."}, {"role": "user", "content": "Well?"}]


def client(script=None, **kw):
    gen = ScriptedGenerator(script or (lambda req, i: f"path {i}: 2 + 3 = 5. The answer is 5"))
    return TestClient(create_app(gen, ServeConfig(model_name="m", passthrough=True, **kw))), gen


def metric(c, kind):
    for line in c.get("/metrics").text.splitlines():
        if line.startswith(f'ponder_tokens_total{{kind="{kind}",strategy="passthrough"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_chat_request_reaches_the_model_as_sent_and_returns_its_text():
    c, gen = client()
    r = c.post("/v1/chat/completions", json={"model": "m", "messages": MSGS, "n": 3, "temperature": 0.6, "seed": 9,
                                             "max_completion_tokens": 40, "stop": ["\n\n"]})
    assert r.status_code == 200, r.text
    body = r.json()
    [[req]] = gen.calls
    assert [(m.role, m.content) for m in req.prompt.messages] == [(m["role"], m["content"]) for m in MSGS]  # nothing added
    assert req.n == 3 and req.params.temperature == 0.6 and req.params.seed == 9 and req.params.max_tokens == 40
    assert req.params.stop == ("\n\n",) and req.params.top_k == 0
    assert [ch["message"]["content"] for ch in body["choices"]] == [f"path {i}: 2 + 3 = 5. The answer is 5" for i in range(3)]
    assert "ponder" not in body and body["usage"]["completion_tokens"] == metric(c, "completion") > 0
    assert body["usage"]["prompt_tokens"] == metric(c, "prompt") > 0


def test_completions_logprobs_and_defaults():
    c, gen = client()
    r = c.post("/v1/completions", json={"model": "m", "prompt": "2 + 3 =", "max_tokens": 8, "logprobs": 2})
    assert r.status_code == 200, r.text
    ch = r.json()["choices"][0]
    [[req]] = gen.calls
    assert req.prompt.text == "2 + 3 =" and req.params.temperature == 1.0 and req.params.logprobs == 2
    assert len(ch["logprobs"]["tokens"]) == len(ch["logprobs"]["token_logprobs"]) > 0 and ch["finish_reason"] == "length"
    r = c.post("/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2], "logprobs": True, "top_logprobs": 1})
    lp = r.json()["choices"][0]["logprobs"]["content"]
    assert lp and {"token", "logprob", "top_logprobs", "bytes"} <= set(lp[0])


def test_search_options_and_what_cannot_pass_are_refused():
    c, gen = client(max_n=4, max_tokens_total=100)
    for bad in ({"ponder": {"strategy": "majority"}}, {"reasoning_effort": "high"}, {"n": 5},
                {"n": 4, "max_tokens": 30}, {"logprobs": True, "top_logprobs": 50},
                {"messages": [{"role": "tool", "content": "x"}, {"role": "user", "content": "hi"}]}):
        r = c.post("/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2], **bad})
        assert r.status_code == 400, (bad, r.text)
    assert gen.calls == []


def test_sampling_defaults_fill_only_what_a_request_leaves_unset():
    c, gen = client()  # OpenAI's defaults: top-p 1, no top-k
    c.post("/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2]})
    c2, gen2 = client(passthrough_sampling="ponder")  # what ponder's own strategies sample with
    c2.post("/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2]})
    c2.post("/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2], "top_p": 0.5, "top_k": 7, "min_p": 0.1})
    (openai,), (ponder,), (asked,) = gen.calls[0], *gen2.calls
    assert (openai.params.top_p, openai.params.top_k, openai.params.min_p) == (1.0, 0, 0.0)
    assert (ponder.params.top_p, ponder.params.top_k) == (0.95, 40)
    assert (asked.params.top_p, asked.params.top_k, asked.params.min_p) == (0.5, 7, 0.1)  # llama.cpp's extensions honoured
    for bad in ({"top_k": -1}, {"top_k": 2.5}, {"top_k": "40"}, {"min_p": 1.5}, {"top_k": True}):
        r = c2.post("/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2], **bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == next(iter(bad)), (bad, r.text)
    assert len(gen2.calls) == 2


def test_a_streamed_request_sends_each_sample_as_it_decodes():
    c, _ = client()
    with c.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2], "n": 2, "stream": True,
                                                        "stream_options": {"include_usage": True}}) as resp:
        chunks = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"]
    texts = {0: "", 1: ""}
    for ch in chunks:
        for choice in ch["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts == {i: f"path {i}: 2 + 3 = 5. The answer is 5" for i in range(2)}
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"]]
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_each_ledger_counts_the_requests_sent_under_its_tag():
    c, gen = client()
    for tag, n in (("run-a", 1), ("run-b", 3), ("run-a", 2)):
        r = c.post(f"/ledger/{tag}/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2], "n": n})
        assert r.status_code == 200, r.text
    r = c.post("/ledger/run-b/v1/completions", json={"model": "m", "prompt": "2 + 3 =", "max_tokens": 8})
    assert r.status_code == 200, r.text
    with c.stream("POST", "/ledger/run-c/v1/chat/completions",
                  json={"model": "m", "messages": MSGS[1:2], "stream": True}) as resp:
        list(resp.iter_lines())
    a, b, cc = (c.get(f"/ledger/{t}").json() for t in ("run-a", "run-b", "run-c"))
    assert a["requests"] == 2 and b["requests"] == 2 and cc["requests"] == 1 and a["errors"] == b["errors"] == 0
    assert a["completion_tokens"] > 0 and b["completion_tokens"] > 0 and cc["completion_tokens"] > 0
    # the ledgers split exactly what /metrics counts in all
    assert a["completion_tokens"] + b["completion_tokens"] + cc["completion_tokens"] == metric(c, "completion")
    assert a["prompt_tokens"] + b["prompt_tokens"] + cc["prompt_tokens"] == metric(c, "prompt")
    assert c.get("/ledger/run-a/v1/models").json()["data"][0]["id"] == "m"


def test_ledgers_refuse_bad_tags_unknown_tags_and_a_searching_server():
    c, gen = client()
    assert c.get("/ledger/never-used").status_code == 404
    r = c.post("/ledger/bad%20tag/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2]})
    assert r.status_code == 400 and "ledger tag" in r.json()["error"]["message"]
    assert c.get("/ledger/" + "x" * 129).status_code == 400
    assert gen.calls == []
    keyed, _ = client(api_key="k3y")
    for path in ("/ledger/t/v1/chat/completions", "/ledger/t/v1/completions"):
        assert keyed.post(path, json={"model": "m", "messages": MSGS[1:2], "prompt": "x"}).status_code == 401
    assert keyed.get("/ledger/t").status_code == 401 and keyed.get("/ledger/t/v1/models").status_code == 401
    ok = keyed.post("/ledger/t/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2]},
                    headers={"Authorization": "Bearer k3y"})
    assert ok.status_code == 200 and keyed.get("/ledger/t", headers={"Authorization": "Bearer k3y"}).json()["requests"] == 1
    searching = TestClient(create_app(ScriptedGenerator(lambda req, i: "The answer is 5"), ServeConfig(model_name="m")))
    r = searching.post("/ledger/t/v1/chat/completions", json={"model": "m", "messages": MSGS[1:2]})
    assert r.status_code == 404 and "--passthrough" in r.json()["error"]["message"]


@pytest.mark.e2e
def test_the_official_client_on_smollm2(engine):
    import openai

    from test_server import Served

    with Served(create_app(engine, ServeConfig(model_name="smol", passthrough=True))) as s:
        cl = openai.OpenAI(base_url=s.url, api_key="none", max_retries=0)
        r = cl.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Say hello."}], n=2, seed=1,
                                       max_tokens=12, temperature=0.7)
        assert len(r.choices) == 2 and all(ch.message.content for ch in r.choices)
        assert 2 <= r.usage.completion_tokens <= 24 and r.usage.prompt_tokens > 0
        g = cl.completions.create(model="smol", prompt="The capital of France is", max_tokens=4, temperature=0)
        assert g.choices[0].text and g.usage.completion_tokens <= 4
        tagged = openai.OpenAI(base_url=s.url.replace("/v1", "/ledger/item-7/v1"), api_key="none", max_retries=0)
        t = tagged.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Say hi."}], max_tokens=6)
        book = httpx.get(s.url.replace("/v1", "/ledger/item-7"), timeout=10).json()
        assert book["requests"] == 1 and book["completion_tokens"] == t.usage.completion_tokens > 0
