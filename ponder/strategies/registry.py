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
ponder.errors.InvalidRequest: unknown strategy 'majorty'; known strategies: greedy, majority, sample
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from ponder.errors import InvalidRequest
from ponder.protocols import Generator
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
    needs_scorer: bool = False

    def parse_params(self, values: Mapping[str, Any] | None = None) -> BaseModel:
        try:
            return self.params.model_validate(dict(values or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
                + (f" (known parameters: {', '.join(self.params.model_fields)})" if e["type"] == "extra_forbidden" else "")
                for e in exc.errors()
            )
            raise InvalidRequest(f"invalid parameters for strategy {self.name!r}: {problems}") from None


@functools.cache
def available() -> dict[str, StrategyInfo]:
    """Every installed strategy by name (built-ins and plug-ins alike)."""
    found: dict[str, StrategyInfo] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        info = ep.load()
        if not isinstance(info, StrategyInfo):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a StrategyInfo")
        if info.name != ep.name:
            raise TypeError(f"entry point {ep.name} names a strategy called {info.name!r}")
        found[info.name] = info
    if not found:
        raise RuntimeError("no strategies are registered: is ponder installed (pip install -e .)?")
    return dict(sorted(found.items()))


def get(name: str) -> StrategyInfo:
    strategies = available()
    if name not in strategies:
        raise InvalidRequest(f"unknown strategy {name!r}; known strategies: {', '.join(strategies)}")
    return strategies[name]


def parse_spec(spec: str, overrides: Mapping[str, Any] | None = None) -> tuple[StrategyInfo, BaseModel]:
    """``name?k=v&k=v`` plus ``overrides`` (which win) -> the strategy and its validated parameters."""
    name, _, query = spec.strip().partition("?")
    info = get(name.strip())
    values: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidRequest(f"malformed strategy spec {spec!r}: expected NAME or NAME?key=value&key=value") from None
    for key, value in pairs:
        values[key] = value
    values.update(overrides or {})
    return info, info.parse_params(values)


async def run(spec: str, problem: Problem, generator: Generator, *, scorer=None, budget: Budget | None = None,
              **overrides: Any) -> Result:
    """Run a strategy by spec: ``await run("majority?n=8", Problem("2+2?"), generator)``."""
    info, params = parse_spec(spec, overrides)
    return await info.run(problem, generator, scorer, budget or Budget(), params)
