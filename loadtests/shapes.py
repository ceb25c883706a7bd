"""Load shapes beyond Locust's closed loop: open-loop arrivals and a request budget.

Closed loop is Locust's own model (N users, each sends its next request when the last one ends).
Open loop: a scheduler greenlet per region puts "tickets" stamped with the *intended* send time
on a queue at a constant or Poisson rate; users (at most --users in flight) take tickets. When
the target is slower than the arrival rate the tickets wait, and latency measured from the
intended time (queue_ttft_ms, queue_e2e_ms) shows it: coordinated omission stays visible.

The schedule is absolute (t0 + sum of gaps), so a late wake-up never shifts later arrivals.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import gevent
from gevent.queue import Empty, Queue

perf_ns = time.perf_counter_ns


def arrival_offsets_ns(rate: float, arrivals: str, rng: random.Random, *, phase: float = 0.0) -> Iterator[int]:
    """Offsets (ns from t0) of the arrivals of one process: constant spacing or Poisson gaps."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    t = phase / rate
    while True:
        yield int(t * 1e9)
        t += (1.0 / rate) if arrivals == "constant" else rng.expovariate(rate)


class OpenLoop:
    """Per-region ticket queues fed at `rate_per_region` requests/s by scheduler greenlets."""

    def __init__(self, regions: list[str], rate_per_region: float, arrivals: str, *, seed: int = 0, phase: float = 0.0):
        self.queues: dict[str, Queue] = {r: Queue() for r in regions}
        self.rate = rate_per_region
        self.arrivals = arrivals
        self.seed = seed
        self.phase = phase
        self.scheduled = 0
        self._greenlets: list[gevent.Greenlet] = []

    def start(self) -> None:
        t0 = perf_ns()
        for i, region in enumerate(self.queues):
            rng = random.Random(self.seed * 7919 + i)
            self._greenlets.append(gevent.spawn(self._run, region, t0, rng))

    def _run(self, region: str, t0: int, rng: random.Random) -> None:
        queue = self.queues[region]
        for offset in arrival_offsets_ns(self.rate, self.arrivals, rng, phase=self.phase):
            due = t0 + offset
            delay = (due - perf_ns()) / 1e9
            if delay > 0:
                gevent.sleep(delay)
            queue.put(due)
            self.scheduled += 1

    def take(self, region: str, timeout: float = 1.0) -> int | None:
        """The intended send time (perf_counter_ns) of the next arrival, or None on timeout."""
        try:
            return self.queues[region].get(timeout=timeout)
        except Empty:
            return None

    def backlog(self) -> int:
        return sum(q.qsize() for q in self.queues.values())

    def stop(self) -> None:
        for g in self._greenlets:
            g.kill(block=False)
        self._greenlets.clear()


class ReplayLoop:
    """Captured requests put on one ticket queue at their captured offsets, scaled by `speed`: the
    same open loop as OpenLoop, with the schedule and the bodies read from a capture (loadtests/replay.py).
    Untimed requests are queued at once and sent as fast as the users free up (no intended time)."""

    def __init__(self, entries: list, speed: float = 1.0):
        self.entries = entries
        self.speed = speed
        self.queue: Queue = Queue()
        self.scheduled = 0
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run, perf_ns())

    def _run(self, t0: int) -> None:
        for entry in self.entries:
            if entry.offset_s is None:
                self.queue.put((None, entry.body))
            else:
                due = t0 + int(entry.offset_s / self.speed * 1e9)
                delay = (due - perf_ns()) / 1e9
                if delay > 0:
                    gevent.sleep(delay)
                self.queue.put((due, entry.body))
            self.scheduled += 1

    def take(self, timeout: float = 1.0) -> tuple[int | None, dict] | None:
        """(intended send time or None, the request body) of the next captured request, or None."""
        try:
            return self.queue.get(timeout=timeout)
        except Empty:
            return None

    def backlog(self) -> int:
        return self.queue.qsize()

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None


class Budget:
    """At most `limit` requests from this process; `on_done` fires once all of them finished."""

    def __init__(self, limit: int | None, on_done: Callable[[], None]):
        self.limit = limit
        self.taken = 0
        self.finished = 0
        self._on_done = on_done
        self._fired = False

    def take(self) -> bool:
        if self.limit is not None and self.taken >= self.limit:
            self._check()
            return False
        self.taken += 1
        return True

    def release(self) -> None:
        self.finished += 1
        self._check()

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.taken >= self.limit

    def _check(self) -> None:
        if self.exhausted and self.finished >= self.taken and not self._fired:
            self._fired = True
            self._on_done()


def share(total: int | float, index: int, count: int) -> int | float:
    """This worker's part of a total split over `count` workers (integers: remainders go first)."""
    if isinstance(total, int):
        base, extra = divmod(total, count)
        return base + (1 if index < extra else 0)
    return total / count


class LagMonitor:
    """A greenlet that sleeps `interval` s and records how late it wakes: the event loop's lag.

    When the generator is saturated (CPU-bound, or a greenlet hogging the loop) every socket read
    is late by about this much, so it bounds the timing error the harness adds.
    """

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.lag_ms: list[float] = []
        self.cpu: list[float] = []
        self._g: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._g is None:
            self._g = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            import psutil

            proc = psutil.Process()
            proc.cpu_percent(None)
        except Exception:  # psutil ships with Locust; without it CPU is simply not reported
            proc = None
        last_cpu = time.monotonic()
        while True:
            t0 = perf_ns()
            gevent.sleep(self.interval)
            self.lag_ms.append(max(0.0, (perf_ns() - t0) / 1e6 - self.interval * 1000))
            if proc is not None and time.monotonic() - last_cpu >= 1.0:
                last_cpu = time.monotonic()
                self.cpu.append(proc.cpu_percent(None))

    def drain(self) -> tuple[list[float], list[float]]:
        lag, cpu = self.lag_ms, self.cpu
        self.lag_ms, self.cpu = [], []
        return lag, cpu

    def stop(self) -> None:
        if self._g is not None:
            self._g.kill(block=False)
            self._g = None
