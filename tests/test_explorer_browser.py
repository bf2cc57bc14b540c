"""The trace explorer driven in a real headless Chromium against a real ``ponder serve`` on SmolLM2: sign in, run a
search and watch it arrive, check the drawn tree and votes against the API's JSON for that request, open a stored
run from the store, compare two results. With PONDER_SCREENSHOTS=DIR it saves the screenshots the docs show."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from ponder.evaluation.explore import result_trace, run_items
from ponder.evaluation.runner import EvalConfig, evaluate
from ponder.evaluation.store import Store
from ponder.server import ServeConfig, create_app
from ponder.testing import ArithmeticTask, RecordingGenerator

from test_server import Served

pytestmark = pytest.mark.e2e

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not (CHROMEDRIVER and CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium and chromium-driver for the explorer's tests (scripts/install.sh --test)")
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

KEY = "explorer-key"
TREE_SPEC = "mcts?iterations=3&expand=2&max_depth=2&max_step_tokens=16&max_tokens=40&seed=3"


def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def screenshot(driver, name: str, top: str | None = None) -> None:
    out = os.environ.get("PONDER_SCREENSHOTS")
    if out:
        if top:
            driver.execute_script(f"document.querySelector({json.dumps(top)}).scrollIntoView()")
        Path(out).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(out) / name))


@pytest.fixture(scope="module")
def store_path(engine, tmp_path_factory):
    path = tmp_path_factory.mktemp("explorer") / "eval.sqlite"
    store = Store(path)
    task = ArithmeticTask()
    cfg = EvalConfig(run="r", task=task.name, models=("smol",), budgets=(2,), limit=2, seed=1, workers=1,
                     strategies=("majority?max_tokens=24", "beam?width=2&keep=1&max_depth=2&max_step_tokens=12&max_tokens=32"))
    asyncio.run(evaluate(store, task, cfg, lambda m: RecordingGenerator(engine)))
    store.close()
    return path


@pytest.fixture(scope="module")
def page(engine, store_path):
    app = create_app(engine, ServeConfig(model_name="smol", default_strategy="greedy?max_tokens=24", api_key=KEY,
                                         store=str(store_path), max_seconds=120, progress_interval=0.2))
    with Served(app) as served:
        driver = browser()
        try:
            base = served.url.replace("/v1", "")
            driver.get(base + "/ui")
            assert "needs its API key" in driver.page_source  # behind the key
            driver.find_element(By.ID, "key").send_keys(KEY)
            driver.find_element(By.ID, "signin").click()
            wait(driver, "return window.ponderUI && window.ponderUI.ready === true")
            yield driver, base
        finally:
            driver.quit()


def wait(driver, script: str, timeout: float = 180):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script(script))


def drawn_tree(driver, box: str) -> dict:
    return driver.execute_script(f"""
        const box = document.querySelector({json.dumps(box)});
        const ids = (sel) => [...box.querySelectorAll(sel)].map((g) => Number(g.dataset.id)).sort((a, b) => a - b);
        return {{nodes: ids("g.node"), chosen: ids("g.node.chosen"), pruned: ids("g.node.pruned"),
                 declared: Number(box.querySelector("[data-role=tree]").dataset.nodes),
                 answer: box.querySelector("[data-role=answer]").textContent,
                 votes: Object.fromEntries([...box.querySelectorAll(".vote")].map((v) => [v.dataset.key, Number(v.dataset.weight)])),
                 candidates: box.querySelectorAll(".candidate").length}};""")


def test_a_live_search_is_drawn_as_the_api_answers_it(page):
    driver, _ = page
    Select(driver.find_element(By.ID, "strategy")).select_by_value("mcts")
    params = driver.find_element(By.ID, "params")
    params.clear()
    params.send_keys(TREE_SPEC.split("?", 1)[1])
    question = driver.find_element(By.ID, "question")
    question.clear()
    question.send_keys("What is 12 + 30?")
    driver.find_element(By.ID, "run").click()
    # progress arrives while it runs: the status line counts, tree nodes appear before the end
    wait(driver, "return document.getElementById('status').textContent.startsWith('searching')", 30)
    wait(driver, "return window.ponderUI.last !== null || window.ponderUI.liveNodes.size > 1")
    wait(driver, "return window.ponderUI.last !== null")
    ui = driver.execute_script("return {last: ponderUI.last, events: ponderUI.events, ticks: ponderUI.progressTicks, "
                               "live: [...ponderUI.liveNodes.keys()]}")
    last = ui["last"]
    assert ui["events"] > 0 and ui["ticks"] >= 1
    assert driver.find_element(By.ID, "status").text.startswith("done")
    # what the page draws is the API's JSON for the request: every node, the chosen path, the pruned, the vote
    wait(driver, "return document.querySelectorAll('#search-result g.node').length > 0", 10)
    drawn = drawn_tree(driver, "#search-result")
    tree = last["tree"]
    assert drawn["declared"] == len(tree) == len(drawn["nodes"]) and drawn["nodes"] == sorted(n["id"] for n in tree)
    assert drawn["chosen"] == sorted(n["id"] for n in tree if n["chosen"]) and drawn["chosen"][0] == 0
    assert drawn["pruned"] == sorted(n["id"] for n in tree if n["pruned"])
    assert drawn["answer"] == (last["answer"] if last["answer"] is not None else "(none)")
    assert drawn["votes"] == pytest.approx(last["votes"]) and drawn["candidates"] == len(last["candidates"])
    assert sorted(ui["live"]) == sorted(n["id"] for n in tree)  # the live events built the same tree
    assert last["usage"]["completion_tokens"] == sum(n["tokens"] for n in tree)
    # a node's label opens its step
    driver.execute_script("document.querySelector('#search-result g.node[data-id=\"1\"] text')"
                          ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    step = driver.find_element(By.CSS_SELECTOR, "#search-result [data-role=step]").text
    assert step.strip() == next(n for n in tree if n["id"] == 1)["step"].strip()
    screenshot(driver, "explorer-search.png", "#status")


def test_a_sampling_search_streams_its_paths_and_groups_them_by_answer(page):
    driver, _ = page
    Select(driver.find_element(By.ID, "strategy")).select_by_value("majority")
    params = driver.find_element(By.ID, "params")
    params.clear()
    params.send_keys("n=3&max_tokens=32&seed=5")
    driver.find_element(By.ID, "run").click()
    wait(driver, "return window.ponderUI.last !== null && window.ponderUI.last.strategy === 'majority'")
    last = driver.execute_script("return ponderUI.last")
    assert driver.execute_script("return document.querySelectorAll('#paths .path').length") == 3
    texts = driver.execute_script("return [...document.querySelectorAll('#paths .path .body')].map((x) => x.textContent)")
    assert texts == [c["text"] for c in last["candidates"]]  # the streamed text of each path is its candidate's text
    groups = driver.execute_script("return [...document.querySelectorAll('#search-result .group')].map((g) => "
                                   "[g.dataset.key, g.querySelectorAll('.candidate').length])")
    want = {}
    for c in last["candidates"]:
        want[c["key"] or "(no answer)"] = want.get(c["key"] or "(no answer)", 0) + 1
    assert dict(groups) == want


def test_a_stored_result_opens_from_the_report_link_and_compares(page, store_path):
    driver, base = page
    store = Store(store_path, readonly=True)
    items = run_items(store, "r")["items"]
    it = items[0]
    beam = next(r for r in it["results"] if r["strategy"] == "beam")
    from urllib.parse import urlencode

    driver.get(base + "/ui#" + urlencode({"run": "r", "item": it["item"], "model": "smol", "strategy": "beam", "budget": 2}))
    wait(driver, "return window.ponderUI.ready && window.ponderUI.stored !== undefined")
    wait(driver, "return document.querySelectorAll('#stored-result g.node').length > 0", 10)
    stored = result_trace(store, "r", it["item"], "smol", "beam", beam["params"], 2)
    drawn = drawn_tree(driver, "#stored-result")
    assert drawn["nodes"] == sorted(n["id"] for n in stored["tree"]) and drawn["chosen"] == sorted(n["id"] for n in stored["tree"] if n["chosen"])
    assert drawn["answer"] == (stored["answer"] if stored["answer"] is not None else "(none)")
    assert driver.execute_script("return document.querySelectorAll('#item-results tbody tr').length") == len(it["results"])
    screenshot(driver, "explorer-stored.png")
    # filters: only the items some result got wrong
    driver.find_element(By.ID, "f-wrong").click()
    shown = driver.execute_script("return [...document.querySelectorAll('#items tbody tr')].map((t) => t.dataset.item)")
    assert shown == [x["item"] for x in items if x["wrong"]]
    driver.find_element(By.ID, "f-wrong").click()
    # compare: the stored beam result beside the stored majority vote of the same item
    driver.find_element(By.CSS_SELECTOR, "#stored-result .compare-btn").click()
    row = driver.find_element(By.CSS_SELECTOR, "#item-results tr[data-strategy=majority]")
    row.find_element(By.CSS_SELECTOR, "button.add-compare").click()
    wait(driver, "return document.getElementById('pane-compare').classList.contains('active')", 10)
    majority = result_trace(store, "r", it["item"], "smol", "majority", next(r for r in it["results"] if r["strategy"] == "majority")["params"], 2)
    a = driver.execute_script("return document.querySelector('#compare-a [data-role=answer]').textContent")
    b = driver.execute_script("return document.querySelector('#compare-b [data-role=answer]').textContent")
    none = "(none)"
    assert (a, b) == (stored["answer"] or none, majority["answer"] or none)
    assert driver.execute_script("return document.querySelectorAll('#compare-a g.node').length") == len(stored["tree"])
    assert driver.execute_script("return document.querySelectorAll('#compare-b .candidate').length") == 2
    screenshot(driver, "explorer-compare.png")
