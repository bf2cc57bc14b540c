"""Difficulty-aware allocation (compute-optimal scaling, Snell et al. 2024): learn from a stored evaluation run
which strategy and budget pays best for questions of each difficulty, as seen online from cheap signals.

The signal is the agreement of the first ``probe`` samples (the winning answer's share among them): questions the
model answers consistently are easy. ``fit_policy`` bins the run's items by that signal and, per bin, picks the
(strategy, budget) with the highest ``accuracy - cost_weight * generated_tokens / 1000``. ``auto`` loads such a
policy (``auto?policy=PATH``): it draws the probe, looks up the bin, and spends what the bin's choice says.
"""

from __future__ import annotations

import json
from collections import defaultdict

from ponder.errors import InvalidRequest
from ponder.evaluation.store import Store

from ponder.strategies.policy import DEFAULT_POLICY, EDGES, Bin, Policy, probe_agreement  # noqa: F401 (re-exported)


def _bin_index(agreement: float) -> int:
    for i, edge in enumerate(EDGES):
        if agreement < edge:
            return i
    return len(EDGES)


def fit_policy(store: Store, run: str, *, model: str | None = None, probe: int = 4, cost_weight: float = 0.05,
               items: set[str] | None = None, strategies: set[str] | None = None) -> Policy:
    """Fit the per-difficulty choice on a stored run that includes sampling strategies (their shared samples give
    the probe signal), judging each option by its accuracy and its tokens as ``auto`` spends them, probe included;
    ``items`` restricts the fit to those task items (to hold the others out), ``strategies`` the options to those
    strategy names.

    Options are compared on the same questions: an option counts in a bin only if it has exactly one result for
    every item of the bin, so a strategy stored for a few items (a run still in progress) or in several variants
    (``adaptive_majority`` with two criteria; ``auto`` would run only its defaults) cannot win on a subset.
    """
    samples: dict[str, list[tuple[str | None, int]]] = defaultdict(list)
    for s in store.all_samples(run):
        p = json.loads(s["params"])  # the default prompt's sampled draws: what auto's probe draws
        if (model is None or s["model"] == model) and (items is None or s["item"] in items) \
                and p.get("temperature") != 0 and not p.get("prompt") and not p.get("shots"):
            samples[s["item"]].append((s["key"], s["tokens"]))
    if not samples:
        raise InvalidRequest(f"run {run!r} has no stored samples to read difficulty from: include majority in it")
    item_bin = {item: _bin_index(probe_agreement([k for k, _ in rows[:probe]])) for item, rows in samples.items()}
    probe_tokens = {item: sum(t for _, t in rows[:probe]) for item, rows in samples.items()}
    bin_items: dict[int, set[str]] = defaultdict(set)
    for item, b in item_bin.items():
        bin_items[b].add(item)
    # each option as `auto` would execute it after the probe: majority@k (k >= probe) reuses the probe's samples;
    # any other strategy runs after the probe, so it pays the probe's tokens too
    per: dict[int, dict[tuple[str, int], dict[str, list[tuple[float, int]]]]] = \
        defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in store.results(run):
        if (model is None or r["model"] == model) and r["item"] in item_bin and r["strategy"] not in ("auto", "cascade") \
                and (strategies is None or r["strategy"] in strategies):
            if r["strategy"] == "majority" and r["budget"] < probe:
                continue
            tokens = r["completion_tokens"] + (0 if r["strategy"] == "majority" else probe_tokens[r["item"]])
            per[item_bin[r["item"]]][(r["strategy"], r["budget"])][r["item"]].append((r["correct"], tokens))
    bins = []
    uppers = list(EDGES) + [1.0 + 1e-9]
    for i, upper in enumerate(uppers):
        options = {opt: [rs[0] for rs in by_item.values()] for opt, by_item in per.get(i, {}).items()
                   if set(by_item) == bin_items[i] and all(len(rs) == 1 for rs in by_item.values())}
        if not options:
            continue
        def value(kv):
            rows = kv[1]
            acc = sum(c for c, _ in rows) / len(rows)
            tok = sum(t for _, t in rows) / len(rows)
            return acc - cost_weight * tok / 1000, -tok
        (strategy, budget), rows = max(options.items(), key=value)
        bins.append(Bin(upper, strategy, budget, len(rows), sum(c for c, _ in rows) / len(rows), sum(t for _, t in rows) / len(rows)))
    return Policy(probe, cost_weight, tuple(bins), run)
