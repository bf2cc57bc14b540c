"""Each search strategy's defining logic, proved on a scripted generator and a scripted scorer."""

import asyncio
import math
import time
import zlib

import pytest

from ponder.errors import InvalidRequest
from ponder.strategies import parse_spec, run
from ponder.accounting import charge
from ponder.strategies.tree import Node, backup, mcts_snapshots, select_leaf, uct
from ponder.testing import ScriptedGenerator, ScriptedScorer
from ponder.types import Budget, Problem, Usage

P = Problem("What is x?")
D = "\n\n"


def go(coro):
    return asyncio.run(coro)


def prefixes(gen, call):
    return [(r.prefix, r.n) for r in gen.calls[call]]


# -- outcome strategies ---------------------------------------------------------------------------------------

def test_best_of_n_returns_the_highest_scored_and_falls_back_to_the_vote():
    gen = ScriptedGenerator(["The answer is 1", "The answer is 2", "The answer is 1"])
    scorer = ScriptedScorer(outcome=lambda t: {"The answer is 1": 0.2, "The answer is 2": 0.7}[t])
    r = go(run("best_of_n?n=3", P, gen, scorer=scorer))
    assert r.answer == "2" and r.candidates[r.chosen].score == 0.7 and len(scorer.outcome_calls[0]) == 3
    r = go(run("best_of_n?n=3", P, ScriptedGenerator(["The answer is 1", "The answer is 2", "The answer is 1"]),
               scorer=ScriptedScorer()))
    assert r.answer == "1" and dict(r.extra)["fallback"].startswith("majority")


def test_weighted_best_of_n_sums_scores_per_answer():
    texts = ["The answer is 1"] * 3 + ["The answer is 2"]
    scorer = ScriptedScorer(outcome=lambda t: 0.2 if t.endswith("1") else 0.9)
    r = go(run("weighted_best_of_n?n=4", P, ScriptedGenerator(texts), scorer=scorer))
    assert r.answer == "2" and dict(r.votes) == pytest.approx({"2": 0.9, "1": 0.6})
    scorer = ScriptedScorer(outcome=lambda t: 0.4 if t.endswith("1") else 0.9)
    assert go(run("weighted_best_of_n?n=4", P, ScriptedGenerator(texts), scorer=scorer)).answer == "1"  # 1.2 > 0.9


def test_verified_sampling_stops_at_the_first_pass_and_counts_samples():
    texts = ["The answer is 1", "The answer is 2", "The answer is 5", "The answer is 3", "never drawn", "never drawn"]
    gen = ScriptedGenerator(texts)
    r = go(run("verified_sampling?batch=2&max_samples=6", P, gen, scorer=ScriptedScorer(outcome=lambda t: float(t.endswith("5")))))
    extra = dict(r.extra)
    assert r.answer == "5" and extra["samples_to_pass"] == 3 and extra["rounds"] == 2 and len(r.candidates) == 4
    gen = ScriptedGenerator(["The answer is 1"] * 10)
    r = go(run("verified_sampling?batch=4&max_samples=6", P, gen, scorer=ScriptedScorer(outcome=lambda t: 0.0)))
    assert not dict(r.extra)["passed"] and len(r.candidates) == 6 and r.stopped_by == "max_samples"
    assert [req.n for call in gen.calls for req in call] == [4, 2]


# -- beam search ----------------------------------------------------------------------------------------------

STEP_SCORES = {"r0": 0.1, "r1": 0.9, "r2": 0.5, "r3": 0.7, "r1.0": 0.8, "r1.1": 0.2, "r3.0": 0.3, "r3.1": 0.95,
               "The answer is 31": 0.99, "The answer is 10": 0.6}


def tree_script(request, i):
    """Step names follow the path: from prefix 'r1\\n\\n' the children are 'r1.0', 'r1.1'; at depth 2, an answer."""
    steps = [s for s in request.prefix.split(D) if s]
    if request.params.stop == ():  # final completion
        last = steps[-1].replace("r", "").replace(".", "")
        return f"The answer is {last}"
    name = f"r{i}" if not steps else f"{steps[-1]}.{i}"
    return name + D + "this text is after the stop and never seen"


