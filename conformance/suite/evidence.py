"""Evidence attached to a check result: a compact, redacted view of an Exchange and a curl
command that reproduces the request (the key stays an environment-variable reference)."""

from __future__ import annotations

import shlex
from typing import Any

from ..exchange import Exchange
from ..jsonutil import dumps
from ..limits import EVIDENCE_EVENTS as MAX_EVENTS
from ..limits import EVIDENCE_TEXT as MAX_TEXT
from ..redact import redact_text


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + f"... [{len(text)} chars]"


def curl_command(body: Any, url: str, api_key_env: str = "DASHSCOPE_API_KEY", *,
                 raw: str | None = None, auth: str | None = None) -> str:
    """A ready-to-paste curl reproducer that sends what the check sent.

    `auth` None: the run's key, as `$ENV_NAME` (never its value); "": no Authorization header (the
    missing-key probe); any other text: that exact, made-up credential (the wrong-key probe).
    """
    payload = raw if raw is not None else dumps(body, indent=False)
    parts = ["curl", "-sS", "-N", shlex.quote(redact_text(url))]
    if auth is None:
        parts += ["-H", f'"Authorization: Bearer ${api_key_env}"']
    elif auth:
        parts += ["-H", shlex.quote(f"Authorization: {auth}")]
    parts += ["-H", shlex.quote("Content-Type: application/json"), "--data-raw", shlex.quote(payload)]
    return " ".join(parts)


def exchange_evidence(ex: Exchange | None, *, api_key_env: str = "DASHSCOPE_API_KEY",
                      violations: list[Any] | None = None, auth: str | None = None) -> dict[str, Any]:
    if ex is None:
        return {}
    out: dict[str, Any] = {}
    if violations:
        out["violations"] = [v.as_dict() if hasattr(v, "as_dict") else v for v in violations[:10]]
    if ex.request is not None:
        out["request"] = ex.request.body if ex.request.body is not None else _clip(ex.request.body_text or "")
        if ex.request.url:
            out["curl"] = curl_command(ex.request.body, ex.request.url, api_key_env,
                                       raw=ex.request.body_text if ex.request.body is None else None, auth=auth)
    out["status"] = ex.status
    rid = ex.header("x-request-id")
    if rid:
        out["x_request_id"] = rid
    ctype = ex.header("content-type")
    if ctype:
        out["content_type"] = ctype
    if isinstance(ex.events, list):
        events = ex.events
        out["event_count"] = len(events) + ex.dropped_events
        if ex.dropped_events:
            out["events_not_kept"] = (f"{ex.dropped_events} events not kept (only the first and the last ones, "
                                      f"{len(events)} of {len(events) + ex.dropped_events}, are stored)")
        out["events"] = [{"index": ev.index, "data": _clip(ev.data, 300)}
                         for ev in _events_to_show(events, violations or [])]
    elif ex.body is not None:
        out["body"] = _clip(dumps(ex.body))
    elif ex.body_text:
        out["body"] = _clip(ex.body_text)
    if ex.transport_error:
        out["transport_error"] = ex.transport_error
    if ex.dropped_chars and not ex.dropped_events:
        out["body_not_kept"] = f"{ex.dropped_chars} characters of the body not kept"
    return out


def _events_to_show(events: list[Any], violations: list[Any]) -> list[Any]:
    """The first and last events, plus each violating event with its neighbours, in stream order
    (violations name the event's stream index, which a truncated stream's list position is not)."""
    if len(events) <= MAX_EVENTS:
        return events
    keep = {0, 1, len(events) - 2, len(events) - 1}
    near = {i for v in violations[:3] if isinstance(getattr(v, "event", None), int)
            for i in (v.event - 1, v.event, v.event + 1)}
    keep.update(pos for pos, ev in enumerate(events) if ev.index in near)
    return [events[i] for i in sorted(keep)]
