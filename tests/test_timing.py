from __future__ import annotations

import pytest

from hpcsuite.core import stats
from hpcsuite.core.timing import Stats, measure, summarize


def test_measure_runs_warmup_untimed_and_syncs_each_repeat():
    events = []
    ticks = iter(range(100))
    times, result = measure(
        lambda: events.append("run") or len(events),
        warmup=2,
        repeat=3,
        barrier=lambda: events.append("barrier"),
        sync=lambda: events.append("sync"),
        clock=lambda: next(ticks),
    )
    assert events[:4] == ["run", "sync", "run", "sync"]
    assert events[4:] == ["barrier", "run", "sync"] * 3
    assert times == [1, 1, 1]
    assert result == len(events) - 1


def test_measure_needs_a_timed_run():
    with pytest.raises(ValueError, match="repeat"):
        measure(lambda: None, repeat=0)


def test_timing_statistics_are_core_stats():
    # One statistics module: timing re-exports it (tests/test_stats.py tests it).
    assert summarize is stats.summarize and Stats is stats.Stats
    s = summarize([0.3, 0.1, 0.2])
    assert s.median == 0.2 and s.low <= s.median <= s.high