def test_beam_keeps_exactly_the_top_k_partial_traces_per_step():
    gen = ScriptedGenerator(tree_script)
    scorer = ScriptedScorer(step=lambda s: STEP_SCORES.get(s, 0.0))
    r = go(run("beam?width=4&keep=2&max_depth=2", P, gen, scorer=scorer))
    assert prefixes(gen, 0) == [("", 4)]
    assert prefixes(gen, 1) == [("r1" + D, 2), ("r3" + D, 2)]  # the two best of r0..r3 (0.9, 0.7), width/keep = 2 each
    assert prefixes(gen, 2) == [("r3" + D + "r3.1" + D, 1), ("r1" + D + "r1.0" + D, 1)]  # best two of four: 0.95, 0.8
    assert len(gen.calls) == 3
    assert r.answer == "31" and r.candidates[r.chosen].steps == ("r3", "r3.1", "The answer is 31")
    assert dict(r.extra)["kept_per_depth"] == [2, 2]
    assert r.candidates[r.chosen].step_scores == (0.7, 0.95, 0.99)


def test_a_finished_path_tells_the_scorer_its_answer_and_an_open_one_none():
    seen: list[tuple[str, bool, str | None]] = []

    class Recording(ScriptedScorer):
        async def score_steps(self, problem, traces):
            seen.extend((t.steps[-1], t.complete, t.answer) for t in traces)
            return await super().score_steps(problem, traces)

    go(run("beam?width=4&keep=2&max_depth=2", P, ScriptedGenerator(tree_script), scorer=Recording(step=lambda s: STEP_SCORES.get(s, 0.0))))
    finished = {(last, answer) for last, complete, answer in seen if complete}
    assert ("The answer is 31", "31") in finished and ("The answer is 10", "10") in finished
    assert all(answer is None for _, complete, answer in seen if not complete)  # a step prefix has answered nothing


def test_beam_parameters_are_checked():
    with pytest.raises(InvalidRequest, match="width .* multiple of keep"):
        parse_spec("beam?width=5&keep=2")


def test_beam_sets_aside_finished_traces_and_respects_the_sample_budget():
    def script(request, i):
        if not request.prefix:
            return ["The answer is 4", "r1" + D, "r2" + D, "r3" + D][i]
        return "The answer is 9"

    gen = ScriptedGenerator(script)
    scorer = ScriptedScorer(step=lambda s: 0.99 if s == "The answer is 4" else 0.5)
    r = go(run("beam?width=4&keep=2&max_depth=4", P, gen, scorer=scorer, budget=Budget(max_samples=5)))
    assert r.answer == "4"
    assert sum(req.n for call in gen.calls for req in call) <= 5


# -- DVTS -----------------------------------------------------------------------------------------------------

def test_dvts_subtrees_expand_independently_and_keep_their_best_child():
    gen = ScriptedGenerator(tree_script)
    scorer = ScriptedScorer(step=lambda s: STEP_SCORES.get(s, 0.0))
    r = go(run("dvts?width=4&expand=2&max_depth=2", P, gen, scorer=scorer))
    assert prefixes(gen, 0) == [("", 2)]  # two subtrees, one head each: r0, r1
    assert prefixes(gen, 1) == [("r0" + D, 2), ("r1" + D, 2)]  # every subtree expands, even the weak r0
    # r0's children r0.0, r0.1 score 0: it keeps r0.0 (first); r1 keeps r1.0 (0.8)
    assert prefixes(gen, 2) == [("r0" + D + "r0.0" + D, 1), ("r1" + D + "r1.0" + D, 1)]
    assert dict(r.extra)["subtrees"] == 2 and len(r.candidates) == 2


# -- MCTS -----------------------------------------------------------------------------------------------------

