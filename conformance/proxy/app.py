"""The proxy as a plain ASGI app (no framework in the per-chunk path): forward, stream, check, record.

Every request outside `/_proxy/` goes to the upstream unchanged (method, path under the upstream's
base path, raw query, body, headers minus the connection-specific ones); the answer comes back the
same way. Event streams are relayed chunk by chunk: each chunk is written to the client before the
proxy looks at it, and is checked afterwards, from one queue worked through in slices with the loop's
reads and writes between them (`_check_later`, `_run_work`), so 100 streams' events arriving together
are not each held up by the others' checks; a finished stream's exchange is checked, reported and
recorded the same way. Non-stream
answers to chat requests are read whole first, so their findings can ride along in an
`x-chatconf-findings` header; that is the only buffering the proxy does.

Chat Completions round trips are checked with the rules of `chatconf validate` (see capture.py),
their findings go to the FindingsStore (console, `GET /_proxy/findings`) and the exchange to the
recording. Keys never leave: every credential header value the proxy sees is registered as a secret
before anything is checked, printed or recorded.

An upstream that refuses, hangs, resets or answers with something that is not HTTP gets the client
a 502 with an error envelope; the proxy itself keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..jsonutil import dumpb
from ..profiles import Profile
from ..redact import SECRET_HEADERS, redact_text, register_secret
from .capture import ExchangeCapture, is_chat_path
from .findings import FindingsStore, findings_header
from .forwarding import error_body, forwarded_headers, parse_upstream
from .recorder import BackgroundRecorder
from .upstream import UpstreamFailure, UpstreamPool, UpstreamResponse

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ADMIN_PREFIX = "/_proxy/"
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
"""A non-stream answer larger than this is relayed as it comes, without the findings header."""
FINDINGS_HEADER = b"x-chatconf-findings"
WORK_SLICE_NS = 300_000
"""Checking runs in slices of about this long (plus one item), with the loop's reads and writes between."""
MAX_DEFERRALS = 2
"""A slice waits for the relays queued behind it at most this many loop turns in a row."""
WORK_SHARE_PERCENT = 50
"""After a busy loop turn (streams starting or ending together), the next slice of checks is at most this
share of that turn's length: relaying goes first, the checks catch up once the burst is over."""
IDLE_TURN_NS = 100_000
"""A loop turn shorter than this had nothing else to do: the loop is idle, idle work may run."""
IDLE_SLICE_NS = 100_000
"""Idle work runs in slices of about this long (plus one item) while the loop stays idle."""
IDLE_RETRY_S = 0.001
"""How long idle work waits before asking again when the loop was busy."""
JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass
class ProxyConfig:
    upstream: str
    profile: Profile
    fail_on: str = "must"
    timeout_s: float = 30.0
    """Connecting, sending the request and waiting for the first byte of the answer."""
    idle_timeout_s: float = 60.0
    """Longest silence between two chunks of an answer."""
    record: str | None = None


