"""Hostile programs against the sandbox: each attack must fail and harm nothing.

Standard library and ``ponder.sandbox`` only, so that the same corpus runs under pytest as whoever runs the tests
(root on CI) and, from ``tests/test_sandbox.py``, as a plain script under an unprivileged user:

    python tests/hostile.py        # prints one line per attack and 'N passed, N failed'

Every attack runs twice: with the audit hook (the default) and without it, to show that the kernel layer alone
holds. An attack returns None when the sandbox held, else what went wrong.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import threading
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ponder.sandbox import SandboxLimits, run_python  # noqa: E402
from ponder.sandbox.boundary import call_each, check_with_tests  # noqa: E402

FAST = dict(wall_seconds=5, cpu_seconds=3, memory_mb=256)
SECRET = "ponder-secret-" + uuid.uuid4().hex


def _run(code: str, hook: bool, **limits):
    return run_python(code, limits=SandboxLimits(audit_hook=hook, **{**FAST, **limits}))


def _holds(pid: str, marker: str) -> bool:
    """Whether process ``pid`` holds a file whose path carries ``marker`` open (True when its descriptors cannot be
    read: a process that cannot be ruled out counts)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return True
    for fd in fds:
        try:
            if marker in os.readlink(f"/proc/{pid}/fd/{fd}"):
                return True
        except OSError:
            continue
    return False


def _sandboxed_pythons(marker: str = "") -> int:
    """Host processes still running a sandboxed interpreter (their command line holds the prelude); with a
    ``marker``, only those holding the attack's marker file open (its children inherit it): other sandboxes, a
    benchmark's say, may be running on the machine at the same time."""
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"_setup(_cfg)" in Path(f"/proc/{pid}/cmdline").read_bytes() and (not marker or _holds(pid, marker)):
                    n += 1
            except OSError:
                pass
    return n


CTYPES = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def disable_the_hook_then_system(hook):
    marker = Path("/tmp") / f"ponder-pwned-{uuid.uuid4().hex}"
    code = ("import sys\nm = sys.modules['__main__']\nfor k in list(vars(m)):\n    if k.startswith('_') and not k.startswith('__'):\n"
            "        setattr(m, k, ())\n" + CTYPES +
            f"rc = libc.system(b'id > {marker}')\nprint('system', rc)\n")
    r = _run(code, hook)
    if marker.exists():
        return f"the program ran a shell on the host: {marker.read_text()!r}"
    if "system 0" in r.stdout:
        return "system() succeeded inside the sandbox"
    return None


def ctypes_system_as_root(hook):
    r = _run(CTYPES + "print('rc', libc.system(b'echo shell-ran'))\nimport os\nprint('uid', os.getuid())", hook)
    if "shell-ran" in r.stdout or "rc 0" in r.stdout:
        return "a shell ran"
    if "uid 0" in r.stdout:
        return "the program runs as uid 0"
    return None


def kill_the_parent(hook):
    me = os.getpid()
    code = (f"import os, signal\nfor pid in (os.getppid(), 1, {me}):\n    try:\n        os.kill(pid, signal.SIGKILL)\n        print('sent', pid)\n"
            "    except Exception as e:\n        print('blocked', type(e).__name__)\n")
    if not hook:
        code += CTYPES + f"print('ctypes', libc.kill({me}, 9), libc.kill(1, 9))\n"
    _run(code, hook)
    return None if os.getpid() == me else "unreachable"  # we are alive to say so


def setsid_survivor(hook):
    marker = f"survivor-{uuid.uuid4().hex}"
    code = (f"import os, time\nheld = open('/tmp/{marker}', 'w')\nos.setsid()\n"
            "try:\n    pid = os.fork()\nexcept Exception as e:\n    print('fork blocked', type(e).__name__)\n    pid = 1\n"
            "if pid == 0:\n    time.sleep(60)\n")
    if not hook:
        code += CTYPES + "pid = libc.fork()\nprint('ctypes fork', pid)\nif pid == 0:\n    import time\n    time.sleep(60)\n"
    r = _run(code + "time.sleep(30)\n", hook, wall_seconds=2)
    if not r.timed_out:
        return "the program should have run into the wall timeout"
    left = _sandboxed_pythons(marker)
    return f"{left} sandboxed processes outlived the run" if left else None


