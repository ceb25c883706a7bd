"""The live client: sends chat requests with httpx and turns every round trip into an Exchange.

Streams are read as raw bytes and fed to the shared SSE decoder with `perf_counter_ns` taken on
arrival, so the same timestamps serve conformance checks and latency metrics. The client is also
the safety belt for live targets: a hard request budget, a client-side rate limit, backoff on
429/503 (honouring Retry-After), per-read and whole-exchange deadlines, and a cap on body size, so
a server that hangs, trickles or floods ends up as a failed Exchange, never as a hung run.

Deadline: httpx's read timeout is per read, so a server trickling one header byte a second never
trips it. Every exchange therefore has a watchdog: the client's network streams report the socket
in use to the exchange's `_Watch`, and a timer shuts that socket down at `deadline_s`, which wakes
the blocked read whatever phase it is in (connect is bounded by `connect_timeout_s`). The exchange
then ends with a transport_error starting "timed out".

Stale connections: when a server closes a keep-alive connection, the next request on it fails
before any response byte arrives. Such a send (connection closed or refused, no byte received) is
resent once, transparently, on a new connection; the resend is noted on the Exchange, counted in
`reconnects` and NOT charged to the request budget a second time (the server never answered the
first attempt; at most one resend per request, so the budget is exceeded by at most 2x).

Circuit breaker: after `max_silent` (default 3) exchanges in a row ended with no response at all
(status None: timeout, refused, closed), further sends raise `TargetUnresponsive` at once, so a
dead target ends the run in seconds instead of one timeout per remaining check.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpcore
import httpx

from .exchange import EventKeeper, Exchange, HTTPRequest, make_headers
from .jsonutil import JSONError, dumpb, loads
from .limits import KEEP_BODY_BYTES, MAX_BODY_BYTES
from .redact import redact_obj, redact_secrets, registered_secrets
from .sse import SSEDecoder, SSEError, SSEEvent
from .tls import client_context

USE_CONFIG_KEY: Any = object()


class StreamSink(Protocol):
    """Sees each event of a live stream on arrival (the stream rules, run incrementally)."""

    def feed(self, ev: SSEEvent) -> None: ...


class BudgetExhausted(RuntimeError):
    """The run's request budget is spent; remaining checks are skipped, not failed."""


class TargetUnresponsive(RuntimeError):
    """Several requests in a row got no response at all; remaining checks are not run."""


@dataclass
class ClientConfig:
    base_url: str
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    deadline_s: float = 60.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_requests: int | None = None
    rate_per_s: float | None = None
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 20.0
    max_silent: int | None = 3
    """Consecutive exchanges without any response before sends fail with TargetUnresponsive."""


class _RateLimiter:
    """Evenly spaced sends: at most `rate` requests per second (thread-safe)."""

    def __init__(self, rate: float | None):
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


_CURRENT = threading.local()  # the _Watch of the exchange this thread is sending, if any


