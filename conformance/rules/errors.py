"""Error rules (error.*): the envelope a rejection comes in, plain JSON or SSE-wrapped.

Real DashScope envelopes vary (C4): `param`, `id` and `request_id` may be missing, `code` may be
null, and `type` is not always invalid_request_error (moderation, arrears, rate limits: C9, C41,
C42). These rules accept every captured variant and fail only what breaks clients.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..jsonutil import JSONError, loads
from ..profiles import Profile
from ..sse import decode_bytes, looks_like_sse
from .base import Violation, applies, expected, expected_text, register
from .schema_rules import schema_findings, schemas_for

register("error.envelope", "an error response body is a JSON (or SSE data:) object with an `error` object",
         kind="error", cites="001:error-response E1 C4 C5")
register("error.status-type", "error.type fits the HTTP status", kind="error", cites="E2 C4 C41 C42")
register("error.stream-body-sse", "errors on stream:true requests come as a `data: {...}` SSE body",
         kind="error", cites="C5", needs="stream-error", when="stream_error_body=sse")
register("error.code-snake-case", "error.code is snake_case (or a documented native code)", kind="error",
         cites="C4 C42", when="error_code_snake_case")
register("error.request-id", "error id / request_id agree with x-request-id", kind="error", cites="C3",
         when="request_id_in_id")
register("error.status-code", "an error envelope never comes with a 2xx status", kind="error",
         cites="001:error-codes 001:error-response E1 C6")
register("error.content-type", "an error answer is served as JSON (an SSE data: body as text/event-stream)",
         kind="error", cites="001:http-api 001:error-response C5")
register("error.no-leak", "error messages carry no stack trace or server file path", kind="error", cites="SEC1")

_LEAKS = re.compile(
    r"Traceback \(most recent call last\)"            # Python
    r"|\bFile \"[^\"]+\", line \d+"                   # Python frame
    r"|\bat [\w$.<>]+\([\w$]+\.(?:java|kt|scala|cs):\d+\)"  # JVM / .NET frame
    r"|(?:^|[\s'\"(=])/(?:usr|home|opt|srv|var|app|root|tmp|workspace)/[\w./-]+\.(?:py|js|ts|go|java|rb|rs)\b"
    r"|\b[A-Za-z]:\\(?:[\w .-]+\\)+[\w .-]+\.(?:py|cs|java|js)\b")

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
NATIVE_CODES = frozenset({
    "Arrearage", "ModelServingError", "ModelUnavailable", "RequestTimeOut", "InternalError.Algo",
    "InvalidParameter", "InvalidParameter.NotSupportEnableThinking", "AccessDenied",
    "AccessDenied.Unpurchased", "Model.AccessDenied", "Workspace.AccessDenied",
    "AllocationQuota.FreeTierOnly", "PrepaidBillOverdue", "PostpaidBillOverdue", "CommodityNotPurchased",
    "ServiceUnavailableError", "Throttling.RateQuota", "Throttling.BurstRate", "Throttling.AllocationQuota",
})
"""Native-style codes DashScope passes through in compatible mode (research s3 table, C9, C43)."""


def parse_error_body(body: Any, body_text: str | None) -> tuple[Any, bool]:
    """(parsed envelope or None, came_as_sse). Accepts a JSON body and an SSE `data: {...}` body (C5)."""
    if body is not None:
        return body, False
    if not body_text or not body_text.strip():
        return None, False
    if looks_like_sse(body_text):
        for ev in decode_bytes(body_text.encode("utf-8")):
            if not ev.is_done:
                return ev.json, True
        return None, True
    try:
        return loads(body_text), False
    except JSONError:
        return None, False


def is_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("error"), dict)


def envelope_violations(obj: Any, profile: Profile, *, status: int | None,
                        headers: Mapping[str, str] | None = None, entry: int = 0,
                        event: int | None = None, strict: bool = False,
                        seen_unknown: set[str] | None = None) -> list[Violation]:
    """Everything about one error object, wherever it came from (body, SSE body, mid-stream event)."""
    if not is_envelope(obj):
        received = "non-JSON text" if obj is None else obj
        what = "an object with an `error` object (message, type, code)"
        msg = expected_text(what, received) if isinstance(received, str) else expected(what, received)
        return [Violation("error.envelope", msg, entry=entry, event=event, pointer="/error" if
                          isinstance(obj, dict) else "")]
    schemas = schemas_for(profile)
    strict_v = schemas_for(profile, True).error if strict else None
    out = schema_findings(schemas.error, strict_v, obj, "schema.error", entry=entry, event=event,
                          seen_unknown=seen_unknown)
    err = obj["error"]
    message = err.get("message")
    if isinstance(message, str) and (leak := _LEAKS.search(message)):
        out.append(Violation("error.no-leak", expected_text("an error message without internals",
                                                            f"{leak.group(0).strip()!r} in the message"),
                             entry=entry, event=event, pointer="/error/message"))
    for check in (_status_type, _code_snake_case):
        v = check(err, profile, status)
        if v is not None:
            out.append(Violation(v[0], v[1], entry=entry, event=event, pointer=v[2]))
    if applies("error.request-id", profile):
        out.extend(_request_id(obj, headers, entry=entry, event=event))
    return out


def _status_type(err: dict[str, Any], profile: Profile, status: int | None) -> tuple[str, str, str] | None:
    """E2: the `type` a client switches on must fit the status (profile status_types; empty = any)."""
    if status is None or status < 400:
        return None
    allowed = profile.types_for_status(status)
    if not allowed:
        return None
    typ = err.get("type")
    if typ not in allowed:
        return ("error.status-type", expected(f"error.type in {allowed} for HTTP {status}", typ),
                "/error/type")
    return None


def _code_snake_case(err: dict[str, Any], profile: Profile,
                     status: int | None) -> tuple[str, str, str] | None:
    """Compatible-mode codes are snake_case; documented native codes (Arrearage, ...) are accepted."""
    if not applies("error.code-snake-case", profile):
        return None
    code = err.get("code")
    if not isinstance(code, str) or SNAKE.match(code) or code in NATIVE_CODES:
        return None
    documented = {spec.code for key in profile.error_keys if (spec := profile.error(key)) and spec.code}
    if code in documented:
        return None
    return ("error.code-snake-case", expected("a snake_case error.code", code), "/error/code")


def _request_id(obj: dict[str, Any], headers: Mapping[str, str] | None, *, entry: int,
                event: int | None) -> list[Violation]:
    """C3: top-level id is 'chatcmpl-' + request id; request_id is the x-request-id header
    (one capture carried the chatcmpl- form in request_id, so that form is accepted too)."""
    rid_header = (headers or {}).get("x-request-id")
    body_id, body_rid = obj.get("id"), obj.get("request_id")
    ref = rid_header
    if not ref and isinstance(body_rid, str) and body_rid:
        ref = body_rid.removeprefix("chatcmpl-")
    out = []
    if ref and isinstance(body_id, str) and body_id not in (f"chatcmpl-{ref}", ref):
        out.append(Violation("error.request-id", expected(f"id 'chatcmpl-{ref}'", body_id), entry=entry,
                             event=event, pointer="/id"))
    if rid_header and isinstance(body_rid, str) and body_rid not in (rid_header, f"chatcmpl-{rid_header}"):
        out.append(Violation("error.request-id", expected(f"request_id {rid_header!r}", body_rid),
                             entry=entry, event=event, pointer="/request_id"))
    return out


def _content_type_problem(headers: Mapping[str, str], as_sse: bool) -> str | None:
    """JSON bodies are application/json (+json suffixes too); an SSE-framed error body (C5) may also be
    text/event-stream. Only judged when the capture kept the header."""
    raw = headers.get("content-type") if headers else None
    if raw is None:
        return None
    media = raw.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or (as_sse and media == "text/event-stream"):
        return None
    return expected("Content-Type application/json for an error answer", raw)


def check_error_response(*, status: int | None, headers: Mapping[str, str], body: Any,
                         body_text: str | None, request_body: Any, profile: Profile, entry: int = 0,
                         strict: bool = False, events_text: str | None = None) -> list[Violation]:
    """An HTTP error response (or a non-stream body that is an error envelope).

    `events_text`: an SSE-formatted error body a reader already split into events (re-joined).
    """
    if events_text is not None:
        obj, as_sse = parse_error_body(None, events_text)
    else:
        obj, as_sse = parse_error_body(body, body_text)
    out: list[Violation] = []
    if status is not None and 200 <= status < 300 and is_envelope(obj):
        out.append(Violation("error.status-code", expected("a 4xx/5xx status with an error envelope", status),
                             entry=entry, pointer=""))
    out.extend(envelope_violations(obj, profile, status=status, headers=headers, entry=entry, strict=strict))
    ctype = _content_type_problem(headers, as_sse)
    if ctype is not None:
        out.append(Violation("error.content-type", ctype, entry=entry))
    stream_req = isinstance(request_body, dict) and request_body.get("stream") is True
    if stream_req and status is not None and status >= 400 and is_envelope(obj) and not as_sse \
            and applies("error.stream-body-sse", profile):
        out.append(Violation("error.stream-body-sse",
                             expected_text("a `data: {...}` SSE body for a stream:true request",
                                           "plain JSON"),
                             entry=entry))
    return out
