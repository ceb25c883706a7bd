"""What clients sent the mock: the last requests, for a user debugging their app against it.

`GET /_mock/requests` returns the newest `REQUEST_LOG_SIZE` chat requests (arrival time, path, headers
with Authorization redacted, the JSON body, or its text clipped when it is not JSON). The log holds
what clients sent (prompts), so it needs the control credential like the routes that change the mock.
Bodies over 64 KiB are kept clipped, so the log stays small whatever clients send.
`chatconf mock --log-requests` also prints one line per request. Recording costs one small tuple per
request (references to what the server already parsed); redaction and formatting happen when the log is read.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..redact import console_text, redact_headers

REQUEST_LOG_SIZE = 100
TEXT_CLIP = 2048
BODY_KEPT_BYTES = 64 * 1024
"""A body larger than this is kept as its first TEXT_CLIP characters: 100 huge bodies must not pin
gigabytes of a mock that a hostile client floods."""


class RequestLog:
    def __init__(self, size: int = REQUEST_LOG_SIZE, *, echo: bool = False) -> None:
        self.entries: deque[tuple[Any, ...]] = deque(maxlen=size)
        self.echo = echo
        self.count = 0

    def add(self, path: str, headers: dict[bytes, bytes], raw: bytes, body: Any, parsed: bool) -> None:
        """Keep what arrived; the work of presenting it (redaction, dates) waits for someone to ask."""
        self.count += 1
        kept = body if parsed and len(raw) <= BODY_KEPT_BYTES else raw[:TEXT_CLIP]
        self.entries.append((self.count, time.time(), path, headers, kept, parsed and len(raw) <= BODY_KEPT_BYTES,
                             len(raw)))
        if self.echo:
            print(f"chatconf mock: request {self.count}: {console_text(self.line(self._present(self.entries[-1])))}",
                  flush=True)

    @staticmethod
    def _present(item: tuple[Any, ...]) -> dict[str, Any]:
        n, at, path, headers, kept, is_body, size = item
        entry: dict[str, Any] = {
            "n": n,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z",
            "path": path,
            "headers": redact_headers({k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}),
        }
        if is_body:
            entry["body"] = kept
        else:
            text = kept.decode("utf-8", "replace")
            entry["body_text"] = text + (f"... [{size} bytes]" if size > TEXT_CLIP else "")
        return entry

    @staticmethod
    def line(entry: dict[str, Any]) -> str:
        body = entry.get("body")
        if not isinstance(body, dict):
            return f"POST {entry['path']} (body not JSON: {len(entry.get('body_text') or '')} chars shown)"
        parts = [f"model={body.get('model')!r}", f"messages={len(body.get('messages') or [])}"]
        for key in ("stream", "tools", "n", "max_tokens", "response_format", "enable_thinking"):
            if key in body:
                value = body[key]
                parts.append(f"{key}={len(value) if key == 'tools' and isinstance(value, list) else value!r}")
        return f"POST {entry['path']} " + " ".join(parts)

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        items = list(self.entries)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return {"received": self.count, "kept": len(self.entries), "requests": [self._present(i) for i in items]}

    def clear(self) -> None:
        self.entries.clear()
