"""The code sandbox contains hostile candidates: each attack fails its check and harms nothing."""

import asyncio
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from ponder.scorers.code import CodeVerifier, extract_program
from ponder.scorers.sandbox import SandboxLimits, run_python, run_tests
from ponder.types import Problem, Trace

FAST = SandboxLimits(wall_seconds=5, cpu_seconds=2, memory_mb=256)


def test_a_good_program_runs_and_reports():
    r = run_python("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 3", limits=FAST)
    assert r.ok and r.stdout.strip() == "6"


def test_infinite_loop_is_stopped():
    r = run_python("while True:\n    pass", limits=FAST)
    assert not r.ok and (r.timed_out or r.signal in ("SIGXCPU", "SIGKILL")) and r.seconds < 10


def test_sleeping_forever_hits_the_wall_timeout():
    r = run_python("import time\ntime.sleep(100)", limits=SandboxLimits(wall_seconds=1.5))
    assert r.timed_out and r.seconds < 5


def test_fork_bomb_is_contained():
    before = len(os.listdir("/proc"))
    r = run_python("import os\nwhile True:\n    os.fork()", limits=FAST)
    assert not r.ok
    r = run_python("import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])", limits=FAST)
    assert not r.ok
    r = run_python("import multiprocessing\nmultiprocessing.Process(target=print).start()", limits=FAST)
    assert not r.ok
    assert len(os.listdir("/proc")) < before + 20  # nothing left running


def test_memory_hog_is_refused():
    r = run_python("x = bytearray(3 * 1024 ** 3)\nprint('allocated')", limits=FAST)
    assert not r.ok and "allocated" not in r.stdout and "MemoryError" in r.stderr


def test_writing_outside_its_directory_is_refused(tmp_path):
    target = Path("/tmp") / f"ponder-escape-{uuid.uuid4().hex}"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    code = f"""
import os, pathlib
for attempt in (lambda: open({str(target)!r}, "w").write("x"),
                lambda: pathlib.Path({str(target)!r}).write_text("x"),
                lambda: os.open({str(target)!r}, os.O_CREAT | os.O_WRONLY),
                lambda: os.remove({str(victim)!r}),
                lambda: os.rename({str(victim)!r}, "stolen.txt")):
    try:
        attempt()
        print("ESCAPED")
    except Exception as e:
        print("blocked", type(e).__name__)
open("inside.txt", "w").write("fine")  # its own directory is writable
print(open("inside.txt").read())
"""
    r = run_python(code, limits=FAST)
    assert "ESCAPED" not in r.stdout and r.stdout.count("blocked") == 5 and "fine" in r.stdout
    assert not target.exists() and victim.read_text() == "keep me"


def test_opening_a_socket_is_refused():
    received = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(3)
    port = srv.getsockname()[1]

    def accept():
        try:
            conn, _ = srv.accept()
            received.append(conn.recv(100))
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    r = run_python(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}))\ns.sendall(b'leak')\nprint('sent')", limits=FAST)
    r2 = run_python(f"import _socket\nprint('sent')", limits=FAST)
    t.join(5)
    srv.close()
    assert "sent" not in r.stdout and "sent" not in r2.stdout and received == []


def test_killing_its_parent_fails_and_the_parent_lives():
    code = """
import os, signal
for attempt in (lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.killpg(os.getpgid(os.getppid()), 9),
                lambda: signal.pthread_kill(1, 9), lambda: __import__("ctypes").CDLL(None).kill(os.getppid(), 9)):
    try:
        attempt()
        print("KILLED")
    except Exception as e:
        print("blocked", type(e).__name__)
"""
    r = run_python(code, limits=FAST)
    assert "KILLED" not in r.stdout and r.stdout.count("blocked") == 4
    assert os.getpid() > 0  # we are still here to assert it


def test_the_audit_hook_cannot_be_removed_or_escaped_by_exec():
    for code in ("import sys\nsys.addaudithook(lambda *a: None)\nexec('import os; os.system(\"true\")')",
                 "import importlib, os\nimportlib.reload(os)\nos.system('true')",
                 "import posix\nposix.system('true')",
                 "import subprocess\nsubprocess.run(['true'])"):
        r = run_python(code, limits=FAST)
        assert not r.ok and ("not allowed" in r.stderr or "has no attribute" in r.stderr), (code, r.stderr)


def test_environment_is_clean(monkeypatch):
    monkeypatch.setenv("PONDER_SECRET_TOKEN", "hunter2")
    r = run_python("import os\nprint(sorted(os.environ))\nprint(os.getcwd())", limits=FAST)
    assert "PONDER_SECRET_TOKEN" not in r.stdout and "ponder-sandbox-" in r.stdout


def test_run_tests_and_the_code_verifier():
    program = "def add(a, b):\n    return a + b\n"
    assert run_tests(program, "assert add(2, 3) == 5", limits=FAST).ok
    assert not run_tests(program, "assert add(2, 3) == 6", limits=FAST).ok
    problem = Problem("Write add(a, b).", metadata=(("tests", "def check(f):\n    assert f(2, 3) == 5\n"), ("entry_point", "add")))
    good = Trace.of("Sure:\n```python\ndef add(a, b):\n    return a + b\n```")
    bad = Trace.of("```python\ndef add(a, b):\n    return a - b\n```")
    hostile = Trace.of("```python\nimport os\nos.kill(os.getppid(), 9)\ndef add(a, b):\n    return a + b\n```")
    scores = asyncio.run(CodeVerifier(FAST).score(problem, [good, bad, hostile]))
    assert scores == [1.0, 0.0, 0.0]
    assert asyncio.run(CodeVerifier(FAST).score(Problem("no tests"), [good])) == [None]


def test_program_extraction_joins_a_signature_prompt():
    assert extract_program("    return a + b\n", "def add(a, b):\n") == "def add(a, b):\n    return a + b\n"
