"""`--replay CAPTURE`: captured traffic sent again as load, with its original relative timing.

A recording (JSONL, `chatconf run`/`proxy`), a HAR or any capture `chatconf validate` reads gives the
chat requests and, where the capture has them, their send times (recordings' `timing.sent_at`, HAR
`startedDateTime`): each request is sent at `(its time - the first one's) / speed` after the start,
open loop, so an incident or a day's traffic shape is reproduced against another region or gateway.
Requests without a time are sent one after the other as fast as `--users` allows. Every request
streams with usage (the load harness times streams); its model is kept unless `--model` is given;
headers are not replayed, so no captured key ever is (the run's own key is sent). With workers,
request i goes to worker i mod N, keeping each one's timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.captures import CaptureError, read_path

MAX_REQUESTS = 1_000_000


class ReplayError(ValueError):
    """A capture that holds nothing to replay; str() is the one line to print."""


@dataclass(frozen=True)
class Replayed:
    offset_s: float | None  # seconds after the first request, before --speed; None: no time captured
    body: dict[str, Any]


def load_replay(path: str | Path, *, model: str | None = None) -> list[Replayed]:
    """The chat requests of a capture in send order, ready to stream."""
    try:
        capture = read_path(path)
        found = list(_requests(capture))
    except CaptureError as exc:
        raise ReplayError(f"--replay {path}: {exc}") from None
    if not found:
        raise ReplayError(f"--replay {path}: no chat request with messages in it")
    timed = [t for t, _ in found if t is not None]
    first = min(timed) if timed else None
    ordered = sorted(found, key=lambda item: item[0] if item[0] is not None else float("inf")) if timed else found
    out = []
    for sent_at, body in ordered:
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        body.update(stream=True, stream_options={"include_usage": True})
        if model:
            body["model"] = model
        out.append(Replayed(None if sent_at is None or first is None else sent_at - first, body))
    return out


def _requests(capture: Any) -> Iterator[tuple[float | None, dict[str, Any]]]:
    for n, ex in enumerate(capture):
        if n >= MAX_REQUESTS:
            raise CaptureError(f"more than {MAX_REQUESTS:,} requests: split the capture")
        body = ex.request.body if ex.request is not None else None
        if isinstance(body, dict) and isinstance(body.get("messages"), list) and body["messages"]:
            yield ex.sent_at, body


def span_s(entries: list[Replayed], speed: float) -> float:
    """How long the replay's schedule lasts at `speed`."""
    offsets = [e.offset_s for e in entries if e.offset_s is not None]
    return max(offsets, default=0.0) / speed
