"""Raw SSE transcripts (what `curl -N` prints): one Exchange, its events streamed from the file.

The file is read in blocks and decoded incrementally, and `events` is a one-shot iterator, so a
multi-GB transcript is validated in constant memory. A transcript whose first event is an error
envelope (DashScope answers a failing `stream: true` request with one `data: {"error": ...}` line)
becomes an error Exchange instead. Invalid UTF-8 is refused with its byte offset (it may be found
after some events were already handed out: the CaptureError then surfaces from the iterator).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..exchange import Exchange
from ..jsonutil import JSONError, loads
from ..sse import SSEDecoder, SSEError, SSEEvent
from . import errors as _limits
from .errors import BLOCK_BYTES, MAX_ERROR_BODY_BYTES, CaptureError, mib
from .shapes import NOTE_ERROR_BODY, NOTE_SSE_ASSUMED, is_error_envelope


class _Source:
    """Blocks of strictly decoded text from a binary file, with the byte offset for error messages."""

    def __init__(self, fh: BinaryIO, block: int = BLOCK_BYTES):
        self.fh = fh
        self.block = block
        self.offset = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")

    def read(self) -> str | None:
        data = self.fh.read(self.block)
        try:
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise CaptureError(f"invalid UTF-8 at byte {self.offset + exc.start}") from exc
        finally:
            self.offset += len(data)
        if not data:
            return None
        return text


def _feed(decoder: SSEDecoder, text: str) -> list[SSEEvent]:
    try:
        return decoder.feed_text(text)
    except SSEError as exc:
        raise CaptureError(str(exc)) from exc


def read_sse(path: Path, *, source: str = "") -> Iterator[Exchange]:
    """Yield the one Exchange of an SSE transcript (see module docstring)."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"cannot read file: {exc.strerror or exc}") from exc
    handed_over = False
    try:
        src = _Source(fh)
        decoder = SSEDecoder(max_event_bytes=_limits.MAX_EVENT_BYTES)
        pending: list[SSEEvent] = []
        eof = False
        while not pending and not eof:
            text = src.read()
            if text is None:
                eof = True
                pending = decoder.close()
            elif text:
                pending = _feed(decoder, text)
        if not pending:
            raise CaptureError("no SSE events with data in this transcript")
        first = pending[0]
        if not first.is_done and is_error_envelope(first.json) and src.offset <= MAX_ERROR_BODY_BYTES:
            yield _error_exchange(path, src, decoder, pending, eof, source)
            return
        handed_over = True
        yield Exchange(status=200, events=_events(fh, src, decoder, pending, eof), source=source,
                       notes=[NOTE_SSE_ASSUMED])
    finally:
        if not handed_over:
            fh.close()


def _events(fh: BinaryIO, src: _Source, decoder: SSEDecoder, pending: list[SSEEvent],
            eof: bool) -> Iterator[SSEEvent]:
    with fh:
        yield from pending
        if eof:
            return
        while (text := src.read()) is not None:
            if text:
                yield from _feed(decoder, text)
        yield from decoder.close()


def _error_exchange(path: Path, src: _Source, decoder: SSEDecoder, pending: list[SSEEvent], eof: bool,
                    source: str) -> Exchange:
    """The whole (small) transcript is the body of an error answer to a stream request."""
    events = list(pending)
    while not eof:
        text = src.read()
        if text is None:
            events.extend(decoder.close())
            break
        events.extend(_feed(decoder, text))
        if src.offset > MAX_ERROR_BODY_BYTES:
            raise CaptureError(f"error transcript larger than {mib(MAX_ERROR_BODY_BYTES)}")
    try:
        body_text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:  # pragma: no cover - read once already
        raise CaptureError(f"cannot read file: {exc}") from exc
    first = events[0]
    notes = [NOTE_ERROR_BODY]
    if len(events) > 1:
        notes.append(f"{len(events) - 1} more SSE event(s) after the error envelope")
    try:
        body = loads(first.data)
    except JSONError:  # pragma: no cover - classified as an envelope, so it parsed
        body = first.json
    return Exchange(status=None, body=body, body_text=body_text, source=source, notes=notes)
