"""One proxied round trip becoming the `Exchange` that `chatconf validate` would build from its capture.

The proxy hands over each chunk *after* it went to the client, so checking never delays the bytes the
client waits for: `later` keeps a forwarded chunk (and `response_later` the answer's head) until the
proxy calls `drain`, from its check queue, after the writes the loop had pending. A 2xx event
stream is decoded by the shared SSE decoder and each event goes through the `StreamChecker` as it
arrives (the cost is spread over the stream instead of landing on the event loop at its end);
anything else is checked once, when it is complete, by `validate.check`. Both give the findings
`chatconf validate` gives for the recorded line: request rules via `request_findings`, then the
stream rules of `check_exchange` (for a 2xx stream that is one StreamChecker pass, which is what this
class runs incrementally).

Memory is bounded per exchange: past `max_bytes` the rest is forwarded but no longer captured, and the
exchange is noted as unchecked beyond that point.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from typing import Any

from ..client import decode_body, try_json
from ..exchange import Exchange, HTTPRequest, make_headers
from ..profiles import Profile
from ..rawstream import RawStream
from ..rules import StreamChecker, check_request
from ..rules.base import Violation
from ..sse import SSEDecoder, SSEError, SSEEvent
from ..validate import check, request_findings

MAX_CAPTURE_BYTES = 64 * 1024 * 1024
TRANSPORT_RULE = "transport.complete"
"""The id the proxy reports a broken round trip under (no answer, or an answer cut short): the same
id `chatconf run` uses for the check that every answer arrives whole."""


def is_chat_path(path: str) -> bool:
    """Only Chat Completions round trips are checked and recorded; anything else is just forwarded."""
    return path.rstrip("/").endswith("/chat/completions")


class _Inflate:
    """gzip/deflate bodies decoded for checking (the client still gets the bytes as sent)."""

    def __init__(self, encoding: str):
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS)

    def __call__(self, data: bytes) -> bytes:
        return self._z.decompress(data)


class ExchangeCapture:
    """Collects one exchange while it is forwarded; `finish` returns its findings."""

    def __init__(self, profile: Profile, *, method: str, url: str, headers: Iterable[tuple[str, str]],
                 body: bytes, source: str, max_bytes: int = MAX_CAPTURE_BYTES, keep_events: bool = True):
        self.profile = profile
        text, _ = decode_body(body) if body else (None, None)
        request = HTTPRequest(method=method, url=url, headers=make_headers(list(headers)),
                              body=try_json(body), body_text=text)
        self.ex = Exchange(request=request, source=source)
        self.max_bytes = max_bytes
        self._decoder: SSEDecoder | None = None
        self._checker: StreamChecker | None = None
        self._keep_events = keep_events  # only the recording reads a stream's events once it is checked
        self._raw: RawStream | None = None
        self._closed_decoding = False  # the decoder's unterminated last event was flushed (finish)
        self._stream_findings: list[Violation] = []
        self._body = bytearray()
        self._inflate: _Inflate | None = None
        self._captured = 0
        self._checked = True
        self._pending: list[tuple[bytes, int]] = []
        self._head: tuple[int, list[tuple[str, str]], int] | None = None
        self._request_clean: bool | None = None  # set by check_request_early: None until it ran
        self._finished = False

    # -- the round trip, as it happens ----------------------------------------------------------------

    def sent(self) -> None:
        self.ex.t_send_ns = time.perf_counter_ns()
        self.ex.sent_at = time.time()

    def streams(self, status: int, raw_headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether an answer is checked event by event as it is relayed (else it is checked whole),
        decided from the raw headers before `response` does the rest of the setup: the proxy forwards
        a stream's first event before that setup runs."""
        types = [value.decode("latin-1") for name, value in raw_headers if name.lower() == b"content-type"]
        return self._streams(status, ", ".join(types).split(";", 1)[0].strip().lower())

    def _streams(self, status: int, content_type: str) -> bool:
        request = self.ex.request
        return status < 400 and (content_type == "text/event-stream" or (request is not None and request.is_stream))

    def response(self, status: int, headers: list[tuple[str, str]], *, t_ns: int | None = None) -> None:
        """The answer's status and headers, which arrived at `t_ns` (perf_counter_ns; default now)."""
        ex = self.ex
        ex.t_headers_ns = t_ns or time.perf_counter_ns()
        ex.status = status
        ex.headers = make_headers(headers)
        encoding = ex.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = _Inflate(encoding)
        elif encoding != "identity":
            self._stop(f"response content-encoding {encoding!r} is not decoded by the proxy: "
                       "the answer was not checked")
        if self._streams(status, ex.content_type):
            ex.events = []
            self._decoder = SSEDecoder()
            self._raw = RawStream() if self._keep_events else None
            self._checker = StreamChecker(self.profile, ex.request.body if ex.request else None,
                                          headers=ex.headers, sent_at=ex.sent_at)

    def response_later(self, status: int, headers: list[tuple[str, str]], t_ns: int) -> None:
        """`response`, run by the next `drain` (or `finish`)."""
        self._head = (status, headers, t_ns)

    def later(self, data: bytes, t_ns: int) -> bool:
        """`chunk` (arrived at `t_ns`), run by the next `drain`; True when nothing else was waiting."""
        self._pending.append((data, t_ns))
        return len(self._pending) == 1

    def drain(self) -> None:
        """Check what `response_later` and `later` kept, in arrival order."""
        if self._head is not None:
            head, self._head = self._head, None
            self.response(head[0], head[1], t_ns=head[2])
        pending, self._pending = self._pending, []
        for data, t_ns in pending:
            self.chunk(data, t_ns)

    def chunk(self, data: bytes, t_ns: int | None = None) -> None:
        """A chunk the client already has. Never raises: a capture problem becomes a note."""
        if not self._checked or not data:
            return
        self._captured += len(data)
        if self._captured > self.max_bytes:
            self._stop(f"answer larger than {self.max_bytes} bytes: the rest was forwarded but not checked")
            return
        try:
            if self._inflate is not None:
                data = self._inflate(data)
            if self._decoder is None:
                self._body += data
                return
            t_ns = t_ns or time.perf_counter_ns()
            self._events(self._decoder.feed(data, t_ns))
            if self._raw is not None:  # after the feed: a piece the decoder refused is not kept
                self._raw.add(data, t_ns)
        except (zlib.error, SSEError) as exc:
            self._stop(f"answer could not be decoded for checking ({exc}): it was forwarded unchecked")

    def _events(self, events: list[SSEEvent]) -> None:
        """Check each event as it arrives. None is kept: the stream's bytes are (RawStream), and the
        recording decodes them again, so a stream in flight holds no event objects for the collector
        to visit (young collections over them took 1.4-5 ms at 100 streams)."""
        assert self._checker is not None
        for ev in events:
            self._stream_findings.extend(self._checker.feed(ev))

    def _stop(self, note: str) -> None:
        if self._checked:
            self._checked = False
            self.ex.notes.append(note)

    def check_request_early(self) -> None:
        """Run the request rules before the exchange ends (the proxy does it when its loop is idle),
        so a stream's end, which comes in bursts, only has to look the answer up. Only whether they
        found nothing is kept: findings carry the answer's status and the entry number, known at the
        end, so a request with findings is checked again then (`_request_findings`)."""
        request = self.ex.request
        if self._finished or self._request_clean is not None or request is None or request.body is None:
            return
        self._request_clean = not check_request(request.body, self.profile)

    def _request_findings(self) -> list[Violation]:
        """`request_findings`, or nothing when `check_request_early` already found the request clean."""
        if self._request_clean:
            return []
        return request_findings(self.ex, self.profile)

    # -- the end ------------------------------------------------------------------------------------

    def finish(self, transport_error: str | None = None, *, entry: int = 0, client_gone: bool = False,
               t_end_ns: int | None = None, decode_events: bool = True) -> list[Violation]:
        """Close the exchange (numbered `entry`, its line in the recording) and return its findings.

        `client_gone`: the client hung up first and the proxy stopped forwarding; the answer is
        incomplete through no fault of the upstream, so only what was seen so far is judged.
        `t_end_ns`: when the answer ended, if this runs later (the proxy checks after forwarding).
        `decode_events=False` leaves a stream's events to `events_later()` (the recording thread)."""
        self._finished = True
        try:
            return self._finish(transport_error, entry=entry, client_gone=client_gone, t_end_ns=t_end_ns)
        finally:
            if decode_events:
                self.ex.events = self.events_later()

    def events_later(self) -> Any:
        """The stream's events as the decoder gave them while it was forwarded (the same pieces and
        times decoded again); an unterminated last event only when the stream was decoded to its end."""
        if self._raw is None:
            return self.ex.events
        raw, self._raw = self._raw, None
        return raw.events(close=self._closed_decoding)

    def _finish(self, transport_error: str | None, *, entry: int, client_gone: bool,
                t_end_ns: int | None) -> list[Violation]:
        self.drain()
        ex = self.ex
        ex.entry = entry
        ex.t_end_ns = t_end_ns or time.perf_counter_ns()
        if client_gone:
            ex.transport_error = "client disconnected before the end of the answer; the proxy stopped forwarding"
            return [*self._request_findings(), *self._stream_findings]
        if transport_error:
            ex.transport_error = transport_error
        decoder = self._decoder
        if decoder is not None and self._checked:
            self._closed_decoding = True
            try:
                self._events(decoder.close())
            except SSEError as exc:  # pragma: no cover - close only flushes what feed accepted
                self._stop(f"answer could not be decoded for checking ({exc})")
            note = decoder.decode_error_note()
            if note:  # the events holding the bytes are marked: the stream rules report stream.json
                ex.notes.append(note)
        if decoder is None and ex.status is not None:
            ex.body_text, note = decode_body(bytes(self._body))
            if note:
                ex.notes.append(note)
            ex.body = try_json(self._body)
            if not ex.body_text:
                ex.body_text = None
        self._body = bytearray()
        found = self._findings()
        if ex.transport_error:
            what = "no answer" if ex.status is None else "answer cut short"
            found.append(Violation(TRANSPORT_RULE, f"expected a complete answer from the upstream, received {what}: "
                                   f"{ex.transport_error}", entry=entry, level="error"))
        return found

    def _findings(self) -> list[Violation]:
        ex = self.ex
        if not self._checked:
            return self._request_findings()
        if self._checker is not None:
            return [*self._request_findings(), *self._stream_findings,
                    *self._checker.finish(ex.transport_error)]
        return list(check(ex, self.profile))
