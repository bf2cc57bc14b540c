"""Reward functions for GRPO, in TRL's convention: called with the batch's ``completions`` (texts, or chat turns
for a conversational dataset) and the dataset's other columns as keyword arguments, returning one float each.

- ``accuracy``: 1 when the completion's final answer equals the item's ``answer`` (ponder's answer extraction and
  reference check, the same the evaluator scores with), else 0; a cut-off completion that states no answer gets 0.
- ``program``: 1 when the completion's program, run in the sandbox, prints the item's ``answer``.
- ``format``: 1 when the completion ends with an answer ponder can read (an answer line, a boxed answer, or a
  python block), else 0: DeepSeek-R1's format reward, for the formats ponder's prompts ask for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

RewardFn = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The text of a completion as TRL passes it: a string, or a list of chat turns (the assistant's last)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    return str(completion)


def accuracy(completions: Sequence[Any], answer: Sequence[str], **_: Any) -> list[float]:
    from ponder.scorers.answers import extract_answer
    from ponder.scorers.reference import equivalent

    return [float(equivalent(extract_answer(completion_text(c)), str(a))) for c, a in zip(completions, answer, strict=True)]


def program_reward(executor=None) -> RewardFn:
    """The ``program`` reward over ``executor`` (the sandbox by default; a scripted one in tests)."""

    def program(completions: Sequence[Any], answer: Sequence[str], **_: Any) -> list[float]:
        import asyncio

        from ponder.scorers.reference import equivalent
        from ponder.strategies.execution import default_executor, printed_answer, program_in

        codes = [program_in(completion_text(c)) for c in completions]
        runnable = [(i, code) for i, code in enumerate(codes) if code]
        out = [0.0] * len(codes)
        if runnable:
            runs = asyncio.run((executor or default_executor()).execute([code for _, code in runnable], wall_seconds=2.0))
            for (i, _), run in zip(runnable, runs, strict=True):
                if run.ok:
                    out[i] = float(equivalent(printed_answer(run.stdout), str(answer[i])))
        return out

    return program


def format_(completions: Sequence[Any], **_: Any) -> list[float]:
    from ponder.scorers.answers import extract_answer
    from ponder.strategies.execution import program_in

    # a stated answer (read as from a cut-off path: no fallback to the last number) or a program to run
    return [float(extract_answer(completion_text(c), complete=False) is not None or program_in(completion_text(c)) is not None)
            for c in completions]


REWARDS: dict[str, RewardFn] = {"accuracy": accuracy, "program": program_reward(), "format": format_}


def named(names: Sequence[str]) -> list[RewardFn]:
    from ponder.errors import InvalidRequest

    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise InvalidRequest(f"unknown reward {', '.join(unknown)}; rewards: {', '.join(REWARDS)}")
    fns = []
    for n in names:
        fn = REWARDS[n]
        fn.__name__ = f"{n}_reward"  # TRL logs each reward under its function's name
        fns.append(fn)
    return fns
