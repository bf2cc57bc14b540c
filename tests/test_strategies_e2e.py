"""Every registered strategy, end to end on the real SmolLM2 model through the embedded backend."""

import asyncio

import pytest

from ponder.strategies import available, run
from ponder.types import Budget, Problem

PROBLEM = Problem("Tom has 3 apples and buys 4 more. How many apples does he have?", answer="7")

SPECS = {
    "greedy": "greedy?max_tokens=48",
    "sample": "sample?max_tokens=48&seed=1",
    "majority": "majority?n=4&max_tokens=48&seed=1",
    "best_of_n": "best_of_n?n=3&max_tokens=48&seed=1",
    "weighted_best_of_n": "weighted_best_of_n?n=3&max_tokens=48&seed=1",
    "verified_sampling": "verified_sampling?batch=2&max_samples=4&max_tokens=48&seed=1",
    "beam": "beam?width=4&keep=2&max_depth=2&max_step_tokens=24&max_tokens=48&seed=1",
    "dvts": "dvts?width=4&expand=2&max_depth=2&max_step_tokens=24&max_tokens=48&seed=1",
    "mcts": "mcts?iterations=4&expand=2&max_depth=2&max_step_tokens=24&max_tokens=48&seed=1",
    "budget_forcing": "budget_forcing?min_tokens=40&max_thinking_tokens=64&max_waits=1&seed=1",
    "self_refine": "self_refine?rounds=1&max_tokens=48&seed=1",
    "adaptive_majority": "adaptive_majority?batch=2&max_samples=6&max_tokens=48&seed=1",
    "deepconf": "deepconf?warmup=2&n=4&max_tokens=48&window=8&seed=1",
    "auto": "auto?effort=low&max_tokens=48&seed=1",
    "program": "program?n=2&max_tokens=48&seed=1",
    "tir": "tir?n=2&max_tokens=48&seed=1",
    # the same model as the large one (a router hands back the engine itself): always escalates
    "cascade": "cascade?large=smol&small_spec=majority%3Fn%3D2%26max_tokens%3D32%26seed%3D1&large_spec=greedy%3Fmax_tokens%3D32"
               "&min_agreement=1.01",
}


def test_every_strategy_has_an_end_to_end_case():
    assert set(SPECS) == set(available())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_strategy_on_smollm2(engine, name):
    from ponder.backends.router import ModelRouter

    gen = ModelRouter(engine, lambda other: engine) if available()[name].needs_models else engine
    r = asyncio.run(run(SPECS[name], PROBLEM, gen))
    assert r.strategy == name and r.candidates
    assert r.usage.completion_tokens > 0 and r.usage.requests >= 1 and r.seconds > 0
    assert r.chosen is None or 0 <= r.chosen < len(r.candidates)
    if r.chosen is not None:
        assert r.answer == r.candidates[r.chosen].answer
    for c in r.candidates:
        assert c.text and c.tokens > 0


def test_tree_search_reuses_prefix_kv_on_the_embedded_backend(engine):
    r = asyncio.run(run("beam?width=4&keep=2&max_depth=3&max_step_tokens=24&max_tokens=48&seed=2", PROBLEM, engine))
    assert r.usage.cached_prompt_tokens > 0.5 * r.usage.prompt_tokens  # most of each prompt+prefix came from cache


def test_budgets_hold_on_the_real_model(engine):
    r = asyncio.run(run("majority?n=8&max_tokens=200&seed=3", PROBLEM, engine, budget=Budget(max_tokens=80)))
    assert r.usage.completion_tokens <= 80 and len(r.candidates) == 8
    r = asyncio.run(run("mcts?iterations=50&expand=2&max_step_tokens=24", PROBLEM, engine, budget=Budget(max_samples=6)))
    assert sum(1 for _ in r.candidates) >= 1 and dict(r.extra)["iterations"] < 50
