"""The one record that flows through everything: an HTTP round trip of the chat API.

Live clients, capture readers, the mock's replay, checks, metrics and recordings all produce or
consume `Exchange`. Headers are stored lower-cased and already redacted; a secret never enters
an Exchange, so nothing downstream can leak it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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

    def __post_init__(self) -> None:
        self.headers = redact_headers(self.headers)

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
