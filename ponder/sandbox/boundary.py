"""Verdicts decided outside the untrusted process.

The candidate's program runs in one sandbox and only answers calls: the parent (or a checker) sends a function
name and arguments, the candidate returns a value, and only data crosses (:mod:`ponder.sandbox.wire`), over pipes
of their own, never the candidate's stdout. Whatever it prints, however it exits, whatever it reads: the expected
outputs and the tests are not in its sandbox, and its score is computed from the values it returned.

- :func:`call_each` — the parent calls one function on many inputs (ARC: ``transform`` on each grid) and compares
  the answers itself.
- :func:`check_with_tests` — trusted test code (HumanEval's ``check``, a task's asserts) runs in a second sandbox
  where each function of the candidate is a proxy that calls across; the checker's verdict comes back on its own
  channel, which the candidate cannot reach.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.sandbox import wire
from ponder.sandbox.process import SandboxLimits, Started, start

_WIRE = Path(wire.__file__).read_text(encoding="utf-8")

# Runs inside the candidate's sandbox: load the program, announce its functions, answer calls.
_SERVE = r'''
import json, os, sys, traceback
_IN, _OUT = __CHANNEL__
def _send(obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(_OUT, data):]
def _lines():
    buf = b""
    while True:
        chunk = os.read(_IN, 65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line
_ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
try:
    exec(compile(open("/src/program.py" if os.path.exists("/src/program.py") else "program.py", encoding="utf-8").read(), "program.py", "exec"), _ns)
except BaseException as e:
    _send({"loaded": False, "error": "%s: %s" % (type(e).__name__, str(e)[:500])})
    raise SystemExit(0)
_send({"loaded": True, "names": sorted(k for k, v in _ns.items() if callable(v) and not k.startswith("__"))})
for _line in _lines():
    _req = json.loads(_line)
    try:
        _fn = _ns[_req["fn"]]
        _args = wire.decode(_req["args"])
        _kwargs = wire.decode(_req["kwargs"])
        _send({"ok": wire.encode(_fn(*_args, **_kwargs))})
    except BaseException as e:
        _send({"error": "%s: %s" % (type(e).__name__, str(e)[:500])})
'''

# Runs inside the checker's sandbox: trusted tests, with the candidate's functions as proxies.
_CHECK = r'''
import json, os, sys
_IN, _OUT = __CHANNEL__
_buf = [b""]
def _send(obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(_OUT, data):]
def _recv():
    while b"\n" not in _buf[0]:
        chunk = os.read(_IN, 65536)
        if not chunk:
            raise SystemExit(3)
        _buf[0] += chunk
    line, _buf[0] = _buf[0].split(b"\n", 1)
    return json.loads(line)
class CandidateError(Exception):
    pass
def _proxy(name):
    def call(*args, **kwargs):
        _send({"fn": name, "args": wire.encode(list(args)), "kwargs": wire.encode(dict(kwargs))})
        reply = _recv()
        if "error" in reply:
            raise CandidateError(reply["error"])
        return wire.decode(reply["ok"])
    call.__name__ = name
    return call
_spec = json.loads(open("/src/spec.json" if os.path.exists("/src/spec.json") else "spec.json").read())
_ns = {"__name__": "__check__", "__builtins__": __builtins__}
try:
    if _spec["prompt_code"]:
        exec(compile(_spec["prompt_code"], "prompt.py", "exec"), _ns)
    for _name in _spec["names"]:
        _ns[_name] = _proxy(_name)
    exec(compile(_spec["tests"], "tests.py", "exec"), _ns)
    if _spec["entry_point"]:
        _ns["check"](_ns[_spec["entry_point"]])
except BaseException as e:
    _send({"verdict": False, "reason": "%s: %s" % (type(e).__name__, str(e)[:300])})
else:
    _send({"verdict": True, "reason": "passed"})
'''


def _program(template: str, channel: tuple[int, int]) -> str:
    """A sandbox-side script: the wire module's source executed into a namespace named ``wire``, then ``template``
    with its channel's file descriptors filled in."""
    return (f"class wire:\n    pass\n_wire_ns = {{}}\nexec({_WIRE!r}, _wire_ns)\n"
            "wire.encode, wire.decode = _wire_ns['encode'], _wire_ns['decode']\n"
            + template.replace("__CHANNEL__", repr(channel)))


class _Lines:
    """Reads newline-framed JSON from a pipe, with a deadline and a size cap."""

    def __init__(self, fd: int, cap: int):
        self.fd, self.cap, self.buf = fd, cap, b""

    def read(self, deadline: float) -> dict | None:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
            if len(self.buf) > self.cap:
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None


def _write(fd: int, obj: dict) -> bool:
    data = (json.dumps(obj) + "\n").encode()
    try:
        while data:
            data = data[os.write(fd, data):]
        return True
    except OSError:
        return False


