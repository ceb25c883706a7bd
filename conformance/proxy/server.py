"""The proxy's HTTP/1.1 front: an asyncio protocol with the httptools parser, and the serve loop.

Why not uvicorn: every relayed chunk went through the ASGI layer, a task wake-up and `send`, behind
every other read and task step of that loop turn. Here a request is parsed by `FrontConnection` and
handed to `handler(request, writer)` (a coroutine, one task per request); the handler answers through
a `ResponseWriter`, whose `write` goes straight to the client's transport, so a relay can write a chunk
from the upstream connection's own callback.

What it does of HTTP/1.1: keep-alive (idle connections close after KEEP_ALIVE_S), Content-Length and
chunked request bodies, `Expect: 100-continue`, HEAD, `connection: close`; answers are framed by the
Content-Length the handler gives, else chunked (HTTP/1.1) or by closing (HTTP/1.0). A request that is
not HTTP gets a 400 and the connection closes. No Date or Server header is added. Pipelined requests
are answered in order. A client that goes away is noticed at once (its transport keeps reading): the
writer's `gone` is set and its `on_gone` called.

`serve(handler, sock)` runs until SIGINT or SIGTERM, then stops accepting, closes idle connections and
lets the answers in flight finish (SHUTDOWN_GRACE_S at most; a second signal ends them at once).
uvloop is used when installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections import deque
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

KEEP_ALIVE_S = 30.0
"""An idle kept-alive client connection is closed after this long."""
SHUTDOWN_GRACE_S = 60.0
"""On Ctrl-C or SIGTERM, answers in flight get this long to finish."""
MAX_REQUEST_BYTES = 32 * 1024 * 1024
"""A request body larger than this is not read into memory: the handler gets `body=None` (a 413)."""
MAX_QUEUED = 8
"""Pipelined requests waiting for the one before them: beyond this, reading pauses."""
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Request:
    """One parsed request: `method` and `path` as text (path percent-decoded), `raw_path` and `query`
    as sent, `headers` with lower-case names, `body` (None when it grew past the limit)."""

    __slots__ = ("body", "headers", "method", "path", "query", "raw_path")

    def __init__(self, method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]],
                 body: bytes | None):
        self.method = method
        self.raw_path = raw_path
        path = raw_path.decode("latin-1")
        self.path = unquote(path) if "%" in path else path
        self.query = query
        self.headers = headers
        self.body = body


_REASONS = {status.value: status.phrase.encode("latin-1") for status in HTTPStatus}


class ResponseWriter:
    """One answer to one request: `start(status, headers)`, then `write(chunk)` any number of times,
    then `end()`. Writes after the client went away (`gone`) are dropped. While the client's socket
    buffer is full, `on_pause` is called (and `on_resume` once it drained): a relay stops reading its
    upstream meanwhile. `on_gone` is called when the client disconnects before `end()`."""

    __slots__ = ("_chunked", "_conn", "_head_only", "_http10", "_length", "_transport", "_written", "ended", "gone",
                 "keep_alive", "on_gone", "on_pause", "on_resume", "started")

    def __init__(self, conn: FrontConnection, *, head_only: bool, http10: bool, keep_alive: bool):
        self._conn = conn
        self._transport = conn.transport
        self._head_only = head_only
        self._http10 = http10
        self.keep_alive = keep_alive
        self.started = self.ended = False
        self.gone = False
        self._chunked = False
        self._length: int | None = None
        self._written = 0
        self.on_gone: Callable[[], None] | None = None
        self.on_pause: Callable[[], None] | None = None
        self.on_resume: Callable[[], None] | None = None

    @property
    def paused(self) -> bool:
        """The client's socket buffer is full (see `on_pause`)."""
        return self._conn.writing_paused

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """The status line and headers (hop-by-hop ones already removed); framing is added here."""
        self.started = True
        lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b""))]
        length = None
        for name, value in headers:
            if name.lower() == b"content-length":
                with contextlib.suppress(ValueError):
                    length = int(value)
            lines.append(name + b": " + value)
        bodiless = self._head_only or status in (204, 304) or 100 <= status < 200
        if bodiless:
            self._length = 0
        elif length is not None:
            self._length = length
        elif self._http10:
            self.keep_alive = False   # the end of the body is the end of the connection
        else:
            self._chunked = True
            lines.append(b"transfer-encoding: chunked")
        if not self.keep_alive:
            lines.append(b"connection: close")
        if not self.gone:
            self._transport.write(b"\r\n".join(lines) + b"\r\n\r\n")

    def write(self, data: bytes) -> None:
        if self.gone or not data:
            return
        if self._chunked:
            self._transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        elif self._length != 0:
            self._written += len(data)
            self._transport.write(data)

    def end(self) -> None:
        """The answer is complete: the connection serves the next request, or closes. An answer shorter
        than the Content-Length it declared closes the connection (the client sees it cut short)."""
        if self.ended:
            return
        self.ended = True
        if self._chunked and not self.gone:
            self._transport.write(b"0\r\n\r\n")
        elif self._length and self._written != self._length and not self._head_only:
            self.keep_alive = False
        self._conn.answered(self)

    def cut(self) -> None:
        """End a half-sent answer by closing the connection: the client sees it incomplete."""
        if not self.ended:
            self.ended = True
            self.gone = True
            self.keep_alive = False
            self._conn.answered(self)

    def answer(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """A whole answer at once, with a Content-Length when `headers` name none."""
        if not any(name.lower() == b"content-length" for name, _ in headers):
            headers = [*headers, (b"content-length", b"%d" % len(body))]
        self.start(status, headers)
        self.write(body)
        self.end()


Handler = Callable[[Request, ResponseWriter], Coroutine[Any, Any, None]]


class _State:
    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections: set[FrontConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False


class FrontConnection(asyncio.Protocol):
    """One client connection: parses requests, runs the handler for one at a time, in order."""

    def __init__(self, state: _State):
        self.state = state
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.loop = asyncio.get_running_loop()
        self.queue: deque[tuple[Request, bool, bool]] = deque()   # (request, keep-alive, HTTP/1.0)
        self.writer: ResponseWriter | None = None   # the answer in progress
        self.paused_reading = False
        self.writing_paused = False
        self.closed = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._message()

    def _message(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] | None = []
        self.size = 0
        self.current: Request | None = None   # dispatched early: its body grew past the limit

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)
        self._idle_later()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop_reading()   # what follows is another protocol: answer what came before, then close
        except httptools.HttpParserError:
            self._malformed()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        self._cancel_idle()
        self.queue.clear()
        writer = self.writer
        if writer is not None and not writer.ended:
            writer.gone = True
            if writer.on_gone is not None:
                writer.on_gone()

    def pause_writing(self) -> None:
        self.writing_paused = True
        writer = self.writer
        if writer is not None and writer.on_pause is not None:
            writer.on_pause()

    def resume_writing(self) -> None:
        self.writing_paused = False
        writer = self.writer
        if writer is not None and writer.on_resume is not None:
            writer.on_resume()

    # -- httptools callbacks ------------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        for name, value in self.headers:
            if name == b"expect" and value.lower() == b"100-continue" and not self.closed:
                self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.body is None:
            return
        self.size += len(body)
        if self.size > MAX_REQUEST_BYTES:
            self.body = None   # answered now (413), the rest is read and dropped, then the connection closes
            self.current = self._request(None)
            self._queue(self.current, complete=False)
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.current is not None:   # already answered
            self._message()
            return
        body = self.body or []
        self._queue(self._request(b"".join(body) if len(body) != 1 else body[0]), complete=True)
        self._message()

    # -- requests and answers -----------------------------------------------------------------------

    def _request(self, body: bytes | None) -> Request:
        parser = self.parser
        try:
            url = httptools.parse_url(self.url)
            raw_path, query = url.path or b"/", url.query or b""
        except httptools.HttpParserInvalidURLError:
            raw_path, query = self.url or b"/", b""
        return Request(parser.get_method().decode("latin-1"), raw_path, query, self.headers, body)

    def _queue(self, request: Request, *, complete: bool) -> None:
        keep_alive = self.parser.should_keep_alive() and complete and not self.state.closing
        self.queue.append((request, keep_alive, self.parser.get_http_version() == "1.0"))
        if self.writer is None:
            self._next()
        elif len(self.queue) > MAX_QUEUED:
            self._pause_reading()

    def _next(self) -> None:
        request, keep_alive, http10 = self.queue.popleft()
        self._cancel_idle()
        writer = self.writer = ResponseWriter(self, head_only=request.method == "HEAD", http10=http10,
                                              keep_alive=keep_alive and not self.state.closing)
        task = self.loop.create_task(self.state.handler(request, writer))
        self.state.tasks.add(task)
        task.add_done_callback(lambda task: self._handled(task, writer))

    def _handled(self, task: asyncio.Task[None], writer: ResponseWriter) -> None:
        """The handler returned: an answer it left unfinished is ended (or, half-sent, cut)."""
        self.state.tasks.discard(task)
        if writer.ended:
            return
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self.loop.call_exception_handler({"message": "chatconf proxy: a request failed", "exception": error})
        if not writer.started and not writer.gone:
            writer.answer(500, [(b"content-type", b"text/plain")], b"Internal Server Error")
        else:
            writer.cut()

    def answered(self, writer: ResponseWriter) -> None:
        """`writer.end()`: close, or go on with the next request."""
        if writer is not self.writer:
            return
        self.writer = None
        if self.closed:
            return
        if not writer.keep_alive or self.state.closing:
            self.transport.close()
            return
        if self.queue:
            self._next()
            return
        if self.paused_reading:
            self.paused_reading = False
            self.transport.resume_reading()
        self._idle_later()

    def _malformed(self) -> None:
        self._stop_reading()
        if self.writer is None and not self.closed:
            body = b"Invalid HTTP request received."
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))
            self.transport.close()
        elif self.writer is not None:
            self.writer.keep_alive = False   # the answer in progress is the last

    def _stop_reading(self) -> None:
        if self.writer is not None:
            self.writer.keep_alive = False
        for i, (request, _, http10) in enumerate(self.queue):
            self.queue[i] = (request, False, http10)
        if not self.closed:
            self._pause_reading()

    def _pause_reading(self) -> None:
        if not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()

    def _idle_later(self) -> None:
        self._idle_timer = self.loop.call_later(KEEP_ALIVE_S, self._idle_expired)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self.writer is None and not self.queue and not self.closed:
            self.transport.close()

    def shutdown(self) -> None:
        """Stop serving: now if idle, else once the answer in progress is complete."""
        if self.writer is None and not self.closed:
            self.transport.close()
        elif self.writer is not None:
            self.writer.keep_alive = False


