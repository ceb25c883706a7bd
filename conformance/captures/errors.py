"""CaptureError and the size limits every reader enforces (so bad input never costs unbounded memory)."""

from __future__ import annotations

BLOCK_BYTES = 64 * 1024
"""Read size for streamed formats (SSE transcripts, JSONL): memory stays flat on multi-GB files."""

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""One SSE event or one JSONL line larger than this is refused (real chunks are a few hundred bytes)."""

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""A single JSON document (request, completion, error, recording pair) larger than this is refused."""

MAX_ERROR_BODY_BYTES = 1024 * 1024
"""An SSE transcript whose first event is an error envelope is read whole only up to this size."""


class CaptureError(ValueError):
    """A file that cannot be read as a capture. `str(exc)` is one line, fit for a report."""

    def __init__(self, reason: str):
        super().__init__(" ".join(str(reason).split()) or "unreadable capture")


class NotACapture(CaptureError):
    """A file that is recognisably something else (a chatconf summary, an HTML or JUnit report, a JSON
    document of no capture shape): validate skips it with this reason instead of calling it unreadable.
    `str(exc)` reads "not a capture: <what it is>"."""

    def __init__(self, what: str):
        super().__init__(f"not a capture: {what}")


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"
