"""The kernel isolation layer: bubblewrap namespaces, an unprivileged uid, and a seccomp filter.

Why bubblewrap: it is the small, audited, unprivileged sandbox that Flatpak and many build tools use, packaged by
every distribution (``apt-get install bubblewrap``), it builds the sandbox from an empty root (nothing of the host
is visible unless it is bound in), it needs no daemon and no setuid helper, and it loads a seccomp filter we hand
it. nsjail does more but is not packaged for Debian; seccomp + Landlock alone leave the process in the host's PID
and network namespaces.

What the sandboxed process gets:

- new user (non-root callers), PID, network, IPC, UTS and cgroup namespaces: it sees only its own processes, has
  only a loopback that reaches nothing of the host, and cannot signal anything outside;
- an empty root with read-only binds of ``/usr`` and the interpreter's prefix, a new ``/proc`` of its own PID
  namespace, a minimal ``/dev``, the program's read-only source directory, and size-capped tmpfs ``/work`` (its
  working directory) and ``/tmp``: no ``/etc``, no ``/home``, no ``/root``, no host ``/tmp``;
- an unprivileged uid: a root caller's child is switched to ``nobody`` (65534) by ``setpriv`` before Python starts,
  with every capability and the bounding set dropped, so it is nobody on the host too (not merely inside a user
  namespace, where root's mapping would let it act as uid 0 on anything bound in); a non-root caller's child keeps
  that user's uid in a user namespace it cannot nest (``--disable-userns``);
- ``no_new_privs`` and a seccomp filter (libseccomp, through ``pyseccomp``) that refuses ``ptrace``, ``setns``,
  ``unshare``, ``mount``, ``pivot_root``, ``chroot``, ``kexec_*``, module loading, ``bpf``, ``perf_event_open``,
  ``keyctl``, ``userfaultfd``, sockets other than ``AF_UNIX``, and every way of creating a process (``fork``,
  ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3`` answers ENOSYS so that libc falls back to ``clone``):
  threads are allowed, child processes are not;
- ``--die-with-parent`` and ``--new-session``: when ponder kills the sandbox (wall time, output cap) or dies, the
  kernel kills the whole PID namespace with it.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ponder.errors import PonderError

NOBODY = 65534

# Refused outright (EPERM): namespace and mount games, tracing, kernel and module control, and the like.
_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "setns", "unshare", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "syslog", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "sethostname", "setdomainname", "lookup_dcookie",
    "fanotify_init", "vhangup", "nfsservctl", "personality", "uselib", "fork", "vfork", "socketpair",
)
_CLONE_THREAD = 0x00010000
_AF_UNIX = 1


class SandboxUnavailable(PonderError):
    """Model-written code cannot run here under kernel isolation, and the weaker mode was not chosen."""


WEAK_MODE_WARNING = (
    "ponder: running model-written code in the weaker 'process' sandbox (opted into with --sandbox process or "
    "PONDER_SANDBOX=process). It does NOT protect against: a program that escapes Python's audit hook (it is a "
    "Python-level check, not a kernel boundary), reading any file this user can read, seeing the host's processes, "
    "and (where the kernel refuses an unshare) the network."
)


@dataclass(frozen=True)
class KernelIsolation:
    """How to wrap a command in the kernel sandbox on this machine (found once, by :func:`kernel_isolation`)."""

    bwrap: str
    setpriv: str | None  # set when ponder runs as root: the child is switched to nobody before Python starts
    python: str  # the base interpreter (not a venv's symlink), run with -I: the standard library only
    prefix: str  # the interpreter's installation prefix, bound read-only at the same path

    def argv(self, *, source_dir: str, seccomp_fd: int, work_bytes: int, command: list[str]) -> list[str]:
        """The bwrap command line that runs ``command`` (whose first word is ``python``) in the sandbox."""
        args = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--clearenv"]
        if self.setpriv is None:  # not root: a user namespace we cannot nest further
            args += ["--unshare-user", "--disable-userns"]
        else:  # root: no user namespace (it would map the child to uid 0 outside); only what setpriv needs
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
            p = Path(top)
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), top]
            elif p.is_dir():
                args += ["--ro-bind", top, top]
        if not (self.prefix == "/usr" or self.prefix.startswith("/usr/")):
            for parent in reversed(Path(self.prefix).parents[:-1]):  # traversable by nobody (bwrap's own are 0700)
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", self.prefix, self.prefix]
        args += ["--proc", "/proc", "--dev", "/dev", "--ro-bind", source_dir, "/src",
                 "--perms", "1777", "--size", str(work_bytes), "--tmpfs", "/work",
                 "--perms", "1777", "--size", str(work_bytes), "--tmpfs", "/tmp",
                 "--chdir", "/work", "--seccomp", str(seccomp_fd),
                 "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/work", "--setenv", "TMPDIR", "/tmp",
                 "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "PYTHONHASHSEED", "0"]
        if self.setpriv is not None:
            args += [self.setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
                     "--bounding-set=-all", "--"]
        return args + [self.python, *command[1:]] if command[0] == "python" else args + command


def base_python() -> tuple[str, str]:
    """The real interpreter behind this one (a virtual environment's ``python`` is a symlink to it) and its prefix."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    exe = os.path.realpath(exe)
    prefix = os.path.realpath(sys.base_prefix)
    if not exe.startswith(prefix + os.sep):  # a venv made with --copies: the prefix's own binary
        candidate = Path(prefix) / "bin" / f"python{sysconfig.get_python_version()}"
        exe = str(candidate) if candidate.exists() else exe
    return exe, prefix


def seccomp_filter_file() -> int:
    """A file descriptor holding the compiled seccomp BPF program (bwrap reads it once, from the start)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as exc:  # RuntimeError: libseccomp.so not found
        raise SandboxUnavailable(f"the seccomp layer is unavailable ({exc}): pip install pyseccomp, and install libseccomp2") from None
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in _DENIED:
        try:
            f.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):  # a syscall this architecture does not have
            pass
    f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0))  # a new process, not a thread
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # its flags live in memory a filter cannot read
    f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.NE, _AF_UNIX))
    tmp = tempfile.TemporaryFile()
    f.export_bpf(tmp)
    tmp.flush()
    tmp.seek(0)
    return os.dup(tmp.fileno())


def _probe(iso: KernelIsolation) -> str | None:
    """Run ``python -c 'print(1)'`` in the sandbox; the reason it failed, or None."""
    src = tempfile.mkdtemp(prefix="ponder-probe-")
    os.chmod(src, 0o755)
    fd = None
    try:
        fd = seccomp_filter_file()
        argv = iso.argv(source_dir=src, seccomp_fd=fd, work_bytes=1 << 20, command=["python", "-I", "-c", "print(1)"])
        p = subprocess.run(argv, pass_fds=(fd,), env={}, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        if p.returncode != 0 or p.stdout.strip() != b"1":
            return (p.stderr.decode(errors="replace").strip() or f"exit status {p.returncode}")[-400:]
        return None
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(src, ignore_errors=True)


@functools.cache
def kernel_isolation() -> KernelIsolation:
    """The kernel sandbox for this machine, checked once by running a probe in it; else SandboxUnavailable."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap is not installed (apt-get install bubblewrap; dnf install bubblewrap)")
    setpriv = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv") or ("/usr/bin/setpriv" if os.path.exists("/usr/bin/setpriv") else None)
        if setpriv is None:
            raise SandboxUnavailable("running as root needs setpriv (util-linux) to switch the child to nobody")
    python, prefix = base_python()
    iso = KernelIsolation(bwrap, setpriv, python, prefix)
    why = _probe(iso)
    if why is not None:
        raise SandboxUnavailable(f"bubblewrap is installed but cannot start a sandbox here: {why}")
    return iso
