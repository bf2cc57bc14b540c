"""Traces out, in the dataset formats trainers read: a stored evaluation run's paths, labelled by the task's own
reference scorer (the ``correct`` the store keeps per sample), as JSONL records in TRL's conventions:

- ``sft``: ``{"messages": [user…, {"role": "assistant", "content": PATH}]}`` for the verified paths (rejection
  sampling / STaR: keep what reached the right answer); SFTTrainer's conversational format.
- ``dpo``: ``{"prompt": [user…], "chosen": [assistant RIGHT], "rejected": [assistant WRONG]}``, a right and a wrong
  path of the same item; DPOTrainer's conversational preference format.
- ``verifier``: ``{"prompt": [user…], "completion": [assistant PATH], "label": true|false}``, every path with its
  outcome; KTOTrainer's unpaired-preference format, and what an outcome verifier is trained on.
- ``prm``: ``{"prompt": TEXT, "completions": [STEP, …], "labels": [true|false, …]}``, paths split into steps with a
  label per step; PRMTrainer's stepwise-supervision format. Step labels come from ``ponder traces label-steps``
  (Math-Shepherd's Monte-Carlo estimate); without them the export refuses, since an outcome alone does not say
  which step went wrong.

The user turn is the question under the prompt template the path was drawn with, so a record is what the model saw.
Options keep only items no other named run evaluated (``exclude_runs``: hold the benchmark out), deduplicate paths
by text, and cap paths per item.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Literal

from ponder.errors import InvalidRequest

Format = Literal["sft", "dpo", "verifier", "prm"]
FORMATS: tuple[str, ...] = ("sft", "dpo", "verifier", "prm")


def _messages(prompt) -> list[dict]:
    return [{"role": m.role, "content": m.content} for m in prompt.messages]


def _prompt_text(prompt) -> str:
    return "\n\n".join(m.content for m in prompt.messages)


def stored_paths(store, run: str, *, model: str | None = None, exclude_runs: tuple[str, ...] = (),
                 task: str | None = None) -> Iterator[tuple[object, object, dict]]:
    """(problem, prompt, sample row) for every stored sample of ``run`` whose item no run in ``exclude_runs``
    evaluated; ``task`` loads the questions when the run's task is a custom one."""
    from ponder.strategies.base import SamplingOptions
    from ponder.traces.runs import run_problems

    problems, _ = run_problems(store, run, exclude_runs=exclude_runs, task=task)
    prompts: dict[tuple[str, str], object] = {}
    for s in store.all_samples(run):
        if s["item"] not in problems or (model is not None and s["model"] != model) or not s["text"]:
            continue
        params = json.loads(s["params"])
        key = (s["item"], params.get("prompt") or "")
        if key not in prompts:
            prompts[key] = SamplingOptions(prompt=params.get("prompt")).prompt_for(problems[s["item"]])
        yield problems[s["item"]], prompts[key], s


def export_records(store, run: str, fmt: Format, *, model: str | None = None, exclude_runs: tuple[str, ...] = (),
                   per_item: int | None = None, task: str | None = None, step_labels: dict | None = None) -> list[dict]:
    """The run's paths as ``fmt`` records (see the module docstring), deduplicated by text, at most ``per_item``
    records per item. ``step_labels``: ``{(item, model, params, idx): [label per step]}`` for ``prm``."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "prm" and not step_labels:
        raise InvalidRequest("prm records need step labels: run `ponder traces label-steps` on this run first "
                             "(an outcome alone does not say which step went wrong)")
    by_item: dict[str, list] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for problem, prompt, s in stored_paths(store, run, model=model, exclude_runs=exclude_runs, task=task):
        if (s["item"], s["text"]) in seen:
            continue
        seen.add((s["item"], s["text"]))
        by_item[s["item"]].append((prompt, s))
    out: list[dict] = []
    for item, rows in sorted(by_item.items()):
        records: list[dict] = []
        right = [(p, s) for p, s in rows if s["correct"] > 0]
        wrong = [(p, s) for p, s in rows if s["correct"] <= 0]
        if fmt == "sft":
            records = [{"messages": _messages(p) + [{"role": "assistant", "content": s["text"]}], "item": item}
                       for p, s in right]
        elif fmt == "dpo":
            records = [{"prompt": _messages(p), "chosen": [{"role": "assistant", "content": r["text"]}],
                        "rejected": [{"role": "assistant", "content": w["text"]}], "item": item}
                       for (p, r), (_, w) in zip(right, wrong)]
        elif fmt == "verifier":
            records = [{"prompt": _messages(p), "completion": [{"role": "assistant", "content": s["text"]}],
                        "label": bool(s["correct"] > 0), "item": item} for p, s in rows]
        else:
            for p, s in rows:
                labels = step_labels.get((item, s["model"], s["params"], s["idx"]))
                if labels:
                    steps = [x for x in s["text"].split("\n\n") if x.strip()]
                    if len(steps) == len(labels):
                        records.append({"prompt": _prompt_text(p), "completions": steps, "labels": [bool(x) for x in labels],
                                        "item": item})
        out += records[:per_item] if per_item is not None else records
    return out
