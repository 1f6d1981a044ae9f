"""The one statistics module: medians, percentiles, the interval of the median, rates
and the comparison of two sets of timings. Pure; imports only NumPy and ``math``
(every rank imports it, so nothing heavier such as SciPy or ``statistics``).

Why the median and an order-statistic interval
----------------------------------------------
Timings are skewed (a run cannot be faster than the hardware, but can be slowed by
anything) and often bimodal (turbo, placement, a noisy neighbour). A mean and its
Student-t interval assume neither: the interval can go below zero and need not
contain the median printed beside it. The interval used here is distribution-free:
for ``n`` independent samples the number below the true median is Binomial(n, 1/2),
so the order statistics ``x(j+1) .. x(n-j)`` cover the median with probability
``1 - 2 P(B <= j)``, exactly (continuous data). It is made of observed values, so it
is never negative for non-negative data and it always contains the sample median.
With too few samples for the requested confidence (fewer than 6 at 95 %) it widens
to ``[min, max]`` and ``Stats.confidence`` states the lower coverage achieved.

A figure of merit ``work / time`` is computed from the same median, and its interval
is ``work / high .. work / low`` (a monotone map of an order-statistic interval is
the order-statistic interval of the mapped values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

#: Confidence the report and the records use unless told otherwise.
DEFAULT_CONFIDENCE = 0.95


def _array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Finite float64 values (NaN and infinities are not measurements)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _quantiles(a: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Quantiles ``qs`` (fractions) of sorted ``a``: NumPy's default ``linear`` method.

    Written out rather than calling ``np.percentile``/``np.median``, whose first call
    imports ``numpy.ma`` (20-40 ms, about a tenth of a small job's overhead over a
    hand-written mpi4py program); the values are bitwise NumPy's (tested).
    """
    n = a.size
    out = []
    for q in qs:
        v = (n - 1) * q
        lo = math.floor(v)
        hi = min(lo + 1, n - 1)
        g = v - lo
        x, y = a[lo], a[hi]
        d = y - x
        # NumPy's lerp: from the nearer end, so that g = 0 and g = 1 give x and y exactly.
        out.append(float(y - d * (1 - g) if g >= 0.5 else x + d * g))
    return out


