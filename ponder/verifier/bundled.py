"""The probes that ship with ponder (``ponder/verifier/probes/*.json``): a learned verifier for a model ponder's
registry serves, found by the sha256 of the model whose hidden states it reads. ``probe`` with no path scores with
the one shipped for the generator's model; ``ponder serve`` offers it as ``probe?name=default``."""

from __future__ import annotations

import json
from pathlib import Path

PROBES = Path(__file__).parent / "probes"


def shipped() -> dict[str, Path]:
    """model sha256 -> the shipped probe file for that model."""
    out: dict[str, Path] = {}
    for f in sorted(PROBES.glob("*.json")):
        try:
            out[json.loads(f.read_text())["model_sha256"]] = f
        except (OSError, ValueError, KeyError):
            continue  # a damaged file is skipped here; naming it by path gives its error
    return out


def shipped_probe(model_sha256: str) -> Path | None:
    return shipped().get(model_sha256)
