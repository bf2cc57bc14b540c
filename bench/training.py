"""Does training on what search found make the small model better? Held out, on the headline's items.

Stages, each resumable (draws in bench/results/training.sqlite, training runs in their own directories with
checkpoints), run in order:

1. **draws**: the 1.5B model's programs (``program``, 4 an item, the first greedy) on ``--train-items``
   gsm_symbolic items of seed 7 (never the headline's seed-2024 items: the export leaves out every question the
   headline judges on); the 0.5B model's are bench/verifier.py's training draws (run ``probe`` of the headline
   store: 8 sampled programs on each of 240 items of seed 7), drawn once for both;
2. **sft**: rejection-sampling fine-tuning / STaR: the 0.5B model's own verified programs -> a LoRA on the 0.5B;
3. **distill**: the 1.5B model's verified programs -> a LoRA on the 0.5B;
4. **judge**: the base, self-trained and distilled 0.5B models on the headline items: ``program`` greedy (1 program)
   and the vote over 8 (the first greedy); the base model's rows are the headline's own (phase 6: this strategy on
   these items), the trained models' are run here;
5. **grpo**: GRPO on reasoning-gym ``basic_arithmetic`` with two-digit numbers and up to four terms, answered
   directly (``prompt=direct``: the answer line alone, a dozen tokens, so sampling stays cheap), where the 0.5B model
   starts low; 8 completions of one prompt a step, each prompt seen once (``--grpo-steps`` items of seed 11, and a
   5% slice of them held out, evaluated at the middle and the end), with the accuracy and format rewards; judged
   greedily on 100 held-out items of seed 12 before and after. A step costs about 40 s on 2 cores: the forward and
   backward passes over the 8 sequences of ~80 tokens dominate, not the sampling. (A
   first try asked for step-by-step reasoning within 64 tokens: 6 of the first 78 held-out items right, nearly every sample
   cut off, so 7 steps of 90 s each saw a reward on 3 of 56 completions: too sparse to learn from in the time here.)

``--smoke`` runs every stage on SmolLM2-135M with a handful of items and steps (minutes), to check the pipeline;
its results go to bench/results/training-smoke.json and are no measurement.

    .venv/bin/python -m bench.training [--train-items 200] [--steps 200] [--stages draws,sft,distill,judge,grpo]

Writes bench/results/training.json: base_greedy_accuracy, sft_greedy_accuracy, distill_greedy_accuracy,
sft_majority8_accuracy, distill_majority8_accuracy, base_majority8_accuracy, grpo_task, grpo_base_accuracy,
grpo_trained_accuracy, train_seconds (per run), with intervals and each run's data size, steps and wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, write_result
from bench.scaling import LARGE, RUN as HEADLINE_RUN, SEED as HEADLINE_SEED, SMALL, TASK
from ponder.backends import open_generator
from ponder.evaluation.metrics import bootstrap_ci, paired_difference
from ponder.evaluation.runner import EvalConfig, evaluate, item_id, spec_key
from ponder.evaluation.store import Store
from ponder.tasks import load_task
from ponder.traces.export import export_records
from ponder.traces.runs import write_jsonl

STORE = RESULTS / "training.sqlite"
WORK = Path("bench-train")  # training run directories (checkpoints, logs, adapters): not committed
TRAIN_SEED = 7
# GRPO: two-digit sums and products of up to four terms, answered directly (no working), so each completion is a
# dozen tokens and sampling stays cheap; measured before choosing it (30 items of seed 12, greedy): 5 right, and 9 with
# one of 8 samples at temperature 0.8 -- low, with room that sampling shows is reachable
GRPO_TASK, GRPO_SEED, GRPO_TEST_SEED = "rg:basic_arithmetic?max_digits=2&max_terms=4", 11, 12
GRPO_PROMPT, GRPO_TOKENS = "direct", 32
STAGES = ("draws", "sft", "distill", "judge", "grpo")


def draws(store: Store, models: tuple[str, ...], items: int, max_tokens: int, task_spec: str = TASK) -> None:
    task = load_task(task_spec)
    for model in models:
        cfg = EvalConfig(run=f"draws-{model}", task=task.name, models=(model,), strategies=(f"program?max_tokens={max_tokens}",),
                         budgets=(4,), limit=items, seed=TRAIN_SEED, workers=1)
        asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m)))


def headline_questions(items: int = 100, task_spec: str = TASK) -> set[str]:
    return {p.question for p in load_task(task_spec).problems(items, HEADLINE_SEED)}


def export_sft(store: Store, model: str, out: Path, held_out: set[str], task_spec: str = TASK, run: str | None = None) -> int:
    """The model's verified programs (2 an item at most) of ``run`` (default: this benchmark's draws) as SFT
    conversations, none of a held-out question."""
    records = export_records(store, run or f"draws-{model}", "sft", model=model, per_item=2, task=task_spec)
    records = [r for r in records if not any(q in r["messages"][-2]["content"] for q in held_out)]
    write_jsonl(out, records)
    return len(records)


def train_on(method: str, base: str, name: str, data: Path | None, steps: int, **kw) -> dict:
    from ponder.training.run import TrainConfig, train

    done = train(TrainConfig(method=method, base=base, name=name, out=WORK / name, data=data, steps=steps, **kw))
    return {"name": name, "steps": done.steps, "train_seconds": round(done.seconds, 1), **done.metrics}


def judge(store: Store, models: list[str], items: int, seed: int, max_tokens: int, task_spec: str = TASK,
          stored: dict[str, tuple[Store, str]] | None = None) -> dict[str, dict]:
    """Each model's program vote at 1 and 8 on the items (the first greedy), as accuracy with its interval; a model
    in ``stored`` is read from that store's run instead of run again (the untrained model: the headline's phase 6
    is exactly this strategy on these items)."""
    task = load_task(task_spec)
    out, per_item = {}, {}
    spec = f"program?max_tokens={max_tokens}"
    for model in models:
        where, run = (stored or {}).get(model, (store, f"judge-{model}"))
        if where is store:
            cfg = EvalConfig(run=run, task=task.name, models=(model,), strategies=(spec,), budgets=(1, 8), limit=items,
                             seed=seed, workers=1)
            asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m)))
        wanted = {item_id(p) for p in task.problems(items, seed)}
        key = spec_key(spec)
        rows = [r for r in where.results(run) if r["model"] == model and (r["strategy"], r["params"]) == key and r["item"] in wanted]
        out[model] = {}
        for b in (1, 8):
            acc, lo, hi = bootstrap_ci([r["correct"] for r in rows if r["budget"] == b], seed=seed)
            out[model][b] = {"accuracy": round(acc, 4), "ci": [round(lo, 4), round(hi, 4)],
                             "items": sum(1 for r in rows if r["budget"] == b)}
            per_item[model, b] = {r["item"]: float(r["correct"]) for r in rows if r["budget"] == b}
    for model in models[1:]:  # each trained model against the untrained one, item by item
        for b in (1, 8):
            out[model][b]["gain_over_base"] = paired_gain(per_item[model, b], per_item[models[0], b], seed)
    return out


def paired_gain(trained: dict[str, float], base: dict[str, float], seed: int) -> dict:
    """The trained model's accuracy minus the untrained one's over the same items, with its paired bootstrap
    interval, and on how many items each alone was right."""
    diff, lo, hi = paired_difference(trained, base, seed=seed)
    return {"difference": round(diff, 4), "ci": [round(lo, 4), round(hi, 4)],
            "won": sum(1 for k in base if trained[k] > base[k]), "lost": sum(1 for k in base if trained[k] < base[k])}


def grpo_judge(store: Store, model: str, items: int, max_tokens: int, task_spec: str = GRPO_TASK,
               prompt: str | None = GRPO_PROMPT) -> tuple[dict, dict[str, float]]:
    """``model`` answering greedily on ``items`` held-out items of the GRPO task (another seed than its training
    items): the accuracy with its interval, and each item's outcome."""
    task = load_task(task_spec)
    run = f"grpo-judge-{model}"
    spec = f"greedy?max_tokens={max_tokens}" + (f"&prompt={prompt}" if prompt else "")
    cfg = EvalConfig(run=run, task=task.name, models=(model,), strategies=(spec,), budgets=(1,), limit=items,
                     seed=GRPO_TEST_SEED, workers=1)
    asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m)))
    wanted = {item_id(p) for p in task.problems(items, GRPO_TEST_SEED)}
    per_item = {r["item"]: float(r["correct"]) for r in store.results(run) if r["item"] in wanted}
    acc, lo, hi = bootstrap_ci(list(per_item.values()), seed=GRPO_TEST_SEED)
    return {"accuracy": round(acc, 4), "ci": [round(lo, 4), round(hi, 4)], "items": len(per_item)}, per_item


