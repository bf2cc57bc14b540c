"""The contracts strategies are written against. Strategies never import a backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ponder.types import Completion, Execution, GenerationRequest, Problem, Trace


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


@runtime_checkable
class Executor(Protocol):
    """Runs programs a model wrote, each isolated, and says what each printed. Batched: a call may carry many
    programs, run concurrently. The sandbox is the default (:class:`ponder.sandbox.executor.SandboxExecutor`);
    tests script it (:class:`ponder.testing.ScriptedExecutor`)."""

    async def execute(self, programs: Sequence[str], *, wall_seconds: float) -> list[Execution]: ...


@runtime_checkable
class ProgressCounters(Protocol):
    """Live counters of a backend's work (the embedded engine's ``EngineStats``)."""

    completion_tokens: int  # generated since the backend started
    active_sequences: int  # being decoded now


@runtime_checkable
class ReportsProgress(Protocol):
    """A Generator that can say, while it works, how much it has done (optional: the HTTP backend cannot)."""

    @property
    def stats(self) -> ProgressCounters: ...


@runtime_checkable
class OpensModels(Protocol):
    """A Generator that can also give a generator for another model by name (what ``cascade`` escalates to). The
    CLI, the server and the evaluator provide one to strategies that declare ``needs_models``; which names it
    accepts is theirs to decide (a server offers only the models its operator named)."""

    def for_model(self, name: str) -> Generator: ...


@runtime_checkable
class ReadsHiddenStates(Protocol):
    """A Generator that can read its own model's final hidden state at the end of a prompt + completion (the
    embedded engine can; an HTTP backend cannot): the features of a learned verifier (a probe)."""

    model_sha256: str

    async def read_hidden_states(self, prompts: Sequence, completions: Sequence[str]): ...  # -> HiddenStates (backends.hidden_states)
