"""Step-score aggregation and small helpers shared by scorers and the strategies that use them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

Aggregate = Literal["last", "min", "prod", "mean"]


def aggregate(step_scores: Sequence[float] | None, how: Aggregate = "last") -> float | None:
    """One number for a trace from its step scores, as in search-and-learn: the last step's (PRM default),
    the weakest step's, their product, or their mean. ``None`` when there is nothing to aggregate.

    >>> aggregate([0.9, 0.5, 0.8], "last"), aggregate([0.9, 0.5, 0.8], "min"), round(aggregate([0.9, 0.5], "prod"), 2)
    (0.8, 0.5, 0.45)
    """
    if not step_scores:
        return None
    if how == "last":
        return float(step_scores[-1])
    if how == "min":
        return float(min(step_scores))
    if how == "prod":
        return float(math.prod(step_scores))
    if how == "mean":
        return float(sum(step_scores) / len(step_scores))
    raise ValueError(f"unknown aggregation {how!r}; use last, min, prod or mean")
