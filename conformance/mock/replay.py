"""Replay: answer requests with recorded responses (a chatconf JSONL recording or a HAR file),
matched by exact body, else by model + messages, streamed with the recorded relative timings.
Lets a bug report's traffic be served back to a client as many times as needed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..captures import CaptureError, read_path
from ..exchange import Exchange
from ..jsonutil import dumps

_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding", "date",
                          "server", "keep-alive"})


class ReplayError(ValueError):
    """The capture cannot be read or holds no replayable exchange."""


def _key(obj: Any) -> str:
    return dumps(obj, sort_keys=True)


def _loose(body: Any) -> str | None:
    if not isinstance(body, dict) or "messages" not in body:
        return None
    return _key({"model": body.get("model"), "messages": body.get("messages"),
                 "stream": body.get("stream") is True})


@dataclass(slots=True)
class Recorded:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    events: list[tuple[float | None, bytes]] | None   # (offset s from request, encoded event)


def _recorded(ex: Exchange) -> Recorded:
    headers = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in ex.headers.items()
               if k not in _HOP_HEADERS]
    if ex.events is not None:
        base = ex.t_send_ns
        events = []
        for ev in ex.events:
            offset = (ev.t_ns - base) / 1e9 if base and ev.t_ns else None
            events.append((offset, ev.as_text().encode("utf-8")))
        return Recorded(ex.status or 200, headers, None, events)
    body = dumps(ex.body).encode("utf-8") if ex.body is not None else (ex.body_text or "").encode("utf-8")
    return Recorded(ex.status or 200, headers, body, None)


class ReplayIndex:
    def __init__(self, source: str):
        self.source = source
        self.exact: dict[str, list[Recorded]] = defaultdict(list)
        self.loose: dict[str, list[Recorded]] = defaultdict(list)
        self._next: dict[str, int] = defaultdict(int)
        self.count = 0

    @classmethod
    def load(cls, path: str) -> ReplayIndex:
        index = cls(path)
        try:
            for ex in read_path(path):
                if ex.request is None or not isinstance(ex.request.body, dict) or ex.status is None:
                    continue
                rec = _recorded(ex)
                index.exact[_key(ex.request.body)].append(rec)
                loose = _loose(ex.request.body)
                if loose:
                    index.loose[loose].append(rec)
                index.count += 1
        except CaptureError as exc:
            raise ReplayError(f"cannot replay {path}: {exc}") from exc
        if not index.count:
            raise ReplayError(f"cannot replay {path}: no recorded request/response pairs")
        return index

    def match(self, body: Any) -> Recorded | None:
        """The recorded answer for `body`; repeated requests cycle through repeated recordings."""
        for table, key in ((self.exact, _key(body)), (self.loose, _loose(body))):
            if key is not None and key in table:
                options = table[key]
                i = self._next[key] % len(options)
                self._next[key] += 1
                return options[i]
        return None
