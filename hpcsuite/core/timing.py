"""Warm-up/repeat timing loop. Pure.

The statistics live in :mod:`hpcsuite.core.stats` (one median, one interval); ``Stats``
and ``summarize`` are re-exported here so existing imports keep working.

The loop knows nothing of MPI or devices: the caller injects ``barrier`` (so all
ranks start a repetition together) and ``sync`` (so queued GPU work is inside the
measured interval). Per-rank times are combined by the caller, usually as the
maximum over ranks: a parallel step is as slow as its slowest rank.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hpcsuite.core.stats import Stats, summarize

__all__ = ["Stats", "measure", "summarize"]


def _nothing() -> None:
    return None


def measure(
    fn: Callable[[], Any],
    *,
    warmup: int = 0,
    repeat: int = 1,
    barrier: Callable[[], None] = _nothing,
    sync: Callable[[], None] = _nothing,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times timed.

    Returns
    -------
    times : list of float
        Seconds per timed repetition, as seen by this process.
    result : object
        What the last call of ``fn`` returned.
    """
    if repeat < 1:
        raise ValueError(f"repeat={repeat!r} must be at least 1")
    result = None
    for _ in range(warmup):
        result = fn()
        sync()
    times = []
    for _ in range(repeat):
        barrier()
        start = clock()
        result = fn()
        sync()
        times.append(clock() - start)
    return times, result
