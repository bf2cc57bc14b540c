"""The evaluation store: SQLite in WAL mode, one row per (item, model, strategy, params, budget, seed) result and
one row per sampled candidate, so a killed run resumes where it stopped and a re-run recomputes nothing stored."""

from __future__ import annotations

import json
import sqlite3
import zlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ponder.errors import PonderError

from ponder.types import Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, created REAL NOT NULL, config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL, model TEXT NOT NULL, strategy TEXT NOT NULL,
    params TEXT NOT NULL, budget INTEGER NOT NULL, seed INTEGER NOT NULL,
    answer TEXT, reference TEXT, correct REAL NOT NULL, prompt_tokens INTEGER NOT NULL, cached_prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, seconds REAL NOT NULL, n_candidates INTEGER NOT NULL, n_correct INTEGER NOT NULL,
    stopped_by TEXT, created REAL NOT NULL,
    PRIMARY KEY (run, task, item, model, strategy, params, budget, seed)
);
CREATE TABLE IF NOT EXISTS samples (
    run TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL, model TEXT NOT NULL, strategy TEXT NOT NULL,
    params TEXT NOT NULL, seed INTEGER NOT NULL, idx INTEGER NOT NULL,
    text TEXT NOT NULL, answer TEXT, key TEXT, tokens INTEGER NOT NULL, finish TEXT NOT NULL, confidence REAL, score REAL,
    correct REAL NOT NULL, prompt_tokens INTEGER NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (run, task, item, model, strategy, params, seed, idx)
);
CREATE TABLE IF NOT EXISTS scores (
    run TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL, model TEXT NOT NULL, strategy TEXT NOT NULL,
    params TEXT NOT NULL, seed INTEGER NOT NULL, idx INTEGER NOT NULL, scorer TEXT NOT NULL, score REAL,
    prompt_tokens INTEGER, cached_prompt_tokens INTEGER, completion_tokens INTEGER, seconds REAL,
    PRIMARY KEY (run, task, item, model, strategy, params, seed, idx, scorer)
);
CREATE TABLE IF NOT EXISTS step_labels (
    run TEXT NOT NULL, task TEXT NOT NULL, item TEXT NOT NULL, model TEXT NOT NULL, strategy TEXT NOT NULL,
    params TEXT NOT NULL, seed INTEGER NOT NULL, idx INTEGER NOT NULL,
    labels TEXT NOT NULL, rollouts INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run, task, item, model, strategy, params, seed, idx)
);
"""
# columns added after the first release; a store created before them gains them (NULL: cost not recorded)
MIGRATIONS = {"scores": ("prompt_tokens INTEGER", "cached_prompt_tokens INTEGER", "completion_tokens INTEGER", "seconds REAL"),
              # each generated token's logprob, float32 little-endian: confidence rules (DeepConf's sliding window)
              # can be judged on stored draws; NULL where the backend gave none or the store predates the column
              "samples": ("token_logprobs BLOB",),
              # the result as the trace explorer shows it, zlib-compressed JSON (pack_trace): a strategy run's whole
              # Result (candidates, steps, tree); a shared-sample row's choice among the samples it was derived from
              "results": ("trace BLOB",
                          # cores' worth of CPU other processes used on average while the result was measured
                          # (ponder.evaluation.contention): NULL where unknown or the store predates the column
                          "other_cpu REAL",
                          # the processor it was measured on (contention.cpu_model): NULL where the store predates it
                          "machine TEXT")}

RESULT_COLUMNS = ("run", "task", "item", "model", "strategy", "params", "budget", "seed", "answer", "reference", "correct",
                  "prompt_tokens", "cached_prompt_tokens", "completion_tokens", "seconds", "n_candidates", "n_correct",
                  "stopped_by", "created", "trace", "other_cpu", "machine")


def pack_trace(trace: dict[str, Any] | None) -> bytes | None:
    """A result's trace as stored: compact JSON, zlib-compressed.

    >>> unpack_trace(pack_trace({"answer": "4", "candidates": []}))
    {'answer': '4', 'candidates': []}
    """
    return None if trace is None else zlib.compress(json.dumps(trace, ensure_ascii=False, separators=(",", ":")).encode(), 6)


def unpack_trace(blob: bytes | None) -> dict[str, Any] | None:
    return None if blob is None else json.loads(zlib.decompress(blob))


def pack_logprobs(values: Sequence[float] | None) -> bytes | None:
    """Chosen-token logprobs as float32 bytes (4 bytes a token).

    >>> unpack_logprobs(pack_logprobs([-0.5, -1.25]))
    (-0.5, -1.25)
    """
    return None if values is None else np.asarray(values, dtype="<f4").tobytes()


def unpack_logprobs(blob: bytes | None) -> tuple[float, ...] | None:
    return None if blob is None else tuple(float(x) for x in np.frombuffer(blob, dtype="<f4"))


class StoreError(PonderError):
    """The store's file cannot be read as a ponder store; the message names it and what to do."""


