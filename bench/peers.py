"""Side by side with the peers: each peer tool installed in its own virtual environment (pinned from PyPI, by this
benchmark), pointed at the same upstream: ``ponder serve --passthrough`` on the same GGUF, so every tool gets the
same engine and every token is counted at the upstream (a ledger per item), never taken from the tool's own usage.
The upstream samples with ponder's own defaults where a peer sets none (top-k 40, top-p 0.95: ``--passthrough-sampling
ponder``; the peers send only the temperature), so a peer and ponder's strategies draw paths from one distribution.
Each item is asked with ponder's own chain-of-thought instruction and scored by the task's checker, as ponder's rows
are; ponder's rows come from the headline store (the same items, seed 2024). ponder's side is chosen before
looking at the peers' items: its most accurate configuration over all 100 headline items among those using no
more generated tokens than the best peer approach, then scored on the peers' items; beside it, the cheapest of those
configurations whose headline accuracy clears the best peer's by the target's 5 points (what the target costs at least).

Peers: its_hub 1.2.0 (self-consistency as shipped, with the smallest fix: voting on the stated answer, and
best-of-N with its LLM judge); optillm 0.4.0 over the local CPU torch wheel (its approaches called as functions on
an OpenAI client pointed at the upstream: self-consistency as shipped and fixed, best-of-N, mixture of agents,
re-reading, CoT reflection; bench/peer_runners/optillm_runner.py says what each does). ThinkBooster 0.1.1 is
not runnable here: it requires vLLM 0.12, whose wheels are CUDA builds for NVIDIA GPUs (its rows say so).

Resumable: every (peer, approach, model, budget, item) row goes to bench/results/peers.sqlite as it finishes.

    .venv/bin/python -m bench.peers [--limit 100] [--model qwen2.5-coder-0.5b] [--budget 8] [--concurrency 4]
    .venv/bin/python -m bench.peers --limit 30 --report-only    # peers.json from the stored rows, nothing run

Each item's requests go to the upstream under a ledger of their own (``/ledger/TAG/v1``), so items may run side by
side (``--concurrency``; the engine batches their samples together) and each item's tokens are still counted
exactly. Items go slice by slice (``--concurrency`` items, every approach answering a slice before the next starts),
so a run stopped at any time leaves whole items. Wall seconds per item come from items that ran alone (concurrency
1); the speedup from ``--time-alone N``: the best peer approach and ponder's best answer the first N items alone,
one after the other in one run (ponder embedded, its model loaded once before, as the upstream's is).
Right after, on the same engine, bare decode steps of one and of ponder's n sequences are timed (``floors``): what
batching buys on that machine, the most a batched strategy gains at equal tokens over a peer decoding one path at a
time.

Writes bench/results/peers.json: ponder_best_accuracy, ponder_best_strategy, ponder_best_tokens_per_item,
peer_best_accuracy, peer_best, peer_best_tokens_per_item, ponder_speedup_vs_peer_best, the same for the cheapest
configuration clearing the target (ponder_cheapest_clearing_*), and a row per tool x approach.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import RESULTS, busy_machine_warning, write_result
from bench.scaling import LIMIT as HEADLINE_ITEMS, RUN as HEADLINE_RUN, SEED, SMALL, TASK
from ponder.evaluation.contention import cpu_model, machine_label
from ponder.evaluation.metrics import bootstrap_ci
from ponder.evaluation.runner import item_id
from ponder.scorers.answers import extract_answer
from ponder.tasks import load_task

STORE = RESULTS / "peers.sqlite"
VENVS = Path("bench-peers")  # each peer's virtual environment (not committed)
RUNNERS = Path(__file__).parent / "peer_runners"
PEERS = {
    # its_hub sends an item's ``budget`` paths at once (the others one request at a time): see item_concurrency
    "its_hub": {"pip": ["its_hub[lm]==1.2.0"], "runner": "its_hub_runner.py", "paths_at_once": True,
                "approaches": ("self_consistency", "self_consistency_answer", "best_of_n")},
    # optillm pulls torch: pinned to the local CPU wheel (an unpinned one is a CUDA build of several GB); 3.2 GB venv
    # and optimum pinned: optillm needs adaptive-classifier (every version needs optimum[onnxruntime]); optimum 2.x's
    # onnxruntime extra pulls optimum-onnx, which caps transformers < 4.58 against optillm's >= 5.0, and pip backtracks
    # through every optimum and transformers release for over 40 minutes (measured 2026-12-04); 1.14.0's extra has no cap
    "optillm": {"pip": ["torch==2.13.0", "optillm==0.4.0", "optimum[onnxruntime]==1.14.0"], "runner": "optillm_runner.py",
                "approaches": ("self_consistency", "self_consistency_answer", "bon", "moa", "re2", "cot_reflection")},
    # measured 2026-12-02 (pip's resolver report): thinkbooster 0.1.1 requires vllm>=0.12,<0.13, and vllm 0.12.0's
    # only x86_64 wheel is a CUDA build pinning torch==2.9.0, torchaudio, torchvision and flashinfer-python (several
    # GB of CUDA wheels); it runs its models on an NVIDIA GPU, and it also requires evalplus (datasets fetched at
    # run time). Nothing of it can run on this CPU-only machine: its row says so.
    "thinkbooster": {"pip": ["thinkbooster==0.1.1"], "approaches": ("deepconf", "self_consistency"),
                     "unavailable": "needs vllm 0.12 (a CUDA build pinning torch 2.9.0 and flashinfer; runs on an NVIDIA "
                                    "GPU only) and evalplus (fetches its data at run time): not runnable on a CPU-only machine"},
}
UPSTREAM_DECODING = 16  # requests the upstream decodes at once (its --max-concurrent); the rest wait in its queue


def item_concurrency(peer: str, budget: int, concurrency: int) -> int:
    """Items of ``peer`` to run side by side: ``concurrency``, except for a peer that sends an item's ``budget`` paths
    at once, which gets only as many items as the upstream decodes paths at once. More would only queue at the
    upstream (it decodes 16 requests at a time), each path's wait counted against the peer's own client timeout:
    at 10 items of 8 paths, 4 of its_hub's self-consistency items 41-50 failed on aiohttp's 300 s timeout (and 9 of
    its answer vote's, with 429s from a queue then too short), each to be run again.

    >>> item_concurrency("its_hub", 8, 10), item_concurrency("optillm", 8, 10), item_concurrency("its_hub", 32, 10)
    (2, 10, 1)
    """
    if PEERS.get(peer, {}).get("paths_at_once"):
        return max(1, min(concurrency, UPSTREAM_DECODING // budget))
    return concurrency


SCHEMA = """CREATE TABLE IF NOT EXISTS rows (peer TEXT, approach TEXT, model TEXT, budget INTEGER, item TEXT, text TEXT,
answer TEXT, correct REAL, completion_tokens INTEGER, prompt_tokens INTEGER, requests INTEGER, seconds REAL, error TEXT,
concurrency INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (peer, approach, model, budget, item))"""
# columns added after the first release, which an older store gains: rows written before items ran side by side ran
# alone; the processor a pair was timed on (NULL: timed before the column existed; this project's machines have been
# AMD EPYC and Intel Xeon ones, so such seconds compare only within their pair)
MIGRATIONS = (("rows", "concurrency INTEGER NOT NULL DEFAULT 1"), ("timings", "machine TEXT"))
# the speed comparison: the best peer approach and ponder's best, each item answered by one then the other, alone
TIMINGS = """CREATE TABLE IF NOT EXISTS timings (pair TEXT, tool TEXT, approach TEXT, model TEXT, budget INTEGER, item TEXT,
seconds REAL, completion_tokens INTEGER, correct REAL, PRIMARY KEY (pair, tool, item))"""
# what batching can buy on the machine that timed a pair: milliseconds per bare decode step of 1 and of ponder's n
# sequences on ponder's own engine, measured in the same run, right after the pair's items
FLOORS = """CREATE TABLE IF NOT EXISTS floors (pair TEXT, sequences INTEGER, ms_per_step REAL, machine TEXT,
PRIMARY KEY (pair, sequences))"""


def open_store(path: Path) -> sqlite3.Connection:
    """The rows and timings store (an older one gains the columns added since: ``MIGRATIONS``)."""
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    db.execute(TIMINGS)
    db.execute(FLOORS)
    for table, column in MIGRATIONS:
        if column.split()[0] not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    return db


def venv_python(peer: str) -> Path:
    """The peer's own interpreter, its pinned packages installed on first use (a failure is recorded and raised)."""
    env = VENVS / peer
    py = env / "bin" / "python"
    stamp = env / ".installed"
    want = " ".join(PEERS[peer]["pip"])
    if stamp.exists() and stamp.read_text() == want:
        return py
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", *PEERS[peer]["pip"]], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{peer} did not install: {(done.stderr or done.stdout).strip()[-800:]}")
    stamp.write_text(want)
    return py


