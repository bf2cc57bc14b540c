"""How much of the machine other processes used while a measurement ran.

A benchmark's seconds are only honest on a quiet machine. llama.cpp's worker threads wait for each other at every
graph barrier; when another process holds a core, one of them is descheduled and the whole step waits for it.
Measured on 2 cores (2026-12-05): a 4-sequence decode step of the 0.5B model took 0.1 s alone and 0.8-2.7 s while
another llama.cpp process ran, so two benchmarks side by side each ran 6-10x slower, not 2x. The evaluator records,
with every result, how many cores' worth of CPU time other processes used on average while it was measured
(``other_cpu``), so a reader can tell a quiet measurement from a shared one.

On Linux this reads ``/proc/stat`` (every process's busy time) and subtracts this process's own time, its threads
and its waited-for children (the sandboxed programs) included; elsewhere it records nothing (None).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

# an item counts as measured on a shared machine when other processes used at least this many cores on average
CONTENDED_CORES = 0.5


@functools.cache
def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``, read once a process), else what the platform says: recorded
    with every result, so seconds measured on another machine are never read as if measured on this one."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_label(values: list[str | None]) -> str | None:
    """What a summary row says about the machines its results were measured on: the one name, or each with its
    count when they differ (results that recorded none are left out); None if none was recorded.

    >>> machine_label(["Xeon", "Xeon", None]), machine_label([None]), machine_label(["EPYC", "Xeon", "Xeon"])
    ('Xeon', None, 'Xeon (2), EPYC (1)')
    """
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), None)
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _busy_seconds() -> float | None:
    """Every process's busy CPU seconds since boot (user, nice, system, irq, softirq, steal), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in (fields[1:9] + ["0"] * 8)[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class CpuWindow:
    """A start point: ``other_cores()`` says how many cores other processes kept busy on average since."""

    wall: float
    busy: float | None
    own: float

    @classmethod
    def start(cls) -> CpuWindow:
        return cls(time.monotonic(), _busy_seconds(), _own_seconds())

    def other_cores(self) -> float | None:
        """Average cores used by other processes since ``start`` (>= 0), or None where it cannot be read."""
        busy = _busy_seconds()
        elapsed = time.monotonic() - self.wall
        if busy is None or self.busy is None or elapsed <= 0:
            return None
        return max(0.0, (busy - self.busy) - (_own_seconds() - self.own)) / elapsed


def contended_share(values: list[float | None]) -> float | None:
    """The share of measurements taken while other processes used >= ``CONTENDED_CORES``; None if none was recorded.

    >>> contended_share([0.0, 1.9, None, 0.1]), contended_share([None, None])
    (0.3333333333333333, None)
    """
    known = [v for v in values if v is not None]
    return sum(1 for v in known if v >= CONTENDED_CORES) / len(known) if known else None
