"""The one Server-Sent Events decoder: bytes in, events out, for live runs, captures and load tests.

Incremental and exact for any split of the input: a chunk may end inside a line, inside a CRLF pair
or inside a multi-byte UTF-8 character. Follows the WHATWG event-stream rules (CR, LF and CRLF line
ends, comments, `field:value` with one optional space, multi-line data, a leading BOM, no dispatch
of events without data) and adds what a conformance tool needs on top: the arrival time of each
event's first byte, the event's position, and the trailing event a server left unterminated.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .jsonutil import JSONError, loads

try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - declared dependency
    _fast_loads = None

DONE = "[DONE]"
_ESCAPED = re.compile("[\udc80-\udcff]")
"""An invalid byte decoded with `surrogateescape` (valid UTF-8 never decodes to a lone surrogate)."""
DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024
_UNPARSED: Any = object()


class SSEError(ValueError):
    """The byte stream cannot be an event stream (an event or line beyond the size limit)."""


class SSEEvent:
    """One dispatched event. `data` is the joined payload; `json` parses it once, on demand.

    `not_utf8`: the bytes of this event's fields were not all UTF-8; its text holds U+FFFD in their
    place, as every SSE client decodes it, and the stream rules report it (stream.json).
    """

    __slots__ = ("_json", "_parse_error", "data", "event", "id", "index", "not_utf8", "retry", "t_ns",
                 "terminated")

    def __init__(self, data: str, event: str | None = None, id: str | None = None,
                 retry: int | None = None, t_ns: int = 0, index: int = 0, terminated: bool = True,
                 not_utf8: bool = False):
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.t_ns = t_ns
        self.index = index
        self.terminated = terminated
        self.not_utf8 = not_utf8
        self._json: Any = _UNPARSED
        self._parse_error: str | None = None

    @property
    def is_done(self) -> bool:
        """The OpenAI-style end marker (clients stop at data starting with `[DONE]`)."""
        return self.data.startswith(DONE)

    def _parse(self) -> None:
        if _fast_loads is not None:  # the per-chunk hot path: orjson directly, errors worded by jsonutil
            try:
                self._json = _fast_loads(self.data)
                return
            except Exception:
                pass
        try:
            self._json = loads(self.data)
        except JSONError as exc:
            self._json = None
            self._parse_error = str(exc)

    @property
    def json(self) -> Any:
        """Parsed payload, or None when it is not JSON (see `parse_error`)."""
        if self._json is _UNPARSED:
            if _fast_loads is not None:  # the per-chunk hot path, inline: orjson directly
                try:
                    self._json = _fast_loads(self.data)
                    return self._json
                except Exception:
                    pass
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
        self._parts: list[str] = []  # text of an unfinished line, in pieces (no quadratic joins)
        self._parts_len = 0
        self._buf_t = 0          # arrival time of the first byte of the unfinished line
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
        self.decode_error_offset: int | None = None   # stream byte offset of the first invalid byte
        self.decode_error_event: int | None = None    # index of the event that held it
        self._escaped = False    # invalid bytes were seen: dispatched events are checked for them

    # -- public API -------------------------------------------------------------------------

    def feed(self, chunk: bytes, t_ns: int = 0) -> list[SSEEvent]:
        """Decode a chunk. Invalid UTF-8 is replaced by U+FFFD (as browsers do), counted in
        `decode_errors`, the first one located in `decode_error_offset`/`decode_error_event`, and every
        event holding such bytes is marked `not_utf8` (a U+FFFD the server sent as valid UTF-8 is not
        counted and marks nothing)."""
        if not chunk:
            return []
        start = self.bytes_in
        self.bytes_in += len(chunk)
        pending = self._utf8.getstate()[0]
        text = self._utf8.decode(chunk)
        if "\ufffd" not in text:
            return self._mark(self._feed_text(text, t_ns)) if self._escaped else self._feed_text(text, t_ns)
        data = pending + chunk
        bad = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
        if bad <= 0:
            return self._mark(self._feed_text(text, t_ns)) if self._escaped else self._feed_text(text, t_ns)
        # Decode the same bytes again with each invalid byte kept as a lone surrogate (which valid
        # UTF-8 never yields), so the events that hold one are known when they are dispatched.
        held = len(self._utf8.getstate()[0])
        text = data[:len(data) - held].decode("utf-8", "surrogateescape")
        self._escaped = True
        self.decode_errors += bad
        if self.decode_error_offset is not None:
            return self._mark(self._feed_text(text, t_ns))
        # The first invalid byte: feed the text before it, so the event it falls in is known.
        cut = _ESCAPED.search(text).start()  # type: ignore[union-attr]  # bad > 0: there is one
        events = self._feed_text(text[:cut], t_ns) if cut else []
        self.decode_error_offset = start - len(pending) + len(text[:cut].encode("utf-8", "surrogatepass"))
        self.decode_error_event = self._count
        events += self._feed_text(text[cut:], t_ns)
        return self._mark(events)

    def _mark(self, events: list[SSEEvent]) -> list[SSEEvent]:
        """Events holding escaped invalid bytes: U+FFFD in their place, and `not_utf8` set."""
        for ev in events:
            fields = (ev.data, ev.event or "", ev.id or "")
            if any(_ESCAPED.search(f) for f in fields):
                ev.not_utf8 = True
                ev.data = _replace_escaped(ev.data)
                if ev.event is not None:
                    ev.event = _replace_escaped(ev.event)
                if ev.id is not None:
                    ev.id = _replace_escaped(ev.id)
        return events

    def feed_text(self, text: str, t_ns: int = 0) -> list[SSEEvent]:
        """For transcripts already decoded to str (same rules, no UTF-8 step)."""
        self.bytes_in += len(text)
        return self._feed_text(text, t_ns)

    def close(self) -> list[SSEEvent]:
        """End of stream: flush an unterminated trailing event (if it has data)."""
        pending = self._utf8.getstate()[0]
        tail = self._utf8.decode(b"", final=True)
        if pending and "\ufffd" in tail:  # the stream ended inside a UTF-8 sequence
            tail = pending.decode("utf-8", "surrogateescape")
            self._escaped = True
            self.decode_errors += 1
            if self.decode_error_offset is None:
                self.decode_error_offset = self.bytes_in - len(pending)
                self.decode_error_event = self._count
        events = self._feed_text(tail, 0) if tail else []
        if self._parts:
            line = "".join(self._parts)
            self._parts = []
            self._parts_len = 0
            self._process_line(line, self._buf_t)
        if self._data:
            events.append(self._dispatch(terminated=False))
        return self._mark(events) if self._escaped else events

    def decode_error_note(self) -> str | None:
        """One line locating the stream's invalid UTF-8, or None when it had none (a note: the events
        holding the bytes are marked `not_utf8`, and the stream rules report them as stream.json)."""
        if not self.decode_errors:
            return None
        return (f"invalid UTF-8 in event {self.decode_error_event} (byte {self.decode_error_offset} of the stream; "
                f"{self.decode_errors} invalid sequence(s) replaced by U+FFFD)")

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
        if "\r" in text:
            # The unfinished line never holds a CR (it was a line end), so normalising the new text
            # alone is exact. A final CR is a line end now; `_skip_lf` drops a LF opening the next chunk.
            if text.endswith("\r"):
                self._skip_lf = True
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        parts = self._parts
        if "\n" not in text:  # still inside one line: keep the piece, join once the line ends
            if not parts:
                self._buf_t = t_ns
            parts.append(text)
            self._parts_len += len(text)
            if self._parts_len > self._max:
                raise SSEError(f"SSE line longer than {self._max} bytes")
            return []
        if parts:  # the unfinished line ends in this text: join its pieces once
            parts.append(text)
            text = "".join(parts)
            first_t = self._buf_t
            self._parts = []
            self._parts_len = 0
        else:
            first_t = t_ns
        events: list[SSEEvent] = []
        # Fast path: with no event in progress, the text up to its last blank line splits into
        # blocks that each end with a blank line; a block that is a single `data:` line is a whole
        # event. Anything else in a block goes through the line-by-line rules.
        cut = text.rfind("\n\n") if not self._data and self._event is None and self._retry is None else -1
        if cut >= 0:
            self._blocks(text[:cut], first_t, t_ns, events)
            text = text[cut + 2:]
            first_t = t_ns
        lines = text.split("\n")
        rest = lines.pop()
        if lines:
            self._lines(lines, first_t, t_ns, events)
        if rest:
            self._parts = [rest]
            self._parts_len = len(rest)
            self._buf_t = t_ns if lines or cut >= 0 else first_t
            if len(rest) > self._max:
                raise SSEError(f"SSE line longer than {self._max} bytes")
        return events

    def _blocks(self, head: str, first_t: int, t_ns: int, events: list[SSEEvent]) -> None:
        """Events of `head` + a blank line, where `head` starts a line and no event is in progress."""
        append = events.append
        count, limit, t = self._count, self._max, first_t
        for block in head.split("\n\n"):
            if block[:5] == "data:" and "\n" not in block and len(block) <= limit and self._retry is None:
                append(SSEEvent(block[6:] if block[5:6] == " " else block[5:], None, self._last_id, None,
                                t, count))
                count += 1
            else:
                self._count = count
                self._lines([*block.split("\n"), ""], t, t_ns, events)
                count = self._count
            t = t_ns
        self._count = count
        self._id = None

    def _lines(self, lines: list[str], first_t: int, t_ns: int, events: list[SSEEvent]) -> None:
        """The WHATWG line rules for complete lines; the first line arrived at `first_t`."""
        append = events.append
        # Hot loop on locals; state goes back to `self` around the rare non-`data:` lines.
        data, data_len, event_t, count, limit = self._data, self._data_len, self._event_t, self._count, self._max
        t = first_t
        for line in lines:
            if not line:  # blank line: dispatch, or reset a data-less event
                if data:
                    if self._event is None and self._retry is None:
                        append(SSEEvent(data[0] if len(data) == 1 else "\n".join(data), None, self._last_id,
                                        None, event_t or 0, count))
                        self._id = None
                    else:
                        self._data, self._event_t, self._count = data, event_t, count
                        append(self._dispatch())
                    count += 1
                    data = []
                    data_len = 0
                else:
                    self._event = None
                event_t = None
            elif line[:5] == "data:":
                value = line[6:] if line[5:6] == " " else line[5:]
                if event_t is None:
                    event_t = t
                data.append(value)
                data_len += len(value)
                if data_len > limit:
                    raise SSEError(f"SSE event larger than {limit} bytes")
            else:
                self._data, self._data_len, self._event_t = data, data_len, event_t
                self._process_line(line, t)
                data, data_len, event_t = self._data, self._data_len, self._event_t
            t = t_ns
        self._data, self._data_len, self._event_t, self._count = data, data_len, event_t, count

    def _process_line(self, line: str, t_ns: int) -> None:
        """A non-blank line other than `data:` (and, at close, any unfinished line)."""
        if not line:
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
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        # other fields are ignored, as the spec says

    def _dispatch(self, terminated: bool = True) -> SSEEvent:
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


def _replace_escaped(text: str) -> str:
    """What the UTF-8 decoder in `replace` mode gives for the same bytes (one U+FFFD per bad sequence)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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
