"""A streaming HTTP/1.1 client that timestamps bytes as they arrive, correct under gevent.

Why not Locust's clients: FastHttpUser's `response.stream` hands SSE bodies over in fixed-size
blocks (events late by hundreds of ms, ITL 0) and HttpUser stops its timer at the headers
(docs/load.md). This client owns the socket: each read returns whatever the kernel has, stamped
with its arrival time (below), and the bytes go through a minimal chunked-transfer decoder. An SSE
body is kept as it arrived, each piece with its time, and decoded by `conformance.sse.SSEDecoder` when
the stream is scored (`post_stream_raw`, conformance/rawstream.py says why); nothing is parsed as JSON
while bytes are being read.

Arrival times come from the kernel where it can give them: on plain TCP sockets the client asks for
receive timestamps (SO_TIMESTAMPNS), so the time a read is stamped with is when its bytes reached the
socket, not when a busy event loop got round to reading them. A loaded generator then still times
the server right, as long as it reads each event before the next one arrives (events that arrive
together share the later one's time, as before). TLS is decrypted in memory (`ssl.MemoryBIO`) from the
same stamped socket, so https targets get the kernel's times too.

Plain `socket`/`ssl` are used on purpose: Locust monkey-patches them, so inside Locust each recv
yields to the gevent hub; outside Locust (tests, tools) the same code is an ordinary blocking
client. One connection per client object, kept alive between requests (one per Locust user).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from conformance.exchange import Exchange, HTTPRequest, make_headers
from conformance.jsonutil import JSONError, dumpb, loads
from conformance.rawstream import RawStream
from conformance.sse import SSEError
from conformance.tls import client_context

try:  # present wherever gevent is (Locust); the client itself also works without it
    from greenlet import getcurrent as _getcurrent
except ImportError:  # pragma: no cover
    _getcurrent = None

perf_ns = time.perf_counter_ns
wall_ns = time.time_ns
RECV_SIZE = 65536
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
USER_AGENT = "chatconf-load/0.1"


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)
"""Linux: ask the kernel for each read's receive time (CLOCK_REALTIME, in ns). Python does not name the
option; 35 is its number in Linux's generic socket ABI (x86, ARM), and a read is only trusted when its
control message says that type."""
_TIMESPEC = struct.Struct("@qq")
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def enable_rx_timestamps(sock: socket.socket) -> bool:
    """Ask for kernel receive timestamps on a plain TCP socket; False where there are none (TLS, not Linux)."""
    if SO_TIMESTAMPNS is None or not _ANC_SIZE or isinstance(sock, ssl.SSLSocket):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def arrival_ns(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The arrival time of a `recvmsg` read on the `perf_counter_ns` clock.

    The kernel stamps bytes on the wall clock; what is kept is their age (wall now - stamp),
    subtracted from the monotonic now, so a wall-clock step between runs cannot skew a timing.
    Without a stamp (or with one from the future) the read time is the arrival time.
    """
    now = perf_ns()
    for level, kind, data in ancdata:
        if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            age = wall_ns() - (sec * 1_000_000_000 + nsec)
            return now - age if age > 0 else now
    return now


def recv_stamped(sock: socket.socket, size: int) -> tuple[bytes, int]:
    """One read of a socket with receive timestamps on: (data, arrival time on the perf_counter_ns clock)."""
    data, anc, _flags, _addr = sock.recvmsg(size, _ANC_SIZE)
    return data, arrival_ns(anc)


def arrival_clock(base_url: str) -> str:
    """Which clock times this target's events: "kernel" (receive timestamps; TLS is decrypted from the
    stamped socket) or "read" (a platform without them)."""
    return "kernel" if SO_TIMESTAMPNS is not None and _ANC_SIZE and base_url.startswith(("http://", "https://")) \
        else "read"


class HTTPProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as expected (bad status line, bad chunk size, ...)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: scheme, host, port and the base path (".../compatible-mode/v1")."""

    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, base_url: str) -> Target:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host_header}{self.base_path}{path}"


class ChunkedDecoder:
    """Incremental `Transfer-Encoding: chunked` decoder: raw bytes in, body pieces out."""

    __slots__ = ("_buf", "_need", "_state", "done")

    def __init__(self) -> None:
        self._buf = b""
        self._need = 0  # bytes of chunk data still expected
        self._state = "size"  # size | data | crlf | trailer
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        if not self._buf and self._state == "size":
            # Fast path: one whole chunk per read (a streaming server writes one chunk per event).
            end = data.find(b"\r\n", 0, 18)
            if end > 0:
                try:
                    size = int(data[:end], 16)
                except ValueError:
                    size = 0
                if size > 0 and len(data) == end + size + 4 and data[-2:] == b"\r\n":
                    return [data[end + 2 : -2]]
        out: list[bytes] = []
        buf = self._buf + data if self._buf else data
        pos = 0
        n = len(buf)
        while pos < n and not self.done:
            if self._state == "data":
                take = min(self._need, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._need -= take
                if self._need == 0:
                    self._state = "crlf"
                continue
            end = buf.find(b"\r\n", pos)
            if end == -1:
                if n - pos > 4096:
                    raise HTTPProtocolError("chunk header line too long")
                break
            line = buf[pos:end]
            pos = end + 2
            if self._state == "crlf":
                if line:
                    raise HTTPProtocolError("missing CRLF after chunk data")
                self._state = "size"
            elif self._state == "size":
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HTTPProtocolError(f"bad chunk size {size_text[:20]!r}") from None
                if size == 0:
                    self._state = "trailer"
                else:
                    self._need = size
                    self._state = "data"
            elif self._state == "trailer" and not line:
                self.done = True
        self._buf = buf[pos:] if pos < n else b""
        return out


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise HTTPProtocolError(f"bad status line {lines[0][:60]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise HTTPProtocolError(f"bad status line {lines[0][:60]!r}") from None
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return status, headers


def _throw_timeout(glet: Any) -> None:
    glet.throw(TimeoutError("timed out"))


class _HubReader:
    """`recv` for a plain gevent socket with less work per read than gevent's own.

    gevent's `socket.recv` tries the read first (an EAGAIN exception when nothing is there yet),
    then builds a `Timeout` object for the wait. A streaming client almost always waits (the next
    event is milliseconds away), so this waits first on the socket's read watcher, with one timer
    per connection re-armed for each wait (same per-wait timeout, same `TimeoutError("timed out")`),
    then reads. The arrival time is the kernel's stamp, or without one taken right after the read.
    """

    __slots__ = ("_hub", "_raw", "_stamped", "_timeout", "_timer", "_watcher")

    def __init__(self, raw: Any, watcher: Any, hub: Any, timeout: float, stamped: bool = False):
        self._raw = raw
        self._watcher = watcher
        self._hub = hub
        self._timeout = timeout
        self._timer = hub.loop.timer(timeout)
        self._stamped = stamped

    @classmethod
    def for_socket(cls, sock: Any, timeout: float | None, stamped: bool = False) -> _HubReader | None:
        """A reader when `sock` is a plain (not TLS) gevent socket in non-blocking mode, else None."""
        if not timeout or type(sock).__module__ != "gevent._socket3":
            return None
        raw = getattr(sock, "_sock", None)
        watcher = getattr(sock, "_read_event", None)
        hub = getattr(sock, "hub", None)
        if raw is None or watcher is None or hub is None or _getcurrent is None or raw.gettimeout() != 0.0:
            return None
        return cls(raw, watcher, hub, timeout, stamped)

    def read(self, size: int) -> tuple[bytes, int]:
        """Wait for bytes; (data, arrival time): the kernel's stamp when the socket has them on."""
        raw, timer, wait, watcher = self._raw, self._timer, self._hub.wait, self._watcher
        while True:
            timer.start(_throw_timeout, _getcurrent())
            try:
                wait(watcher)
            except TimeoutError:
                # the expired timer's callback is still on the hub's stack: never re-arm that one
                self._timer = self._hub.loop.timer(self._timeout)
                raise
            finally:
                timer.stop()
            try:
                if self._stamped:
                    return recv_stamped(raw, size)
                return raw.recv(size), perf_ns()
            except BlockingIOError:
                continue

    def close(self) -> None:
        self._timer.close()


class _SocketReader:
    """`read` for a blocking socket (outside gevent, or TLS): the same (data, arrival time) pairs."""

    __slots__ = ("_sock", "_stamped")

    def __init__(self, sock: socket.socket, stamped: bool):
        self._sock = sock
        self._stamped = stamped

    def read(self, size: int) -> tuple[bytes, int]:
        if self._stamped:
            return recv_stamped(self._sock, size)
        return self._sock.recv(size), perf_ns()

    def close(self) -> None:
        pass


