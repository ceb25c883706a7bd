"""The mock's deadline clock wakes sleepers at their absolute deadlines (never early beyond its
0.1 ms batch), on uvloop and on the standard loop, survives cancellation, goes away with its loop,
and falls back to loop timers where there is no timerfd."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import select
import sys
import time
from collections.abc import Callable

import pytest

from conformance.mock import clock
from conformance.mock.clock import DeadlineClock, LoopTimerClock, TimerFd, clock_for, sleep_until

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux-only")
EARLY_LIMIT_S = 0.0001 + 1e-6   # the clock's batch window
LATE_LIMIT_S = 0.5              # a sanity bound only: tests share the CPU; the benchmark measures accuracy


def loops() -> list[Callable[[], asyncio.AbstractEventLoop]]:
    found: list[Callable[[], asyncio.AbstractEventLoop]] = [asyncio.new_event_loop]
    try:
        import uvloop
    except ImportError:
        return found
    return [*found, uvloop.new_event_loop]


def run(factory: Callable[[], asyncio.AbstractEventLoop], coro_fn: Callable[[], object]) -> object:
    loop = factory()
    try:
        return loop.run_until_complete(coro_fn())   # type: ignore[arg-type]
    finally:
        loop.close()


async def wake_errors(count: int, spread_s: float) -> list[float]:
    """Signed error (woke - deadline) of `count` concurrent sleepers with random deadlines."""
    rng = random.Random(7)
    start = time.monotonic() + 0.005
    deadlines = sorted(start + rng.random() * spread_s for _ in range(count))

    async def one(deadline: float) -> float:
        await sleep_until(deadline)
        return time.monotonic() - deadline

    return list(await asyncio.gather(*(one(d) for d in deadlines)))


@linux_only
@pytest.mark.parametrize("factory", loops(), ids=lambda f: f.__module__.split(".")[0])
def test_sleepers_wake_at_their_deadlines_not_before(factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    errors = run(factory, lambda: wake_errors(300, 0.15))
    assert isinstance(errors, list) and len(errors) == 300
    assert min(errors) >= -EARLY_LIMIT_S
    assert max(errors) < LATE_LIMIT_S
    # How close to the deadline (p90 ~0.06 ms here, 0.8-1.0 ms with loop timers) is for
    # benchmarks/bench_mock.py to measure: under a parallel test run it depends on the machine.


@linux_only
def test_each_loop_gets_its_own_timerfd_clock() -> None:
    async def which() -> object:
        loop = asyncio.get_running_loop()
        assert clock_for(loop) is clock_for(loop)
        return clock_for(loop)

    first, second = run(asyncio.new_event_loop, which), run(asyncio.new_event_loop, which)
    assert isinstance(first, DeadlineClock) and isinstance(second, DeadlineClock)
    assert first is not second


@linux_only
@pytest.mark.parametrize("factory", loops(), ids=lambda f: f.__module__.split(".")[0])
def test_a_closed_loop_takes_its_timer_with_it(factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    """Servers started in-process (tests, `run`) each get a loop: their timerfds must not pile up."""
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def use_clock() -> None:
        await sleep_until(time.monotonic() + 0.002)

    run(factory, use_clock)
    gc.collect()
    before = open_fds()
    for _ in range(5):
        run(factory, use_clock)
    gc.collect()
    assert open_fds() == before


@linux_only
def test_cancelled_sleepers_do_not_disturb_the_others() -> None:
    async def scenario() -> tuple[list[float], int]:
        now = time.monotonic()
        doomed = [asyncio.ensure_future(sleep_until(now + 0.01 + i * 0.001)) for i in range(20)]
        kept = [now + 0.015 + i * 0.001 for i in range(10)]

        async def one(deadline: float) -> float:
            await sleep_until(deadline)
            return time.monotonic() - deadline

        survivors = asyncio.ensure_future(asyncio.gather(*(one(d) for d in kept)))
        await asyncio.sleep(0)
        for task in doomed:
            task.cancel()
        errors = await survivors
        await asyncio.sleep(0.01)   # past every cancelled deadline too
        left = clock_for(asyncio.get_running_loop()).pending   # type: ignore[union-attr]
        return errors, left

    errors, left = run(asyncio.new_event_loop, scenario)   # type: ignore[misc]
    assert all(-EARLY_LIMIT_S <= e < LATE_LIMIT_S for e in errors)
    assert left == 0   # cancelled entries were dropped when their deadlines passed


@linux_only
def test_timer_rearm_clears_the_expiry_so_the_loop_does_not_spin() -> None:
    """The clock skips read() because setting the timer resets its expiry count; if the kernel did
    not, the descriptor would stay readable and the loop would call the clock without end."""
    timer = TimerFd()
    try:
        timer.arm(time.monotonic() + 0.001)
        time.sleep(0.003)
        assert select.select([timer.fd], [], [], 0)[0] == [timer.fd]      # expired: readable
        timer.arm(time.monotonic() + 10)
        assert select.select([timer.fd], [], [], 0)[0] == []               # re-armed: quiet again
        timer.arm(time.monotonic() - 1)                                     # a past deadline fires at once
        assert select.select([timer.fd], [], [], 0.5)[0] == [timer.fd]
        timer.clear()
        assert select.select([timer.fd], [], [], 0)[0] == []
    finally:
        timer.close()


@linux_only
def test_idle_clock_is_not_called_again_and_again() -> None:
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        await sleep_until(time.monotonic() + 0.002)
        found = clock_for(loop)
        assert isinstance(found, DeadlineClock)
        calls = 0
        original = found._fire

        def counting() -> None:
            nonlocal calls
            calls += 1
            original()

        loop.remove_reader(found._timer.fd)
        loop.add_reader(found._timer.fd, counting)
        await asyncio.gather(*(sleep_until(time.monotonic() + 0.002 + i * 0.002) for i in range(5)))
        await asyncio.sleep(0.05)   # idle: nothing pending, the descriptor must stay quiet
        return calls

    calls = run(asyncio.new_event_loop, scenario)
    assert isinstance(calls, int) and 1 <= calls <= 8


def test_without_timerfd_sleeps_fall_back_to_loop_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> TimerFd:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(clock, "TimerFd", unavailable)

    async def scenario() -> tuple[object, list[float]]:
        return clock_for(asyncio.get_running_loop()), await wake_errors(50, 0.05)

    for factory in loops():
        chosen, errors = run(factory, scenario)   # type: ignore[misc]
        assert isinstance(chosen, LoopTimerClock)
        assert min(errors) >= -0.0001 and max(errors) < LATE_LIMIT_S   # early timers are set again


def test_past_deadlines_return_without_suspending() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        past = sleep_until(time.monotonic() - 1)
        with pytest.raises(StopIteration):   # finished on its first step: it never waited
            past.send(None)
        assert clock_for(loop).waiter(time.monotonic()) is None
        assert LoopTimerClock(loop).waiter(time.monotonic()) is None

    run(asyncio.new_event_loop, scenario)
