"""Runs one its_hub approach on questions, inside its_hub's own virtual environment (bench/peers.py makes it): reads
a JSON job on stdin, writes one JSON line per question with the text its_hub chose. Imports only its_hub and the
standard library: no ponder code runs here.

Approaches: ``self_consistency`` as shipped (votes on the whole response text), ``self_consistency_answer`` with
the smallest fix (votes on the number after "The answer is", else the last number: its_hub's documented
``consistency_space_projection_func``), ``best_of_n`` with its LLMJudge on the same model (as shipped).
"""

import asyncio
import json
import sys
import time

from stated_answer import answer_projection  # this folder: standard library only


async def main() -> None:
    from its_hub.core.algorithms.bon import BestOfN
    from its_hub.core.algorithms.self_consistency import SelfConsistency
    from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel
    from its_hub.core.reward_models.llm_judge import LLMJudge

    job = json.load(sys.stdin)
    lm = OpenAICompatibleLanguageModel(endpoint=job["endpoint"], api_key="none", model_name=job["model"],
                                       max_tokens=job["max_tokens"], temperature=job["temperature"], max_tries=2)
    approach = job["approach"]
    if approach == "self_consistency":
        algo = SelfConsistency()
    elif approach == "self_consistency_answer":
        algo = SelfConsistency(consistency_space_projection_func=answer_projection)
    elif approach == "best_of_n":
        judge = OpenAICompatibleLanguageModel(endpoint=job["endpoint"], api_key="none", model_name=job["model"],
                                              max_tokens=64, temperature=0.0, max_tries=2)
        algo = BestOfN(LLMJudge(judge))
    else:
        raise SystemExit(f"unknown its_hub approach {approach!r}")
    for q in job["questions"]:
        t0 = time.time()
        try:
            out = await algo.ainfer(lm, q["prompt"], budget=job["budget"], return_response_only=True)
            text = out.get("content") if isinstance(out, dict) else str(out)
            rec = {"id": q["id"], "text": text or "", "error": None}
        except Exception as exc:  # a peer's failure is a result of the comparison, recorded per item
            rec = {"id": q["id"], "text": "", "error": f"{type(exc).__name__}: {exc}"[:500]}
        rec["seconds"] = round(time.time() - t0, 3)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
