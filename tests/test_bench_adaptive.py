"""bench/adaptive.py's own logic: the swept rules parse, duplicates collapse, the frontier and the cheapest rule."""

import doctest

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
