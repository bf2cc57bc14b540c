"""Does tree search evaluate each shared prefix once? Prompt tokens evaluated by the embedded engine, against a
naive re-prefill of every request and against the distinct tokens of the search tree.

For beam search (width 4, depth 6) and MCTS (32 iterations) on the default model, every request the strategy
sends is recorded and tokenized as the engine tokenizes it. "Naive" is the sum of their lengths: what a backend
without prefix caching evaluates. "Distinct" is the size of the token trie of all of them: every token of the
tree once. "Evaluated" is what the engine really ran through llama_decode as prompt. Target: evaluated ≤ 1.3 ×
distinct.

    .venv/bin/python -m bench.tree_reuse [--model qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from bench.common import cpu_name, write_result
from ponder import models
from ponder.backends.llamacpp import LlamaCppGenerator
from ponder.strategies import run
from ponder.testing import RecordingGenerator
from ponder.types import Problem

QUESTION = ("A farmer has 17 sheep. He buys 3 times as many goats as sheep, then sells 12 goats. Each goat eats 2 kg "
            "of hay a day and each sheep 1 kg. How many kg of hay does the farm need per day?")
SEED = 7
SPECS = {
    "beam": f"beam?width=4&keep=2&max_depth=6&max_step_tokens=64&max_tokens=256&seed={SEED}",
    "mcts": f"mcts?iterations=32&expand=2&max_depth=6&max_step_tokens=64&max_tokens=256&seed={SEED}",
}


def trie_size(seqs: list[list[int]]) -> int:
    root: dict = {}
    n = 0
    for seq in seqs:
        node = root
        for tok in seq:
            if tok not in node:
                node[tok] = {}
                n += 1
            node = node[tok]
    return n


def measure(gen: LlamaCppGenerator, spec: str) -> dict:
    rec = RecordingGenerator(gen)
    problem = Problem(QUESTION)
    before = gen.stats.prompt_tokens_evaluated
    t = time.perf_counter()
    result = asyncio.run(run(spec, problem, rec))
    wall = time.perf_counter() - t
    evaluated = gen.stats.prompt_tokens_evaluated - before
    model = gen.engine.model
    seqs = [model.encode_prompt(r.prompt, r.prefix) for r in rec.requests]
    naive = sum(len(s) for s in seqs)
    distinct = trie_size(seqs)
    return {"requests": len(seqs), "naive_prefill_tokens": naive, "distinct_tree_tokens": distinct,
            "evaluated_tokens": evaluated, "evaluated_over_distinct": evaluated / distinct, "naive_over_distinct": naive / distinct,
            "completion_tokens": result.usage.completion_tokens, "wall_s": wall, "answer": result.answer,
            "extra": {k: v for k, v in result.extra}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=models.DEFAULT_MODEL)
    args = ap.parse_args()
    console = Console(width=150)
    rows = {}
    for name, spec in SPECS.items():
        gen = LlamaCppGenerator(args.model, name=args.model)  # a fresh engine: nothing cached from another run
        rows[name] = measure(gen, spec)
        gen.close()
        console.print(f"{name}: {rows[name]['evaluated_tokens']} evaluated, {rows[name]['distinct_tree_tokens']} distinct, "
                      f"{rows[name]['naive_prefill_tokens']} naive ({rows[name]['wall_s']:.1f} s)")
    table = Table(title=f"prefix reuse in tree search, {args.model}")
    for col in ("strategy", "requests", "naive re-prefill", "distinct tree tokens", "evaluated", "evaluated / distinct",
                "naive / distinct", "completion tokens", "wall s"):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(name, str(r["requests"]), str(r["naive_prefill_tokens"]), str(r["distinct_tree_tokens"]),
                      str(r["evaluated_tokens"]), f"{r['evaluated_over_distinct']:.2f}", f"{r['naive_over_distinct']:.2f}",
                      str(r["completion_tokens"]), f"{r['wall_s']:.1f}")
    console.print(table)
    headline = {"beam_evaluated_over_distinct": round(rows["beam"]["evaluated_over_distinct"], 3),
                "mcts_evaluated_over_distinct": round(rows["mcts"]["evaluated_over_distinct"], 3)}
    console.print(f"beam {headline['beam_evaluated_over_distinct']:.2f}, mcts {headline['mcts_evaluated_over_distinct']:.2f} "
                  "evaluated / distinct (target <= 1.3)")
    out = write_result("tree_reuse", headline, models_used=[args.model], seeds=[SEED],
                       details={"specs": SPECS, "question": QUESTION, "cpu": cpu_name(), "rows": rows})
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
