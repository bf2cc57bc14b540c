"""Batched parallel sampling versus one-by-one sampling, side by side in one run.

For N in 1, 4, 8, 16 samples of one ~60-token prompt, exactly 128 new tokens each (end-of-sequence ignored):
ponder's embedded engine (prompt evaluated once, KV shared, all N sequences decoded in one batch) against the same
N samples drawn one at a time through llama-cpp-python's high-level ``Llama.create_completion``.

    .venv/bin/python bench/parallel_sampling.py [--model qwen2.5-coder-0.5b] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from bench.common import cpu_name, write_result
from ponder import models
from ponder.backends.llamacpp import EngineConfig, LlamaCppGenerator, default_threads
from ponder.types import GenerationRequest, Prompt, SamplingParams

QUESTION = (
    "A bakery sells muffins for 3 dollars each and cookies for 2 dollars each. On Monday it sold 14 muffins and "
    "23 cookies; on Tuesday it sold twice as many muffins and 5 fewer cookies. How much money did the bakery make "
    "over both days? Think step by step."
)
NEW_TOKENS = 128
SEED = 1234
# the same sampler settings on both paths (llama-cpp-python's high-level defaults for top_k and min_p)
SAMPLING = dict(temperature=0.7, top_p=0.95, top_k=40, min_p=0.05)


def ponder_batched(gen: LlamaCppGenerator, n: int) -> tuple[float, int]:
    params = SamplingParams(**SAMPLING, max_tokens=NEW_TOKENS, ignore_eos=True, seed=SEED)
    t = time.perf_counter()
    [c] = gen.generate_sync([GenerationRequest(Prompt.chat(QUESTION), n=n, params=params)])
    wall = time.perf_counter() - t
    assert all(s.n_tokens == NEW_TOKENS for s in c.samples), [s.n_tokens for s in c.samples]
    return wall, c.usage.completion_tokens


def naive_one_by_one(llm, text: str, n: int, eog_bias: dict[int, float]) -> tuple[float, int]:
    t = time.perf_counter()
    tokens = 0
    for i in range(n):
        out = llm.create_completion(text, max_tokens=NEW_TOKENS, **SAMPLING, seed=SEED + i, logit_bias=eog_bias)
        tokens += out["usage"]["completion_tokens"]
    return time.perf_counter() - t, tokens


def raw_decode_ms(gen: LlamaCppGenerator, n: int, steps: int = 32) -> float:
    """The floor under any engine: milliseconds per bare ``llama_decode`` of one token for each of ``n`` sequences
    (no sampling, no Python bookkeeping), on the engine's own context, after its work is done."""
    import llama_cpp

    eng = gen.engine
    base = 7000  # positions far from anything cached; sequence ids are the engine's free slots, cleared after
    b = eng.batch
    for s in range(n):
        llama_cpp.llama_memory_seq_rm(eng.mem, s, -1, -1)
    t = None
    for step in range(steps + 2):
        if step == 2:
            t = time.perf_counter()
        for s in range(n):
            b.token[s], b.pos[s], b.n_seq_id[s], b.logits[s] = 100 + step, base + step, 1, True
            b.seq_id[s][0] = s
        b.n_tokens = n
        assert llama_cpp.llama_decode(eng.ctx, b) == 0
    dt = time.perf_counter() - t
    for s in range(n):
        llama_cpp.llama_memory_seq_rm(eng.mem, s, -1, -1)
        eng.slots.forget(s)
    return dt / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=models.DEFAULT_MODEL)
    ap.add_argument("--ns", default="1,4,8,16")
    ap.add_argument("--repeats", type=int, default=1, help="runs per cell; the median is reported")
    args = ap.parse_args()
    ns = [int(x) for x in args.ns.split(",")]
    console = Console(width=160)
    path = models.resolve(args.model)
    threads = default_threads()

    from llama_cpp import Llama

    gen = LlamaCppGenerator(path, EngineConfig(n_ctx=8192, n_slots=max(ns), n_threads=threads), name=args.model)
    text = gen.engine.model.render(Prompt.chat(QUESTION))
    prompt_tokens = len(gen.engine.model.encode_prompt(Prompt.chat(QUESTION)))
    llm = Llama(str(path), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
    eog_bias = {t: float("-inf") for t in gen.engine.model.eog_ids}

    ponder_batched(gen, 2)  # warm-up both paths
    naive_one_by_one(llm, text, 1, eog_bias)

    rows = {}
    for n in ns:
        b = [ponder_batched(gen, n) for _ in range(args.repeats)]
        v = [naive_one_by_one(llm, text, n, eog_bias) for _ in range(args.repeats)]
        rows[n] = {
            "batched_wall_s": statistics.median(w for w, _ in b),
            "batched_tokens": b[0][1],
            "naive_wall_s": statistics.median(w for w, _ in v),
            "naive_tokens": v[0][1],
        }
        console.print(f"N={n}: batched {rows[n]['batched_wall_s']:.2f}s, one-by-one {rows[n]['naive_wall_s']:.2f}s")
    raw = {n: raw_decode_ms(gen, n) for n in ns}
    gen.close()

    w1 = rows[ns[0]]["batched_wall_s"]
    table = Table(title=f"parallel sampling, {args.model}, prompt {prompt_tokens} tokens, {NEW_TOKENS} new tokens/sample, {threads} threads")
    for col in ("N", "batched wall s", "batched tok/s", "wall(N)/wall(1)", "one-by-one wall s", "one-by-one tok/s",
                "speedup vs one-by-one", "raw decode ms/step", "raw step(N)/step(1)"):
        table.add_column(col, justify="right")
    for n, r in rows.items():
        r["batched_tok_s"] = r["batched_tokens"] / r["batched_wall_s"]
        r["naive_tok_s"] = r["naive_tokens"] / r["naive_wall_s"]
        r["wall_ratio"] = r["batched_wall_s"] / w1
        r["speedup_vs_naive"] = r["naive_wall_s"] / r["batched_wall_s"]
        r["raw_decode_ms_per_step"] = raw[n]
        r["raw_step_ratio"] = raw[n] / raw[ns[0]]
        table.add_row(str(n), f"{r['batched_wall_s']:.2f}", f"{r['batched_tok_s']:.1f}", f"{r['wall_ratio']:.2f}",
                      f"{r['naive_wall_s']:.2f}", f"{r['naive_tok_s']:.1f}", f"{r['speedup_vs_naive']:.2f}x",
                      f"{raw[n]:.1f}", f"{r['raw_step_ratio']:.2f}")
    console.print(table)
    headline = {}
    if 8 in rows and 1 in rows:
        headline = {"wall_ratio_8_over_1": round(rows[8]["wall_ratio"], 3), "speedup_8_vs_naive": round(rows[8]["speedup_vs_naive"], 3),
                    "raw_decode_step_ratio_8_over_1": round(rows[8]["raw_step_ratio"], 3)}
        console.print(f"wall(8)/wall(1) = {headline['wall_ratio_8_over_1']:.2f} (target <= 2.5); "
                      f"N=8 speedup vs one-by-one = {headline['speedup_8_vs_naive']:.2f}x (target >= 2.5); "
                      f"a bare llama_decode of 8 sequences costs {headline['raw_decode_step_ratio_8_over_1']:.2f}x one sequence on this CPU")
    out = write_result("parallel_sampling", headline, models_used=[args.model], seeds=[SEED],
                       details={"prompt_tokens": prompt_tokens, "new_tokens": NEW_TOKENS, "threads": threads,
                                "sampling": SAMPLING, "cpu": cpu_name(),
                                "repeats": args.repeats, "rows": {str(k): v for k, v in rows.items()}})
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
