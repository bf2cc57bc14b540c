"""A client for a reward model served over HTTP: a process reward model (PRM, one score per step) or an outcome
reward model (ORM, one score per answer), as vLLM serves them.

- ``prm``: POST ``{base}/pooling`` with ``{"model", "input": [text, ...]}`` where each text is the question and
  the steps joined by ``step_separator`` (``<extra_0>`` for Qwen2.5-Math-PRM); the response holds, per input,
  one ``[p_negative, p_positive]`` row per separator: the step scores are the ``positive_index`` column.
- ``orm``: POST ``{base}/classify`` with ``{"model", "input": [text, ...]}``; the response holds per input
  ``probs``; the score is ``probs[positive_index]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx

from ponder.errors import BackendError, InvalidRequest
from ponder.http import post_json
from ponder.types import Problem, Trace


class RewardHTTPScorer:
    def __init__(self, url: str, *, model: str = "reward", kind: Literal["prm", "orm"] = "prm", step_separator: str = "<extra_0>",
                 positive_index: int = 1, timeout: float = 120.0, max_retries: int = 3, backoff: float = 0.5, max_concurrency: int = 4):
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"reward server URL must start with http:// or https://, got {url!r}")
        if kind not in ("prm", "orm"):
            raise InvalidRequest(f"reward model kind must be prm or orm, got {kind!r}")
        base = url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.model, self.kind, self.sep, self.pos = model, kind, step_separator, positive_index
        self.timeout, self.max_retries, self.backoff, self.max_concurrency = timeout, max_retries, backoff, max_concurrency
        self.name = f"reward-{kind}({self.base_url})"

    def _text(self, problem: Problem, trace: Trace) -> str:
        steps = trace.steps or (trace.text,)
        return problem.question + "\n\n" + self.sep.join(s.strip() for s in steps) + self.sep

    async def _post(self, path: str, inputs: list[str]) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            data = await post_json(client, self.base_url + path, {"model": self.model, "input": inputs},
                                   max_retries=self.max_retries, backoff=self.backoff)
        rows = data.get("data")
        if not isinstance(rows, list) or len(rows) != len(inputs):
            raise BackendError(f"{self.base_url}{path} returned {len(rows) if isinstance(rows, list) else 'no'} results for {len(inputs)} inputs")
        return sorted(rows, key=lambda r: r.get("index", 0))

    def _positive(self, row: Any) -> float:
        if isinstance(row, (int, float)):
            return float(row)
        return float(row[self.pos] if len(row) > 1 else row[0])

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]:
        if not traces:
            return []
        if self.kind != "prm":
            return [None] * len(traces)
        rows = await self._post("/pooling", [self._text(problem, t) for t in traces])
        out: list[list[float] | None] = []
        for t, r in zip(traces, rows, strict=True):
            per_step = r.get("data") or []
            scores = [self._positive(x) for x in per_step]
            out.append(scores[: len(t.steps or (t.text,))] or None)
        return out

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]:
        if not traces:
            return []
        if self.kind == "prm":
            steps = await self.score_steps(problem, traces)
            return [s[-1] if s else None for s in steps]  # a PRM's outcome score: its last step's
        rows = await self._post("/classify", [problem.question + "\n\n" + t.text for t in traces])
        return [self._positive(r.get("probs") or r.get("data") or [0.0]) for r in rows]
