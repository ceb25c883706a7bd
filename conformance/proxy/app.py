"""The proxy's request handler (its HTTP/1.1 front is server.py; no framework in the per-chunk path):
forward, stream, check, record.

Every request outside `/_proxy/` goes to the upstream unchanged (method, path under the upstream's
base path, raw query, body, headers minus the connection-specific ones); the answer comes back the
same way. Event streams are relayed chunk by chunk: each chunk is written to the client from the
upstream connection's callback that parsed it (`UpstreamResponse.relay`: no task wakes up per chunk)
before the proxy looks at it, and is checked afterwards, from one queue worked through in slices with
the loop's reads and writes between them (`_check_later`, `_run_work`), so 100 streams' events
arriving together are not each held up by the others' checks; a finished stream's exchange is
checked, reported and recorded the same way. Non-stream
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
from collections.abc import Callable
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
from .server import MAX_REQUEST_BYTES, Request, ResponseWriter
from .upstream import UpstreamFailure, UpstreamPool, UpstreamResponse

ADMIN_PREFIX = "/_proxy/"
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
RELAY_QUIET_NS = 30_000
"""Checks wait until no chunk was relayed for this long: events come in bursts (an upstream's decode step
emits one for each of its streams at once), and the burst's later events must not wait behind the
checks of its first ones."""
MAX_QUIET_NS = 1_000_000
"""... but not longer than this in a row, so the checks keep up under a steady flood of events."""
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
    """`ProxyApp(config, echo=print)`: `handle(request, writer)` answers one request (server.py calls it);
    `close()` releases the upstream connections and writes the rest of the recording."""

    def __init__(self, config: ProxyConfig, *, echo: Callable[[str], None] | None = None):
        self.config = config
        self.upstream = parse_upstream(config.upstream)
        self.findings = FindingsStore(config.fail_on, echo=echo)
        self._relayed_ns = 0  # when a chunk was last relayed (`_check_later`)
        self.recording = BackgroundRecorder(config.record) if config.record else None
        self.in_flight = 0
        self._entries = 0
        self._echo = echo
        self._pool = UpstreamPool(self.upstream.scheme, self.upstream.host, self.upstream.port)
        self._work: deque[Callable[[], Any]] = deque()  # checks and finished exchanges, in arrival order
        self._work_soon = False
        self._slice_ended_ns: int | None = None  # when the last slice stopped with work left
        self._deferrals = 0  # _run_work calls in a row that left their slice to the readers queued behind them
        self._quiet_since: int | None = None  # since when the checks wait for a burst of relays to end
        self._idle_work: deque[Callable[[], Any]] = deque()  # early request checks: only when nothing else runs
        self._idle_asked = False

    def close(self) -> None:
        """Drop idle upstream connections; write what the recording still holds and close it."""
        self._pool.close()
        while self._work:  # what the loop had not got to yet still counts and is recorded
            self._work.popleft()()
        if self.recording is not None:
            self.recording.close()

    # -- requests (conformance.proxy.server calls `handle` for each) --------------------------------

    async def handle(self, request: Request, writer: ResponseWriter) -> None:
        if request.path.startswith(ADMIN_PREFIX):
            self._admin(request, writer)
            return
        self.in_flight += 1
        try:
            await self._forward(request, writer)
        finally:
            self.in_flight -= 1

    def _admin(self, request: Request, writer: ResponseWriter) -> None:
        path = request.path
        if path not in ("/_proxy/findings", "/_proxy/health"):
            _answer(writer, 404, error_body(f"no such proxy endpoint {path!r}", "not_found"))
        elif request.method != "GET":
            _answer(writer, 405, error_body(f"{path} answers GET only", "method_not_allowed"))
        elif path == "/_proxy/findings":
            _answer(writer, 200, dumpb(self.findings.snapshot()))
        else:
            health: dict[str, Any] = {"status": "ok", "upstream": redact_text(self.config.upstream),
                                      "exchanges": self.findings.exchanges, "in_flight": self.in_flight}
            if self.recording is not None:
                rec = self.recording
                health["recording"] = {"queued": rec.queued, "written": rec.written, "waits": rec.waits,
                                       "catch_ups": rec.catch_ups, "error": str(rec.error) if rec.error else None}
            _answer(writer, 200, dumpb(health))

    # -- forwarding ----------------------------------------------------------------------------------

    async def _forward(self, request: Request, writer: ResponseWriter) -> None:
        body = request.body
        if body is None:
            _answer(writer, 413, error_body(f"request body larger than {MAX_REQUEST_BYTES} bytes",
                                            "request_too_large"))
            return
        raw_headers = request.headers
        _register_keys(raw_headers)
        query = request.query
        target = self.upstream.base_path + request.raw_path.decode("latin-1") + (
            f"?{query.decode('latin-1')}" if query else "")
        url = self.upstream.origin + target
        headers = forwarded_headers(raw_headers, request=True)
        method = request.method
        capture = None
        if is_chat_path(request.path):
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
            _answer(writer, 502, error_body(message, exc.code, kind="bad_gateway"))
            if capture is not None:
                self._done(capture, method, request.path, transport_error=message)
            return
        try:
            await self._relay(response, capture, method, request.path, writer)
        finally:
            response.close()

    async def _relay(self, response: UpstreamResponse, capture: ExchangeCapture | None, method: str, path: str,
                     writer: ResponseWriter) -> None:
        status = response.status
        headers_ns = time.perf_counter_ns()
        headers = forwarded_headers(response.headers, request=False)
        if capture is not None and not capture.streams(status, headers):
            capture.response(status, _text(headers), t_ns=headers_ns)
            if await self._relay_checked(response, capture, method, path, headers, writer):
                return
        else:
            writer.start(status, headers)
            if capture is not None:
                capture.response_later(status, _text(headers), headers_ns)
        # From here on each chunk is written to the client from the upstream connection's callback that
        # parsed it (no task wakes up per chunk) and checked later, from the work queue.
        write = writer.write
        if capture is None:
            sink = write
        else:
            check_later = self._check_later

            def sink(chunk: bytes) -> None:
                write(chunk)
                check_later(capture, chunk)

        done = response.relay(sink)
        writer.on_pause, writer.on_resume = response.pause, response.resume
        writer.on_gone = partial(_client_gone, done)
        if writer.gone:   # it left while the upstream was answering
            _client_gone(done)
        if writer.paused:
            response.pause()
        failure = await done
        writer.on_pause = writer.on_resume = writer.on_gone = None
        if failure is CLIENT_GONE:
            if capture is not None:
                self._done_later(capture, method, path, client_gone=True)
            return   # the caller drops the upstream connection
        error = None if failure is None else redact_text(failure.message)
        writer.end()
        if capture is not None:
            self._done_later(capture, method, path, transport_error=error)

    def _check_later(self, capture: ExchangeCapture, chunk: bytes) -> None:
        """Check a forwarded chunk after the loop's pending writes (`_run_work`)."""
        now = self._relayed_ns = time.perf_counter_ns()
        if capture.later(chunk, now):
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

        A stream's chunks are relayed from the upstream connection's callback, in the loop's poll, so
        they never queue behind this call; but events come in bursts, and a slice run after a burst's
        first event would hold up the rest of it. So while a chunk was relayed less than RELAY_QUIET_NS
        ago, this call comes back on the next loop turn instead (MAX_QUIET_NS at most in a row).

        Answers read whole (`_relay_checked`) still wake a task per chunk: this call was queued before
        the loop last polled, so the readers that poll woke are queued behind it: while any has not
        run, this call comes back on the next turn, at most MAX_DEFERRALS times in a row, in case one
        never does."""
        loop = asyncio.get_running_loop()
        if not self._work:  # nothing left (close() ran it)
            self._work_soon = False
            return
        now = time.perf_counter_ns()
        if now - self._relayed_ns < RELAY_QUIET_NS:   # a burst of events is arriving: relay it first
            if self._quiet_since is None:
                self._quiet_since = now
            if now - self._quiet_since < MAX_QUIET_NS:
                loop.call_soon(self._run_work)
                return
        self._quiet_since = None
        if self._pool.wakeups.pending and self._deferrals < MAX_DEFERRALS:
            self._deferrals += 1
            loop.call_soon(self._run_work)
            return
        self._slice()
        if self._work:
            loop.call_soon(self._run_work)
        else:
            self._work_soon = False

    def _slice(self) -> None:
        """One slice of the queued checks; an item that raises is logged and the next one runs."""
        self._deferrals = 0
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

    async def _relay_checked(self, response: UpstreamResponse, capture: ExchangeCapture, method: str, path: str,
                             headers: list[tuple[bytes, bytes]], writer: ResponseWriter) -> bool:
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
                    writer.start(response.status, headers)
                    writer.write(b"".join(parts))
                    return False
        except UpstreamFailure as exc:
            error = redact_text(exc.message)
        failing = self._done(capture, method, path, transport_error=error)
        if failing:
            headers = [*headers, (FINDINGS_HEADER, findings_header(failing).encode("ascii", "replace"))]
        writer.answer(response.status, headers, b"".join(parts))
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


def _answer(writer: ResponseWriter, status: int, body: bytes) -> None:
    writer.answer(status, JSON_HEADERS, body)


CLIENT_GONE: Any = UpstreamFailure("client_gone", "the client went away")
"""What a relay's future is set to when the client disconnects before the answer is complete."""


def _client_gone(done: asyncio.Future[Any]) -> None:
    if not done.done():
        done.set_result(CLIENT_GONE)
