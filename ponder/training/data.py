"""What a training run reads: the JSONL that ``ponder traces export`` writes (``sft``: conversations ending in a
verified path; ``dpo``: a right and a wrong path of one item), or, for GRPO, a task's items as prompts with their
reference answers (the reward functions read the ``answer`` column). A held-out slice, by item, measures the run
as it goes: never trained on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import InvalidRequest

FIELDS = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}


@dataclass(frozen=True)
class Split:
    train: list[dict[str, Any]]
    held_out: list[dict[str, Any]]
    source: str


def _held(item: str, fraction: float) -> bool:
    return int(hashlib.sha256(item.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def split(records: list[dict[str, Any]], fraction: float, source: str) -> Split:
    """Hold out a stable ``fraction`` of the items (every record of an item on one side)."""
    train = [r for r in records if not _held(str(r.get("item", id(r))), fraction)]
    held = [r for r in records if _held(str(r.get("item", id(r))), fraction)]
    if not train:
        train, held = held, []
    return Split(train, held, source)


def read_records(path: Path, method: str) -> list[dict[str, Any]]:
    """The records of an export for ``method`` (sft or dpo), each checked for its fields."""
    fields = FIELDS[method]
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequest(f"cannot read the training data {path}: {exc.strerror or exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise InvalidRequest(f"{path}:{n}: not a JSON record") from None
        missing = [f for f in fields if f not in rec]
        if missing:
            raise InvalidRequest(f"{path}:{n}: a {method} record needs {', '.join(fields)} (missing {', '.join(missing)}); "
                                 f"write one with `ponder traces export RUN --format {method}`")
        out.append({k: rec[k] for k in (*fields, "item") if k in rec})
    if not out:
        raise InvalidRequest(f"{path} holds no {method} records")
    return out


def task_records(task_spec: str, limit: int, seed: int, prompt: str | None) -> list[dict[str, Any]]:
    """A task's items as GRPO prompts (the question under ``prompt``'s template, as the strategies ask it) with
    their reference answers."""
    from dataclasses import replace

    from ponder.strategies.prompts import instruction
    from ponder.tasks import load_task

    task = load_task(task_spec)
    out = []
    for p in task.problems(limit, seed):
        if p.answer is None:
            raise InvalidRequest(f"task {task_spec!r} gives item {p.id} no reference answer: GRPO's rewards need one")
        msgs = (p.prompt() if prompt is None else replace(p, instruction=instruction(prompt)).prompt()).messages
        out.append({"prompt": [{"role": m.role, "content": m.content} for m in msgs], "answer": str(p.answer),
                    "item": p.id or p.question[:64]})
    return out
