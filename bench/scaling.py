"""The headline: does Qwen2.5-Coder-0.5B with search beat the 3x larger Qwen2.5-Coder-1.5B answering directly,
and at what cost? On reasoning-gym gsm_symbolic (fixed seed), in one resumable run:

- phase 1, 0.5B: greedy, majority at budgets 1, 2, 4, 8, 16;
- phase 2, 1.5B: greedy; phase 3, 1.5B: majority at budgets 1, 2, 4;
- phase 4, 0.5B: weighted_best_of_n (self-judge P(yes)) and phase 5, 0.5B: beam, mcts at budgets 1, 2, 4, 8, 16
  (steps scored by their own token confidence, the strategies' default scorer);
- phase 6, 0.5B: program (program-aided reasoning: programs run in the sandbox, a vote over what they print) at
  budgets 1, 2, 4, 8, 16 (the first program greedy; budget k votes over the first k of one 16-program run);
  phase 7, 1.5B: program at 1, 2, 4.

The summary, figure and JSON cover the first ``--limit`` items only, and each row says over how many items it was
measured (a phase not yet run has no rows).

Everything goes to bench/results/scaling.sqlite, which is committed (not its -wal/-shm: commit a consistent copy
made with SQLite's backup API while a run is writing); killing and re-running continues where it stopped.
At the end it writes bench/results/scaling.json, the figure bench/results/scaling.png and the report.

    .venv/bin/python -m bench.scaling [--limit 100] [--workers 4] [--phases 1,2,3,4]
    .venv/bin/python -m bench.scaling --report-only --print-only --limit 40   # a phase in progress, first 40 items
    .venv/bin/python -m bench.scaling --snapshot /tmp/snap.sqlite             # a consistent copy, while a run writes

To commit a snapshot without touching the live file: ``git update-index --cacheinfo
100644,$(git hash-object -w /tmp/snap.sqlite),bench/results/scaling.sqlite`` and commit.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
from bisect import bisect_left, bisect_right
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.common import RESULTS, cpu_name, write_result
from ponder.backends import open_generator
from ponder.evaluation.report import coverage, summarize, write_report
from ponder.evaluation.runner import EvalConfig, Progress, evaluate, item_id
from ponder.evaluation.store import Store
from ponder.tasks import load_task

SMALL, LARGE = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
SEED = 2024
TASK = "rg:gsm_symbolic"
RUN = "scaling"
MAX_TOKENS = 384
PHASES = {
    1: (SMALL, ("greedy", "majority"), (1, 2, 4, 8, 16)),
    2: (LARGE, ("greedy",), (1,)),
    3: (LARGE, ("majority",), (1, 2, 4)),
    4: (SMALL, ("weighted_best_of_n",), (1, 2, 4, 8, 16)),
    5: (SMALL, ("beam?max_step_tokens=96", "mcts?max_step_tokens=96"), (1, 2, 4, 8, 16)),
    6: (SMALL, ("program",), (1, 2, 4, 8, 16)),
    7: (LARGE, ("program",), (1, 2, 4)),
}
HEADLINE_STRATEGIES = ("greedy", "majority", "weighted_best_of_n", "beam", "mcts", "program")


def spec(s: str) -> str:
    return s + ("&" if "?" in s else "?") + f"max_tokens={MAX_TOKENS}"


def incomplete_phases(rows: list[dict], limit: int) -> list[int]:
    """The phases whose every strategy and budget does not yet have a result on all ``limit`` items."""
    have = {(r["model"], r["strategy"].split("?")[0], r["budget"]): r["items"] for r in rows}
    return [ph for ph, (model, strategies, budgets) in PHASES.items()
            if any(have.get((model, s.split("?")[0], b), 0) < limit
                   for s in strategies for b in ([1] if s.split("?")[0] == "greedy" else budgets))]


def judge_quality(store: Store, items: set[str]) -> dict:
    """How well the stored judgements tell right paths from wrong ones (AUROC: the chance that a right path scores
    above a wrong one, ties counting half), and where weighting the 16-path vote by them changed its answer."""
    db = store.db
    pairs = db.execute(
        "SELECT s.item, s.correct > 0, c.score FROM samples s JOIN scores c USING (run, task, item, model, strategy, params, seed, idx) "
        "WHERE s.run = ? AND s.model = ? AND c.score IS NOT NULL", (RUN, SMALL)).fetchall()
    pairs = [(ok, score) for item, ok, score in pairs if item in items]
    right = sorted(score for ok, score in pairs if ok)
    wrong = sorted(score for ok, score in pairs if not ok)
    if not right or not wrong:
        return {}
    below = lambda x: bisect_left(wrong, x) + 0.5 * (bisect_right(wrong, x) - bisect_left(wrong, x))  # noqa: E731
    auroc = sum(below(x) for x in right) / (len(right) * len(wrong))
    changed = [(w, m) for item, w, m, same in db.execute(
        "SELECT w.item, w.correct, m.correct, w.answer IS m.answer FROM results w JOIN results m "
        "ON w.run = m.run AND w.item = m.item AND w.model = m.model AND w.budget = m.budget AND w.seed = m.seed "
        "WHERE w.run = ? AND w.model = ? AND w.budget = 16 AND w.strategy LIKE 'weighted_best_of_n%' "
        "AND m.strategy LIKE 'majority%'", (RUN, SMALL)).fetchall() if item in items and not same]
    return {"judged_paths": len(pairs), "right_paths": len(right), "auroc": round(auroc, 4),
            "mean_score_right": round(sum(right) / len(right), 4), "mean_score_wrong": round(sum(wrong) / len(wrong), 4),
            "budget16_answers_changed": len(changed), "changed_weighted_right": int(sum(w > 0 for w, _ in changed)),
            "changed_majority_right": int(sum(m > 0 for _, m in changed))}


def snapshot(src: Path, dest: Path) -> dict[str, int]:
    """Copy the SQLite store ``src`` to ``dest`` with SQLite's backup API: a consistent copy even while another
    process writes to ``src`` (its committed transactions only, WAL included), as a single file (journal mode
    DELETE, so no -wal/-shm travel with it). Returns the copy's row counts per table."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(src, timeout=30)
    copy = sqlite3.connect(tmp)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        tables = [r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        counts = {t: copy.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise RuntimeError(f"the copy of {src} failed SQLite's integrity check")
    finally:
        copy.close()
        source.close()
    tmp.replace(dest)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--phases", default="1,2,3,4,5")
    ap.add_argument("--report-only", action="store_true", help="summarise what is stored, run nothing")
    ap.add_argument("--print-only", action="store_true",
                    help="with --report-only: print the summary of the first --limit items, write no file (a look at a "
                         "phase in progress: compare strategies over the items it has finished)")
    ap.add_argument("--snapshot", type=Path, metavar="DEST",
                    help="write a consistent copy of the store to DEST (safe while a run writes to it) and exit")
    args = ap.parse_args()
    console = Console(width=150)
    if args.snapshot:
        console.print(f"{args.snapshot}: {snapshot(RESULTS / 'scaling.sqlite', args.snapshot)}")
        return
    store = Store(RESULTS / "scaling.sqlite")
    task = load_task(TASK)
    items = {item_id(p) for p in task.problems(args.limit, SEED)}
    for ph in [] if args.report_only else [int(p) for p in args.phases.split(",")]:
        model, strategies, budgets = PHASES[ph]
        cfg = EvalConfig(run=RUN, task=task.name, models=(model,), strategies=tuple(spec(s) for s in strategies),
                         budgets=budgets, limit=args.limit, seed=SEED, workers=args.workers)
        with Bar(TextColumn(f"phase {ph}: {model} {', '.join(strategies)}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                 TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
            tid = bar.add_task("", total=None)
            progress = Progress(on_change=lambda p: bar.update(tid, total=p.total, completed=p.done))
            asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m), progress))
    rows = summarize(store, RUN, seed=SEED, items=items, strategies=set(HEADLINE_STRATEGIES))
    for r in rows:
        console.print(f"{r['model']:<20} {r['strategy']:<20} budget {r['budget']:>2}: accuracy {r['accuracy']:.3f} "
                      f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['items']} items (a right candidate on {r['any_correct']:.2f}), "
                      f"{r['completion_tokens']:.0f} tokens, {r['seconds']:.1f} s")
    small = [r for r in rows if r["model"] == SMALL and r["items"] >= args.limit and r["strategy"].split("?")[0] in HEADLINE_STRATEGIES]
    large_greedy = [r for r in rows if r["model"] == LARGE and r["strategy"] == "greedy"]
    best = max(small, key=lambda r: (r["accuracy"], -r["completion_tokens"])) if small else None
    headline = {
        "best_small_accuracy": round(best["accuracy"], 4) if best else None,
        "best_small_strategy": best["strategy"] if best else None,
        "best_small_budget": best["budget"] if best else None,
        "large_greedy_accuracy": round(large_greedy[0]["accuracy"], 4) if large_greedy else None,
    }
    cov = {f"{m}/{label}": [(k, round(v, 4)) for k, v in pts] for (m, label), pts in coverage(store, RUN, items).items()}
    judge = judge_quality(store, items)
    console.print("self-judge:", judge)
    console.print("pass@k coverage:", cov)
    console.print("| model | strategy | budget | items | accuracy [95% CI] | generated tokens / problem | wall s / problem |")
    console.print("|---|---|---:|---:|---|---:|---:|")
    for r in rows:
        console.print(f"| {r['model']} | {r['strategy']} | {r['budget']} | {r['items']} | {r['accuracy']:.3f} "
                      f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['completion_tokens']:.0f} | {r['seconds']:.1f} |")
    if args.print_only:
        console.print(headline, "(printed only: nothing written)")
        return
    missing = incomplete_phases(rows, args.limit)
    if missing:  # a partial store must not overwrite the committed figures
        console.print(headline)
        console.print(f"not written: phases {', '.join(map(str, missing))} have not finished all {args.limit} items "
                      f"(run them first; --print-only shows what is there)")
        return
    paths = write_report(store, RUN, RESULTS / "scaling-report", items=items, seed=SEED, strategies=set(HEADLINE_STRATEGIES))
    shutil.copy(paths["accuracy_vs_tokens.png"], RESULTS / "scaling.png")
    out = write_result("scaling", headline, models_used=[SMALL, LARGE], seeds=[SEED],
                       details={"task": TASK, "limit": args.limit, "max_tokens": MAX_TOKENS, "cpu": cpu_name(), "rows": rows,
                                "pass_at_k": cov, "judge": judge})
    console.print(headline)
    console.print(f"wrote {out} and {RESULTS / 'scaling.png'}")


if __name__ == "__main__":
    main()
