"""Running model-written code: a kernel isolation layer (``isolation``), the process that runs inside it
(``process``, ``prelude``), and verdicts decided outside the untrusted process (``boundary``, ``wire``)."""

from ponder.sandbox.isolation import SandboxUnavailable
from ponder.sandbox.process import SandboxLimits, SandboxResult, run_python

__all__ = ["SandboxLimits", "SandboxResult", "SandboxUnavailable", "run_python"]