def test_uct_prefers_unvisited_then_value_plus_exploration():
    parent = Node(visits=10)
    a, b, c = Node(visits=5, value_sum=4.0), Node(visits=1, value_sum=0.5), Node()
    assert uct(c, 10, 1.4, False) == math.inf
    assert uct(a, 10, 1.4, False) == pytest.approx(0.8 + 1.4 * math.sqrt(math.log(10) / 5))
    assert uct(b, 10, 1.4, False) == pytest.approx(0.5 + 1.4 * math.sqrt(math.log(10) / 1))
    assert uct(a, 10, 0.0, False) > uct(b, 10, 0.0, False)  # no exploration: pure value
    parent.children = [a, b]
    assert select_leaf(parent, 1.4, False)[-1] is b  # b's exploration bonus outweighs a's better mean
    assert uct(a, 10, 1.0, True) == pytest.approx(0.8 + 1.0 * 1.0 * math.sqrt(10) / 6)


def test_backup_adds_the_value_to_every_node_on_the_path():
    path = [Node(), Node(), Node()]
    backup(path, 0.5)
    backup(path[:2], 1.0)
    assert [n.visits for n in path] == [2, 2, 1] and [n.value_sum for n in path] == [1.5, 1.5, 0.5]


def test_mcts_expands_the_leaf_uct_selects_and_backs_up_values():
    gen = ScriptedGenerator(tree_script)
    scores = {"r0": 0.2, "r1": 0.6, "r1.0": 0.9, "r1.1": 0.1, "r0.0": 0.5, "r0.1": 0.5}
    scorer = ScriptedScorer(step=lambda s: scores.get(s, 0.3))
    r = go(run("mcts?iterations=3&expand=2&exploration=0&max_depth=5", P, gen, scorer=scorer))
    # iteration 1 expands the root; with c=0 selection is greedy on Q: r1 (0.6) next, then r1.0 (0.9)
    assert prefixes(gen, 0) == [("", 2)]
    assert prefixes(gen, 1) == [("r1" + D, 2)]
    assert prefixes(gen, 2) == [("r1" + D + "r1.0" + D, 2)]
    assert dict(r.extra)["root_visits"] == 6  # two new nodes per iteration, each backed up to the root
    # a large c sends the second iteration to the less valuable, equally visited sibling... both visited once:
    gen = ScriptedGenerator(tree_script)
    go(run("mcts?iterations=3&expand=2&exploration=100&max_depth=5", P, gen, scorer=scorer))
    assert prefixes(gen, 1) == [("r1" + D, 2)]  # tie in exploration: higher Q
    assert prefixes(gen, 2) == [("r0" + D, 2)]  # now r0 (1 visit) beats r1 (3 visits) on exploration


def test_mcts_answers_from_a_complete_trace():
    def script(request, i):
        steps = [s for s in request.prefix.split(D) if s]
        if request.params.stop == () or len(steps) >= 1:
            return "The answer is 8"
        return f"r{i}" + D

    r = go(run("mcts?iterations=4&expand=2", P, ScriptedGenerator(script), scorer=ScriptedScorer(step=lambda s: 0.5)))
    assert r.answer == "8" and all(c.finish_reason == "eos" for c in r.candidates)


# -- budget forcing -------------------------------------------------------------------------------------------

def test_budget_forcing_appends_wait_until_the_minimum_is_met():
    def script(request, i):
        return {"": "two words", "two words\n\nWait": " four more words here"}.get(request.prefix, "x")

    gen = ScriptedGenerator(script)
    r = go(run("budget_forcing?min_tokens=5&max_thinking_tokens=50&answer_tokens=4", P, gen))
    assert [req.prefix for call in gen.calls for req in call] == ["", "two words\n\nWait"]
    assert r.candidates[0].text == "two words\n\nWait four more words here"
    assert dict(r.extra)["waits"] == [1] and dict(r.extra)["thinking_tokens"] == [6]


