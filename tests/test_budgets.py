"""Budgets that hold, for every registered strategy: max_tokens (generated tokens in all), max_samples (sampled
completions or tree expansions) and max_seconds (the deadline). When one runs out the strategy returns the best
answer found so far, marked with the axis that stopped it; never an error, never a late answer."""

import asyncio
import time

import pytest

from ponder.strategies.registry import available, parse_spec, run
from ponder.testing import ScriptedGenerator, ScriptedScorer
from ponder.types import Budget, Problem

PROBLEM = Problem("What is 6 * 7?")
# a long reasoning trace in steps, ending in an answer: 60 words
TRACE = "".join(f"Step {i}: we multiply and add carefully here.\n\n" for i in range(8)) + "The answer is 42"
SCORER = ScriptedScorer(outcome=lambda text: 0.6, step=lambda step: 0.6)
# strategy sizes big enough that each budget below is what stops them
SPECS = {
    "greedy": "greedy", "sample": "sample", "majority": "majority?n=16", "best_of_n": "best_of_n?n=16",
    "weighted_best_of_n": "weighted_best_of_n?n=16", "verified_sampling": "verified_sampling?max_samples=32&threshold=0.9",
    "beam": "beam?width=8&keep=2&max_depth=20", "dvts": "dvts?width=8&max_depth=20", "mcts": "mcts?iterations=64",
    "budget_forcing": "budget_forcing?min_tokens=200&max_waits=8", "self_refine": "self_refine?rounds=8",
    "adaptive_majority": "adaptive_majority?max_samples=32&threshold=0.999999", "deepconf": "deepconf?n=16",
    "auto": "auto?effort=high", "program": "program?n=16", "tir": "tir?n=16",
    # variants (name+variant): the greedy-first round has two requests, both inside the budget
    "adaptive_majority+greedy_first": "adaptive_majority?max_samples=32&threshold=0.999999&greedy_first=true&give_up_after=8",
    "deepconf+fixed": "deepconf?n=16&consensus=none",  # every trace after the warm-up in one call
    # the first model votes on 16 paths that agree, so it never escalates: its own budget is what is tested
    "cascade": "cascade?large=big&small_spec=majority%3Fn%3D16",
}


def routed(name: str, gen):
    """The generator a strategy that opens other models is given (the large model here: the same script)."""
    from ponder.backends.router import ModelRouter

    return ModelRouter(gen, lambda other: gen) if parse_spec(SPECS[name])[0].needs_models else gen


def test_every_registered_strategy_is_covered():
    assert set(available()) == {k.split('+')[0] for k in SPECS}


def sampled(gen: ScriptedGenerator) -> int:
    return sum(r.n for call in gen.calls for r in call)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_token_budget_holds(name):
    gen = ScriptedGenerator(lambda req, i: TRACE)
    r = asyncio.run(run(SPECS[name], PROBLEM, routed(name, gen), scorer=SCORER, budget=Budget(max_tokens=100)))
    assert r.usage.completion_tokens <= 100, r.usage
    assert r.text  # the best so far is there to read
    # one 60-token trace fits; every other strategy wants more and must say the budget stopped it
    assert r.stopped_by == (None if name in ("greedy", "sample") else "max_tokens"), r.stopped_by


@pytest.mark.parametrize("name", sorted(SPECS))
def test_sample_budget_holds(name):
    gen = ScriptedGenerator(lambda req, i: TRACE)
    r = asyncio.run(run(SPECS[name], PROBLEM, routed(name, gen), scorer=SCORER, budget=Budget(max_samples=3)))
    assert sampled(gen) <= 3, [[(q.n, q.params.max_tokens) for q in c] for c in gen.calls]
    assert r.text
    assert r.stopped_by == (None if name in ("greedy", "sample") else "max_samples"), r.stopped_by


@pytest.mark.parametrize("name", sorted(SPECS))
def test_deadline_holds_and_returns_the_best_so_far(name):
    # 60-word traces at 5 ms a token: one full trace takes 0.3 s, the deadline is 0.2 s
    gen = ScriptedGenerator(lambda req, i: TRACE, seconds_per_token=0.005)
    parse_spec(SPECS[name])  # the registry's first load (its imports) is not the strategy's time
    t0 = time.monotonic()
    r = asyncio.run(run(SPECS[name], PROBLEM, routed(name, gen), scorer=SCORER, budget=Budget(max_seconds=0.2)))
    took = time.monotonic() - t0
    assert took <= 0.2 * 1.1 + 0.05, took  # within the deadline plus 10% (and scheduling slack)
    assert r.candidates  # what was found is returned, not an error
    assert r.stopped_by == "max_seconds"
