"""How fast the trace explorer draws a large search tree, in headless Chromium (Debian's chromium + chromedriver).

A real ``mcts`` search (the strategy's own code, on the scripted generator and a scripted step scorer, so the tree
is as large as asked and costs no model time) builds a tree of about ``--nodes`` nodes; the page served by a real
``ponder serve`` app renders its Result, and the browser times, with ``performance.now()`` up to the next painted
frame (so at least two 16.7 ms frames; the synchronous layout-and-draw work is timed apart): the first render (the page folds trees over 200 nodes below depth 2, except the chosen path), unfolding a
folded subtree of the largest branch, folding it again, "expand all" (every node drawn) and a search within the
tree. Each is repeated and the median reported. Target: a 500-node tree renders and expands a node in under 1 s.

    python -m bench.ui            # writes bench/results/ui.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn

from bench.common import write_result
from ponder.server import ServeConfig, create_app
from ponder.strategies import run
from ponder.testing import ScriptedGenerator, ScriptedScorer
from ponder.types import Problem

D = "\n\n"
SEED = 11


def step_script(request, i):
    steps = [s for s in request.prefix.split(D) if s]
    if request.params.stop == ():
        return f"so the answer is {len(steps) + i}. The answer is {len(steps) + i}"
    return f"step {len(steps)}: compute part {i} of the quantity carefully" + D


def tree_result(nodes: int) -> dict:
    """A real MCTS search whose tree has about ``nodes`` nodes (each iteration adds ``expand`` = 2)."""
    scorer = ScriptedScorer(step=lambda s: (zlib.crc32(f"{SEED}{s}".encode()) % 1000) / 1000)
    spec = f"mcts?iterations={nodes // 2}&expand=2&max_depth=14&exploration=0.8&seed={SEED}"
    r = asyncio.run(run(spec, Problem("How large is the quantity?"), ScriptedGenerator(step_script), scorer=scorer))
    return r.to_dict()


TIMING_JS = """
const [result, repeats, done] = arguments;
const frame = () => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
const box = document.getElementById('search-result');
const out = {render: [], unfold: [], fold: [], expand_all: [], search: [], draw: [], unfold_draw: [], expand_all_draw: []};
(async () => {
  for (let k = 0; k < repeats; k++) {
    box.replaceChildren();
    await frame();
    let t0 = performance.now();
    ponderUI.renderResult(box, result, {id: 'bench'});
    await frame();
    out.render.push(performance.now() - t0);
    const tree = ponderUI.trees.bench;
    out.draw.push(tree.lastDrawMs);
    out.drawn_first = box.querySelectorAll('g.node').length;
    // the largest folded subtree: a folded node with the most descendants
    let target = null, size = -1;
    for (const d of tree.all) if (d._collapsed && d._kids) { const n = tree.subtree(d); if (n > size) { size = n; target = d; } }
    out.unfold_subtree = size;
    t0 = performance.now(); out.unfold_draw.push(tree.toggle(target.data.id)); await frame(); out.unfold.push(performance.now() - t0);
    out.drawn_unfolded = box.querySelectorAll('g.node').length;
    t0 = performance.now(); tree.toggle(target.data.id); await frame(); out.fold.push(performance.now() - t0);
    t0 = performance.now(); tree.expandAll(); out.expand_all_draw.push(tree.lastDrawMs); await frame(); out.expand_all.push(performance.now() - t0);
    out.drawn_all = box.querySelectorAll('g.node').length;
    t0 = performance.now(); out.matches = tree.search('part 1'); await frame(); out.search.push(performance.now() - t0);
  }
  done(out);
})();
"""


def serve_app():
    app = create_app(ScriptedGenerator(step_script), ServeConfig(model_name="scripted", default_strategy="greedy"))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
            return server, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    result = tree_result(args.nodes)
    n_nodes = len(result["tree"])
    server, base = serve_app()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.set_script_timeout(300)
        driver.get(base + "/ui")
        for _ in range(200):
            if driver.execute_script("return window.ponderUI && window.ponderUI.ready === true"):
                break
            time.sleep(0.05)
        timings = driver.execute_async_script(TIMING_JS, result, args.repeats)
        version = driver.capabilities.get("browserVersion")
    finally:
        driver.quit()
        server.should_exit = True
    med = {k: round(statistics.median(v), 1) for k, v in timings.items() if isinstance(v, list)}
    render_and_expand = med["render"] + med["unfold"]
    # *_ms: from the call to the second animation frame after it (the result painted), so a figure is a whole
    # number of 16.7 ms frames at least; *_draw_ms: the d3 layout and SVG update alone (synchronous work)
    headline = {"nodes": n_nodes, "render_ms": med["render"], "render_first_ms": round(timings["render"][0], 1),
                "expand_ms": med["unfold"], "fold_ms": med["fold"],
                "expand_all_ms": med["expand_all"], "search_ms": med["search"], "draw_ms": med["draw"],
                "expand_draw_ms": med["unfold_draw"], "expand_all_draw_ms": med["expand_all_draw"],
                "render_and_expand_ms": round(render_and_expand, 1), "target_ms": 1000,
                "target_met": render_and_expand < 1000}
    details = {"chromium": version, "repeats": args.repeats, "runs_ms": timings,
               "drawn_first": timings["drawn_first"], "drawn_unfolded": timings["drawn_unfolded"],
               "drawn_all": timings["drawn_all"], "unfold_subtree_nodes": timings["unfold_subtree"],
               "search_matches": timings["matches"], "iterations": result["extra"]["iterations"],
               "chromedriver": subprocess.run(["chromedriver", "--version"], capture_output=True, text=True).stdout.strip()}
    out = write_result("ui", headline, models_used=[], seeds=[SEED], details=details)
    print(json.dumps(headline, indent=1))
    print(out)


if __name__ == "__main__":
    main()
