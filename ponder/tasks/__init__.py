"""Task loaders: a task yields Problems (with references and checkers) and scores a response.

Specs: ``rg:gsm_symbolic``, ``rg:chain_sum?min_terms=4`` (reasoning-gym, with generator config), ``humaneval``,
``arc:training`` / ``arc:evaluation`` (ARC-AGI-1 grids as text), ``arc-program:training`` (program search),
``jsonl:path/to/file.jsonl``, or ``module:attribute`` for a custom Task.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ponder.errors import InvalidRequest
from ponder.specs import split_spec
from ponder.types import Problem


@runtime_checkable
class Task(Protocol):
    name: str

    def problems(self, limit: int | None, seed: int) -> Sequence[Problem]: ...

    def score(self, problem: Problem, text: str) -> float: ...


def load_task(spec: str) -> Task:
    kind, _, rest = spec.partition(":")
    if kind == "rg":
        from ponder.tasks.reasoning_gym import ReasoningGymTask

        name, config = split_spec(rest, "task")
        return ReasoningGymTask(name, config)
    if kind in ("arc", "arc-program"):
        from ponder.tasks.arc import ArcTask

        return ArcTask(rest or "training", program=kind == "arc-program")
    if kind == "humaneval" and not rest:
        from ponder.tasks.humaneval import HumanEvalTask

        return HumanEvalTask()
    if kind == "jsonl":
        from ponder.tasks.jsonl import JsonlTask

        return JsonlTask(rest)
    if rest:
        try:
            obj = getattr(importlib.import_module(kind), rest)
        except (ImportError, AttributeError) as exc:
            raise InvalidRequest(f"cannot load task {spec!r}: {exc}") from None
        task = obj() if isinstance(obj, type) else obj
        if not isinstance(task, Task):
            raise InvalidRequest(f"{spec!r} is not a Task (needs name, problems(limit, seed), score(problem, text))")
        return task
    raise InvalidRequest(f"unknown task {spec!r}; use rg:NAME[?config], humaneval, arc:SPLIT, arc-program:SPLIT, "
                         "jsonl:PATH or module:attribute")
