"""bench/scaling.py's snapshot: a consistent single-file copy of the store while a run is writing to it."""

import sqlite3

from bench.scaling import snapshot
from ponder.evaluation.store import Key, Store


def sample(idx: int) -> dict:
    return {"idx": idx, "text": f"path {idx}", "answer": str(idx), "key": str(idx), "tokens": 10, "finish": "eos",
            "confidence": None, "score": None, "correct": 0.0, "prompt_tokens": 5, "seconds": 0.1,
            "token_logprobs": [-0.5] * 10}


def test_a_snapshot_holds_the_committed_rows_only_as_one_file_and_opens_as_a_store(tmp_path):
    live = tmp_path / "scaling.sqlite"
    store = Store(live)
    key = Key("scaling", "rg:gsm_symbolic", "2024-0", "m", "samples", "{}", 2024)
    store.put_samples(key, [sample(0), sample(1)])
    writer = sqlite3.connect(live, isolation_level=None)  # a run in the middle of a transaction
    writer.execute("BEGIN")
    cols = "run, task, item, model, strategy, params, seed, idx, text, answer, key, tokens, finish, correct, prompt_tokens, seconds"
    writer.execute(f"INSERT INTO samples ({cols}) SELECT {cols.replace('idx, text', '2, ?')} FROM samples WHERE idx = 0",
                   ("path 2",))
    dest = tmp_path / "out" / "snap.sqlite"
    counts = snapshot(live, dest)
    writer.execute("COMMIT")
    assert counts["samples"] == 2
    assert not dest.with_name("snap.sqlite-wal").exists() and not dest.with_name("snap.sqlite.tmp").exists()
    copy = sqlite3.connect(dest)
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    copy.close()
    reopened = Store(dest)
    assert [r["text"] for r in reopened.samples(key)] == ["path 0", "path 1"]
    assert reopened.samples(key)[0]["token_logprobs"] is not None
    # the live store went on: its third row is there, the copy is untouched by it
    assert len(store.samples(key)) == 3
    reopened.close()
    store.close()


def test_the_headline_figures_and_the_default_choice():
    """bench/scaling.py's examples (headline_of, default_config) run here: bench/ is outside the doctest paths."""
    import doctest

    import bench.scaling

    result = doctest.testmod(bench.scaling, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_every_published_headline_row_regenerates_from_the_committed_store():
    """scaling.json's rows (and the README table drawn from them) are what the committed store summarises to: a
    store committed without a phase's rows (dropped when the probe they were scored with changed) fails here, not
    in a reader's rerun. verifier.json's beam figure is the widest phase-17 row of scaling.json, or None while
    that phase is incomplete."""
    import json

    from bench.common import RESULTS
    from bench.scaling import LIMIT, SEED, TASK, headline_rows
    from ponder.evaluation.runner import item_id
    from ponder.tasks import load_task

    published = json.loads((RESULTS / "scaling.json").read_text())
    items = {item_id(p) for p in load_task(TASK).problems(published["details"]["limit"], SEED)}
    assert published["details"]["limit"] == LIMIT
    store = Store(RESULTS / "scaling.sqlite", readonly=True)
    try:
        rows = headline_rows(store, items)
    finally:
        store.close()
    key = lambda r: (r["model"], r["strategy"], r["budget"])  # noqa: E731
    regenerated = {key(r): r for r in rows}
    shown = {key(r): r for r in published["details"]["rows"]}
    assert sorted(shown) == sorted(regenerated), "rows published in scaling.json and rows in the committed store differ"
    for k, r in shown.items():
        again = regenerated[k]
        assert r["items"] == again["items"], k
        for field in ("accuracy", "ci_low", "ci_high", "completion_tokens", "seconds"):
            assert abs(r[field] - again[field]) < 0.01, (k, field, r[field], again[field])

    verified = json.loads((RESULTS / "verifier.json").read_text())
    beams = [r for r in published["details"]["rows"] if r["strategy"].startswith("beam?prompt=pal&scorer=probe")
             and r["items"] == LIMIT]
    widest = max(beams, key=lambda r: r["budget"]) if beams else None
    assert verified["probe_beam_accuracy"] == (round(widest["accuracy"], 4) if widest else None)
