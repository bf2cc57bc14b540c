"""The two contracts strategies are written against. Strategies never import a backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ponder.types import Completion, GenerationRequest


@runtime_checkable
class Generator(Protocol):
    """Produces samples. One call may carry many requests; a backend is free (and expected) to
    decode them together in one batch and to reuse the KV of shared prefixes.

    ``generate`` returns one Completion per request, in order.
    """

    name: str

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]: ...

    async def aclose(self) -> None: ...