def _median_sorted(a: np.ndarray) -> float:
    """The median of sorted, non-empty ``a``, as ``np.median`` computes it."""
    n = a.size
    if n % 2:
        return float(a[n // 2])
    return float((a[n // 2 - 1] + a[n // 2]) / 2)


def median(values: Sequence[float] | np.ndarray) -> float:
    """The median (mean of the two middle values when their number is even).

    Raises
    ------
    ValueError
        When there is no finite value.
    """
    a = _array(values)
    if a.size == 0:
        raise ValueError("no finite values: the median is undefined")
    return _median_sorted(np.sort(a))


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0..100), NumPy's linear interpolation.

    Raises
    ------
    ValueError
        When there is no finite value or ``q`` is outside 0..100.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q!r} must be within 0..100")
    a = _array(values)
    if a.size == 0:
        raise ValueError("no finite values: percentiles are undefined")
    return _quantiles(np.sort(a), [q / 100])[0]


def _binomial_half_cdf(n: int) -> np.ndarray:
    """``P(B <= j)`` for ``j = 0..n``, ``B ~ Binomial(n, 1/2)``, in log space (no overflow)."""
    j = np.arange(1, n + 1, dtype=np.float64)
    log_comb = np.concatenate(([0.0], np.cumsum(np.log(n - j + 1) - np.log(j))))
    pmf = np.exp(log_comb - n * math.log(2.0))
    return np.minimum(np.cumsum(pmf), 1.0)


def _interval_rank(n: int, confidence: float) -> tuple[int, float]:
    """Largest ``j`` whose interval ``x[j] .. x[n-1-j]`` (0-based) reaches ``confidence``,
    and the coverage it has; ``(0, coverage of [min, max])`` when none does."""
    if n < 2:
        return 0, 0.0
    cdf = _binomial_half_cdf(n)
    coverage = 1.0 - 2.0 * cdf[: (n - 1) // 2 + 1]  # j = 0 .. floor((n-1)/2): nonincreasing
    ok = np.nonzero(coverage >= confidence - 1e-12)[0]
    j = int(ok[-1]) if ok.size else 0
    return j, float(max(coverage[j], 0.0))


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be a fraction such as 0.95")


def median_interval(
    values: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics.

    Parameters
    ----------
    values : sequence of float
        Independent samples (NaN and infinities are ignored).
    confidence : float
        Requested coverage, e.g. 0.95.

    Returns
    -------
    (low, high) : tuple of float
        Observed values with ``low <= median <= high``. With too few samples to reach
        ``confidence`` this is ``(min, max)`` (see :func:`summarize` for the coverage
        it has); with one sample it is that sample twice.
    """
    _check_confidence(confidence)
    a = np.sort(_array(values))
    if a.size == 0:
        raise ValueError("no finite values: the median interval is undefined")
    j, _ = _interval_rank(a.size, confidence)
    return float(a[j]), float(a[a.size - 1 - j])


class Stats(NamedTuple):
    """Summary of repeated measurements (seconds unless stated).

    ``low``/``high`` is the interval of the **median** (not of the mean); ``confidence``
    is the coverage that interval actually has (the requested one, or less when there
    were too few samples, 0 for one sample); ``method`` says how it was obtained.
    """

    n: int
    min: float
    max: float
    mean: float
    median: float
    stdev: float
    p05: float
    p95: float
    p99: float
    low: float
    high: float
    confidence: float
    method: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON records."""
        return self._asdict()


def summarize(
    samples: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> Stats:
    """Min, max, mean, median, sample standard deviation, percentiles and the
    interval of the median (:func:`median_interval`).

    Raises
    ------
    ValueError
        When there is no finite sample.
    """
    _check_confidence(confidence)
    a = np.sort(_array(samples))
    n = int(a.size)
    if n == 0:
        raise ValueError("no samples to summarize")
    med = _median_sorted(a)
    p05, p95, p99 = _quantiles(a, [0.05, 0.95, 0.99])
    stdev = float(np.std(a, ddof=1)) if n > 1 else 0.0
    if n == 1:
        low = high = med
        coverage, method = 0.0, "single sample: no interval"
    else:
        j, coverage = _interval_rank(n, confidence)
        low, high = float(a[j]), float(a[n - 1 - j])
        if coverage + 1e-12 >= confidence:
            method = f"order statistics {j + 1} and {n - j} of {n} (binomial, exact)"
        else:
            method = (
                f"min..max: {n} samples are too few for {100 * confidence:g} % "
                f"(covers {100 * coverage:.1f} %)"
            )
    return Stats(
        n=n,
        min=float(a[0]),
        max=float(a[-1]),
        mean=float(np.mean(a)),
        median=med,
        stdev=stdev,
        p05=p05,
        p95=p95,
        p99=p99,
        low=low,
        high=high,
        confidence=coverage,
        method=method,
    )


def rate_interval(work: float, stats: Stats) -> tuple[float, float, float]:
    """A figure of merit ``work / time`` from the median time, with its interval.

    Returns
    -------
    (value, low, high) : tuple of float
        ``work / median``, ``work / stats.high``, ``work / stats.low``; infinite where
        a time is zero, NaN where ``work`` is not finite.
    """

    def rate(t: float) -> float:
        if not math.isfinite(work) or not math.isfinite(t) or t < 0:
            return math.nan
        return work / t if t > 0 else math.inf

    return rate(stats.median), rate(stats.high), rate(stats.low)


def scale_interval(factor: float, stats: Stats) -> tuple[float, float, float]:
    """A figure of merit proportional to time (e.g. latency in us): ``factor * median``
    with ``factor * low .. factor * high``."""
    return factor * stats.median, factor * stats.low, factor * stats.high


class Comparison(NamedTuple):
    """Outcome of :func:`compare`: the verdict with the numbers behind it."""

    verdict: str  # "faster" | "slower" | "no significant change"
    old_median: float
    new_median: float
    change: float  # new / old - 1 of the medians (NaN when old is 0)
    p_value: float
    alpha: float
    n_old: int
    n_new: int
    method: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return self._asdict()


def _exact_u_null(m: int, n: int) -> np.ndarray:
    """Counts of each U = 0..m*n over all C(m+n, m) arrangements (no ties).

    Recurrence on the largest value: it belongs to the first sample (adds n to U) or
    to the second (adds nothing).
    """
    # table[i][k] = counts for sizes (i, k); build row by row over i.
    prev = [np.ones(1) for _ in range(n + 1)]  # i = 0: U = 0 only
    for i in range(1, m + 1):
        cur = [np.ones(1)]  # k = 0: U = 0
        for k in range(1, n + 1):
            a = np.zeros(i * k + 1)
            take_first = prev[k]  # largest from sample 1: U grows by k
            a[k : k + take_first.size] += take_first
            take_second = cur[k - 1]
            a[: take_second.size] += take_second
            cur.append(a)
        prev = cur
    return prev[n]


def _exact_tied_p(ranks2: np.ndarray, m: int) -> float:
    """Two-sided exact p-value of the rank sum of the first ``m`` of ``ranks2`` (doubled
    mid-ranks, integers) over every choice of ``m`` of them: ``P(|W - E| >= |w - E|)``."""
    total_n = ranks2.size
    top = int(ranks2.sum()) + 1
    # ways[k, s]: subsets of k of the values seen so far whose doubled ranks sum to s
    # (float64 counts are exact up to 2**53; C(60, 30) ~ 1.2e17 is past that only in the
    # last digits, far below what moves a p-value).
    ways = np.zeros((m + 1, top))
    ways[0, 0] = 1.0
    for r in ranks2:
        r = int(r)
        ways[1:, r:] = ways[1:, r:] + ways[:-1, : top - r]
    dist = ways[m]
    w = int(ranks2[:m].sum())
    centre = m * (total_n + 1)  # E[W] in doubled ranks
    dev = np.abs(np.arange(top) - centre)
    extreme = dist[dev >= abs(w - centre)].sum()
    return float(min(1.0, extreme / dist.sum()))


def _normal_sf(z: float) -> float:
    """Upper tail of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
) -> tuple[float, float, str]:
    """Two-sided Mann-Whitney U test that ``x`` and ``y`` come from one distribution.

    Returns
    -------
    (u, p_value, method) : tuple
        ``u`` counts pairs with ``x > y`` (ties count 1/2). The p-value is exact when
        there are no ties and ``len(x) * len(y) <= 400``, or with ties and at most 60
        values in all (counted over every arrangement of the tied ranks), else the
        normal approximation with tie and continuity corrections.
    """
    a, b = _array(x), _array(y)
    m, n = a.size, b.size
    if m == 0 or n == 0:
        return math.nan, 1.0, "no samples"
    both = np.concatenate((a, b))
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(m + n)
    sorted_vals = both[order]
    # Mid-ranks for ties.
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    u = float(ranks[:m].sum() - m * (m + 1) / 2.0)
    ties = bool(np.any(counts > 1))
    if not ties and m * n <= 400:
        dist = _exact_u_null(m, n)
        total = dist.sum()
        k = int(round(u))
        lower = dist[: k + 1].sum() / total
        upper = dist[k:].sum() / total
        return u, float(min(1.0, 2 * min(lower, upper))), "Mann-Whitney U, exact"
    if m + n <= 60:
        # Ties in few samples (timer resolution): the normal approximation would call
        # 3 against 3 significant, which no arrangement of 6 values can be. Count instead.
        p = _exact_tied_p((2 * ranks).round().astype(np.int64), m)
        return u, p, "Mann-Whitney U, exact with ties"
    mu = m * n / 2.0
    tie_term = float(np.sum(counts**3 - counts)) / ((m + n) * (m + n - 1)) if m + n > 1 else 0.0
    var = m * n / 12.0 * ((m + n + 1) - tie_term)
    if var <= 0:
        return u, 1.0, "Mann-Whitney U (all values equal)"
    z = (abs(u - mu) - 0.5) / math.sqrt(var)
    return u, float(min(1.0, 2 * _normal_sf(max(z, 0.0)))), "Mann-Whitney U, normal approximation"


def compare(
    old: Sequence[float] | np.ndarray,
    new: Sequence[float] | np.ndarray,
    *,
    higher_is_better: bool = False,
    alpha: float = 0.05,
    min_change: float = 0.0,
) -> Comparison:
    """Did ``new`` get faster or slower than ``old``? A rank test, not medians alone.

    Parameters
    ----------
    old, new : sequence of float
        Samples of the same quantity (times, or rates when ``higher_is_better``).
    higher_is_better : bool
        False for times and latencies, True for bandwidths and rates.
    alpha : float
        Significance level of the two-sided Mann-Whitney U test.
    min_change : float
        Relative change of the medians below which a significant difference is still
        reported as no significant change (a practical threshold, e.g. 0.05).

    Returns
    -------
    Comparison
        ``verdict`` is "faster" or "slower" only when the test rejects at ``alpha``
        and the medians moved by at least ``min_change``; otherwise "no significant
        change". Too few samples can never be significant (one against one, say):
        the method says so.
    """
    a, b = _array(old), _array(new)
    if a.size == 0 or b.size == 0:
        return Comparison(
            "no significant change",
            math.nan,
            math.nan,
            math.nan,
            1.0,
            alpha,
            int(a.size),
            int(b.size),
            "no samples on one side",
        )
    m_old, m_new = float(np.median(a)), float(np.median(b))
    change = m_new / m_old - 1 if m_old != 0 else math.nan
    _, p, method = mann_whitney(a, b)
    significant = p < alpha and (not math.isfinite(change) or abs(change) >= min_change)
    if significant and m_new != m_old:
        better = (m_new > m_old) == higher_is_better
        verdict = "faster" if better else "slower"
    else:
        verdict = "no significant change"
        if _min_p(a.size, b.size) >= alpha:
            method += f"; {a.size} vs {b.size} samples can never reach p < {alpha:g}"
    return Comparison(verdict, m_old, m_new, change, p, alpha, int(a.size), int(b.size), method)


def _min_p(m: int, n: int) -> float:
    """Smallest two-sided exact Mann-Whitney p-value possible with sizes ``m`` and ``n``."""
    return min(1.0, 2.0 / math.comb(m + n, m))
