"""The learned verifier, held out: a probe on a model's own hidden states, trained on its programs for items of
another seed, judged on its sampled programs for each of the 100 headline items, which it never saw (Qwen2.5-Coder-0.5B:
16 an item, bench/scaling.py's phase 12, ``majority?prompt=pal`` at temperature 0.7; with ``--model
qwen2.5-coder-1.5b``, the default model: 4 an item, phase 15).

1. ``--draw``: the training programs: 8 sampled programs (PAL's prompt, temperature 0.7, as the test programs) on
   each of ``TRAIN_ITEMS`` items of seed ``TRAIN_SEED`` (run ``probe`` of bench/results/scaling.sqlite, committed
   and resumable: killing and re-running continues). About 40 minutes on 2 cores for 240 items.
2. Then (every run): each training and test program read back through the model's hidden state at its last token
   (cached under bench-cache/verifier/, so a rerun reads only what is new), a logistic probe and CLUE's centroids
   fitted on the training programs, and on the test programs:

- AUROC of each scorer (probe, centroids, a small MLP, the programs' own token confidence), with 95% bootstrap
  intervals over items, over all programs and among those that printed an answer (the ones a selector chooses
  among), and within an item (a right program above a wrong one of the same question: what selection needs);
- the plain vote, the probe-weighted vote (``weighted_best_of_n``'s rule), the probe's best program, the
  centroid- and confidence-weighted votes at 1, 2, 4, 8 and 16 programs (the first k of the 16), against pass@k;
  ``gap_closed`` = (probe-weighted vote@16 - vote@16) / (pass@16 - vote@16);
- a learning curve: probes trained on the first 15, 30, 60, 120 and all training items;
- a small MLP (one hidden layer, torch, when installed) on the same features, against the logistic probe;
- two probes: one on the hidden state alone (``probe_hidden``), one also seeing what the program printed
  (``probe_answer``: ponder.verifier.features); the one that ships (``probe``) is the better of the two on a held-out
  quarter of the training items, never chosen on the headline items;
- beam search over programs guided by the probe (bench/scaling's phase 17, the 0.5B only: a block of code a step,
  each step prefix scored by the probe, every program that ends run): ``probe_beam_accuracy`` at the widest width
  measured on all the items (None until that phase has run);
- the figure bench/results/verifier.png: each scorer's ROC curve, and accuracy against programs per selector.

The probe is written to bench/results/verifier.probe.json and as the probe ponder ships for the model
(ponder/verifier/probes/): bench/scaling.py's phase 13 votes with it through the real scorer
(``--scorer probe?path=…``), so the headline table has that row with its hidden-state reading counted; a probe that
scores differently from the one there drops the stored rows of phase 13 and of phase 17 (which searches with it),
to be rerun before the store is committed (tests/test_bench_scaling.py checks scaling.json against the committed
store, tests/test_bench_verifier.py this result against the committed probe).

    .venv/bin/python -m bench.verifier --draw   # draw the training programs, then judge
    .venv/bin/python -m bench.verifier          # judge only (what is drawn); about 10 minutes the first time
    .venv/bin/python -m bench.verifier --model qwen2.5-coder-1.5b   # the default model's probe (below)
    .venv/bin/python -m bench.verifier --beam-only   # after phase 17 ran further: its figures only, nothing read

``--model qwen2.5-coder-1.5b``: the same for the default model, trained on bench/training's draws (its greedy and 3
sampled programs on 120 items of seed 7, bench/results/training.sqlite) and judged on the 4 sampled programs an
item of bench/scaling's phase 15, at 1, 2 and 4 programs; it writes bench/results/verifier_large.json (the same
keys, 4 where the 0.5B's say 16), verifier_large.png and verifier_large.probe.json, which phase 16 votes with and
ponder ships for the model.

Writes bench/results/verifier.json (keys: probe_auroc, judge_auroc, probe_weighted_best_of_n_16_accuracy,
majority16_accuracy, pass_at_16, gap_closed, probe_beam_accuracy, training_items and the rest).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import META, RESULTS, busy_machine_warning, write_result
from bench.scaling import LARGE, LIMIT, PHASE_SCORERS, PHASES, PROBE, PROBE_LARGE, RUN, SEED, SMALL, TASK, spec
from ponder.backends import open_generator
from ponder.evaluation.metrics import bootstrap_ci
from ponder.evaluation.runner import EvalConfig, evaluate, item_id, samples_params, stored_params
from ponder.evaluation.store import Store
from ponder.strategies.base import vote
from ponder.strategies.registry import parse_spec
from ponder.tasks import load_task
from ponder.traces.export import stored_paths
from ponder.types import Candidate
from ponder.verifier.bundled import PROBES
from ponder.verifier.probe import Probe, auroc
from ponder.verifier.train import Features, train

TRAIN_RUN, TRAIN_SEED, TRAIN_ITEMS, TRAIN_PROGRAMS = "probe", 7, 240, 8
TRAIN_SPEC = "majority?prompt=pal&max_tokens=384"
# the stored samples both sides are drawn as (training: TRAIN_SPEC; test: phase 12's majority?prompt=pal, same options)
SAMPLED_PAL = samples_params(parse_spec(TRAIN_SPEC)[1])
CACHE = Path(__file__).resolve().parent.parent / "bench-cache" / "verifier"


def with_temperature(t: float) -> str:
    """The stored params of PAL programs drawn at temperature ``t`` (0: the greedy program)."""
    return samples_params(parse_spec(f"{TRAIN_SPEC}&temperature={t}")[1])


@dataclass(frozen=True)
class Setup:
    """One model's probe: where its training programs are stored, which headline phase's programs it is judged on
    (how many an item, at which budgets), where it is written and which phase votes with it."""

    model: str
    train_db: Path
    train_run: str
    train_params: frozenset[str]  # the stored sample params a training program may have
    train_note: str
    probe_file: Path
    shipped: Path
    probe_phase: int
    result: str
    beam_phase: int | None = None  # the phase where the probe guides beam search over programs

    @property
    def phases_using_probe(self) -> tuple[int, ...]:
        return (self.probe_phase,) + ((self.beam_phase,) if self.beam_phase else ())

    @property
    def budgets(self) -> tuple[int, ...]:
        """The programs an item the probe's phase votes over, as the selectors are judged here."""
        return PHASES[self.probe_phase][2]

    @property
    def test_programs(self) -> int:
        """Programs an item judged on: the largest budget (the draw phase, just before the probe's, stores as many)."""
        return max(self.budgets)