class ProxyApp:
    """`ProxyApp(config, echo=print)` is an ASGI app; `aclose()` releases the upstream connections."""

    def __init__(self, config: ProxyConfig, *, echo: Callable[[str], None] | None = None):
        self.config = config
        self.upstream = parse_upstream(config.upstream)
        self.findings = FindingsStore(config.fail_on, echo=echo)
        self.recording = BackgroundRecorder(config.record) if config.record else None
        self.in_flight = 0
        self._entries = 0
        self._echo = echo
        self._pool = UpstreamPool(self.upstream.scheme, self.upstream.host, self.upstream.port)
        self._work: deque[Callable[[], Any]] = deque()  # checks and finished exchanges, in arrival order
        self._work_soon = False
        self._slice_ended_ns: int | None = None  # when the last slice stopped with work left
        self._deferrals = 0  # _run_work calls in a row that left their slice to the relays queued behind them
        self._after_relays = False  # a slice waits for the relays the last poll woke (`_after_relay`)
        self._idle_work: deque[Callable[[], Any]] = deque()  # early request checks: only when nothing else runs
        self._idle_asked = False

    def close(self) -> None:
        """Drop idle upstream connections; write what the recording still holds and close it."""
        self._pool.close()
        while self._work:  # what the loop had not got to yet still counts and is recorded
            self._work.popleft()()
        if self.recording is not None:
            self.recording.close()

    # -- ASGI -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].startswith(ADMIN_PREFIX):
            await self._admin(scope, send)
            return
        self.in_flight += 1
        try:
            await self._forward(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _admin(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path not in ("/_proxy/findings", "/_proxy/health"):
            await _answer(send, 404, error_body(f"no such proxy endpoint {path!r}", "not_found"))
        elif scope["method"] != "GET":
            await _answer(send, 405, error_body(f"{path} answers GET only", "method_not_allowed"))
        elif path == "/_proxy/findings":
            await _answer(send, 200, dumpb(self.findings.snapshot()))
        else:
            health: dict[str, Any] = {"status": "ok", "upstream": redact_text(self.config.upstream),
                                      "exchanges": self.findings.exchanges, "in_flight": self.in_flight}
            if self.recording is not None:
                rec = self.recording
                health["recording"] = {"queued": rec.queued, "written": rec.written, "waits": rec.waits,
                                       "error": str(rec.error) if rec.error else None}
            await _answer(send, 200, dumpb(health))

    # -- forwarding ----------------------------------------------------------------------------------

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, error_body(f"request body larger than {MAX_REQUEST_BYTES} bytes",
                                                "request_too_large"))
            return
        raw_headers = list(scope["headers"])
        _register_keys(raw_headers)
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string") or b""
        target = self.upstream.base_path + path + (f"?{query.decode('latin-1')}" if query else "")
        url = self.upstream.origin + target
        headers = forwarded_headers(raw_headers, request=True)
        method = scope["method"]
        capture = None
        if is_chat_path(scope["path"]):
            capture = ExchangeCapture(self.config.profile, method=method, url=url, source=self.config.upstream,
                                      headers=_text(headers), body=body,
                                      keep_events=self.recording is not None)
        if capture is not None:
            capture.sent()
            self._when_idle(capture.check_request_early)
        try:
            response = await self._pool.request(method, target, headers, body, timeout_s=self.config.timeout_s,
                                                idle_timeout_s=self.config.idle_timeout_s)
        except UpstreamFailure as exc:
            message = redact_text(exc.message)
            await _answer(send, 502, error_body(message, exc.code, kind="bad_gateway"))
            if capture is not None:
                self._done(capture, method, scope["path"], transport_error=message)
            return
        try:
            await self._relay(response, capture, method, scope, receive, send)
        finally:
            response.close()

    async def _relay(self, response: UpstreamResponse, capture: ExchangeCapture | None, method: str, scope: Scope,
                     receive: Receive, send: Send) -> None:
        status = response.status
        headers_ns = time.perf_counter_ns()
        headers = forwarded_headers(response.headers, request=False)
        if capture is not None and not capture.streams(status, headers):
            capture.response(status, _text(headers), t_ns=headers_ns)
            if await self._relay_checked(response, capture, method, scope, headers, send):
                return
        else:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if capture is not None:
                capture.response_later(status, _text(headers), headers_ns)
        disconnect: asyncio.Future[Any] | None = None   # http.disconnect is the only message left
        error: str | None = None
        try:
            async for chunk in response.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if capture is not None:
                    self._check_later(capture, chunk)
                self._after_relay()
                if disconnect is None:
                    disconnect = asyncio.ensure_future(receive())
                elif disconnect.done():
                    if capture is not None:
                        self._done_later(capture, method, scope["path"], client_gone=True)
                    return
        except UpstreamFailure as exc:
            error = redact_text(exc.message)
        finally:
            if disconnect is not None:
                disconnect.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if capture is not None:
            self._done_later(capture, method, scope["path"], transport_error=error)

    def _check_later(self, capture: ExchangeCapture, chunk: bytes) -> None:
        """Check a forwarded chunk after the loop's pending writes (`_run_work`)."""
        if capture.later(chunk, time.perf_counter_ns()):
            self._soon(capture.drain)

    def _done_later(self, capture: ExchangeCapture, method: str, path: str, *, transport_error: str | None = None,
                    client_gone: bool = False) -> None:
        """`_done` after the loop's pending writes, in the order streams ended (entries are numbered then)."""
        self._soon(partial(self._done, capture, method, path, transport_error=transport_error,
                           client_gone=client_gone, t_end_ns=time.perf_counter_ns()))

    def _soon(self, work: Callable[[], Any]) -> None:
        self._work.append(work)
        if not self._work_soon:
            self._work_soon = True
            asyncio.get_running_loop().call_soon(self._run_work)

    def _run_work(self) -> None:
        """Checks in slices of WORK_SLICE_NS: when 100 streams end within one gap their checks and lines
        (70-170 us each) would hold every other stream's next event for 10 ms; between slices the loop
        reads and writes again. One FIFO keeps a stream's chunk checks before its end.

        This call was queued before the loop last polled, so the relays that poll woke are queued
        behind it: while any has not run, the slice is left to the last of them (`_after_relay`);
        this call only comes back, at most MAX_DEFERRALS times in a row, in case none does."""
        loop = asyncio.get_running_loop()
        if not self._work:  # the relays' slice (`_after_relay`) got through it
            self._work_soon = False
            return
        if self._pool.wakeups.pending and self._deferrals < MAX_DEFERRALS:
            self._deferrals += 1
            self._after_relays = True
            loop.call_soon(self._run_work)
            return
        self._slice()
        if self._work:
            loop.call_soon(self._run_work)
        else:
            self._work_soon = False

    def _after_relay(self) -> None:
        """After each relayed chunk: the last relay the poll woke runs the slice that waited for it."""
        if self._after_relays and not self._pool.wakeups.pending:
            self._slice()

    def _slice(self) -> None:
        """One slice of the queued checks; an item that raises is logged and the next one runs."""
        self._deferrals = 0
        self._after_relays = False
        work = self._work
        now = time.perf_counter_ns()
        deadline = now + self._slice_ns(now)
        while work:
            item = work.popleft()
            try:
                item()
            except Exception as exc:  # logged; one failing check must not stop every later one
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "chatconf proxy: a deferred check failed", "exception": exc})
            if time.perf_counter_ns() > deadline:
                break
        self._slice_ended_ns = time.perf_counter_ns() if work else None

    def _slice_ns(self, now: int) -> int:
        """WORK_SLICE_NS, unless the loop turn since the last slice (which left work) was busy with other
        things: then WORK_SHARE_PERCENT of that turn, so a backlog of checks cannot take most of the
        loop while 100 streams start or end at once."""
        if self._slice_ended_ns is None:
            return WORK_SLICE_NS
        others = now - self._slice_ended_ns
        if others < IDLE_TURN_NS:
            return WORK_SLICE_NS
        return min(WORK_SLICE_NS, others * WORK_SHARE_PERCENT // 100)

    def _when_idle(self, work: Callable[[], Any]) -> None:
        """Run `work` when the loop has nothing else to do (or never: it must only save later work).
        Streams start and end in bursts; the request rules (~50 us) moved from a stream's end to the
        quiet middle take that much off the end burst of every stream."""
        self._idle_work.append(work)
        if not self._idle_asked:
            self._idle_asked = True
            self._ask_idle()

    def _ask_idle(self) -> None:
        asyncio.get_running_loop().call_soon(self._run_idle, time.perf_counter_ns())

    def _run_idle(self, asked_ns: int) -> None:
        """Idle work in a slice, if the loop turn since `_ask_idle` ran nothing else: no checks queued
        and no reads or writes (it took under IDLE_TURN_NS); else ask again a little later."""
        now = time.perf_counter_ns()
        busy = bool(self._work) or now - asked_ns > IDLE_TURN_NS
        idle_work = self._idle_work
        try:
            deadline = now + IDLE_SLICE_NS
            while idle_work and not busy:
                idle_work.popleft()()
                if time.perf_counter_ns() > deadline:
                    break
        finally:  # an item that raised (asyncio logs it) only loses its own saving
            if not idle_work:
                self._idle_asked = False
            elif busy:
                asyncio.get_running_loop().call_later(IDLE_RETRY_S, self._ask_idle)
            else:
                self._ask_idle()

    async def _relay_checked(self, response: UpstreamResponse, capture: ExchangeCapture, method: str, scope: Scope,
                             headers: list[tuple[bytes, bytes]], send: Send) -> bool:
        """Read a non-stream answer whole, check it, then send it with the findings header. False when it
        grew too large to hold: the part read so far has been sent and the caller relays the rest."""
        parts: list[bytes] = []
        size = 0
        error: str | None = None
        try:
            async for chunk in response.chunks():
                parts.append(chunk)
                capture.chunk(chunk)
                size += len(chunk)
                if size > MAX_BUFFERED_BYTES:
                    await send({"type": "http.response.start", "status": response.status, "headers": headers})
                    await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
                    return False
        except UpstreamFailure as exc:
            error = redact_text(exc.message)
        failing = self._done(capture, method, scope["path"], transport_error=error)
        if failing:
            headers = [*headers, (FINDINGS_HEADER, findings_header(failing).encode("ascii", "replace"))]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(parts), "more_body": False})
        return True

    def _done(self, capture: ExchangeCapture, method: str, path: str, *, transport_error: str | None = None,
              client_gone: bool = False, t_end_ns: int | None = None) -> list[Any]:
        """Check, record and report one finished exchange; returns its findings at the --fail-on level.
        Runs without an await, so entries are numbered in the order lines reach the recording (the
        recorder's queue is FIFO, its one thread writes them in that order)."""
        entry = self._entries
        self._entries += 1
        recording = self.recording
        violations = capture.finish(transport_error, entry=entry, client_gone=client_gone, t_end_ns=t_end_ns,
                                    decode_events=recording is None)
        if recording is not None:  # the thread decodes the kept stream again, off the loop
            recording.put(capture.ex, capture.events_later)
        return self.findings.add(violations, method=method, path=path, status=capture.ex.status, entry=entry)


def _text(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (chat requests are small), or None when it exceeds MAX_REQUEST_BYTES."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(parts)


def _register_keys(headers: list[tuple[bytes, bytes]]) -> None:
    """Every credential the app sends through the proxy becomes a registered secret, so no console
    line, finding or recording can show it (nor its encodings)."""
    for name, value in headers:
        if name.decode("latin-1").lower() in SECRET_HEADERS:
            text = value.decode("latin-1").strip()
            register_secret(text)
            scheme, _, token = text.partition(" ")
            if token.strip() and scheme.lower() in ("bearer", "basic", "token"):
                register_secret(token.strip())


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
