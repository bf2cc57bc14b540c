"""Start a sandboxed Python process, feed it, read it in bounded chunks, and kill all of it when time is up.

The parent never holds more than ``max_output_bytes`` of a stream: output is read in chunks as it comes, and
a program that writes past the cap on stdout is killed there (``output_truncated``); stderr keeps its last bytes.
At the wall timeout the whole sandbox (bwrap, its PID namespace's init, and everything in it) is killed.
"""

from __future__ import annotations

import json
import os
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ponder.errors import InvalidRequest
from ponder.sandbox.isolation import NOBODY, WEAK_MODE_WARNING, kernel_isolation, seccomp_filter_file
from ponder.sandbox.prelude import PRELUDE

Isolation = Literal["kernel", "process"]
ISOLATIONS: tuple[str, ...] = ("kernel", "process")


@dataclass(frozen=True)
class SandboxLimits:
    """The limits of one sandboxed run. ``isolation`` None reads ``PONDER_SANDBOX`` (default ``kernel``)."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 512
    file_mb: int = 16  # the largest file written; also the size of each of the sandbox's tmpfs (/work, /tmp)
    max_processes: int = 16  # threads (the kernel sandbox refuses child processes altogether)
    max_open_files: int = 64
    max_output_bytes: int = 1 << 20
    isolation: Isolation | None = None
    audit_hook: bool = True  # the Python-level layer; tests switch it off to prove the kernel layer alone holds

    def __post_init__(self) -> None:
        if not self.wall_seconds > 0:
            raise ValueError(f"wall_seconds must be > 0, got {self.wall_seconds}")
        for name in ("cpu_seconds", "memory_mb", "file_mb", "max_processes", "max_open_files", "max_output_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.isolation is not None and self.isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {self.isolation!r}")


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    signal: str | None = None  # the signal that ended it (SIGKILL on timeout, output cap or memory; SIGXCPU on CPU)
    output_truncated: bool = False  # stdout passed max_output_bytes: the program was killed there
    isolation: str = "kernel"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_truncated


def isolation_mode(limits: SandboxLimits) -> Isolation:
    """The isolation these limits ask for; ``process`` only by explicit choice, with a warning the first time."""
    mode = limits.isolation or os.environ.get("PONDER_SANDBOX") or "kernel"
    if mode not in ISOLATIONS:
        raise InvalidRequest(f"PONDER_SANDBOX must be one of {', '.join(ISOLATIONS)}, got {mode!r}")
    if mode == "process":
        _warn_weak_once()
    return mode  # type: ignore[return-value]


_warned: list[bool] = []


def _warn_weak_once() -> None:
    if not _warned:
        _warned.append(True)
        print(WEAK_MODE_WARNING, file=sys.stderr)


@dataclass
class Started:
    """A sandboxed process that is running, and what to clean up after it."""

    proc: subprocess.Popen
    isolation: str
    t0: float
    _cleanup: list = field(default_factory=list)
    info_fd: int | None = None  # bwrap's --info-fd: the PID of the sandbox's init, as the host sees it
    _init_pid: int | None = None

    def kill(self) -> None:
        """Kill the whole sandbox: its process group (bwrap, and its PID namespace with it)."""
        self._read_init_pid()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _read_init_pid(self) -> None:
        if self.info_fd is None or self._init_pid is not None:
            return
        try:
            ready, _, _ = select.select([self.info_fd], [], [], 1.0)
            if ready:
                self._init_pid = int(json.loads(os.read(self.info_fd, 4096).decode() or "{}").get("child-pid", 0)) or None
        except (OSError, ValueError):
            pass

    def _wait_namespace_gone(self, timeout: float = 5.0) -> None:
        """The kernel tears a PID namespace down after its init dies; wait until it has (init's exit waits for
        every process in it), so that nothing of the sandbox is running when close() returns."""
        if self._init_pid is None:
            return
        stat = Path(f"/proc/{self._init_pid}/stat")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
            except (OSError, IndexError):
                return
            time.sleep(0.005)

    def close(self) -> None:
        self.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass
        self._wait_namespace_gone()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        for undo in reversed(self._cleanup):
            undo()
        self._cleanup.clear()


def start(files: dict[str, str], limits: SandboxLimits, *, main: str = "candidate.py", pass_fds: Sequence[int] = (),
          stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> Started:
    """Start ``main`` (one of ``files``) in the sandbox. ``pass_fds`` stay open in the child under the same numbers."""
    mode = isolation_mode(limits)
    iso = kernel_isolation() if mode == "kernel" else None
    src = tempfile.mkdtemp(prefix="ponder-sandbox-")
    cleanup = [lambda: shutil.rmtree(src, ignore_errors=True)]
    try:
        for name, text in files.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"sandbox file name must be a plain name: {name!r}")
            Path(src, name).write_text(text, encoding="utf-8")
        if iso is not None:
            os.chmod(src, 0o755)
            for name in files:
                os.chmod(Path(src, name), 0o644)
            fd = seccomp_filter_file()
            cleanup.append(lambda: os.close(fd))
            info_r, info_w = os.pipe()
            cleanup.append(lambda: os.close(info_r))
            cfg = _config(limits, mode, source=f"/src/{main}", writable=["/work", "/tmp"], drop=False)
            argv = iso.argv(source_dir=src, seccomp_fd=fd, work_bytes=limits.file_mb << 20,
                            command=["python", "-I", "-c", PRELUDE, json.dumps(cfg)])
            argv[1:1] = ["--info-fd", str(info_w)]
            fds, cwd, env = (fd, info_w, *pass_fds), None, {}
        else:
            drop = os.geteuid() == 0 and _stdlib_world_readable()
            if drop:
                os.chown(src, NOBODY, NOBODY)
                for name in files:
                    os.chown(Path(src, name), NOBODY, NOBODY)
            cfg = _config(limits, mode, source=str(Path(src, main)), writable=[src], drop=drop)
            argv = [sys.executable, "-I", "-c", PRELUDE, json.dumps(cfg)]
            fds, cwd = tuple(pass_fds), src
            env = {"PATH": "/usr/bin:/bin", "HOME": src, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                   "PYTHONHASHSEED": "0", "TMPDIR": src}
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
                                    start_new_session=True, close_fds=True, pass_fds=fds)
        finally:
            if iso is not None:
                os.close(info_w)
    except BaseException:
        for undo in reversed(cleanup):
            undo()
        raise
    return Started(proc, mode, t0, cleanup, info_fd=info_r if iso is not None else None)


def _config(limits: SandboxLimits, mode: str, *, source: str, writable: list[str], drop: bool) -> dict:
    return {"mode": mode, "source": source, "writable": writable, "drop": drop, "audit_hook": limits.audit_hook,
            "memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds, "file_mb": limits.file_mb,
            "max_open_files": limits.max_open_files, "max_processes": limits.max_processes}


def run_python(code: str, *, stdin: str = "", limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox and return what it printed, how it ended and how long it took."""
    limits = limits or SandboxLimits()
    s = start({"candidate.py": code}, limits)
    try:
        out, err, timed_out, truncated = communicate(s, stdin.encode(), limits)
        s.kill()
        s.proc.wait()
        seconds = time.monotonic() - s.t0
        return SandboxResult(returncode=s.proc.returncode, stdout=out.decode("utf-8", errors="replace"),
                             stderr=err.decode("utf-8", errors="replace"), timed_out=timed_out, seconds=seconds,
                             signal=_signal_name(s.proc.returncode, s.isolation), output_truncated=truncated, isolation=s.isolation)
    finally:
        s.close()


