"""The one Server-Sent Events decoder: bytes in, events out, for live runs, captures and load tests.

Incremental and exact for any split of the input: a chunk may end inside a line, inside a CRLF pair
or inside a multi-byte UTF-8 character. Follows the WHATWG event-stream rules (CR, LF and CRLF line
ends, comments, `field:value` with one optional space, multi-line data, a leading BOM, no dispatch
of events without data) and adds what a conformance tool needs on top: the arrival time of each
event's first byte, the event's position, and the trailing event a server left unterminated.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import Any

from .jsonutil import JSONError, loads

DONE = "[DONE]"
DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024
_UNPARSED: Any = object()


class SSEError(ValueError):
    """The byte stream cannot be an event stream (an event or line beyond the size limit)."""


class SSEEvent:
    """One dispatched event. `data` is the joined payload; `json` parses it once, on demand."""

    __slots__ = ("_json", "_parse_error", "data", "event", "id", "index", "retry", "t_ns", "terminated")

    def __init__(self, data: str, *, event: str | None = None, id: str | None = None,
                 retry: int | None = None, t_ns: int = 0, index: int = 0, terminated: bool = True):
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.t_ns = t_ns
        self.index = index
        self.terminated = terminated
        self._json: Any = _UNPARSED
        self._parse_error: str | None = None

    @property
    def is_done(self) -> bool:
        """The OpenAI-style end marker (clients stop at data starting with `[DONE]`)."""
        return self.data.startswith(DONE)

    def _parse(self) -> None:
        try:
            self._json = loads(self.data)
        except JSONError as exc:
            self._json = None
            self._parse_error = str(exc)

    @property
    def json(self) -> Any:
        """Parsed payload, or None when it is not JSON (see `parse_error`)."""
        if self._json is _UNPARSED:
            self._parse()
        return self._json

    @property
    def parse_error(self) -> str | None:
        if self._json is _UNPARSED:
            self._parse()
        return self._parse_error

    def set_json(self, value: Any) -> None:
        """Attach an already-parsed payload (readers that parse eagerly avoid a second parse)."""
        self._json = value
        self._parse_error = None

    def as_text(self) -> str:
        """The event re-serialized in canonical wire form (fields as received, LF line ends)."""
        lines = []
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        lines.extend(f"data: {part}" for part in self.data.split("\n"))
        return "\n".join(lines) + "\n\n"

    def __repr__(self) -> str:
        preview = self.data if len(self.data) <= 60 else self.data[:57] + "..."
        return f"SSEEvent(index={self.index}, t_ns={self.t_ns}, data={preview!r})"


class SSEDecoder:
    """Feed bytes as they arrive; get complete events back.

    `feed(chunk, t_ns)` returns the events completed by this chunk, each stamped with the `t_ns`
    of the chunk that carried its first field byte. `close()` returns an event that the stream
    left without its terminating blank line (marked `terminated=False`), so callers can both use
    it and report it. `comments` counts comment lines (keep-alives such as `: ping`).
    """

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self._max = max_event_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._buf_t = 0          # arrival time of the first byte still in _buf
        self._skip_lf = False    # the previous chunk ended with CR: a leading LF belongs to it
        self._started = False    # BOM handling happens once, on the first decoded text
        self._data: list[str] = []
        self._data_len = 0
        self._event: str | None = None
        self._id: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None
        self._event_t: int | None = None
        self._count = 0
        self.comments = 0
        self.bytes_in = 0
        self.decode_errors = 0

    # -- public API -------------------------------------------------------------------------

    def feed(self, chunk: bytes, t_ns: int = 0) -> list[SSEEvent]:
        if not chunk:
            return []
        self.bytes_in += len(chunk)
        text = self._utf8.decode(chunk)
        if "\ufffd" in text:
            self.decode_errors += text.count("\ufffd")
        return self._feed_text(text, t_ns)

    def feed_text(self, text: str, t_ns: int = 0) -> list[SSEEvent]:
        """For transcripts already decoded to str (same rules, no UTF-8 step)."""
        self.bytes_in += len(text)
        return self._feed_text(text, t_ns)

    def close(self) -> list[SSEEvent]:
        """End of stream: flush an unterminated trailing event (if it has data)."""
        tail = self._utf8.decode(b"", final=True)
        events = self._feed_text(tail, 0) if tail else []
        if self._buf:
            self._process_line(self._buf, self._buf_t)
            self._buf = ""
        if self._data:
            events.append(self._dispatch(terminated=False))
        return events

    def iter_events(self, chunks: Iterable[tuple[bytes, int]]) -> Iterator[SSEEvent]:
        """Decode a whole stream of `(bytes, t_ns)` pairs, including the flush at the end."""
        for chunk, t_ns in chunks:
            yield from self.feed(chunk, t_ns)
        yield from self.close()

    # -- internals ------------------------------------------------------------------------------

    def _feed_text(self, text: str, t_ns: int) -> list[SSEEvent]:
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if not text:
            return []
        if not self._buf:
            self._buf_t = t_ns
        buf = self._buf + text if self._buf else text
        if "\r" in buf:
            if buf.endswith("\r"):
                self._skip_lf = True
            # A final CR is a line end now; `_skip_lf` makes a LF opening the next chunk not count again.
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        rest = lines.pop()
        events: list[SSEEvent] = []
        if lines:
            first_t = self._buf_t
            process = self._process_line
            process(lines[0], first_t)
            if self._dispatch_pending:
                events.append(self._dispatch())
            for line in lines[1:]:
                process(line, t_ns)
                if self._dispatch_pending:
                    events.append(self._dispatch())
            self._buf_t = t_ns
        self._buf = rest
        if len(rest) > self._max:
            raise SSEError(f"SSE line longer than {self._max} bytes")
        return events

    _dispatch_pending = False

    def _process_line(self, line: str, t_ns: int) -> None:
        if not line:
            if self._data:
                self._dispatch_pending = True
            else:  # blank line with no data: reset per spec
                self._event = None
                self._event_t = None
            return
        if line[0] == ":":
            self.comments += 1
            return
        colon = line.find(":")
        if colon == -1:
            field, value = line, ""
        else:
            field = line[:colon]
            value = line[colon + 1:]
            if value[:1] == " ":
                value = value[1:]
        if field == "data":
            if self._event_t is None:
                self._event_t = t_ns
            self._data.append(value)
            self._data_len += len(value)
            if self._data_len > self._max:
                raise SSEError(f"SSE event larger than {self._max} bytes")
        elif field == "event":
            if self._event_t is None:
                self._event_t = t_ns
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
                self._id = value
        elif field == "retry":
            if value.isdigit():
                self._retry = int(value)
        # other fields are ignored, as the spec says

    def _dispatch(self, terminated: bool = True) -> SSEEvent:
        self._dispatch_pending = False
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        ev = SSEEvent(data, event=self._event, id=self._id if self._id is not None else self._last_id,
                      retry=self._retry, t_ns=self._event_t or 0, index=self._count,
                      terminated=terminated)
        self._count += 1
        self._data = []
        self._data_len = 0
        self._event = None
        self._id = None
        self._retry = None
        self._event_t = None
        return ev


def decode_bytes(data: bytes, t_ns: int = 0) -> list[SSEEvent]:
    """Decode a complete body in one call (captures, error bodies)."""
    dec = SSEDecoder()
    return dec.feed(data, t_ns) + dec.close()


def looks_like_sse(text: str) -> bool:
    """A body whose first meaningful line is an SSE field (used to detect `data:` error bodies)."""
    for line in text.lstrip("\ufeff").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        return stripped.startswith(("data:", "event:", "id:", "retry:", ":"))
    return False
