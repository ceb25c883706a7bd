"""The proxy's HTTP/1.1 client for its one upstream: asyncio protocol + httptools parser, kept-alive
connections in a plain LIFO list.

Why not httpx: its connection pool re-scans every connection for every request that starts or ends,
which at 100 concurrent streams stalled the event loop for milliseconds per stream start (the proxy's
p99 per event was 40-160 ms); anyio adds a cancel scope to every read on top. Here a body chunk costs
one parser callback and one future (`chunks()`), or only the callback (`relay(sink)`, which hands each
chunk to the proxy's writer from the callback itself), and a stream start takes a connection off a list.

Failures become `UpstreamFailure(code, message)`: `upstream_unreachable` (connect refused or failed),
`upstream_timeout` (no connection, or no response headers, within the timeout; or silence mid-answer
beyond the idle timeout), `upstream_protocol_error` (bytes that are not HTTP, or the connection reset
or closed before the answer was complete).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httptools

from ..tls import client_context
from .forwarding import PROTOCOL, TIMEOUT, UNREACHABLE

PAUSE_ABOVE = 1024 * 1024
"""Body bytes buffered for a slow client before the proxy stops reading from the upstream."""
MAX_IDLE = 256


class UpstreamFailure(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Wakeups:
    """How many tasks were woken by arriving bytes and have not run yet: answers' readers, and requests
    whose answer's headers came (each relays the answer's first event once it runs). The proxy's checks
    wait while any has not (`ProxyApp._run_work`): those relays are queued behind them."""

    def __init__(self) -> None:
        self.pending = 0


class _Connection(asyncio.Protocol):
    """One upstream connection; one request at a time (HTTP/1.1 without pipelining)."""

    def __init__(self, wakeups: Wakeups | None = None) -> None:
        self.wakeups = wakeups or Wakeups()
        self.woken = False   # counted in wakeups.pending until the reader runs
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._begin(None)

    def _begin(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done: asyncio.Future[None] | None = loop.create_future() if loop else None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: UpstreamFailure | None = None
        self.bytes_in = 0
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.sink: Callable[[bytes], None] | None = None   # set while `UpstreamResponse.relay` runs
        self.relay_done: asyncio.Future[UpstreamFailure | None] | None = None
        self.last_in = 0.0   # loop time of the last chunk handed to the sink
        self.held = False    # reading paused for a slow client (`UpstreamResponse.pause`)

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop_time = asyncio.get_running_loop().time

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamFailure(PROTOCOL, f"upstream answer is not valid HTTP ({exc})"))
            self.abort()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self.headers_done is not None and self.headers_done.done() and exc is None and not self._framed():
            self.complete = True   # a body delimited by the end of the connection
            self._wake()
            self.end_relay(None)
            return
        reason = f"connection reset ({exc})" if exc else "connection closed"
        when = "before the answer" if not self.bytes_in else "before the answer was complete"
        self._fail(UpstreamFailure(PROTOCOL, f"upstream {reason} {when}"))

    # -- httptools callbacks ------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # asked here: once the message is complete the parser has forgotten its framing and says no
        self.keep_alive = self.parser.should_keep_alive()
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_result(None)
            self._woke()   # the request's task: it relays the first event once it runs

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is not None:
            self.last_in = self.loop_time()
            try:
                sink(body)
            except Exception as exc:   # the proxy's own fault: logged, the answer ends cut short
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "chatconf proxy: relaying a chunk failed", "exception": exc})
                self.end_relay(UpstreamFailure(PROTOCOL, f"the proxy failed relaying the answer ({exc!r})"))
                self.abort()
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_ABOVE and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()
        self.end_relay(None)

    # -- helpers ------------------------------------------------------------------------------------

    def _framed(self) -> bool:
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length" or (lower == b"transfer-encoding" and b"chunked" in value.lower()):
                return True
        return False

    def _fail(self, failure: UpstreamFailure) -> None:
        if self.error is None:
            self.error = failure
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_exception(failure)
            self._woke()
        self._wake()
        self.end_relay(self.error)

    def end_relay(self, failure: UpstreamFailure | None) -> None:
        """The relay (if one runs) is over: complete (None) or failed."""
        done = self.relay_done
        if done is not None:
            self.sink = self.relay_done = None
            if not done.done():
                done.set_result(failure)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
            self._woke()

    def _woke(self) -> None:
        """A task waiting on this connection (for the headers, or for a chunk) was woken: counted until it runs."""
        if not self.woken:
            self.woken = True
            self.wakeups.pending += 1

    def ran(self) -> None:
        """The task woken by `_woke` runs (or was cancelled)."""
        if self.woken:
            self.woken = False
            self.wakeups.pending -= 1

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def take(self) -> bytes:
        data = self.chunks.popleft()
        self.buffered -= len(data)
        if self.paused and self.buffered < PAUSE_ABOVE // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


class UpstreamResponse:
    """Status and raw headers of an answer; `chunks()` yields its body as it arrives (de-chunked)."""

    def __init__(self, pool: UpstreamPool, conn: _Connection, idle_timeout_s: float):
        self._pool = pool
        self._conn = conn
        self._idle = idle_timeout_s
        self.status = conn.status
        self.headers = conn.headers
        self._released = False
        self._wait_began = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Silence beyond the idle timeout while waiting ends it (TIMEOUT).

        One timer per answer, not one per wait: it fires at most every idle timeout, and re-arms when
        the wait it finds began later than that (a per-event timer cost an allocation, a heap push and
        a cancel for every chunk)."""
        conn = self._conn
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._idle, self._check_idle)
        try:
            while True:
                if conn.chunks:
                    yield conn.take()
                    continue
                if conn.complete:
                    return
                if conn.error is not None:
                    raise conn.error
                waiter = conn.waiter = loop.create_future()
                self._wait_began = loop.time()
                try:
                    await waiter
                finally:
                    conn.waiter = None
                    conn.ran()
                if waiter.result() is _EXPIRED:
                    conn.abort()
                    raise UpstreamFailure(TIMEOUT, f"upstream sent nothing for {self._idle:g} s in the middle of "
                                                   "the answer")
        finally:
            if self._timer is not None:
                self._timer.cancel()

    def relay(self, sink: Callable[[bytes], None]) -> asyncio.Future[UpstreamFailure | None]:
        """Hand the body to `sink` as it arrives, from the connection's own callback: no task wakes up
        per chunk, so the proxy can write a chunk to its client in the same callback that parsed it.
        Chunks read before the call go first. The future is done when the answer is complete (None)
        or failed (its UpstreamFailure; silence beyond the idle timeout is one, except while reading
        is paused for a slow client). `close()` stops the relay."""
        conn = self._conn
        loop = asyncio.get_running_loop()
        done: asyncio.Future[UpstreamFailure | None] = loop.create_future()
        while conn.chunks:
            sink(conn.take())
        if conn.complete or conn.error is not None:
            done.set_result(None if conn.complete else conn.error)
            return done
        conn.sink, conn.relay_done, conn.last_in = sink, done, loop.time()
        self._timer = loop.call_later(self._idle, self._relay_idle)
        return done

    def _relay_idle(self) -> None:
        conn = self._conn
        if conn.relay_done is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if conn.held:   # the client is slow, not the upstream
            self._timer = loop.call_at(now + self._idle, self._relay_idle)
            return
        if now < conn.last_in + self._idle:
            self._timer = loop.call_at(conn.last_in + self._idle, self._relay_idle)
            return
        conn.end_relay(UpstreamFailure(TIMEOUT, f"upstream sent nothing for {self._idle:g} s in the middle of "
                                                "the answer"))
        conn.abort()

    def pause(self) -> None:
        """Stop reading the upstream while the client cannot take more (its buffer is full)."""
        conn = self._conn
        if not conn.held and conn.transport is not None and not conn.closed:
            conn.held = True
            conn.transport.pause_reading()

    def resume(self) -> None:
        conn = self._conn
        if conn.held:
            conn.held = False
            conn.last_in = asyncio.get_running_loop().time()
            if conn.transport is not None and not conn.closed:
                conn.transport.resume_reading()

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._conn.waiter
        now = loop.time()
        if waiter is None or waiter.done():   # not waiting: the next wait begins now at the earliest
            self._timer = loop.call_at(now + self._idle, self._check_idle)
        elif now >= self._wait_began + self._idle:
            waiter.set_result(_EXPIRED)
        else:
            self._timer = loop.call_at(self._wait_began + self._idle, self._check_idle)

    def close(self) -> None:
        """Hand the connection back when the answer was read whole, else drop it."""
        if self._timer is not None:
            self._timer.cancel()
        if self._released:
            return
        self._released = True
        conn = self._conn
        conn.sink = conn.relay_done = None
        if conn.held:
            self.resume()
        if conn.complete and not conn.closed and conn.keep_alive and not conn.chunks:
            self._pool.give_back(conn)
        else:
            conn.abort()


