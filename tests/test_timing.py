from __future__ import annotations

import math
import statistics

import pytest

from hpcsuite.core.timing import measure, summarize, t95


def test_measure_runs_warmup_untimed_and_syncs_each_repeat():
    events = []
    ticks = iter(range(100))
    times, result = measure(lambda: events.append("run") or len(events), warmup=2, repeat=3,
                            barrier=lambda: events.append("barrier"),
                            sync=lambda: events.append("sync"), clock=lambda: next(ticks))
    assert events[:4] == ["run", "sync", "run", "sync"]
    assert events[4:] == ["barrier", "run", "sync"] * 3
    assert times == [1, 1, 1]
    assert result == len(events) - 1


def test_measure_needs_a_timed_run():
    with pytest.raises(ValueError, match="repeat"):
        measure(lambda: None, repeat=0)


def test_summarize_matches_hand_computed_values():
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.n, s.min, s.max, s.mean, s.median) == (5, 1.0, 10.0, 4.0, 3.0)
    assert s.stdev == pytest.approx(statistics.stdev([1, 2, 3, 4, 10]))
    half = 2.776 * s.stdev / math.sqrt(5)
    assert (s.ci95_low, s.ci95_high) == pytest.approx((4.0 - half, 4.0 + half))


def test_summarize_one_sample_invents_no_spread():
    s = summarize([0.5])
    assert s.stdev == 0.0 and s.ci95_low == s.ci95_high == 0.5


def test_summarize_rejects_no_samples():
    with pytest.raises(ValueError):
        summarize([])


def test_t95_table_edges():
    assert t95(1) == 12.706 and t95(30) == 2.042 and t95(1000) == 1.96 and t95(0) == math.inf
