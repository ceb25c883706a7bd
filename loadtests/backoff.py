"""Per-user backoff after answers that say "not now": connection refused or reset, HTTP 429 and 503.

Without it a closed-loop user re-sends the instant a request fails, so a dead or rate-limited
target turns into thousands of requests per second of connect errors (and a target that asked for
`Retry-After: 1` gets hammered). A user honours `Retry-After` (seconds or an HTTP date, capped),
else waits an exponentially growing, jittered delay that resets on the next success. The wait
happens between requests, never inside one, so it is never part of a latency sample.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

from conformance.exchange import Exchange

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
RETRY_AFTER_CAP_S = 30.0
RETRY_STATUSES = frozenset({429, 503})
# transport errors that mean "nobody is serving right now" (as the load client names them)
RETRY_ERRORS = ("ConnectionRefusedError", "ConnectionResetError", "ConnectionAbortedError", "BrokenPipeError")


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date); None when absent or
    unreadable. Never negative."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def should_back_off(ex: Exchange) -> bool:
    """True for a 429/503 answer or a refused/reset connection (the target cannot take this now)."""
    if ex.status in RETRY_STATUSES:
        return True
    return ex.status is None and bool(ex.transport_error) and ex.transport_error.startswith(RETRY_ERRORS)


class Backoff:
    """One user's backoff state: `delay_after` says how long to wait before its next request."""

    def __init__(self, seed: int = 0, *, first_s: float = BACKOFF_FIRST_S, max_s: float = BACKOFF_MAX_S):
        self._rng = random.Random(seed)
        self._first = first_s
        self._max = max_s
        self._next = first_s

    def delay_after(self, ex: Exchange) -> float:
        """0 after an ordinary answer; after a retryable one, `Retry-After` (capped) or the next
        jittered exponential step (half of the step fixed, half random: waits never collapse to 0)."""
        if not should_back_off(ex):
            if ex.status is not None and ex.status < 400 and not ex.transport_error:
                self._next = self._first  # a success: the target is back
            return 0.0
        asked = retry_after_s(ex.headers.get("retry-after")) if ex.status is not None else None
        if asked is not None:
            return min(asked, RETRY_AFTER_CAP_S)
        step = self._next
        self._next = min(step * 2, self._max)
        return step / 2 + self._rng.uniform(0, step / 2)


__all__ = ["Backoff", "retry_after_s", "should_back_off"]
