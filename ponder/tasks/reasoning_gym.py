"""reasoning-gym procedural tasks (seeded generators with their own scorers). ponder extracts the final answer
first, then hands it to the generator's scorer (``gsm_symbolic``'s scorer reads the first number it sees); an item
counts as solved only with full marks."""

from __future__ import annotations

from ponder.errors import InvalidRequest
from ponder.scorers.answers import extract_answer
from ponder.types import Problem


def _coerce(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


class ReasoningGymTask:
    def __init__(self, generator: str, config: dict[str, str] | None = None):
        try:
            import reasoning_gym
        except ImportError:  # pragma: no cover - a declared dependency of the eval extra
            raise InvalidRequest("reasoning-gym is not installed: pip install 'ponder[eval]'") from None
        self._rg = reasoning_gym
        self.generator = generator
        self.config = {k: _coerce(v) for k, v in (config or {}).items()}
        self.name = f"rg:{generator}" + ("?" + "&".join(f"{k}={v}" for k, v in sorted((config or {}).items())) if config else "")
        self._datasets: dict = {}

    def _dataset(self, size: int, seed: int):
        key = (size, seed)
        if key not in self._datasets:
            try:
                self._datasets[key] = self._rg.create_dataset(self.generator, size=size, seed=seed, **self.config)
            except Exception as exc:  # unknown name or config: reasoning-gym raises several kinds
                raise InvalidRequest(f"reasoning-gym cannot make {self.name}: {exc}") from None
        return self._datasets[key]

    def problems(self, limit: int | None, seed: int) -> list[Problem]:
        size = limit or 100
        ds = self._dataset(size, seed)
        out = []
        for i in range(size):
            entry = ds[i]
            out.append(Problem(entry["question"], answer=str(entry["answer"]), id=f"{seed}-{i}",
                               metadata=(("entry", entry), ("dataset", (size, seed)))))
        return out

    def score(self, problem: Problem, text: str) -> float:
        size, seed = problem.meta("dataset")
        ans = extract_answer(text)
        if ans is None:
            return 0.0
        try:
            raw = float(self._dataset(size, seed).score_answer(answer=ans, entry=problem.meta("entry")))
        except Exception:
            return 0.0
        if opposite_signs(ans, str(problem.answer)):
            return 0.0
        # solved means full marks: reasoning-gym gives small "well-formatted but wrong" credit (0.01 on gsm_symbolic)
        return 1.0 if raw >= 0.999 else 0.0


def opposite_signs(answer: str, reference: str) -> bool:
    """Whether a numeric answer and a numeric reference have opposite signs (zero counts as positive): reasoning-gym 0.1's ``gsm_symbolic`` scorer
    reads the first number with ``\\b-?\\d+``, and no word boundary precedes a leading minus, so it read "-26" as
    26 and gave a program that printed -26 full marks against 26 (19 headline rows and 43 stored samples had been
    credited so, by 2026-12-05). A numeric answer whose sign differs from a numeric reference is wrong whatever the
    generator's scorer says.

    >>> opposite_signs("-26", "26"), opposite_signs("-2.0", "2"), opposite_signs("26", "26.0"), opposite_signs("0", "-0")
    (True, True, False, False)
    >>> opposite_signs("1/2", "-0.5"), opposite_signs("x = -3", "3")  # not both plain numbers: the scorer decides
    (False, False)
    """
    try:
        a, b = float(answer), float(reference)
    except ValueError:
        return False
    return (a < 0) != (b < 0)