SETUPS = {
    SMALL: Setup(SMALL, RESULTS / "scaling.sqlite", TRAIN_RUN, frozenset({SAMPLED_PAL}),
                 f"8 sampled PAL programs an item of seed {TRAIN_SEED} (--draw)", PROBE,
                 PROBES / "qwen2.5-coder-0.5b-pal.json", 13, "verifier", beam_phase=17),
    # bench/training's draws stage: the greedy and 3 sampled programs on 120 items of seed 7 (programs of the
    # headline's prompt, options and length, items the headline never asks)
    LARGE: Setup(LARGE, RESULTS / "training.sqlite", f"draws-{LARGE}", frozenset({SAMPLED_PAL, with_temperature(0.0)}),
                 "bench/training's draws: the greedy and 3 sampled PAL programs an item of seed 7", PROBE_LARGE,
                 PROBES / "qwen2.5-coder-1.5b-pal.json", 16, "verifier_large"),
}


def draw_training(store: Store, workers: int = 1) -> None:
    task = load_task(TASK)
    cfg = EvalConfig(run=TRAIN_RUN, task=task.name, models=(SMALL,), strategies=(TRAIN_SPEC,), budgets=(TRAIN_PROGRAMS,),
                     limit=TRAIN_ITEMS, seed=TRAIN_SEED, workers=workers)
    asyncio.run(evaluate(store, task, cfg, lambda m: open_generator(m)))


