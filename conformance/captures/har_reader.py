"""HAR 1.2 archives (browser devtools, mitmproxy, Charles): chat-completions POSTs become Exchanges.

A HAR is one JSON document, but a day of traffic is gigabytes: `read_har` streams it, one entry at a
time (ijson's incremental parser), so memory is bounded by the largest single entry, not by the file.

Entries that are not `POST .../chat/completions` are skipped with a note, bodies may be base64
(`content.encoding`), a streamed answer sits in `content.text` as SSE text, and `timings`
(`wait` = time to first byte, `receive`) become t_headers/t_end relative to a synthetic send time.
Headers are redacted by Exchange itself, URLs here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..exchange import Exchange, HTTPRequest, is_http_status, make_headers, not_a_status
from ..jsonutil import JSONError, depth_exceeds, loads
from ..redact import redact_text
from ..sse import SSEError, decode_bytes, looks_like_sse
from .errors import BLOCK_BYTES, CaptureError
from .shapes import is_error_envelope

T_SEND = 1_000_000_000
"""Synthetic send time (ns): HAR gives durations, not a monotonic clock."""

CHAT_PATH = "/chat/completions"


def read_har(path: Path, *, source: str = "", notes: list[str] | None = None) -> Iterator[Exchange]:
    """The Exchanges of a HAR file, parsed entry by entry as the file is read."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"cannot read file: {exc.strerror or exc}") from exc
    with fh:
        entries = _streamed_entries(fh)
        yield from _exchanges(entries, source=source, notes=notes)


def _streamed_entries(fh: Any) -> Iterator[Any]:
    """log.entries[i], one at a time; CaptureError when the file is not a HAR or not JSON."""
    import ijson

    seen: list[bool] = []
    handed = 0
    try:
        try:
            for entry in _entries(fh, ijson, seen):
                handed += 1
                yield entry
        except ijson.JSONError as exc:
            if "integer overflow" not in str(exc):
                raise
            # yajl keeps integers in 64 bits; the pure-Python parser has no limit (slower: only for the
            # rare file with a bigger one, such as an impossible status, which the entry check names).
            for i, entry in enumerate(_entries(fh, ijson.get_backend("python"), seen)):
                if i >= handed:
                    yield entry
    except ijson.JSONError as exc:
        raise CaptureError(_json_reason(exc, bool(seen))) from None
    except UnicodeDecodeError as exc:
        raise CaptureError(f"HAR file is not UTF-8 (byte {exc.start})") from None


def _entries(fh: Any, backend: Any, seen: list[bool]) -> Iterator[Any]:
    """The entries as `backend` parses them from the start of the file (`seen` notes log.entries)."""
    _rewind(fh)
    found = False
    for prefix, event, _value in backend.parse(fh, buf_size=BLOCK_BYTES, use_float=True):
        if prefix == "log.entries" and event == "start_array":
            found = True
            break
        if prefix == "" and event == "end_map":
            break
    if not found:
        raise CaptureError("not a HAR file: no log.entries list")
    seen.append(True)
    _rewind(fh)
    yield from backend.items(fh, "log.entries.item", buf_size=BLOCK_BYTES, use_float=True)


def _rewind(fh: Any) -> None:
    """To the first byte of the document (after a UTF-8 BOM)."""
    fh.seek(0)
    if fh.read(3) != b"\xef\xbb\xbf":
        fh.seek(0)


def _json_reason(exc: Exception, seen_entries: bool) -> str:
    text = " ".join(str(exc).split())[:160]
    if "premature EOF" in text or "Incomplete" in type(exc).__name__:
        return "HAR file is truncated (the JSON ends before the document does)"
    where = "in log.entries" if seen_entries else "before log.entries"
    return f"HAR file is not valid JSON ({where}): {text}"


