"""Which reader a file needs: by `--format`, then by content (SSE is unmistakable), then extension.

Only the first block is looked at, so detection is cheap on multi-GB files. Empty and binary files
are refused here with a clear reason, before any reader runs; a NUL byte in a file that is recognisably
SSE or JSON is left to the reader, so the verdict never depends on the byte's offset. Markup (HTML
reports, JUnit XML) and `.log` files of plain text are not captures at all: `NotACapture` names them,
and validate skips them.
"""

from __future__ import annotations

from pathlib import Path

from ..sse import looks_like_sse
from .errors import CaptureError, NotACapture

FORMATS = ("har", "sse", "json", "jsonl")
EXTENSIONS = {".har": "har", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".sse": "sse",
              ".eventstream": "sse"}
"""`.txt` is not listed: a text file is whatever its content looks like."""
HTML_EXTENSIONS = (".html", ".htm")
SNIFF_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"


def read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(SNIFF_BYTES)
    except IsADirectoryError as exc:
        raise CaptureError("is a directory") from exc
    except OSError as exc:
        raise CaptureError(f"cannot read file: {exc.strerror or exc}") from exc


def sniff(head: bytes, suffix: str = "") -> str:
    """Format name for a file starting with `head` (raises CaptureError for empty/binary/unknown)."""
    body = head[3:] if head.startswith(_BOM) else head
    if suffix.lower() in HTML_EXTENSIONS:
        raise NotACapture("HTML document")
    if not body.strip():
        raise CaptureError("empty file" if not head else "file contains only whitespace")
    text = body.decode("utf-8", errors="replace")
    if looks_like_sse(text):
        return "sse"
    by_ext = EXTENSIONS.get(suffix.lower())
    stripped = text.lstrip()
    if b"\x00" in head and stripped[:1] not in ("{", "["):
        # Neither SSE nor JSON: binary. A NUL inside a recognised capture is the reader's to judge, as
        # it is past this first block (SSE: a data frame that is not JSON; JSON: not a document).
        raise CaptureError("binary file (contains NUL bytes), not a text capture")
    markup = _markup(stripped)
    if markup is not None:
        raise NotACapture(markup)
    if suffix.lower() == ".log" and not stripped.startswith("{"):
        raise NotACapture("log file (no SSE events or JSON objects)")  # e.g. a load run's locust.log
    if by_ext in ("har", "jsonl") or (by_ext == "json" and stripped[:1] in "{["):
        return by_ext
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        return "jsonl" if _several_json_lines(stripped) else "json"
    if by_ext is not None:
        return by_ext  # the reader will give the precise reason
    raise CaptureError("not a capture: expected an SSE transcript, JSON, JSONL or HAR")


def _markup(text: str) -> str | None:
    """"HTML document" / "JUnit XML report" / "XML document" for markup, else None."""
    low = text[:1024].lower()
    if low.startswith(("<!doctype html", "<html")):
        return "HTML document"
    if low.startswith("<?xml") or low.startswith(("<testsuites", "<testsuite")):
        return "JUnit XML report" if "<testsuite" in text[:SNIFF_BYTES] else "XML document"
    return None


def _several_json_lines(text: str) -> bool:
    """JSONL: at least two non-blank lines that each open and close an object on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    complete = [line for line in lines[:-1] if line.startswith("{") and line.endswith("}")]
    return len(lines) >= 2 and len(complete) == len(lines) - 1


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise CaptureError(f"unknown format {fmt!r} (expected auto, {', '.join(FORMATS)})")
        head = read_head(path)
        if not head:
            raise CaptureError("empty file")
        return fmt
    return sniff(read_head(path), path.suffix)
