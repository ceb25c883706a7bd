"""Single JSON documents: a request, a completion, an error envelope, a chunk, a recording pair
(`{"request": ..., "response": ...}`, the JSONL line format) or a list of those; HAR documents
saved as .json are handed to the HAR reader. The shape decides, since bare bodies carry no label.
A JSON document of none of these shapes (chatconf's own summary.json, a /models listing, any other
JSON file) is not chat traffic: `NotACapture` says what it is, and validate skips it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..exchange import Exchange, HTTPRequest
from ..jsonutil import JSONError, depth_exceeds, dumps, loads
from ..recording import RecordError, record_to_exchange
from ..sse import SSEEvent
from .errors import MAX_DOCUMENT_BYTES, CaptureError, NotACapture, mib
from .shapes import (
    NOTE_REQUEST_ONLY,
    NOTE_SINGLE_CHUNK,
    NOTE_STATUS_ASSUMED,
    NOTE_STATUS_UNKNOWN,
    classify,
    is_chunk,
    is_completion,
    is_error_envelope,
    is_har,
    is_record,
    is_request,
    non_capture,
)

NOT_CHAT_JSON = "unrecognised JSON document (no chat request, completion, chunk, error, pair or HAR shape)"


def load_document(path: Path, limit: int | None = None, what: str = "JSON document") -> Any:
    """Read and parse one JSON file with a size limit and a nesting limit (one-line errors)."""
    limit = MAX_DOCUMENT_BYTES if limit is None else limit
    try:
        size = path.stat().st_size
        if size > limit:
            raise CaptureError(f"{what} too large ({mib(size)}; limit {mib(limit)})")
        data = path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"cannot read file: {exc.strerror or exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise CaptureError("empty file")
    try:
        doc = loads(data)
    except JSONError as exc:
        raise CaptureError(json_reason(exc, data)) from exc
    if depth_exceeds(doc):
        raise CaptureError("JSON nested too deeply")
    return doc


def json_reason(exc: JSONError, data: bytes) -> str:
    """One line saying why `data` is not JSON (invalid UTF-8 and truncation named as such)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid UTF-8 at byte {err.start}"
    pos = getattr(exc.__cause__, "pos", None)
    if isinstance(pos, int) and pos >= len(data.rstrip()):
        return "not valid JSON: unexpected end of data (truncated?)"
    return f"not valid JSON: {exc}"


def read_json(path: Path, *, source: str = "") -> Iterator[Exchange]:
    doc = load_document(path)
    not_chat(doc)
    if is_har(doc):
        from .har_reader import iter_har  # a HAR saved as .json

        yield from iter_har(doc, source=source)
        return
    if isinstance(doc, list):
        yield from _read_list(doc, source)
        return
    yield document_exchange(doc, source=source)


def not_chat(doc: Any) -> None:
    """Raise NotACapture for a parsed document that is recognisably not chat traffic: one of
    chatconf's own files, or an object (or list of objects) of no capture shape. Scalars and lists
    of non-objects stay CaptureErrors: that is broken input, not some other kind of file."""
    items = doc if isinstance(doc, list) else [doc]
    what = non_capture(items[0]) if items else None
    if what is not None:
        raise NotACapture(what)
    if items and all(isinstance(item, dict) and classify(item) is None for item in items):
        raise NotACapture(NOT_CHAT_JSON)


def document_exchange(doc: Any, *, source: str = "", entry: int = 0) -> Exchange:
    """One Exchange for one parsed document, classified by shape."""
    if is_record(doc):
        try:
            return record_to_exchange(doc, source=source, entry=entry)
        except RecordError as exc:
            raise CaptureError(f"entry {entry}: {exc}") from exc
    if is_request(doc):
        return Exchange(request=HTTPRequest(body=doc), source=source, entry=entry, notes=[NOTE_REQUEST_ONLY])
    if is_chunk(doc):
        event = SSEEvent(dumps(doc))
        event.set_json(doc)
        return Exchange(status=200, events=[event], source=source, entry=entry, notes=[NOTE_SINGLE_CHUNK])
    if is_error_envelope(doc):
        return Exchange(body=doc, source=source, entry=entry, notes=[NOTE_STATUS_UNKNOWN])
    if is_completion(doc):
        return Exchange(status=200, body=doc, source=source, entry=entry, notes=[NOTE_STATUS_ASSUMED])
    if isinstance(doc, dict):
        return Exchange(body=doc, source=source, entry=entry, notes=[NOTE_STATUS_UNKNOWN])
    raise CaptureError(f"not a chat request, completion, chunk or error document (a JSON {_kind(doc)})")


def _read_list(doc: list[Any], source: str) -> Iterator[Exchange]:
    """A list holds one document per item (entry = list index)."""
    if not doc:
        raise CaptureError("empty JSON list: nothing to validate")
    for i, item in enumerate(doc):
        yield document_exchange(item, source=source, entry=i)


def _kind(doc: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(doc), "null" if doc is None else type(doc).__name__)
