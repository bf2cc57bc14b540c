"""Task loaders: a task yields Problems (with references and checkers) and scores a response.

Specs: ``rg:gsm_symbolic``, ``rg:chain_sum?min_terms=4`` (reasoning-gym, with generator config), ``humaneval``,
``arc:training`` / ``arc:evaluation`` (ARC-AGI-1 grids as text), ``arc-program:training`` (program search),
``jsonl:path/to/file.jsonl``, or ``module:attribute`` for a custom Task. Task families register like strategies:
a :class:`TaskInfo` in the entry-point group ``ponder.tasks``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ponder.errors import InvalidRequest
from ponder.specs import load_entry_points
from ponder.types import Problem

GROUP = "ponder.tasks"


@runtime_checkable
class Task(Protocol):
    name: str

    def problems(self, limit: int | None, seed: int) -> Sequence[Problem]: ...

    def score(self, problem: Problem, text: str) -> float: ...


@dataclass(frozen=True)
class TaskInfo:
    """A registered task family: ``NAME:REST`` specs are loaded by ``load(REST)``. Built-ins are entry points in
    the group ``ponder.tasks`` (``pyproject.toml``), as plug-ins are."""

    name: str
    load: Callable[[str], Task]
    summary: str
    spec: str  # how its specs are written, for messages and docs


@functools.cache
def available() -> dict[str, TaskInfo]:
    """Every installed task family by name."""
    return load_entry_points(GROUP, TaskInfo)


def load_task(spec: str) -> Task:
    """A task from its spec: ``FAMILY:REST`` for a registered family (``rg:gsm_symbolic``), or ``module:attribute``
    naming a Task object or class.

    >>> load_task("nope")
    Traceback (most recent call last):
    ...
    ponder.errors.InvalidRequest: unknown task 'nope'; use ... or module:attribute
    """
    kind, _, rest = spec.partition(":")
    families = available()
    if kind in families:
        return families[kind].load(rest)
    if rest:
        try:
            obj = getattr(importlib.import_module(kind), rest)
        except (ImportError, AttributeError) as exc:
            raise InvalidRequest(f"cannot load task {spec!r}: {exc}") from None
        task = obj() if isinstance(obj, type) else obj
        if not isinstance(task, Task):
            raise InvalidRequest(f"{spec!r} is not a Task (needs name, problems(limit, seed), score(problem, text))")
        return task
    raise InvalidRequest(f"unknown task {spec!r}; use {', '.join(f.spec for f in families.values())} or module:attribute")
