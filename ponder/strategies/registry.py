"""The one registry of strategies, shared by the library, the CLI, the server and the evaluator.

Built-in strategies are registered exactly as plug-ins are: as entry points in the group ``ponder.strategies``
(see ``pyproject.toml``), each naming a :class:`StrategyInfo`. A spec names a strategy and its parameters:

    majority                    defaults
    majority?n=16&temperature=0.8

>>> info, params = parse_spec("majority?n=4", {"temperature": "0.5"})
>>> info.name, params.n, params.temperature
('majority', 4, 0.5)
>>> parse_spec("majorty")
Traceback (most recent call last):
...
ponder.errors.InvalidRequest: unknown strategy 'majorty'; known strategies: ...beam, best_of_n, ...majority, mcts, sample, ...
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ponder.accounting import scorer_usage, with_scorer_usage
from ponder.errors import InvalidRequest
from ponder.protocols import Generator, Scorer
from ponder.specs import load_entry_points, split_spec, validate
from ponder.types import Budget, Problem, Result

GROUP = "ponder.strategies"


@dataclass(frozen=True)
class StrategyInfo:
    """A registered strategy: its function, its typed parameters, and where it comes from."""

    name: str
    run: Callable[..., Awaitable[Result]]  # (problem, generator, scorer, budget, params) -> Result
    params: type[BaseModel]
    summary: str
    paper: str = ""
    default_scorer: str | None = None  # scorer spec used when none is given; None: the strategy uses no scorer

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", _charging_scorers(self.run))

    def parse_params(self, values: Mapping[str, Any] | None = None) -> BaseModel:
        return validate(self.params, values or {}, f"strategy {self.name!r}")


def _charging_scorers(fn: Callable[..., Awaitable[Result]]) -> Callable[..., Awaitable[Result]]:
    """The strategy function, with what its scorer spent (judge requests) added to its Result's usage."""
    if getattr(fn, "charges_scorers", False):
        return fn

    @functools.wraps(fn)
    async def run(problem, generator, scorer, budget, params) -> Result:
        with scorer_usage() as account:
            r = await fn(problem, generator, scorer, budget, params)
        return with_scorer_usage(r, account.usage)

    run.charges_scorers = True
    return run


@functools.cache
def available() -> dict[str, StrategyInfo]:
    """Every installed strategy by name (built-ins and plug-ins alike)."""
    return load_entry_points(GROUP, StrategyInfo)


def get(name: str) -> StrategyInfo:
    strategies = available()
    if name not in strategies:
        raise InvalidRequest(f"unknown strategy {name!r}; known strategies: {', '.join(strategies)}")
    return strategies[name]


def parse_spec(spec: str, overrides: Mapping[str, Any] | None = None) -> tuple[StrategyInfo, BaseModel]:
    """``name?k=v&k=v`` plus ``overrides`` (which win) -> the strategy and its validated parameters."""
    name, values = split_spec(spec, "strategy")
    info = get(name)
    values.update(overrides or {})
    return info, info.parse_params(values)


def resolve_scorer(info: StrategyInfo, scorer: Scorer | str | None, generator: Generator) -> Scorer | None:
    """The scorer a strategy runs with: the one given (an instance or a spec), else the strategy's default."""
    from ponder.scorers.registry import build_scorer

    if isinstance(scorer, str):
        return build_scorer(scorer, generator)
    if scorer is None and info.default_scorer is not None:
        return build_scorer(info.default_scorer, generator)
    return scorer


async def run(spec: str, problem: Problem, generator: Generator, *, scorer: Scorer | str | None = None,
              budget: Budget | None = None, **overrides: Any) -> Result:
    """Run a strategy by spec: ``await run("majority?n=8", Problem("2+2?"), generator)``; ``scorer`` is a Scorer,
    a scorer spec such as ``"judge"``, or None for the strategy's default."""
    info, params = parse_spec(spec, overrides)
    return await info.run(problem, generator, resolve_scorer(info, scorer, generator), budget or Budget(), params)