class _Watch:
    """One exchange's deadline. The network stream in use attaches its socket on every read and
    write; `fire` (run by a timer) shuts that socket down, which wakes a read blocked in any phase."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.fired = False
        self.done = False
        self.bytes_in = 0

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None or sock is self._sock:
            if self.fired and sock is not None:
                _shutdown(sock)
            return
        with self._lock:
            self._sock = sock
            fired = self.fired
        if fired:
            _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            sock = self._sock
        if sock is not None:
            _shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self.done = True


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedStream(httpcore.NetworkStream):
    """httpcore's stream, reporting its socket and the bytes it reads to the current _Watch."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    def _watch(self) -> _Watch | None:
        watch: _Watch | None = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.attach(self._sock)
        return watch

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        watch = self._watch()
        data = self._inner.read(max_bytes, timeout)
        if watch is not None:
            watch.bytes_in += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._watch()
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _WatchedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _WatchedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _WatchedStream(self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                      socket_options=socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _WatchedStream(self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _watched_transport() -> httpx.HTTPTransport:
    """httpx's transport with the watching network backend (httpx has no public hook for it)."""
    transport = httpx.HTTPTransport(trust_env=False, verify=client_context())
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if inner is None:  # pragma: no cover - an httpcore without the attribute: body-time checks only
        return transport
    pool._network_backend = _WatchedBackend(inner)  # type: ignore[union-attr]
    return transport


_NO_RESPONSE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)


class ChatClient:
    """One target. `chat(body)` POSTs to {base_url}/chat/completions and returns an Exchange."""

    def __init__(self, config: ClientConfig, *, on_exchange: Callable[[Exchange], None] | None = None,
                 stream_rules: Callable[[Exchange], StreamSink] | None = None):
        """`stream_rules(ex)`, when given, makes the sink that sees every event of a stream as it
        arrives (the Exchange keeps only a bounded part of a long stream, conformance.limits)."""
        self.config = config
        self._stream_rules = stream_rules
        self.base_url = config.base_url.rstrip("/")
        self.sent = 0
        self.retried = 0
        self.reconnects = 0
        self._silent = 0
        self._on_exchange = on_exchange
        self._limiter = _RateLimiter(config.rate_per_s)
        self._lock = threading.Lock()
        self._entry = 0
        timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                  headers={"user-agent": "chatconf"}, transport=_watched_transport())

    # -- public --------------------------------------------------------------------------------

    @property
    def remaining(self) -> int | None:
        if self.config.max_requests is None:
            return None
        return max(0, self.config.max_requests - self.sent)

    def chat(self, body: Any, **kwargs: Any) -> Exchange:
        return self.request("POST", "/chat/completions", body=body, **kwargs)

    def request(self, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None, api_key: Any = USE_CONFIG_KEY,
                retry: bool = True) -> Exchange:
        """Send once (plus backoff retries on 429/503 when `retry`); every attempt counts."""
        attempt = 0
        while True:
            ex = self._send_once(method, path, body=body, raw=raw, headers=headers, api_key=api_key)
            if not retry or ex.status not in (429, 503) or attempt >= self.config.retries:
                return ex
            if self.remaining == 0:
                return ex
            attempt += 1
            self.retried += 1
            time.sleep(self._backoff(ex, attempt))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _backoff(self, ex: Exchange, attempt: int) -> float:
        retry_after = ex.header("retry-after")
        if retry_after:
            try:
                return min(self.config.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.config.max_backoff_s, self.config.backoff_s * (2 ** (attempt - 1)))

    def ensure_responsive(self) -> None:
        """Raise TargetUnresponsive when the circuit breaker is open (callers that are about to
        start many sends, such as a property test, stop at once instead of one send at a time)."""
        limit = self.config.max_silent
        if limit is not None and self._silent >= limit:
            raise TargetUnresponsive(f"target stopped answering: {self._silent} requests in a row got no response")

    def _take_budget(self) -> int:
        with self._lock:
            self.ensure_responsive()
            if self.config.max_requests is not None and self.sent >= self.config.max_requests:
                raise BudgetExhausted(f"request budget of {self.config.max_requests} spent")
            self.sent += 1
            entry = self._entry
            self._entry += 1
            return entry

    def _send_once(self, method: str, path: str, *, body: Any, raw: bytes | None,
                   headers: dict[str, str] | None, api_key: Any) -> Exchange:
        entry = self._take_budget()
        self._limiter.wait()
        url = self.base_url + path
        key = self.config.api_key if api_key is USE_CONFIG_KEY else api_key
        send_headers = {"accept": "application/json, text/event-stream"}
        if body is not None or raw is not None:
            send_headers["content-type"] = "application/json"
        if key:
            send_headers["authorization"] = f"Bearer {key}"
        send_headers.update(headers or {})
        content = raw if raw is not None else (dumpb(body) if body is not None else None)
        text = raw.decode("utf-8", "replace") if raw is not None else None
        request = HTTPRequest(method=method, url=url, headers=send_headers,
                              body=body if raw is None else try_json(raw), body_text=text)
        ex = Exchange(request=request, entry=entry, source=self.base_url)
        try:
            self._transfer(ex, method, url, send_headers, content)
        finally:
            with self._lock:
                self._silent = self._silent + 1 if ex.status is None and ex.transport_error else 0
            if registered_secrets():
                _scrub(ex)
            if self._on_exchange is not None:
                self._on_exchange(ex)
        return ex

    def _transfer(self, ex: Exchange, method: str, url: str, headers: dict[str, str],
                  content: bytes | None) -> None:
        """Send, with the watchdog armed for the whole exchange; resend once on a connection that
        closed before any response byte (a stale keep-alive connection)."""
        cfg = self.config
        watch = _Watch()
        timer = threading.Timer(cfg.deadline_s, watch.fire)
        timer.daemon = True
        _CURRENT.watch = watch
        timer.start()
        try:
            for attempt in (0, 1):
                watch.bytes_in = 0
                ex.status, ex.headers, ex.events, ex.body, ex.body_text = None, {}, None, None, None
                ex.transport_error, ex.dropped_events, ex.dropped_chars, ex.stream_check = None, 0, 0, None
                error = self._attempt(ex, watch, method, url, headers, content)
                if (attempt == 0 and isinstance(error, _NO_RESPONSE) and watch.bytes_in == 0
                        and ex.status is None and not watch.fired):
                    self.reconnects += 1
                    ex.notes.append(f"connection closed before any response byte ({_first_line(error)}); "
                                    "resent once on a new connection")
                    continue
                break
        finally:
            watch.finish()
            timer.cancel()
            _CURRENT.watch = None
        if watch.fired:
            if ex.status is None:
                ex.transport_error = f"timed out: no response headers within the {cfg.deadline_s:g} s deadline"
            elif ex.events is not None:
                ex.transport_error = f"timed out: stream still open after {cfg.deadline_s:g} s; stopped reading"
            else:
                ex.transport_error = f"timed out: response still arriving after {cfg.deadline_s:g} s; stopped reading"

    def _attempt(self, ex: Exchange, watch: _Watch, method: str, url: str, headers: dict[str, str],
                 content: bytes | None) -> BaseException | None:
        cfg = self.config
        ex.t_send_ns = time.perf_counter_ns()
        ex.sent_at = time.time()
        deadline = ex.t_send_ns + int(cfg.deadline_s * 1e9)
        try:
            with self._http.stream(method, url, headers=headers, content=content) as resp:
                ex.t_headers_ns = time.perf_counter_ns()
                ex.status = resp.status_code
                ex.headers = make_headers(resp.headers.multi_items())
                is_sse = "text/event-stream" in resp.headers.get("content-type", "").lower()
                wants_stream = ex.request is not None and ex.request.is_stream
                if resp.status_code < 400 and (is_sse or wants_stream):
                    self._read_stream(ex, resp, deadline)
                else:
                    self._read_body(ex, resp, deadline)
        except httpx.TimeoutException as exc:
            ex.transport_error = f"timed out ({type(exc).__name__}: no data for {cfg.read_timeout_s:g} s)"
            return exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            ex.transport_error = f"connection closed mid-response ({_first_line(exc)})"
            return exc
        except httpx.ConnectError as exc:
            ex.transport_error = f"cannot connect to {self.base_url} ({_first_line(exc)})"
            return exc
        except httpx.HTTPError as exc:
            ex.transport_error = f"HTTP error: {type(exc).__name__}: {_first_line(exc)}"
            return exc
        finally:
            ex.t_end_ns = time.perf_counter_ns()
        return None

    def _read_stream(self, ex: Exchange, resp: httpx.Response, deadline: int) -> None:
        decoder = SSEDecoder(max_event_bytes=self.config.max_body_bytes)
        keeper = EventKeeper()
        sink = self._stream_rules(ex) if self._stream_rules is not None else None
        ex.events = keeper.head
        total = 0

        def take(events: list[SSEEvent]) -> None:
            for ev in events:
                if sink is not None:
                    sink.feed(ev)
                keeper.add(ev)

        try:
            for chunk in resp.iter_raw():
                now = time.perf_counter_ns()
                total += len(chunk)
                take(decoder.feed(chunk, now))
                if total > self.config.max_body_bytes:
                    ex.transport_error = f"stream exceeded {self.config.max_body_bytes} bytes; stopped reading"
                    return
                if now > deadline:
                    ex.transport_error = f"stream still open after {self.config.deadline_s:g} s; stopped reading"
                    return
            take(decoder.close())
        except SSEError as exc:
            ex.transport_error = f"not an event stream: {exc}"
        finally:
            ex.events = keeper.events()
            ex.dropped_events, ex.dropped_chars = keeper.dropped_events, keeper.dropped_chars
            note = keeper.note(checked=sink is not None)
            if note:
                ex.notes.append(note)
                ex.stream_check = sink
            what = decoder.decode_error_note()
            if what:
                # The events that held the bytes are marked `not_utf8`: the stream rules report them
                # (stream.json), as `chatconf validate` does for a capture of the same bytes.
                ex.notes.append(what)

    def _read_body(self, ex: Exchange, resp: httpx.Response, deadline: int) -> None:
        buf = bytearray()
        try:
            for chunk in resp.iter_raw():
                buf += chunk
                if len(buf) > self.config.max_body_bytes:
                    ex.transport_error = f"response body exceeded {self.config.max_body_bytes} bytes; stopped reading"
                    break
                if time.perf_counter_ns() > deadline:
                    ex.transport_error = f"response still arriving after {self.config.deadline_s:g} s; stopped reading"
                    break
        finally:
            data = bytes(buf)
            ex.body_text, note = decode_body(data)
            if note:
                ex.notes.append(note)
        if not ex.transport_error:
            ex.body = try_json(data)
        _bound_body_text(ex)


