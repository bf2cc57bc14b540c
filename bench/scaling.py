"""The headline: does Qwen2.5-Coder-0.5B with search beat the 3x larger Qwen2.5-Coder-1.5B answering directly,
and at what cost? On reasoning-gym gsm_symbolic (fixed seed), in one resumable run:

- phase 1, 0.5B: greedy, majority at budgets 1, 2, 4, 8, 16;
- phase 2, 1.5B: greedy; phase 3, 1.5B: majority at budgets 1, 2, 4;
- phase 4, 0.5B: weighted_best_of_n (self-judge P(yes)) at budgets 1, 2, 4, 8, 16 and phase 5, 0.5B: beam, mcts
  over chain-of-thought steps scored by their own token confidence (the strategies' default scorer) at budgets 4
  and 8, the widths phase 17 searches programs at (wave 1 measured them at 1-16 in a store since lost: 0.15-0.24;
  a tree search at width 1 or 2 is little more than a greedy path, and the full range costs about 8 CPU hours);
- phase 6, 0.5B: program (program-aided reasoning: programs run in the sandbox, a vote over what they print) at
  budgets 1, 2, 4, 8, 16 (the first program greedy; budget k votes over the first k of one 16-program run);
  phase 7, 1.5B: program at 1, 2, 4;
- phase 8, 0.5B: program with 4 few-shot programs (``shots=4``) from an exemplar bank of the 0.5B model's own
  verified programs on other items (run ``bank``: 4 programs on 40 items of another seed, the items of this run
  left out; ``bench/results/bank_pal.jsonl``, committed) at budgets 1, 2, 4;
- phase 9, 0.5B: adaptive stopping over executed answers (``adaptive_majority?prompt=pal``: the greedy program
  and one sample, then two more a round until the Beta criterion settles at 0.85, or the first four all differ)
  capped at 4, 8 and 16 programs: the draws are stored, so every cap after the first is replayed;
- phase 10, 0.5B: tir (tool-integrated reasoning: python blocks run as the model writes them, their output
  appended, decoding continued) at 1, 2, 4 traces (one 4-trace run; budget k votes over its first k; each
  trace steps on its own, as the engine batches whatever segments are decoding);
- phase 11, 0.5B: majority with Qwen's own prompt (``prompt=boxed``: reason step by step, the answer in
  \\boxed{}) at 1, 2, 4, 8 paths;
- phase 12, 0.5B: majority over 16 sampled programs (``majority?prompt=pal``: phase 6 without its greedy first
  program, drawn as stored samples, so the learned verifier of bench/verifier.py is judged on them) at 1-16;
- phase 13, 0.5B: the same 16 programs, voted with each weighted by the learned verifier's score
  (``weighted_best_of_n?prompt=pal`` with ``--scorer probe?path=bench/results/verifier.probe.json``: a probe on
  the 0.5B model's own hidden states, trained by bench/verifier.py on programs for items of another seed); the
  hidden states it reads are part of each row's prompt tokens;
- phase 14, 0.5B: the temperature sweep: majority over 8 sampled programs at temperature 0.3, 0.5 and 1.0 (phase 12
  is 0.7) at 1, 2, 4, 8;
- phase 15, 1.5B: majority over 4 sampled programs (phase 12's draws for the larger model) at 1, 2, 4, and phase 16,
  1.5B: the same programs voted with each weighted by its own learned verifier (bench/verifier.py --model
  qwen2.5-coder-1.5b: a probe on the 1.5B model's hidden states trained on its programs for items of another seed);
- phase 17, 0.5B: beam search over programs guided by the learned verifier (``beam?prompt=pal`` with phase 13's
  probe: a block of code a step, each step prefix scored by the probe, every program that ends run in the sandbox and
  judged with what it printed; the finished programs' probe-weighted vote picks the answer, the rule that beat the
  probe's single best program in bench/verifier) at widths 4 and 8 (keeping 2 and 4).

The summary, figure and JSON cover the first ``--limit`` items only, and each row says over how many items it was
measured (a phase not yet run has no rows).

Everything goes to bench/results/scaling.sqlite, which is committed (not its -wal/-shm: commit a consistent copy
made with SQLite's backup API while a run is writing); killing and re-running continues where it stopped.
At the end it writes bench/results/scaling.json, the figure bench/results/scaling.png and the report.

    .venv/bin/python -m bench.scaling [--limit 100] [--workers 4] [--phases 1,2,3,4]
    .venv/bin/python -m bench.scaling --report-only --print-only --limit 40   # a phase in progress, first 40 items
    .venv/bin/python -m bench.scaling --snapshot /tmp/snap.sqlite             # a consistent copy, while a run writes
    .venv/bin/python -m bench.scaling --phases 17 --rerun-contended           # measure busy-machine rows again
    .venv/bin/python -m bench.scaling --rescore --report-only                 # after a fix to the task's checker

Seconds are honest only on a quiet machine: every row records how busy the rest of it was (``other_cpu``; the
summary's ``contended``), and a run warns when it starts on a busy one. Run one benchmark at a time.

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

from bench.common import RESULTS, busy_machine_warning, cpu_name, write_result
from ponder.backends import open_generator
from ponder.evaluation.contention import CONTENDED_CORES
from ponder.evaluation.report import coverage, summarize, write_report
from ponder.evaluation.runner import EvalConfig, Progress, evaluate, item_id, stored_params, units
from ponder.defaults import ASK_SECONDS
from ponder.strategies import get
from ponder.evaluation.store import Store
from ponder.tasks import load_task

SMALL, LARGE = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
SEED = 2024
LIMIT = 100  # the headline items: the first LIMIT of TASK at SEED
TASK = "rg:gsm_symbolic"
RUN = "scaling"
MAX_TOKENS = 384
PHASES = {
    1: (SMALL, ("greedy", "majority"), (1, 2, 4, 8, 16)),
    2: (LARGE, ("greedy",), (1,)),
    3: (LARGE, ("majority",), (1, 2, 4)),
    4: (SMALL, ("weighted_best_of_n",), (1, 2, 4, 8, 16)),
    5: (SMALL, ("beam?max_step_tokens=96", "mcts?max_step_tokens=96"), (4, 8)),
    6: (SMALL, ("program",), (1, 2, 4, 8, 16)),
    7: (LARGE, ("program",), (1, 2, 4)),
    8: (SMALL, ("program?shots=4&bank=bench/results/bank_pal.jsonl",), (1, 2, 4)),
    9: (SMALL, ("adaptive_majority?prompt=pal&greedy_first=true&batch=2&threshold=0.85&give_up_after=4",), (4, 8, 16)),
    10: (SMALL, ("tir",), (1, 2, 4)),
    11: (SMALL, ("majority?prompt=boxed",), (1, 2, 4, 8)),
    12: (SMALL, ("majority?prompt=pal",), (1, 2, 4, 8, 16)),
    13: (SMALL, ("weighted_best_of_n?prompt=pal",), (1, 2, 4, 8, 16)),
    14: (SMALL, tuple(f"majority?prompt=pal&temperature={t}" for t in (0.3, 0.5, 1.0)), (1, 2, 4, 8)),
    15: (LARGE, ("majority?prompt=pal",), (1, 2, 4)),
    16: (LARGE, ("weighted_best_of_n?prompt=pal",), (1, 2, 4)),
    17: (SMALL, ("beam?prompt=pal&max_step_tokens=96&select=weighted",), (4, 8)),
}
PROBE = RESULTS / "verifier.probe.json"  # bench/verifier.py's probe, trained on programs of other items
PROBE_LARGE = RESULTS / "verifier_large.probe.json"  # the same for the 1.5B model (bench/verifier.py --model)
PHASE_SCORERS = {13: f"probe?path={PROBE.relative_to(RESULTS.parent.parent)}",
                 16: f"probe?path={PROBE_LARGE.relative_to(RESULTS.parent.parent)}",
                 17: f"probe?path={PROBE.relative_to(RESULTS.parent.parent)}"}
BANK_RUN, BANK_SEED, BANK_ITEMS = "bank", 7, 40
BANK = RESULTS / "bank_pal.jsonl"


def spec(s: str) -> str:
    return s + ("&" if "?" in s else "?") + f"max_tokens={MAX_TOKENS}"


def phase_specs() -> set[tuple[str, str]]:
    """The (strategy, params) of every phase's specs, as the store keys them: the headline's rows are these only
    (bench/adaptive.py's sweeps share the run and stay out of it)."""
    return {stored_params(spec(s), PHASE_SCORERS.get(ph)) for ph, (_, strategies, _) in PHASES.items() for s in strategies}


def headline_rows(store: Store, items: set[str]) -> list[dict]:
    """The headline's summary rows over ``items``: every phase's specs (only those), each row naming its prompt
    template and scorer where set (adaptive_majority?prompt=pal votes on executed programs)."""
    return summarize(store, RUN, seed=SEED, items=items, strategies=phase_specs(), label_params=("prompt", "scorer"))


def incomplete_phases(store: Store, items: set[str]) -> list[int]:
    """The phases whose every strategy (exactly its parameters) and budget does not yet have a result on all
    ``items``."""
    have: dict[tuple, set] = {}
    for r in store.results(RUN):
        if r["item"] in items:
            have.setdefault((r["model"], r["strategy"], r["params"], r["budget"]), set()).add(r["item"])
    out = []
    for ph, (model, strategies, budgets) in PHASES.items():
        for s in strategies:
            name, params = stored_params(spec(s), PHASE_SCORERS.get(ph))
            sizes = units(get(name), budgets)
            if any(len(have.get((model, name, params, b), ())) < len(items) for b in sizes):
                out.append(ph)
                break
    return out


def headline_of(rows: list[dict], limit: int) -> dict:
    """The headline figures from the summary rows measured on all ``limit`` items: the 0.5B model's best
    configuration (every strategy, variants included) against the 1.5B model answering greedily, each strategy
    family's best, and what adaptive stopping over programs costs against the fixed 16-program vote.

    >>> rows = [dict(model=SMALL, strategy="program", budget=16, items=2, accuracy=0.5, completion_tokens=2000.0, seconds=90.0),
    ...         dict(model=SMALL, strategy="adaptive_majority?prompt=pal", budget=16, items=2, accuracy=0.5, completion_tokens=500.0, seconds=30.0),
    ...         dict(model=LARGE, strategy="greedy", budget=1, items=2, accuracy=0.5, completion_tokens=200.0, seconds=20.0)]
    >>> h = headline_of(rows, 2)
    >>> h["best_small_strategy"], h["best_small_tokens_per_problem"], h["adaptive_program_token_ratio"], h["tir_small_accuracy"]
    ('adaptive_majority?prompt=pal', 500.0, 0.25, None)
    >>> h["default_config"]["model"], h["default_config"]["spec"]
    ('qwen2.5-coder-1.5b', 'greedy')
    """
    done = [r for r in rows if r["items"] >= limit]
    small = [r for r in done if r["model"] == SMALL]
    family = lambda r: r["strategy"].split("?")[0]  # noqa: E731

    def best(rs: list[dict]) -> dict | None:
        return max(rs, key=lambda r: (r["accuracy"], -r["completion_tokens"])) if rs else None

    def acc(r: dict | None) -> float | None:
        return round(r["accuracy"], 4) if r else None

    top = best(small)
    executed = lambda r: family(r) == "program" or "prompt=pal" in r["strategy"]  # noqa: E731
    large = [r for r in done if r["model"] == LARGE]
    fixed16 = next((r for r in small if r["strategy"] == "program" and r["budget"] == 16), None)
    adaptive = [r for r in small if family(r) == "adaptive_majority" and "prompt=pal" in r["strategy"]]
    within = [r for r in adaptive if fixed16 and r["accuracy"] >= fixed16["accuracy"] - 0.01]
    cheapest = min(within, key=lambda r: r["completion_tokens"]) if within else None
    return {
        "best_small_accuracy": acc(top),
        "best_small_strategy": top["strategy"] if top else None,
        "best_small_budget": top["budget"] if top else None,
        "best_small_tokens_per_problem": round(top["completion_tokens"], 1) if top else None,
        "large_greedy_accuracy": acc(next((r for r in large if r["strategy"] == "greedy"), None)),
        "large_majority4_accuracy": acc(next((r for r in large if r["strategy"] == "majority" and r["budget"] == 4), None)),
        "program_small_accuracy": acc(best([r for r in small if executed(r)])),
        "tir_small_accuracy": acc(best([r for r in small if family(r) == "tir"])),
        "program_large_accuracy": acc(best([r for r in large if executed(r)])),
        "adaptive_program_token_ratio": round(cheapest["completion_tokens"] / fixed16["completion_tokens"], 4) if cheapest else None,
        "adaptive_program_accuracy": acc(cheapest or best(adaptive)),
        "fixed_program16_accuracy": acc(fixed16),
        "default_config": default_config(done),
    }


def default_config(rows: list[dict]) -> dict | None:
    """What ``ponder ask`` should do with no options: the most accurate row of either model within
    ``ASK_SECONDS`` a question (wall seconds per problem as measured here), ties to fewer tokens, as a model and a
    spec (the row's strategy with its budget as the size parameter).

    >>> default_config([dict(model=LARGE, strategy="program", budget=4, accuracy=0.6, completion_tokens=450.0, seconds=17.0),
    ...                 dict(model=LARGE, strategy="program", budget=2, accuracy=0.6, completion_tokens=220.0, seconds=8.0),
    ...                 dict(model=SMALL, strategy="majority", budget=16, accuracy=0.7, completion_tokens=4000.0, seconds=200.0)])["spec"]
    'program?n=2'
    """
    within = [r for r in rows if r["seconds"] <= ASK_SECONDS]
    if not within:
        return None
    r = max(within, key=lambda r: (r["accuracy"], -r["completion_tokens"]))
    info = get(r["strategy"].split("?")[0])
    size = f"{info.size_param}={r['budget']}" if info.size_param else ""
    spec_ = r["strategy"] + (("&" if "?" in r["strategy"] else "?") + size if size else "")
    return {"model": r["model"], "spec": spec_, "accuracy": round(r["accuracy"], 4), "seconds": round(r["seconds"], 1),
            "tokens": round(r["completion_tokens"], 1)}


def judge_quality(store: Store, items: set[str]) -> dict:
    """How well the self-judge's stored judgements (phase 4) tell right paths from wrong ones (AUROC: the chance that
    a right path scores above a wrong one, ties counting half), and where weighting the 16-path vote by them changed
    its answer against the plain vote (phase 1). Other scorers' judgements (phase 13's probe) are not the judge's."""
    db = store.db
    pairs = db.execute(
        "SELECT s.item, s.correct > 0, c.score FROM samples s JOIN scores c USING (run, task, item, model, strategy, params, seed, idx) "
        "WHERE s.run = ? AND s.model = ? AND c.score IS NOT NULL AND c.scorer LIKE 'judge(%'", (RUN, SMALL)).fetchall()
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
        "WHERE w.run = ? AND w.model = ? AND w.budget = 16 AND w.strategy = ? AND w.params = ? AND m.strategy = ? AND m.params = ?",
        (RUN, SMALL, *stored_params(spec("weighted_best_of_n")), *stored_params(spec("majority")))).fetchall()
        if item in items and not same]
    return {"judged_paths": len(pairs), "right_paths": len(right), "auroc": round(auroc, 4),
            "mean_score_right": round(sum(right) / len(right), 4), "mean_score_wrong": round(sum(wrong) / len(wrong), 4),
            "budget16_answers_changed": len(changed), "changed_weighted_right": int(sum(w > 0 for w, _ in changed)),
            "changed_majority_right": int(sum(m > 0 for _, m in changed))}


