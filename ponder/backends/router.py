"""A generator over one default model that opens further models by name on demand (for ``cascade``).

Requests go to the default model; ``for_model(name)`` opens ``name`` once through ``opener`` (registry name, GGUF
path, or a server's model name, as the opener decides) and keeps it open until :meth:`aclose`. ``allowed`` limits
the names (a server passes its operator's list; None: any the opener accepts). With ``owns_default`` closing the
router closes the default model too (the CLI's and the evaluator's; a server keeps its own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ponder.errors import InvalidRequest
from ponder.protocols import Generator
from ponder.types import Completion, GenerationRequest


class ModelRouter:
    def __init__(self, default: Generator, opener: Callable[[str], Generator], allowed: set[str] | None = None,
                 default_name: str | None = None, owns_default: bool = False):
        self.default, self.opener, self.allowed, self.owns_default = default, opener, allowed, owns_default
        self.name = getattr(default, "name", default_name or "default")
        self._names = {n for n in (default_name, self.name) if n}
        self._opened: dict[str, Generator] = {}

    @property
    def stats(self):  # the default model's live counters, for progress
        return getattr(self.default, "stats", None)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return await self.default.generate(requests)

    def check(self, name: str) -> None:
        """Refuse a model this router would not open (before anything is queued or opened)."""
        if name not in self._names and self.allowed is not None and name not in self.allowed:
            offered = ", ".join(sorted(self.allowed)) or "none (the operator named no other models: --cascade-model NAME)"
            raise InvalidRequest(f"model {name!r} is not offered here; offered: {offered}")

    def for_model(self, name: str) -> Generator:
        if name in self._names:
            return self.default
        self.check(name)
        if name not in self._opened:
            self._opened[name] = self.opener(name)
        return self._opened[name]

    async def aclose(self) -> None:
        for gen in self._opened.values():
            await gen.aclose()
        self._opened.clear()
        if self.owns_default:
            await self.default.aclose()
