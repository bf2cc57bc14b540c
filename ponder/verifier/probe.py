"""A learned verifier that sees: a small classifier on the policy's own hidden states (the final hidden state at the
last token of question + path), trained on the model's own labelled traces (ThoughtProbe, LiLaVe and ReProbe probe
hidden states; CLUE's centroids are the training-free baseline here).

- ``logistic``: L2-regularised logistic regression on standardised features, fitted by Newton's method (exact, a
  few iterations, numpy only).
- ``centroid``: CLUE-style: the cosine similarity to the right paths' mean state minus that to the wrong paths'.

A probe may also see the answer a path votes for (``sees_answer``: four numbers of :mod:`ponder.verifier.features`
after the state), which the state of the path's text holds poorly.

A probe is one JSON file (a few kilobytes per thousand features) naming the sha256 of the model whose states it
reads; scoring with another model's states is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ponder.errors import InvalidRequest
from ponder.verifier.features import with_answer_features

VERSION = 1
Kind = Literal["logistic", "centroid"]


@dataclass(frozen=True)
class Probe:
    kind: Kind
    model_sha256: str
    dim: int
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]  # logistic: coefficients; centroid: the right centroid then the wrong one
    bias: float = 0.0
    model_name: str = ""
    trained_on: str = ""
    metrics: dict = field(default_factory=dict)
    # the instruction the training paths were drawn under (a template's text, e.g. PAL's), so paths are read alike;
    # None: the problem's own instruction
    instruction: str | None = None
    # the last four features are the path's answer (ponder.verifier.features), not its hidden state
    sees_answer: bool = False
    version: int = VERSION

    def check_model(self, sha256: str) -> None:
        if sha256 != self.model_sha256:
            raise InvalidRequest(f"this probe reads the hidden states of the model with sha256 {self.model_sha256[:12]}… "
                                 f"({self.model_name or 'unnamed'}); the generator's model is {sha256[:12]}…: train one "
                                 f"for it with `ponder verifier train`")

    def features(self, states: np.ndarray, answers: Sequence[str | None]) -> np.ndarray:
        """The rows this probe scores: the hidden states, and the answers' features when it sees answers."""
        if not self.sees_answer:
            return np.asarray(states, dtype=np.float64)
        return with_answer_features(states, answers)

    def score(self, features: np.ndarray) -> np.ndarray:
        """P(right) for each row of features (the centroid score squashed to (0, 1))."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidRequest(f"the probe expects {self.dim} features a path, got shape {x.shape}")
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        w = np.asarray(self.weights)
        if self.kind == "logistic":
            return _sigmoid(z @ w + self.bias)
        right, wrong = w[: self.dim], w[self.dim:]
        return _sigmoid(8.0 * (_cosine(z, right) - _cosine(z, wrong)))

    def fingerprint(self) -> str:
        """A short hash of what the probe computes (its kind, model and fitted numbers, not its notes): two files
        with the same fingerprint score every path alike."""
        fitted = [self.kind, self.model_sha256, self.mean, self.scale, self.weights, self.bias, self.instruction]
        fitted = json.dumps(fitted + ["sees_answer"] if self.sees_answer else fitted)
        return hashlib.sha256(fitted.encode()).hexdigest()[:12]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        d = asdict(self)
        path.write_text(json.dumps({**d, "mean": [round(v, 6) for v in d["mean"]], "scale": [round(v, 6) for v in d["scale"]],
                                    "weights": [round(v, 6) for v in d["weights"]]}) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Probe:
        try:
            d = json.loads(Path(path).read_text())
            if d.get("version") != VERSION:
                raise ValueError(f"probe file version {d.get('version')}, this ponder reads {VERSION}")
            return cls(kind=d["kind"], model_sha256=d["model_sha256"], dim=int(d["dim"]), mean=tuple(d["mean"]),
                       scale=tuple(d["scale"]), weights=tuple(d["weights"]), bias=float(d.get("bias", 0.0)),
                       model_name=d.get("model_name", ""), trained_on=d.get("trained_on", ""), metrics=d.get("metrics", {}),
                       instruction=d.get("instruction"), sees_answer=bool(d.get("sees_answer", False)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"cannot read the probe {path}: {exc}") from None


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def _cosine(z: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (z @ c) / (np.linalg.norm(z, axis=1) * (np.linalg.norm(c) or 1.0) + 1e-12)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    return mean, scale


def fit(features: np.ndarray, labels: np.ndarray, *, kind: Kind = "logistic", l2: float = 1.0, model_sha256: str,
        model_name: str = "", trained_on: str = "", iterations: int = 25) -> Probe:
    """A probe fitted on ``features`` (n × dim) and 0/1 ``labels``."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise InvalidRequest(f"a probe needs at least 2 labelled feature rows, got {x.shape} and {y.shape}")
    if y.min() == y.max():
        raise InvalidRequest("a probe needs right and wrong paths both: every label here is the same")
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    if kind == "centroid":
        w = np.concatenate([z[y > 0].mean(axis=0), z[y <= 0].mean(axis=0)])
        return Probe("centroid", model_sha256, x.shape[1], tuple(mean), tuple(scale), tuple(w), 0.0, model_name, trained_on)
    n, d = z.shape
    a = np.hstack([z, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = _sigmoid(a @ w)
        grad = a.T @ (p - y) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg + 1e-9)  # (dim + 1)², small for these models
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return Probe("logistic", model_sha256, d, tuple(mean), tuple(scale), tuple(w[:-1]), float(w[-1]), model_name, trained_on)


def auroc(scores, labels) -> float | None:
    """The chance that a right path scores above a wrong one (ties count half); None without both.

    >>> auroc([0.9, 0.8, 0.1], [1, 0, 0]), auroc([0.5, 0.5], [1, 0])
    (1.0, 0.5)
    """
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = sorted(s for s, y in zip(scores, labels, strict=True) if not y)
    if not pos or not neg:
        return None
    from bisect import bisect_left, bisect_right

    total = sum(bisect_left(neg, s) + 0.5 * (bisect_right(neg, s) - bisect_left(neg, s)) for s in pos)
    return total / (len(pos) * len(neg))


def log_loss(scores, labels) -> float:
    eps = 1e-9
    return -sum(math.log(s + eps) if y else math.log(1 - s + eps) for s, y in zip(scores, labels, strict=True)) / max(1, len(labels))
