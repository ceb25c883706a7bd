"""What a reverse proxy changes on the way through, and nothing more: the upstream URL a request goes
to, the connection-specific headers it drops (RFC 9110 section 7.6.1), and the 502 answer a client
gets when the upstream fails before answering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..jsonutil import dumpb

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade"})
"""Connection-specific fields; plus every field the `connection` header names (handled below)."""

UNREACHABLE, TIMEOUT, PROTOCOL = "upstream_unreachable", "upstream_timeout", "upstream_protocol_error"


class UpstreamError(ValueError):
    """--upstream is not an http(s) URL with a host; the message is one line."""


@dataclass(frozen=True)
class Upstream:
    """Where requests go: `origin` + `base_path` + the path the app asked for."""

    scheme: str
    host: str
    port: int | None
    base_path: str

    @property
    def origin(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port is not None else "")


def parse_upstream(url: str) -> Upstream:
    """An upstream URL such as https://dashscope-intl.aliyuncs.com/compatible-mode/v1, checked.

    Its path prefixes every forwarded path, so an app whose base_url is the proxy's root reaches
    `<upstream>/chat/completions`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UpstreamError(f"--upstream {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"--upstream {url!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UpstreamError(f"--upstream {url!r}: give the base URL only (no query, fragment or credentials)")
    return Upstream(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def forwarded_headers(raw: Iterable[tuple[bytes, bytes]], *, request: bool) -> list[tuple[bytes, bytes]]:
    """Headers minus the connection-specific ones (and, on requests, Host: the upstream's is set from
    its URL). Order, case, repeats and values of everything else are kept."""
    items = list(raw)
    drop = set(HOP_BY_HOP)
    if request:
        drop.add("host")
    for name, value in items:
        if name.lower() == b"connection":
            drop.update(token.strip().lower() for token in value.decode("latin-1").split(",") if token.strip())
    return [(name, value) for name, value in items if name.decode("latin-1").lower() not in drop]


def error_body(message: str, code: str, *, kind: str = "proxy_error") -> bytes:
    """The documented error envelope (message, type, param, code) for answers the proxy makes itself."""
    return dumpb({"error": {"message": message, "type": kind, "param": None, "code": code}})