def test_budget_forcing_truncates_at_the_maximum_and_forces_the_answer():
    def script(request, i):
        if request.prefix.endswith("The answer is"):
            assert request.params.temperature == 0 and request.params.max_tokens == 4
            return " 42"
        return "a b c d e f g h"

    gen = ScriptedGenerator(script)
    r = go(run("budget_forcing?min_tokens=0&max_thinking_tokens=3&answer_tokens=4", P, gen))
    assert gen.calls[0][0].params.max_tokens == 3
    assert r.candidates[0].text == "a b c\n\nThe answer is 42" and r.answer == "42"


def test_budget_forcing_gives_up_waiting_after_max_waits():
    gen = ScriptedGenerator(lambda req, i: "ok")
    r = go(run("budget_forcing?min_tokens=100&max_thinking_tokens=200&max_waits=2", P, gen))
    assert r.candidates[0].text.count("Wait") == 2 and len(gen.calls) == 3


# -- self-refine ----------------------------------------------------------------------------------------------

def test_self_refine_revises_and_keeps_the_best_scored_version():
    gen = ScriptedGenerator(["The answer is 1", "The answer is 2", "The answer is 3"])
    scorer = ScriptedScorer(outcome=lambda t: {"1": 0.1, "2": 0.8, "3": 0.4}[t[-1]])
    r = go(run("self_refine?rounds=2", P, gen, scorer=scorer))
    assert [c.answer for c in r.candidates] == ["1", "2", "3"] and r.answer == "2"
    second_prompt = gen.calls[1][0].prompt.messages[-1].content
    assert "The answer is 1" in second_prompt and "Check every step" in second_prompt
    assert "The answer is 2" in gen.calls[2][0].prompt.messages[-1].content


# -- anytime MCTS ---------------------------------------------------------------------------------------------

class ChargingScorer(ScriptedScorer):
    """A scripted step scorer that charges each judged trace to the run, as the judge scorer does."""

    async def score_steps(self, problem, traces):
        charge(Usage(prompt_tokens=10 * len(traces), requests=len(traces)))
        return await super().score_steps(problem, traces)


def branching_script(request, i):
    """Steps that depend on the path, the request's seed and the sample index; answers only from depth 2 on, so
    early in the search no trace has finished and answering needs a completion."""
    steps = [s for s in request.prefix.split(D) if s]
    h = zlib.crc32(f"{request.prefix}|{request.params.seed}|{i}".encode())
    if request.params.stop == ():
        return f"so the answer is {h % 7}"
    if len(steps) >= 2 and h % 3 == 0:
        return f"The answer is {h % 5}"
    return f"s{h % 100} and more" + D + "never seen"


def test_mcts_snapshots_are_the_searches_asked_for_fewer_iterations():
    spec = "mcts?iterations=16&expand=2&max_depth=6&seed=3"
    info, params = parse_spec(spec)
    step = lambda s: (zlib.crc32(s.encode()) % 100) / 100  # noqa: E731
    gen = ScriptedGenerator(branching_script, seconds_per_token=0.01)  # a decoding step takes 10 ms
    started = time.monotonic()
    snaps = go(mcts_snapshots(P, gen, ChargingScorer(step=step), Budget(), params, (1, 2, 4, 8)))
    wall = time.monotonic() - started
    assert sorted(snaps) == [1, 2, 4, 8, 16]
    forked = 0
    for i in (1, 2, 4, 8, 16):
        alone = ScriptedGenerator(branching_script)
        r = go(run(spec, P, alone, scorer=ChargingScorer(step=step), iterations=i))
        s = snaps[i]
        assert [c.text for c in s.candidates] == [c.text for c in r.candidates] and s.chosen == r.chosen
        assert (s.answer, s.usage.completion_tokens, s.usage.prompt_tokens, s.usage.requests) == \
            (r.answer, r.usage.completion_tokens, r.usage.prompt_tokens, r.usage.requests)
        assert dict(s.params)["iterations"] == i and dict(s.extra)["scorer_usage"] == dict(r.extra)["scorer_usage"]
        # the plain search's requests are those of the one long search (until it stopped), save the completions
        # made to answer early, which the long search made on a copy and then dropped
        completions = [c for c in alone.calls if c[0].params.stop == ()]
        forked += len(completions) if i < 16 else 0
    assert forked > 0  # the script makes early answers need a completion: the copy was exercised
    long = ScriptedGenerator(branching_script)
    go(run(spec, P, long, scorer=ChargingScorer(step=step)))
    assert len(gen.calls) == len(long.calls) + forked
    # the early answers' completions (5 decoding steps each) were made on copies and are off the search's clock;
    # an early answer's time is not bounded by a later one's (it may need a completion the later one does not)
    assert wall - snaps[16].seconds >= 0.9 * forked * 5 * 0.01
    assert all(0 < snaps[i].seconds <= wall for i in snaps)


