"""The learned verifier, held out: a probe on Qwen2.5-Coder-0.5B's own hidden states, trained on its programs for
items of another seed (bench/scaling.py's ``bank`` run: 4 programs on 40 items of seed 7), judged on its programs
for the 100 headline items (phase 8's draws: 4 programs an item, the first greedy), which it never saw.

It reports how well each probe tells a right program from a wrong one (AUROC, with a bootstrap interval over
items), and what choosing with it does to the 4-program vote: the plain vote, the probe-weighted vote, the probe's
best program, against pass@4 (a perfect selector); ``gap_closed`` = (weighted vote - vote) / (pass@4 - vote). The
self-judge's AUROC on the chain-of-thought paths (scaling.json) is the reference the issue set.

    .venv/bin/python -m bench.verifier        # after bench.scaling phases 8 (and its bank); about 10 minutes on 2 cores

It also reports the probe's AUROC among the programs that printed an answer (``probe_voting_auroc``: the ones a
selector chooses among) and a learning curve (probes trained on the first 10, 20, 30 and all training items).

Writes bench/results/verifier.json (keys: probe_auroc, probe_voting_auroc, centroid_auroc, judge_auroc, majority4_accuracy,
probe_weighted_vote_4_accuracy, probe_best_of_4_accuracy, pass_at_4, gap_closed, training_items, training_paths,
test_items, test_paths) and bench/results/verifier.probe.json (the probe).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import RESULTS, write_result
from bench.scaling import BANK_RUN, RUN, SEED, SMALL, TASK
from ponder.backends import open_generator
from ponder.evaluation.metrics import bootstrap_ci
from ponder.evaluation.runner import item_id
from ponder.evaluation.store import Store
from ponder.strategies.base import vote
from ponder.tasks import load_task
from ponder.traces.export import stored_paths
from ponder.types import Candidate
from ponder.verifier.probe import auroc
from ponder.verifier.train import Features, read_features, train

LIMIT = 100


def item_auroc_ci(scores: list[float], labels: list[float], items: list[str], resamples: int = 1000) -> tuple[float, float]:
    """A 95% bootstrap interval for the AUROC, resampling items (an item's paths move together)."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by[it].append(i)
    keys = sorted(by)
    rng = np.random.default_rng(SEED)
    got = []
    for _ in range(resamples):
        idx = [i for k in rng.choice(keys, size=len(keys)) for i in by[k]]
        a = auroc([scores[i] for i in idx], [labels[i] for i in idx])
        if a is not None:
            got.append(a)
    return float(np.percentile(got, 2.5)), float(np.percentile(got, 97.5))


def test_paths(store: Store, items: set[str]) -> list[tuple[object, dict]]:
    """Phase 8's stored program draws (shots=4, its greedy set then its sampled set) on the headline items, in draw
    order, each with the prompt it is read under (PAL's, without the shots)."""
    rows = [(prompt, dict(s)) for _, prompt, s in stored_paths(store, RUN, model=SMALL)
            if s["item"] in items and '"shots": 4' in s["params"]]
    return sorted(rows, key=lambda ps: (ps[1]["item"], json.loads(ps[1]["params"])["temperature"] != 0, ps[1]["idx"]))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=LIMIT, help="headline items judged on (the first N)")
    ap.add_argument("--train-limit", type=int, default=None, help="at most this many training programs (a quick look)")
    args = ap.parse_args()
    store = Store(RESULTS / "scaling.sqlite")
    task = load_task(TASK)
    items = {item_id(p) for p in task.problems(args.limit, SEED)}
    gen = open_generator(SMALL)
    try:
        feats = asyncio.run(read_features(store, BANK_RUN, gen, model=SMALL, exclude_runs=(RUN,), limit=args.train_limit))
        probe = train(feats, model_sha256=gen.model_sha256, model_name=SMALL,
                      trained_on=f"bench/verifier.py: run {BANK_RUN!r} ({len(feats.y)} programs of {len(set(feats.items))} items)")
        centroid = train(feats, model_sha256=gen.model_sha256, model_name=SMALL, kind="centroid", trained_on="centroids")
        drawn = test_paths(store, items)
        x = np.vstack([asyncio.run(gen.read_hidden_states([p for p, _ in drawn[i:i + 8]], [r["text"] for _, r in drawn[i:i + 8]]))[0]
                       for i in range(0, len(drawn), 8)])
        paths = [r for _, r in drawn]
    finally:
        gen.close()
    test = Features(x, np.array([1.0 if p["correct"] > 0 else 0.0 for p in paths]), [p["item"] for p in paths])
    scores = probe.score(test.x).tolist()
    cscores = centroid.score(test.x).tolist()
    labels = test.y.tolist()
    by_item: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        by_item[p["item"]].append(i)
    maj, weighted, best, covered = [], [], [], []
    for item, idx in sorted(by_item.items()):
        cands = [Candidate(text=paths[i]["text"], answer=paths[i]["answer"], key=paths[i]["key"], tokens=paths[i]["tokens"],
                           finish_reason=paths[i]["finish"], confidence=paths[i]["confidence"]) for i in idx]
        right = {paths[i]["key"] for i in idx if paths[i]["correct"] > 0}
        plain = vote(cands)
        w = vote(cands, [scores[i] for i in idx])
        top = max(range(len(idx)), key=lambda j: (scores[idx[j]] if cands[j].key is not None else -1, -j))
        maj.append(float(plain.key in right))
        weighted.append(float(w.key in right))
        best.append(float(cands[top].key in right))
        covered.append(float(bool(right)))
    m, wv, b, cov = (sum(v) / len(v) for v in (maj, weighted, best, covered))
    # the selector's own question: among the programs that printed an answer (the rest abstain from every vote
    # anyway, and are easy negatives), does the probe rank right above wrong?
    voting = [i for i, p in enumerate(paths) if p["key"] is not None]
    voting_auroc = auroc([scores[i] for i in voting], [labels[i] for i in voting])
    # the learning curve: the same test programs judged by probes trained on the first k training items
    curve = []
    train_items = sorted(set(feats.items))
    for k in sorted({10, 20, 30, len(train_items)}):
        keep = {it for it in train_items[:k]}
        mask = np.array([it in keep for it in feats.items])
        if k > len(train_items) or len(set(feats.y[mask].tolist())) < 2:
            continue
        sub = Features(feats.x[mask], feats.y[mask], [it for it, m_ in zip(feats.items, mask, strict=True) if m_])
        p_k = train(sub, model_sha256=probe.model_sha256, model_name=SMALL, trained_on=f"first {k} items")
        s_k = p_k.score(test.x).tolist()
        curve.append({"training_items": k, "training_paths": int(mask.sum()), "auroc": round(auroc(s_k, labels) or 0.0, 4),
                      "voting_auroc": round(auroc([s_k[i] for i in voting], [labels[i] for i in voting]) or 0.0, 4)})
    judge = json.loads((RESULTS / "scaling.json").read_text())["details"].get("judge", {}).get("auroc")
    a = auroc(scores, labels)
    lo, hi = item_auroc_ci(scores, labels, test.items)
    headline = {
        "probe_auroc": round(a, 4) if a is not None else None, "probe_auroc_ci": [round(lo, 4), round(hi, 4)],
        "centroid_auroc": round(auroc(cscores, labels) or 0.0, 4), "judge_auroc": judge,
        "probe_voting_auroc": round(voting_auroc, 4) if voting_auroc is not None else None,
        "majority4_accuracy": round(m, 4), "probe_weighted_vote_4_accuracy": round(wv, 4),
        "probe_best_of_4_accuracy": round(b, 4), "pass_at_4": round(cov, 4),
        "gap_closed": round((wv - m) / (cov - m), 4) if cov > m else None,
        "training_items": len(set(feats.items)), "training_paths": int(len(feats.y)), "training_right": int(feats.y.sum()),
        "probe_heldout_auroc_in_training": probe.metrics.get("heldout_auroc"),
        "test_items": len(by_item), "test_paths": len(paths), "test_right": int(sum(labels)),
    }
    intervals = {k: [round(x, 4) for x in bootstrap_ci(v, seed=SEED)] for k, v in
                 (("majority4", maj), ("probe_weighted_vote_4", weighted), ("probe_best_of_4", best))}
    probe.save(RESULTS / "verifier.probe.json")
    out = write_result("verifier", headline, models_used=[SMALL], seeds=[SEED],
                       details={"intervals": intervals, "probe_metrics": probe.metrics, "centroid_metrics": centroid.metrics,
                                "rows": curve, "voting_paths": len(voting),
                                "judge_note": "the self-judge's AUROC is on the 0.5B model's chain-of-thought paths (phase 4), "
                                              "the probe's on its programs (phase 8): different paths, the same model"})
    print(json.dumps(headline, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
