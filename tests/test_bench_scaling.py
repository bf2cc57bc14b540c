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
