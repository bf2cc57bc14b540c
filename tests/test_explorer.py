"""The trace explorer's server side on a scripted generator: the page and its files, the sign-in that keeps the page
behind the API key without opening the API to other sites, the whole trace and the live events a search hands
out, and stored runs read back exactly as the evaluator stored them."""

import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from ponder.evaluation.explore import result_trace, run_items
from ponder.evaluation.runner import EvalConfig, evaluate
from ponder.evaluation.store import Store, StoreError
from ponder.server import ServeConfig, create_app
from ponder.server.auth import COOKIE
from ponder.testing import ArithmeticTask, ScriptedGenerator

D = "\n\n"


def steps_script(request, i):
    """A step, then after two steps the answer (the arithmetic task's reference: the numbers in the question)."""
    steps = [s for s in request.prefix.split(D) if s]
    if request.params.stop == () or len(steps) >= 2:
        q = request.prompt.messages[-1].content
        a, b = [int(w.strip("?")) for w in q.split() if w.strip("?").isdigit()][:2]
        return f"So {a} + {b} = {a + b + (i % 2)}. The answer is {a + b + (i % 2)}"
    return f"step {len(steps)}.{i}" + D


def app_for(**kw):
    return create_app(ScriptedGenerator(steps_script), ServeConfig(model_name="m", default_strategy="greedy", **kw))


ASK = {"model": "m", "messages": [{"role": "user", "content": "What is 2 + 3?"}],
       "ponder": {"strategy": "mcts?iterations=4&expand=2&max_depth=3", "trace": True}}


def sse(resp):
    out = []
    for line in resp.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


def test_the_page_and_its_files_are_served_and_nothing_else():
    c = TestClient(app_for())
    page = c.get("/ui")
    assert page.status_code == 200 and 'id="question"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]  # no inline or remote scripts
    for name in ("app.js", "app.css", "vendor/d3.min.js"):
        r = c.get(f"/ui/static/{name}")
        assert r.status_code == 200 and len(r.content) > 1000
    assert "d3js.org v7" in c.get("/ui/static/vendor/d3.min.js").text  # shipped, not fetched from a CDN
    for bad in ("../app.py", "..%2F..%2Fserver%2Fapp.py", "index.html", "/etc/passwd", "vendor/../../cli.py"):
        assert c.get(f"/ui/static/{bad}").status_code == 404
    cfg = c.get("/ui/api/config").json()
    names = {s["name"]: s for s in cfg["strategies"]}
    assert cfg["model"] == "m" and {"mcts", "beam", "majority", "program"} <= set(names) and names["mcts"]["scorer"]
    assert {"iterations", "expand"} <= {p["name"] for p in names["mcts"]["params"]} and cfg["store"] is False
    assert c.get("/ui/api/runs").status_code == 404  # no store configured


def test_the_page_is_behind_the_api_key_and_its_cookie_cannot_be_used_by_other_sites():
    c = TestClient(app_for(api_key="s3cret"))
    r = c.get("/ui")
    assert r.status_code == 401 and 'name="key"' in r.text and "s3cret" not in r.text
    assert c.get("/ui/api/config").status_code == 401
    assert c.post("/ui/login", data={"key": "wrong"}).status_code == 401
    r = c.post("/ui/login", data={"key": "s3cret"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.cookies[COOKIE]
    assert "s3cret" not in cookie and "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert c.get("/ui").status_code == 200 and c.get("/ui/static/app.js").status_code == 200
    # the cookie alone does not reach the API: a request must also carry the page's header (a cross-site form cannot)
    assert c.get("/ui/api/config").status_code == 401
    assert c.get("/ui/api/config", headers={"X-Ponder-UI": "1"}).status_code == 200
    body = {**ASK, "ponder": {"strategy": "greedy"}}
    assert c.post("/v1/chat/completions", json=body).status_code == 401
    assert c.post("/v1/chat/completions", json=body, headers={"X-Ponder-UI": "1"}).status_code == 200
    other = TestClient(app_for(api_key="s3cret"))
    other.cookies.set(COOKIE, "0" * 64)
    assert other.get("/ui/api/config", headers={"X-Ponder-UI": "1"}).status_code == 401
    assert other.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_traced_answer_carries_every_text_and_the_tree():
    c = TestClient(app_for())
    plain = c.post("/v1/chat/completions", json={**ASK, "ponder": {**ASK["ponder"], "trace": False}}).json()["ponder"]["choices"][0]
    full = c.post("/v1/chat/completions", json=ASK).json()["ponder"]["choices"][0]
    assert "text" not in plain["candidates"][0] and "step" not in plain["tree"][1]
    assert full["candidates"][0]["text"] and full["tree"][1]["step"].startswith("step 0.")
    assert len(full["tree"]) == 1 + full["extra"]["nodes"] and full["tree"][0]["visits"] == full["extra"]["root_visits"]
    chosen = [n for n in full["tree"] if n["chosen"]]
    assert chosen[0]["id"] == 0 and chosen[-1]["candidate"] == full["chosen"]


def test_a_traced_stream_sends_the_search_as_it_runs_and_the_events_add_up_to_the_tree():
    c = TestClient(app_for())
    with c.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as resp:
        assert resp.status_code == 200
        chunks = sse(resp)
    events = [e for ch in chunks for e in (ch.get("ponder") or {}).get("events", [])]
    final = next(ch["ponder"] for ch in chunks if "choices" in (ch.get("ponder") or {}))["choices"][0]
    kinds = {e["event"] for e in events}
    assert {"node", "scores", "visits", "paths", "path_end"} <= kinds
    nodes = {e["id"]: e for e in events if e["event"] == "node"}
    tree = {n["id"]: n for n in final["tree"]}
    assert set(nodes) | {0} == set(tree)
    assert all(nodes[i]["parent"] == tree[i]["parent"] and nodes[i]["step"] == tree[i]["step"] for i in nodes)
    last_visits = {}
    for e in events:
        if e["event"] == "visits":
            last_visits.update({i: v for i, v, _ in e["nodes"]})
    assert all(tree[i]["visits"] == v for i, v in last_visits.items())
    # every sample the search drew is a numbered path, opened and ended
    opened = sum(e["n"] for e in events if e["event"] == "paths")
    assert opened == sum(len(e["paths"]) for e in events if e["event"] == "path_end") == final["extra"]["nodes"]
    # untraced streams carry no events
    with c.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True, "ponder": {"strategy": "mcts?iterations=2"}}) as resp:
        assert not any("events" in (ch.get("ponder") or {}) for ch in sse(resp))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "eval.sqlite"
    store = Store(path)
    task = ArithmeticTask()
    cfg = EvalConfig(run="r", task=task.name, models=("m",), strategies=("majority", "mcts?expand=2&max_depth=3"),
                     budgets=(2, 4), limit=3, seed=1, workers=1)
    asyncio.run(evaluate(store, task, cfg, lambda m: ScriptedGenerator(steps_script)))
    store.close()
    return path