def stored_programs(store: Store, run: str, model: str, params: frozenset[str] = frozenset({SAMPLED_PAL}),
                    items: set[str] | None = None) -> list[tuple[object, dict]]:
    """(prompt, sample row) of every stored PAL program of ``run`` by ``model`` drawn with one of ``params`` (on
    ``items``), by item, then draw options, then draw; each row names its question."""
    rows = [(prompt, {**dict(s), "question": problem.question}) for problem, prompt, s in stored_paths(store, run, model=model)
            if s["params"] in params and (items is None or s["item"] in items)]
    return sorted(rows, key=lambda ps: (ps[1]["item"], ps[1]["params"], ps[1]["idx"]))


def hidden_states(gen, rows: list[tuple[object, dict]], batch: int = 16) -> np.ndarray:
    """Each row's hidden state (prompt + program), cached on disk by model, prompt and text; read in item order, so
    a question's programs share its evaluated prefix."""
    CACHE.mkdir(parents=True, exist_ok=True)
    keys = [hashlib.sha256(f"{gen.model_sha256}\0{json.dumps(repr(p))}\0{r['text']}".encode()).hexdigest()[:32] for p, r in rows]
    # each distinct (prompt, program) is read once: a program sampled twice gets one state, read or cached alike
    todo, seen = [], set()
    for i, k in enumerate(keys):
        if k not in seen and not (CACHE / f"{k}.npy").exists():
            todo.append(i)
        seen.add(k)
    for j in range(0, len(todo), batch):
        idx = todo[j:j + batch]
        read = asyncio.run(gen.read_hidden_states([rows[i][0] for i in idx], [rows[i][1]["text"] for i in idx]))
        for i, x in zip(idx, read.states, strict=True):
            np.save(CACHE / f"{keys[i]}.npy", x)
        print(f"hidden states: {min(j + batch, len(todo))}/{len(todo)} read", flush=True)
    return np.vstack([np.load(CACHE / f"{k}.npy") for k in keys])


def by_item(items: list[str], indices=None) -> dict[str, list[int]]:
    """The positions (of ``indices``, default all) of each item's paths, in order."""
    by: dict[str, list[int]] = defaultdict(list)
    for i in range(len(items)) if indices is None else indices:
        by[items[i]].append(i)
    return by


def item_auroc_ci(scores: list[float], labels: list[float], items: list[str], resamples: int = 1000) -> list[float]:
    """A 95% bootstrap interval for the AUROC, resampling items (an item's paths move together)."""
    by = by_item(items)
    keys = sorted(by)
    rng = np.random.default_rng(SEED)
    got = []
    for _ in range(resamples):
        idx = [i for k in rng.choice(keys, size=len(keys)) for i in by[k]]
        a = auroc([scores[i] for i in idx], [labels[i] for i in idx])
        if a is not None:
            got.append(a)
    return [round(float(np.percentile(got, 2.5)), 4), round(float(np.percentile(got, 97.5)), 4)]


def within_item_auroc(scores: list[float], labels: list[float], items: list[str], voting: list[int]) -> dict:
    """What a selector needs: among one item's programs that printed an answer, does a right one score above a
    wrong one? The mean over the items that have both (a pooled AUROC also rewards telling easy items from hard)."""
    per = [auroc([scores[i] for i in idx], [labels[i] for i in idx]) for idx in by_item(items, voting).values()]
    per = [a for a in per if a is not None]
    return {"within_item_auroc": round(float(np.mean(per)), 4) if per else None, "items_with_both": len(per)}


