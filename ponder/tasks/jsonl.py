"""User data: a JSONL file of ``{"question", "answer"}`` with optional ``id``, ``system`` and ``checker``
(``equivalent`` (default), ``exact``, ``contains``)."""

from __future__ import annotations

import json
from pathlib import Path

from ponder.errors import InvalidRequest
from ponder.scorers.answers import extract_answer
from ponder.scorers.reference import equivalent
from ponder.types import Problem

CHECKERS = ("equivalent", "exact", "contains")


class JsonlTask:
    def __init__(self, path: str):
        self.path = Path(path)
        self.name = f"jsonl:{self.path.name}"
        if not self.path.is_file():
            raise InvalidRequest(f"task file {self.path} does not exist")
        self._rows = []
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{self.path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) or "answer" not in row:
                raise InvalidRequest(f"{self.path}:{n}: each line needs a string 'question' and an 'answer'")
            if row.get("checker", "equivalent") not in CHECKERS:
                raise InvalidRequest(f"{self.path}:{n}: checker must be one of {', '.join(CHECKERS)}")
            self._rows.append(row)

    def problems(self, limit: int | None, seed: int) -> list[Problem]:
        rows = self._rows[: limit] if limit else self._rows
        return [Problem(r["question"], answer=str(r["answer"]), system=r.get("system"), id=str(r.get("id", i)),
                        metadata=(("checker_name", r.get("checker", "equivalent")),)) for i, r in enumerate(rows)]

    def score(self, problem: Problem, text: str) -> float:
        checker = problem.meta("checker_name", "equivalent")
        if checker == "contains":
            return float(problem.answer.strip().lower() in text.lower())
        ans = extract_answer(text)
        if checker == "exact":
            return float(ans is not None and ans.strip() == problem.answer.strip())
        return float(equivalent(ans, problem.answer))
