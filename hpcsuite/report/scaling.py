"""Scaling math. Pure: plain numbers in, plain numbers out.

Definitions (relative to the smallest rank count ``p0`` of a series, ``q = p / p0``):

* strong scaling (same problem): speedup ``S = T(p0) / T(p)``, ideal ``q``, parallel
  efficiency ``E = S / q``, Karp-Flatt serial fraction ``e = (1/S - 1/q) / (1 - 1/q)``
  (undefined at ``q = 1``);
* weak scaling (same problem per rank): efficiency ``E = T(p0) / T(p)``, relative
  performance ``(W(p) / T(p)) / (W(p0) / T(p0))`` for work ``W`` (ideal ``q``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def speedup(t0: float, t: float) -> float:
    """``T(p0) / T(p)``."""
    return t0 / t if t > 0 else math.nan


def ratio_interval(base: tuple[float, float], point: tuple[float, float]) -> tuple[float, float]:
    """Interval of ``T(p0) / T(p)`` from the intervals of the two medians:
    ``low(p0) / high(p) .. high(p0) / low(p)`` (each end the most extreme ratio the two
    intervals allow, so it is conservative; never negative for non-negative times).
    """
    (b_lo, b_hi), (p_lo, p_hi) = base, point
    low = b_lo / p_hi if p_hi > 0 else math.nan
    high = b_hi / p_lo if p_lo > 0 else math.inf
    return low, high


def efficiency(s: float, q: float) -> float:
    """Parallel efficiency of speedup ``s`` at ``q`` times the base ranks."""
    return s / q if q > 0 else math.nan


def karp_flatt(s: float, q: float) -> float | None:
    """Experimentally determined serial fraction; None where undefined (``q <= 1``)."""
    if q <= 1 or s <= 0 or not math.isfinite(s):
        return None
    return (1 / s - 1 / q) / (1 - 1 / q)


def strong(ranks: Sequence[int], times: Sequence[float]) -> list[dict[str, float | None]]:
    """Speedup, ideal, efficiency and Karp-Flatt per point, base = fewest ranks."""
    order = sorted(range(len(ranks)), key=lambda i: ranks[i])
    p0, t0 = ranks[order[0]], times[order[0]]
    rows = []
    for i in order:
        q = ranks[i] / p0
        s = speedup(t0, times[i])
        rows.append(
            {
                "ranks": ranks[i],
                "speedup": s,
                "ideal": q,
                "efficiency": efficiency(s, q),
                "karp_flatt": karp_flatt(s, q),
            }
        )
    return rows


def weak(
    ranks: Sequence[int], times: Sequence[float], work: Sequence[float]
) -> list[dict[str, float]]:
    """Weak-scaling efficiency and relative performance per point, base = fewest ranks."""
    order = sorted(range(len(ranks)), key=lambda i: ranks[i])
    b = order[0]
    rate0 = work[b] / times[b] if times[b] > 0 else math.nan
    rows = []
    for i in order:
        rate = work[i] / times[i] if times[i] > 0 else math.nan
        rows.append(
            {
                "ranks": ranks[i],
                "efficiency": speedup(times[b], times[i]),
                "relative_performance": rate / rate0,
                "ideal": ranks[i] / ranks[b],
            }
        )
    return rows
