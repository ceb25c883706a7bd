"""The garbage collector's pace in a load worker: small collections on a clock, not rare big ones.

CPython starts a young collection when allocations minus deallocations pass a threshold. A load
worker frees about as fast as it allocates (streams end as others start), so that count stays low
while the young generation keeps growing with every stream in flight and every sample; a collection
then came every 20-40 s and visited all of it at once. Measured at 1,000 streams per core: pauses
of 48-110 ms, during which no socket was read (TTFT p99 +30 to +150 ms against the server's record).

On a clock, each young collection only sees what the last `YOUNG_EVERY_S` made that is still alive,
and each middle one what survived the last second; both stay near a millisecond at that load. The
old generation is left to CPython's own rule, which the worker's thresholds make rare (what lives
that long is samples and connections, kept to the end anyway). The automatic thresholds stay on as
a backstop for a burst of allocations faster than the clock.
"""

from __future__ import annotations

import gc

import gevent

from conformance.heap import settle_heap

YOUNG_EVERY_S = 0.1
"""Seconds between young-generation collections."""

MIDDLE_EVERY = 10
"""Every this many young collections, the middle generation is collected with them."""


def pace_collections(every_s: float = YOUNG_EVERY_S, middle_every: int = MIDDLE_EVERY) -> None:
    """A greenlet's body: young collections every `every_s`, the middle generation every
    `middle_every`-th time. Runs until killed. `settle_heap` (conformance.heap, re-exported here) at
    test start makes the automatic collections a backstop; vllm bench serve freezes its heap too."""
    n = 0
    while True:
        gevent.sleep(every_s)
        n += 1
        gc.collect(1 if n % middle_every == 0 else 0)


__all__ = ["MIDDLE_EVERY", "YOUNG_EVERY_S", "pace_collections", "settle_heap"]