def test_stored_runs_read_back_as_stored(stored):
    store = Store(stored, readonly=True)
    found = run_items(store, "r")
    assert len(found["items"]) == 3 and all(len(it["results"]) == 4 for it in found["items"])
    it = found["items"][0]
    for res in it["results"]:
        t = result_trace(store, "r", it["item"], "m", res["strategy"], res["params"], res["budget"])
        assert t["answer"] == res["answer"] and t["correct"] == res["correct"]
        if res["strategy"] == "majority":
            assert len(t["candidates"]) == res["budget"]
        else:
            linked = [n["candidate"] for n in t["tree"] if n["candidate"] is not None]
            assert t["candidates"] and sorted(linked) == list(range(len(t["candidates"])))
        assert all("text" in c and "correct" in c for c in t["candidates"]) and t["question"].startswith("What is")
        if res["strategy"] == "mcts":
            assert t["stored"] == "result" and t["tree"][0]["visits"] and any(n["chosen"] for n in t["tree"])
        else:  # derived from the shared samples: the first `budget` of them, and the vote they gave
            assert t["stored"] == "samples" and sum(t["votes"].values()) <= res["budget"]
            assert t["candidates"][t["chosen"]]["key"] == t["answer"]
    assert result_trace(store, "r", it["item"], "m", "majority", "{}", 99) is None
    with pytest.raises(StoreError, match="no evaluation store"):
        Store(stored.parent / "missing.sqlite", readonly=True)
    assert not (stored.parent / "missing.sqlite").exists()


def test_the_server_hands_the_explorer_its_store(stored):
    c = TestClient(app_for(store=str(stored)))
    assert c.get("/ui/api/config").json()["store"] is True
    runs = c.get("/ui/api/runs").json()["runs"]
    assert [r["run"] for r in runs] == ["r"] and runs[0]["results"] == 12
    items = c.get("/ui/api/runs/r").json()["items"]
    res = next(r for r in items[1]["results"] if r["strategy"] == "mcts")
    got = c.get("/ui/api/trace", params={"run": "r", "item": items[1]["item"], "model": "m", "strategy": "mcts",
                                         "params": res["params"], "budget": res["budget"]}).json()
    direct = result_trace(Store(stored, readonly=True), "r", items[1]["item"], "m", "mcts", res["params"], res["budget"])
    assert got == json.loads(json.dumps(direct))
    assert c.get("/ui/api/runs/nope").status_code == 404
    assert c.get("/ui/api/trace", params={"run": "r", "item": "x", "model": "m", "strategy": "mcts", "params": "{}", "budget": 1}).status_code == 404
    assert c.get("/ui/api/trace", params={"run": "r"}).status_code == 400


def test_report_links_each_item_to_the_explorer(stored, tmp_path):
    pytest.importorskip("matplotlib")
    from ponder.evaluation.report import write_report

    paths = write_report(Store(stored, readonly=True), "r", tmp_path / "rep", explorer="http://127.0.0.1:9999")
    page = paths["report.html"].read_text()
    assert page.count('href="http://127.0.0.1:9999/ui#run=r&amp;item=') == 3