def iter_har(doc: Any, *, source: str = "", notes: list[str] | None = None) -> Iterator[Exchange]:
    """The Exchanges of a HAR document already parsed (a HAR saved as .json)."""
    log = doc.get("log") if isinstance(doc, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise CaptureError("not a HAR file: no log.entries list")
    yield from _exchanges(iter(entries), source=source, notes=notes)


def _exchanges(entries: Iterator[Any], *, source: str, notes: list[str] | None) -> Iterator[Exchange]:
    notes = notes if notes is not None else []
    count = total = 0
    for i, entry in enumerate(entries):
        total += 1
        reason = _skip_reason(entry)
        if reason:
            notes.append(f"entry {i} skipped: {reason}")
            continue
        if depth_exceeds(entry):
            raise CaptureError(f"entry {i}: JSON nested too deeply")
        count += 1
        yield entry_exchange(entry, source=source, index=i)
    if count == 0:
        raise CaptureError(f"no chat-completions POST among the {total} HAR entries")


def _skip_reason(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        return "not a HAR entry (no request object)"
    req = entry["request"]
    method = str(req.get("method", "")).upper()
    url = str(req.get("url", ""))
    path = urlsplit(url).path.rstrip("/")
    if method != "POST" or not path.endswith(CHAT_PATH):
        return f"{method or '?'} {redact_text(path or url)[:120]} is not a chat-completions POST"
    return None


def _raw(holder: Any, what: str) -> str | bytes | None:
    """`text` of a postData/content object: a str, or the bytes when `encoding` is base64."""
    if not isinstance(holder, dict):
        return None
    text = holder.get("text")
    if text is None:
        return None
    if not isinstance(text, str):
        raise CaptureError(f"{what}.text is not a string")
    encoding = str(holder.get("encoding") or "").lower()
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise CaptureError(f"{what}: invalid base64 ({exc})") from exc
    if encoding:
        raise CaptureError(f"{what}: unsupported encoding {encoding!r}")
    return text


def _text(holder: Any, what: str) -> str | None:
    raw = _raw(holder, what)
    return _utf8(raw, what) if isinstance(raw, bytes) else raw


def _utf8(raw: bytes, what: str) -> str:
    """A JSON body's bytes as text (an event stream's bytes go to the SSE decoder instead, which marks
    invalid UTF-8 as a stream finding)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptureError(f"{what}: base64 body is not UTF-8 text (byte {exc.start})") from exc


def _parse(text: str) -> tuple[Any, str | None]:
    try:
        doc = loads(text)
    except JSONError:
        return None, text
    if depth_exceeds(doc):
        raise CaptureError("JSON body nested too deeply")
    return doc, None


def _ms(timings: Any, *keys: str) -> float | None:
    if not isinstance(timings, dict):
        return None
    total = 0.0
    for key in keys:
        value = timings.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            return None
        total += float(value)
    return total


def entry_exchange(entry: dict[str, Any], *, source: str = "", index: int = 0) -> Exchange:
    where = f"entry {index}"
    req = entry["request"]
    req_text = _text(req.get("postData"), f"{where} request.postData")
    req_body, req_raw = _parse(req_text) if req_text is not None else (None, None)
    request = HTTPRequest(method="POST", url=redact_text(str(req.get("url", ""))),
                          headers=make_headers(_pairs(req.get("headers"))), body=req_body, body_text=req_raw)
    resp = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    notes: list[str] = []
    status = resp.get("status")
    if status is None or (status in (0, -1) and type(status) is int):
        status = None  # HAR writers use 0 or -1 for "no response"
    elif not is_http_status(status):
        raise CaptureError(f"{where}: response.status {not_a_status(status)}")
    content = resp.get("content")
    raw = _raw(content, f"{where} response.content")
    body_text = raw.decode("utf-8-sig", "replace") if isinstance(raw, bytes) else raw
    headers = make_headers(_pairs(resp.get("headers")))
    sent_at = _started(entry.get("startedDateTime"))
    wait = _ms(entry.get("timings"), "wait")
    end = _ms(entry.get("timings"), "wait", "receive")
    timing = {"t_send_ns": T_SEND if wait is not None else None,
              "t_headers_ns": T_SEND + int(wait * 1e6) if wait is not None else None,
              "t_end_ns": T_SEND + int(end * 1e6) if end is not None and wait is not None else None}
    if status is None or body_text is None:
        notes.append("response missing from the HAR entry: request checked only"
                     if status is None else "response body not captured in the HAR: request checked only")
        return Exchange(request=request, source=source, entry=index, notes=notes, sent_at=sent_at)
    mime = str(content.get("mimeType") or "").lower() if isinstance(content, dict) else ""
    if "text/event-stream" in mime or looks_like_sse(body_text[:4096]):
        try:  # the server's own bytes when the HAR kept them (base64): invalid UTF-8 marks its events
            events = decode_bytes(raw if isinstance(raw, bytes) else body_text.encode("utf-8"))
        except SSEError as exc:
            raise CaptureError(f"{where}: {exc}") from exc
        if events and not events[0].is_done and is_error_envelope(events[0].json):
            return Exchange(request=request, status=status, headers=headers, body=events[0].json,
                            body_text=body_text, source=source, entry=index, notes=notes, sent_at=sent_at, **timing)
        return Exchange(request=request, status=status, headers=headers, events=events, source=source,
                        entry=index, notes=notes, sent_at=sent_at, **timing)
    if isinstance(raw, bytes):
        body_text = _utf8(raw, f"{where} response.content")
    body, text = _parse(body_text)
    return Exchange(request=request, status=status, headers=headers, body=body, body_text=text,
                    source=source, entry=index, notes=notes, sent_at=sent_at, **timing)


def _started(value: Any) -> float | None:
    """HAR `startedDateTime` (ISO 8601) as UNIX seconds; None when absent or not a date."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pairs(headers: Any) -> list[tuple[str, str]]:
    if not isinstance(headers, list):
        return []
    return [(str(h["name"]), str(h.get("value", ""))) for h in headers
            if isinstance(h, dict) and "name" in h]

