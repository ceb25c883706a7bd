"""The one record that flows through everything: an HTTP round trip of the chat API.

Live clients, capture readers, the mock's replay, checks, metrics and recordings all produce or
consume `Exchange`. Headers are stored lower-cased and already redacted; a secret never enters
an Exchange, so nothing downstream can leak it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .limits import KEEP_HEAD_BYTES, KEEP_HEAD_EVENTS, KEEP_TAIL_EVENTS
from .redact import redact_headers
from .sse import SSEEvent


@dataclass(slots=True)
class HTTPRequest:
    """What was sent. `body` is the parsed JSON body when it parsed, else None (see `body_text`)."""

    method: str = "POST"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    body_text: str | None = None

    def __post_init__(self) -> None:
        self.headers = redact_headers(self.headers)

    @property
    def is_stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def include_usage(self) -> bool:
        if not isinstance(self.body, dict) or self.body.get("stream") is not True:
            return False
        opts = self.body.get("stream_options")
        return isinstance(opts, dict) and opts.get("include_usage") is True


@dataclass(slots=True)
class Exchange:
    """One round trip. A streamed response has `events`; any other response has `body`/`body_text`.

    `events` is a list for live and captured traffic. Readers of very large SSE transcripts may
    hand over a one-shot iterator instead, so memory stays flat; stream checks consume events in
    a single pass and work with both.
    """

    request: HTTPRequest | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    body_text: str | None = None
    events: list[SSEEvent] | Iterator[SSEEvent] | None = None
    source: str = ""
    entry: int = 0
    t_send_ns: int | None = None
    t_headers_ns: int | None = None
    t_end_ns: int | None = None
    sent_at: float | None = None   # wall-clock UNIX time of the send (live traffic): judges `created`
    transport_error: str | None = None
    notes: list[str] = field(default_factory=list)
    dropped_events: int = 0        # stream events received but not kept (see conformance.limits)
    dropped_chars: int = 0         # their data characters, plus raw body text not kept
    stream_check: Any = None       # the stream rules' verdict on every event, taken as they arrived

    def __post_init__(self) -> None:
        self.headers = redact_headers(self.headers)

    @property
    def truncated(self) -> bool:
        """Part of what the server sent is not kept here (the counts say how much)."""
        return bool(self.dropped_events or self.dropped_chars)

    # -- classification ---------------------------------------------------------------------

    @property
    def is_streamed(self) -> bool:
        """The response body is an event stream (whether or not the request asked for one)."""
        return self.events is not None

    @property
    def is_error(self) -> bool:
        """An HTTP error status, or a JSON body that is an error envelope."""
        if self.status is not None and self.status >= 400:
            return True
        return isinstance(self.body, dict) and "error" in self.body and "choices" not in self.body

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def iter_events(self) -> Iterable[SSEEvent]:
        return self.events if self.events is not None else ()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class EventKeeper:
    """The head and the tail of a stream, in order, within the caps of `conformance.limits`; counts
    what falls in between, so a flood costs a bounded amount of memory and says what it cut."""

    def __init__(self, head_events: int = KEEP_HEAD_EVENTS, head_bytes: int = KEEP_HEAD_BYTES,
                 tail_events: int = KEEP_TAIL_EVENTS):
        self.head: list[SSEEvent] = []
        self._head_events = head_events
        self._head_room = head_bytes
        self._tail: deque[SSEEvent] = deque(maxlen=tail_events)
        self.dropped_events = 0
        self.dropped_chars = 0

    def add(self, ev: SSEEvent) -> None:
        if not self._tail and len(self.head) < self._head_events and len(ev.data) <= self._head_room:
            self.head.append(ev)
            self._head_room -= len(ev.data)
            return
        if self._tail.maxlen and len(self._tail) == self._tail.maxlen:
            gone = self._tail[0]
            self.dropped_events += 1
            self.dropped_chars += len(gone.data)
        elif not self._tail.maxlen:
            self.dropped_events += 1
            self.dropped_chars += len(ev.data)
            return
        self._tail.append(ev)

    def events(self) -> list[SSEEvent]:
        return self.head + list(self._tail)

    def note(self, *, checked: bool) -> str | None:
        """The line that says what was cut, or None when the whole stream is kept."""
        if not self.dropped_events:
            return None
        return (f"{self.dropped_events} events ({self.dropped_chars} characters of data) not kept: only the "
                f"first {len(self.head)} and the last {len(self._tail)} events are stored; "
                + ("the stream rules saw every event as it arrived" if checked
                   else "rules run later see only the kept events"))


def is_http_status(value: Any) -> bool:
    """An HTTP status code as RFC 9110 defines them: a three-digit integer, 100 to 599 (no bool)."""
    return type(value) is int and 100 <= value <= 599


def not_a_status(value: Any) -> str:
    """Why a captured status cannot be one, in a few words (a huge number is shortened)."""
    shown = repr(value)
    if len(shown) > 24:
        unit = "digits" if type(value) is int else "characters"
        shown = f"{shown[:12]}... ({len(shown)} {unit})"
    return f"{shown} is not an HTTP status (an integer 100-599)"


def make_headers(raw: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """Header list or mapping -> redacted, lower-cased dict (repeated names joined with ', ')."""
    if raw is None:
        return {}
    items = raw.items() if isinstance(raw, Mapping) else raw
    merged: dict[str, str] = {}
    for name, value in items:
        key = str(name).lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else str(value)
    return redact_headers(merged)