def selections(paths: list[dict], scorers: dict[str, list[float]], budgets: tuple[int, ...] = (1, 2, 4, 8, 16)
               ) -> tuple[list[dict], dict[str, dict[int, list[float]]]]:
    """Per budget k: the plain vote, each scorer's weighted vote (and the probe's best program) over each item's
    first k programs, and pass@k; the per-item outcomes too (for intervals)."""
    groups = by_item([p["item"] for p in paths])
    outcome: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k in budgets:
        for idx in groups.values():
            idx = idx[:k]
            cands = [Candidate(text=paths[i]["text"], answer=paths[i]["answer"], key=paths[i]["key"], tokens=paths[i]["tokens"],
                               finish_reason=paths[i]["finish"], confidence=paths[i]["confidence"]) for i in idx]
            right = {paths[i]["key"] for i in idx if paths[i]["correct"] > 0}
            outcome["majority"][k].append(float(vote(cands).key in right))
            outcome["pass"][k].append(float(bool(right)))
            for name, s in scorers.items():
                w = [s[i] if c.key is not None else 0.0 for i, c in zip(idx, cands, strict=True)]
                outcome[f"{name}_weighted"][k].append(float(vote(cands, w).key in right))
            top = max(range(len(idx)), key=lambda j: (cands[j].key is not None, scorers["probe"][idx[j]], -j))
            outcome["probe_best_of_n"][k].append(float(cands[top].key in right))
    rows = []
    for name, per in outcome.items():
        for k, v in sorted(per.items()):
            acc, lo, hi = bootstrap_ci(v, seed=SEED)
            rows.append({"selector": name, "budget": k, "items": len(v), "accuracy": round(acc, 4), "ci_low": round(lo, 4),
                         "ci_high": round(hi, 4)})
    return rows, outcome


