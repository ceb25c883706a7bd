"""The proxy as a plain ASGI app (no framework in the per-chunk path): forward, stream, check, record.

Every request outside `/_proxy/` goes to the upstream unchanged (method, path under the upstream's
base path, raw query, body, headers minus the connection-specific ones); the answer comes back the
same way. Event streams are relayed chunk by chunk: each chunk is written to the client before the
proxy looks at it. Non-stream answers to chat requests are read whole first, so their findings can
ride along in an `x-chatconf-findings` header; that is the only buffering the proxy does.

Chat Completions round trips are checked with the rules of `chatconf validate` (see capture.py),
their findings go to the FindingsStore (console, `GET /_proxy/findings`) and the exchange to the
recording. Keys never leave: every credential header value the proxy sees is registered as a secret
before anything is checked, printed or recorded.

An upstream that refuses, hangs, resets or answers with something that is not HTTP gets the client
a 502 with an error envelope; the proxy itself keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..jsonutil import dumpb
from ..profiles import Profile
from ..recording import RecordingWriter
from ..redact import SECRET_HEADERS, redact_text, register_secret
from .capture import ExchangeCapture, is_chat_path
from .findings import FindingsStore, findings_header
from .forwarding import PROTOCOL, TIMEOUT, UNREACHABLE, error_body, forwarded_headers, parse_upstream

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ADMIN_PREFIX = "/_proxy/"
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
"""A non-stream answer larger than this is relayed as it comes, without the findings header."""
FINDINGS_HEADER = b"x-chatconf-findings"
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
        self.origin, self.base_path = parse_upstream(config.upstream)
        self.findings = FindingsStore(config.fail_on, echo=echo)
        self.recording = RecordingWriter(config.record) if config.record else None
        self.in_flight = 0
        self._entries = 0
        self._echo = echo
        limits = httpx.Limits(max_connections=4096, max_keepalive_connections=512, keepalive_expiry=4.0)
        self._timeout = httpx.Timeout(config.timeout_s)
        self._http = httpx.AsyncClient(limits=limits, timeout=self._timeout, follow_redirects=False,
                                       trust_env=False)

    async def aclose(self) -> None:
        await self._http.aclose()
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
            await _answer(send, 200, dumpb({"status": "ok", "upstream": redact_text(self.config.upstream),
                                            "exchanges": self.findings.exchanges, "in_flight": self.in_flight}))

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
        url = f"{self.origin}{self.base_path}{path}" + (f"?{query.decode('latin-1')}" if query else "")
        headers = forwarded_headers(raw_headers, request=True)
        method = scope["method"]
        capture = None
        if is_chat_path(scope["path"]):
            capture = ExchangeCapture(self.config.profile, method=method, url=url, source=self.config.upstream,
                                      headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                                      body=body)
        timeout = self._timeout.as_dict()
        request = httpx.Request(method, url, headers=headers, content=body, extensions={"timeout": timeout})
        if capture is not None:
            capture.sent()
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            code, message = _upstream_failure(exc, self.config.timeout_s)
            await _answer(send, 502, error_body(message, code, kind="bad_gateway"))
            if capture is not None:
                self._done(capture, method, scope["path"], transport_error=message)
            return
        timeout["read"] = self.config.idle_timeout_s  # first byte came; from now on: silence between chunks
        try:
            await self._relay(response, capture, method, scope, receive, send)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, capture: ExchangeCapture | None, method: str, scope: Scope,
                     receive: Receive, send: Send) -> None:
        status = response.status_code
        headers = forwarded_headers(response.headers.raw, request=False)
        if capture is not None:
            capture.response(status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])
        buffer = capture is not None and capture.ex.events is None
        if buffer:
            complete = await self._relay_checked(response, capture, method, scope, headers, send)  # type: ignore[arg-type]
            if complete:
                return
        else:
            await send({"type": "http.response.start", "status": status, "headers": headers})
        disconnect = asyncio.ensure_future(receive())  # http.disconnect is the only message left
        error: str | None = None
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if capture is not None:
                    capture.chunk(chunk)
                if disconnect.done():
                    if capture is not None:
                        self._done(capture, method, scope["path"], client_gone=True)
                    return
        except httpx.HTTPError as exc:
            error = _midstream_failure(exc, self.config.idle_timeout_s)
        finally:
            disconnect.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if capture is not None:
            self._done(capture, method, scope["path"], transport_error=error)

    async def _relay_checked(self, response: httpx.Response, capture: ExchangeCapture, method: str, scope: Scope,
                             headers: list[tuple[bytes, bytes]], send: Send) -> bool:
        """Read a non-stream answer whole, check it, then send it with the findings header. False when it
        grew too large to hold: the part read so far has been sent and the caller relays the rest."""
        parts: list[bytes] = []
        size = 0
        error: str | None = None
        try:
            async for chunk in response.aiter_raw():
                parts.append(chunk)
                capture.chunk(chunk)
                size += len(chunk)
                if size > MAX_BUFFERED_BYTES:
                    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
                    await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
                    return False
        except httpx.HTTPError as exc:
            error = _midstream_failure(exc, self.config.idle_timeout_s)
        failing = self._done(capture, method, scope["path"], transport_error=error)
        if failing:
            headers = [*headers, (FINDINGS_HEADER, findings_header(failing).encode("ascii", "replace"))]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(parts), "more_body": False})
        return True

    def _done(self, capture: ExchangeCapture, method: str, path: str, *, transport_error: str | None = None,
              client_gone: bool = False) -> list[Any]:
        """Check, record and report one finished exchange; returns its findings at the --fail-on level.
        Runs without an await, so entries are numbered in the order lines reach the recording."""
        entry = self._entries
        self._entries += 1
        violations = capture.finish(transport_error, entry=entry, client_gone=client_gone)
        if self.recording is not None:
            self.recording.write(capture.ex)
        return self.findings.add(violations, method=method, path=path, status=capture.ex.status, entry=entry)


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


def _upstream_failure(exc: httpx.HTTPError, timeout_s: float) -> tuple[str, str]:
    """(error code, one-line message) for an upstream that gave no answer."""
    if isinstance(exc, httpx.TimeoutException):
        return TIMEOUT, f"upstream did not answer within {timeout_s:g} s ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return UNREACHABLE, f"cannot connect to the upstream ({_first_line(exc)})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return PROTOCOL, f"upstream answer is not valid HTTP or the connection closed early ({_first_line(exc)})"
    return PROTOCOL, f"upstream connection failed ({type(exc).__name__}: {_first_line(exc)})"


def _midstream_failure(exc: httpx.HTTPError, idle_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"upstream sent nothing for {idle_s:g} s in the middle of the answer; the proxy ended it"
    return f"upstream connection broke in the middle of the answer ({type(exc).__name__}: {_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return redact_text(lines[0]) if lines else type(exc).__name__


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
