"""bench/adaptive.py's own logic: the swept rules parse, duplicates collapse, the frontier and the cheapest rule."""

import doctest

import pytest

import bench.adaptive as adaptive
from ponder.strategies.registry import parse_spec


def test_the_doctests_of_the_frontier_helpers_pass():
    failed, tried = doctest.testmod(adaptive, optionflags=doctest.ELLIPSIS)
    assert tried >= 4 and failed == 0


def test_every_swept_rule_parses_and_runs_with_up_to_16_paths():
    for name, spec in adaptive.SWEEP.items():
        info, params = parse_spec(spec)
        assert info.name in ("adaptive_majority", "deepconf"), name
        assert (params.max_samples if info.name == "adaptive_majority" else params.n) == 16, name


def test_specs_that_parse_alike_are_replayed_once():
    beta_default = adaptive.ADAPTIVE["beta"]  # threshold 0.95 by default
    spelled_out = adaptive.SWEEP["beta@0.95"]
    assert beta_default != spelled_out
    assert adaptive.unique_specs(beta_default, spelled_out, adaptive.SWEEP["beta@0.9"]) == (beta_default, adaptive.SWEEP["beta@0.9"])


def test_the_frontier_keeps_only_undominated_rules_and_the_cheapest_close_vote_is_not_greedy():
    points = [{"rule": "greedy (no vote)", "accuracy": 0.25, "token_ratio": 0.06},
              {"rule": "a", "accuracy": 0.26, "token_ratio": 0.5},
              {"rule": "b", "accuracy": 0.24, "token_ratio": 0.4},
              {"rule": "c", "accuracy": 0.20, "token_ratio": 0.3}]
    adaptive.mark_frontier(points)
    assert [p["rule"] for p in points if p["on_frontier"]] == ["greedy (no vote)", "a"]
    votes = [p for p in points if p["rule"] != "greedy (no vote)"]
    assert adaptive.cheapest_within(votes, 0.26 - 0.01)["rule"] == "a"
    assert adaptive.cheapest_within(votes, 0.24 - 0.01)["rule"] == "b"


def test_capped_rules_are_adaptive_majority_under_a_cap_below_16_and_replay_once_per_spec():
    caps = set()
    for name, (spec, cap) in adaptive.CAPPED.items():
        info, _ = parse_spec(spec)
        assert info.name == "adaptive_majority" and cap < 16, name
        caps.add(cap)
    assert caps == {4, 8}
    specs = [spec for spec, _ in adaptive.CAPPED.values()]
    assert len(adaptive.unique_specs(*specs)) == len(set(specs)) == len(specs) // len(caps)


def test_minus_fixed16_pairs_items_and_refuses_a_rule_missing_some():
    from ponder.evaluation.runner import canonical_params

    def rows(spec, budget, correct):
        info, params = parse_spec(spec)
        return [{"model": adaptive.SMALL, "strategy": info.name, "params": canonical_params(params.model_dump()),
                 "budget": budget, "item": f"i{n}", "correct": c} for n, c in enumerate(correct)]
    fixed = f"majority?{adaptive.MT}"
    rule = adaptive.AUTO["low"]
    results = rows(fixed, 16, [1, 1, 0, 0]) + rows(rule, 1, [1, 0, 0, 1]) + rows(fixed, 8, [0, 0, 0, 0])
    items = {"i0", "i1", "i2", "i3"}
    d, lo, hi = adaptive.minus_fixed16(results, items, rule, 1)
    assert d == 0.0 and lo < 0 < hi  # one item lost, one gained: no difference on average, an interval around it
    assert adaptive.minus_fixed16(results, items, fixed, 8)[0] == -0.5  # the other budget's rows are not mixed in
    with pytest.raises(ValueError, match="paired items differ"):
        adaptive.minus_fixed16(rows(fixed, 16, [1, 1, 0, 0]) + rows(rule, 1, [1, 0, 0]), items, rule, 1)


def test_the_scatter_report_reads_the_greedy_first_stream_of_the_stored_draws(tmp_path):
    """Item a: greedy 5, samples 1 2 3 (all differ: scattered); item b: greedy 7, samples 7 ... (agreeing). Draws
    of another temperature are not the fixed vote's and are not read."""
    from ponder.evaluation.runner import canonical_params
    from ponder.evaluation.store import Key, Store

    store = Store(tmp_path / "s.sqlite")
    sampling = lambda t: canonical_params({"max_tokens": adaptive.MAX_TOKENS, "min_p": 0.0, "temperature": t, "top_k": 40, "top_p": 0.95})

    def draws(item, t, keys):
        store.put_samples(Key(adaptive.RUN, "t", item, adaptive.SMALL, "samples", sampling(t), adaptive.SEED),
                          [{"idx": i, "text": k, "answer": k, "key": k, "tokens": 1, "finish": "eos", "confidence": None,
                            "score": None, "correct": 0.0, "prompt_tokens": 1, "seconds": 0.0} for i, k in enumerate(keys)])
    draws("a", 0.0, ["5"]), draws("a", 0.7, ["1", "2", "3", "1"]), draws("a", 0.3, ["5", "5", "5"])
    draws("b", 0.0, ["7"]), draws("b", 0.7, ["8", "7", "9", "7"])

    def rows(spec, budget, correct):
        info, params = parse_spec(spec)
        return [{"model": adaptive.SMALL, "strategy": info.name, "params": canonical_params(params.model_dump()),
                 "budget": budget, "item": item, "correct": c} for item, c in correct.items()]
    results = rows(f"greedy?{adaptive.MT}", 1, {"a": 0, "b": 1}) + rows(f"majority?{adaptive.MT}", 16, {"a": 1, "b": 1})
    report = adaptive.scatter_report(store, results, {"a", "b"})
    assert report == {"first_answers": 4, "scattered": {"items": 1, "greedy_right": 0, "fixed16_right": 1},
                      "agreeing": {"items": 1, "greedy_right": 1, "fixed16_right": 1}}
