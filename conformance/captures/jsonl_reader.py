"""The project's JSONL recordings (conformance/recording.py): one Exchange per line, read lazily.

Lines are read with a length limit, so a runaway 200 MB line is refused without being loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..exchange import Exchange
from ..recording import RecordError, iter_recording
from .errors import MAX_EVENT_BYTES, CaptureError, mib


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


def read_jsonl(path: Path, *, source: str = "", limit: int = MAX_EVENT_BYTES) -> Iterator[Exchange]:
    count = 0
    try:
        for ex in iter_recording(_lines(path, limit), source=source):
            count += 1
            yield ex
    except RecordError as exc:
        raise CaptureError(f"not a chatconf recording: {exc}") from exc
    if count == 0:
        raise CaptureError("no recording lines in this file")
