"""Load verdicts (lost workers, error storm, zero completed) and per-user backoff, as pure functions.
The same behaviour end to end, with real Locust processes, is in test_load_cli.py."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from conformance.exchange import Exchange
from loadtests.backoff import BACKOFF_FIRST_S, BACKOFF_MAX_S, RETRY_AFTER_CAP_S, Backoff, retry_after_s
from loadtests.verdicts import (
    ERROR_STORM_MIN_FAILURES,
    error_storm,
    lost_workers,
    run_verdicts,
    zero_completed,
)


def answer(status: int | None, *, retry_after: str | None = None, transport_error: str | None = None) -> Exchange:
    ex = Exchange(status=status, headers={"retry-after": retry_after} if retry_after else {})
    ex.transport_error = transport_error
    return ex


REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1.0), ("2.5", 2.5), ("0", 0.0), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_seconds(value, expected):
    assert retry_after_s(value) == expected


def test_retry_after_http_date_is_the_time_left_until_it():
    now = time.time()
    assert retry_after_s(formatdate(now + 20, usegmt=True), now=now) == pytest.approx(20, abs=1)
    assert retry_after_s(formatdate(now - 60, usegmt=True), now=now) == 0.0


def test_429_waits_what_retry_after_asks_capped():
    backoff = Backoff(seed=1)
    assert backoff.delay_after(answer(429, retry_after="1")) == 1.0
    assert backoff.delay_after(answer(503, retry_after="3600")) == RETRY_AFTER_CAP_S


def test_refused_connections_back_off_exponentially_with_jitter_and_reset_on_success():
    backoff = Backoff(seed=2)
    waits = [backoff.delay_after(answer(None, transport_error=REFUSED)) for _ in range(10)]
    steps = [min(BACKOFF_FIRST_S * 2**k, BACKOFF_MAX_S) for k in range(10)]  # 0.1, 0.2, ... 3.2, 5, 5
    assert all(step / 2 <= wait <= step for wait, step in zip(waits, steps, strict=True))
    assert len(set(waits)) == len(waits)  # jittered
    assert backoff.delay_after(answer(200)) == 0.0
    assert backoff.delay_after(answer(None, transport_error=REFUSED)) <= 0.1  # reset by the success


def test_other_failures_neither_wait_nor_reset():
    backoff = Backoff(seed=3)
    for _ in range(4):
        backoff.delay_after(answer(429))
    assert backoff.delay_after(answer(500)) == 0.0
    assert backoff.delay_after(answer(None, transport_error="TimeoutError: timed out")) == 0.0
    assert backoff.delay_after(answer(429)) >= 0.8  # still the fifth step


def sample(t: float, ok: bool, error: str = "connect_error") -> dict:
    return {"t": t, "ok": ok, "status": None, "error": None if ok else error, "error_code": None}


def test_a_target_dying_mid_run_is_an_error_storm_though_most_requests_succeeded():
    """1000 successes in 10 s, then the target is gone: 30 failures in its last 5 s (3% overall)."""
    samples = [sample(100 + i * 0.01, True) for i in range(1000)]
    samples += [sample(110 + i * 0.15, False) for i in range(30)]
    verdict = error_storm(samples, started=100, duration_s=15)
    assert verdict is not None and verdict["name"] == "error_storm"
    assert verdict["failures"] == 30 and verdict["requests"] == 1030
    assert verdict["worst_window"]["failures"] == 30 and verdict["worst_window"]["start_s"] >= 9.9
    assert "30 of 1030" in verdict["message"] and "connect_error" in verdict["message"]


def test_scattered_failures_are_no_storm():
    samples = [sample(i * 0.01, i % 20 != 0) for i in range(2000)]  # 5% failed, evenly
    assert error_storm(samples, started=0, duration_s=20) is None
    few = [sample(i, False) for i in range(ERROR_STORM_MIN_FAILURES - 1)]
    assert error_storm(few, started=0, duration_s=10) is None


def test_zero_completed_names_what_happened():
    hung = zero_completed([], in_flight=4, duration_s=3.0)
    assert hung is not None and "no request finished" in hung["message"] and "4 were in flight" in hung["message"]
    failed = zero_completed([sample(0, False, "500")], in_flight=0, duration_s=1.0)
    assert failed is not None and "all 1 finished requests failed" in failed["message"]
    assert zero_completed([sample(0, True)], in_flight=0, duration_s=1.0) is None


def test_lost_workers_say_expected_reporting_and_users_running():
    verdict = lost_workers(expected=2, reporting=[1], lost=[0], users=10, users_running=5)
    assert verdict is not None
    assert (verdict["expected"], verdict["reporting"], verdict["lost"]) == (2, 1, [0])
    assert "1 of 2 workers" in verdict["message"] and "5 of 10 users" in verdict["message"]
    assert lost_workers(expected=2, reporting=[0, 1], lost=[], users=10, users_running=10) is None


def test_a_clean_run_has_no_verdicts():
    samples = [sample(i * 0.1, True) for i in range(50)]
    workers = {"expected": 2, "reporting": [0, 1], "lost": [], "users": 4, "users_running": 4}
    assert run_verdicts(samples, started=0, duration_s=5, in_flight=0, workers=workers) == []
