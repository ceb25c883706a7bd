"""Raw SSE transcripts (what `curl -N` prints): one Exchange, its events streamed from the file.

The file is read in blocks and decoded incrementally, and `events` is a one-shot iterator, so a
multi-GB transcript is validated in constant memory. A transcript whose first event is an error
envelope (DashScope answers a failing `stream: true` request with one `data: {"error": ...}` line)
becomes an error Exchange instead. Bytes that are not UTF-8 are decoded as every SSE client decodes
them (U+FFFD) and the events holding them are marked, so the stream rules report them (stream.json)
wherever they sit in the file, exactly as for a live stream.
"""

from __future__ import annotations

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
    """Blocks of a binary file, with the byte offset read so far."""

    def __init__(self, fh: BinaryIO, block: int = BLOCK_BYTES):
        self.fh = fh
        self.block = block
        self.offset = 0

    def read(self) -> bytes | None:
        data = self.fh.read(self.block)
        self.offset += len(data)
        return data or None


def _feed(decoder: SSEDecoder, data: bytes) -> list[SSEEvent]:
    try:
        return decoder.feed(data)
    except SSEError as exc:
        raise CaptureError(str(exc)) from exc


def _close(decoder: SSEDecoder) -> list[SSEEvent]:
    try:
        return decoder.close()
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
            data = src.read()
            if data is None:
                eof = True
                pending = _close(decoder)
            else:
                pending = _feed(decoder, data)
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
        while (data := src.read()) is not None:
            yield from _feed(decoder, data)
        yield from _close(decoder)


def _error_exchange(path: Path, src: _Source, decoder: SSEDecoder, pending: list[SSEEvent], eof: bool,
                    source: str) -> Exchange:
    """The whole (small) transcript is the body of an error answer to a stream request."""
    events = list(pending)
    while not eof:
        data = src.read()
        if data is None:
            events.extend(_close(decoder))
            break
        events.extend(_feed(decoder, data))
        if src.offset > MAX_ERROR_BODY_BYTES:
            raise CaptureError(f"error transcript larger than {mib(MAX_ERROR_BODY_BYTES)}")
    try:
        body_text = path.read_bytes().decode("utf-8-sig", "replace")
    except OSError as exc:  # pragma: no cover - read once already
        raise CaptureError(f"cannot read file: {exc}") from exc
    first = events[0]
    notes = [NOTE_ERROR_BODY]
    if decoder.decode_errors:  # as the live client notes an error body that is not UTF-8
        notes.append(f"body is not valid UTF-8 (first invalid byte at offset {decoder.decode_error_offset}); "
                     "kept with U+FFFD replacements")
    if len(events) > 1:
        notes.append(f"{len(events) - 1} more SSE event(s) after the error envelope")
    try:
        body = loads(first.data)
    except JSONError:  # pragma: no cover - classified as an envelope, so it parsed
        body = first.json
    return Exchange(status=None, body=body, body_text=body_text, source=source, notes=notes)
