"""Evidence as a person reads it: JSON bodies pretty-printed, SSE events as the stream's own lines,
the answer's status and headers on one line; shared by the HTML report and JUnit.

Evidence stores bodies and event data as strings (what the server sent, clipped); shown as escaped JSON
strings inside JSON they are unreadable, so each block parses what is JSON and shows the rest as text.
"""

from __future__ import annotations

from typing import Any

from ..jsonutil import JSONError, dumps, loads

_ANSWER_KEYS = ("status", "content_type", "x_request_id", "event_count", "transport_error")


def evidence_blocks(evidence: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(title, text) blocks in reading order: what broke, what was sent, how to resend it, what came back."""
    evidence = dict(evidence or {})
    blocks: list[tuple[str, str]] = []
    violations = evidence.pop("violations", None)
    if violations:
        blocks.append(("Violations", "\n".join(_violation_line(v) for v in violations)))
    if "request" in evidence:
        blocks.append(("Request", readable(evidence.pop("request"))))
    curl = evidence.pop("curl", None)
    if curl:
        blocks.append(("Reproduce", str(curl)))
    answer = [f"{key.replace('_', ' ')}: {evidence.pop(key)}" for key in _ANSWER_KEYS if key in evidence]
    if answer:
        blocks.append(("Answer", "\n".join(answer)))
    events = evidence.pop("events", None)
    if isinstance(events, list):
        blocks.append(("Events (first, last and those around a violation)",
                       "\n".join(_event_line(ev) for ev in events)))
    if "body" in evidence:
        blocks.append(("Body", readable(evidence.pop("body"))))
    for key, value in evidence.items():
        blocks.append((key.replace("_", " ").capitalize(), readable(value)))
    return blocks


def evidence_text(evidence: dict[str, Any] | None) -> str:
    return "\n\n".join(f"{title}:\n{text}" for title, text in evidence_blocks(evidence))


def readable(value: Any) -> str:
    """Pretty JSON for structures and for strings that hold JSON; other text as it is."""
    return dumps(_unwrap(value), indent=True) if not isinstance(value, str) else _text(value)


def _text(value: str) -> str:
    parsed = _json_in(value)
    return dumps(_unwrap(parsed), indent=True) if parsed is not None else value


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, str):
        parsed = _json_in(value)
        return _unwrap(parsed) if parsed is not None else value
    return value


def _json_in(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return loads(stripped)
    except (JSONError, ValueError):
        return None


def _event_line(event: Any) -> str:
    if not isinstance(event, dict):
        return str(event)
    data = event.get("data", "")
    parsed = _json_in(data) if isinstance(data, str) else None
    shown = dumps(parsed) if parsed is not None else data
    return f"[{event.get('index', '?')}] data: {shown}"


def _violation_line(v: Any) -> str:
    if not isinstance(v, dict):
        return str(v)
    where = [f"{k} {v[k]}" for k in ("entry", "event") if v.get(k) is not None]
    if v.get("pointer"):
        where.append(f"at {v['pointer']}")
    place = ", " + ", ".join(where) if where else ""
    return f"{v.get('rule', '?')} ({v.get('level', '?')}{place}): {v.get('message', '')}"
