"""What the learned verifier's reading costs: the embedded engine reads each program's hidden state from its own
cache (``LlamaEngine.submit_read``: the program just generated is still in its slot, only the appended output block
is evaluated), against a second llama.cpp context that reads every program afresh (``HiddenStateReader``, how the
probe scorer read them before, its question shared across an item's programs). Both read the very same sequences
of real runs: ponder's probe-weighted vote over 8 programs of the 0.5B model (bench/scaling's phase 13 at budget 8,
bench/peers' choice for ponder) on the first headline items.

Per item: the run's wall seconds, the engine's reading seconds (inside the run) and the second context's, the
cosine between the two states of each program, the probe's scores from each, and whether the vote picks the same
answer with either set of scores.

    .venv/bin/python -m bench.probe_reads [--limit 20]

Writes bench/results/probe_reads.json: items, engine_read_seconds_per_item, second_context_read_seconds_per_item,
read_speedup, engine_read_share_of_item, min_cosine, same_choice_items, max_score_difference.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import busy_machine_warning, write_result
from bench.peers import headline_spec, ponder_run
from bench.scaling import PROBE, SEED, SMALL, TASK
from ponder.evaluation.runner import item_id
from ponder.tasks import load_task

LABEL = "weighted_best_of_n?prompt=pal&scorer=probe?path=bench/results/verifier.probe.json"
BUDGET = 8


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """
    >>> round(cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4)
    0.7071
    """
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def measure(limit: int) -> list[dict]:
    from ponder.backends import open_generator
    from ponder.backends.hidden_states import HiddenStateReader
    from ponder.strategies.base import score_weights, vote
    from ponder.verifier.probe import Probe

    spec, scorer_spec = headline_spec(LABEL, SMALL)
    task = load_task(TASK)
    probe = Probe.load(PROBE)
    gen = open_generator(SMALL)
    reader = HiddenStateReader(gen.engine.model.path, n_threads=gen.engine.config.n_threads)
    reads: list[tuple] = []
    engine_read = gen.read_hidden_states

    async def recorded(prompts, completions):
        t0 = time.perf_counter()
        out = await engine_read(prompts, completions)
        reads.append((prompts, completions, out, time.perf_counter() - t0))
        return out

    gen.read_hidden_states = recorded
    rows = []
    try:
        for p in task.problems(limit, SEED):
            reads.clear()
            r, seconds = asyncio.run(ponder_run(spec, scorer_spec, BUDGET, p, gen))  # as bench/peers times it
            [(prompts, completions, ours, ours_s)] = reads
            seqs = [gen.engine.model.encode_prompt(a, b) for a, b in zip(prompts, completions, strict=True)]
            t0 = time.perf_counter()
            fresh = reader.read(seqs)
            fresh_s = time.perf_counter() - t0
            answers = [c.key for c in r.candidates]
            a = probe.score(probe.features(ours.states, answers))
            b = probe.score(probe.features(fresh.states, answers))
            # the vote as the strategy casts it, once with each set of scores
            picks = [vote(cs, score_weights(cs)).key for cs in
                     ([replace(c, score=float(s)) for c, s in zip(r.candidates, sc, strict=True)] for sc in (a, b))]
            rows.append({"item": item_id(p), "seconds": round(seconds, 2), "completion_tokens": r.usage.completion_tokens,
                         "correct": task.score(p, r.text) if r.text else 0.0,
                         "engine_read_seconds": round(ours_s, 3), "engine_tokens_read": ours.tokens,
                         "engine_tokens_reused": ours.reused, "second_context_read_seconds": round(fresh_s, 3),
                         "second_context_tokens_reused": fresh.reused,
                         "min_cosine": round(min(cosine(x, y) for x, y in zip(ours.states, fresh.states, strict=True)), 5),
                         "max_score_difference": round(float(np.max(np.abs(a - b))), 4), "same_choice": picks[0] == picks[1]})
            print(rows[-1], flush=True)
    finally:
        reader.close()
        gen.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=20, help="the first N headline items")
    args = ap.parse_args()
    if busy := busy_machine_warning():
        print(f"warning: {busy}", file=sys.stderr)
    rows = measure(args.limit)
    n = len(rows)
    mean = lambda k: sum(r[k] for r in rows) / n  # noqa: E731
    headline = {
        "items": n,
        "engine_read_seconds_per_item": round(mean("engine_read_seconds"), 3),
        "second_context_read_seconds_per_item": round(mean("second_context_read_seconds"), 3),
        "read_speedup": round(mean("second_context_read_seconds") / mean("engine_read_seconds"), 2),
        "engine_read_share_of_item": round(mean("engine_read_seconds") / mean("seconds"), 4),
        "seconds_per_item": round(mean("seconds"), 2),
        "min_cosine": min(r["min_cosine"] for r in rows),
        "same_choice_items": sum(r["same_choice"] for r in rows),
        "max_score_difference": max(r["max_score_difference"] for r in rows),
    }
    out = write_result("probe_reads", headline, models_used=[SMALL], seeds=[SEED],
                       details={"strategy": f"{LABEL}@{BUDGET}", "task": TASK, "rows": rows})
    print(headline)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
