"""Answers by execution: a completion that is a program answers with what the program prints.

Any sampling strategy whose prompt is an executing template (``pal``: "write a program that prints the answer")
runs its completions through the Executor (the kernel sandbox by default) and votes on the printed values:
``majority?prompt=pal`` and ``adaptive_majority?prompt=pal`` vote on executed answers exactly as ``program``
does, so adaptive stopping and the evaluator's replays work over programs too. A completion with no code, a
program that fails, times out or prints nothing abstains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from ponder.protocols import Executor
from ponder.scorers.answers import extract_answer, normalize_answer
from ponder.scorers.code import extract_program
from ponder.strategies.base import Meter, to_candidate
from ponder.types import Candidate, Execution, Sample, Usage

EXECUTING_TEMPLATES = frozenset({"pal"})
WALL_SECONDS = 2.0  # per program, for strategies that have no wall_seconds of their own: arithmetic is quick
OUTPUT_SHOWN = 2000  # characters of a program's output kept in the candidate's trace text


def executes(prompt: str | None) -> bool:
    """Whether completions under this prompt template are programs whose printed value is the answer."""
    return prompt in EXECUTING_TEMPLATES


def default_executor() -> Executor:
    from ponder.sandbox.executor import SandboxExecutor

    return SandboxExecutor()


def printed_answer(stdout: str) -> str | None:
    """The answer a program printed: its last non-empty line; a sentence there gives up its stated answer.

    >>> printed_answer("working...\\n88\\n"), printed_answer("The total is 88 dollars"), printed_answer("[1, 2]\\n")
    ('88', '88', '[1, 2]')
    >>> printed_answer("   \\n") is None
    True
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1][:200]
    if re.search(r"[A-Za-z]{3,}", last) and not re.fullmatch(r"(True|False|None|inf|nan)", last):
        found = extract_answer(last)
        return found if found is not None else last
    return last


def program_in(text: str) -> str | None:
    """The program in a completion, or None when there is no code at all to run.

    >>> program_in("```python\\nprint(2 + 3)\\n```"), program_in("The answer is 5.") is None
    ('print(2 + 3)\\n', True)
    """
    if "```" not in text and not re.search(r"^\s*(print\(|def |import |[A-Za-z_]\w*\s*=)", text, re.M):
        return None
    code = extract_program(text)
    return code if code.strip() else None


def program_candidate(sample: Sample, ran: Execution | None) -> Candidate:
    """A candidate whose answer is what its program printed (None: no program, it failed, or printed nothing). Its
    text is the model's completion, the output as a reader sees it, and the executed answer; ``completion`` keeps
    the model's own text."""
    return with_execution(to_candidate(sample), ran)


def printed_line(answer: str) -> str:
    """The line a program's printed answer adds to its candidate's text, which a task's checker reads.

    >>> printed_line("88")
    'The program printed \\\\boxed{88}.\\n'
    """
    return f"The program printed \\boxed{{{answer}}}.\n"


def with_execution(base: Candidate, ran: Execution | None) -> Candidate:
    """``base`` (a candidate read from the model's text) answering instead with what its program printed, as
    :func:`program_candidate` describes; ``ran`` is None where the text had no program to run."""
    if ran is None:
        return replace(base, answer=None, key=None, completion=base.text)
    answer = printed_answer(ran.stdout) if ran.ok else None
    text = base.text.rstrip() + f"\n```output\n{ran.output[-OUTPUT_SHOWN:]}```\n"
    if answer is not None:
        text += printed_line(answer)
    return replace(base, text=text, answer=answer, key=normalize_answer(answer) if answer is not None else None,
                   executions=(ran,), completion=base.text)


async def run_programs(texts: Sequence[str], meter: Meter, executor: Executor | None = None,
                       wall_seconds: float = WALL_SECONDS) -> list[Execution | None]:
    """The program in each text run (all in one call to the executor, within what is left of the budget's time);
    None where a text has no program. The runs are added to the meter's usage as tool calls."""
    codes = [program_in(t) for t in texts]
    runnable = [c for c in codes if c is not None]
    left = meter.seconds_left()
    wall = wall_seconds if left is None else max(0.05, min(wall_seconds, left))
    done = iter(await (executor or default_executor()).execute(runnable, wall_seconds=wall) if runnable else [])
    ran = [next(done) if c is not None else None for c in codes]
    meter.usage = meter.usage + Usage(tool_calls=len(runnable), tool_seconds=sum(e.seconds for e in ran if e is not None))
    return ran


async def executed_candidates(samples: Sequence[Sample], meter: Meter, executor: Executor | None = None,
                              wall_seconds: float = WALL_SECONDS) -> tuple[Candidate, ...]:
    """Each sample's program run (see :func:`run_programs`), as candidates answering with what they printed."""
    ran = await run_programs([s.text for s in samples], meter, executor, wall_seconds)
    return tuple(program_candidate(s, e) for s, e in zip(samples, ran, strict=True))


async def candidates_of(samples: Sequence[Sample], prompt: str | None, meter: Meter,
                        executor: Executor | None = None) -> tuple[Candidate, ...]:
    """The samples as candidates: executed when ``prompt`` is an executing template, else read as text."""
    if executes(prompt):
        return await executed_candidates(samples, meter, executor)
    return tuple(to_candidate(s) for s in samples)