_EXPIRED: Any = object()


def _headers_expired(headers_done: asyncio.Future[None], timeout_s: float) -> None:
    if not headers_done.done():
        headers_done.set_exception(UpstreamFailure(TIMEOUT, f"upstream sent no answer within {timeout_s:g} s"))


class UpstreamPool:
    """Connections to one origin. `request` sends and waits for the response headers."""

    def __init__(self, scheme: str, host: str, port: int | None):
        self.scheme = scheme
        self.host = host
        self.port = port or (443 if scheme == "https" else 80)
        default = 443 if scheme == "https" else 80
        bracketed = f"[{host}]" if ":" in host else host
        self.host_header = (bracketed if self.port == default else f"{bracketed}:{self.port}").encode("idna")
        self._ssl = client_context() if scheme == "https" else None
        self._idle: list[_Connection] = []
        self.wakeups = Wakeups()

    def give_back(self, conn: _Connection) -> None:
        if len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.abort()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().abort()

    async def request(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes, *,
                      timeout_s: float, idle_timeout_s: float) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        head = _request_head(method, target, self.host_header, headers, body)
        for attempt in (0, 1):
            conn, reused = await self._connection(loop, deadline, timeout_s)
            conn._begin(loop)
            assert conn.transport is not None and conn.headers_done is not None
            conn.transport.write(head + body)
            # A timer on the future itself rather than wait_for(shield(...)): the task resumes one loop
            # turn after the headers arrive instead of three, and the first event is not held up.
            timer = loop.call_at(deadline, _headers_expired, conn.headers_done, timeout_s)
            try:
                try:
                    await conn.headers_done
                finally:
                    conn.ran()
            except UpstreamFailure as exc:
                conn.abort()
                if exc.code != TIMEOUT and attempt == 0 and reused and conn.bytes_in == 0:
                    continue   # a kept-alive connection the upstream had just closed: once more, on a new one
                raise
            except BaseException:
                conn.abort()   # cancelled mid-request: the connection is in an unknown state
                raise
            finally:
                timer.cancel()
            if method == "HEAD" or conn.status in (204, 304) or 100 <= conn.status < 200:
                conn.complete = True
                conn.keep_alive = False   # the parser may still expect a body it will never get
            return UpstreamResponse(self, conn, idle_timeout_s)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connection(self, loop: asyncio.AbstractEventLoop, deadline: float,
                          timeout_s: float) -> tuple[_Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn, True
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self.wakeups), self.host, self.port, ssl=self._ssl,
                                       server_hostname=self.host if self._ssl else None),
                max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise UpstreamFailure(TIMEOUT, f"cannot connect to the upstream within {timeout_s:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamFailure(UNREACHABLE, f"cannot connect to the upstream ({exc.strerror or exc})") from None
        return conn, False


def _request_head(method: str, target: str, host: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1"), b"host: " + host]
    lines += [name + b": " + value for name, value in headers if name.lower() != b"content-length"]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n"
