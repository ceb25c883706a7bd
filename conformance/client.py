"""The live client: sends chat requests with httpx and turns every round trip into an Exchange.

Streams are read as raw bytes and fed to the shared SSE decoder with `perf_counter_ns` taken on
arrival, so the same timestamps serve conformance checks and latency metrics. The client is also
the safety belt for live targets: a hard request budget, a client-side rate limit, backoff on
429/503 (honouring Retry-After), per-read and whole-exchange deadlines, and a cap on body size, so
a server that hangs, trickles or floods ends up as a failed Exchange, never as a hung run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .exchange import Exchange, HTTPRequest, make_headers
from .jsonutil import JSONError, dumpb, loads
from .sse import SSEDecoder, SSEError

USE_CONFIG_KEY: Any = object()


class BudgetExhausted(RuntimeError):
    """The run's request budget is spent; remaining checks are skipped, not failed."""


@dataclass
class ClientConfig:
    base_url: str
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    deadline_s: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_requests: int | None = None
    rate_per_s: float | None = None
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 20.0


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


class ChatClient:
    """One target. `chat(body)` POSTs to {base_url}/chat/completions and returns an Exchange."""

    def __init__(self, config: ClientConfig, *, on_exchange: Callable[[Exchange], None] | None = None):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.sent = 0
        self.retried = 0
        self._on_exchange = on_exchange
        self._limiter = _RateLimiter(config.rate_per_s)
        self._lock = threading.Lock()
        self._entry = 0
        timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                  headers={"user-agent": "chatconf"})

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

    def _take_budget(self) -> int:
        with self._lock:
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
                              body=body if raw is None else _try_json(raw), body_text=text)
        ex = Exchange(request=request, entry=entry, source=self.base_url)
        try:
            self._transfer(ex, method, url, send_headers, content)
        finally:
            if self._on_exchange is not None:
                self._on_exchange(ex)
        return ex

    def _transfer(self, ex: Exchange, method: str, url: str, headers: dict[str, str],
                  content: bytes | None) -> None:
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
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            ex.transport_error = f"connection closed mid-response ({_first_line(exc)})"
        except httpx.ConnectError as exc:
            ex.transport_error = f"cannot connect to {self.base_url} ({_first_line(exc)})"
        except httpx.HTTPError as exc:
            ex.transport_error = f"HTTP error: {type(exc).__name__}: {_first_line(exc)}"
        finally:
            ex.t_end_ns = time.perf_counter_ns()

    def _read_stream(self, ex: Exchange, resp: httpx.Response, deadline: int) -> None:
        decoder = SSEDecoder(max_event_bytes=self.config.max_body_bytes)
        events: list = []
        ex.events = events
        total = 0
        try:
            for chunk in resp.iter_raw():
                now = time.perf_counter_ns()
                total += len(chunk)
                events.extend(decoder.feed(chunk, now))
                if total > self.config.max_body_bytes:
                    ex.transport_error = f"stream exceeded {self.config.max_body_bytes} bytes; stopped reading"
                    return
                if now > deadline:
                    ex.transport_error = f"stream still open after {self.config.deadline_s:g} s; stopped reading"
                    return
            events.extend(decoder.close())
        except SSEError as exc:
            ex.transport_error = f"not an event stream: {exc}"

    def _read_body(self, ex: Exchange, resp: httpx.Response, deadline: int) -> None:
        buf = bytearray()
        for chunk in resp.iter_raw():
            buf += chunk
            if len(buf) > self.config.max_body_bytes:
                ex.transport_error = f"response body exceeded {self.config.max_body_bytes} bytes; stopped reading"
                break
            if time.perf_counter_ns() > deadline:
                ex.transport_error = f"response still arriving after {self.config.deadline_s:g} s; stopped reading"
                break
        text = bytes(buf).decode("utf-8", "replace")
        ex.body_text = text
        if not ex.transport_error:
            ex.body = _try_json(bytes(buf))


def _try_json(data: bytes) -> Any:
    if not data.strip():
        return None
    try:
        return loads(data)
    except JSONError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
