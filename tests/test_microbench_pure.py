"""Pure parts of hpcsuite.microbench: sizes, iteration schedule, statistics, formats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcsuite.microbench import output, schedule, stats
from hpcsuite.microbench.catalog import addends, reduced


@pytest.mark.parametrize(
    "text,expected",
    [("8", 8), ("4K", 4096), ("4M", 4 << 20), ("1MiB", 1 << 20), ("2g", 2 << 30), (" 16 ", 16)],
)
def test_parse_size_accepts_osu_style_units(text, expected):
    assert schedule.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "x", "-4", "4T", "1.5M"])
def test_parse_size_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="bad size"):
        schedule.parse_size(bad)


def test_sizes_are_powers_of_two_in_range():
    assert schedule.sizes(1, 16) == [1, 2, 4, 8, 16]
    assert schedule.sizes(3, 40) == [4, 8, 16, 32]
    assert schedule.sizes(1, 64, unit=4) == [4, 8, 16, 32, 64]
    assert schedule.sizes(0, 2) == [0, 1, 2]
    with pytest.raises(ValueError, match="larger than"):
        schedule.sizes(64, 8)
    with pytest.raises(ValueError, match="no power-of-two"):
        schedule.sizes(5, 7)


def test_iterations_shrink_for_large_messages_like_osu():
    assert schedule.iterations("latency", 8192) == (10000, 100)
    assert schedule.iterations("latency", 8193) == (1000, 10)
    assert schedule.iterations("bandwidth", 1 << 20) == (20, 2)
    assert schedule.iterations("collective", 4, iters=7, warmup=0) == (7, 0)


def test_time_budget_caps_iterations_but_keeps_a_floor():
    assert schedule.bounded(1000, 0.01, 1.0) == 100
    assert schedule.bounded(1000, 1.0, 0.5) == 5
    assert schedule.bounded(1000, 0.01, None) == 1000
    assert schedule.bounded(3, 1.0, 0.1) == 3


def test_describe_matches_numpy():
    data = list(np.random.default_rng(0).exponential(size=101))
    d = stats.describe(data)
    assert d["min"] == min(data) and d["max"] == max(data)
    assert d["median"] == pytest.approx(np.median(data))
    assert d["p99"] == pytest.approx(np.percentile(data, 99))
    assert d["stddev"] == pytest.approx(np.std(data, ddof=1))
    assert math.isnan(stats.describe([])["mean"])


def test_latency_row_keeps_osu_columns_beside_the_distribution():
    row = stats.latency_row([1e-6, 2e-6, 3e-6, 6e-6], [1.5e-6, 4.5e-6])
    assert row["avg_us"] == pytest.approx(3.0) and row["rank_min_us"] == pytest.approx(1.5)
    assert row["rank_max_us"] == pytest.approx(4.5) and row["median_us"] == pytest.approx(2.5)


def test_bandwidth_uses_total_bytes_over_total_time():
    row = stats.bandwidth_row([1.0, 3.0], 4_000_000)
    assert row["mbps"] == pytest.approx(2.0)
    assert row["max_mbps"] == pytest.approx(4.0) and row["min_mbps"] == pytest.approx(4 / 3)


def test_bus_bandwidth_follows_nccl_tests():
    bw = stats.bus_bandwidth("allreduce", 1_000_000_000, 1.0, 4)
    assert bw == {"algbw_gbps": 1.0, "busbw_gbps": 1.5}
    assert stats.bus_bandwidth("gather", 10, 1.0, 4) == {}


def test_overlap_percent_as_osu_defines_it():
    # OSU 7.4 print_stats_nbc: max(0, 100 - (overall - compute) / pure * 100)
    assert stats.overlap_percent(10.0, 10.0, 10.0) == 100.0  # fully hidden
    assert stats.overlap_percent(10.0, 20.0, 10.0) == 0.0  # nothing hidden
    assert stats.overlap_percent(10.0, 15.0, 10.0) == 50.0
    assert stats.overlap_percent(10.0, 40.0, 10.0) == 0.0  # clipped at 0, as OSU
    assert stats.overlap_percent(10.0, 9.0, 10.0) == 110.0  # and only at 0


class _Clock:
    """``time`` for runner._overlap: perf_counter returns the given stamps (in us), in order."""

    def __init__(self, stamps_us):
        self.stamps = [t * 1e-6 for t in stamps_us]

    def perf_counter(self):
        return self.stamps.pop(0)


class _Comm:
    """A communicator whose other rank reports the given means (overall, compute, init,
    wait, test, pure target; seconds)."""

    def __init__(self, *others):
        self.others = [list(o) for o in others]

    def Barrier(self):  # noqa: N802 - mpi4py's name
        pass

    def allgather(self, mine):
        return [mine, *self.others]


class _Case:
    def start(self):
        return self

    def Test(self):  # noqa: N802 - mpi4py's name
        return False

    def finish(self, req):
        pass


def test_overlap_row_from_a_known_timing_set(monkeypatch):
    # OSU 7.4 (osu_util.c, print_stats_nbc), by hand: each column is this rank's mean over
    # the timed iterations, averaged over ranks; overlap = max(0, 100 - 100 (overall -
    # (compute - test)) / pure). This rank: pure samples 10 and 30 us, so it spins 20 us.
    from hpcsuite.microbench import runner

    spins = []
    monkeypatch.setattr(runner, "_spin", spins.append)
    # one skipped iteration (any stamps), then two timed: t0, t1 (start), t2 (compute), t3 (wait)
    monkeypatch.setattr(
        runner,
        "time",
        _Clock([0, 500, 900, 1000, 0, 1, 21, 30, 100, 103, 123, 134]),  # init 1, compute 20, wait 9
    )  # init 3, compute 20, wait 11
    other = (40e-6, 20e-6, 4e-6, 16e-6, 0.0, 30e-6)
    row = runner._overlap(_Comm(other), _Case(), [10e-6, 30e-6], count=2, skip=1)
    assert spins == [pytest.approx(20e-6)] * 3
    # this rank: overall 32, compute 20, init 2, wait 10; with the other: 36, 20, 3, 13; pure 25
    want = {
        "overall_us": 36.0,
        "compute_us": 20.0,
        "init_us": 3.0,
        "wait_us": 13.0,
        "test_us": 0.0,
        "pure_us": 25.0,
        "pure_min_us": 20.0,
        "pure_max_us": 30.0,
        "overlap_pct": 36.0,
    }  # 100 - 100 * (36 - 20) / 25
    assert row == {k: pytest.approx(v) for k, v in want.items()}


def test_overlap_row_takes_the_mpi_test_time_out_of_the_compute(monkeypatch):
    # OSU's -t 2: two compute slices of pure/2, each followed by a timed MPI_Test.
    from hpcsuite.microbench import runner

    spins = []
    monkeypatch.setattr(runner, "_spin", spins.append)
    # t0, t1, (slice, p0, p1) twice, t2, t3: init 2, tests 1 + 2, compute 23 with them, wait 5
    monkeypatch.setattr(runner, "time", _Clock([0, 2, 12, 13, 23, 25, 25, 30]))
    row = runner._overlap(_Comm(), _Case(), [20e-6], count=1, skip=0, probes=2)
    assert spins == [pytest.approx(10e-6)] * 2
    want = {
        "overall_us": 30.0,
        "compute_us": 20.0,
        "init_us": 2.0,
        "wait_us": 5.0,
        "test_us": 3.0,
        "pure_us": 20.0,
        "pure_min_us": 20.0,
        "pure_max_us": 20.0,
        "overlap_pct": 50.0,
    }  # 100 - 100 * (30 - (23 - 3)) / 20
    assert row == {k: pytest.approx(v) for k, v in want.items()}


ROWS = [
    {
        "size": 1,
        "iterations": 10,
        "avg_us": 1.234,
        "rank_min_us": 1.0,
        "rank_max_us": 1.5,
        "mbps": 0.81,
        "errors": [],
    },
    {
        "size": 4096,
        "iterations": 10,
        "avg_us": 12.5,
        "rank_min_us": 12.0,
        "rank_max_us": 13.0,
        "mbps": 327.68,
        "errors": ["rank 1: 3 mismatch(es)"],
    },
]


@pytest.mark.parametrize(
    "family,columns",
    [
        ("latency", {"Avg Latency(us)": "avg_us"}),
        ("bandwidth", {"Bandwidth (MB/s)": "mbps"}),
        ("collective", {"Avg Latency(us)": "avg_us"}),
    ],
)
def test_osu_format_round_trips_through_the_parser(family, columns):
    text = output.osu("MPI Test", family, ROWS, "note")
    assert text.startswith("\n# OSU MPI Test Test v7.4\n# note\n# Datatype: MPI_CHAR.\n# Size")
    parsed = output.parse_osu(text)
    assert [p["Size"] for p in parsed] == [1, 4096]
    for got, row in zip(parsed, ROWS):
        assert set(got) == {"Size", *columns}
        for header, key in columns.items():
            assert got[header] == pytest.approx(row[key], abs=0.005)


def test_full_and_validation_columns_round_trip():
    text = output.osu("MPI Allreduce Latency", "collective", ROWS, "note", full=True, validate=True)
    assert (
        "# Size       Avg Latency(us)   Min Latency(us)   Max Latency(us)  Iterations       "
        " Validation\n" in text
    )
    parsed = output.parse_osu(text)
    assert [(p["Iterations"], p["Validation"], p["Max Latency(us)"]) for p in parsed] == [
        (10, "Pass", 1.5),
        (10, "Fail", 13.0),
    ]


def test_parser_reads_real_osu_output():
    real = (
        "# OSU MPI Latency Test v7.4\n# Datatype: MPI_CHAR.\n"
        "# Size       Avg Latency(us)\n1                       0.21\n2                       0.20\n"
    )
    assert output.parse_osu(real) == [
        {"Size": 1, "Avg Latency(us)": 0.21},
        {"Size": 2, "Avg Latency(us)": 0.2},
    ]
    with pytest.raises(ValueError, match="cannot parse"):
        output.parse_osu("# Size   Latency (us)\n1 2 3\n")
    with pytest.raises(ValueError, match="cannot parse"):
        output.parse_osu("# Size       Avg Latency(us)\n1 Pass\n")


def test_tails_follow_osus_index_rule():
    # per-iteration mean over ranks, sorted; element round(n p / 100) - 1 (C's round: halves up)
    ranks = [[1.0, 2.0, 3.0, 4.0, 5.0], [3.0, 4.0, 5.0, 6.0, 7.0]]  # means 2, 3, 4, 5, 6
    assert stats.tails(ranks, (50, 90, 99, 10)) == [4.0, 6.0, 6.0, 2.0]
    assert stats.tails(ranks, ()) == []


def test_csv_and_table_carry_every_statistic():
    import csv
    import io

    keys = output.STAT_KEYS["collective"]
    rows = [
        {"size": s, "iterations": 10, **{k: float(i + 1) * s for i, k in enumerate(keys)}}
        for s in (1, 4096)
    ]
    parsed = list(csv.DictReader(io.StringIO(output.to_csv("allreduce", "collective", rows))))
    assert list(parsed[0]) == ["test", "size", "iterations", *keys, "thread_level"]
    assert [[float(r[k]) for k in keys] for r in parsed] == [[row[k] for k in keys] for row in rows]
    assert output.to_csv("allreduce", "collective", rows, header=False).count("\n") == 2
    table = output.table("allreduce", "collective", rows, "note").splitlines()
    assert table[1].split() == ["size", "iterations", *keys] and table[3].split()[0] == "4096"


def test_the_name_list_matches_the_registry():
    from hpcsuite.microbench import NAMES, runner

    assert tuple(runner.TESTS) == NAMES


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 16, 300])
def test_reduction_addends_sum_exactly_and_bytes_stay_below_128(dtype, size):
    count = 1000
    parts = [addends(r, count, dtype, size).astype(np.int64) for r in range(size)]
    total = np.sum(parts, axis=0)
    if np.dtype(dtype).itemsize == 1:
        # A signed byte sums past 127 differently in MPICH (wraps) and Open MPI
        # (saturates): every partial sum stays at most 100, so both agree.
        assert np.max(np.cumsum(parts, axis=0)) <= 100
        assert all(p.any() for p in parts[: min(size, count)])  # every rank contributes
    assert np.array_equal(total, reduced(size, count, dtype).astype(np.int64))
