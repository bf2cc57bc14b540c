"""The two contracts strategies are written against. Strategies never import a backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ponder.types import Completion, GenerationRequest, Problem, Trace


@runtime_checkable
class Generator(Protocol):
    """Produces samples. One call may carry many requests; a backend is free (and expected) to
    decode them together in one batch and to reuse the KV of shared prefixes.

    ``generate`` returns one Completion per request, in order.
    """

    name: str

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Scorer(Protocol):
    """Judges traces: batched, one score per trace (or per step), ``None`` to abstain.

    Outcome scores rank complete answers (best-of-n, weighted voting, verification); step scores rank partial
    reasoning (beam search, DVTS, MCTS). Higher is better; scores in [0, 1] read as probabilities of correctness.
    """

    name: str

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]: ...

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]: ...