def build_exemplar_bank(store: Store, workers: int, console: Console) -> Path:
    """The few-shot bank of phase 8: the 0.5B model's programs (4 an item, the first greedy) on ``BANK_ITEMS`` items
    of seed ``BANK_SEED``, run once into the store (resumable), and of them the verified ones (the reference
    scorer marked them right), one an item, from items this run does not evaluate."""
    from ponder.traces.exemplars import build_bank
    from ponder.traces.runs import write_jsonl

    task = load_task(TASK)
    cfg = EvalConfig(run=BANK_RUN, task=task.name, models=(SMALL,), strategies=(spec("program"),), budgets=(4,),
                     limit=BANK_ITEMS, seed=BANK_SEED, workers=workers)
    asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m)))
    bank = build_bank(store, BANK_RUN, exclude_runs=(RUN,), model=SMALL)
    write_jsonl(BANK, bank)
    console.print(f"{BANK}: {len(bank)} verified programs from {BANK_ITEMS} items of seed {BANK_SEED}")
    return BANK


def rescore_runs(store: Store, console: Console) -> None:
    """Every run in the store (the headline's, the exemplar bank's, the verifier's training draws; bench/training's
    draws and judgements) scored again by today's checker of its task: each item's problem is made from its id
    (seed-index), as its run made it."""
    from ponder.evaluation.runner import Evaluator

    for run in [r["run"] for r in store.runs()]:
        c = store.run_config(run)
        task = load_task(c.get("task") or TASK)
        items = store.items(run)
        by_seed: dict[int, int] = {}
        for item in items:
            seed, _, index = item.partition("-")
            by_seed[int(seed)] = max(by_seed.get(int(seed), 0), int(index) + 1)
        problems = [p for seed, n in by_seed.items() for p in task.problems(n, seed) if item_id(p) in items]
        cfg = EvalConfig(run=run, task=task.name, models=tuple(c["models"]), strategies=tuple(c["strategies"]),
                         budgets=tuple(c["budgets"]), limit=c["limit"], seed=c["seed"], scorer=c.get("scorer"))
        evaluator = Evaluator(store, task, cfg)
        samples, results = evaluator.rescore(problems)
        console.print(f"run {run}: {samples} stored samples and {results} strategy results scored differently today")
        if run != RUN:  # the headline's own rows are derived again phase by phase (--rederive); another run by its config
            for model in cfg.models:
                console.print(f"run {run}: {evaluator.rederive(model, problems)} rows derived again")


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
    ap.add_argument("--limit", type=int, default=LIMIT)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--phases", default="1,2,3,4,5")
    ap.add_argument("--report-only", action="store_true", help="summarise what is stored, run nothing")
    ap.add_argument("--print-only", action="store_true",
                    help="with --report-only: print the summary of the first --limit items, write no file (a look at a "
                         "phase in progress: compare strategies over the items it has finished)")
    ap.add_argument("--rederive", action="store_true",
                    help="derive the stored shared-sample rows (greedy, majority, weighted_best_of_n) again from their stored "
                         "samples and judgements, by today's answer rules; generates nothing")
    ap.add_argument("--rescore", action="store_true",
                    help="score every stored text of the store's runs again by the task's checker as it is today (after "
                         "a fix to it), then derive the shared-sample rows again; generates nothing")
    ap.add_argument("--rerun-contended", action="store_true",
                    help="first drop the --phases' strategy-run rows measured while other processes kept >= 0.5 cores "
                         "busy (other_cpu), so this run measures them again (rows derived from shared samples keep "
                         "their samples' seconds and are left alone)")
    ap.add_argument("--snapshot", type=Path, metavar="DEST",
                    help="write a consistent copy of the store to DEST (safe while a run writes to it) and exit")
    args = ap.parse_args()
    console = Console(width=150)
    if args.snapshot:
        console.print(f"{args.snapshot}: {snapshot(RESULTS / 'scaling.sqlite', args.snapshot)}")
        return
    store = Store(RESULTS / "scaling.sqlite")
    if not args.report_only and (busy := busy_machine_warning()):
        console.print(f"[yellow]warning:[/] {busy}")
    task = load_task(TASK)
    items = {item_id(p) for p in task.problems(args.limit, SEED)}
    if args.rescore:
        rescore_runs(store, console)
    if args.rederive or args.rescore:
        from ponder.evaluation.runner import Evaluator

        problems = list(task.problems(args.limit, SEED))
        for ph, (model, strategies, budgets) in PHASES.items():
            cfg = EvalConfig(run=RUN, task=task.name, models=(model,), strategies=tuple(spec(s) for s in strategies),
                             budgets=budgets, limit=args.limit, seed=SEED, scorer=PHASE_SCORERS.get(ph))
            console.print(f"phase {ph}: {Evaluator(store, task, cfg).rederive(model, problems)} rows derived again")
    if args.rerun_contended and not args.report_only:
        for ph in [int(p) for p in args.phases.split(",")]:
            model, strategies, _ = PHASES[ph]
            for s in strategies:
                name, params = stored_params(spec(s), PHASE_SCORERS.get(ph))
                if get(name).evaluation != "shared_samples":
                    n = store.delete_contended(RUN, model, name, params, CONTENDED_CORES)
                    console.print(f"phase {ph}: {n} {name} rows measured on a busy machine will be measured again")
    for ph in [] if args.report_only else [int(p) for p in args.phases.split(",")]:
        model, strategies, budgets = PHASES[ph]
        if any("bank=" in x for x in strategies):
            build_exemplar_bank(store, args.workers, console)
        cfg = EvalConfig(run=RUN, task=task.name, models=(model,), strategies=tuple(spec(s) for s in strategies),
                         budgets=budgets, limit=args.limit, seed=SEED, workers=args.workers, scorer=PHASE_SCORERS.get(ph))
        with Bar(TextColumn(f"phase {ph}: {model} {', '.join(strategies)}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                 TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
            tid = bar.add_task("", total=None)
            progress = Progress(on_change=lambda p: bar.update(tid, total=p.total, completed=p.done))
            asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m), progress))
    rows = headline_rows(store, items)
    for r in rows:
        console.print(f"{r['model']:<20} {r['strategy']:<20} budget {r['budget']:>2}: accuracy {r['accuracy']:.3f} "
                      f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['items']} items (a right candidate on {r['any_correct']:.2f}), "
                      f"{r['completion_tokens']:.0f} tokens, {r['seconds']:.1f} s")
    headline = headline_of(rows, args.limit)
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
    missing = incomplete_phases(store, items)
    if missing:  # written all the same: the headline keys count complete rows only, and say which phases are not
        console.print(f"phases {', '.join(map(str, missing))} have not finished all {args.limit} items: their rows are "
                      f"listed with their item counts and left out of the headline figures")
    paths = write_report(store, RUN, RESULTS / "scaling-report", items=items, seed=SEED, strategies=phase_specs())
    shutil.copy(paths["accuracy_vs_tokens.png"], RESULTS / "scaling.png")
    out = write_result("scaling", headline, models_used=[SMALL, LARGE], seeds=[SEED],
                       details={"task": TASK, "limit": args.limit, "max_tokens": MAX_TOKENS, "cpu": cpu_name(), "rows": rows,
                                "pass_at_k": cov, "judge": judge, "incomplete_phases": missing,
                                "phases": {ph: {"model": m, "strategies": list(st), "budgets": list(b)} for ph, (m, st, b) in PHASES.items()}})
    console.print(headline)
    console.print(f"wrote {out} and {RESULTS / 'scaling.png'}")


if __name__ == "__main__":
    main()