def _bound_body_text(ex: Exchange) -> None:
    """A parsed body is what checks read; of a body that is text (JSON or not), keep the first
    KEEP_BODY_BYTES characters and say how many were cut."""
    text = ex.body_text
    if text is None or len(text) <= KEEP_BODY_BYTES:
        return
    ex.body_text = text[:KEEP_BODY_BYTES]
    ex.dropped_chars += len(text) - KEEP_BODY_BYTES
    ex.notes.append(f"{len(text) - KEEP_BODY_BYTES} characters of the response body not kept "
                    f"(only the first {KEEP_BODY_BYTES} are stored)")


def _scrub(ex: Exchange) -> None:
    """Registered secrets out of what the server sent back (a server may echo the key)."""
    if ex.body is not None:
        ex.body = redact_obj(ex.body, redact_secrets)
    if ex.body_text is not None:
        ex.body_text = redact_secrets(ex.body_text)
    if ex.transport_error:
        ex.transport_error = redact_secrets(ex.transport_error)
    if isinstance(ex.events, list):
        for i, ev in enumerate(ex.events):
            clean = redact_secrets(ev.data)
            if clean != ev.data:
                ex.events[i] = SSEEvent(clean, event=ev.event, id=ev.id, retry=ev.retry, t_ns=ev.t_ns,
                                        index=ev.index, terminated=ev.terminated)


def decode_body(data: bytes) -> tuple[str, str | None]:
    """A response body as text, and a note when it was not valid UTF-8 (kept with U+FFFD replacements)."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", "replace"), (f"response body is not valid UTF-8 (first invalid byte at offset "
                                                  f"{exc.start}); body_text holds it with U+FFFD replacements")


def try_json(data: bytes) -> Any:
    """The parsed JSON document of a body, or None (empty or not JSON)."""
    if not data.strip():
        return None
    try:
        return loads(data)
    except JSONError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
