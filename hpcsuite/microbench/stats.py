"""Statistics of one message size over iterations and ranks. Pure.

Latencies are in microseconds, bandwidths in MB/s (10^6 B/s, as OSU). For allreduce
the algorithm and bus bandwidth follow nccl-tests: ``algbw = bytes / time`` and
``busbw = algbw * 2 (n - 1) / n``, the bandwidth each link must sustain in a ring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hpcsuite.core import stats as core_stats

#: Bus-bandwidth factors (nccl-tests PERFORMANCE.md) for collectives that have one.
BUS_FACTOR = {
    "allreduce": lambda n: 2 * (n - 1) / n,
    "iallreduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter_block": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "allgatherv": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "alltoallv": lambda n: (n - 1) / n,
    "bcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
}


def describe(samples: Sequence[float]) -> dict[str, float]:
    """min, max, mean, median (with the interval of the median), p99 and (sample) stddev
    of ``samples``: :mod:`hpcsuite.core.stats`, the one statistics module."""
    if not any(math.isfinite(x) for x in samples):
        return {
            k: math.nan
            for k in ("min", "max", "mean", "median", "median_low", "median_high", "p99", "stddev")
        }
    st = core_stats.summarize(samples)
    return {
        "min": st.min,
        "max": st.max,
        "mean": st.mean,
        "median": st.median,
        "median_low": st.low,
        "median_high": st.high,
        "p99": st.p99,
        "stddev": st.stdev,
    }


def latency_row(times_s: Sequence[float], per_rank_means_s: Sequence[float]) -> dict[str, float]:
    """Latency statistics in microseconds.

    Parameters
    ----------
    times_s : sequence of float
        Every timed iteration of every participating rank, in seconds.
    per_rank_means_s : sequence of float
        Each rank's mean: OSU's "Avg/Min/Max Latency" columns are the mean, min and
        max of these, and are kept beside the per-iteration statistics.
    """
    row = {f"{k}_us": v * 1e6 for k, v in describe(times_s).items()}
    means = list(per_rank_means_s)
    row.update(
        avg_us=math.fsum(means) / len(means) * 1e6,
        rank_min_us=min(means) * 1e6,
        rank_max_us=max(means) * 1e6,
    )
    return row


def bandwidth_row(times_s: Sequence[float], nbytes_per_iteration: int) -> dict[str, float]:
    """Bandwidth statistics in MB/s from per-iteration times; ``mbps`` is OSU's figure."""
    rates = [nbytes_per_iteration / t / 1e6 for t in times_s if t > 0]
    row = {f"{k}_mbps": v for k, v in describe(rates).items()}
    total = math.fsum(times_s)
    row["mbps"] = nbytes_per_iteration * len(times_s) / total / 1e6 if total > 0 else math.nan
    return row


def bus_bandwidth(test: str, nbytes: int, seconds: float, ranks: int) -> dict[str, float]:
    """Algorithm and bus bandwidth in GB/s (10^9 B/s) for collectives that define them."""
    if test not in BUS_FACTOR or seconds <= 0:
        return {}
    algbw = nbytes / seconds / 1e9
    return {"algbw_gbps": algbw, "busbw_gbps": algbw * BUS_FACTOR[test](ranks)}


def overlap_percent(pure: float, overall: float, compute: float) -> float:
    """OSU 7.4's overlap: ``max(0, 100 - 100 * (overall - compute) / pure)``, the share
    of the pure communication time hidden behind compute (OSU clips at 0 only)."""
    if pure <= 0:
        return math.nan
    return max(0.0, 100.0 - 100.0 * (overall - compute) / pure)


def tails(per_rank: Sequence[Sequence[float]], percentiles: Sequence[int]) -> list[float]:
    """OSU's ``-z`` tail values: each iteration's value averaged over ranks, sorted
    ascending, and for percentile ``p`` the element at ``round(iterations * p / 100) - 1``.

    Parameters
    ----------
    per_rank : sequence of sequences of float
        Every participating rank's per-iteration values (same length on each).
    percentiles : sequence of int
        E.g. (50, 90, 99), OSU's default.
    """
    if not percentiles:
        return []
    rows = [r for r in per_rank if r]
    if not rows:
        return [math.nan] * len(percentiles)
    n = min(len(r) for r in rows)
    mean = sorted(math.fsum(r[i] for r in rows) / len(rows) for i in range(n))
    # C's round(): halves away from zero (Python's round() would go to even).
    return [mean[min(max(math.floor(n * p / 100 + 0.5) - 1, 0), n - 1)] for p in percentiles]
