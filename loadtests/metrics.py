"""Streaming latency metrics as pure functions of an Exchange's timestamps (DESIGN.md definitions).

Every anchor is an SSE event's `t_ns` (perf_counter_ns at the arrival of its first byte, taken by
the client before any parsing) or the Exchange's `t_send_ns` / `t_end_ns`. Nothing here reads a
clock, so the same functions score live load tests, recordings and hand-made test streams.

Anchors (research/loadtest-anchors.md section 6):
- first event: first SSE data event of any kind (DashScope's empty role chunk);
- first token: first event with non-empty `delta.content`, `delta.reasoning_content`/`reasoning`
  or a `delta.tool_calls` fragment (id, name or arguments); role-only and usage-only chunks do not
  count;
- first content: first non-empty `content` or `tool_calls` (what a user sees);
- last token, usage chunk, and `[DONE]` / stream end.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.exchange import Exchange

NS_PER_MS = 1_000_000


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _tool_fragment(tool_calls: Any) -> bool:
    """A tool_calls delta carries output when some entry has an id, a name or an arguments piece."""
    if not isinstance(tool_calls, list):
        return False
    for call in tool_calls:
        if not isinstance(call, dict):
            continue
        if _nonempty_str(call.get("id")):
            return True
        fn = call.get("function")
        if isinstance(fn, dict) and (_nonempty_str(fn.get("name")) or _nonempty_str(fn.get("arguments"))):
            return True
    return False


def classify_chunk(chunk: Any) -> tuple[bool, bool]:
    """(token-bearing, user-visible) for one parsed chunk.

    Token-bearing: any choice's delta has content, reasoning (`reasoning_content` or `reasoning`) or
    a tool-call fragment. Visible: content or a tool-call fragment (reasoning is not shown).
    """
    if not isinstance(chunk, dict):
        return False, False
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False, False
    token = visible = False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            continue
        if _nonempty_str(delta.get("content")) or _tool_fragment(delta.get("tool_calls")):
            return True, True
        if _nonempty_str(delta.get("reasoning_content")) or _nonempty_str(delta.get("reasoning")):
            token = True
    return token, visible


def _error_of(chunk: Any) -> dict[str, Any] | None:
    """A mid-stream error event: `{"error": {...}}` (or a bare code/message object without choices)."""
    if not isinstance(chunk, dict):
        return None
    err = chunk.get("error")
    if isinstance(err, dict):
        return err
    if err is not None:
        return {"message": str(err)}
    return None


def error_code_of(body: Any) -> str | None:
    """The `code` (or `type`) of an OpenAI-style error envelope, as a string."""
    err = _error_of(body)
    if err is None:
        return None
    code = err.get("code") or err.get("type")
    return str(code) if code not in (None, "") else None


@dataclass(slots=True)
class StreamMetrics:
    """What one streamed request measured. Times in ms from t_send (or t_sched for the queue_* ones)."""

    ok: bool = False
    status: int | None = None
    error: str | None = None  # errors_by_code key: "429", "stream_error", "dropped", ...
    error_code: str | None = None  # provider error code when one was given
    first_event_ms: float | None = None
    ttft_ms: float | None = None
    first_content_ms: float | None = None
    e2e_ms: float | None = None
    e2e_stream_ms: float | None = None
    tpot_ms: float | None = None
    headers_ms: float | None = None
    usage_lag_ms: float | None = None
    queue_ms: float | None = None  # t_send - t_sched (open loop send lag)
    queue_ttft_ms: float | None = None
    queue_e2e_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    events: int = 0
    token_events: int = 0
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    reasoning_tokens: int | None = None
    done: bool = False

    @property
    def tokens_per_event(self) -> float | None:
        """(N_out - 1) / (token events - 1): above 1 means the server packs tokens into events."""
        if self.completion_tokens is None or self.token_events < 2 or self.completion_tokens < 2:
            return None
        return (self.completion_tokens - 1) / (self.token_events - 1)


def _ms(t: int | None, t0: int | None) -> float | None:
    if t is None or t0 is None:
        return None
    return (t - t0) / NS_PER_MS


def _usage_of(chunk: Any) -> dict[str, Any] | None:
    if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
        return chunk["usage"]
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tpot_ms(t_first_token_ns: int | None, t_last_token_ns: int | None, completion_tokens: int | None) -> float | None:
    """(last token event - first token event) / (completion_tokens - 1); None when N < 2."""
    if t_first_token_ns is None or t_last_token_ns is None or completion_tokens is None:
        return None
    if completion_tokens < 2:
        return None
    return (t_last_token_ns - t_first_token_ns) / NS_PER_MS / (completion_tokens - 1)


def itl_gaps_ms(token_times_ns: Sequence[int]) -> list[float]:
    """Gaps between consecutive token-bearing events (one per event, never per token)."""
    return [(b - a) / NS_PER_MS for a, b in itertools.pairwise(token_times_ns)]


def stream_metrics(ex: Exchange, t_sched_ns: int | None = None) -> StreamMetrics:
    """Score one Exchange. Success = 2xx, an event stream, no error event, ended by `[DONE]`."""
    m = StreamMetrics(status=ex.status)
    t0 = ex.t_send_ns
    m.headers_ms = _ms(ex.t_headers_ns, t0)
    if t_sched_ns is not None and t0 is not None:
        m.queue_ms = (t0 - t_sched_ns) / NS_PER_MS

    if ex.status is None:
        m.error = "timeout" if ex.transport_error and "timed out" in ex.transport_error.lower() else "connect_error"
        return m
    if ex.status >= 400:
        m.error = str(ex.status)
        m.error_code = error_code_of(ex.body)
        if m.error_code is None and ex.events is not None:
            for ev in ex.iter_events():
                m.error_code = error_code_of(ev.json)
                if m.error_code:
                    break
        return m
    if ex.events is None:
        m.error = "not_stream"
        return m

    token_times: list[int] = []
    t_first_event = t_first_token = t_first_visible = t_usage = t_done = None
    stream_error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    for ev in ex.iter_events():
        m.events += 1
        if t_first_event is None:
            t_first_event = ev.t_ns
        if ev.is_done:
            t_done = ev.t_ns
            m.done = True
            continue
        chunk = ev.json
        err = _error_of(chunk)
        if err is not None and stream_error is None:
            stream_error = err
        token, visible = classify_chunk(chunk)
        if token:
            token_times.append(ev.t_ns)
            if t_first_token is None:
                t_first_token = ev.t_ns
            if visible and t_first_visible is None:
                t_first_visible = ev.t_ns
        got = _usage_of(chunk)
        if got is not None:
            usage = got
            t_usage = ev.t_ns

    m.token_events = len(token_times)
    m.first_event_ms = _ms(t_first_event, t0)
    m.ttft_ms = _ms(t_first_token, t0)
    m.first_content_ms = _ms(t_first_visible, t0)
    t_last_token = token_times[-1] if token_times else None
    m.e2e_ms = _ms(t_last_token, t0)
    t_stream_end = t_done if t_done is not None else ex.t_end_ns
    m.e2e_stream_ms = _ms(t_stream_end, t0)
    m.itl_ms = itl_gaps_ms(token_times)
    if usage is not None:
        m.completion_tokens = _int_or_none(usage.get("completion_tokens"))
        m.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict):
            m.reasoning_tokens = _int_or_none(details.get("reasoning_tokens"))
        if t_usage is not None and t_last_token is not None:
            m.usage_lag_ms = (t_usage - t_last_token) / NS_PER_MS
    m.tpot_ms = tpot_ms(t_first_token, t_last_token, m.completion_tokens)
    if t_sched_ns is not None:
        m.queue_ttft_ms = _ms(t_first_token, t_sched_ns)
        m.queue_e2e_ms = _ms(t_last_token, t_sched_ns)

    if stream_error is not None:
        m.error = "stream_error"
        code = stream_error.get("code") or stream_error.get("type")
        m.error_code = str(code) if code not in (None, "") else None
    elif not m.done:
        m.error = "dropped"
    else:
        m.ok = True
    return m
