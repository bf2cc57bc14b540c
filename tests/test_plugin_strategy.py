"""Adding a strategy is one registration: a plug-in package that declares an entry point in ``ponder.strategies``
runs through the library, the CLI, the server and the evaluator (its replay included) with no other edit."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import httpx
import pytest

from ponder.evaluation.runner import EvalConfig, evaluate
from ponder.evaluation.store import Store
from ponder.server import ServeConfig, create_app
from ponder import tasks
from ponder.strategies import registry
from ponder.testing import ArithmeticTask, RecordingGenerator

from test_server import Q, Served

PLUGIN = '''
"""A third-party strategy: draw one sample at a time until some answer has appeared twice (at most n)."""
from pydantic import Field

from ponder.strategies.base import Meter, SamplingOptions, fit_samples, result, to_candidate, vote
from ponder.strategies.registry import StrategyInfo
from ponder.types import GenerationRequest


class TwiceParams(SamplingOptions):
    n: int = Field(4, ge=1, le=64)


async def twice(problem, generator, scorer, budget, params):
    meter, candidates, seen = Meter(budget), [], set()
    while len(candidates) < params.n and not meter.exhausted():
        k, max_tokens = fit_samples(meter, 1, params.max_tokens)
        if not k:
            break
        seed = None if params.seed is None else params.seed + len(candidates)
        [c] = await generator.generate([GenerationRequest(problem.prompt(), n=1, deadline=meter.deadline,
                                                          params=params.sampling(max_tokens=max_tokens, seed=seed))])
        meter.add([c])
        cand = to_candidate(c.samples[0])
        candidates.append(cand)
        if cand.key is not None and cand.key in seen:
            break
        seen.add(cand.key)
    v = vote(candidates)
    return result("twice", params, meter, candidates, chosen=v.chosen, votes=v.votes)


TWICE = StrategyInfo("twice", twice, TwiceParams, "sample until an answer repeats", size_param="n", evaluation="replay")


from ponder.tasks import TaskInfo
from ponder.testing import ArithmeticTask


class Doubling(ArithmeticTask):
    """A third-party task family: `doubling:K` asks K sums."""

    name = "doubling"

    def __init__(self, k):
        self.k = k

    def problems(self, limit, seed):
        return super().problems(min(limit or self.k, self.k), seed)


DOUBLING = TaskInfo("doubling", lambda rest: Doubling(int(rest or 2)), "sums, K of them", "doubling:K")
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin")
    (root / "ponder_twice.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "ponder_twice-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ponder-twice\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ponder.strategies]\ntwice = ponder_twice:TWICE\n\n"
                                           "[ponder.tasks]\ndoubling = ponder_twice:DOUBLING\n")
    sys.path.insert(0, str(root))
    registry.available.cache_clear()
    tasks.available.cache_clear()
    yield root
    sys.path.remove(str(root))
    sys.modules.pop("ponder_twice", None)
    registry.available.cache_clear()
    tasks.available.cache_clear()


def test_a_task_family_is_one_registration_too(plugin):
    task = tasks.load_task("doubling:3")
    assert task.name == "doubling" and len(task.problems(None, 0)) == 3
    with pytest.raises(Exception, match="doubling:K"):
        tasks.load_task("nope")


def test_the_plugin_is_registered_and_runs_from_the_library(plugin, engine):
    from ponder.strategies import run
    from ponder.types import Problem

    assert "twice" in registry.available()
    r = asyncio.run(run("twice?n=3&max_tokens=24&seed=1", Problem("What is 2 + 3?"), engine))
    assert r.strategy == "twice" and 1 <= len(r.candidates) <= 3


def test_the_plugin_from_the_cli(plugin, smol_path):
    env = {**os.environ, "PYTHONPATH": str(plugin)}
    p = subprocess.run([sys.executable, "-m", "ponder", "ask", "What is 2 + 3?", "-m", "smollm2-135m", "-s", "twice?n=2",
                        "--max-tokens", "24", "--seed", "1", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["strategy"] == "twice"
    listed = subprocess.run([sys.executable, "-m", "ponder", "strategies"], capture_output=True, text=True, timeout=120, env=env)
    assert "twice" in listed.stdout


def test_the_plugin_from_the_server(plugin, engine):
    app = create_app(engine, ServeConfig(model_name="smol"))
    with Served(app) as s:
        for body in ({"model": "twice-2/smol"}, {"model": "smol", "ponder": {"strategy": "twice?n=2"}}):
            r = httpx.post(s.url + "/chat/completions", json={"messages": Q, "max_tokens": 24, **body}, timeout=120)
            assert r.status_code == 200, r.text
            assert r.json()["ponder"]["strategy"] == "twice"
        assert "twice/smol" in {m["id"] for m in httpx.get(s.url + "/models", timeout=10).json()["data"]}


def test_the_plugin_in_the_evaluator_replays_the_shared_samples(plugin, engine, tmp_path):
    store = Store(tmp_path / "plugin.sqlite")
    rec = RecordingGenerator(engine)
    base = dict(run="plug", task="arithmetic", models=("smol",), budgets=(1, 2), limit=2, seed=3, workers=2)
    asyncio.run(evaluate(store, ArithmeticTask(), EvalConfig(strategies=("majority?max_tokens=24",), **base), lambda m: rec))
    drawn = len(rec.calls)
    asyncio.run(evaluate(store, ArithmeticTask(), EvalConfig(strategies=("majority?max_tokens=24", "twice?max_tokens=24"), **base),
                         lambda m: rec))
    rows = [r for r in store.results("plug") if r["strategy"] == "twice"]
    assert sorted(r["budget"] for r in rows) == [1, 1, 2, 2]  # the size parameter is the budget axis
    assert len(rec.calls) == drawn  # every sample it asked for was served from majority's stored draws
    assert all(r["completion_tokens"] > 0 for r in rows)