def mlp_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, hidden: int = 64, epochs: int = 300) -> list[float] | None:
    """A one-hidden-layer MLP (weight decay, dropout; torch) on standardised features: the issue's comparison."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(SEED)
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    x = torch.tensor((train_x - mean) / scale, dtype=torch.float32)
    y = torch.tensor(train_y, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.1)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).squeeze(1), y)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return torch.sigmoid(net(torch.tensor((test_x - mean) / scale, dtype=torch.float32)).squeeze(1)).tolist()


def roc_points(scores: list[float], labels: list[float]) -> tuple[list[float], list[float]]:
    """The ROC curve's (false-positive rates, true-positive rates), thresholds at every distinct score.

    >>> roc_points([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    pos, neg = sum(1 for y in labels if y > 0), sum(1 for y in labels if y <= 0)
    fpr, tpr, tp, fp = [0.0], [0.0], 0, 0
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    for i, (score, y) in enumerate(pairs):
        tp, fp = tp + (y > 0), fp + (y <= 0)
        if i + 1 == len(pairs) or pairs[i + 1][0] != score:  # tied scores are one threshold
            fpr.append(fp / neg if neg else 0.0)
            tpr.append(tp / pos if pos else 0.0)
    return fpr, tpr


FIGURE_SCORERS = {"probe_answer": "probe: state + printed answer", "probe_hidden": "probe: state alone", "mlp": "small MLP", "confidence": "token confidence", "centroid": "centroids"}
FIGURE_SELECTORS = {"pass": "pass@k (a perfect selector)", "probe_weighted": "vote weighted by the shipped probe",
                    "probe_hidden_weighted": "vote weighted by the state-alone probe",
                    "probe_best_of_n": "the probe's best program", "confidence_weighted": "vote weighted by confidence",
                    "majority": "plain vote"}


def draw_figure(scores: dict[str, list[float]], labels: list[float], aurocs: dict, rows: list[dict], out: Path,
                model: str = SMALL, budgets: tuple[int, ...] = (1, 2, 4, 8, 16)) -> Path:
    """bench/results/verifier.png: each scorer's ROC curve on the held-out programs, and accuracy against programs
    per item for each way of choosing among them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (roc, acc) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, label in FIGURE_SCORERS.items():
        if name in scores:
            fpr, tpr = roc_points(scores[name], labels)
            roc.plot(fpr, tpr, label=f"{label}: AUROC {aurocs[name]['auroc']:.3f}")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    roc.set(xlabel="false-positive rate (wrong programs accepted)", ylabel="true-positive rate (right programs accepted)",
            title=f"held out: {len(labels)} programs of {model}")
    roc.legend(loc="lower right", fontsize=8)
    for name, label in FIGURE_SELECTORS.items():
        pts = sorted((r["budget"], r["accuracy"], r["ci_low"], r["ci_high"]) for r in rows if r["selector"] == name)
        if pts:
            ks, a, lo, hi = zip(*pts, strict=True)
            line, = acc.plot(ks, a, marker="o", label=label, linestyle="--" if name == "pass" else "-")
            acc.fill_between(ks, lo, hi, alpha=0.12, color=line.get_color())
    acc.set_xscale("log", base=2)
    acc.set_xticks(list(budgets), [str(k) for k in budgets])
    acc.set(xlabel="sampled programs per item", ylabel="accuracy (95% interval)", title="choosing among the programs")
    acc.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def save_probe(store: Store, probe: Probe, setup: Setup) -> str:
    """Write the probe where bench/scaling's probe phase reads it, and as the probe ponder ships; where it now scores
    paths differently from the file there, that phase's stored rows were scored by the old one and are dropped (rerun
    the phase). Returns the saved probe's fingerprint."""
    old = Probe.load(setup.probe_file).fingerprint() if setup.probe_file.exists() else None
    probe.save(setup.probe_file)
    probe.save(setup.shipped)  # the probe ponder ships for the model is the one measured here
    new = Probe.load(setup.probe_file).fingerprint()  # as saved: the file rounds its numbers
    if old != new:
        phases = setup.phases_using_probe
        dropped = sum(store.delete_results(RUN, *stored_params(spec(s), PHASE_SCORERS[ph])) for ph in phases for s in PHASES[ph][1])
        print(f"the probe changed ({old} -> {new}): dropped phases {phases}' {dropped} stored rows; rerun them with "
              f"python -m bench.scaling --phases {','.join(map(str, phases))}")
    return new


def beam_rows(setup: Setup, items: set[str]) -> list[dict]:
    """The headline's rows of beam search over programs guided by this probe (the setup's beam phase), each
    measured on all ``items``; none before that phase has run."""
    from ponder.evaluation.report import summarize

    if not setup.beam_phase:
        return []
    ph = setup.beam_phase
    wanted = {stored_params(spec(s), PHASE_SCORERS[ph]) for s in PHASES[ph][1]}
    rows = summarize(Store(RESULTS / "scaling.sqlite", readonly=True), RUN, seed=SEED, items=items, strategies=wanted,
                     label_params=("prompt", "scorer"))
    return [r for r in rows if r["model"] == setup.model and r["items"] == len(items)]


def beam_figures(setup: Setup, items: set[str]) -> tuple[dict, dict]:
    """verifier.json's keys and details that come from the beam phase's stored rows (``beam_rows``), not from
    reading any program: what ``--beam-only`` refreshes after that phase ran further."""
    beams = beam_rows(setup, items)
    widest = max(beams, key=lambda r: r["budget"]) if beams else None
    keys = {"probe_beam_accuracy": round(widest["accuracy"], 4) if widest else None,
            "probe_beam_width": widest["budget"] if widest else None}
    details = {"probe_beam": [{k: r[k] for k in ("strategy", "budget", "accuracy", "ci_low", "ci_high", "any_correct",
                                                 "completion_tokens", "prompt_tokens", "seconds")} for r in beams],
               "probe_beam_note": (f"beam search over programs (a block of code a step) guided by this probe, "
                                   f"bench/scaling's phase {setup.beam_phase}, at the widest width measured on all "
                                   f"{len(items)} items; the probe scores each step prefix as it scores a "
                                   f"whole program (it was trained on whole programs, not on step labels)")
               if setup.beam_phase else "not measured for this model"}
    return keys, details


def refresh_beam(setup: Setup, limit: int) -> Path:
    """Rewrite the committed result's beam figures from the store, everything else as it was measured: the probe
    must still be the one the result describes (its fingerprint), or the whole benchmark has to run again."""
    from ponder.verifier.probe import Probe

    out = RESULTS / f"{setup.result}.json"
    record = json.loads(out.read_text())
    shipped = Probe.load(setup.probe_file).fingerprint()
    if record["details"].get("probe_fingerprint") != shipped:
        raise SystemExit(f"{out.name} describes probe {record['details'].get('probe_fingerprint')}, not the one beside it "
                         f"({shipped}): run the benchmark in full")
    task = load_task(TASK)
    keys, details = beam_figures(setup, {item_id(p) for p in task.problems(limit, SEED)})
    headline = {k: v for k, v in record.items() if k not in META} | keys
    # the rest was measured at an earlier commit: say which, once
    measured = record["details"].get("measured", {k: record[k] for k in ("commit", "date", "machine")})
    return write_result(setup.result, headline, models_used=[setup.model], seeds=record["seeds"],
                        details=record["details"] | details | {"measured": measured})


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(SETUPS), default=SMALL, help="whose probe (default: %(default)s)")
    ap.add_argument("--draw", action="store_true", help=f"draw {SMALL}'s training programs first (resumable)")
    ap.add_argument("--limit", type=int, default=LIMIT, help="headline items judged on (the first N)")
    ap.add_argument("--beam-only", action="store_true",
                    help="only rewrite the beam figures (bench/scaling's beam phase) of the committed result; read nothing")
    args = ap.parse_args()
    setup = SETUPS[args.model]
    if args.beam_only:
        print(refresh_beam(setup, args.limit))
        return
    if busy := busy_machine_warning():
        print(f"warning: {busy}", file=sys.stderr)
    store = Store(RESULTS / "scaling.sqlite")
    if args.draw:
        if setup.model != SMALL:
            raise SystemExit(f"{setup.model}'s training programs are bench/training's draws: python -m bench.training --stages draws")
        draw_training(store)
    judge(store, setup, args.limit)


