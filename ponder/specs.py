"""``name?key=value&key=value`` specs and typed parameters: how strategies and scorers are named everywhere."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ValidationError

from ponder.errors import InvalidRequest


def split_spec(spec: str, what: str) -> tuple[str, dict[str, str]]:
    """
    >>> split_spec("beam?width=4&depth=6", "strategy")
    ('beam', {'width': '4', 'depth': '6'})
    """
    name, _, query = spec.strip().partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidRequest(f"malformed {what} spec {spec!r}: expected NAME or NAME?key=value&key=value") from None
    return name.strip(), dict(pairs)


def join_spec(name: str, values: Mapping[str, Any]) -> str:
    """The inverse of :func:`split_spec`.

    >>> join_spec("reward", {"url": "http://127.0.0.1:8001/v1", "kind": "orm"})
    'reward?url=http%3A%2F%2F127.0.0.1%3A8001%2Fv1&kind=orm'
    """
    return f"{name}?{urlencode(dict(values))}" if values else name


def validate(model: type[BaseModel], values: Mapping[str, Any], what: str) -> BaseModel:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
            + (f" (known parameters: {', '.join(model.model_fields)})" if e["type"] == "extra_forbidden" else "")
            for e in exc.errors()
        )
        raise InvalidRequest(f"invalid parameters for {what}: {problems}") from None


def load_entry_points(group: str, kind: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for ep in importlib.metadata.entry_points(group=group):
        info = ep.load()
        if not isinstance(info, kind):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a {kind.__name__}")
        if info.name != ep.name:
            raise TypeError(f"entry point {ep.name} names {info.name!r}")
        found[info.name] = info
    if not found:
        raise RuntimeError(f"nothing is registered in {group}: is ponder installed (pip install -e .)?")
    return dict(sorted(found.items()))