def communicate(s: Started, data: bytes, limits: SandboxLimits) -> tuple[bytes, bytes, bool, bool]:
    """Write ``data`` to stdin and read stdout/stderr in chunks until both close or the wall time passes.

    Returns (stdout, stderr, timed_out, stdout_truncated); stdout keeps its first ``max_output_bytes`` (the program
    is killed when it writes more), stderr its last.
    """
    cap = limits.max_output_bytes
    deadline = s.t0 + limits.wall_seconds
    out, err = bytearray(), bytearray()
    timed_out = truncated = False
    sel = selectors.DefaultSelector()
    proc = s.proc
    for stream, buf in ((proc.stdout, out), (proc.stderr, err)):
        if stream is not None:
            os.set_blocking(stream.fileno(), False)
            sel.register(stream, selectors.EVENT_READ, buf)
    pending = memoryview(data)
    if proc.stdin is not None:
        if pending:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE, None)
        else:
            proc.stdin.close()
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                if key.data is None:  # stdin
                    try:
                        n = os.write(key.fd, pending[:65536])
                        pending = pending[n:]
                    except (BrokenPipeError, BlockingIOError) as exc:
                        if isinstance(exc, BlockingIOError):
                            continue
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
                    continue
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = key.data
                buf += chunk
                if buf is out and len(out) > cap:
                    del out[cap:]
                    truncated = True
                    break
                if buf is err and len(err) > 2 * cap:
                    del err[: len(err) - cap]
            if truncated:
                break
    finally:
        sel.close()
    if timed_out or truncated:
        s.kill()
    if len(err) > cap:
        del err[: len(err) - cap]
    return bytes(out), bytes(err), timed_out, truncated


def _signal_name(returncode: int | None, isolation: str = "process") -> str | None:
    """The signal that ended the program: a negative status, or bwrap's 128 + signal for its child."""
    if returncode is None:
        return None
    number = -returncode if returncode < 0 else returncode - 128 if isolation == "kernel" and 128 < returncode < 160 else None
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stdlib_world_readable() -> bool:
    """Whether an unprivileged user could import the standard library (not so when Python lives under a private
    home such as /root): only then can the weak mode's root parent drop its child to ``nobody``."""
    import sysconfig

    for top in {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}:
        p = Path(top).resolve()
        for part in [p, *p.parents]:
            mode = part.stat().st_mode
            if not mode & 0o001 or (part == p and not mode & 0o004):
                return False
    return True
