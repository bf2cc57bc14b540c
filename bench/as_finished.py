"""What working on each path as it ends saves: ponder's probe-weighted vote over 8 programs of the 0.5B model
(bench/peers' choice for ponder, bench/scaling's phase 13 at budget 8) on the first headline items, each item
answered twice on one engine, side by side: once as the strategy runs by default (each program run in the sandbox,
and read by the verifier, as soon as its path ends, while the batch's longer paths still decode:
``ponder.strategies.as_finished``), and once with the engine's end-of-sample reports withheld, so every program
runs and every path is read after the whole batch (how ponder ran before). Which goes first alternates from item
to item, so the prompt the first run leaves in the cache favours neither.

    .venv/bin/python -m bench.as_finished [--limit 10]

Writes bench/results/as_finished.json: items, seconds_per_item_as_finished, seconds_per_item_after_batch,
speedup, same_answer_items, correct_as_finished, correct_after_batch, completion_tokens_per_item.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import busy_machine_warning, write_result
from bench.peers import headline_spec, ponder_run
from bench.probe_reads import BUDGET, LABEL
from bench.scaling import SEED, SMALL, TASK
from ponder.evaluation.contention import CpuWindow
from ponder.evaluation.runner import item_id
from ponder.tasks import load_task


class AfterBatch:
    """The generator with its end-of-sample reports withheld (``on_sample`` dropped), as a backend that cannot tell
    when a sample ends: the strategy then works on every path after the batch. Everything else is the engine's."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def generate(self, requests):
        return await self._inner.generate([replace(r, on_sample=None) for r in requests])

    async def read_hidden_states(self, prompts, completions):
        return await self._inner.read_hidden_states(prompts, completions)


def measure(limit: int) -> list[dict]:
    from ponder.backends import open_generator

    spec, scorer_spec = headline_spec(LABEL, SMALL)
    task = load_task(TASK)
    gen = open_generator(SMALL)
    ways = {"as_finished": gen, "after_batch": AfterBatch(gen)}
    rows = []
    try:
        for k, p in enumerate(task.problems(limit, SEED)):
            row = {"item": item_id(p), "first": "as_finished" if k % 2 == 0 else "after_batch"}
            for way in sorted(ways, key=lambda w: w != row["first"]):
                window = CpuWindow.start()
                r, seconds = asyncio.run(ponder_run(spec, scorer_spec, BUDGET, p, ways[way]))
                other = window.other_cores()
                row[way] = {"seconds": round(seconds, 2), "completion_tokens": r.usage.completion_tokens,
                            "answer": r.answer, "correct": task.score(p, r.text) if r.text else 0.0,
                            "tool_seconds": round(r.usage.tool_seconds, 2),
                            "other_cpu": round(other, 2) if other is not None else None}
            print(row, flush=True)
            rows.append(row)
    finally:
        gen.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=10, help="the first N headline items")
    args = ap.parse_args()
    if busy := busy_machine_warning():
        print(f"warning: {busy}", file=sys.stderr)
    rows = measure(args.limit)
    n = len(rows)
    mean = lambda way, k: sum(r[way][k] for r in rows) / n  # noqa: E731
    headline = {
        "items": n,
        "seconds_per_item_as_finished": round(mean("as_finished", "seconds"), 2),
        "seconds_per_item_after_batch": round(mean("after_batch", "seconds"), 2),
        "speedup": round(mean("after_batch", "seconds") / mean("as_finished", "seconds"), 3),
        "same_answer_items": sum(r["as_finished"]["answer"] == r["after_batch"]["answer"] for r in rows),
        "correct_as_finished": sum(r["as_finished"]["correct"] for r in rows),
        "correct_after_batch": sum(r["after_batch"]["correct"] for r in rows),
        "completion_tokens_per_item": round(mean("as_finished", "completion_tokens"), 1),
    }
    out = write_result("as_finished", headline, models_used=[SMALL], seeds=[SEED],
                       details={"strategy": f"{LABEL}@{BUDGET}", "task": TASK, "rows": rows})
    print(headline)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
