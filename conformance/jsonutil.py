"""One JSON codec for the whole project: orjson when present (fast, strict), stdlib otherwise.

Everything that parses or writes JSON goes through here so that parse-error messages, limits and
number handling are the same for live traffic, captures and load tests.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:  # orjson is a declared dependency; the fallback keeps the module importable in odd envs.
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

MAX_DEPTH = 200
"""Nesting deeper than this is refused (orjson stops at 1024; captures should never need more)."""


class JSONError(ValueError):
    """A payload that is not JSON, with a short reason fit for a one-line report."""


_NEG_BIG_INT = re.compile(r"-\d{19,}")
_NEG_BIG_INT_B = re.compile(rb"-\d{19,}")


def loads(data: str | bytes) -> Any:
    """Parse JSON, raising JSONError with a short message on any failure (never RecursionError)."""
    if _orjson is not None:
        try:
            value = _orjson.loads(data)
        except ValueError:
            pass  # orjson refuses integers beyond 64 bits; the stdlib parser decides
        else:
            # ...but reads integers below -2^63 as lossy floats (seed -2^63-1000 became -2^63, in range).
            big = _NEG_BIG_INT_B if isinstance(data, (bytes, bytearray, memoryview)) else _NEG_BIG_INT
            if not big.search(data):  # type: ignore[arg-type]
                return value
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise JSONError("JSON nested too deeply") from exc
    except (ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if "recursion" in msg.lower():
            msg = "JSON nested too deeply"
        raise JSONError(msg) from exc


def dumps(obj: Any, *, indent: bool = False, sort_keys: bool = False) -> str:
    """Serialize to a str; non-JSON values fall back to str() instead of failing a report."""
    if _orjson is not None:
        opts = 0
        if indent:
            opts |= _orjson.OPT_INDENT_2
        if sort_keys:
            opts |= _orjson.OPT_SORT_KEYS
        try:
            return _orjson.dumps(obj, option=opts, default=str).decode()
        except TypeError:  # e.g. integers beyond 64 bits, which orjson refuses
            pass
    return json.dumps(obj, indent=2 if indent else None, sort_keys=sort_keys, default=str,
                      ensure_ascii=False, separators=None if indent else (",", ":"))


def dumpb(obj: Any) -> bytes:
    """Compact UTF-8 bytes, for bodies sent on the wire and JSONL lines."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, default=str)
        except TypeError:
            pass
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def depth_exceeds(obj: Any, limit: int = MAX_DEPTH) -> bool:
    """True when a parsed document nests deeper than `limit` (checked iteratively, no recursion)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return False