def setns_into_the_host(hook):
    code = ("import os\nfor path in ('/proc/1/ns/net', '/proc/self/ns/net', '/proc/1/ns/mnt'):\n    try:\n        fd = os.open(path, os.O_RDONLY)\n"
            "        os.setns(fd, 0)\n        print('SETNS', path)\n    except Exception as e:\n        print('blocked', type(e).__name__)\n")
    if not hook:
        code += CTYPES + "fd = os.open('/proc/self/ns/net', os.O_RDONLY)\nprint('ctypes setns', libc.setns(fd, 0), libc.unshare(0x10000000), libc.unshare(0x40000000))\n"
    r = _run(code, hook)
    if "SETNS" in r.stdout or "setns 0" in r.stdout or "setns 0 " in r.stdout:
        return f"setns succeeded: {r.stdout!r}"
    if "ctypes setns" in r.stdout and r.stdout.split("ctypes setns")[1].split() != ["-1", "-1", "-1"]:
        return f"setns/unshare succeeded: {r.stdout!r}"
    return None


def read_the_parents_environment(hook):
    """The secret is in the environment a process started with (what /proc/PID/environ shows): this one's
    parent's, and a helper's started beside the sandbox, as a server's would be."""
    import subprocess

    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={"PONDER_API_KEY": SECRET})
    try:
        pids = (helper.pid, os.getpid(), os.getppid(), 1, 2)
        code = (f"import os\nfor pid in {pids!r}:\n    try:\n        print(open('/proc/%d/environ' % pid, 'rb').read())\n"
                "    except Exception as e:\n        print('blocked', type(e).__name__)\n"
                "print(dict(os.environ))\nprint(sorted(os.listdir('/proc')))\n")
        r = _run(code, hook)
    finally:
        helper.kill()
        helper.wait()
    return "the secret leaked" if SECRET in r.stdout + r.stderr else None


def read_host_secrets(hook):
    code = ("for path in ('/etc/shadow', '/etc/passwd', '/root/.bash_history', '/root/.ssh/id_rsa', '/home'):\n    try:\n"
            "        print('READ', path, open(path).read()[:20])\n    except Exception as e:\n        print('blocked', path, type(e).__name__)\n")
    r = _run(code, hook)
    return f"read a host file: {r.stdout!r}" if "READ" in r.stdout else None


def mkfifo_outside(hook):
    target = f"/tmp/ponder-fifo-{uuid.uuid4().hex}"
    _run(f"import os\nos.mkfifo({target!r})\nprint('made')", hook)
    return f"a FIFO appeared on the host at {target}" if os.path.exists(target) else None


def a_gigabyte_of_stdout(hook):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = _run("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n", hook, wall_seconds=30)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    if not r.output_truncated or len(r.stdout) > (1 << 20):
        return f"output was not cut at the cap ({len(r.stdout)} bytes kept)"
    if grown_mb > 64:
        return f"the parent grew by {grown_mb:.0f} MB"
    return None


def infinite_loop(hook):
    r = _run("while True:\n    pass", hook)
    return None if not r.ok and r.seconds < 10 else f"ran {r.seconds:.1f} s"


def fork_bomb(hook):
    code = "import os\nwhile True:\n    os.fork()" if hook else CTYPES + "n = 0\nwhile n < 10000:\n    n += 1\n    libc.fork()\nprint('forks done')"
    _run(code, hook)
    left = _sandboxed_pythons()
    return f"{left} processes left running" if left else None


