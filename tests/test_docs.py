"""The docs cannot go stale: every generated page is regenerated here and compared with the committed one, and
README stays short."""

import sys
from pathlib import Path

from ponder.docs import PAGES, stale_pages, strategies_markdown
from ponder.strategies import available
from ponder.strategies.base import SamplingOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def test_the_reference_pages_are_what_the_code_generates():
    assert stale_pages(ROOT / "docs") == [], "run `ponder docs --out docs` and commit the pages"
    assert set(PAGES) <= {p.name for p in (ROOT / "docs").glob("*.md")}


def test_every_shipped_strategy_and_its_own_parameters_are_documented():
    page = strategies_markdown()
    for name, info in available().items():
        if not info.run.__module__.startswith("ponder."):
            continue  # a plug-in installed by another test documents itself
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for field in set(info.params.model_fields) - set(SamplingOptions.model_fields):
            assert f"| `{field}` |" in section, (name, field)


def test_the_benchmark_page_and_the_readme_headline_are_generated_from_the_results():
    from bench.docs import DOC, README, benchmarks_markdown, readme_with_headline

    assert DOC.read_text() == benchmarks_markdown(), "run `python -m bench.docs` and commit docs/benchmarks.md"
    readme = README.read_text()
    assert readme == readme_with_headline(readme), "run `python -m bench.docs`: README's headline differs from scaling.json"


def test_the_readme_headline_table_holds_scaling_json_figures():
    import json
    import re

    data = json.loads((ROOT / "bench" / "results" / "scaling.json").read_text())
    rows = {(r["model"], r["strategy"], r["budget"]): r for r in data["details"]["rows"]}
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| (\S+) \| `([^`]+)` \((\d+)\) \| ([\d.]+) \[([\d.]+), ([\d.]+)\] \| (\d+) \|$", readme, re.M)
    assert table, "README has no headline table"
    for model, strategy, budget, acc, lo, hi, tokens in table:
        r = rows[(model, strategy, int(budget))]
        assert (f"{r['accuracy']:.2f}", f"{r['ci_low']:.2f}", f"{r['ci_high']:.2f}", f"{r['completion_tokens']:.0f}") == (acc, lo, hi, tokens)


def test_the_readme_peers_table_holds_peers_json_figures():
    import json
    import re

    data = json.loads((ROOT / "bench" / "results" / "peers.json").read_text())
    rows = {(r["tool"], r["approach"]): r for r in data["details"]["rows"]}
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| (its_hub|optillm) \| (\w+) \(\d+\) \| ([\d.]+) \[([\d.]+), ([\d.]+)\] \| (\d+) \|", readme, re.M)
    assert sorted((t, a) for t, a, *_ in table) == sorted(rows), "README's peers table lists every measured approach once"
    for tool, approach, acc, lo, hi, tokens in table:
        r = rows[(tool, approach)]
        assert (f"{r['accuracy']:.2f}", f"{r['ci'][0]:.2f}", f"{r['ci'][1]:.2f}", f"{r['completion_tokens']:.0f}") == (acc, lo, hi, tokens)


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) < 250


def test_the_peers_text_says_what_batching_buys_where_the_pair_was_timed(monkeypatch):
    import copy
    import json

    import bench.docs as docs

    data = json.loads((ROOT / "bench" / "results" / "peers.json").read_text())
    if not data["details"].get("timing"):
        data["details"]["timing"] = {"pair": "p", "peer_approach": data["peer_best"], "items": 10, "machine": "CPU",
                                     "peer": {"seconds": 88.0}, "ponder": {"seconds": 63.0}, "speedup": 1.4}
        data["ponder_speedup_vs_peer_best"] = 1.4
    timed = copy.deepcopy(data)
    timed["details"]["timing"]["batching"] = {"sequences": 16, "ms_per_step_1": 28.4, "ms_per_step_n": 231.0,
                                              "gain": 1.97, "machine": "CPU"}
    monkeypatch.setattr(docs, "load", lambda name: timed)
    text = docs.peers_markdown()
    assert "a bare decode step of 16 sequences took 231 ms against 28 ms for one, 1.97× the tokens a second" in text
    data["details"]["timing"].pop("batching", None)
    monkeypatch.setattr(docs, "load", lambda name: data)
    assert "bare decode step" not in docs.peers_markdown()  # a pair timed before the floor was measured says nothing


def test_the_peers_verdict_names_the_configuration_that_meets_the_target(monkeypatch):
    import copy
    import json

    import bench.docs as docs

    data = json.loads((ROOT / "bench" / "results" / "peers.json").read_text())
    best = next(r for r in data["details"]["ponder_rows"] if f"{r['strategy']}@{r['budget']}" == data["ponder_best_strategy"])
    cheap = {**best, "strategy": "program", "budget": 1, "accuracy": data["peer_best_accuracy"] + 0.05,
             "ci_low": 0.2, "ci_high": 0.5, "completion_tokens": 120.0}
    data["details"]["ponder_rows"].append(cheap)
    data["ponder_cheapest_clearing_strategy"] = "program@1"
    data["details"]["cheapest_clearing_timing"], data["ponder_cheapest_clearing_speedup"] = None, None
    timing = {"pair": "p", "peer_approach": data["peer_best"], "items": 10, "machine": "CPU",
              "peer": {"seconds": 88.0}, "ponder": {"seconds": 63.0}, "speedup": 1.4}
    data["details"]["timing"], data["ponder_speedup_vs_peer_best"] = timing, 1.4
    slow = copy.deepcopy(data)
    monkeypatch.setattr(docs, "load", lambda name: slow)
    text = docs.peers_markdown()
    assert "`program@1`" in text and "it is not yet timed side by side" in text and "is not met" in text
    assert "| ponder | `program` (1) |" in text  # its own row in the table
    data["details"]["cheapest_clearing_timing"] = {**timing, "ponder": {"seconds": 4.0}, "speedup": 22.0}
    data["ponder_cheapest_clearing_speedup"] = 22.0
    monkeypatch.setattr(docs, "load", lambda name: data)
    text = docs.peers_markdown()
    assert "took 4 s an item against the peer's 88 s (22.00×)" in text
    assert "is met on these" in text and "(by the cheapest configuration)" in text