def test_mcts_snapshots_past_the_end_of_a_search_repeat_its_answer():
    info, params = parse_spec("mcts?iterations=50&expand=2&seed=1")
    gen = ScriptedGenerator(lambda req, i: "The answer is 8")  # every first step ends the trace: all terminal
    snaps = go(mcts_snapshots(P, gen, ScriptedScorer(step=lambda s: 0.5), Budget(max_samples=4), params, (2, 8, 32)))
    assert snaps[8].answer == snaps[32].answer == snaps[50].answer == "8"
    assert snaps[32].usage.completion_tokens == snaps[50].usage.completion_tokens and dict(snaps[32].params)["iterations"] == 32


@pytest.mark.parametrize("spec", ["beam?width=2&keep=1&max_depth=8", "dvts?width=2&expand=2&max_depth=8",
                                  "mcts?iterations=6&expand=2&max_depth=8"])
def test_max_tokens_bounds_each_whole_path_not_only_its_last_completion(spec):
    """Steps of 10 words under max_step_tokens=12 and max_tokens=25: every path stops at 25 tokens (cut off, finish
    length) instead of running 8 steps deep plus a final completion."""
    step = " ".join(["w"] * 10) + "\n\n"
    gen = ScriptedGenerator(lambda req, i: step * 10)
    scorer = ScriptedScorer(outcome=lambda text: 0.5, step=lambda s: 0.5)
    r = go(run(spec + "&max_step_tokens=12&max_tokens=25&seed=1", Problem("6 * 7?"), gen, scorer=scorer))
    assert r.candidates and all(c.tokens <= 25 for c in r.candidates), [c.tokens for c in r.candidates]
    asked = [q.params.max_tokens for call in gen.calls for q in call]
    assert max(asked) <= 12 and min(asked) >= 1


def test_beam_keeps_distinct_traces_and_gives_them_the_whole_width():
    def script(request, i):
        if not request.prefix:
            return ["same" + D, "same" + D, "other" + D, "worst" + D][i]
        return f"The answer is {len(request.prefix)}"

    scorer = ScriptedScorer(step=lambda s: {"same": 0.9, "other": 0.5, "worst": 0.1}.get(s, 0.8))
    gen = ScriptedGenerator(script)
    r = go(run("beam?width=4&keep=2&max_depth=3", P, gen, scorer=scorer))
    assert prefixes(gen, 1) == [("same" + D, 2), ("other" + D, 2)]  # the copy of "same" is passed over
    assert dict(r.extra)["kept_per_depth"] == [2]
    gen = ScriptedGenerator(lambda req, i: "same" + D if not req.prefix else "The answer is 1")
    go(run("beam?width=4&keep=2&max_depth=3", P, gen, scorer=scorer))
    assert prefixes(gen, 1) == [("same" + D, 4)]  # one distinct trace takes the whole width
    gen = ScriptedGenerator(script)
    go(run("beam?width=4&keep=2&max_depth=3&distinct=false", P, gen, scorer=scorer))
    assert prefixes(gen, 1) == [("same" + D, 2), ("same" + D, 2)]
