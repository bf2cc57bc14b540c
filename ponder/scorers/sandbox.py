"""Run untrusted Python (model-written programs) so that it can fail but cannot harm.

Layers, each enough for some attacks and together for all we test (infinite loop, fork bomb, memory hog,
writing outside its directory, opening a socket, killing its parent):

1. **A separate process** in its own session (process group), started with ``python -I`` (no user site, no
   ``PYTHON*`` variables) in a throw-away working directory with a clean environment, killed as a whole group
   when its wall timeout passes.
2. **Kernel limits** (``setrlimit``): CPU seconds, address space, largest file written, open files, and — when
   ponder runs as root, which the limit does not bind — the child drops to the unprivileged ``nobody`` user so
   that the process-count limit does bind and nothing owned by root can be touched.
3. **No network**: a fresh network namespace with only a downed loopback (``unshare(CLONE_NEWNET)``, directly as
   root or inside a user namespace otherwise) where the kernel allows it.
4. **An audit hook** (PEP 578) installed before the candidate's first line runs, which cannot be removed from
   Python: it refuses sockets, process creation (fork, exec, spawn, subprocess, os.system), signals to other
   processes, ctypes and ``import`` of compiled modules that could bypass it, and opening files for writing (or
   deleting, renaming, creating) outside the working directory.

The candidate's result comes back over stdout/stderr (bounded), with the exit status and why it ended.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxLimits", "SandboxResult", "run_python"]

_NOBODY = 65534


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 512
    file_mb: int = 16
    max_processes: int = 16  # binds only when the child runs as its own user (root drops to nobody)
    max_open_files: int = 64
    max_output_bytes: int = 1 << 20


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    signal: str | None = None  # the signal that ended it, if any (SIGKILL on timeout or memory, SIGXCPU on CPU time)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# Runs first inside the child (a fresh single-threaded interpreter, so nothing here can deadlock on a lock held by
# a parent thread): applies the limits to itself, drops privileges, installs the audit hook, runs candidate.py.
_PRELUDE = r"""
import sys, os, json, resource, posix, signal
_cfg = json.loads(sys.argv[1])
try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.unshare(0x40000000 if os.geteuid() == 0 else (0x10000000 | 0x40000000))  # CLONE_NEWNET (+ CLONE_NEWUSER)
    del _libc, ctypes
except Exception:
    pass
for _m in [m for m in sys.modules if m.startswith(("ctypes", "_ctypes"))]:
    del sys.modules[_m]
_mem = _cfg["memory_mb"] << 20
resource.setrlimit(resource.RLIMIT_AS, (_mem, _mem))
resource.setrlimit(resource.RLIMIT_CPU, (_cfg["cpu_seconds"], _cfg["cpu_seconds"] + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (_cfg["file_mb"] << 20, _cfg["file_mb"] << 20))
resource.setrlimit(resource.RLIMIT_NOFILE, (_cfg["max_open_files"], _cfg["max_open_files"]))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if _cfg["drop"]:
    try:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    except OSError:  # a container without CAP_SETUID: the other layers still hold
        pass
resource.setrlimit(resource.RLIMIT_NPROC, (_cfg["max_processes"], _cfg["max_processes"]))

_ROOT = os.path.realpath(os.getcwd())
_PID = os.getpid()
_BLOCK_PREFIX = ("socket.", "subprocess.", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec",
                 "os.system", "os.popen", "pty.", "ctypes.", "os.putenv", "os.unsetenv", "os.killpg",
                 "signal.pthread_kill", "os.chroot", "os.setuid", "os.setgid", "resource.setrlimit", "resource.prlimit",
                 "webbrowser.", "urllib.Request", "ftplib.", "smtplib.", "http.client.", "os.link", "os.symlink",
                 "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.", "sqlite3.", "sys.addaudithook")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_NO_IMPORT = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "_socket", "socket", "mmap", "_posixshmem", "multiprocessing"})

def _inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return p == _ROOT or p.startswith(_ROOT + os.sep)

