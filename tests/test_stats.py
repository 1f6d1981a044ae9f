"""hpcsuite.core.stats: one median, the interval of the median, rates, the rank test."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcsuite.core import stats


def test_median_and_percentile_are_numpys():
    data = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    assert stats.median(data) == 3.5 == statistics.median(data)
    assert stats.percentile(data, 95) == pytest.approx(np.percentile(data, 95))
    assert stats.percentile(data, 0) == 1.0 and stats.percentile(data, 100) == 10.0
    assert stats.median([1.0, float("nan"), 3.0]) == 2.0  # NaN is not a measurement
    with pytest.raises(ValueError):
        stats.median([])
    with pytest.raises(ValueError):
        stats.percentile(data, 101)


def test_median_interval_is_the_textbook_order_statistics():
    # n = 10 at 95 %: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024, so x(2) .. x(9).
    data = list(range(1, 11))
    assert stats.median_interval(data) == (2.0, 9.0)
    s = stats.summarize(data)
    assert s.confidence == pytest.approx(1 - 2 * 11 / 1024)
    assert "2 and 9 of 10" in s.method
    # n = 6 is the fewest reaching 95 % (1 - 2/64); n = 5 widens to min..max and says so.
    assert stats.median_interval([1, 2, 3, 4, 5, 6]) == (1.0, 6.0)
    s5 = stats.summarize([1, 2, 3, 4, 50])
    assert (s5.low, s5.high) == (1.0, 50.0)
    assert s5.confidence == pytest.approx(1 - 2 / 32) and "too few" in s5.method


def test_one_sample_invents_no_spread():
    s = stats.summarize([0.5])
    assert s.n == 1 and s.stdev == 0.0 and s.low == s.high == s.median == 0.5
    assert s.confidence == 0.0 and "single" in s.method


def test_summarize_matches_hand_computed_values():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.n, s.min, s.max, s.mean, s.median) == (5, 1.0, 10.0, 4.0, 3.0)
    assert s.stdev == pytest.approx(statistics.stdev([1, 2, 3, 4, 10]))
    assert s.p95 == pytest.approx(np.percentile([1, 2, 3, 4, 10], 95))
    d = s.as_dict()
    assert set(d) == {
        "n",
        "min",
        "max",
        "mean",
        "median",
        "stdev",
        "p05",
        "p95",
        "p99",
        "low",
        "high",
        "confidence",
        "method",
    }
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.summarize([1.0], confidence=95)


def test_skewed_data_where_the_mean_interval_went_negative():
    # One slow outlier: mean +- t * s / sqrt(n) reaches below zero and misses the median.
    data = [0.010, 0.011, 0.010, 0.012, 0.011, 0.010, 0.011, 0.010, 2.5]
    mean, sd = np.mean(data), np.std(data, ddof=1)
    assert mean - 2.306 * sd / 3 < 0  # what the old report printed
    s = stats.summarize(data)
    assert 0 <= s.low <= s.median <= s.high and s.high < 0.1


def test_interval_covers_the_true_median_as_often_as_it_says():
    rng = np.random.default_rng(12)
    hits, trials, n = 0, 2000, 25
    true_median = math.log(2)  # exponential(1)
    for _ in range(trials):
        lo, hi = stats.median_interval(rng.exponential(size=n))
        hits += lo <= true_median <= hi
    coverage = stats.summarize(range(n)).confidence
    assert coverage >= 0.95
    # binomial(2000, 0.957) has sd ~0.0045: 4 sd either side
    assert abs(hits / trials - coverage) < 0.02


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_interval_contains_the_median_and_is_never_negative(data, confidence):
    s = stats.summarize(data, confidence)
    assert 0 <= s.min <= s.low <= s.median <= s.high <= s.max
    assert (s.low, s.high) == stats.median_interval(data, confidence)
    assert 0 <= s.confidence <= 1


def test_rate_interval_uses_the_same_median():
    s = stats.summarize([2.0, 1.0, 4.0, 1.5, 3.0, 2.5, 2.0])
    value, low, high = stats.rate_interval(10.0, s)
    assert value == 10.0 / s.median == 5.0
    assert (low, high) == (10.0 / s.high, 10.0 / s.low) and low <= value <= high
    zero = stats.summarize([0.0, 0.0])
    assert stats.rate_interval(1.0, zero) == (math.inf, math.inf, math.inf)
    assert math.isnan(stats.rate_interval(math.nan, s)[0])
    assert stats.scale_interval(1e6, s) == (1e6 * s.median, 1e6 * s.low, 1e6 * s.high)


def test_exact_mann_whitney_null_distribution_and_known_p_values():
    dist = stats._exact_u_null(4, 6)
    assert dist.sum() == math.comb(10, 4) and dist[0] == dist[-1] == 1
    assert list(dist) == list(dist[::-1])  # symmetric
    u, p, method = stats.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert u == 0 and p == pytest.approx(2 / 252) and "exact" in method  # scipy: 0.007937
    u, p, _ = stats.mann_whitney([1, 3, 5, 7], [2, 4, 6, 8])
    assert u == 6 and p == pytest.approx(0.6857142857)  # scipy.stats.mannwhitneyu


def test_mann_whitney_normal_approximation_with_ties():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(10, 1, 40), 1)
    y = np.round(rng.normal(10, 1, 40), 1)
    _, p, method = stats.mann_whitney(x, y)
    assert "normal" in method and 0.05 < p <= 1
    _, p, _ = stats.mann_whitney(x, y + 2)
    assert p < 1e-6
    _, p, _ = stats.mann_whitney([1.0] * 5, [1.0] * 5)
    assert p == 1.0


def test_compare_verdicts():
    old = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01]
    slower = [1.20, 1.21, 1.19, 1.22, 1.18, 1.20, 1.23]
    c = stats.compare(old, slower)
    assert c.verdict == "slower" and c.p_value < 0.01 and c.change == pytest.approx(0.2)
    assert stats.compare(slower, old).verdict == "faster"
    # Rates: higher is better, so a larger new median is faster.
    assert stats.compare(old, slower, higher_is_better=True).verdict == "faster"
    # Overlapping samples: no significant change, whatever the medians say.
    assert (
        stats.compare(old, [1.01, 0.97, 1.03, 1.0, 0.99, 1.02, 1.0]).verdict
        == "no significant change"
    )
    # One run against one run is never a regression; the method says why.
    one = stats.compare([1.0], [2.0])
    assert one.verdict == "no significant change" and "can never reach" in one.method
    # Significant but below the practical threshold.
    tiny = stats.compare(old, [x * 1.01 for x in old] + [1.011] * 30, min_change=0.05)
    assert tiny.verdict == "no significant change"
    assert stats.compare([], [1.0]).verdict == "no significant change"


def test_core_stats_imports_only_numpy_and_math():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(stats))
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imported |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert imported <= {"numpy", "math", "__future__", "collections", "dataclasses", "typing"}


def test_exact_p_with_ties_equals_brute_force_enumeration():
    import itertools

    x, y = [1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 3.0, 4.0, 5.0, 5.0, 6.0]
    u, p, method = stats.mann_whitney(x, y)
    assert "exact with ties" in method
    both = np.array(x + y)
    ranks = np.array([np.sum(both < v) + (np.sum(both == v) + 1) / 2 for v in both])
    centre = len(x) * (len(both) + 1) / 2
    observed = abs(ranks[: len(x)].sum() - centre)
    subsets = list(itertools.combinations(range(len(both)), len(x)))
    extreme = sum(abs(ranks[list(c)].sum() - centre) >= observed - 1e-9 for c in subsets)
    assert p == pytest.approx(extreme / len(subsets))
    assert u == ranks[: len(x)].sum() - len(x) * (len(x) + 1) / 2


def test_ties_in_few_samples_are_not_called_significant():
    # Timer resolution makes ties; 3 against 3 can never reach p < 0.05 (min p = 0.1).
    c = stats.compare([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert c.p_value == pytest.approx(0.1) and c.verdict == "no significant change"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10, 11, 100, 1001])
def test_median_and_percentiles_are_numpys_bit_for_bit(n: int) -> None:
    # stats computes them itself (np.median/np.percentile import numpy.ma on first use,
    # a start-up cost); the values must still be NumPy's, bit for bit.
    rng = np.random.default_rng(n)
    for scale in (1e-7, 1.0, 3e5):
        a = rng.lognormal(size=n) * scale
        assert stats.median(a) == np.median(a)
        for q in (0, 5, 25, 33.3, 50, 95, 99, 100):
            assert stats.percentile(a, q) == np.percentile(a, q)
        s = stats.summarize(a)
        assert (s.median, s.p05, s.p95, s.p99) == (np.median(a), *np.percentile(a, [5, 95, 99]))


def test_summarize_does_not_import_numpy_ma() -> None:
    code = (
        "import sys; from hpcsuite.core import stats; stats.summarize([3.0, 1.0, 2.0]); "
        "stats.percentile([1.0, 2.0], 50); sys.exit('numpy.ma' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
