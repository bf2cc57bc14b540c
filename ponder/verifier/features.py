"""What a probe may see beside the hidden state: the answer a path votes for, as a few numbers its text's last-token
state does not hold well (bench/verifier.py measured it: the within-question AUROC of the 0.5B's programs rose from
0.61 to 0.71 with these four)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ANSWER_FEATURES = ("answered", "integer", "non_negative", "log10_magnitude")


def with_answer_features(states: np.ndarray, keys: Sequence[str | None]) -> np.ndarray:
    """The hidden states with each path's answer features after them: the rows a probe that sees answers reads."""
    return np.hstack([np.asarray(states, dtype=np.float64), answer_features(keys)])


def answer_features(keys: Sequence[str | None]) -> np.ndarray:
    """One row per answer key (``Candidate.key``, None for an abstention): whether it is a number at all, an integer,
    a non-negative one, and its magnitude (log10). No vote share: the vote already counts that.

    >>> answer_features(["12", "-2.5", None, "seven"]).tolist()
    [[1.0, 1.0, 1.0, 1.1139], [1.0, 0.0, 0.0, 0.5441], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    out = []
    for key in keys:
        try:
            v = float(key) if key is not None else None
        except ValueError:
            v = None
        out.append([0.0] * 4 if v is None or not math.isfinite(v) else
                   [1.0, float(v == int(v)), float(v >= 0), round(math.log10(abs(v) + 1), 4)])
    return np.array(out, dtype=np.float64).reshape(len(keys), len(ANSWER_FEATURES))
