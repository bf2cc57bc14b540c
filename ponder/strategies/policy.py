"""The runtime half of difficulty-aware allocation: a fitted policy (per agreement bin, the strategy and budget to
spend) and the probe's agreement signal. ``auto?policy=...`` reads it at inference; fitting it from a stored run is
``ponder.evaluation.policy_fit`` (strategies never import the evaluator).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ponder.errors import InvalidRequest

# fitted by `ponder policy fit` on bench/scaling.py's store (see README, "Adaptive compute"); `auto?policy=default`
POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
DEFAULT_POLICY = POLICY_DIR / "default.json"
EDGES = (0.5, 0.75, 1.0)  # agreement bins: [0, .5), [.5, .75), [.75, 1), [1]


@dataclass(frozen=True)
class Bin:
    max_agreement: float  # this bin holds probe agreement < max_agreement (the last bin: == 1)
    strategy: str
    budget: int
    items: int
    accuracy: float
    tokens: float


@dataclass(frozen=True)
class Policy:
    probe: int
    cost_weight: float
    bins: tuple[Bin, ...]
    fitted_on: str

    def choose(self, agreement: float) -> Bin:
        for b in self.bins:
            if agreement < b.max_agreement or b is self.bins[-1]:
                return b
        return self.bins[-1]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, ref: str | Path | dict) -> Policy:
        """A policy: ``default`` (the one shipped with ponder), a file path (the library and the CLI; the server
        takes names only and passes the policy it loaded at start inline), or the policy itself as a dict."""
        if isinstance(ref, dict):
            return cls.from_dict(ref, "the inline policy")
        path = DEFAULT_POLICY if str(ref) == "default" else Path(ref)
        try:
            return cls.from_dict(json.loads(path.read_text()), str(path))
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"cannot read the policy {ref}: {exc}") from None

    @classmethod
    def from_dict(cls, d: dict, where: str = "the policy") -> Policy:
        try:
            return cls(int(d["probe"]), float(d["cost_weight"]), tuple(Bin(**b) for b in d["bins"]), str(d.get("fitted_on", "?")))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"{where} is not a ponder policy: {exc}") from None

    def to_dict(self) -> dict:
        return {"probe": self.probe, "cost_weight": self.cost_weight, "fitted_on": self.fitted_on,
                "bins": [asdict(b) for b in self.bins]}


def load_named_policies(directory: str | Path | None) -> dict[str, Policy]:
    """The policies a server offers by name: ``default`` (shipped) and each ``NAME.json`` in ``directory``."""
    found = {"default": Policy.load("default")}
    if directory is not None:
        d = Path(directory)
        if not d.is_dir():
            raise InvalidRequest(f"the policy directory {d} does not exist")
        for f in sorted(d.glob("*.json")):
            if f.is_file() and f.stat().st_size < 1 << 20:
                found[f.stem] = Policy.load(f)
    return found


def probe_agreement(keys: list[str | None]) -> float:
    """
    >>> probe_agreement(["4", "4", "5", None]), probe_agreement([None, None])
    (0.5, 0.0)
    """
    if not keys:
        return 0.0
    counts = Counter(k for k in keys if k is not None)
    return max(counts.values()) / len(keys) if counts else 0.0
