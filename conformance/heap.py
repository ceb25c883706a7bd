"""The cyclic garbage collector's settings for a process that runs one long job after its start-up.

Start-up leaves a big heap of long-lived objects (modules, schemas, profiles, compiled rules). Every
full collection walks all of it again, and every young collection is triggered by a count that a
pass over millions of small parsed objects reaches hundreds of times. Frozen, the start-up heap is out
of the collector's sight for good; a higher young threshold makes collections rarer without letting
memory grow, because what such a job allocates per item (parsed JSON, events) is freed by reference
counting as soon as the item is done, not by the collector.
"""

from __future__ import annotations

import gc

BATCH_THRESHOLDS = (50_000, 50, 1000)
"""Young, middle, old thresholds for a batch job or a load worker (CPython's default: 700, 10, 10)."""


def settle_heap(thresholds: tuple[int, int, int] = BATCH_THRESHOLDS, *, collect: bool = True) -> None:
    """Freeze what start-up left and set the thresholds. `collect` first frees start-up garbage (a full
    collection, 5-20 ms): worth it in a long-lived server, not in a command that ends in a second."""
    if collect:
        gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


__all__ = ["BATCH_THRESHOLDS", "settle_heap"]