class _TLSReader:
    """TLS decrypted in memory (ssl.MemoryBIO) from the plain socket's own reads, so decrypted bytes
    keep the kernel's receive time of the bytes that completed them; `read`/`sendall` as a socket's."""

    __slots__ = ("_in", "_obj", "_out", "_raw", "_sock", "_t")

    def __init__(self, raw: _HubReader | _SocketReader, tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO],
                 sock: socket.socket):
        self._raw = raw
        self._obj, self._in, self._out = tls
        self._sock = sock
        self._t = perf_ns()

    def read(self, size: int) -> tuple[bytes, int]:
        obj, incoming = self._obj, self._in
        while True:
            if incoming.pending or obj.pending():  # else decrypting can only say "want read": skip the raise
                try:
                    return obj.read(size), self._t
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:  # the server's close_notify: the end of the stream
                    return b"", self._t
            raw, t = self._raw.read(RECV_SIZE)
            if not raw:
                return b"", t
            self._in.write(raw)
            self._t = t
            if self._out.pending:  # e.g. an answer to the server's key update
                self._sock.sendall(self._out.read())

    def sendall(self, data: bytes) -> None:
        self._obj.write(data)
        self._sock.sendall(self._out.read())

    def close(self) -> None:
        self._raw.close()


def tls_handshake(sock: socket.socket, ctx: ssl.SSLContext, hostname: str) -> tuple[ssl.SSLObject, ssl.MemoryBIO,
                                                                                     ssl.MemoryBIO]:
    """The TLS handshake over `sock` with memory BIOs (the socket itself stays plain)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=hostname)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                sock.sendall(outgoing.read())
            data = sock.recv(RECV_SIZE)
            if not data:
                raise ConnectionResetError("connection closed during the TLS handshake") from None
            incoming.write(data)
    if outgoing.pending:
        sock.sendall(outgoing.read())
    return obj, incoming, outgoing


class StreamClient:
    """POST JSON, read the answer as it arrives; one keep-alive connection per client.

    `timeout` bounds each wait for bytes (and the connect); `max_time` bounds a whole response.
    The API key is kept only to build the Authorization header; Exchange headers are redacted.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 60.0,
        max_time: float = 600.0,
        connect_timeout: float = 10.0,
    ):
        self.target = Target.parse(base_url)
        self._auth = f"Bearer {api_key}" if api_key else None
        self.timeout = timeout
        self.max_time = max_time
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._reader: _HubReader | _SocketReader | _TLSReader | None = None
        self._send: Any = None
        self.connects = 0
        self.last_connect_ms: float | None = None

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        """A connected socket, TLS set up over it for https, and the reader and sender to use."""
        t0 = perf_ns()
        sock = socket.create_connection((self.target.host, self.target.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = None
            if self.target.scheme == "https":
                tls = tls_handshake(sock, client_context(), self.target.host)
            sock.settimeout(self.timeout)
            stamped = enable_rx_timestamps(sock)
            raw = _HubReader.for_socket(sock, self.timeout, stamped) or _SocketReader(sock, stamped)
        except BaseException:
            sock.close()
            raise
        self._reader = _TLSReader(raw, tls, sock) if tls is not None else raw
        self._send = self._reader.sendall if isinstance(self._reader, _TLSReader) else sock.sendall
        self.connects += 1
        self.last_connect_ms = (perf_ns() - t0) / 1e6
        return sock

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    # -- request ------------------------------------------------------------------------------

    def _head_bytes(self, path: str, body_len: int) -> bytes:
        lines = [
            f"POST {self.target.base_path}{path} HTTP/1.1",
            f"Host: {self.target.host_header}",
            f"User-Agent: {USER_AGENT}",
            "Content-Type: application/json",
            "Accept: text/event-stream, application/json",
            f"Content-Length: {body_len}",
        ]
        if self._auth:
            lines.append(f"Authorization: {self._auth}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def post_stream(self, path: str, body: dict, *, entry: int = 0) -> Exchange:
        """Send one request; return its Exchange (never raises for network or HTTP trouble)."""
        ex, raw = self.post_stream_raw(path, body, entry=entry)
        if raw is not None:
            ex.events = raw.events()
        return ex

    def post_stream_raw(self, path: str, body: dict, *, entry: int = 0) -> tuple[Exchange, RawStream | None]:
        """`post_stream`, with an SSE answer left undecoded: the Exchange (`events` unset) and its
        RawStream, whose `events()` gives what `post_stream` would have (conformance/rawstream.py)."""
        payload = dumpb(body)
        wire = self._head_bytes(path, len(payload)) + payload
        req_headers = {"content-type": "application/json", "accept": "text/event-stream, application/json"}
        if self._auth:
            req_headers["authorization"] = self._auth
        ex = Exchange(
            request=HTTPRequest(method="POST", url=self.target.url(path), headers=req_headers, body=body),
            source="load",
            entry=entry,
        )
        for attempt in range(2):
            reused = self._sock is not None
            try:
                if self._sock is None:
                    self._sock = self._connect()
                ex.t_send_ns = perf_ns()
                self._send(wire)
                keep, raw = self._read_response(self._sock, ex)
            except (OSError, HTTPProtocolError, SSEError) as exc:
                self.close()
                # a kept-alive connection the server closed while idle: retry once, fresh
                if reused and attempt == 0 and ex.status is None and not getattr(exc, "_got_bytes", False):
                    continue
                ex.transport_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                ex.t_end_ns = perf_ns()
                return ex, None
            if not keep:
                self.close()
            return ex, raw
        return ex, None  # pragma: no cover (loop always returns)

    def _read_response(self, sock: socket.socket, ex: Exchange) -> tuple[bool, RawStream | None]:
        """Fill `ex` from the socket: (whether the connection may be reused, the SSE body if any)."""
        deadline = ex.t_send_ns + int(self.max_time * 1e9)  # type: ignore[operator]
        read = (self._reader or _SocketReader(sock, False)).read
        buf = b""
        while True:
            try:
                data, t = read(RECV_SIZE)
            except OSError as exc:
                exc._got_bytes = bool(buf)  # type: ignore[attr-defined]
                raise
            if not data:
                err = ConnectionResetError("connection closed before the response headers")
                err._got_bytes = bool(buf)  # type: ignore[attr-defined]
                raise err
            buf += data
            end = buf.find(b"\r\n\r\n")
            if end != -1:
                break
            if len(buf) > MAX_HEADER_BYTES:
                raise HTTPProtocolError("response headers larger than 64 KiB")
        ex.t_headers_ns = t
        status, raw_headers = _parse_head(buf[:end])
        ex.status = status
        ex.headers = make_headers(raw_headers)
        rest = buf[end + 4 :]
        hdr = ex.headers
        chunked = "chunked" in hdr.get("transfer-encoding", "").lower()
        length = hdr.get("content-length")
        keep = hdr.get("connection", "").lower() != "close"
        is_sse = hdr.get("content-type", "").split(";", 1)[0].strip().lower() == "text/event-stream"
        body = _Body(chunked, int(length) if (length and length.isdigit() and not chunked) else None, is_sse)

        complete = body.remaining == 0 or (bool(rest) and body.feed(rest, t))
        if not complete:
            while True:
                if t > deadline:
                    keep = False
                    ex.transport_error = f"TimeoutError: response exceeded {self.max_time:g} s"
                    break
                try:
                    data, t = read(RECV_SIZE)
                except OSError as exc:
                    keep = False
                    ex.transport_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    break
                if not data:
                    keep = False
                    if body.unfinished:
                        ex.transport_error = "ConnectionResetError: connection closed mid-body"
                    break
                if body.feed(data, t):
                    break
        ex.t_end_ns = perf_ns() if ex.transport_error else t
        if body.stream is None:
            raw = b"".join(body.parts)
            ex.body_text = raw.decode("utf-8", errors="replace")
            try:
                ex.body = loads(raw) if raw else None
            except JSONError:
                ex.body = None
        return keep and ex.transport_error is None, body.stream


class _Body:
    """A response body as it arrives: its framing (chunked, Content-Length, or until the close) and
    where it goes: a RawStream for SSE, else pieces up to MAX_BODY_BYTES. An object with slots rather
    than closures, so a request in flight is few objects for the garbage collector (rawstream.py)."""

    __slots__ = ("chunks", "parts", "remaining", "size", "stream")

    def __init__(self, chunked: bool, length: int | None, sse: bool):
        self.chunks = ChunkedDecoder() if chunked else None
        self.remaining = length
        self.stream = RawStream() if sse else None
        self.parts: list[bytes] = []
        self.size = 0

    @property
    def unfinished(self) -> bool:
        """The framing says more was to come (a close is only a normal end for an unframed body)."""
        return self.chunks is not None or (self.remaining is not None and self.remaining > 0)

    def feed(self, data: bytes, t_ns: int) -> bool:
        """Take the bytes of one read; True when the body is complete."""
        if self.chunks is not None:
            for piece in self.chunks.feed(data):
                self._take(piece, t_ns)
            return self.chunks.done
        if self.remaining is not None:
            take = data[: self.remaining]
            self.remaining -= len(take)
            if take:
                self._take(take, t_ns)
            return self.remaining <= 0
        self._take(data, t_ns)
        return False

    def _take(self, piece: bytes, t_ns: int) -> None:
        if self.stream is not None:
            self.stream.add(piece, t_ns)
            return
        self.size += len(piece)
        if self.size > MAX_BODY_BYTES:
            raise HTTPProtocolError("response body larger than 64 MiB")
        self.parts.append(piece)


__all__ = ["ChunkedDecoder", "HTTPProtocolError", "StreamClient", "Target"]
