"""Checking an answer against a known reference: a task's own checker when it has one, else equivalence."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ponder.scorers.answers import extract_answer, normalize_answer
from ponder.types import Problem, Trace


def _math_verify(pred: str, ref: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    main = threading.current_thread() is threading.main_thread()
    kw = {} if main else {"parsing_timeout": None}
    try:
        gold = parse(ref if "$" in ref else f"${ref}$", **kw)
        guess = parse(pred if "$" in pred else f"${pred}$", **kw)
        return bool(gold and guess and verify(gold, guess, **({} if main else {"timeout_seconds": None})))
    except Exception:  # math-verify raises on odd input; not equal is the safe reading
        return False


def equivalent(pred: str | None, ref: str | None, rel_tol: float = 1e-6) -> bool:
    """Whether two final answers mean the same: equal after normalisation, numerically within ``rel_tol``, or
    symbolically equal by math-verify.

    >>> equivalent("1,250", "1250.0"), equivalent("\\\\frac{1}{2}", "0.5"), equivalent("2\\\\sqrt{2}", "\\\\sqrt{8}"), equivalent("3", "4")
    (True, True, True, False)
    """
    if pred is None or ref is None:
        return False
    a, b = normalize_answer(pred), normalize_answer(ref)
    if a == b:
        return True
    try:
        x, y = float(eval_fraction(a)), float(eval_fraction(b))
        return abs(x - y) <= rel_tol * max(1.0, abs(y))
    except (ValueError, ZeroDivisionError):
        pass
    return _math_verify(pred, ref)


def eval_fraction(s: str) -> float:
    num, sep, den = s.partition("/")
    return float(num) / float(den) if sep else float(num)


class ReferenceScorer:
    """1.0 when the trace's final answer matches the problem's reference, 0.0 when not, ``None`` when the problem
    has no reference. A ``checker`` in the problem's metadata (``(text) -> float``) wins over equivalence."""

    name = "reference"

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]:
        checker = problem.meta("checker")
        if callable(checker):
            return [float(checker(t.text)) for t in traces]
        if problem.answer is None:
            return [None] * len(traces)
        return [1.0 if equivalent(extract_answer(t.text), problem.answer) else 0.0 for t in traces]

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]:
        return [None] * len(traces)
