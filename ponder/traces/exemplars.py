"""An exemplar bank: the model's own verified paths, as few-shot examples for later prompts (``shots=k&bank=FILE``).

From a stored evaluation run, each item's paths that the task's reference scorer marked right (``correct`` in
the store's samples), one per item (the most confident), questions read back from the run's task, optionally
leaving out the items of other runs, so the bank never holds a question it will be evaluated on.

A bank is JSONL, one exemplar a line: ``{"question", "answer" (the path's text), "reference", "item", "model",
"task", "confidence"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ponder.errors import InvalidRequest


@dataclass(frozen=True)
class Exemplar:
    question: str
    answer: str  # the verified path, as the model wrote it
    reference: str | None = None
    item: str | None = None

    def to_json(self, **extra) -> str:
        return json.dumps({"question": self.question, "answer": self.answer, "reference": self.reference,
                           "item": self.item, **extra}, ensure_ascii=False)


def build_bank(store, run: str, *, exclude_runs: tuple[str, ...] = (), model: str | None = None,
               per_item: int = 1, max_chars: int = 4000, task: str | None = None) -> list[dict]:
    """The verified paths of ``run`` (one ``per_item`` by default: the most confident), deduplicated by text,
    from items that none of ``exclude_runs`` evaluated. ``task`` loads the run's questions when its stored task
    name is not a loadable spec (a custom ``module:attribute`` task)."""
    from ponder.traces.runs import run_problems

    problems, task_spec = run_problems(store, run, exclude_runs=exclude_runs, task=task)
    by_item: dict[str, list] = {}
    for s in store.all_samples(run):
        if s["correct"] and s["correct"] > 0 and s["item"] in problems \
                and (model is None or s["model"] == model) and s["text"] and len(s["text"]) <= max_chars:
            by_item.setdefault(s["item"], []).append(s)
    bank, seen = [], set()
    for item, rows in sorted(by_item.items()):
        rows.sort(key=lambda r: -(r["confidence"] if r["confidence"] is not None else -1e9))
        kept = 0
        for r in rows:
            if r["text"] in seen or kept >= per_item:
                continue
            seen.add(r["text"])
            kept += 1
            p = problems[item]
            bank.append({"question": p.question, "answer": r["text"], "reference": p.answer, "item": item,
                         "model": r["model"], "task": task_spec, "confidence": r["confidence"]})
    return bank


def load_bank(path: str | Path) -> tuple[Exemplar, ...]:
    """A bank file's exemplars, in order."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequest(f"cannot read the exemplar bank {path}: {exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Exemplar(str(d["question"]), str(d["answer"]), d.get("reference"), d.get("item")))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"{path}:{n} is not an exemplar ({exc}); expected question and answer") from None
    return tuple(out)
