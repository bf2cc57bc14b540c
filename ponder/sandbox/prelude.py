"""The first code that runs inside the sandboxed interpreter, before the candidate's first line.

It lowers the process's own resource limits (which it can never raise again), and installs a PEP 578 audit hook
as an extra layer behind the kernel's. The hook's configuration lives in its closure as immutable values, never
in a module's globals, so a program cannot switch it off by rebinding names (``sys.modules["__main__"]``), and
the ``gc`` introspection that would reach the closure is refused. In the kernel sandbox the hook is a second
line; in the weaker process mode it is the main one (with the privilege drop and network unshare tried here).
"""

PRELUDE = r'''
import sys, os, json, resource, posix, signal
def _setup(cfg):
    mode = cfg["mode"]
    if mode == "process":
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.unshare(0x40000000 if os.geteuid() == 0 else (0x10000000 | 0x40000000))  # CLONE_NEWNET (+ NEWUSER)
        except Exception:
            pass
        for m in [m for m in sys.modules if m.startswith(("ctypes", "_ctypes"))]:
            del sys.modules[m]
    mem = cfg["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu_seconds"], cfg["cpu_seconds"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file_mb"] << 20, cfg["file_mb"] << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (cfg["max_open_files"], cfg["max_open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if mode == "process" and cfg["drop"]:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        except OSError:
            pass
    resource.setrlimit(resource.RLIMIT_NPROC, (cfg["max_processes"], cfg["max_processes"]))
    if not cfg["audit_hook"]:
        return
    roots = tuple(os.path.realpath(r) for r in cfg["writable"])
    pid = os.getpid()
    block_prefix = ("socket.", "subprocess.", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec",
                    "os.system", "os.popen", "pty.", "ctypes.", "os.putenv", "os.unsetenv", "os.killpg",
                    "signal.pthread_kill", "os.chroot", "os.setuid", "os.setgid", "resource.setrlimit", "resource.prlimit",
                    "webbrowser.", "urllib.Request", "ftplib.", "smtplib.", "http.client.", "os.link", "os.symlink",
                    "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.", "sqlite3.", "sys.addaudithook",
                    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "os.setns", "os.unshare")
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    no_import = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "_socket", "socket", "mmap", "_posixshmem",
                           "multiprocessing", "_multiprocessing"})
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep

    def inside(path):
        try:
            p = realpath(fsdecode(path))
        except Exception:
            return False
        return any(p == r or p.startswith(r + sep) for r in roots)

    def hook(event, args):
        if event.startswith(block_prefix):
            raise PermissionError("sandbox: %s is not allowed" % event)
        if event == "os.kill":
            if args and args[0] == pid:
                return
            raise PermissionError("sandbox: signalling other processes is not allowed")
        if event == "open":
            path, mode_, flags = (list(args) + [None, None, None])[:3]
            if isinstance(path, int):
                return
            writing = (isinstance(mode_, str) and any(c in mode_ for c in "wax+")) or (isinstance(flags, int) and flags & write_flags)
            if writing and not inside(path):
                raise PermissionError("sandbox: writing outside the working directory is not allowed: %r" % (path,))
        elif event in ("os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.replace"):
            for p in args[:2]:
                if isinstance(p, (str, bytes, os.PathLike)) and not inside(p):
                    raise PermissionError("sandbox: %s outside the working directory is not allowed" % event)
        elif event == "import" and args and str(args[0]).split(".")[0] in no_import:
            raise PermissionError("sandbox: import of %s is not allowed" % args[0])

    for mod in (os, posix):
        for name in ("fork", "forkpty", "system", "kill", "killpg", "pidfd_open", "posix_spawn", "posix_spawnp",
                     "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve",
                     "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "popen", "register_at_fork",
                     "setns", "unshare"):
            if hasattr(mod, name):
                try:
                    delattr(mod, name)
                except AttributeError:
                    pass
    for name in ("pidfd_send_signal", "pthread_kill"):
        if hasattr(signal, name):
            delattr(signal, name)
    sys.addaudithook(hook)
_cfg = json.loads(sys.argv[1])
_setup(_cfg)
del _setup
_path = _cfg["source"]
del _cfg
def _report(e):
    # the candidate's traceback without this prelude's own frames ("<string>"): a model that reads its error to fix
    # its program (tir) sees only lines of the program it wrote
    try:
        import traceback
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        sys.stderr.write("".join(traceback.format_exception(type(e), e, tb)))
    except BaseException:
        sys.stderr.write("%s: %s\n" % (type(e).__name__, e))
    sys.stderr.flush()
try:
    _src = open(_path, encoding="utf-8").read()
    _code = compile(_src, "candidate.py", "exec")
    del _src, _path
    exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
except SystemExit:
    raise
except BaseException as _e:
    _report(_e)
    raise SystemExit(1)
'''