def judge(store: Store, setup: Setup, limit: int) -> None:
    """Read the training and test programs through the model, fit the probes, judge them on the headline items and
    write the result, the figure and the probe."""
    model, k_max, budgets = setup.model, setup.test_programs, setup.budgets
    task = load_task(TASK)
    test_items = {item_id(p) for p in task.problems(limit, SEED)}
    questions = {p.question for p in task.problems(limit, SEED)}
    train_store = store if setup.train_db == RESULTS / "scaling.sqlite" else Store(setup.train_db)
    training = stored_programs(train_store, setup.train_run, model, setup.train_params)
    if not training:
        raise SystemExit(f"no training programs of {model} in run {setup.train_run!r} of {setup.train_db}")
    overlap = sum(1 for _, r in training if r["question"] in questions)
    if overlap:
        raise SystemExit(f"{overlap} training programs answer a headline question: the probe would not be held out")
    drawn = stored_programs(store, RUN, model, frozenset({SAMPLED_PAL}), test_items)
    counts = defaultdict(int)
    for _, r in drawn:
        counts[r["item"]] += 1
    drawn = [pr for pr in drawn if counts[pr[1]["item"]] >= k_max and pr[1]["idx"] < k_max]
    if not drawn:
        raise SystemExit(f"no headline item has {k_max} stored programs of {model}: run bench.scaling's phase that draws them")
    gen = open_generator(model)
    try:
        train_x = hidden_states(gen, training)
        test_x = hidden_states(gen, drawn)
        sha = gen.model_sha256
    finally:
        gen.close()
    feats = Features(train_x, np.array([1.0 if r["correct"] > 0 else 0.0 for _, r in training]), [r["item"] for _, r in training],
                     tuple("pal" for _ in training), tuple(r["key"] for _, r in training))
    n_train_items = len(set(feats.items))
    source = (f"bench/verifier.py: run {setup.train_run!r} of bench/results/{setup.train_db.name} ({len(feats.y)} PAL programs of "
              f"{n_train_items} {TASK} items: {setup.train_note})")
    variants = {seeing: train(feats, model_sha256=sha, model_name=model, sees_answer=seeing,
                              trained_on=source + (", their states and printed answers" if seeing else ", their states"))
                for seeing in (False, True)}
    # what ships is chosen on the training items alone (each variant's AUROC on a held-out quarter of them), never
    # on the headline items it is then judged on
    probe = max(variants.values(), key=lambda p: p.metrics.get("heldout_auroc") or 0.0)
    centroid = train(feats, model_sha256=sha, model_name=model, kind="centroid", trained_on="centroids")
    paths = [r for _, r in drawn]
    labels = [1.0 if p["correct"] > 0 else 0.0 for p in paths]
    items = [p["item"] for p in paths]
    test_answers = [p["key"] for p in paths]
    by_variant = {seeing: p.score(p.features(test_x, test_answers)).tolist() for seeing, p in variants.items()}
    scores = {"probe": by_variant[probe.sees_answer], "centroid": centroid.score(test_x).tolist(),
              "confidence": [float(np.exp(p["confidence"])) if p["confidence"] is not None else 0.0 for p in paths],
              "probe_hidden": by_variant[False], "probe_answer": by_variant[True]}  # both variants, whichever ships
    mlp = mlp_scores(probe.features(feats.x, feats.answers), feats.y, probe.features(test_x, test_answers))
    if mlp is not None:
        scores["mlp"] = mlp
    voting = [i for i, p in enumerate(paths) if p["key"] is not None]
    aurocs = {}
    for name, sc in scores.items():
        aurocs[name] = {"auroc": round(auroc(sc, labels), 4), "ci": item_auroc_ci(sc, labels, items),
                        "voting_auroc": round(auroc([sc[i] for i in voting], [labels[i] for i in voting]), 4),
                        **within_item_auroc(sc, labels, items, voting)}
    rows, _ = selections(paths, scores, budgets)
    acc = {(r["selector"], r["budget"]): r["accuracy"] for r in rows}
    curve = []
    train_items = sorted(set(feats.items), key=lambda it: int(it.split("-")[-1]))
    for k in sorted({15, 30, 60, 120, n_train_items}):
        keep = set(train_items[:k])
        mask = np.array([it in keep for it in feats.items])
        if k > n_train_items or len(set(feats.y[mask].tolist())) < 2:
            continue
        sub = Features(feats.x[mask], feats.y[mask], [it for it, m in zip(feats.items, mask, strict=True) if m], (),
                       tuple(a for a, m in zip(feats.answers, mask, strict=True) if m))
        p_k = train(sub, model_sha256=sha, model_name=model, trained_on=f"first {k} items", sees_answer=probe.sees_answer)
        s_k = p_k.score(p_k.features(test_x, test_answers)).tolist()
        sel, _ = selections(paths, {"probe": s_k}, budgets)
        curve.append({"training_items": k, "training_paths": int(mask.sum()), "auroc": round(auroc(s_k, labels), 4),
                      "voting_auroc": round(auroc([s_k[i] for i in voting], [labels[i] for i in voting]), 4),
                      f"probe_weighted_{k_max}_accuracy": next(r["accuracy"] for r in sel if r["selector"] == "probe_weighted" and r["budget"] == k_max)})
    judged = json.loads((RESULTS / "scaling.json").read_text())["details"].get("judge", {}).get("auroc") if model == SMALL else None
    m_k, w_k, p_k_ = acc[("majority", k_max)], acc[("probe_weighted", k_max)], acc[("pass", k_max)]
    beam_keys, beam_details = beam_figures(setup, test_items)
    headline = {
        "model": model,
        "probe_auroc": aurocs["probe"]["auroc"], "probe_auroc_ci": aurocs["probe"]["ci"],
        "probe_voting_auroc": aurocs["probe"]["voting_auroc"], "probe_within_item_auroc": aurocs["probe"]["within_item_auroc"],
        "confidence_within_item_auroc": aurocs["confidence"]["within_item_auroc"], "centroid_auroc": aurocs["centroid"]["auroc"],
        "confidence_auroc": aurocs["confidence"]["auroc"], "mlp_auroc": aurocs.get("mlp", {}).get("auroc"),
        "judge_auroc": judged,
        f"probe_weighted_best_of_n_{k_max}_accuracy": w_k, f"probe_best_of_n_{k_max}_accuracy": acc[("probe_best_of_n", k_max)],
        f"majority{k_max}_accuracy": m_k, f"pass_at_{k_max}": p_k_,
        "gap_closed": round((w_k - m_k) / (p_k_ - m_k), 4) if p_k_ > m_k else None,
        **beam_keys,
        "probe_sees_answer": probe.sees_answer,
        "probe_hidden_auroc": aurocs["probe_hidden"]["auroc"],
        "probe_hidden_within_item_auroc": aurocs["probe_hidden"]["within_item_auroc"],
        f"probe_hidden_weighted_{k_max}_accuracy": acc[("probe_hidden_weighted", k_max)],
        "probe_hidden_heldout_auroc_in_training": variants[False].metrics.get("heldout_auroc"),
        "probe_answer_auroc": aurocs["probe_answer"]["auroc"],
        "probe_answer_within_item_auroc": aurocs["probe_answer"]["within_item_auroc"],
        f"probe_answer_weighted_{k_max}_accuracy": acc[("probe_answer_weighted", k_max)],
        "probe_answer_heldout_auroc_in_training": variants[True].metrics.get("heldout_auroc"),
        "training_items": n_train_items, "training_paths": len(feats.y), "training_right": int(feats.y.sum()),
        "probe_heldout_auroc_in_training": probe.metrics.get("heldout_auroc"),
        "test_items": len(set(items)), "test_paths": len(paths), "test_right": int(sum(labels)),
    }
    fingerprint = save_probe(store, probe, setup)
    figure = draw_figure(scores, labels, aurocs, rows, RESULTS / f"{setup.result}.png", model, budgets)
    out = write_result(setup.result, headline, models_used=[model], seeds=[SEED, TRAIN_SEED],
                       details={"probe_fingerprint": fingerprint,  # the probe measured, as shipped
                                "aurocs": aurocs, "rows": rows, "learning_curve": curve, "voting_paths": len(voting),
                                "probe_metrics": probe.metrics, "centroid_metrics": centroid.metrics,
                                "training": {"db": setup.train_db.name, "run": setup.train_run, "seed": TRAIN_SEED,
                                             "params": [json.loads(p) for p in sorted(setup.train_params)], "note": setup.train_note},
                                "test": {"run": RUN, "seed": SEED, "params": json.loads(SAMPLED_PAL), "programs_per_item": k_max,
                                         "phase": setup.probe_phase - 1},
                                "judge_note": "the self-judge's AUROC is on the 0.5B model's chain-of-thought paths (phase 4), "
                                              "the probe's on its programs (phase 12): different paths, the same model"
                                              if model == SMALL else "the self-judge was measured on the 0.5B model only",
                                **beam_details})
    print(json.dumps(headline, indent=2))
    for r in rows:
        print(f"{r['selector']:<22} @{r['budget']:>2}: {r['accuracy']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]")
    print(f"wrote {out} and {figure}")


if __name__ == "__main__":
    main()
