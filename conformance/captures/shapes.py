"""What a parsed JSON document is (request, completion, chunk, error envelope), by its shape.

Captures rarely say what they contain; these predicates are shared by the JSON, SSE and HAR
readers so one document is classified the same way whichever file it came in.
"""

from __future__ import annotations

from typing import Any

NOTE_SSE_ASSUMED = "raw SSE transcript: request unknown, HTTP status 200 assumed"
NOTE_ERROR_BODY = "SSE transcript holding an error envelope: request and HTTP status unknown"
NOTE_STATUS_UNKNOWN = "bare JSON document: request and HTTP status unknown"
NOTE_STATUS_ASSUMED = "bare completion document: request unknown, HTTP status 200 assumed"
NOTE_REQUEST_ONLY = "request only: no response to check"
NOTE_SINGLE_CHUNK = "single stream chunk: checked against the chunk schema only"
"""Marker note: the validate engine checks such an Exchange's one event with the chunk schema only
(stream-level rules such as done-last cannot apply to a lone chunk)."""


def is_error_envelope(doc: Any) -> bool:
    return isinstance(doc, dict) and "error" in doc and "choices" not in doc


def is_chunk(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("object") == "chat.completion.chunk"


def is_request(doc: Any) -> bool:
    return (isinstance(doc, dict) and "messages" in doc and "choices" not in doc
            and "object" not in doc and "error" not in doc)


def is_record(doc: Any) -> bool:
    """A chatconf recording line / pair document: {"request": ..., "response": {...}}."""
    return isinstance(doc, dict) and isinstance(doc.get("response"), dict)


def is_har(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("log"), dict)
