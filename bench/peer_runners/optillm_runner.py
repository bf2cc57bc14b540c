"""Runs one optillm approach on questions, inside optillm's own virtual environment (bench/peers.py makes it): reads
a JSON job on stdin, writes one JSON line per question with the text optillm chose. Imports only optillm, its
OpenAI client and the standard library: no ponder code runs here.

optillm's approaches are plain functions over an OpenAI client (its proxy server only routes a request to one by
the model-name prefix), so they are called directly, pointed at the upstream:

- ``self_consistency`` as shipped: 5 samples at temperature 1, grouped by whole-text similarity
  (difflib ratio >= 0.8), the first sample of the largest group returned;
- ``self_consistency_answer``, the smallest fix: optillm's own sampler with ``budget`` samples, and a vote on the
  stated answer (the number after "The answer is", else the last number) instead of text similarity;
- ``bon``: best-of-N with ``n = budget`` (optillm rates each completion with the same model);
- ``moa``: mixture of agents (3 candidates, critiques, a final synthesis: optillm's fixed shape);
- ``re2``: re-reading (the question stated twice), one completion;
- ``cot_reflection``: thinking, reflection and output sections, one completion.
"""

import json
import sys
import time
from collections import Counter

from stated_answer import answer_projection  # this folder: standard library only


def voted_on_answers(responses: list[str]) -> str:
    """The first response whose stated answer is the most frequent one."""
    if not responses:
        return ""
    counts = Counter(answer_projection(r) for r in responses)
    top = max(counts.values())
    return next(r for r in responses if counts[answer_projection(r)] == top)


def run(approach: str, client, model: str, system: str, query: str, budget: int, config: dict) -> str:
    from optillm.bon import best_of_n_sampling
    from optillm.cot_reflection import cot_reflection
    from optillm.moa import mixture_of_agents
    from optillm.reread import re2_approach
    from optillm.self_consistency import AdvancedSelfConsistency, advanced_self_consistency_approach

    if approach == "self_consistency":
        return advanced_self_consistency_approach(system, query, client, model, request_config=config)[0]
    if approach == "self_consistency_answer":
        sampler = AdvancedSelfConsistency(client, model, num_samples=budget, request_config=config)
        return voted_on_answers(sampler.generate_responses(system, query))
    if approach == "bon":
        return best_of_n_sampling(system, query, client, model, n=budget, request_config=config)[0]
    if approach == "moa":
        return mixture_of_agents(system, query, client, model, request_config=config)[0]
    if approach == "re2":
        return re2_approach(system, query, client, model, request_config=config)[0]
    if approach == "cot_reflection":
        return cot_reflection(system, query, client, model, request_config=config)[0]
    raise SystemExit(f"unknown optillm approach {approach!r}")


def main() -> None:
    from openai import OpenAI

    job = json.load(sys.stdin)
    client = OpenAI(base_url=job["endpoint"], api_key="none", timeout=3600, max_retries=1)
    config = {"max_tokens": job["max_tokens"]}
    for q in job["questions"]:
        t0 = time.time()
        try:
            text = run(job["approach"], client, job["model"], "", q["prompt"], job["budget"], config)
            rec = {"id": q["id"], "text": text if isinstance(text, str) else json.dumps(text), "error": None}
        except Exception as exc:  # a peer's failure is a result of the comparison, recorded per item
            rec = {"id": q["id"], "text": "", "error": f"{type(exc).__name__}: {exc}"[:500]}
        rec["seconds"] = round(time.time() - t0, 3)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
