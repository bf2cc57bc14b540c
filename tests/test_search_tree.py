"""The search tree a tree strategy hands back (Result.tree) and the events it reports while it runs (ponder.observe),
proved on the scripted generator: the explorer draws exactly these."""

import asyncio

from ponder import observe
from ponder.strategies import run
from ponder.testing import ScriptedGenerator, ScriptedScorer
from ponder.types import Problem

from tests.test_strategies_search import D, STEP_SCORES, tree_script

P = Problem("What is x?")


def go(coro):
    return asyncio.run(coro)


def by_id(tree):
    return {n.id: n for n in tree}


def test_beam_tree_has_every_node_the_cut_and_the_chosen_path():
    scorer = ScriptedScorer(step=lambda s: STEP_SCORES.get(s, 0.0))
    r = go(run("beam?width=4&keep=2&max_depth=2", P, ScriptedGenerator(tree_script), scorer=scorer))
    nodes = by_id(r.tree)
    assert r.tree[0].id == 0 and r.tree[0].parent is None and r.tree[0].step == ""
    assert len(r.tree) == 1 + dict(r.extra)["nodes"] == 1 + 4 + 4 + 2
    steps = {n.step: n for n in r.tree}
    # depth 1: r0 and r2 lost to r1 and r3; depth 2: r1.1 and r3.0 lost to r3.1 and r1.0
    assert {s for s, n in steps.items() if n.pruned} == {"r0", "r2", "r1.1", "r3.0"}
    assert [n.step for n in r.tree if n.chosen] == ["", "r3", "r3.1", "The answer is 31"]
    chosen_leaf = steps["The answer is 31"]
    assert chosen_leaf.candidate == r.chosen and chosen_leaf.finish == "eos" and chosen_leaf.score == 0.99
    assert nodes[steps["r3.1"].parent].step == "r3" and steps["r3.1"].depth == 2
    assert all(n.tokens > 0 for n in r.tree[1:])
    assert {n.candidate for n in r.tree if n.candidate is not None} == set(range(len(r.candidates)))


def test_mcts_tree_carries_visits_and_values_and_dvts_prunes_losing_siblings():
    scores = {"r0": 0.2, "r1": 0.6, "r1.0": 0.9, "r1.1": 0.1}
    scorer = ScriptedScorer(step=lambda s: scores.get(s, 0.3))
    r = go(run("mcts?iterations=3&expand=2&exploration=0&max_depth=5", P, ScriptedGenerator(tree_script), scorer=scorer))
    nodes = {n.step: n for n in r.tree}
    assert r.tree[0].visits == dict(r.extra)["root_visits"] == 6
    assert nodes["r1"].visits == 5 and nodes["r0"].visits == 1 and nodes["r0"].value == 0.2
    assert not any(n.pruned for n in r.tree)  # MCTS keeps every branch
    r = go(run("dvts?width=4&expand=2&max_depth=2", P, ScriptedGenerator(tree_script),
               scorer=ScriptedScorer(step=lambda s: STEP_SCORES.get(s, 0.0))))
    pruned = {n.step for n in r.tree if n.pruned}
    assert pruned == {"r1.1", "r0.0"} or pruned == {"r1.1", "r0.1"}  # in each subtree the weaker child is dropped
    assert sum(n.chosen for n in r.tree) == 4  # root, two steps, the completion


def test_the_events_rebuild_the_final_tree():
    """What the explorer shows live (node, scores, pruned, visits events) adds up to the tree in the Result."""
    seen = []
    with observe.listening(seen.append):
        r = go(run("mcts?iterations=6&expand=2&max_depth=3", P, ScriptedGenerator(tree_script),
                   scorer=ScriptedScorer(step=lambda s: STEP_SCORES.get(s, 0.4))))
    live = {0: {"parent": None}}
    for e in seen:
        if e["event"] == "node":
            live[e["id"]] = {"parent": e["parent"], "step": e["step"]}
        elif e["event"] == "scores":
            for i, s in e["nodes"]:
                live[i]["score"] = s
        elif e["event"] == "visits":
            for i, v, q in e["nodes"]:
                live[i]["visits"], live[i]["value"] = v, q
    final = by_id(r.tree)
    assert set(live) == set(final)
    for i, n in final.items():
        assert live[i]["parent"] == n.parent
        if i:
            assert live[i]["step"] == n.step and live[i]["score"] == n.score
            assert live[i].get("visits") == n.visits and live[i].get("value") == (None if n.value is None else round(n.value, 4))
    assert not observe.active()  # the listener is gone with the block


def test_the_tree_is_in_the_json_form_with_or_without_texts():
    r = go(run("beam?width=2&keep=1&max_depth=1", P, ScriptedGenerator(tree_script),
               scorer=ScriptedScorer(step=lambda s: STEP_SCORES.get(s, 0.0))))
    full, lean = r.to_dict(), r.to_dict(texts=False)
    assert [n["id"] for n in full["tree"]] == [n.id for n in r.tree] and full["tree"][1]["step"].startswith("r")
    assert "step" not in lean["tree"][1] and lean["tree"][1]["tokens"] == r.tree[1].tokens
    assert "tree" not in go(run("majority?n=2", P, ScriptedGenerator(["The answer is 1"] * 2))).to_dict()
    assert D not in full["tree"][1]["step"]


def test_adaptive_majority_reports_the_vote_after_each_round():
    seen = []
    texts = ["The answer is 3", "The answer is 4", "The answer is 3", "The answer is 3", "The answer is 3", "The answer is 3"]
    with observe.listening(seen.append):
        r = go(run("adaptive_majority?batch=2&max_samples=6&threshold=0.9&greedy_first=false", P, ScriptedGenerator(texts)))
    rounds = [e for e in seen if e["event"] == "votes"]
    assert [e["samples"] for e in rounds] == list(range(2, len(r.candidates) + 1, 2))
    assert rounds[0]["votes"] == {"3": 1.0, "4": 1.0} and rounds[-1]["votes"] == dict(r.votes)
    assert rounds[-1]["settled"] == dict(r.extra)["settled"][-1]
