"""What clients sent the mock: the last requests, for a user debugging their app against it.

`GET /_mock/requests` returns the newest `REQUEST_LOG_SIZE` chat requests (arrival time, path, headers
with Authorization redacted, the JSON body, or its text clipped when it is not JSON). The log holds
what clients sent (prompts), so it needs the control credential like the routes that change the mock.
`chatconf mock --log-requests` also prints one line per request. Recording costs one small dict per
request; bodies are kept as parsed, never copied.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..redact import console_text, redact_headers

REQUEST_LOG_SIZE = 100
TEXT_CLIP = 2048


class RequestLog:
    def __init__(self, size: int = REQUEST_LOG_SIZE, *, echo: bool = False) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.echo = echo
        self.count = 0

    def add(self, path: str, headers: dict[bytes, bytes], raw: bytes, body: Any, parsed: bool) -> None:
        self.count += 1
        entry: dict[str, Any] = {
            "n": self.count,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "path": path,
            "headers": redact_headers({k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}),
        }
        if parsed:
            entry["body"] = body
        else:
            text = raw[:TEXT_CLIP].decode("utf-8", "replace")
            entry["body_text"] = text + (f"... [{len(raw)} bytes]" if len(raw) > TEXT_CLIP else "")
        self.entries.append(entry)
        if self.echo:
            print(f"chatconf mock: request {self.count}: {console_text(self.line(entry))}", flush=True)

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
        entries = list(self.entries)
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        return {"received": self.count, "kept": len(self.entries), "requests": entries}

    def clear(self) -> None:
        self.entries.clear()