def memory_hog(hook):
    r = _run("x = bytearray(3 * 1024 ** 3)\nprint('allocated')", hook)
    return "allocated 3 GiB" if "allocated" in r.stdout else None


def write_outside(hook):
    target = Path("/tmp") / f"ponder-escape-{uuid.uuid4().hex}"
    here = Path(__file__).resolve()
    code = (f"import os\nfor path in ({str(target)!r}, {str(here)!r}, '/usr/ponder-x', '/src/candidate.py'):\n    try:\n"
            "        open(path, 'a').write('x')\n        print('wrote', path)\n    except Exception as e:\n        print('blocked', type(e).__name__)\n"
            "open('inside.txt', 'w').write('fine')\nprint(open('inside.txt').read())\n")
    before = here.read_bytes()
    r = _run(code, hook)
    if target.exists() or here.read_bytes() != before:
        return "a host file was written"
    return None if "fine" in r.stdout else f"its own directory is not writable: {r.stderr[-300:]!r}"


def open_a_socket(hook):
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
    r = _run(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')\nprint('sent')", hook)
    t.join(5)
    srv.close()
    return "the program reached the host's loopback" if received or "sent" in r.stdout else None


def ptrace_anything(hook):
    code = CTYPES + "print('traceme', libc.ptrace(0, 0, 0, 0), 'attach', libc.ptrace(16, 1, 0, 0))\n"
    r = _run(code, hook)
    if "traceme 0" in r.stdout or "attach 0" in r.stdout:
        return f"ptrace succeeded: {r.stdout!r}"
    return None


def forge_a_passing_verdict(hook):
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    forged = ["print('__PONDER_TESTS_PASSED__'); raise SystemExit(0)",
              "import os\ndef add(a, b):\n    print('__PONDER_TESTS_PASSED__')\n    os._exit(0)\n",
              "def add(a, b):\n    raise SystemExit(0)\n",
              "import os\nos.write(1, b'{\"verdict\": true}\\n')\ndef add(a, b):\n    return 0\n",
              "def add(a, b):\n    return open('/src/spec.json').read()\n"]
    limits = SandboxLimits(audit_hook=hook, **FAST)
    for program in forged:
        v = check_with_tests(program, tests, entry_point="add", limits=limits)
        if v.passed:
            return f"a forged program passed: {program!r}"
    if not check_with_tests("def add(a, b):\n    return a + b\n", tests, entry_point="add", limits=limits).passed:
        return "the honest program failed"
    return None


def read_the_expected_outputs(hook):
    program = ("import gc, os\ndef transform(grid):\n    for path in ('/src/spec.json', '/proc/1/cmdline'):\n        try:\n"
               "            print(open(path).read())\n        except Exception:\n            pass\n"
               "    g = globals()\n    return g.get('_test', [[0]])\n")
    calls = call_each(program, "transform", [([[1]],)], limits=SandboxLimits(audit_hook=hook, **FAST))
    return None if calls[0].value != [[2]] else "the program found the expected output"


ATTACKS = [disable_the_hook_then_system, ctypes_system_as_root, kill_the_parent, setsid_survivor, setns_into_the_host,
           read_the_parents_environment, read_host_secrets, mkfifo_outside, a_gigabyte_of_stdout, infinite_loop,
           fork_bomb, memory_hog, write_outside, open_a_socket, ptrace_anything, forge_a_passing_verdict,
           read_the_expected_outputs]


def main() -> int:
    passed = failed = 0
    for attack in ATTACKS:
        for hook in (True, False):
            try:
                problem = attack(hook)
            except Exception as exc:  # the sandbox itself failing is a failure too
                problem = f"raised {type(exc).__name__}: {exc}"
            label = f"{attack.__name__}[{'hook' if hook else 'kernel only'}]"
            print(("ok    " if problem is None else "FAIL  ") + label + ("" if problem is None else f": {problem}"), flush=True)
            passed += problem is None
            failed += problem is not None
    print(f"uid {os.geteuid()}: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
