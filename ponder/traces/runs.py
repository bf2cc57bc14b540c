"""A stored run's questions, read back from its task, and JSONL out: what every trace export starts and ends with."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ponder.errors import InvalidRequest


def run_problems(store, run: str, *, exclude_runs: tuple[str, ...] = (), task: str | None = None) -> tuple[dict, str]:
    """``({item id: Problem}, task spec)`` for ``run``'s items, leaving out every item a run in ``exclude_runs``
    evaluated; ``task`` loads the questions when the run's stored task is a custom one (``module:attribute``)."""
    from ponder.evaluation.runner import item_id
    from ponder.tasks import load_task

    config = store.run_config(run)
    if config is None:
        raise InvalidRequest(f"no run {run!r} in {store.path}")
    excluded = {r["item"] for other in exclude_runs for r in store.results(other)}
    spec = task or config["task"]
    problems = {item_id(p): p for p in load_task(spec).problems(config.get("limit"), config.get("seed", 0))}
    return {k: p for k, p in problems.items() if k not in excluded}, spec


def write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    """``records`` as JSON lines (UTF-8, not ASCII-escaped)."""
    path = Path(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path
