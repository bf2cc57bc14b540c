"""Values that cross the sandbox boundary: JSON with type tags, so a tuple stays a tuple and nothing is code.

Only data crosses (None, bool, int, float including nan/inf, str, bytes, list, tuple, set, frozenset, dict with any
such keys, complex); anything else arrives as its ``repr`` string. Decoding builds those types and nothing else, so
a hostile program's reply can be wrong but cannot run code on the other side. This module is stdlib-only: its
source is also sent into the sandbox.

>>> decode(encode({"a": (1, 2.5), 3: {True, None}}))
{'a': (1, 2.5), 3: {True, None}}
>>> decode(encode(float("inf"))), decode(encode(b"x")), decode(encode(1j))
(inf, b'x', 1j)
"""

import math

MAX_DEPTH = 64


def encode(value, _depth=0):
    if _depth > MAX_DEPTH:
        raise ValueError("value nested too deeply to cross the sandbox boundary")
    d = _depth + 1
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"$": "int", "v": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
    if isinstance(value, complex):
        return {"$": "complex", "v": [value.real, value.imag]}
    if isinstance(value, (bytes, bytearray)):
        return {"$": "bytes", "v": bytes(value).hex()}
    if isinstance(value, list):
        return [encode(x, d) for x in value]
    if isinstance(value, tuple):
        return {"$": "tuple", "v": [encode(x, d) for x in value]}
    if isinstance(value, (set, frozenset)):
        tag = "set" if isinstance(value, set) else "frozenset"
        return {"$": tag, "v": [encode(x, d) for x in value]}
    if isinstance(value, dict):
        return {"$": "dict", "v": [[encode(k, d), encode(v, d)] for k, v in value.items()]}
    try:  # numpy scalars and the like: their Python value
        item = value.item()
        if isinstance(item, (int, float, bool, complex)):
            return encode(item, d)
    except Exception:
        pass
    try:
        return {"$": "repr", "v": repr(value)[:10000]}
    except Exception:
        return {"$": "repr", "v": "<unrepresentable>"}


class Opaque(str):
    """What a value that is not data became: its repr; it equals nothing but another Opaque of the same text."""

    def __eq__(self, other):
        return isinstance(other, Opaque) and str.__eq__(self, other)

    __hash__ = str.__hash__


def decode(obj, _depth=0):
    if _depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    d = _depth + 1
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(x, d) for x in obj]
    if not isinstance(obj, dict) or set(obj) != {"$", "v"}:
        raise ValueError("malformed value on the sandbox wire")
    tag, v = obj["$"], obj["v"]
    if tag == "int":
        return int(str(v)[:5000])
    if tag == "float":
        return float(str(v))
    if tag == "complex":
        return complex(float(v[0]), float(v[1]))
    if tag == "bytes":
        return bytes.fromhex(str(v))
    if tag == "tuple":
        return tuple(decode(x, d) for x in v)
    if tag == "set":
        return set(decode(x, d) for x in v)
    if tag == "frozenset":
        return frozenset(decode(x, d) for x in v)
    if tag == "dict":
        return {decode(k, d): decode(x, d) for k, x in v}
    if tag == "repr":
        return Opaque(str(v))
    raise ValueError("unknown tag on the sandbox wire: %r" % (tag,))
