"""The sandbox's cost per program: how many model-written programs ponder can run per second, kernel-isolated.

Runs a trivial program (``print(6 * 7)``) and a small arithmetic program (what program-aided reasoning writes)
many times, one at a time and ``--parallel`` at once (a vote over 16 programs per question runs them that way),
under the kernel sandbox (bubblewrap + seccomp + nobody) and, side by side in the same run, under the weaker
process mode and a bare ``python -I`` subprocess, the floor any process-per-program design pays. Also the
boundary's cost: one HumanEval-style check (candidate and checker, two sandboxes).

    .venv/bin/python -m bench.sandbox            # writes bench/results/sandbox.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import write_result
from ponder.sandbox import SandboxLimits, run_python
from ponder.sandbox.boundary import check_with_tests
from ponder.sandbox.isolation import base_python

TRIVIAL = "print(6 * 7)"
ARITHMETIC = "muffins = 14 * 3\ncookies = 23 * 2\ntotal = muffins + cookies\nprint(total)\n"


def _bare(code: str) -> None:
    subprocess.run([base_python()[0], "-I", "-c", code], capture_output=True, check=True)


def rate(fn, n: int, parallel: int) -> dict:
    """Programs per second and per-program latency (median, p95) of ``n`` calls of ``fn``, ``parallel`` at once."""
    lat: list[float] = []

    def one(_):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"programs": n, "parallel": parallel, "seconds": round(wall, 3), "programs_per_second": round(n / wall, 2),
            "median_ms": round(1000 * statistics.median(lat), 1), "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=64, help="programs per measurement")
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args()
    kernel, weak = SandboxLimits(wall_seconds=10, isolation="kernel"), SandboxLimits(wall_seconds=10, isolation="process")

    def checked(limits, code):
        def go():
            r = run_python(code, limits=limits)
            assert r.ok and r.stdout.strip() in ("42", "88"), r
        return go

    rows = {}
    for label, fn in (("bare_python", lambda: _bare(TRIVIAL)), ("process_sandbox", checked(weak, TRIVIAL)),
                      ("kernel_sandbox", checked(kernel, TRIVIAL)), ("kernel_sandbox_arithmetic", checked(kernel, ARITHMETIC))):
        fn()  # warm: the kernel sandbox's one-time probe, page cache
        rows[label] = {"sequential": rate(fn, args.n, 1), "parallel": rate(fn, args.n, args.parallel)}
        print(f"{label:28s} sequential {rows[label]['sequential']['programs_per_second']:7.2f}/s "
              f"(median {rows[label]['sequential']['median_ms']:.0f} ms)  x{args.parallel} "
              f"{rows[label]['parallel']['programs_per_second']:7.2f}/s", flush=True)
    vote = rate(checked(kernel, ARITHMETIC), 16, args.parallel)
    print(f"16 programs of one vote, {args.parallel} at a time: {vote['seconds']:.2f} s", flush=True)
    check = rate(lambda: check_with_tests("def add(a, b):\n    return a + b\n", "def check(c):\n    assert c(2, 3) == 5\n",
                                          entry_point="add", limits=kernel), max(8, args.n // 4), 1)
    print(f"one HumanEval-style check across the boundary: median {check['median_ms']:.0f} ms", flush=True)
    k, b = rows["kernel_sandbox"]["sequential"], rows["bare_python"]["sequential"]
    headline = {
        "kernel_programs_per_second": rows["kernel_sandbox"]["parallel"]["programs_per_second"],
        "kernel_programs_per_second_sequential": k["programs_per_second"],
        "process_programs_per_second_sequential": rows["process_sandbox"]["sequential"]["programs_per_second"],
        "bare_python_programs_per_second_sequential": b["programs_per_second"],
        "kernel_overhead_ms_over_bare_python": round(k["median_ms"] - b["median_ms"], 1),
        "sixteen_program_vote_seconds": vote["seconds"],
        "boundary_check_median_ms": check["median_ms"],
    }
    out = write_result("sandbox", headline, models_used=[], seeds=[], details={"rows": rows, "vote16": vote, "check": check,
                                                                              "python": sys.version.split()[0]})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
