"""The project's JSONL recordings (conformance/recording.py): one Exchange per line, read lazily.

A line may also be a bare document of a capture shape (a request body, a completion, a chunk, an
error envelope: logged traffic often looks like that). Lines are read with a length limit, so a
runaway 200 MB line is refused without being loaded. chatconf's own load samples.jsonl is not
traffic: it is recognised by its first line and skipped (NotACapture).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..exchange import Exchange
from ..recording import RecordError, json_lines, record_to_exchange
from .errors import MAX_EVENT_BYTES, CaptureError, NotACapture, mib
from .shapes import classify, non_capture


def _lines(path: Path, limit: int) -> Iterator[str]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"cannot read file: {exc.strerror or exc}") from exc
    with fh:
        lineno = 0
        while True:
            raw = fh.readline(limit + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > limit:
                raise CaptureError(f"line {lineno} longer than {mib(limit)}")
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CaptureError(f"line {lineno}: invalid UTF-8 at byte {exc.start}") from exc


def _exchanges(lines: Iterator[str], source: str) -> Iterator[Exchange]:
    """iter_recording, plus bare documents of a capture shape (entry = line's index among entries)."""
    from .json_reader import document_exchange

    for entry, (lineno, doc) in enumerate(json_lines(lines)):
        if entry == 0 and (what := non_capture(doc)) is not None:
            raise NotACapture(what)
        shape = classify(doc)
        try:
            if shape in (None, "record", "har"):
                yield record_to_exchange(doc, source=source, entry=entry)
            else:
                yield document_exchange(doc, source=source, entry=entry)
        except RecordError as exc:
            raise RecordError(f"line {lineno}: {exc}") from exc


def read_jsonl(path: Path, *, source: str = "", limit: int = MAX_EVENT_BYTES) -> Iterator[Exchange]:
    count = 0
    try:
        for ex in _exchanges(_lines(path, limit), source):
            count += 1
            yield ex
    except RecordError as exc:
        raise CaptureError(f"not a chatconf recording: {exc}") from exc
    if count == 0:
        raise CaptureError("no recording lines in this file")
