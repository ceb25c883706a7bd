"""`check_exchange`: every rule that applies to one Exchange, chosen by what the exchange holds.

- the request body, when known and the server did not reject it: request.* rules (a 4xx answer to
  an invalid request is the server doing its job, not a finding); `request_rules=False` leaves them
  out entirely, for callers that judge the request themselves (`chatconf validate` checks every
  captured request, whatever the answer);
- a JSON 2xx body: schema.completion + response.*;
- an event stream: schema.chunk + stream.* through one StreamChecker pass (events may be a
  one-shot iterator); a stream the Exchange did not keep whole is judged by the `LiveStreamCheck`
  that saw every event as it arrived, or, without one (a recording), on the kept events plus a
  `stream.not-kept` warning saying how many events no rule saw;
- an error status or an error envelope: schema.error + error.*, whether the body is JSON, an SSE
  `data: {...}` text (C5) or an SSE body a reader already split into events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ..exchange import Exchange
from ..profiles import Profile
from ..sse import decode_bytes, looks_like_sse
from .base import Violation, expected_text
from .errors import check_error_response, is_envelope, parse_error_body
from .request import check_request
from .response import check_response_body, content_type_violation
from .schema_rules import schema_findings, schemas_for
from .stream import StreamChecker


def check_exchange(ex: Exchange, profile: Profile, *, strict: bool = False,
                   request_rules: bool = True) -> Iterator[Violation]:
    """Yield violations in a stable order: request, then response/stream/error findings."""
    req_body = ex.request.body if ex.request is not None else None
    status = ex.status
    error_status = status is not None and status >= 400
    if ex.events is not None and error_status:
        yield from _error(ex, profile, strict, req_body, events_text=_join_events(ex))
        return
    events = ex.events
    if events is None and ex.body is None and ex.body_text and not error_status \
            and looks_like_sse(ex.body_text):
        events = decode_bytes(ex.body_text.encode("utf-8"))  # a reader kept an event stream as text
    if events is not None:
        if req_body is not None and request_rules:
            yield from _entry(check_request(req_body, profile), ex.entry)
        if ex.dropped_events and isinstance(ex.stream_check, LiveStreamCheck):
            yield from ex.stream_check.result(ex.transport_error)
            return
        checker = stream_checker(ex, profile, strict)
        feed = checker.feed
        for ev in events:
            found = feed(ev)
            if found:  # most events find nothing: no `yield from` of an empty list per event
                yield from found
        yield from checker.finish(ex.transport_error)
        if ex.dropped_events:
            yield Violation(NOT_KEPT, f"{ex.dropped_events} events of this stream were not kept; the stream "
                            "rules judged only the kept ones", entry=ex.entry, level="warning")
        return
    body = ex.body
    if body is None and ex.body_text is not None and not error_status:
        body, _ = parse_error_body(None, ex.body_text)
    if error_status or is_envelope(body) or (isinstance(body, dict) and "error" in body
                                            and "choices" not in body):
        yield from _error(ex, profile, strict, req_body)
        return
    if body is None and ex.body_text is None:
        return  # nothing came back (a transport failure is reported by whoever made the call)
    if req_body is not None and request_rules:
        yield from _entry(check_request(req_body, profile), ex.entry)
    yield from _completion(ex, body, profile, strict, req_body)


NOT_KEPT = "stream.not-kept"
"""Not a rule of the API: the warning that part of a stream was never checked (no verdict is whole)."""


def stream_checker(ex: Exchange, profile: Profile, strict: bool = False) -> StreamChecker:
    req_body = ex.request.body if ex.request is not None else None
    return StreamChecker(profile, req_body, entry=ex.entry, strict=strict,
                         headers=ex.headers if ex.headers else None, sent_at=ex.sent_at)


class LiveStreamCheck:
    """The stream rules fed event by event while a stream arrives, for an Exchange that keeps only
    part of it (conformance.limits): the verdict covers every event, kept or not. Constant memory:
    the checker's state and at most MAX_PER_RULE findings per rule."""

    def __init__(self, ex: Exchange, profile: Profile, strict: bool = False):
        self._checker = stream_checker(ex, profile, strict)
        self._found: list[Violation] = []
        self._final: list[Violation] | None = None

    def feed(self, ev: object) -> None:
        self._found.extend(self._checker.feed(ev))  # type: ignore[arg-type]

    def result(self, transport_error: str | None) -> list[Violation]:
        """Every finding; the end-of-stream ones are taken once, on the first call."""
        if self._final is None:
            self._final = self._found + self._checker.finish(transport_error)
            self._found = []
        return self._final


def _entry(violations: list[Violation], entry: int) -> list[Violation]:
    if not entry:
        return violations
    return [dataclasses.replace(v, entry=entry) for v in violations]


def _join_events(ex: Exchange) -> str:
    return "".join(ev.as_text() for ev in ex.iter_events())


def _error(ex: Exchange, profile: Profile, strict: bool, req_body: object,
           events_text: str | None = None) -> list[Violation]:
    return check_error_response(status=ex.status, headers=ex.headers, body=ex.body, body_text=ex.body_text,
                                request_body=req_body, profile=profile, entry=ex.entry, strict=strict,
                                events_text=events_text)


def _completion(ex: Exchange, body: object, profile: Profile, strict: bool,
                req_body: object) -> Iterator[Violation]:
    v = content_type_violation(ex.headers, "application/json", "response.content-type", ex.entry)
    if v is not None:
        yield v
    if not isinstance(body, dict):
        yield Violation("schema.completion", expected_text("a JSON chat.completion object",
                                                           "non-JSON text" if body is None else repr(body)),
                        entry=ex.entry)
        return
    strict_v = schemas_for(profile, True).completion if strict else None
    yield from schema_findings(schemas_for(profile).completion, strict_v, body, "schema.completion",
                               entry=ex.entry)
    yield from check_response_body(body, profile, request=req_body, headers=ex.headers, entry=ex.entry,
                                   sent_at=ex.sent_at)
