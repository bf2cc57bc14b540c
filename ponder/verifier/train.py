"""Training and judging a probe on a stored run: the run's paths (labelled by the task's scorer) read back through
the model's hidden states, items split so that the held-out figures come from items the probe never saw."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import numpy as np

from ponder.errors import InvalidRequest
from ponder.protocols import ReadsHiddenStates
from ponder.verifier.features import with_answer_features
from ponder.verifier.probe import Kind, Probe, auroc, fit


@dataclass(frozen=True)
class Features:
    x: np.ndarray
    y: np.ndarray
    items: list[str]
    prompts: tuple[str | None, ...] = ()  # the template each path was drawn under
    answers: tuple[str | None, ...] = ()  # the normalised answer each path votes for (None: it abstains)


async def read_features(store, run: str, generator, *, model: str | None = None, exclude_runs: tuple[str, ...] = (),
                        task: str | None = None, limit: int | None = None, batch: int = 8) -> Features:
    """Every stored path of ``run`` (deduplicated by text, at most ``limit``) as its hidden state and its label."""
    from ponder.traces.export import stored_paths

    if not isinstance(generator, ReadsHiddenStates):
        raise InvalidRequest("a probe reads the model's hidden states: use the embedded backend (an HTTP backend has none)")
    rows, seen = [], set()
    for problem, prompt, s in stored_paths(store, run, model=model, exclude_runs=exclude_runs, task=task):
        if (s["item"], s["text"]) in seen:
            continue
        seen.add((s["item"], s["text"]))
        rows.append((prompt, s["text"], 1.0 if s["correct"] > 0 else 0.0, s["item"], json.loads(s["params"]).get("prompt"), s["key"]))
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise InvalidRequest(f"run {run!r} has no stored paths to learn from")
    parts = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        parts.append((await generator.read_hidden_states([r[0] for r in chunk], [r[1] for r in chunk])).states)
    return Features(np.vstack(parts), np.array([r[2] for r in rows]), [r[3] for r in rows], tuple(r[4] for r in rows),
                    tuple(r[5] for r in rows))


def held_out(item: str, fraction: float) -> bool:
    """A stable split by item (its hash), so every path of an item falls on one side."""
    return int(hashlib.sha256(item.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def train(features: Features, *, model_sha256: str, model_name: str, trained_on: str, kind: Kind = "logistic",
          l2: float = 1.0, holdout: float = 0.25, sees_answer: bool = False) -> Probe:
    """A probe fitted on the items outside the held-out share, its held-out AUROC in ``metrics``, then refitted on
    every item (what is saved); with fewer than two held-out labels of each kind the AUROC is None. ``sees_answer``:
    the probe also reads each path's answer (``features.answers``), as :func:`ponder.verifier.features.answer_features`."""
    if sees_answer:
        if len(features.answers) != len(features.y):
            raise InvalidRequest("a probe that sees answers needs each path's answer")
        features = replace(features, x=with_answer_features(features.x, features.answers))
    test = np.array([held_out(i, holdout) for i in features.items])
    metrics: dict = {"paths": int(len(features.y)), "right": int(features.y.sum()), "items": len(set(features.items))}
    if test.any() and (~test).any() and len(set(features.y[~test])) == 2:
        first = fit(features.x[~test], features.y[~test], kind=kind, l2=l2, model_sha256=model_sha256)
        metrics.update(heldout_paths=int(test.sum()), heldout_auroc=auroc(first.score(features.x[test]).tolist(),
                                                                        features.y[test].tolist()))
    probe = fit(features.x, features.y, kind=kind, l2=l2, model_sha256=model_sha256, model_name=model_name,
                trained_on=trained_on)
    metrics["train_auroc"] = auroc(probe.score(features.x).tolist(), features.y.tolist())
    from ponder.strategies.prompts import instruction

    templates = set(features.prompts)
    template = templates.pop() if len(templates) == 1 else None
    return Probe(**{**probe.__dict__, "metrics": metrics, "instruction": instruction(template) if template else None,
                    "sees_answer": sees_answer})