def _hook(event, args):
    if event.startswith(_BLOCK_PREFIX):
        raise PermissionError("sandbox: %s is not allowed" % event)
    if event == "os.kill":
        if args and args[0] == _PID:
            return
        raise PermissionError("sandbox: signalling other processes is not allowed")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int):
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing and not _inside(path):
            raise PermissionError("sandbox: writing outside the working directory is not allowed: %r" % (path,))
    elif event in ("os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.replace"):
        for p in args[:2]:
            if isinstance(p, (str, bytes, os.PathLike)) and not _inside(p):
                raise PermissionError("sandbox: %s outside the working directory is not allowed" % event)
    elif event == "import" and args and str(args[0]).split(".")[0] in _NO_IMPORT:
        raise PermissionError("sandbox: import of %s is not allowed" % args[0])

for _mod in (os, posix):
    for _name in ("fork", "forkpty", "system", "kill", "killpg", "pidfd_open", "posix_spawn", "posix_spawnp",
                  "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve",
                  "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "popen", "register_at_fork"):
        if hasattr(_mod, _name):
            try:
                delattr(_mod, _name)
            except AttributeError:
                pass
for _name in ("pidfd_send_signal", "pthread_kill"):
    if hasattr(signal, _name):
        delattr(signal, _name)
sys.addaudithook(_hook)
del _hook, _cfg, _mod, _name
_src = open("candidate.py", encoding="utf-8").read()
_code = compile(_src, "candidate.py", "exec")
del _src
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
"""


def _signal_name(returncode: int | None) -> str | None:
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return None


def run_python(code: str, *, stdin: str = "", limits: SandboxLimits | None = None, files: dict[str, str] | None = None) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox; ``files`` are written into its working directory first."""
    limits = limits or SandboxLimits()
    workdir = Path(tempfile.mkdtemp(prefix="ponder-sandbox-"))
    drop = os.geteuid() == 0 and _stdlib_world_readable()
    try:
        (workdir / "candidate.py").write_text(code, encoding="utf-8")
        for name, text in (files or {}).items():
            target = (workdir / name).resolve()
            if workdir.resolve() not in target.parents:
                raise ValueError(f"sandbox file name escapes the working directory: {name!r}")
            target.write_text(text, encoding="utf-8")
        if drop:
            os.chown(workdir, _NOBODY, _NOBODY)
            for p in workdir.iterdir():
                os.chown(p, _NOBODY, _NOBODY)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONHASHSEED": "0", "TMPDIR": str(workdir)}
        cfg = {"memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds, "file_mb": limits.file_mb,
               "max_open_files": limits.max_open_files, "max_processes": limits.max_processes, "drop": drop}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _PRELUDE, json.dumps(cfg)],
            cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode(), timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
        _kill_group(proc)  # anything it left behind in its session
        cap = limits.max_output_bytes
        return SandboxResult(
            returncode=proc.returncode,
            stdout=out[:cap].decode("utf-8", errors="replace"),
            stderr=err[-cap:].decode("utf-8", errors="replace"),
            timed_out=timed_out,
            seconds=time.monotonic() - t0,
            signal=_signal_name(proc.returncode),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _stdlib_world_readable() -> bool:
    """Whether an unprivileged user could still import the standard library (not so when Python lives under a
    private home such as /root): only then does a root parent drop the child to ``nobody``."""
    import sysconfig

    for top in {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}:
        p = Path(top).resolve()
        for part in [p, *p.parents]:
            mode = part.stat().st_mode
            if not mode & 0o001 or (part == p and not mode & 0o004):
                return False
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_tests(program: str, tests: str, *, entry_point: str | None = None, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``program`` followed by ``tests`` (asserts; HumanEval style ``check(entry_point)`` when given)."""
    code = program + "\n\n" + tests + "\n"
    if entry_point:
        code += f"\ncheck({entry_point})\n"
    code += "\nprint(" + json.dumps("__PONDER_TESTS_PASSED__") + ")\n"
    return run_python(code, limits=limits)


PASSED_MARK = "__PONDER_TESTS_PASSED__"
