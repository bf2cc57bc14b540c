"""Confidence from the trace's own token logprobs (DeepConf, Fu et al. 2025, arXiv:2508.15260): free to compute,
since the generator returns the logprobs while sampling.

Token confidence here is the chosen token's probability; a trace's confidence is ``exp`` of the mean logprob
(``mean``), of the weakest sliding window of ``window`` tokens (``lowest_window``, DeepConf's lowest group
confidence), or of the last ``window`` tokens (``tail``). DeepConf defines token confidence from the top-k
alternatives; this chosen-token form needs no extra logprobs (it is what the embedded backend returns at
``logprobs=0``), at the price of being a different, if related, signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from ponder.types import Problem, Trace

Mode = Literal["mean", "lowest_window", "tail"]


def trace_confidence(logprobs: Sequence[float], mode: Mode = "mean", window: int = 32) -> float | None:
    """
    >>> round(trace_confidence([-0.1, -0.1, -2.0, -0.1], "mean"), 3)
    0.563
    >>> round(trace_confidence([-0.1, -0.1, -2.0, -0.1], "lowest_window", window=2), 3)
    0.35
    """
    if not logprobs:
        return None
    if mode == "mean" or len(logprobs) <= window:
        return math.exp(sum(logprobs) / len(logprobs))
    if mode == "tail":
        tail = logprobs[-window:]
        return math.exp(sum(tail) / len(tail))
    if mode == "lowest_window":
        s = sum(logprobs[:window])
        worst = s
        for i in range(window, len(logprobs)):
            s += logprobs[i] - logprobs[i - window]
            worst = min(worst, s)
        return math.exp(worst / window)
    raise ValueError(f"unknown confidence mode {mode!r}")


class ConfidenceScorer:
    """Scores traces by their own token confidence; abstains (``None``) on traces without logprobs."""

    def __init__(self, mode: Mode = "mean", window: int = 32):
        self.mode, self.window = mode, window
        self.name = f"confidence-{mode}"

    async def score(self, problem: Problem, traces: Sequence[Trace]) -> list[float | None]:
        return [trace_confidence(t.logprobs, self.mode, self.window) if t.logprobs else None for t in traces]

    async def score_steps(self, problem: Problem, traces: Sequence[Trace]) -> list[list[float] | None]:
        out: list[list[float] | None] = []
        for t in traces:
            if t.step_logprobs is None:
                out.append(None)
                continue
            out.append([trace_confidence(lp, self.mode, self.window) or 0.0 for lp in t.step_logprobs])
        return out
