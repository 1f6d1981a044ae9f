"""Warm-up/repeat timing loop and the statistics every result reports. Pure.

The loop knows nothing of MPI or devices: the caller injects ``barrier`` (so all
ranks start a repetition together) and ``sync`` (so queued GPU work is inside the
measured interval). Per-rank times are combined by the caller, usually as the
maximum over ranks: a parallel step is as slow as its slowest rank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom; 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


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


@dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements (seconds unless stated)."""

    n: int
    min: float
    max: float
    mean: float
    median: float
    stdev: float
    ci95_low: float
    ci95_high: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict for JSON records."""
        return asdict(self)


def t95(dof: int) -> float:
    """Two-sided 95 % Student t quantile for ``dof`` degrees of freedom."""
    if dof < 1:
        return math.inf
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def summarize(samples: Sequence[float]) -> Stats:
    """Min, max, mean, median, sample standard deviation and the mean's 95 % CI.

    With one sample the deviation is 0 and the interval collapses to the value:
    nothing is invented.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    # By hand rather than with `statistics`, whose import (fractions, decimal, random)
    # every rank would pay at start-up.
    data = sorted(float(s) for s in samples)
    n = len(data)
    mean = math.fsum(data) / n
    median = data[n // 2] if n % 2 else (data[n // 2 - 1] + data[n // 2]) / 2
    stdev = math.sqrt(math.fsum((x - mean) ** 2 for x in data) / (n - 1)) if n > 1 else 0.0
    half = t95(n - 1) * stdev / math.sqrt(n) if n > 1 else 0.0
    return Stats(n, data[0], data[-1], mean, median, stdev, mean - half, mean + half)