def serve(handler: Handler, sock: socket.socket) -> None:
    """Serve `handler` on an already-listening socket until SIGINT or SIGTERM, then shut down gracefully
    (module docstring). The socket is closed."""
    try:
        with _runner() as runner:
            runner.run(_serve(handler, sock))
    except KeyboardInterrupt:   # a signal before the loop took them over, or after it let them go
        pass
    finally:
        sock.close()


def _runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


class FrontServer:
    """`await start(sock)` serves `handler` on a listening socket; `await shutdown(force)` stops
    accepting, closes idle connections and waits for the answers in flight (SHUTDOWN_GRACE_S at most,
    or until `force` is set), then cuts what is left."""

    def __init__(self, handler: Handler):
        self.state = _State(handler)
        self.server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> None:
        state = self.state
        self.server = await asyncio.get_running_loop().create_server(lambda: FrontConnection(state), sock=sock,
                                                                     backlog=2048)

    async def shutdown(self, force: asyncio.Event | None = None) -> None:
        state = self.state
        if self.server is not None:
            self.server.close()   # no new connections
        state.closing = True
        for conn in list(state.connections):
            conn.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE_S
        force = force or asyncio.Event()
        while (state.connections or state.tasks) and not force.is_set() and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(force.wait(), 0.05)
        for conn in list(state.connections):
            conn.transport.abort()
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=1)


async def _serve(handler: Handler, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    force = asyncio.Event()

    def signalled() -> None:
        if stop.is_set():
            force.set()   # a second Ctrl-C: stop now
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.getsignal(sig) for sig in signals}   # given back afterwards (commands/proxy.py's)
    for sig in signals:
        loop.add_signal_handler(sig, signalled)
    try:
        front = FrontServer(handler)
        await front.start(sock)
        await stop.wait()
        await front.shutdown(force)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            signal.signal(sig, before[sig])