def grpo_curve(log: Path) -> list[dict]:
    """The training reward step by step from a GRPO run's log.jsonl (a step logged again after a resume counts once,
    as last logged): the mean total reward, each reward's mean, the completions' mean length and clipped share.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = f.write_text('{"step": 1, "reward": 0.5, "rewards/accuracy_reward/mean": 0.25, "completions/mean_length": 40}\\n'
    ...                  '{"step": 1, "reward": 0.75}\\n{"step": 2, "eval_reward": 0.9}\\n')
    >>> grpo_curve(f)
    [{'step': 1, 'reward': 0.75}]
    """
    names = {"reward": "reward", "rewards/accuracy_reward/mean": "accuracy", "rewards/format_reward/mean": "format",
             "completions/mean_length": "length", "completions/clipped_ratio": "clipped"}
    by_step: dict[int, dict] = {}
    if not log.exists():
        return []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if "reward" in rec:
            by_step[rec["step"]] = {"step": rec["step"], **{v: round(rec[k], 4) for k, v in names.items() if k in rec}}
    return [by_step[k] for k in sorted(by_step)]


def draw_grpo(curve: list[dict], base: float | None, trained: float | None, task: str, out: Path) -> Path | None:
    """bench/results/training.png: GRPO's training rewards against steps (a moving mean of 10 steps), with the held-out
    greedy accuracy before and after."""
    if not curve:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(xs: list[float], k: int = 10) -> list[float]:
        return [sum(xs[max(0, i - k + 1):i + 1]) / len(xs[max(0, i - k + 1):i + 1]) for i in range(len(xs))]

    steps = [c["step"] for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("accuracy", "accuracy reward"), ("format", "format reward")):
        ys = [c.get(key) for c in curve]
        if all(y is not None for y in ys):
            ax.plot(steps, ys, alpha=0.25)
            ax.plot(steps, smooth(ys), label=f"{label} (mean of 10 steps)", color=ax.lines[-1].get_color())
    for acc, label, style in ((base, "held-out greedy, untrained", ":"), (trained, "held-out greedy, trained", "--")):
        if acc is not None:
            ax.axhline(acc, linestyle=style, color="black", label=f"{label}: {acc:.2f}")
    ax.set(xlabel="GRPO step", ylabel="mean over the step's completions", title=f"GRPO on {task}", ylim=(0, 1.05))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def previous_details(path: Path) -> dict:
    """The details an earlier run of this benchmark wrote (nothing when there is none or it is unreadable)."""
    try:
        return json.loads(path.read_text()).get("details") or {}
    except (OSError, ValueError):
        return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-items", type=int, default=200)
    ap.add_argument("--judge-items", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--grpo-steps", type=int, default=100)
    ap.add_argument("--grpo-lr", type=float, default=5e-5, help="GRPO's learning rate (LoRA)")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--smoke", action="store_true", help="every stage on SmolLM2 with a handful of items and steps")
    ap.add_argument("--rescore", action="store_true",
                    help="score the store's stored texts again by each task's checker as it is today, and stop "
                         "(generates nothing; rerun --stages judge to report from the rescored rows)")
    args = ap.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    global STORE, WORK
    small, large, max_tokens = SMALL, LARGE, 384
    name, task_spec, grpo_task = "training", TASK, GRPO_TASK
    if args.smoke:  # SmolLM2 gets no gsm_symbolic item right: sums of two numbers give it verified programs to train on
        small = large = "smollm2-135m"
        task_spec = grpo_task = "ponder.testing:ArithmeticTask"
        args.train_items, args.judge_items, args.steps, args.grpo_steps, max_tokens = 6, 4, 2, 2, 48
        STORE, WORK, name = RESULTS / "training-smoke.sqlite", Path("bench-train-smoke"), "training-smoke"
    store = Store(STORE)
    if args.rescore:
        from rich.console import Console

        from bench.scaling import rescore_runs

        rescore_runs(store, Console())
        return
    held_out = headline_questions(args.judge_items, task_spec)  # the judged items' questions never become training data
    data = WORK / "data"
    data.mkdir(parents=True, exist_ok=True)
    tiny = dict(batch=2, lora_r=4, lora_alpha=8, max_length=64, save_steps=1) if args.smoke else dict(max_length=640)
    runs: dict[str, dict] = {}
    record = RESULTS / f"{name}.runs.json"
    if record.exists():
        runs = json.loads(record.read_text())
    if "draws" in stages:
        draws(store, (small,) if args.smoke else (large,), args.train_items, max_tokens, task_spec)
    # the small model's own programs for other items are bench/verifier.py's training draws (8 sampled programs on
    # each of 240 items of seed 7, in the committed headline store): drawn once, used by both
    headline_store = None if args.smoke else Store(RESULTS / "scaling.sqlite")
    for stage, source in (("sft", small), ("distill", large)):
        if stage in stages:
            path = data / f"{stage}.jsonl"
            if stage == "sft" and headline_store is not None:
                from bench.verifier import TRAIN_RUN

                n = export_sft(headline_store, source, path, held_out, task_spec, run=TRAIN_RUN)
            else:
                n = export_sft(store, source, path, held_out, task_spec)
            if n == 0:
                print(f"{stage}: no verified programs to train on", file=sys.stderr)
                continue
            runs[stage] = {"records": n, **train_on("sft", small, f"{name}-{stage}", path, args.steps, **tiny)}
            record.write_text(json.dumps(runs, indent=2, default=str))
    earlier = previous_details(RESULTS / f"{name}.json")  # a stage not run this time keeps what it measured before
    judged = {model: {int(b): v for b, v in row.items()} for model, row in earlier.get("judged", {}).items()}
    if "judge" in stages:
        models = [small] + [runs[s]["name"] for s in ("sft", "distill") if s in runs]
        judged |= judge(store, models, args.judge_items, HEADLINE_SEED, max_tokens, task_spec,
                       stored=None if headline_store is None else {small: (headline_store, HEADLINE_RUN)})
    grpo = dict(earlier.get("grpo", {}))
    if "grpo" in stages:
        grpo_prompt = None if args.smoke else GRPO_PROMPT
        grpo["base"], base_items = grpo_judge(store, small, args.judge_items, GRPO_TOKENS, grpo_task, grpo_prompt)
        runs["grpo"] = train_on("grpo", small, f"{name}-grpo", None, args.grpo_steps, task=grpo_task, prompt=grpo_prompt,
                                task_limit=round(args.grpo_steps / 0.95) if not args.smoke else args.train_items,
                                task_seed=GRPO_SEED, eval_fraction=0.05,
                                group=8 if not args.smoke else 2, batch=8 if not args.smoke else 2,
                                max_completion_tokens=GRPO_TOKENS if not args.smoke else 12,
                                learning_rate=args.grpo_lr if not args.smoke else 5e-3,
                                **({"lora_r": 4, "lora_alpha": 8, "save_steps": 1} if args.smoke
                                   else {"save_steps": max(1, args.grpo_steps // 2)}))
        record.write_text(json.dumps(runs, indent=2, default=str))
        grpo["trained"], trained_items = grpo_judge(store, runs["grpo"]["name"], args.judge_items, GRPO_TOKENS, grpo_task, grpo_prompt)
        grpo["trained"]["gain_over_base"] = paired_gain(trained_items, base_items, GRPO_TEST_SEED)
        grpo["curve"] = grpo_curve(WORK / runs["grpo"]["name"] / "log.jsonl")
        draw_grpo(grpo["curve"], grpo["base"]["accuracy"], grpo["trained"]["accuracy"], grpo_task, RESULTS / f"{name}.png")

    def acc(model_key: str | None, budget: int):
        return judged.get(model_key, {}).get(budget, {}).get("accuracy") if model_key else None

    sft_name = runs.get("sft", {}).get("name")
    distill_name = runs.get("distill", {}).get("name")
    headline_keys = {
        "base_greedy_accuracy": acc(small, 1), "sft_greedy_accuracy": acc(sft_name, 1),
        "distill_greedy_accuracy": acc(distill_name, 1), "base_majority8_accuracy": acc(small, 8),
        "sft_majority8_accuracy": acc(sft_name, 8), "distill_majority8_accuracy": acc(distill_name, 8),
        "grpo_task": grpo_task, "grpo_base_accuracy": grpo.get("base", {}).get("accuracy"),
        "grpo_trained_accuracy": grpo.get("trained", {}).get("accuracy"),
        "train_seconds": {k: v.get("train_seconds") for k, v in runs.items()},
    }
    out = write_result(name, headline_keys, models_used=sorted({small, large}), seeds=[TRAIN_SEED, HEADLINE_SEED, GRPO_SEED],
                       details={"judged": judged, "grpo": grpo, "runs": runs, "smoke": args.smoke})
    print(json.dumps(headline_keys, indent=1))
    print(out)


if __name__ == "__main__":
    main()
