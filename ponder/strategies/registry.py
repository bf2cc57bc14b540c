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
ponder.errors.InvalidRequest: unknown strategy 'majorty'; known strategies: ...beam, best_of_n, ...majority, mcts, ...sample, ...
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from ponder.accounting import scorer_usage, with_scorer_usage
from ponder.errors import InvalidRequest
from ponder.protocols import Generator, Scorer
from ponder.specs import load_entry_points, split_spec, validate
from ponder.types import Budget, Candidate, Problem, Result

GROUP = "ponder.strategies"

# How the evaluator measures a strategy at budgets 1, 2, 4, ...:
# - "run": one run per budget, the budget mapped onto the strategy's parameters (``budget_params``);
# - "shared_samples": one set of independent samples per item, drawn once at the largest budget and shared with
#   every other such strategy; the budget-k result is ``choose`` over the first k (and their scores, when the
#   strategy uses a scorer);
# - "prefix": one run at the largest budget; the budget-k result is ``choose`` over its first k candidates;
# - "anytime": one run at the largest budget, answering at each smaller size on the way (``anytime``);
# - "replay": one run per budget on a generator that serves its independent samples from the shared ones, so an
#   adaptive rule is judged on the very draws the fixed vote saw.
Evaluation = Literal["run", "shared_samples", "prefix", "anytime", "replay"]


@dataclass(frozen=True)
class StrategyInfo:
    """A registered strategy: its function, its typed parameters, where it comes from, and what the CLI, the
    server and the evaluator need to know about it (so that none of them keeps a table of names)."""

    name: str
    run: Callable[..., Awaitable[Result]]  # (problem, generator, scorer, budget, params) -> Result
    params: type[BaseModel]
    summary: str
    paper: str = ""
    default_scorer: str | None = None  # scorer spec used when none is given; None: the strategy uses no scorer
    size_param: str | None = None  # the parameter a ``NAME-K`` model alias sets (``majority-16``: n=16)
    budget_axis: Callable[[int], dict[str, Any]] | None = None  # budget k -> parameters (default: {size_param: k})
    evaluation: Evaluation = "run"
    choose: Callable[[Sequence[Candidate]], int | None] | None = None  # for "shared_samples" and "prefix"
    anytime: Callable[..., Awaitable[dict[int, Result]]] | None = None  # for "anytime": (…, params, sizes) -> {size: Result}
    # its candidates are independent draws of its prompt (greedy first when ``greedy_first``, then seed, seed + 1,
    # ...): the evaluator stores them as the item's shared samples too, for replays and exemplar banks
    shares_draws: bool = False
    default_prompt: str | None = None  # the prompt template it uses when given none (``program``: pal)
    # parameters naming further models it opens (``cascade``: large): its generator must be an OpensModels, and a
    # server checks each name against the models its operator offers
    model_params: tuple[str, ...] = ()
    # with n = 1 it builds one path, request after request continuing it (greedy, sample, budget_forcing): a server
    # may stream that path to the client as it decodes
    streams_path: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", _charging_scorers(self.run))
        if self.evaluation in ("shared_samples", "prefix") and self.choose is None:
            raise TypeError(f"strategy {self.name!r}: evaluation {self.evaluation!r} needs a choose rule")
        if self.shares_draws and self.evaluation != "prefix":
            raise TypeError(f"strategy {self.name!r}: only a prefix-evaluated strategy shares its draws")
        if self.evaluation == "anytime" and (self.anytime is None or self.size_param is None):
            raise TypeError(f"strategy {self.name!r}: an anytime strategy names its snapshots function and size_param")

    def parse_params(self, values: Mapping[str, Any] | None = None) -> BaseModel:
        return validate(self.params, values or {}, f"strategy {self.name!r}")

    @property
    def needs_models(self) -> bool:
        return bool(self.model_params)

    def models_named(self, params: BaseModel) -> list[str]:
        """The other models a run with ``params`` opens."""
        return [getattr(params, p) for p in self.model_params if getattr(params, p, None)]

    @property
    def sized(self) -> bool:
        """Whether a budget changes anything (greedy, sample and auto are evaluated once)."""
        return self.budget_axis is not None or self.size_param is not None

    def budget_params(self, k: int) -> dict[str, Any]:
        """The parameters that give this strategy a budget of ``k`` (samples, beam width, iterations, ...)."""
        if self.budget_axis is not None:
            return dict(self.budget_axis(k))
        return {self.size_param: k} if self.size_param is not None else {}

    def alias(self, k: int) -> str:
        """The spec a ``NAME-K`` model alias stands for: ``majority-16`` -> ``majority?n=16``."""
        if self.size_param is None:
            raise InvalidRequest(f"strategy {self.name!r} takes no size; use {self.name!r} without '-{k}'")
        return f"{self.name}?{self.size_param}={k}"


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
