"""Sleeps to absolute deadlines, accurate to tens of microseconds, for the mock's simulated latency.

Event-loop timers are too coarse for a latency simulator: uvloop rounds every delay to whole
milliseconds against a cached clock, so under load token events land up to 2 ms off schedule.
On Linux each event loop gets one timerfd (CLOCK_MONOTONIC, the clock of `time.monotonic`)
armed to its earliest pending deadline; the kernel wakes the loop when that deadline passes and
every sleeper whose deadline has come is released in the same wake-up. One timer for thousands of
streams also costs less than one loop timer per token event. Where timerfd is missing (macOS,
Windows) sleeps fall back to loop timers, re-checked against the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import math
import os
import time
import weakref
from typing import Any

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1
_BATCH_S = 0.0001        # waiters due this soon are released in the same wake-up: a wake-up costs more
                         # CPU than 0.1 ms of accuracy is worth at thousands of events per second
_COARSE_TOLERANCE_S = 0.00005


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerFd:
    """A non-blocking CLOCK_MONOTONIC timerfd set to absolute deadlines (libc through ctypes,
    so it works on every Linux Python; `os.timerfd_*` only exists from 3.13)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime            # AttributeError where there is no timerfd
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        create = libc.timerfd_create
        create.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd: int = fd
        self._spec = _Itimerspec()
        self._ref = ctypes.byref(self._spec)

    def arm(self, deadline: float) -> None:
        """Fire once when time.monotonic() reaches `deadline` (immediately if it already has)."""
        sec = int(deadline)
        value = self._spec.it_value
        value.tv_sec = sec
        value.tv_nsec = int((deadline - sec) * 1e9) or (1 if sec == 0 else 0)   # all zero would disarm
        if self._settime(self.fd, _TFD_TIMER_ABSTIME, self._ref, None) < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def clear(self) -> None:
        """Consume the expiry so the descriptor stops polling readable."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class DeadlineClock:
    """All of one event loop's pending deadlines, in a heap behind one timerfd."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timer: TimerFd):
        self._loop = weakref.ref(loop)   # not a strong ref: `_clocks` must not keep the loop alive
        self._timer = timer
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._armed = math.inf
        loop.add_reader(timer.fd, self._fire)
        self._closer = weakref.finalize(self, timer.close)

    @property
    def pending(self) -> int:
        return len(self._heap)

    def waiter(self, deadline: float) -> asyncio.Future[None] | None:
        """A future that is done at `deadline`, or None if it is due already. Awaiting it straight
        from the stream's loop saves a coroutine frame per event over `await sleep_until()`."""
        if deadline <= time.monotonic() + _BATCH_S:
            return None
        loop = self._loop()
        assert loop is not None, "a clock outlived its event loop"
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (deadline, next(self._order), waiter))
        if deadline < self._armed:
            self._armed = deadline
            self._timer.arm(deadline)
        return waiter   # cancelled waiters stay in the heap and are dropped when their time comes

    def _fire(self) -> None:
        heap = self._heap
        now = time.monotonic() + _BATCH_S
        while heap and heap[0][0] <= now:
            waiter = heapq.heappop(heap)[2]
            if not waiter.done():
                waiter.set_result(None)
        if heap:   # setting the timer again also resets its expiry count: no read() needed
            self._armed = heap[0][0]
            self._timer.arm(self._armed)
        else:
            self._armed = math.inf
            self._timer.clear()


class LoopTimerClock:
    """The fallback without timerfd: one loop timer per sleeper. Loop timers may fire early (uvloop
    rounds to whole ms against a cached clock), so an early one is set again for the remainder."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = weakref.ref(loop)

    def waiter(self, deadline: float) -> asyncio.Future[None] | None:
        if deadline <= time.monotonic() + _COARSE_TOLERANCE_S:
            return None
        loop = self._loop()
        assert loop is not None, "a clock outlived its event loop"
        waiter: asyncio.Future[None] = loop.create_future()
        loop.call_later(deadline - time.monotonic(), self._check, waiter, deadline)
        return waiter

    def _check(self, waiter: asyncio.Future[None], deadline: float) -> None:
        if waiter.done():
            return
        remaining = deadline - time.monotonic()
        if remaining > _COARSE_TOLERANCE_S:
            waiter.get_loop().call_later(remaining, self._check, waiter, deadline)
        else:
            waiter.set_result(None)


Clock = DeadlineClock | LoopTimerClock
_clocks: weakref.WeakKeyDictionary[Any, Clock] = weakref.WeakKeyDictionary()


def clock_for(loop: asyncio.AbstractEventLoop) -> Clock:
    """The loop's clock, made on first use: timerfd-backed where the platform and loop allow."""
    try:
        return _clocks[loop]
    except KeyError:
        pass
    clock: Clock | None = None
    try:
        timer = TimerFd()
    except (AttributeError, OSError, TypeError):   # no timerfd in this libc; no CDLL(None) on Windows
        timer = None
    if timer is not None:
        try:
            clock = DeadlineClock(loop, timer)
        except (NotImplementedError, OSError, ValueError):   # no add_reader (e.g. Windows proactor)
            timer.close()
    if clock is None:
        clock = LoopTimerClock(loop)
    _clocks[loop] = clock
    return clock


async def sleep_until(deadline: float) -> None:
    """Sleep until time.monotonic() reaches `deadline` (returns at once if it has)."""
    if deadline > time.monotonic():
        waiter = clock_for(asyncio.get_running_loop()).waiter(deadline)
        if waiter is not None:
            await waiter
