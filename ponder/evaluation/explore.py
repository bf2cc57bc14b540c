"""Reading a stored run the way the trace explorer shows it: each item with every result stored for it, flags for
the questions a user asks of a run (which items are wrong, where the answer changed between budgets, where the
strategies disagree), and one result's whole trace, read from the store and never recomputed.

A strategy run's trace is its stored Result (candidates, steps, executions, tree); a shared-sample row's trace
names the samples it chose among, and its candidates are read from the ``samples`` table here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from ponder.evaluation.store import Key, Store
from ponder.strategies.base import SamplingOptions


def run_items(store: Store, run: str) -> dict[str, Any]:
    """A run's items, each with its results (one per model, strategy variant and budget) and the flags the explorer
    filters on: ``wrong`` (some result is wrong), ``changed`` (a strategy's answer differs between its budgets),
    ``disagree`` (the strategies' answers at their largest budget differ)."""
    rows = store.results(run)
    items: dict[str, dict[str, Any]] = {}
    for r in rows:
        it = items.setdefault(r["item"], {"item": r["item"], "task": r["task"], "reference": r["reference"], "results": []})
        it["results"].append({"model": r["model"], "strategy": r["strategy"], "params": r["params"], "budget": r["budget"],
                              "seed": r["seed"], "answer": r["answer"], "correct": r["correct"],
                              "completion_tokens": r["completion_tokens"], "seconds": round(r["seconds"], 3)})
    for it in items.values():
        by_variant: dict[tuple, list] = defaultdict(list)
        for res in it["results"]:
            by_variant[(res["model"], res["strategy"], res["params"])].append(res)
        it["wrong"] = any(res["correct"] <= 0 for res in it["results"])
        it["changed"] = any(len({res["answer"] for res in rs}) > 1 for rs in by_variant.values())
        finals = {max(rs, key=lambda x: x["budget"])["answer"] for rs in by_variant.values()}
        it["disagree"] = len(finals) > 1
    config = store.run_config(run)
    return {"run": run, "config": config, "items": list(items.values())}


def result_trace(store: Store, run: str, item: str, model: str, strategy: str, params: str, budget: int,
                 task: str | None = None, seed: int | None = None) -> dict[str, Any] | None:
    """One stored result as the explorer draws it (the Result's JSON form with ``correct`` on each candidate), or
    None when the store has no such result."""
    found = store.find_result(run, item, model, strategy, params, budget, task, seed)
    if found is None:
        return None
    row, stored = found
    summary = {"run": run, "item": item, "model": model, "budget": budget, "correct": row["correct"],
               "reference": row["reference"], "params_key": params,
               "usage": {"prompt_tokens": row["prompt_tokens"], "cached_prompt_tokens": row["cached_prompt_tokens"],
                         "completion_tokens": row["completion_tokens"], "seconds": round(row["seconds"], 3)}}
    if stored is not None and stored.get("from_samples") is None and "candidates" in stored:
        return {**stored, **summary, "stored": "result"}
    samples_of = (stored or {}).get("from_samples")
    if samples_of is not None:
        rows = store.samples(Key(run, row["task"], item, samples_of["model"], samples_of["strategy"], samples_of["params"],
                                 row["seed"]))[: samples_of["count"]]
    else:  # a row stored before traces were kept: its samples, if it was derived from shared ones
        rows = store.samples(Key(run, row["task"], item, model, "samples", _sampling_key(params), row["seed"]))[:budget]
    answers = (stored or {}).get("answers") or [r["answer"] for r in rows]
    keys = (stored or {}).get("keys") or [r["key"] for r in rows]
    scores = (stored or {}).get("scores") or [None] * len(rows)
    candidates = [{"text": r["text"], "answer": a, "key": k, "tokens": r["tokens"], "finish_reason": r["finish"],
                   "confidence": None if r["confidence"] is None else round(r["confidence"], 4), "score": s,
                   "correct": r["correct"]} for r, a, k, s in zip(rows, answers, keys, scores, strict=False)]
    votes = (stored or {}).get("votes")
    if votes is None:
        counts: dict[str, int] = defaultdict(int)
        for c in candidates:
            if c["key"] is not None:
                counts[c["key"]] += 1
        votes = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return {"strategy": strategy, "params": json.loads(params), "answer": row["answer"],
            "chosen": (stored or {}).get("chosen"), "votes": votes, "candidates": candidates,
            "question": (stored or {}).get("question"), "extra": {}, **summary,
            "stored": "samples" if stored is not None else ("samples, no recorded choice" if rows else "summary only")}


def _sampling_key(params: str) -> str:
    """The shared-samples key of a sampling strategy's stored parameters (as the evaluator keys them)."""
    from ponder.evaluation.runner import canonical_params

    values = json.loads(params)
    return canonical_params({k: v for k, v in values.items() if k in SamplingOptions.model_fields and k != "seed"})
