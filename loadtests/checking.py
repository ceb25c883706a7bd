"""Conformance in the same pass: every streamed load-test response goes through the stream rules.

The checker runs after the last byte of a stream was read (the events are already in memory), so
rule evaluation never delays a timestamp of the stream it checks. Violations are counted per rule;
the first `keep` are kept with evidence (rule, message, event index, pointer, request id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.exchange import Exchange

try:  # the rules package is optional at import time: a missing checker must not stop a load test
    from conformance.rules import StreamChecker as _StreamChecker
except ImportError:  # pragma: no cover - depends on the checkout
    try:
        from conformance.rules.stream import StreamChecker as _StreamChecker  # type: ignore[no-redef]
    except ImportError:
        _StreamChecker = None  # type: ignore[assignment,misc]


def checker_available() -> bool:
    return _StreamChecker is not None


def check_stream(ex: Exchange, profile: Any) -> list[dict[str, Any]]:
    """Run the incremental stream rules over one finished Exchange; violations as small dicts."""
    if _StreamChecker is None or ex.events is None or ex.status is None or ex.status >= 400:
        return []
    body = ex.request.body if ex.request is not None else None
    try:
        checker = _StreamChecker(profile, body, entry=ex.entry, headers=ex.headers)
    except TypeError:  # an older checker without header-aware rules
        checker = _StreamChecker(profile, body, entry=ex.entry)
    found = []
    feed: Callable[[Any], list[Any]] = checker.feed
    for ev in ex.iter_events():
        found.extend(feed(ev))
    found.extend(checker.finish(transport_error=ex.transport_error))
    out = []
    for v in found:
        if getattr(v, "level", "error") != "error":
            continue
        item = {"rule": v.rule, "message": v.message[:300], "event": v.event, "pointer": v.pointer}
        if v.unlisted:  # the checker's summary of findings it did not list: they count all the same
            item["count"] = v.unlisted
        out.append(item)
    return out
