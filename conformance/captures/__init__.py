"""Capture readers: HAR, raw SSE transcripts, JSON bodies and JSONL recordings -> Exchanges.

`read_path(path, fmt="auto")` picks the reader (by `fmt`, else by content and extension) and
returns a lazy iterator of Exchanges; anything unreadable raises `CaptureError` with a one-line
reason, possibly while iterating (streamed formats find a bad byte only when they reach it);
a file that is recognisably something else (a chatconf summary, an HTML report) raises its
subclass `NotACapture`.
The iterator's `notes` collects file-level remarks (HAR entries skipped, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..exchange import Exchange
from .detect import FORMATS, detect_format
from .errors import CaptureError, NotACapture
from .har_reader import read_har
from .json_reader import read_json
from .jsonl_reader import read_jsonl
from .shapes import NOTE_SINGLE_CHUNK
from .sse_reader import read_sse

__all__ = ["FORMATS", "NOTE_SINGLE_CHUNK", "Capture", "CaptureError", "NotACapture", "detect_format",
           "read_path"]


class Capture(Iterator[Exchange]):
    """The Exchanges of one file, read lazily. `format` is the reader used; `notes` file-level remarks."""

    def __init__(self, path: Path, fmt: str, source: str):
        self.path = path
        self.format = fmt
        self.source = source
        self.notes: list[str] = []
        self._it = self._open()

    def _open(self) -> Iterator[Exchange]:
        if self.format == "sse":
            return read_sse(self.path, source=self.source)
        if self.format == "json":
            return read_json(self.path, source=self.source)
        if self.format == "jsonl":
            return read_jsonl(self.path, source=self.source)
        return read_har(self.path, source=self.source, notes=self.notes)

    def __iter__(self) -> Capture:
        return self

    def __next__(self) -> Exchange:
        try:
            return next(self._it)
        except (RecursionError, MemoryError) as exc:
            raise CaptureError(f"capture too complex to read ({type(exc).__name__})") from exc


def read_path(path: str | Path, fmt: str = "auto") -> Capture:
    """Exchanges of the capture file at `path` (raises CaptureError when it is not a capture)."""
    p = Path(path)
    if not p.exists():
        raise CaptureError("no such file or directory")
    if p.is_dir():
        raise CaptureError("is a directory")
    if not p.is_file():  # a FIFO or device would block or never end
        raise CaptureError("not a regular file")
    return Capture(p, detect_format(p, fmt), str(path))
