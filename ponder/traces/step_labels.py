"""Step labels without humans (Math-Shepherd, Wang et al. 2023, arXiv:2312.08935): from each step prefix of a stored
path, ``k`` completions continue from the cached prefix; a step's soft label is the share of them that reach the
right answer (the task's own scorer decides), its hard label whether any does. The last step's label is the path's
own outcome. Every path's prefixes go to the generator in one call (the embedded engine decodes them together and
evaluates each shared prefix once); what the rollouts cost is stored with the labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ponder.protocols import Generator
from ponder.types import GenerationRequest, SamplingParams, Usage

STEP = "\n\n"


@dataclass(frozen=True)
class LabelReport:
    paths: int  # labelled now
    skipped: int  # labelled before (resumed)
    steps: int
    completion_tokens: int
    prompt_tokens: int


def steps_of(text: str) -> list[str]:
    """A path's steps: its non-empty blank-line-separated parts (how tree search and the PRM export split it).

    >>> steps_of("a = 1\\n\\nb = 2\\n\\n\\nSo 3.")
    ['a = 1', 'b = 2', '\\nSo 3.']
    """
    return [x for x in text.split(STEP) if x.strip()]


async def label_steps(store, run: str, generator: Generator, *, model: str | None = None, k: int = 4,
                      max_tokens: int = 256, temperature: float = 0.7, seed: int = 0, limit: int | None = None,
                      exclude_runs: tuple[str, ...] = (), task: str | None = None) -> LabelReport:
    """Label the steps of ``run``'s stored paths (at most ``limit`` new ones), resumably: a labelled path is kept."""
    from ponder.tasks import load_task
    from ponder.traces.export import stored_paths

    config = store.run_config(run) or {}
    scorer = load_task(task or config["task"])
    have = store.step_labels(run)
    done = skipped = steps_total = 0
    spent = Usage()
    for problem, prompt, s in stored_paths(store, run, model=model, exclude_runs=exclude_runs, task=task):
        if (s["item"], s["model"], s["params"], s["idx"]) in have:
            skipped += 1
            continue
        if limit is not None and done >= limit:
            break
        steps = steps_of(s["text"])
        if not steps:
            continue
        prefixes = [STEP.join(steps[: j + 1]) + STEP for j in range(len(steps) - 1)]
        params = json.loads(s["params"])
        requests = [GenerationRequest(prompt, n=k, prefix=prefix, params=SamplingParams(
            temperature=temperature, top_p=params.get("top_p", 0.95), top_k=params.get("top_k", 40),
            max_tokens=max_tokens, seed=seed + 1000 * j)) for j, prefix in enumerate(prefixes)]
        completions = await generator.generate(requests) if requests else []
        labels = []
        usage = Usage()
        for prefix, c in zip(prefixes, completions, strict=True):
            usage = usage + c.usage
            right = sum(1 for x in c.samples if scorer.score(problem, prefix + x.text) > 0)
            labels.append(right / len(c.samples))
        labels.append(1.0 if s["correct"] > 0 else 0.0)  # the last step: the path's own outcome
        store.put_step_labels(s, labels, k, usage)
        spent = spent + usage
        done += 1
        steps_total += len(labels)
    return LabelReport(done, skipped, steps_total, spent.completion_tokens, spent.prompt_tokens)


def hard_labels(store, run: str) -> dict[tuple[str, str, str, int], list[bool]]:
    """Each labelled path's hard step labels (some rollout from the step reached the answer), for the PRM export."""
    return {key: [x > 0 for x in row["labels"]] for key, row in store.step_labels(run).items()}
