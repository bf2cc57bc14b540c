"""Load on `ponder serve` over loopback: 32 concurrent clients × 8 requests of `majority-4` on SmolLM2.

Starts `ponder serve` as a subprocess on 127.0.0.1, warms it up, then runs the load with httpx clients. Prints
throughput, p50/p95 latency, 5xx and 429 counts, the server's memory before and after, and the throughput of the
same kind of requests served one at a time (a sample of them; a rate needs no more), measured in the same run.

    .venv/bin/python -m bench.serve_load [--clients 32] [--per-client 8] [--serial 24]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from rich.console import Console
from rich.table import Table

from bench.common import cpu_name, write_result
from ponder import models

MODEL = "smollm2-135m"
SEED = 99
STRATEGY = "majority-4"
MAX_TOKENS = 64


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body(i: int) -> dict:
    a, b = 3 + i % 37, 5 + (i * 7) % 41
    return {"model": f"{STRATEGY}/{MODEL}", "messages": [{"role": "user", "content": f"What is {a} + {b}?"}],
            "max_tokens": MAX_TOKENS, "seed": SEED + i}


async def one(client: httpx.AsyncClient, url: str, i: int) -> tuple[int, float]:
    t = time.perf_counter()
    r = await client.post(url, json=body(i))
    return r.status_code, time.perf_counter() - t


async def load(url: str, clients: int, per_client: int) -> tuple[list[tuple[int, float]], float]:
    results: list[tuple[int, float]] = []

    async def worker(c: int, client: httpx.AsyncClient) -> None:
        for k in range(per_client):
            results.append(await one(client, url, c * per_client + k))

    t = time.perf_counter()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as client:
        await asyncio.gather(*(worker(c, client) for c in range(clients)))
    return results, time.perf_counter() - t


async def serial(url: str, n: int) -> tuple[list[tuple[int, float]], float]:
    out = []
    t = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as client:
        for i in range(n):
            out.append(await one(client, url, 10_000 + i))
    return out, time.perf_counter() - t


def raw_decode_tok_s(batch_sizes=(4, 16, 64), steps: int = 16) -> dict[int, float]:
    """The hardware's ceiling: tokens/s of a bare llama_decode of B sequences (B=4 is what one majority-4 request
    decodes alone), on a fresh context of the same model, with the server stopped."""
    import llama_cpp

    from ponder.backends.llamacpp import default_threads
    from ponder.backends.llama_model import LlamaModel

    model = LlamaModel(models.resolve(MODEL))
    out = {}
    for b in batch_sizes:
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_seq_max, cp.kv_unified, cp.flash_attn_type = 8192, 512, 64, True, 1
        cp.n_threads = cp.n_threads_batch = default_threads()
        ctx = llama_cpp.llama_init_from_model(model.ptr, cp)
        batch = llama_cpp.llama_batch_init(512, 0, 1)
        t = None
        for step in range(steps + 2):
            if step == 2:
                t = time.perf_counter()
            for s in range(b):
                batch.token[s], batch.pos[s], batch.n_seq_id[s], batch.logits[s] = 100 + step, step, 1, True
                batch.seq_id[s][0] = s
            batch.n_tokens = b
            assert llama_cpp.llama_decode(ctx, batch) == 0
        out[b] = b * steps / (time.perf_counter() - t)
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    model.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--per-client", type=int, default=8)
    ap.add_argument("--serial", type=int, default=24, help="requests served one at a time for the baseline rate")
    args = ap.parse_args()
    console = Console(width=140)
    models.resolve(MODEL)
    port = free_port()
    exe = Path(sys.executable).with_name("ponder")
    proc = subprocess.Popen([str(exe), "serve", "--model", MODEL, "--port", str(port), "--strategy", "majority?n=4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(load(url, 8, 2))  # warm-up: allocations, caches
        rss_before = rss_mb(proc.pid)
        ser, ser_wall = asyncio.run(serial(url, args.serial))
        res, wall = asyncio.run(load(url, args.clients, args.per_client))
        rss_after = rss_mb(proc.pid)
        asyncio.run(load(url, args.clients, 1))  # and once more: still flat?
        rss_after2 = rss_mb(proc.pid)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    raw = raw_decode_tok_s()
    ceiling = max(raw.values()) / raw[4]
    codes = [c for c, _ in res]
    ok_lat = sorted(t for c, t in res if c == 200)
    n = len(res)
    errors_5xx = sum(1 for c in codes if c >= 500)
    refused = sum(1 for c in codes if c == 429)
    other = sum(1 for c in codes if c not in (200, 429) and c < 500)
    thr = sum(1 for c in codes if c == 200) / wall
    thr_serial = sum(1 for c, _ in ser if c == 200) / ser_wall
    p50 = statistics.median(ok_lat) if ok_lat else float("nan")
    p95 = ok_lat[min(len(ok_lat) - 1, int(0.95 * len(ok_lat)))] if ok_lat else float("nan")
    table = Table(title=f"ponder serve, {args.clients} clients x {args.per_client} requests, {STRATEGY}, {MODEL}, max_tokens {MAX_TOKENS}")
    for col in ("requests", "200", "429", "5xx", "other 4xx", "wall s", "req/s", "p50 s", "p95 s", "serial req/s",
                "throughput vs serial", "raw decode ceiling", "RSS MB before/after/again"):
        table.add_column(col, justify="right")
    table.add_row(str(n), str(codes.count(200)), str(refused), str(errors_5xx), str(other), f"{wall:.1f}", f"{thr:.2f}",
                  f"{p50:.2f}", f"{p95:.2f}", f"{thr_serial:.2f}", f"{thr / thr_serial:.2f}x", f"{ceiling:.2f}x",
                  f"{rss_before:.0f}/{rss_after:.0f}/{rss_after2:.0f}")
    console.print(table)
    headline = {"requests": n, "errors_5xx": errors_5xx, "refused_429": refused, "p50_s": round(p50, 3),
                "p95_s": round(p95, 3), "throughput_vs_serial": round(thr / thr_serial, 3)}
    console.print(headline)
    console.print("raw llama_decode tok/s by batch size: " + ", ".join(f"B={b}: {v:.0f}" for b, v in raw.items()) +
                  f" -> batching across requests can gain at most {ceiling:.2f}x over one majority-4 request at a time on this CPU")
    out = write_result("serve_load", headline, models_used=[MODEL], seeds=[SEED],
                       details={"clients": args.clients, "per_client": args.per_client, "serial_requests": args.serial,
                                "strategy": STRATEGY, "max_tokens": MAX_TOKENS, "wall_s": wall, "throughput_rps": thr,
                                "serial_throughput_rps": thr_serial, "other_4xx": other, "server_alive_after": alive,
                                "raw_decode_tok_s": {str(k): v for k, v in raw.items()}, "raw_ceiling_vs_b4": ceiling,
                                "rss_mb": {"before": rss_before, "after": rss_after, "after_again": rss_after2},
                                "cpu": cpu_name(), "threads": os.cpu_count()})
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
