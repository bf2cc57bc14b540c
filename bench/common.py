"""Helpers shared by the benchmarks: provenance of a run and writing bench/results/NAME.json."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from ponder import models

RESULTS = Path(__file__).parent / "results"


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        # the benchmarks' own outputs (bench/results/, the committed store among them, and the page generated from
        # them) are not the code that ran
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results",
                                ":(exclude)docs/benchmarks.md"],
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    from ponder.evaluation.contention import cpu_model

    return cpu_model()


def model_provenance(name: str) -> dict:
    """Registry name, file and sha256 (verified when pulled) of the model a benchmark ran."""
    path = models.resolve(name)
    sha = models.spec(name).sha256 if name in models.REGISTRY else models.sha256_file(path)
    return {"name": name, "file": path.name, "sha256": sha}


# the keys write_result adds around a benchmark's headline keys
META = ("benchmark", "models", "seeds", "commit", "date", "machine", "details")


def write_result(name: str, headline: dict, *, models_used: list[str], seeds: list[int], details: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    record = {
        "benchmark": name,
        **headline,
        "models": [model_provenance(m) for m in models_used],
        "seeds": seeds,
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_name()},
        "details": details,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    return out


def busy_machine_warning(seconds: float = 1.0) -> str | None:
    """A warning when other processes keep the CPU busy now (measured over ``seconds``), else None: a benchmark's
    seconds are only comparable on a quiet machine, and llama.cpp slows far more than in proportion when it shares
    its cores (ponder.evaluation.contention). Every result still records what it saw (``other_cpu``)."""
    from ponder.evaluation.contention import CONTENDED_CORES, CpuWindow

    window = CpuWindow.start()
    time.sleep(seconds)
    other = window.other_cores()
    if other is None or other < CONTENDED_CORES:
        return None
    return (f"other processes are using {other:.1f} of {os.cpu_count()} cores: the seconds measured now will be inflated "
            f"(each result records it as other_cpu; its summary row as `contended`)")
