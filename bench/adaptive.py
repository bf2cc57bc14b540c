"""Adaptive compute on gsm_symbolic with the default model (Qwen2.5-Coder-0.5B), against fixed budgets, in one run
over the scaling benchmark's store:

- fixed ``majority`` at 8 and 16 samples, and the 1.5B model's ``greedy`` (both from bench/scaling.py's phases 1-2,
  computed here if missing);
- ``adaptive_majority`` (Adaptive-Consistency Beta and Dirichlet criteria, ESC window; and Beta with the greedy
  decode as the first vote and a give-up rule, the headline rule) with at most 16 samples, ``deepconf`` (at most
  16 traces, 4 of them warm-up, the rest in rounds of 4 until the confident vote reaches consensus, or all 16; a
  trace is cut where the engine would cut it, from the stored token logprobs), and
  ``auto`` at effort low / medium / high: these run for real on a ReplayGenerator over the very samples the fixed
  vote drew (sample i is the draw with seed + i), so each stops on the same stream the fixed budget sees, and
  its cost is the tokens of the samples it consumed;
- the cascade 0.5B ``auto?effort=low`` -> 1.5B ``greedy`` when the small model's winning share is below 0.75
  (``ponder.strategies.cascade``), on replays of the same stored draws;
- live, on a warm engine: ``auto?effort=medium`` with a deadline (``--deadline-s``) on the first ``--deadline-items``
  items: the share that returned within the deadline plus 10%; and without a deadline on the first
  ``--fidelity-items``: whether the live run drew the same samples and answer as its replay.

Every stopping rule is also swept across its own knob (``SWEEP``: Beta and Dirichlet thresholds, ESC windows,
give-up points, DeepConf keep percentages; and Beta with a cap of 4 or 8 samples, ``CAPPED``) to print the
accuracy-versus-tokens frontier of stopping on these draws, beside the fixed votes at 2, 4 and 8, and the cheapest
stopping rule within one point of majority@16: chosen in-sample (optimistic), and chosen on the first half of the
items and judged on the second.

It also fits the default policy (``ponder/policies/default.json``, used by ``auto?policy=default``) on the first
half of the items and evaluates it on the held-out second half beside the fixed choices.

Writes bench/results/adaptive.json (keys: fixed16_accuracy, adaptive_accuracy, adaptive_token_ratio,
auto_medium_accuracy, majority8_accuracy, auto_medium_token_ratio_vs_majority8, cascade_accuracy,
large_greedy_accuracy, deadline_within_110_percent).

    .venv/bin/python -m bench.adaptive [--limit 100] [--deadline-s 15] [--deadline-items 20] [--fidelity-items 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from bench.common import RESULTS, cpu_name, write_result
from bench.scaling import LARGE, MAX_TOKENS, RUN, SEED, SMALL, TASK
from ponder.backends import open_generator
from ponder.evaluation.metrics import paired_difference
from ponder.evaluation.report import aggregate, summarize
from ponder.evaluation.runner import EvalConfig, Evaluator, canonical_params, evaluate, item_id, spec_key
from ponder.evaluation.store import Key, Store
from ponder.strategies.cascade import cascade
from ponder.strategies.adaptive import scattered
from ponder.strategies.policy import DEFAULT_POLICY, Policy
from ponder.strategies.registry import get, parse_spec
from ponder.tasks import load_task
from ponder.types import Budget

MT = f"max_tokens={MAX_TOKENS}"
ADAPTIVE = {  # label -> spec
    "beta": f"adaptive_majority?{MT}&criterion=beta",
    "dirichlet": f"adaptive_majority?{MT}&criterion=dirichlet",
    "esc": f"adaptive_majority?{MT}&criterion=esc",
    # the greedy decode votes first (it is the stored greedy draw), then sampled draws 0, 1, ... of the fixed vote;
    # a vote whose first four answers all differ stops there
    "beta_greedy_first_give_up": f"adaptive_majority?{MT}&criterion=beta&greedy_first=true&give_up_after=4",
}
HEADLINE_ADAPTIVE = "beta_greedy_first_give_up"  # the row behind adaptive_accuracy / adaptive_token_ratio
DEEPCONF = {  # DeepConf online, 4 warm-up traces of at most 16: keep the top 90% (high) or 10% (low) of warm-up
    # confidence; rounds of 4 until the confident traces' weighted vote reaches consensus 0.95 (the paper's tau), or
    # with no consensus stop, all 16 (what the consensus stop saves)
    "deepconf_high": f"deepconf?{MT}&warmup=4&keep_percent=90",
    "deepconf_low": f"deepconf?{MT}&warmup=4&keep_percent=10",
    "deepconf_high_all16": f"deepconf?{MT}&warmup=4&keep_percent=90&consensus=none",
    "deepconf_low_all16": f"deepconf?{MT}&warmup=4&keep_percent=10&consensus=none",
}
AUTO = {e: f"auto?{MT}&effort={e}" for e in ("low", "medium", "high")}
# Every rule family across its own knob, replayed on the same draws: the accuracy-versus-tokens frontier of
# stopping, to read where (if anywhere) a rule stops early without losing the vote's accuracy. The knob is
# chosen here on the very items it is judged on, so the frontier's best point is optimistic by construction.
SWEEP = {
    **{f"beta@{t}": f"adaptive_majority?{MT}&criterion=beta&threshold={t}" for t in (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)},
    **{f"dirichlet@{t}": f"adaptive_majority?{MT}&criterion=dirichlet&threshold={t}" for t in (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)},
    **{f"esc@window={w}": f"adaptive_majority?{MT}&criterion=esc&window={w}" for w in (2, 3, 4, 6, 8)},
    **{f"beta@0.95+greedy_first+give_up_after={g}": f"adaptive_majority?{MT}&criterion=beta&greedy_first=true&give_up_after={g}"
       for g in (2, 4, 6, 8)},
    **{f"beta@{t}+greedy_first": f"adaptive_majority?{MT}&criterion=beta&greedy_first=true&threshold={t}" for t in (0.8, 0.95)},
    **{f"deepconf@keep={k}": f"deepconf?{MT}&warmup=4&keep_percent={k}" for k in (10, 30, 50, 70, 90)},
    **{f"deepconf@keep={k}+consensus={t}": f"deepconf?{MT}&warmup=4&keep_percent={k}&consensus={t}"
       for k in (50, 90) for t in (0.6, 0.8)},
    **{f"deepconf@keep={k}, all 16": f"deepconf?{MT}&warmup=4&keep_percent={k}&consensus=none" for k in (10, 50, 90)},
}
# The same rules with a lower cap (max_samples = the evaluator's budget, 4 or 8): rule -> (spec, cap). With the
# fixed votes at 2, 4 and 8 beside them on the frontier (reference points, never chosen): whether a saving comes
# from stopping early or only from drawing fewer paths.
CAPPED = {f"beta@{t} max {m}": (f"adaptive_majority?{MT}&criterion=beta&threshold={t}", m) for t in (0.8, 0.95) for m in (4, 8)}
FIXED_REFERENCE = (2, 4, 8)
CASCADE_SMALL = f"auto?{MT}&effort=low&seed={SEED}"
CASCADE_LARGE = {  # the 1.5B model's step, by name; majority4 replays bench/scaling.py phase 3's draws (seed 2024 + i)
    "greedy": f"greedy?{MT}",
    "majority4": f"majority?{MT}&n=4&seed={SEED}",
}
MIN_AGREEMENT = 0.75
POLICY_PROBE, POLICY_COST_WEIGHT = 4, 0.02  # accuracy given up per 1000 generated tokens
POLICY_OPTIONS = {"greedy", "majority"}  # what the shipped policy may choose (generated tokens are its cost measure)
POLICY_LABEL = "auto?effort=medium&policy=default"  # its row in the summary (effort is unused with a policy)


class Lazy:
    """Opens the live model only if a replay runs out of stored draws."""

    def __init__(self, model: str):
        self.model, self.name, self._gen = model, model, None

    async def generate(self, requests):
        if self._gen is None:
            self._gen = open_generator(self.model)
        return await self._gen.generate(requests)

    async def aclose(self):
        if self._gen is not None:
            await self._gen.aclose()


def spec_results(results: list, items: set[str], model: str, spec: str, budget: int) -> list:
    """The stored results of one exact strategy configuration over ``items``, from the run's ``results`` (read once
    by the caller)."""
    info, params = parse_spec(spec)
    pj = canonical_params(params.model_dump())
    rs = [r for r in results if r["model"] == model and r["strategy"] == info.name and r["params"] == pj
          and r["budget"] == budget and r["item"] in items]
    if not rs:
        raise SystemExit(f"no stored results for {spec} at budget {budget}")
    return rs


def spec_row(results: list, items: set[str], model: str, spec: str, budget: int) -> dict:
    """Accuracy [95% CI], tokens and seconds per problem of one exact strategy configuration over ``items``."""
    return {"strategy": spec, **aggregate(spec_results(results, items, model, spec, budget), seed=SEED)}


def minus_fixed16(results: list, items: set[str], spec: str, budget: int) -> list[float]:
    """[difference, low, high]: the 0.5B rule's accuracy minus majority@16's on the same ``items`` and the same
    draws, with the paired bootstrap 95% interval of the difference."""
    def correct(spec: str, budget: int) -> dict[str, float]:
        return {r["item"]: r["correct"] for r in spec_results(results, items, SMALL, spec, budget)}
    return [round(x, 4) for x in paired_difference(correct(spec, budget), correct(f"majority?{MT}", 16), seed=SEED)]


def unique_specs(*specs: str) -> tuple[str, ...]:
    """The specs less those that parse to the same strategy and parameters as an earlier one (one stored result each)."""
    seen, out = set(), []
    for spec in specs:
        info, params = parse_spec(spec)
        key = (info.name, canonical_params(params.model_dump()))
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return tuple(out)


def stopping_frontier(results: list, problems) -> dict:
    """Each swept rule's accuracy and token ratio against majority@16 on ``problems``, which rules are on the
    frontier, and the cheapest stopping rule (fixed votes excluded) within one point of majority@16's accuracy (chosen in-sample: an upper
    bound on what a rule fixed in advance would show). Then the honest version: that choice made on the first
    half of the items only, judged on the second half beside majority@16 there."""
    def frontier(items: set[str]) -> tuple[list[dict], dict | None, dict]:
        fixed16 = spec_row(results, items, SMALL, f"majority?{MT}", 16)
        greedy = spec_row(results, items, SMALL, f"greedy?{MT}", 1)
        tokens = fixed16["completion_tokens"]
        rules = [(name, spec, 16, True) for name, spec in SWEEP.items()] + \
                [(name, spec, cap, True) for name, (spec, cap) in CAPPED.items()] + \
                [(f"majority@{k} (fixed)", f"majority?{MT}", k, False) for k in FIXED_REFERENCE]
        points = [{"rule": name, "spec": spec, "budget": budget, "stopping_rule": eligible,
                   **{k: round(r[k], 4) for k in ("accuracy", "ci_low", "ci_high")},
                   "token_ratio": round(r["completion_tokens"] / tokens, 4)}
                  for name, spec, budget, eligible in rules
                  for r in [spec_row(results, items, SMALL, spec, budget)]]
        points.append({"rule": "greedy (no vote)", "spec": f"greedy?{MT}", "budget": 1, "stopping_rule": False,
                       **{k: round(greedy[k], 4) for k in ("accuracy", "ci_low", "ci_high")},
                       "token_ratio": round(greedy["completion_tokens"] / tokens, 4)})
        mark_frontier(points)
        best = cheapest_within([p for p in points if p["stopping_rule"]], fixed16["accuracy"] - 0.01)
        return sorted(points, key=lambda p: p["token_ratio"]), best, fixed16

    ids = [item_id(p) for p in problems]
    points, best, _ = frontier(set(ids))
    if best is not None:
        best["minus_fixed16"] = minus_fixed16(results, set(ids), best["spec"], best["budget"])
    half = len(ids) // 2
    _, chosen, _ = frontier(set(ids[:half]))
    held_out = None
    if chosen is not None:
        rest = set(ids[half:])
        r = spec_row(results, rest, SMALL, chosen["spec"], chosen["budget"])
        fixed16 = spec_row(results, rest, SMALL, f"majority?{MT}", 16)
        held_out = {"rule": chosen["rule"], "chosen_on_items": half, "held_out_items": len(rest),
                    **{k: round(r[k], 4) for k in ("accuracy", "ci_low", "ci_high")},
                    "fixed16_accuracy": round(fixed16["accuracy"], 4),
                    "minus_fixed16": minus_fixed16(results, rest, chosen["spec"], chosen["budget"]),
                    "token_ratio": round(r["completion_tokens"] / fixed16["completion_tokens"], 4)}
    return {"points": points, "cheapest_vote_within_1_point": best, "held_out": held_out}


def scattered_split(first_keys: dict[str, list], greedy_right: dict[str, float], fixed16_right: dict[str, float]) -> dict:
    """Where majority@16 earns its accuracy: items whose first answers (``first_keys``, in the order a stopping rule
    sees them) all differ against the rest, with greedy's and majority@16's right answers in each group. A rule
    that saves tokens must stop on the scattered items; what majority@16 gains there is what stopping costs.

    >>> scattered_split({"a": ["1", "2"], "b": ["3", "3"]}, {"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 1.0})
    {'scattered': {'items': 1, 'greedy_right': 0, 'fixed16_right': 1}, 'agreeing': {'items': 1, 'greedy_right': 1, 'fixed16_right': 1}}
    """
    out = {g: {"items": 0, "greedy_right": 0, "fixed16_right": 0} for g in ("scattered", "agreeing")}
    for item, keys in first_keys.items():
        group = out["scattered" if scattered(keys) else "agreeing"]
        group["items"] += 1
        group["greedy_right"] += int(greedy_right[item] > 0)
        group["fixed16_right"] += int(fixed16_right[item] > 0)
    return out


def scatter_report(store: Store, results: list, items: set[str], first: int = 4) -> dict:
    """``scattered_split`` on the stored draws, with the greedy-first stream of the headline rule: the greedy
    answer, then sampled draws 0, 1, ... (``first`` answers in all)."""
    greedy_key, sampled = {}, {}
    vote_temperature = parse_spec(f"majority?{MT}")[1].temperature  # the fixed vote's draws
    for s in store.all_samples(RUN):
        p = json.loads(s["params"])
        if s["model"] != SMALL or s["item"] not in items or p["max_tokens"] != MAX_TOKENS or p.get("prompt"):
            continue
        if p["temperature"] == 0:
            greedy_key[s["item"]] = s["key"]
        elif p["temperature"] == vote_temperature:
            sampled.setdefault(s["item"], {})[s["idx"]] = s["key"]
    first_keys = {i: [greedy_key[i]] + [sampled[i][k] for k in range(first - 1)] for i in items}
    right = lambda spec, budget: {r["item"]: r["correct"] for r in spec_results(results, items, SMALL, spec, budget)}
    return {"first_answers": first, **scattered_split(first_keys, right(f"greedy?{MT}", 1), right(f"majority?{MT}", 16))}


def print_scatter(console: Console, sc: dict) -> None:
    s, a = sc["scattered"], sc["agreeing"]
    console.print(f"where majority@16 gains: on {s['items']} items the first {sc['first_answers']} answers (greedy, then "
                  f"samples) all differ: majority@16 right on {s['fixed16_right']}, greedy on {s['greedy_right']}; on the "
                  f"other {a['items']}: majority@16 right on {a['fixed16_right']}, greedy on {a['greedy_right']}")


def mark_frontier(points: list[dict]) -> list[dict]:
    """Sets ``on_frontier``: no other point is at least as accurate at a lower token ratio, or more accurate at
    the same one.

    >>> pts = mark_frontier([{"accuracy": .2, "token_ratio": .1}, {"accuracy": .2, "token_ratio": .5}, {"accuracy": .3, "token_ratio": .5}])
    >>> [p["on_frontier"] for p in pts]
    [True, False, True]
    """
    for p in points:
        p["on_frontier"] = not any(
            q is not p and ((q["accuracy"] >= p["accuracy"] and q["token_ratio"] < p["token_ratio"])
                            or (q["accuracy"] > p["accuracy"] and q["token_ratio"] <= p["token_ratio"]))
            for q in points)
    return points


def cheapest_within(points: list[dict], floor: float) -> dict | None:
    """The point with the lowest token ratio among those at least ``floor`` accurate (None if none is).

    >>> cheapest_within([{"accuracy": .25, "token_ratio": .3}, {"accuracy": .26, "token_ratio": .9}], .25)["token_ratio"]
    0.3
    >>> cheapest_within([{"accuracy": .2, "token_ratio": .3}], .25) is None
    True
    """
    close = [p for p in points if p["accuracy"] >= floor - 1e-9]
    return min(close, key=lambda p: p["token_ratio"]) if close else None


def print_frontier(console: Console, frontier: dict) -> None:
    console.print("stopping rules swept (in-sample), token ratio = tokens / majority@16's; * = on the frontier; "
                  "fixed votes and greedy are reference points, never chosen")
    for p in frontier["points"]:
        console.print(f"  {'*' if p['on_frontier'] else ' '} {p['rule']:<40} accuracy {p['accuracy']:.3f} "
                      f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}] at {p['token_ratio']:.2f}")
    b = frontier["cheapest_vote_within_1_point"]
    console.print("  cheapest stopping rule within 1 point of majority@16, chosen on all items: " +
                  (f"{b['rule']} at {b['token_ratio']:.2f} of its tokens, accuracy {b['accuracy']:.3f}, minus majority@16's "
                   f"{b['minus_fixed16'][0]:+.3f} (paired 95% CI [{b['minus_fixed16'][1]:+.3f}, {b['minus_fixed16'][2]:+.3f}])"
                   if b else "none"))
    h = frontier["held_out"]
    console.print("  the same choice made on the first half, judged on the second: " +
                  (f"{h['rule']}: accuracy {h['accuracy']:.3f} [{h['ci_low']:.3f}, {h['ci_high']:.3f}] against majority@16's "
                   f"{h['fixed16_accuracy']:.3f} on {h['held_out_items']} held-out items (difference {h['minus_fixed16'][0]:+.3f}, "
                   f"paired 95% CI [{h['minus_fixed16'][1]:+.3f}, {h['minus_fixed16'][2]:+.3f}]), at {h['token_ratio']:.2f} of its tokens"
                   if h else "no rule came within 1 point on the first half"))


def bin_label(b: dict, last: bool) -> str:
    """A policy bin's range of probe agreement (the last bin holds agreement 1 exactly).

    >>> bin_label({"max_agreement": 0.5}, False), bin_label({"max_agreement": 1.000000001}, True)
    ('agreement < 0.50', 'agreement = 1')
    """
    return "agreement = 1" if last else f"agreement < {b['max_agreement']:.2f}"


def cascade_params(large_spec: str) -> str:
    return canonical_params({"small": CASCADE_SMALL, "large": large_spec, "min_agreement": MIN_AGREEMENT})


async def run_cascades(store: Store, task, problems, cfg: EvalConfig, small: Lazy, large: Lazy, large_spec: str) -> None:
    ev = Evaluator(store, task, cfg)
    params_json = cascade_params(large_spec)
    for problem in problems:
        key = Key(RUN, task.name, item_id(problem), f"{SMALL}->{LARGE}", "cascade", params_json, SEED)
        if store.has_result(key, 1):
            continue
        s_gen = ev.replay(SMALL, small, problem)
        l_gen = ev.replay(LARGE, large, problem)
        r = await cascade(problem, s_gen, l_gen, small_spec=CASCADE_SMALL, large_spec=large_spec, min_agreement=MIN_AGREEMENT)
        scores = [task.score(problem, c.text) for c in r.candidates]
        store.put_result(key, 1, {
            "answer": r.answer, "reference": problem.answer, "correct": scores[r.chosen] if r.chosen is not None else 0.0,
            "prompt_tokens": r.usage.prompt_tokens, "cached_prompt_tokens": r.usage.cached_prompt_tokens,
            "completion_tokens": r.usage.completion_tokens, "seconds": r.seconds + s_gen.seconds + l_gen.seconds,
            "n_candidates": len(r.candidates), "n_correct": sum(1 for s in scores if s > 0),
            "stopped_by": "escalated" if dict(r.extra).get("escalated") else None})


async def live_checks(problems, deadline: float, fidelity_items: int, replayed: dict[str, tuple]) -> dict:
    """Live auto?effort=medium (the call `ponder ask --deadline-s` makes). First, without a deadline, each of the
    first ``fidelity_items`` items on a fresh engine: whether the live run drew the same samples and gave the same
    answer as its replay. Then, on one warm engine, each item with the deadline: the wall time of each call."""
    info, params = parse_spec(AUTO["medium"] + f"&seed={SEED}")
    fidelity = []
    for p in problems[:fidelity_items]:
        gen = open_generator(SMALL)
        try:
            r = await info.run(p, gen, None, Budget(), params)
        finally:
            await gen.aclose()
        answer, n, tokens = replayed.get(item_id(p), (None, None, None))
        fidelity.append({"item": item_id(p), "live_answer": r.answer, "replay_answer": answer,
                         "live_samples": len(r.candidates), "replay_samples": n,
                         "live_tokens": r.usage.completion_tokens, "replay_tokens": tokens})
    gen = open_generator(SMALL)
    walls, cut = [], 0
    try:
        await get("greedy").run(problems[0], gen, None, Budget(max_tokens=8), parse_spec("greedy?max_tokens=8")[1])  # warm-up
        for p in problems:
            t0 = time.monotonic()
            r = await info.run(p, gen, None, Budget(max_seconds=deadline), params)
            walls.append(time.monotonic() - t0)
            cut += r.stopped_by == "max_seconds"
    finally:
        await gen.aclose()
    within = sum(1 for w in walls if w <= deadline * 1.1)
    walls_sorted = sorted(walls)
    return {"deadline_s": deadline, "calls": len(walls), "within_110_percent": within / len(walls),
            "p50_s": walls_sorted[len(walls) // 2], "max_s": walls_sorted[-1], "stopped_by_deadline": cut,
            "fidelity": fidelity,
            "same_answer": sum(f["live_answer"] == f["replay_answer"] for f in fidelity),
            "same_samples_and_tokens": sum(f["live_samples"] == f["replay_samples"] and f["live_tokens"] == f["replay_tokens"] for f in fidelity)}


def ship_policy(store: Store, task, problems, workers: int, small: Lazy, large: Lazy) -> dict:
    """Fit the default policy on the first half of the items, save it as ponder/policies/default.json, and run
    ``auto?policy=default`` on the held-out second half, beside the fixed choices on the same items."""
    half = len(problems) // 2
    held_out = {item_id(p) for p in problems[half:]}
    # the shipped file is written by the product's own command, as a user would write theirs
    subprocess.run([sys.executable, "-m", "ponder", "policy", "fit", RUN, "--db", str(store.path), "--out", str(DEFAULT_POLICY),
                    "--model", SMALL, "--probe", str(POLICY_PROBE), "--cost-weight", str(POLICY_COST_WEIGHT),
                    "--strategies", ",".join(sorted(POLICY_OPTIONS)), "--first", str(half)], check=True)
    policy = Policy.load(str(DEFAULT_POLICY))
    spec = f"auto?{MT}&policy=default"
    store.delete_results(RUN, *spec_key(spec))  # the file may have changed since the last run: its results are stale
    cfg = EvalConfig(run=RUN, task=task.name, models=(SMALL,), strategies=(spec,), budgets=(1,), limit=len(problems),
                     seed=SEED, workers=workers)
    asyncio.run(evaluate(store, task, cfg, lambda m: small))
    held = summarize(store, RUN, seed=SEED, items=held_out)
    keep = [r for r in held if r["model"] == SMALL and r["strategy"] in ("greedy", "majority", "auto?effort=low",
                                                                          "auto?effort=medium", "auto?effort=high", POLICY_LABEL)]
    return {"fitted_on_items": half, "held_out_items": len(held_out), "probe": POLICY_PROBE, "cost_weight": POLICY_COST_WEIGHT,
            "bins": [b.__dict__ for b in policy.bins],
            "held_out": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in keep]}


class NoLive:
    """Refuses every live call: a replay-only look must not draw."""

    name = SMALL

    async def generate(self, requests):
        raise RuntimeError("this replay needs draws that are not stored yet")

    async def aclose(self):
        pass


def replay_only(store: Store, task, problems, console: Console) -> None:
    """The adaptive rules, DeepConf and auto on the longest prefix of items with greedy and all 16 draws stored,
    beside the fixed votes on the same items; results go to the store (they are what the full run would store),
    nothing else is written."""
    stored = store.results(RUN)
    done = {r["item"] for r in stored if r["model"] == SMALL and r["strategy"] == "majority" and r["budget"] == 16}
    done &= {r["item"] for r in stored if r["model"] == SMALL and r["strategy"] == "greedy"}
    prefix = []
    for p in problems:
        if item_id(p) not in done:
            break
        prefix.append(p)
    if not prefix:
        raise SystemExit("no item has its greedy and 16 draws stored yet (bench.scaling --phases 1)")
    items = {item_id(p) for p in prefix}
    replayed = unique_specs(*ADAPTIVE.values(), *DEEPCONF.values(), *SWEEP.values())
    capped = unique_specs(*(spec for spec, _ in CAPPED.values()))
    caps = tuple(sorted({cap for _, cap in CAPPED.values()}))
    for strategies, budgets in ((replayed, (16,)), (capped, caps), (tuple(AUTO.values()), (1,))):
        cfg = EvalConfig(run=RUN, task=task.name, models=(SMALL,), strategies=strategies, budgets=budgets,
                         limit=len(prefix), seed=SEED, workers=1)
        asyncio.run(evaluate(store, task, cfg, lambda m: NoLive()))
    results = store.results(RUN)
    fixed16 = spec_row(results, items, SMALL, f"majority?{MT}", 16)
    table = [("greedy", f"greedy?{MT}", 1), ("majority@8", f"majority?{MT}", 8), ("majority@16", f"majority?{MT}", 16)] + \
            [(k, v, 16) for k, v in {**ADAPTIVE, **DEEPCONF}.items()] + [(f"auto {e}", v, 1) for e, v in AUTO.items()]
    console.print(f"replay only, on the first {len(prefix)} items (all their 0.5B draws stored); nothing written; "
                  "the last column: accuracy minus majority@16's on the same items, paired 95% CI")
    for name, spec, budget in table:
        r, (d, lo, hi) = spec_row(results, items, SMALL, spec, budget), minus_fixed16(results, items, spec, budget)
        console.print(f"{name:<28} accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}], "
                      f"{r['completion_tokens']:.0f} tokens/problem = {r['completion_tokens'] / fixed16['completion_tokens']:.2f} of majority@16, "
                      f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    print_frontier(console, stopping_frontier(results, prefix))
    print_scatter(console, scatter_report(store, results, items))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--deadline-s", type=float, default=15.0)
    ap.add_argument("--deadline-items", type=int, default=20)
    ap.add_argument("--fidelity-items", type=int, default=3, help="items run live without a deadline, against the replay")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--refresh", action="store_true",
                    help="replay every stopping rule, auto and the cascades again (their stored rows are dropped first): "
                         "after a change in how answers are read, so every row reads them alike")
    ap.add_argument("--replay-only", action="store_true",
                    help="a look while the draws are still being made: replay the adaptive rules on the first items "
                         "whose 0.5B draws are all stored (never the live model), print, write nothing")
    args = ap.parse_args()
    console = Console(width=150)
    store = Store(RESULTS / "scaling.sqlite")
    task = load_task(TASK)
    problems = list(task.problems(args.limit, SEED))
    if args.replay_only:
        return replay_only(store, task, problems, console)
    items = {item_id(p) for p in problems}
    if args.refresh:
        specs = unique_specs(*ADAPTIVE.values(), *DEEPCONF.values(), *SWEEP.values(), *(spec for spec, _ in CAPPED.values()),
                             *AUTO.values())
        dropped = sum(store.delete_results(RUN, *spec_key(spec)) for spec in specs)
        dropped += sum(store.delete_results(RUN, "cascade", cascade_params(large_spec)) for large_spec in CASCADE_LARGE.values())
        console.print(f"dropped {dropped} replayed rows: replaying them again")
    small, large = Lazy(SMALL), Lazy(LARGE)
    # escalating to the 1.5B model's majority@4 needs its draws (bench/scaling.py --phases 3): replayed when stored
    # for every item, else left out rather than drawn here
    large_maj4 = {r["item"] for r in store.results(RUN) if r["model"] == LARGE and r["strategy"] == "majority" and r["budget"] == 4}
    cascades = ["greedy"] + (["majority4"] if items <= large_maj4 else [])

    async def grid():
        for model, strategies, budgets in (
            (SMALL, (f"greedy?{MT}", f"majority?{MT}"), (1, 2, 4, 8, 16)),
            (LARGE, (f"greedy?{MT}",), (1,)),
            (SMALL, unique_specs(*ADAPTIVE.values(), *DEEPCONF.values(), *SWEEP.values()), (16,)),
            (SMALL, unique_specs(*(spec for spec, _ in CAPPED.values())), tuple(sorted({cap for _, cap in CAPPED.values()}))),
            (SMALL, tuple(AUTO.values()), (1,)),
        ):
            cfg = EvalConfig(run=RUN, task=task.name, models=(model,), strategies=strategies, budgets=budgets,
                             limit=args.limit, seed=SEED, workers=args.workers)
            await evaluate(store, task, cfg, lambda m: small if m == SMALL else large)
        cfg = EvalConfig(run=RUN, task=task.name, models=(SMALL,), strategies=(), limit=args.limit, seed=SEED)
        for name in cascades:
            await run_cascades(store, task, problems, cfg, small, large, CASCADE_LARGE[name])

    asyncio.run(grid())
    policy_report = ship_policy(store, task, problems, args.workers, small, large)
    rows = summarize(store, RUN, seed=SEED, items=items)

    def row(model: str, strategy: str, budget: int) -> dict:
        [r] = [r for r in rows if r["model"] == model and r["strategy"] == strategy and r["budget"] == budget]
        return r

    fixed16, maj8 = row(SMALL, "majority", 16), row(SMALL, "majority", 8)
    results = store.results(RUN)
    adaptive = {k: spec_row(results, items, SMALL, spec, 16) for k, spec in ADAPTIVE.items()}
    deepconf = {k: spec_row(results, items, SMALL, spec, 16) for k, spec in DEEPCONF.items()}
    auto = {e: row(SMALL, f"auto?effort={e}", 1) for e in AUTO}
    def cascade_row(name: str) -> dict:
        params = cascade_params(CASCADE_LARGE[name])
        rs = [r for r in results if r["strategy"] == "cascade" and r["params"] == params and r["item"] in items]
        return {**aggregate(rs, seed=SEED), "escalated": sum(1 for r in rs if r["stopped_by"] == "escalated")}

    casc = {name: cascade_row(name) for name in cascades}
    frontier = stopping_frontier(results, problems)
    scatter = scatter_report(store, results, items)
    large_greedy = row(LARGE, "greedy", 1)
    large_majority4 = row(LARGE, "majority", 4) if "majority4" in cascades else None

    replayed = {r["item"]: (r["answer"], r["n_candidates"], r["completion_tokens"]) for r in results
                if r["strategy"] == "auto" and r["item"] in items and json.loads(r["params"]).get("effort") == "medium"
                and not json.loads(r["params"]).get("policy")}
    dl = asyncio.run(live_checks(problems[: args.deadline_items], args.deadline_s, args.fidelity_items, replayed)) \
        if args.deadline_items else None

    def brief(r: dict) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}

    headline = {
        "items": fixed16["items"],
        "fixed16_accuracy": round(fixed16["accuracy"], 4),
        "adaptive_accuracy": round(adaptive[HEADLINE_ADAPTIVE]["accuracy"], 4),
        "adaptive_token_ratio": round(adaptive[HEADLINE_ADAPTIVE]["completion_tokens"] / fixed16["completion_tokens"], 4),
        "adaptive_rule": ADAPTIVE[HEADLINE_ADAPTIVE],
        "adaptive_minus_fixed16": minus_fixed16(results, items, ADAPTIVE[HEADLINE_ADAPTIVE], 16),
        "adaptive_beta_accuracy": round(adaptive["beta"]["accuracy"], 4),
        "adaptive_beta_token_ratio": round(adaptive["beta"]["completion_tokens"] / fixed16["completion_tokens"], 4),
        **{f"{k}_accuracy": round(r["accuracy"], 4) for k, r in deepconf.items()},
        **{f"{k}_token_ratio": round(r["completion_tokens"] / fixed16["completion_tokens"], 4) for k, r in deepconf.items()},
        # auto's effort levels were fixed (ponder/strategies/adaptive.py EFFORT) before these draws were made; low is
        # Beta stopping at 0.85 in rounds of 2 under a cap of 4: the cheapest pre-declared adaptive rule
        "auto_low_accuracy": round(auto["low"]["accuracy"], 4),
        "auto_low_token_ratio": round(auto["low"]["completion_tokens"] / fixed16["completion_tokens"], 4),
        "auto_low_minus_fixed16": minus_fixed16(results, items, AUTO["low"], 1),
        "auto_medium_accuracy": round(auto["medium"]["accuracy"], 4),
        "majority8_accuracy": round(maj8["accuracy"], 4),
        "auto_medium_token_ratio_vs_majority8": round(auto["medium"]["completion_tokens"] / maj8["completion_tokens"], 4),
        "cascade_accuracy": round(casc["greedy"]["accuracy"], 4),
        "cascade_to_majority4_accuracy": round(casc["majority4"]["accuracy"], 4) if "majority4" in casc else None,
        "large_majority4_accuracy": round(large_majority4["accuracy"], 4) if large_majority4 else None,
        "large_greedy_accuracy": round(large_greedy["accuracy"], 4),
        "deadline_within_110_percent": round(dl["within_110_percent"], 4) if dl else None,
        "cheapest_vote_within_1_point": frontier["cheapest_vote_within_1_point"],
        "held_out_stopping_rule": frontier["held_out"],
        "scattered_after_4": scatter,
    }
    table = [("0.5B majority@16", fixed16), ("0.5B majority@8", maj8)] + \
        [(f"0.5B adaptive_majority {k} (<=16)", r) for k, r in adaptive.items()] + \
        [(f"0.5B {k} (<=16 traces)", r) for k, r in deepconf.items()] + \
        [(f"0.5B auto effort={e}", r) for e, r in auto.items()] + \
        [(f"cascade 0.5B auto-low -> 1.5B {name} (escalated {c['escalated']}/{c['items']})", c) for name, c in casc.items()] + \
        [("1.5B greedy", large_greedy)] + ([("1.5B majority@4", large_majority4)] if large_majority4 else [])
    for name, r in table:
        console.print(f"{name:<58} accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] over {r['items']} items, "
                      f"{r['completion_tokens']:.0f} tokens/problem")
    console.print(f"default policy fitted on {policy_report['fitted_on_items']} items: " +
                  ", ".join(f"{bin_label(b, b is policy_report['bins'][-1])}: {b['strategy']}@{b['budget']}"
                            for b in policy_report["bins"]))
    for r in policy_report["held_out"]:
        console.print(f"  held out ({r['items']} items) {r['strategy']:<24} budget {r['budget']:>2}: accuracy {r['accuracy']:.3f} "
                      f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}], {r['completion_tokens']:.0f} tokens/problem")
    print_frontier(console, frontier)
    print_scatter(console, scatter)
    if dl:
        console.print(f"deadline {dl['deadline_s']} s, {dl['calls']} live calls: {dl['within_110_percent']:.0%} within +10% "
                      f"(p50 {dl['p50_s']:.1f} s, max {dl['max_s']:.1f} s, {dl['stopped_by_deadline']} cut by it); "
                      f"live vs replay on {len(dl['fidelity'])} items: same answer {dl['same_answer']}, "
                      f"same samples and tokens {dl['same_samples_and_tokens']}")
    out = write_result("adaptive", headline, models_used=[SMALL, LARGE], seeds=[SEED],
                       details={"task": TASK, "limit": args.limit, "max_tokens": MAX_TOKENS, "cpu": cpu_name(),
                                "cascade": {"small": CASCADE_SMALL, "large": {n: CASCADE_LARGE[n] for n in casc},
                                            "min_agreement": MIN_AGREEMENT,
                                            "escalated": {n: c["escalated"] for n, c in casc.items()}},
                                "rows": {name: brief(r) for name, r in table}, "stopping_frontier": frontier["points"], "deadline": dl, "default_policy": policy_report})
    console.print(headline)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
