"""Code-execution verifier: the problem's tests judge the candidate's program across the sandbox boundary.

The program runs in the kernel sandbox and only answers calls; the tests run in a checker of their own and decide
(:func:`ponder.sandbox.boundary.check_with_tests`), so nothing the program prints or how it exits can raise its
score.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence

from ponder.loop_slots import LoopSlots
from ponder.sandbox import SandboxLimits
from ponder.sandbox.boundary import Verdict, check_with_tests
from ponder.types import Problem, Trace

_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|$)", re.S)


def extract_program(text: str, prompt_code: str | None = None) -> str:
    """The program in a completion: the longest fenced code block (preferring ``python`` fences), else the text.
    When the completion only continues ``prompt_code`` (a HumanEval signature), the two are joined.

    >>> extract_program("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    """
    blocks = _FENCE.findall(text)
    code = max(blocks, key=len) if blocks else text
    if prompt_code and not re.search(r"^\s*def\s", code, re.M):
        code = prompt_code + code
    return code


class CodeVerifier:
    """Score 1.0 when the program passes the problem's tests, 0.0 when it fails, ``None`` without tests.

    The problem carries ``tests`` (Python asserts, or a HumanEval ``check`` function) and optionally
    ``entry_point`` and ``prompt_code`` in its metadata.
    """

    name = "code"

    def __init__(self, limits: SandboxLimits | None = None, max_parallel: int | None = None):
        self.limits = limits or SandboxLimits()
        self._slots = LoopSlots(max_parallel or max(1, os.cpu_count() or 1))  # usable from one asyncio.run after another
        self.last_results: list = []

    async def _run(self, program: str, tests: str, entry_point: str | None, prompt_code: str | None) -> Verdict:
        async with self._slots():
            return await asyncio.to_thread(check_with_tests, program, tests, entry_point=entry_point,
                                           prompt_code=prompt_code, limits=self.limits)

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]:
        tests = problem.meta("tests")
        if not tests:
            return [None] * len(traces)
        entry = problem.meta("entry_point")
        prompt_code = problem.meta("prompt_code")
        programs = [extract_program(t.text, prompt_code) for t in traces]
        results = await asyncio.gather(*(self._run(p, tests, entry, prompt_code) for p in programs))
        self.last_results = list(results)
        return [1.0 if r.passed else 0.0 for r in results]

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]:
        return [None] * len(traces)
