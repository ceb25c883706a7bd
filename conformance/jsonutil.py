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


def _stdlib_dumps(obj: Any, indent: bool, sort_keys: bool) -> str:
    """The fallback encoder. Its output always encodes to UTF-8: when a string holds a lone
    surrogate (a server may send `"\\ud800"`, which parses to one), the document is written with
    ASCII escapes instead, which keeps that surrogate as the same `\\udXXX` escape (lossless)."""
    kwargs: dict[str, Any] = {"indent": 2 if indent else None, "sort_keys": sort_keys, "default": str,
                              "separators": None if indent else (",", ":")}
    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, **kwargs)
    return text


def dumps(obj: Any, *, indent: bool = False, sort_keys: bool = False) -> str:
    """Serialize to a str that always encodes to UTF-8; non-JSON values fall back to str().

    orjson refuses integers beyond 64 bits and strings with lone surrogates; both go to the stdlib
    encoder (see `_stdlib_dumps`), so no string a server can send makes a report or recording fail."""
    if _orjson is not None:
        opts = 0
        if indent:
            opts |= _orjson.OPT_INDENT_2
        if sort_keys:
            opts |= _orjson.OPT_SORT_KEYS
        try:
            return _orjson.dumps(obj, option=opts, default=str).decode()
        except TypeError:  # integers beyond 64 bits, lone surrogates
            pass
    return _stdlib_dumps(obj, indent, sort_keys)


def dumpb(obj: Any) -> bytes:
    """Compact UTF-8 bytes, for bodies sent on the wire and JSONL lines."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, default=str)
        except TypeError:
            pass
    return _stdlib_dumps(obj, False, False).encode("utf-8")


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