class _Party:
    """One sandboxed side of the boundary, with a request pipe in and a reply pipe out."""

    def __init__(self, files: dict[str, str], template: str, limits: SandboxLimits):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        self.err = tempfile.TemporaryFile()
        files = dict(files, **{"candidate.py": _program(template, (to_child_r, from_child_w))})
        try:
            self.started: Started = start(files, limits, pass_fds=(to_child_r, from_child_w),
                                          stdout=subprocess.DEVNULL, stderr=self.err)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.started.proc.stdin.close()
        self.lines = _Lines(self.from_child, limits.max_output_bytes)

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read(4000).decode("utf-8", errors="replace")

    def close(self) -> None:
        self.started.close()
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.err.close()


@dataclass(frozen=True)
class Call:
    """One call's outcome: the value returned, or why there is none."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    seconds: float


class Candidate:
    """The candidate program loaded in its sandbox, answering calls until closed (a context manager)."""

    def __init__(self, program: str, limits: SandboxLimits | None = None):
        self.limits = limits or SandboxLimits()
        self.deadline = time.monotonic() + self.limits.wall_seconds
        self.party = _Party({"program.py": program}, _SERVE, self.limits)
        hello = self.party.lines.read(self.deadline) or {"loaded": False, "error": "no answer: " + self.party.stderr()[-300:]}
        self.loaded = bool(hello.get("loaded"))
        self.error = None if self.loaded else str(hello.get("error"))
        self.names = [str(n) for n in hello.get("names", [])] if self.loaded else []

    def call(self, fn: str, *args: Any, **kwargs: Any) -> Call:
        if not self.loaded:
            return Call(error=f"the program did not load: {self.error}")
        return self._relay({"fn": fn, "args": wire.encode(list(args)), "kwargs": wire.encode(kwargs)})

    def _relay(self, request: dict) -> Call:
        if not _write(self.party.to_child, request):
            return Call(error="the program has ended")
        reply = self.party.lines.read(self.deadline)
        if reply is None:
            return Call(error="no answer within the time limit" if time.monotonic() >= self.deadline else "the program ended without answering")
        if "error" in reply:
            return Call(error=str(reply["error"]))
        try:
            return Call(value=wire.decode(reply.get("ok")))
        except (ValueError, TypeError, KeyError) as exc:
            return Call(error=f"unreadable answer: {exc}")

    def close(self) -> None:
        self.party.close()

    def __enter__(self) -> Candidate:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def call_each(program: str, fn: str, inputs: list[tuple], limits: SandboxLimits | None = None) -> list[Call]:
    """``fn(*args)`` for each ``args`` in ``inputs``, run in the candidate's sandbox; the parent compares."""
    with Candidate(program, limits) as k:
        return [k.call(fn, *args) for args in inputs]


def check_with_tests(program: str, tests: str, *, entry_point: str | None = None, prompt_code: str | None = None,
                     limits: SandboxLimits | None = None) -> Verdict:
    """Run trusted ``tests`` against the candidate ``program`` across the boundary.

    With ``entry_point`` (HumanEval), ``tests`` define ``check(candidate)`` and ``prompt_code`` (the task's own
    helpers) is loaded on the checker's side; otherwise ``tests`` are asserts that call the program's functions
    by name, each a proxy to the candidate's.
    """
    t0 = time.monotonic()
    limits = limits or SandboxLimits()
    with Candidate(program, limits) as k:
        if not k.loaded:
            return Verdict(False, f"the program did not load: {k.error}", time.monotonic() - t0)
        names = [entry_point] if entry_point else k.names
        spec = {"tests": tests, "entry_point": entry_point, "prompt_code": prompt_code or "", "names": names}
        checker = _Party({"spec.json": json.dumps(spec)}, _CHECK, limits)
        try:
            while True:
                msg = checker.lines.read(k.deadline)
                if msg is None:
                    why = "out of time" if time.monotonic() >= k.deadline else "the checker ended: " + checker.stderr()[-300:]
                    return Verdict(False, why, time.monotonic() - t0)
                if "verdict" in msg:
                    return Verdict(msg["verdict"] is True, str(msg.get("reason", "")), time.monotonic() - t0)
                if "fn" not in msg or msg["fn"] not in names:
                    return Verdict(False, "the checker asked for an unknown function", time.monotonic() - t0)
                call = k._relay({"fn": msg["fn"], "args": msg.get("args", []), "kwargs": msg.get("kwargs", {"$": "dict", "v": []})})
                reply = {"error": call.error} if not call.ok else {"ok": wire.encode(call.value)}
                if not _write(checker.to_child, reply):
                    return Verdict(False, "the checker ended", time.monotonic() - t0)
        finally:
            checker.close()
