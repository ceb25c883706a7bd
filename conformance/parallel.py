"""Many captures on every core: `chatconf validate -j N` and the Python API's `validate_paths(jobs=N)`.

Files are independent, so each is validated whole in a worker process (fork where the platform has
it), at most a few files ahead of the one being reported: results come back in the order of the paths,
so the output is byte-for-byte what a serial run prints. A single file, or `jobs` 1, runs in-process.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .profiles import Profile

if TYPE_CHECKING:
    from concurrent.futures import Future

_PROFILE: Profile | None = None


def default_jobs() -> int:
    """The cores this process may use (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _init(profile: Profile) -> None:
    global _PROFILE
    _PROFILE = profile


def _one(task: tuple[str, str, bool]) -> Any:
    from .validate import validate_file

    display, fmt, strict = task
    assert _PROFILE is not None
    return validate_file(display, _PROFILE, fmt=fmt, strict=strict, display=display)


def parallel_results(files: Sequence[str], profile: Profile, *, fmt: str, strict: bool, jobs: int) -> Iterator[Any]:
    """FileResults of `files`, in order, computed by `jobs` worker processes."""
    import multiprocessing  # here, not at the top: a one-file run never starts a pool (~20 ms)
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    window = jobs * 4  # enough queued to keep every worker busy, few enough to bound memory
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init,
                             initargs=(profile,)) as pool:
        pending: deque[Future[Any]] = deque()
        tasks = iter(files)
        for path in tasks:
            pending.append(pool.submit(_one, (path, fmt, strict)))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(pool.submit(_one, (nxt, fmt, strict)))
            yield result