class Upstream:
    """``ponder serve --passthrough`` on the model, on loopback, and its per-item ledgers."""

    def __init__(self, model: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = tempfile.TemporaryFile("w+")  # the server's own words, read back if it exits at start
        self.proc = subprocess.Popen([sys.executable, "-m", "ponder", "serve", "--model", model, "--passthrough",
                                      "--passthrough-sampling", "ponder", "--port", str(self.port), "--max-seconds", "600",
                                      "--max-concurrent", str(UPSTREAM_DECODING),
                                      # the benchmark is its only client: queue whatever it sends (items side by side send
                                      # concurrency x budget requests at once; the default queue of 64 answered its_hub
                                      # with 429s at 10 items of 8 paths), never refuse it
                                      "--max-queue", "100000"],
                                     stdout=self.output, stderr=subprocess.STDOUT, text=True)
        for _ in range(600):
            if self.proc.poll() is not None:  # it exited (no model pulled, a bad option): say why now, not in minutes
                self.output.seek(0)
                said = self.output.read().strip()[-800:]
                self.output.close()
                raise RuntimeError(f"ponder serve --passthrough exited with status {self.proc.returncode}: {said}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError("ponder serve --passthrough did not start")

    def ledger(self, tag: str) -> dict[str, int]:
        """What the requests sent under ``/ledger/TAG/v1`` cost (all zero when none was sent)."""
        r = httpx.get(f"{self.url}/ledger/{tag}", timeout=10)
        if r.status_code == 404:
            return {"requests": 0, "errors": 0, "prompt_tokens": 0, "cached_prompt_tokens": 0, "completion_tokens": 0}
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.output.close()


def run_item(upstream: Upstream, py: Path, peer: str, approach: str, model: str, budget: int, p, task) -> tuple:
    """One item by the peer's runner in its own process, its requests sent under a ledger of their own, so the upstream
    counts exactly what this item cost even while other items run beside it."""
    tag = f"{peer}.{approach}.{budget}.{uuid.uuid4().hex[:12]}"
    job = {"endpoint": f"{upstream.url}/ledger/{tag}/v1", "model": model, "approach": approach, "budget": budget,
           "max_tokens": 384, "temperature": 0.7, "questions": [{"id": item_id(p), "prompt": p.prompt().messages[-1].content}]}
    t0 = time.time()
    try:
        done = subprocess.run([str(py), str(RUNNERS / PEERS[peer]["runner"])], input=json.dumps(job), capture_output=True,
                              text=True, timeout=3600)
        lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
        rec = lines[0] if lines else {"text": "", "error": (done.stderr or "no output").strip()[-500:]}
    except subprocess.TimeoutExpired:
        rec = {"text": "", "error": "timed out after 3600 s"}
    seconds = time.time() - t0
    book = upstream.ledger(tag)
    text = rec.get("text") or ""
    return (peer, approach, model, budget, item_id(p), text, extract_answer(text), task.score(p, text) if text else 0.0,
            book["completion_tokens"], book["prompt_tokens"], book["requests"], seconds, rec.get("error"))


def run_peer(db: sqlite3.Connection, upstream: Upstream, peer: str, approach: str, model: str, budget: int, problems, task,
             concurrency: int = 1) -> None:
    """Every item of ``problems`` not yet stored, ``concurrency`` at a time (fewer for a peer that sends an item's
    paths at once: ``item_concurrency``), their requests batched together by the upstream's engine; each row is
    stored as it finishes, with the concurrency it ran at (its wall seconds are comparable only at 1)."""
    # an item that failed while others ran beside it (its requests queued at the upstream past the peer's own client
    # timeout: aiohttp's 300 s for its_hub) is run again; run such a pass with --concurrency 1
    have = {r[0] for r in db.execute("SELECT item FROM rows WHERE peer=? AND approach=? AND model=? AND budget=? AND NOT "
                                     "(error IS NOT NULL AND concurrency > 1)", (peer, approach, model, budget))}
    todo = [p for p in problems if item_id(p) not in have]
    if not todo:
        return
    py = venv_python(peer)
    concurrency = item_concurrency(peer, budget, concurrency)
    t0, errors = time.time(), 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for row in pool.map(lambda p: run_item(upstream, py, peer, approach, model, budget, p, task), todo):
            db.execute("INSERT OR REPLACE INTO rows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (*row, concurrency))
            db.commit()
            errors += row[12] is not None
    # a line a pass, so a run of hours shows where it is (the rows are in the store already)
    print(f"{peer}/{approach}: {len(todo)} item{'s' * (len(todo) != 1)} ({item_id(todo[0])} ... {item_id(todo[-1])}), {concurrency} at a time, "
          f"{errors} failed, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)


def ponder_rows(items: set[str], model: str) -> list[dict]:
    """ponder's rows on the same items from the headline store (each strategy at each budget)."""
    from ponder.evaluation.store import Store
    from bench.scaling import headline_rows

    rows = headline_rows(Store(RESULTS / "scaling.sqlite", readonly=True), items)
    return [r for r in rows if r["model"] == model and r["items"] == len(items)]


# the peer approaches that draw what ponder's chain-of-thought vote draws (ponder's instruction, T 0.7, 384 tokens,
# ``budget`` paths), so an item one gets right and the other does not is sampling noise or a defect of one of them
SAME_DRAWS = ("self_consistency", "self_consistency_answer")


def ponder_best(headline: list[dict], here: list[dict], token_cap: float | None) -> dict | None:
    """ponder's side of the comparison, chosen before looking at the peers' items: the configuration (strategy and
    budget) most accurate over all the headline items among those using at most ``token_cap`` generated tokens an
    item there (the peer best's), then its row on the peers' items (``here``). Choosing the most accurate of ponder's
    many rows on the few items the peers ran would pick the luckiest one (on the first 10 items a few-shot program
    answering 0.40 there, 0.31 over 100).

    >>> row = lambda s, b, acc, tok: {"strategy": s, "budget": b, "accuracy": acc, "completion_tokens": tok}
    >>> headline = [row("a", 1, 0.30, 100), row("b", 16, 0.43, 2200), row("c", 16, 0.50, 4400)]
    >>> here = [row("a", 1, 0.40, 90), row("b", 16, 0.30, 2300), row("c", 16, 0.60, 4300)]
    >>> ponder_best(headline, here, 2361)["strategy"], ponder_best(headline, here, None)["strategy"]
    ('b', 'c')
    >>> ponder_best(headline, here, 50) is None
    True
    """
    key, within = _within(headline, here, token_cap)
    if not within:
        return None
    chosen = max(within, key=lambda r: (r["accuracy"], -r["completion_tokens"]))
    return key[(chosen["strategy"], chosen["budget"])]


def _within(headline: list[dict], here: list[dict], token_cap: float | None) -> tuple[dict[tuple, dict], list[dict]]:
    """ponder's rows on the peers' items by (strategy, budget), and the headline rows of those configurations using
    at most ``token_cap`` generated tokens an item (any, without a cap): what either choice of ponder's side picks from."""
    key = {(r["strategy"], r["budget"]): r for r in here}
    return key, [r for r in headline if (r["strategy"], r["budget"]) in key
                 and (token_cap is None or r["completion_tokens"] <= token_cap)]


MARGIN = 0.05  # the target: ponder's side at least this much more accurate than the best peer approach


def ponder_cheapest_clearing(headline: list[dict], here: list[dict], peer_accuracy: float, token_cap: float,
                             margin: float = MARGIN) -> dict | None:
    """ponder's cheapest configuration that clears the target, chosen the same way before looking at the peers'
    items: among those whose accuracy over all the headline items is at least the best peer approach's plus ``margin``
    and which use at most ``token_cap`` tokens an item there, the one using the fewest (the most accurate of equals);
    then its row on the peers' items. The most accurate configuration (``ponder_best``) answers what ponder can do
    within the peer's tokens; this one what the target costs at the least, and so how fast ponder can clear it.

    >>> row = lambda s, b, acc, tok: {"strategy": s, "budget": b, "accuracy": acc, "completion_tokens": tok}
    >>> headline = [row("a", 1, 0.30, 100), row("b", 8, 0.40, 600), row("c", 16, 0.46, 2200), row("d", 4, 0.40, 600)]
    >>> here = [row("a", 1, 0.20, 90), row("b", 8, 0.42, 500), row("c", 16, 0.45, 2100), row("d", 4, 0.38, 650)]
    >>> ponder_cheapest_clearing(headline, here, 0.30, 2300)["strategy"], ponder_cheapest_clearing(headline, here, 0.40, 2300)["strategy"]
    ('b', 'c')
    >>> ponder_cheapest_clearing(headline, here, 0.45, 2300) is None
    True
    """
    key, within = _within(headline, here, token_cap)
    clearing = [r for r in within if r["accuracy"] >= peer_accuracy + margin - 1e-9]
    if not clearing:
        return None
    chosen = min(clearing, key=lambda r: (r["completion_tokens"], -r["accuracy"], r["strategy"]))
    return key[(chosen["strategy"], chosen["budget"])]


def headline_spec(label: str, model: str) -> tuple[str, str | None]:
    """The full spec (every parameter, the token cap included) and the scorer of the headline phase whose rows carry
    ``label`` for ``model``, labelled exactly as the headline's summary labels them.

    >>> headline_spec("adaptive_majority?prompt=pal", SMALL)[0].split("?")[0]
    'adaptive_majority'
    >>> headline_spec("majority?prompt=pal&temperature=0.3", SMALL)
    ('majority?prompt=pal&temperature=0.3&max_tokens=384', None)
    """
    from bench.scaling import PHASE_SCORERS, PHASES, spec
    from ponder.evaluation.report import _labels
    from ponder.evaluation.runner import stored_params

    found = {}
    for ph, (m, specs, _) in PHASES.items():
        for s in specs if m == model else ():
            found[(m, *stored_params(spec(s), PHASE_SCORERS.get(ph)))] = (spec(s), PHASE_SCORERS.get(ph))
    labels = _labels([{"model": m, "strategy": n, "params": p} for m, n, p in found], ("prompt", "scorer"))
    for key, (full, scorer) in found.items():
        if labels[key] == label:
            return full, scorer
    raise KeyError(f"no headline phase of {model} is labelled {label!r}")


async def ponder_run(spec: str, scorer: str | None, budget: int, problem, generator):
    """One item answered by ponder's configuration as ``ponder ask`` would (the headline's seed and budget, the
    sandbox for programs): its Result and wall seconds."""
    from ponder.strategies.registry import parse_spec, resolve_scorer
    from ponder.types import Budget

    info, base = parse_spec(spec)
    seed = {"seed": SEED} if "seed" in info.params.model_fields else {}
    params = info.parse_params({**base.model_dump(), **seed, **info.budget_params(budget)})
    t0 = time.time()
    r = await info.run(problem, generator, resolve_scorer(info, scorer, generator), Budget(), params)
    return r, time.time() - t0


async def ponder_answers(spec: str, scorer: str | None, budget: int, problem, generator, task) -> tuple[float, int, float]:
    """One item answered by ponder's configuration (``ponder_run``): its wall seconds, generated tokens and score."""
    r, seconds = await ponder_run(spec, scorer, budget, problem, generator)
    return seconds, r.usage.completion_tokens, task.score(problem, r.text) if r.text else 0.0


def time_alone(db: sqlite3.Connection, upstream: Upstream, peer: tuple[str, str], ours: tuple[str, int], model: str,
               budget: int, problems, task, generator, again: bool = False) -> str:
    """The speed comparison, measured side by side in one run: each item answered alone by the best peer approach
    (its runner against the upstream) and then by ponder's best configuration (embedded, its model loaded once
    before, as the upstream's is), item after item, so whatever the machine does meanwhile touches both alike.
    Resumable: pairs already timed are kept, unless ``again`` (after a change to ponder or to the machine: both sides
    are timed again in this run, never one side against the other's old figures); a run that timed ponder's side on the
    embedded engine then measures its decode floor (``decode_floor``). Returns the pair's key in the ``timings`` table."""
    import asyncio

    label, ours_budget = ours
    pair = pair_key(peer, budget, ours, model)
    spec, scorer = headline_spec(label, model)
    if again:
        db.execute("DELETE FROM timings WHERE pair=?", (pair,))
        db.commit()
    done = {(t, i) for t, i in db.execute("SELECT tool, item FROM timings WHERE pair=?", (pair,))}
    py = venv_python(peer[0]) if any((peer[0], item_id(p)) not in done for p in problems) else None
    ran = any(("ponder", item_id(p)) not in done for p in problems)  # the floor is measured only in a run that timed
    for p in problems:
        if (peer[0], item_id(p)) not in done:
            row = run_item(upstream, py, peer[0], peer[1], model, budget, p, task)
            db.execute("INSERT OR REPLACE INTO timings VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (pair, peer[0], peer[1], model, budget, item_id(p), row[11], row[8], row[7], cpu_model()))
            db.commit()
        if ("ponder", item_id(p)) not in done:
            seconds, tokens, correct = asyncio.run(ponder_answers(spec, scorer, ours_budget, p, generator, task))
            db.execute("INSERT OR REPLACE INTO timings VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (pair, "ponder", label, model, ours_budget, item_id(p), seconds, tokens, correct, cpu_model()))
            db.commit()
    if ran and getattr(generator, "engine", None) is not None:
        decode_floor(db, pair, generator, sorted({1, ours_budget}))
    return pair


def decode_floor(db: sqlite3.Connection, pair: str, generator, sequences: list[int]) -> None:
    """Milliseconds per bare ``llama_decode`` step of each count of ``sequences`` on the embedded engine (no sampling,
    no Python bookkeeping, near-empty contexts: bench/parallel_sampling's floor), stored beside the pair it explains:
    n sequences a step against one is the most tokens a second that batching buys on this machine, so the most a
    batched strategy can gain at equal tokens over a peer that decodes one path at a time (before the peer's own
    request overheads, and ponder's verifier and uneven path lengths)."""
    from bench.parallel_sampling import raw_decode_ms

    for n in sequences:
        db.execute("INSERT OR REPLACE INTO floors VALUES (?,?,?,?)", (pair, n, raw_decode_ms(generator, n), cpu_model()))
    db.commit()


def batching_gain(db: sqlite3.Connection, pair: str) -> dict | None:
    """The pair's decode floor (see decode_floor): ms per step of one and of the most sequences measured, and how many
    times the tokens a second of one sequence the most give (None when not measured)."""
    rows = db.execute("SELECT sequences, ms_per_step, machine FROM floors WHERE pair=? ORDER BY sequences", (pair,)).fetchall()
    if len(rows) < 2 or rows[0][0] != 1:
        return None
    (_, one, _), (n, many, machine) = rows[0], rows[-1]
    return {"sequences": n, "ms_per_step_1": round(one, 1), "ms_per_step_n": round(many, 1),
            "gain": round(n * one / many, 2), "machine": machine}


def timing_summary(db: sqlite3.Connection, pair: str, items: set[str]) -> dict | None:
    """Seconds, tokens and accuracy an item of each side of a timed pair over ``items`` (None until both sides timed
    every one), and the speedup: the peer's seconds an item over ponder's."""
    sides, seconds, machines = {}, {}, []
    for tool in ("peer", "ponder"):
        where = "tool='ponder'" if tool == "ponder" else "tool<>'ponder'"
        rs = [r for r in db.execute(f"SELECT item, seconds, completion_tokens, correct, tool, approach, machine FROM timings "
                                    f"WHERE pair=? AND {where}", (pair,)) if r[0] in items]
        machines += [r[6] for r in rs]
        if len(rs) < len(items):
            return None
        seconds[tool] = sum(r[1] for r in rs) / len(rs)
        sides[tool] = {"seconds": round(seconds[tool], 2), "completion_tokens": round(sum(r[2] for r in rs) / len(rs), 1),
                       "accuracy": round(sum(r[3] for r in rs) / len(rs), 4)}
        if tool == "peer":
            peer_approach = f"{rs[0][4]}/{rs[0][5]}"
    return {"pair": pair, "peer_approach": peer_approach, "items": len(items), **sides,
            "speedup": round(seconds["peer"] / seconds["ponder"], 2) if seconds["ponder"] else None,
            "machine": machine_label(machines), "batching": batching_gain(db, pair)}


def timed_pairs(db: sqlite3.Connection, model: str, items: set[str]) -> list[dict]:
    """The summary of every pair of ``model`` timed side by side on all of ``items`` (a pair timed when another peer
    approach was the best one keeps its measured seconds for the table)."""
    pairs = [r[0] for r in db.execute("SELECT DISTINCT pair FROM timings WHERE model=? ORDER BY pair", (model,))]
    return [s for s in (timing_summary(db, pair, items) for pair in pairs) if s]


def ponder_vote_by_item(model: str, budget: int, items: set[str]) -> dict[str, float]:
    """ponder's ``majority`` over ``budget`` chain-of-thought paths at T 0.7 (its default instruction), per item,
    from the headline store."""
    from ponder.evaluation.store import Store

    out = {}
    for r in Store(RESULTS / "scaling.sqlite", readonly=True).results(HEADLINE_RUN):
        params = json.loads(r["params"])
        if (r["model"], r["strategy"], r["budget"], r["item"] in items) == (model, "majority", budget, True) \
                and "prompt" not in params and params.get("temperature") == 0.7:
            out[r["item"]] = r["correct"]
    return out


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: how likely a split of the discordant items at least this uneven is when
    neither side is better.

    >>> mcnemar_p(0, 0), round(mcnemar_p(8, 1), 3)
    (1.0, 0.039)
    """
    from math import comb

    n, k = only_a + only_b, min(only_a, only_b)
    return 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def versus_ponder_vote(db: sqlite3.Connection, model: str, budget: int, items: set[str]) -> list[dict]:
    """Item by item, each peer vote that draws ponder's paths against ponder's own vote: both right, the peer only,
    ponder only, and McNemar's p (a small p with the peer ahead points at a defect of ponder's to find)."""
    ours = ponder_vote_by_item(model, budget, items)
    out = []
    for peer, approach in db.execute("SELECT DISTINCT peer, approach FROM rows WHERE model=? AND budget=?", (model, budget)):
        if approach not in SAME_DRAWS:
            continue
        theirs = {i: c for i, c in db.execute("SELECT item, correct FROM rows WHERE peer=? AND approach=? AND model=? "
                                              "AND budget=?", (peer, approach, model, budget)) if i in items and i in ours}
        if len(theirs) < len(items):
            continue
        both = sum(1 for i in theirs if theirs[i] > 0 and ours[i] > 0)
        peer_only = sum(1 for i in theirs if theirs[i] > 0 and not ours[i] > 0)
        ponder_only = sum(1 for i in theirs if ours[i] > 0 and not theirs[i] > 0)
        out.append({"tool": peer, "approach": approach, "ponder": f"majority@{budget}", "items": len(theirs), "both_right": both,
                    "peer_only": peer_only, "ponder_only": ponder_only, "neither": len(theirs) - both - peer_only - ponder_only,
                    "mcnemar_p": round(mcnemar_p(peer_only, ponder_only), 3)})
    return out


def extraction_disagreements(db: sqlite3.Connection, model: str, budget: int, items: set[str], task, problems) -> list[dict]:
    """Where the answer the peers voted on (the number after "The answer is", else the last number) and the answer
    ponder's checker reads (boxed, tags, the answer phrase) differ on a peer's chosen text: how often, and how often
    only the peers' reading would have matched the reference (ponder's extraction losing a right answer)."""
    sys.path.insert(0, str(RUNNERS))
    from stated_answer import answer_projection

    by_id = {item_id(p): p for p in problems}
    out = []
    for peer, approach in db.execute("SELECT DISTINCT peer, approach FROM rows WHERE model=? AND budget=?", (model, budget)):
        rows = [(i, t) for i, t in db.execute("SELECT item, text FROM rows WHERE peer=? AND approach=? AND model=? AND budget=?",
                                              (peer, approach, model, budget)) if i in items and t]
        differ = lost = 0
        for i, text in rows:
            theirs, ours = answer_projection(text), extract_answer(text)
            if ours is None or theirs.replace(",", "") != ours.replace(",", ""):
                differ += 1
                lost += task.score(by_id[i], f"The answer is {theirs}.") > 0 and not task.score(by_id[i], text) > 0
        out.append({"tool": peer, "approach": approach, "texts": len(rows), "readings_differ": differ,
                    "right_only_by_peers_reading": lost})
    return out


def pair_key(peer: tuple[str, str], budget: int, ours: tuple[str, int], model: str) -> str:
    """The ``timings`` key of one speed comparison (the peer approach and ponder's configuration, each at its budget)."""
    return f"{peer[0]}/{peer[1]}@{budget} vs {ours[0]}@{ours[1]} on {model}"


def peer_summaries(db: sqlite3.Connection, model: str, budget: int, items: set[str]) -> list[dict]:
    """A row per peer approach that answered every one of ``items``: accuracy with its interval, tokens counted at
    the upstream, seconds an item over the items it ran alone, errors and unparsable answers."""
    out = []
    for peer, approach in db.execute("SELECT DISTINCT peer, approach FROM rows WHERE model=? AND budget=?", (model, budget)):
        rs = db.execute("SELECT correct, completion_tokens, seconds, error, answer, concurrency, item FROM rows WHERE peer=? "
                        "AND approach=? AND model=? AND budget=?", (peer, approach, model, budget)).fetchall()
        rs = [r for r in rs if r[6] in items]
        if len(rs) < len(items):
            continue
        acc, lo, hi = bootstrap_ci([r[0] for r in rs], seed=SEED)
        alone = [r[2] for r in rs if r[5] == 1]
        out.append({"tool": peer, "approach": approach, "budget": budget, "items": len(rs), "accuracy": round(acc, 4),
                    "ci": [round(lo, 4), round(hi, 4)], "completion_tokens": round(sum(r[1] for r in rs) / len(rs), 1),
                    "seconds": round(sum(alone) / len(alone), 2) if alone else None, "items_timed_alone": len(alone),
                    "errors": sum(1 for r in rs if r[3]), "unparsable": sum(1 for r in rs if r[4] is None and not r[3])})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--model", default=SMALL)
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--concurrency", type=int, default=1,
                    help="items of one approach run at once (each counted in its own upstream ledger); wall seconds per "
                         "item are reported from the items that ran alone")
    ap.add_argument("--time-alone", type=int, default=10, metavar="N",
                    help="time the best peer approach and ponder's best alone, item after item in one run, on the first "
                         "N items (the speedup's figures; 0: skip)")
    ap.add_argument("--retime", action="store_true",
                    help="with --time-alone: drop the chosen pair's stored timings and time both sides again in this run "
                         "(after a change to ponder's speed)")
    ap.add_argument("--report-only", action="store_true", help="write peers.json from the stored rows; run nothing")
    args = ap.parse_args()
    if not args.report_only and (busy := busy_machine_warning()):
        print(f"warning: {busy}", file=sys.stderr)
    task = load_task(TASK)
    problems = list(task.problems(args.limit, SEED))
    items = {item_id(p) for p in problems}
    headline_items = {item_id(p) for p in task.problems(HEADLINE_ITEMS, SEED)}
    timed = problems[:min(args.time_alone, len(problems))]
    db = open_store(STORE)
    failures: dict[str, str] = {}
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for peer in peers:
        if peer not in PEERS:
            ap.error(f"unknown peer {peer!r} (known: {', '.join(PEERS)})")
        if "unavailable" in PEERS[peer]:
            failures |= {f"{peer}/{approach}": PEERS[peer]["unavailable"] for approach in PEERS[peer]["approaches"]}

    # ponder's rows, from the headline store (this benchmark never writes it): on the peers' items and on all of them
    ours, headline_rows = ponder_rows(items, args.model), ponder_rows(headline_items, args.model)

    def chosen() -> tuple[list[dict], dict | None, dict | None, dict | None]:
        """The peers' rows as stored now and their best; ponder's side (see ponder_best), and its cheapest
        configuration that clears the target (see ponder_cheapest_clearing)."""
        rows = peer_summaries(db, args.model, args.budget, items)
        best = max(rows, key=lambda r: (r["accuracy"], -r["completion_tokens"])) if rows else None
        cheapest = ponder_cheapest_clearing(headline_rows, ours, best["accuracy"], best["completion_tokens"]) if best else None
        return rows, best, ponder_best(headline_rows, ours, best["completion_tokens"] if best else None), cheapest

    if not args.report_only:
        upstream = Upstream(args.model)
        try:
            # slice by slice (``concurrency`` items): every approach answers a slice before the next one starts, so a
            # run stopped at any time leaves whole items, every approach's answer to each (report with a smaller --limit)
            for end in range(args.concurrency, len(problems) + args.concurrency, args.concurrency):
                for peer in (p for p in peers if not any(k.startswith(f"{p}/") for k in failures)):  # runnable, installed
                    for approach in PEERS[peer]["approaches"]:
                        try:
                            run_peer(db, upstream, peer, approach, args.model, args.budget, problems[:end], task,
                                     args.concurrency)
                        except RuntimeError as exc:  # could not install: the row says why
                            failures[f"{peer}/{approach}"] = str(exc)
            _, best_peer, best_ours, cheapest = chosen()
            if timed and best_peer and best_ours:
                from ponder.backends import open_generator

                generator = open_generator(args.model)
                try:
                    for side in [best_ours] + ([cheapest] if cheapest and cheapest is not best_ours else []):
                        time_alone(db, upstream, (best_peer["tool"], best_peer["approach"]),
                                   (side["strategy"], side["budget"]), args.model, args.budget, timed, task, generator,
                                   again=args.retime)
                finally:
                    generator.close()
        finally:
            upstream.close()
    peer_rows, best_peer, best_ours, cheapest = chosen()
    pairs = timed_pairs(db, args.model, {item_id(p) for p in timed}) if timed else []

    def timing_of(side: dict | None) -> dict | None:
        if not (best_peer and side):
            return None
        key = pair_key((best_peer["tool"], best_peer["approach"]), args.budget, (side["strategy"], side["budget"]), args.model)
        return next((t for t in pairs if t["pair"] == key), None)

    timing, cheapest_timing = timing_of(best_ours), timing_of(cheapest)
    headline = {
        "ponder_best_accuracy": round(best_ours["accuracy"], 4) if best_ours else None,
        "ponder_best_strategy": f"{best_ours['strategy']}@{best_ours['budget']}" if best_ours else None,
        "ponder_best_tokens_per_item": round(best_ours["completion_tokens"], 1) if best_ours else None,
        "peer_best_accuracy": best_peer["accuracy"] if best_peer else None,
        "peer_best": f"{best_peer['tool']}/{best_peer['approach']}" if best_peer else None,
        "peer_best_tokens_per_item": best_peer["completion_tokens"] if best_peer else None,
        # measured side by side in one run (time_alone), never from the headline's seconds (4 items side by side)
        "ponder_speedup_vs_peer_best": timing["speedup"] if timing else None,
        # the cheapest configuration clearing the target (+MARGIN over the peer best on the headline items)
        "ponder_cheapest_clearing_strategy": f"{cheapest['strategy']}@{cheapest['budget']}" if cheapest else None,
        "ponder_cheapest_clearing_accuracy": round(cheapest["accuracy"], 4) if cheapest else None,
        "ponder_cheapest_clearing_tokens_per_item": round(cheapest["completion_tokens"], 1) if cheapest else None,
        "ponder_cheapest_clearing_speedup": cheapest_timing["speedup"] if cheapest_timing else None,
        "items": len(items),
    }
    out = write_result("peers", headline, models_used=[args.model], seeds=[SEED],
                       details={"rows": peer_rows, "ponder_rows": [{k: r[k] for k in ("strategy", "budget", "accuracy", "ci_low", "ci_high", "completion_tokens", "seconds")}
                                                for r in ours],
                                "timing": timing, "cheapest_clearing_timing": cheapest_timing, "headline_items": HEADLINE_ITEMS,
                                "timed_pairs": pairs,
                                "versus_ponder_vote": versus_ponder_vote(db, args.model, args.budget, items),
                                "extraction": extraction_disagreements(db, args.model, args.budget, items, task, problems),
                                "failures": failures, "upstream": "ponder serve --passthrough (tokens from a ledger per item, /ledger/TAG)"})
    print(json.dumps(headline, indent=1))
    print(out)


if __name__ == "__main__":
    main()