@dataclass(frozen=True)
class Key:
    run: str
    task: str
    item: str
    model: str
    strategy: str
    params: str  # canonical JSON of the strategy's parameters (minus the budget axis)
    seed: int


class Store:
    def __init__(self, path: str | Path, *, readonly: bool = False):
        """Open (or create) the store at ``path``; ``readonly`` opens an existing one for reading only (the trace
        explorer: it never writes, and a missing file is an error rather than a new store)."""
        self.path = Path(path)
        self._lock = threading.Lock()
        if readonly:
            self._open_readonly()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            self.db.row_factory = sqlite3.Row
            for table, columns in MIGRATIONS.items():
                have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column.split()[0] not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except sqlite3.DatabaseError as exc:  # not SQLite, truncated, or another program's database
            raise StoreError(f"{self.path} is not a readable ponder evaluation store ({exc}). Nothing was written to "
                             f"it: move it aside (or pass another --db) to start a new store there, or restore it from "
                             f"a copy (a committed store: git checkout -- {self.path})") from None

    def _open_readonly(self) -> None:
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no evaluation store there (ponder eval --db {self.path} makes one)")
        try:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("SELECT run FROM runs LIMIT 1").fetchall()
            self._columns = {r["name"] for r in self.db.execute("PRAGMA table_info(results)")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a readable ponder evaluation store ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def _result_columns(self, names: Sequence[str] = tuple(c for c in RESULT_COLUMNS if c != "trace")) -> str:
        """Result columns for a SELECT (default: every one but the trace): a store opened read-only that predates a
        column (it cannot be migrated) reads NULL there."""
        have = getattr(self, "_columns", None)
        return ", ".join(c if have is None or c in have else f"NULL AS {c}" for c in names)

    def runs(self) -> list[dict[str, Any]]:
        """Every run in the store: its name, when it began, its configuration and how many results it has."""
        rows = self.db.execute("SELECT runs.run, runs.created, runs.config, COUNT(results.item) AS results FROM runs "
                               "LEFT JOIN results ON results.run = runs.run GROUP BY runs.run ORDER BY runs.created").fetchall()
        return [{"run": r["run"], "created": r["created"], "config": json.loads(r["config"]), "results": r["results"]} for r in rows]

    def find_result(self, run: str, item: str, model: str, strategy: str, params: str, budget: int,
                    task: str | None = None, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """One result row (every column but the trace) and its stored trace (see ``pack_trace``; None where the row
        was stored before traces were kept), in one indexed lookup; ``task`` and ``seed`` when the run has several.
        None when there is no such row."""
        columns = self._result_columns()
        trace = self._result_columns(("trace",))
        where = "run=? AND item=? AND model=? AND strategy=? AND params=? AND budget=?"
        args: list[Any] = [run, item, model, strategy, params, budget]
        for name, value in (("task", task), ("seed", seed)):
            if value is not None:
                where += f" AND {name}=?"
                args.append(value)
        row = self.db.execute(f"SELECT {columns}, {trace} FROM results WHERE {where} LIMIT 1", args).fetchone()
        if row is None:
            return None
        found = dict(row)
        return found, unpack_trace(found.pop("trace"))

    def start_run(self, run: str, config: dict[str, Any]) -> None:
        """Record a run's config the first time it runs. A run resumed over more items of the same task and seed
        widens its stored ``limit``: its items are read back (exports, traces, replays) from that config, and the
        items beyond the first limit would be stored but never seen."""
        with self._lock, self.db:
            row = self.db.execute("SELECT config FROM runs WHERE run = ?", (run,)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO runs VALUES (?, ?, ?)", (run, time.time(), json.dumps(config, sort_keys=True)))
                return
            stored = json.loads(row["config"])
            same_items = all(stored.get(k) == config.get(k) for k in ("task", "seed"))
            if same_items and stored.get("limit") is not None and (config.get("limit") is None or config["limit"] > stored["limit"]):
                self.db.execute("UPDATE runs SET config = ? WHERE run = ?",
                                (json.dumps({**stored, "limit": config.get("limit")}, sort_keys=True), run))

    def run_config(self, run: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT config FROM runs WHERE run = ?", (run,)).fetchone()
        return json.loads(row["config"]) if row else None

    def has_result(self, key: Key, budget: int) -> bool:
        return self.db.execute(
            "SELECT 1 FROM results WHERE run=? AND task=? AND item=? AND model=? AND strategy=? AND params=? AND budget=? AND seed=?",
            (key.run, key.task, key.item, key.model, key.strategy, key.params, budget, key.seed)).fetchone() is not None

    def samples(self, key: Key) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM samples WHERE run=? AND task=? AND item=? AND model=? AND strategy=? AND params=? AND seed=? ORDER BY idx",
            (key.run, key.task, key.item, key.model, key.strategy, key.params, key.seed)).fetchall()

    def put_samples(self, key: Key, rows: list[dict[str, Any]]) -> None:
        """All candidates of one sampling run, in one transaction (all or nothing)."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                for r in rows:
                    self.db.execute(
                        "INSERT OR IGNORE INTO samples (run, task, item, model, strategy, params, seed, idx, text, answer, key, "
                        "tokens, finish, confidence, score, correct, prompt_tokens, seconds, token_logprobs) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (key.run, key.task, key.item, key.model, key.strategy, key.params, key.seed, r["idx"], r["text"],
                         r["answer"], r["key"], r["tokens"], r["finish"], r["confidence"], r["score"], r["correct"],
                         r["prompt_tokens"], r["seconds"], pack_logprobs(r.get("token_logprobs"))))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def put_result(self, key: Key, budget: int, r: dict[str, Any], replace: bool = False) -> None:
        """Store a result row; an existing row is kept unless ``replace`` (a row known to be stale)."""
        with self._lock:
            where = (key.run, key.task, key.item, key.model, key.strategy, key.params, budget, key.seed)
            # a row derived again from its stored samples keeps the contention and machine measured when they were drawn
            kept = [f"COALESCE(?, (SELECT {c} FROM results WHERE run=? AND task=? AND item=? AND model=? "
                    "AND strategy=? AND params=? AND budget=? AND seed=?))" for c in ("other_cpu", "machine")]
            self.db.execute(
                f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO results ({', '.join(RESULT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * (len(RESULT_COLUMNS) - 2))}, {', '.join(kept)})",
                (*where, r["answer"],
                 r["reference"], r["correct"], r["prompt_tokens"], r["cached_prompt_tokens"], r["completion_tokens"],
                 r["seconds"], r["n_candidates"], r["n_correct"], r["stopped_by"], time.time(), pack_trace(r.get("trace")),
                 r.get("other_cpu"), *where, r.get("machine"), *where))

    def put_step_labels(self, sample, labels: Sequence[float], rollouts: int, usage: Usage) -> None:
        """A stored path's Monte-Carlo step labels (the share of rollouts from each step that reached the answer)
        and what computing them cost; ``sample`` is its row in ``samples``."""
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO step_labels VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            (sample["run"], sample["task"], sample["item"], sample["model"], sample["strategy"], sample["params"],
                             sample["seed"], sample["idx"], json.dumps([round(float(x), 4) for x in labels]), rollouts,
                             usage.completion_tokens, usage.prompt_tokens, usage.seconds))

    def step_labels(self, run: str) -> dict[tuple[str, str, str, int], dict[str, Any]]:
        """``{(item, model, params, idx): {"labels", "rollouts", "completion_tokens", ...}}`` for a run's labelled paths."""
        rows = self.db.execute("SELECT * FROM step_labels WHERE run = ?", (run,)).fetchall()
        return {(r["item"], r["model"], r["params"], r["idx"]): {**dict(r), "labels": json.loads(r["labels"])} for r in rows}

    def delete_results(self, run: str, strategy: str, params: str) -> int:
        """Drop a run's results of one strategy variant (``params`` as stored: ``runner.spec_key``), e.g. after the
        file a spec names has changed; their samples stay. Returns how many rows went."""
        with self._lock, self.db:
            return self.db.execute("DELETE FROM results WHERE run = ? AND strategy = ? AND params = ?",
                                   (run, strategy, params)).rowcount

    def delete_contended(self, run: str, model: str, strategy: str, params: str, cores: float) -> int:
        """Drop a run's results of one strategy variant that were measured while other processes used at least
        ``cores`` (``other_cpu``), so that a resumed run measures them again on a quiet machine. Returns how many."""
        with self._lock, self.db:
            return self.db.execute("DELETE FROM results WHERE run = ? AND model = ? AND strategy = ? AND params = ? "
                                   "AND other_cpu >= ?", (run, model, strategy, params, cores)).rowcount

    def scores(self, key: Key, scorer: str) -> dict[int, tuple[float | None, Usage | None]]:
        """Each judged sample's score and what judging it cost (None where an older store did not record its tokens;
        seconds 0.0 where it recorded the tokens but not yet the time)."""
        rows = self.db.execute(
            "SELECT idx, score, prompt_tokens, cached_prompt_tokens, completion_tokens, seconds FROM scores "
            "WHERE run=? AND task=? AND item=? AND model=? AND strategy=? AND params=? AND seed=? AND scorer=?",
            (key.run, key.task, key.item, key.model, key.strategy, key.params, key.seed, scorer)).fetchall()
        return {r["idx"]: (r["score"], None if r["prompt_tokens"] is None else
                           Usage(r["prompt_tokens"], r["cached_prompt_tokens"], r["completion_tokens"], r["seconds"] or 0.0, 1))
                for r in rows}

    def put_scores(self, key: Key, scorer: str, scores: dict[int, tuple[float | None, Usage]]) -> None:
        """Scores with their cost; a sample judged again (its cost was not recorded) replaces its old row."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                for idx, (score, u) in scores.items():
                    self.db.execute(
                        "INSERT OR REPLACE INTO scores (run, task, item, model, strategy, params, seed, idx, scorer, score, "
                        "prompt_tokens, cached_prompt_tokens, completion_tokens, seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (key.run, key.task, key.item, key.model, key.strategy, key.params, key.seed, idx, scorer, score,
                         u.prompt_tokens, u.cached_prompt_tokens, u.completion_tokens, u.seconds))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def results(self, run: str) -> list[sqlite3.Row]:
        """A run's result rows, every column but the trace (``trace`` reads that)."""
        columns = self._result_columns()
        return self.db.execute(f"SELECT {columns} FROM results WHERE run = ? ORDER BY model, strategy, budget, item", (run,)).fetchall()

    def rescore(self, run: str, score: Callable[[str, dict[str, Any]], float | None]) -> tuple[int, int]:
        """Score a run's stored texts again by today's checker, ``score(item, stored)`` (None: leave it), where
        ``stored`` has the ``text``, the ``answer`` and the ``params`` (a sample's; None for a strategy run's
        candidate, whose text already holds what its program printed): every sample, and every strategy-run result's
        candidates (its ``correct`` is its chosen candidate's, ``n_correct`` how many scored). Rows derived from
        shared samples read their samples' scores: derive them again afterwards (``Evaluator.rederive``). Returns
        (samples changed, results changed); nothing is generated."""
        samples_changed = results_changed = 0
        with self._lock:
            self.db.execute("BEGIN")
            try:
                for r in self.db.execute("SELECT rowid, item, text, answer, params, correct FROM samples WHERE run = ?",
                                         (run,)).fetchall():
                    new = score(r["item"], {"text": r["text"], "answer": r["answer"], "params": r["params"]})
                    if new is not None and new != r["correct"]:
                        self.db.execute("UPDATE samples SET correct = ? WHERE rowid = ?", (new, r["rowid"]))
                        samples_changed += 1
                rows = self.db.execute("SELECT rowid, item, correct, n_correct, trace FROM results WHERE run = ? AND "
                                       "trace IS NOT NULL", (run,)).fetchall()
                for r in rows:
                    trace = unpack_trace(r["trace"])
                    cands = trace.get("candidates") if trace else None
                    if not cands:
                        continue
                    news = [score(r["item"], {"text": c.get("text") or "", "answer": c.get("answer"), "params": None})
                            for c in cands]
                    if any(n is None for n in news):
                        continue
                    for c, n in zip(cands, news, strict=True):
                        c["correct"] = n
                    chosen = trace.get("chosen")
                    correct = news[chosen] if chosen is not None and trace.get("answer") is not None else r["correct"]
                    n_correct = sum(1 for n in news if n > 0)
                    if (correct, n_correct) != (r["correct"], r["n_correct"]):
                        self.db.execute("UPDATE results SET correct = ?, n_correct = ?, trace = ? WHERE rowid = ?",
                                        (correct, n_correct, pack_trace(trace), r["rowid"]))
                        results_changed += 1
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return samples_changed, results_changed

    def items(self, run: str) -> set[str]:
        """The items a run has stored anything for: results or samples."""
        return {r[0] for r in self.db.execute("SELECT item FROM results WHERE run = ? UNION SELECT item FROM samples "
                                              "WHERE run = ?", (run, run))}

    def all_samples(self, run: str) -> Iterator[sqlite3.Row]:
        yield from self.db.execute("SELECT * FROM samples WHERE run = ? ORDER BY model, strategy, item, idx", (run,))
