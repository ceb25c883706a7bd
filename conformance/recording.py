"""The project's own recording format: one Exchange per JSONL line.

Written by `chatconf run --report-dir` (the redacted traffic of a run), read by `chatconf validate`
and by the mock's replay. A line looks like:

    {"chatconf": "recording/1", "entry": 0,
     "request": {"method": "POST", "url": "...", "headers": {...}, "body": {...}},
     "response": {"status": 200, "headers": {...}, "body": null, "body_text": null,
                  "events": [{"data": "{...}", "t_ms": 12.5}, {"data": "[DONE]", "t_ms": 80.1}]},
     "timing": {"headers_ms": 3.2, "end_ms": 81.0}, "transport_error": null, "notes": []}

`events` is present only for streamed responses; `t_ms` is milliseconds since the request was
sent (absent when unknown). A response the client did not keep whole (a flood, conformance.limits)
carries `"not_kept": {"events": N, "chars": C}`: N events (their data, plus raw body text, C
characters) were received but are not in the line; then each kept event has its stream `index`.
Optional per-event keys: `event`, `id`, `terminated` (false for a trailing event the server never
ended with a blank line), `not_utf8` (true when the server sent bytes that are not UTF-8 in it;
`data` holds U+FFFD in their place). Non-JSON bodies go in `body_text`.
Headers are redacted on the way in (Exchange does it) and again on the way out, and every string
of a line (bodies, events, notes, errors) goes through `redact_text`, so a server that echoes the
key it received does not put it in the recording.

Any string a server sends survives: a lone surrogate (from a JSON `"\\ud800"` escape) is written
as the same `\\udXXX` escape, NUL and other controls as JSON escapes; bodies that were not UTF-8
are kept as `body_text` with U+FFFD replacements and a note saying so (the client adds it). A
line that still cannot be written is replaced by a minimal line with a `notes` entry, so the file
always holds one line per exchange.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .exchange import Exchange, HTTPRequest, is_http_status, not_a_status
from .jsonutil import JSONError, dumps, loads
from .outputs import AtomicFile, LiveFile, OutputError
from .redact import redact_headers, redact_obj, redact_text
from .sse import SSEEvent

FORMAT = "recording/1"


def _ms(t_ns: int | None, base: int | None) -> float | None:
    if t_ns is None or base is None or not t_ns:
        return None
    return round((t_ns - base) / 1e6, 3)


def exchange_to_record(ex: Exchange) -> dict[str, Any]:
    base = ex.t_send_ns
    req = ex.request
    record: dict[str, Any] = {"chatconf": FORMAT, "entry": ex.entry}
    if req is not None:
        record["request"] = {"method": req.method, "url": redact_text(req.url),
                             "headers": redact_headers(req.headers), "body": req.body}
        if req.body is None and req.body_text is not None:
            record["request"]["body_text"] = req.body_text
    response: dict[str, Any] = {"status": ex.status, "headers": redact_headers(ex.headers)}
    if ex.events is not None:
        events = []
        for ev in ex.events:
            item: dict[str, Any] = {"data": ev.data}
            t = _ms(ev.t_ns, base)
            if t is not None:
                item["t_ms"] = t
            if ev.event is not None:
                item["event"] = ev.event
            if ev.id is not None:
                item["id"] = ev.id
            if not ev.terminated:
                item["terminated"] = False
            if ev.not_utf8:
                item["not_utf8"] = True
            events.append(item)
        response["events"] = events
        if any(ev.index != i for i, ev in enumerate(ex.events)):
            for item, ev in zip(events, ex.events, strict=True):
                item["index"] = ev.index
    else:
        response["body"] = ex.body
        if ex.body is None and ex.body_text is not None:
            response["body_text"] = ex.body_text
    if ex.truncated:
        response["not_kept"] = {"events": ex.dropped_events, "chars": ex.dropped_chars}
    record["response"] = response
    timing = {k: v for k, v in (("headers_ms", _ms(ex.t_headers_ns, base)), ("end_ms", _ms(ex.t_end_ns, base)))
              if v is not None}
    if ex.sent_at is not None:  # when it was sent (UNIX seconds): replay keeps the traffic's timing
        timing["sent_at"] = round(ex.sent_at, 6)
    if timing:
        record["timing"] = timing
    if ex.transport_error:
        record["transport_error"] = ex.transport_error
    if ex.notes:
        record["notes"] = list(ex.notes)
    return redact_obj(record)


class RecordError(ValueError):
    """A JSONL line that is not a chatconf recording."""


def record_to_exchange(record: Any, *, source: str = "", entry: int | None = None) -> Exchange:
    if not isinstance(record, dict) or "response" not in record:
        raise RecordError("not a chatconf recording line (no 'response' object)")
    req_data = record.get("request")
    request = None
    if isinstance(req_data, dict):
        request = HTTPRequest(method=str(req_data.get("method", "POST")), url=str(req_data.get("url", "")),
                              headers=_str_map(req_data.get("headers")), body=req_data.get("body"),
                              body_text=req_data.get("body_text"))
    resp = record["response"]
    if not isinstance(resp, dict):
        raise RecordError("'response' is not an object")
    status = resp.get("status")
    if status is not None and not is_http_status(status):
        raise RecordError(f"'response.status' {not_a_status(status)}")
    events = None
    base = 1_000_000_000  # synthetic send time so relative timings survive the round trip
    if resp.get("events") is not None:
        raw_events = resp["events"]
        if not isinstance(raw_events, list):
            raise RecordError("'response.events' is not a list")
        events = []
        for i, item in enumerate(raw_events):
            if not isinstance(item, dict) or not isinstance(item.get("data"), str):
                raise RecordError(f"'response.events[{i}]' has no string 'data'")
            t_ms = item.get("t_ms")
            t_ns = base + int(float(t_ms) * 1e6) if isinstance(t_ms, (int, float)) else 0
            index = item.get("index")
            events.append(SSEEvent(item["data"], event=item.get("event"), id=item.get("id"), t_ns=t_ns,
                                   index=index if isinstance(index, int) else i,
                                   terminated=item.get("terminated", True) is not False,
                                   not_utf8=item.get("not_utf8") is True))
    timing = record.get("timing") if isinstance(record.get("timing"), dict) else {}

    def _t(key: str) -> int | None:
        value = timing.get(key)
        return base + int(float(value) * 1e6) if isinstance(value, (int, float)) else None

    has_times = events is not None and any(ev.t_ns for ev in events)
    not_kept = resp.get("not_kept") if isinstance(resp.get("not_kept"), dict) else {}
    return Exchange(request=request, status=status, headers=_str_map(resp.get("headers")),
                    body=resp.get("body"), body_text=resp.get("body_text"), events=events, source=source,
                    entry=entry if entry is not None else int(record.get("entry") or 0),
                    t_send_ns=base if (has_times or timing) else None,
                    t_headers_ns=_t("headers_ms"), t_end_ns=_t("end_ms"),
                    sent_at=float(timing["sent_at"]) if isinstance(timing.get("sent_at"), int | float) else None,
                    transport_error=record.get("transport_error"), notes=list(record.get("notes") or []),
                    dropped_events=_count(not_kept.get("events")), dropped_chars=_count(not_kept.get("chars")))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


class RecordingWriter:
    """Append Exchanges to a JSONL file as they happen. The lines go to a hidden temporary file next
    to `path` (flushed per line, safe to tail) that becomes `path` on `close()`, so a previous recording
    is replaced only by a complete one (conformance.outputs).

    `live=True` (the proxy, which runs for as long as an app under test does) writes to `path` itself,
    line by line, so the recording can be read and validated while traffic still flows.

    A write that fails (full disk) never breaks the exchange being recorded: the recording stops,
    `error` holds the OutputError, and `close()` raises it."""

    def __init__(self, path: str | Path, *, live: bool = False):
        self.path = Path(path)
        self._out: AtomicFile | LiveFile | None = LiveFile(self.path) if live else AtomicFile(self.path)
        self.error: OutputError | None = None
        self.count = 0

    def write(self, ex: Exchange) -> None:
        if self.error is not None:
            return
        if self._out is None:
            raise ValueError("recording is closed")
        try:
            line = dumps(exchange_to_record(ex))
        except Exception as exc:  # never lose an exchange: write what is certainly writable
            line = dumps({"chatconf": FORMAT, "entry": ex.entry, "response": {"status": ex.status},
                          "transport_error": redact_text(str(ex.transport_error)) if ex.transport_error else None,
                          "notes": [f"recording error: {type(exc).__name__}: {redact_text(str(exc))[:200]}"]})
        try:
            self._out.write(line + "\n", flush=True)
        except OutputError as exc:
            self.error, self._out = exc, None
            return
        self.count += 1

    def close(self) -> None:
        """Put the recording in place; raises the OutputError of a failed write (nothing replaced)."""
        out, self._out = self._out, None
        if out is not None:
            out.commit()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_recording(path: str | Path, exchanges: Iterable[Exchange]) -> int:
    with RecordingWriter(path) as writer:
        for ex in exchanges:
            writer.write(ex)
        return writer.count


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed document) for every non-blank JSONL line; a line that is not JSON raises
    RecordError naming it. Shared by recordings and the JSONL capture reader."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield lineno, loads(line)
        except JSONError as exc:
            raise RecordError(f"line {lineno}: not JSON ({exc})") from exc


def iter_recording(lines: Iterable[str], *, source: str = "") -> Iterator[Exchange]:
    """Parse JSONL lines into Exchanges; blank lines are skipped, bad lines raise RecordError."""
    for entry, (lineno, record) in enumerate(json_lines(lines)):
        try:
            yield record_to_exchange(record, source=source, entry=entry)
        except RecordError as exc:
            raise RecordError(f"line {lineno}: {exc}") from exc
