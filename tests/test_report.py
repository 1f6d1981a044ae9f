"""hpcsuite.report: the math, series detection, checks, outputs, and a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hpcsuite.core import records
from hpcsuite.core.errors import InputError
from hpcsuite.report import __main__ as report
from hpcsuite.report import checks, load, runs, scaling, series

ENV = records.fingerprint(hosts=["n1"], mpi_library="MPICH 4", device="cpu", device_name="x86")
OTHER_ENV = records.fingerprint(
    hosts=["n1"], mpi_library="Open MPI 5", device="cpu", device_name="x86"
)


def rec(ranks, rows, times, *, env=ENV, kernel="mean", passed=True, fom=1.0, **params):
    shape = [rows, 100]
    return records.make(
        kernel,
        params={
            "shape": shape,
            "bytes": rows * 800,
            "dtype": "float64",
            "repeat": len(times),
            **params,
        },
        ranks=ranks,
        env=env,
        times={"unit": "s", "samples": times},
        fom={"name": "bandwidth", "value": fom, "unit": "GB/s", "higher_is_better": True},
        check={"passed": passed},
    )


def test_strong_scaling_math_matches_hand_computation():
    rows = scaling.strong([4, 1, 2], [4.0, 10.0, 6.0])
    assert [r["ranks"] for r in rows] == [1, 2, 4]
    assert [r["speedup"] for r in rows] == pytest.approx([1.0, 10 / 6, 2.5])
    assert [r["efficiency"] for r in rows] == pytest.approx([1.0, 10 / 12, 0.625])
    assert rows[0]["karp_flatt"] is None
    # e = (1/S - 1/p) / (1 - 1/p): (0.6 - 0.5) / 0.5 and (0.4 - 0.25) / 0.75
    assert [r["karp_flatt"] for r in rows[1:]] == pytest.approx([0.2, 0.2])


def test_strong_scaling_relative_to_the_smallest_rank_count():
    rows = scaling.strong([2, 8], [8.0, 4.0])
    assert rows[1]["ideal"] == 4 and rows[1]["efficiency"] == pytest.approx(0.5)


def test_weak_scaling_math_matches_hand_computation():
    rows = scaling.weak([1, 2, 4], [10.0, 10.0, 12.5], [1.0, 2.0, 4.0])
    assert [r["efficiency"] for r in rows] == pytest.approx([1.0, 1.0, 0.8])
    assert [r["relative_performance"] for r in rows] == pytest.approx([1.0, 2.0, 3.2])


def _sample_set():
    return [
        rec(1, 1000, [10.0, 10.2, 9.8]),
        rec(2, 1000, [5.1, 5.0]),
        rec(4, 1000, [3.0]),
        rec(4, 1000, [2.9, 3.1]),  # a repeat of the n=4 point
        rec(2, 2000, [10.4]),
        rec(4, 4000, [11.0]),  # weak: 1000 rows per rank
        rec(1, 1000, [7.0], env=OTHER_ENV),
        rec(2, 1000, [3.0], env=OTHER_ENV),
        rec(3, 777, [1.0]),  # fits no series
    ]


def test_series_are_detected_and_environments_never_merged():
    found = series.build(_sample_set())
    kinds = [(s.kind, s.env.split(" | ")[1], s.scale) for s in found]
    assert ("strong", "MPICH 4", 800000.0) in kinds and ("strong", "Open MPI 5", 800000.0) in kinds
    assert ("weak", "MPICH 4", 800000.0) in kinds
    strong = next(s for s in found if s.kind == "strong" and "MPICH" in s.env)
    table = strong.table()
    assert [r["x"] for r in table] == [1, 2, 4] and table[2]["runs"] == 2
    assert table[0]["time_s"] == pytest.approx(10.0) and table[2]["time_s"] == pytest.approx(3.0)
    assert table[2]["speedup"] == pytest.approx(10 / 3)
    single = [s for s in found if s.kind == "single"]
    assert len(single) == 1 and single[0].points[0].x == 3


def test_failed_and_partial_points_are_shown_not_dropped():
    recs = [rec(1, 1000, [2.0]), rec(2, 1000, [1.0], passed=False), rec(4, 1000, [])]
    recs[2]["fom"] = None
    table = next(s for s in series.build(recs) if s.kind == "strong").table()
    assert [r["status"] for r in table] == ["ok", "failed", "partial"]
    assert "speedup" not in table[1]  # scaling math uses good points only


def test_load_reports_bad_lines_with_file_and_line(tmp_path):
    good = tmp_path / "a.jsonl"
    records.append(good, rec(1, 10, [1.0]))
    with open(good, "a") as f:
        f.write("{not json\n")
        f.write(json.dumps({**rec(1, 10, [1.0]), "ranks": "many"}) + "\n")
    (tmp_path / "sub").mkdir()
    records.append(tmp_path / "sub" / "b.jsonl", rec(2, 10, [1.0]))
    got, problems = load.load([str(tmp_path)])
    assert len(got) == 2 and problems == [
        (
            f"{good}:2: not JSON: Expecting property name enclosed in double quotes at column 2;"
            " skipped"
        ),
        f"{good}:3: record with bad ranks 'many'; skipped",
    ]
    with pytest.raises(InputError, match="no such file or folder"):
        load.load([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no hpcsuite records"):
        load.load([str(tmp_path / "empty")])


def _noisy(center, n=9, spread=0.02):
    return [center * (1 + spread * ((i * 7) % n - n // 2) / n) for i in range(n)]


def test_compare_decides_with_the_uncertainty():
    old = series.build([rec(1, 1000, _noisy(10.0)), rec(2, 1000, _noisy(5.0))])
    new = series.build([rec(1, 1000, _noisy(10.05)), rec(2, 1000, _noisy(6.0))])
    got = {c["x"]: c for c in checks.compare(new, old, 0.05)}
    assert got[1]["verdict"] == "no significant change"  # 0.5 % inside the noise
    assert got[2]["verdict"] == "regression" and got[2]["direction"] == "slower"
    assert got[2]["p_value"] < 0.05 and "Mann-Whitney" in got[2]["method"]
    better = series.build([rec(1, 1000, _noisy(8.0)), rec(2, 1000, _noisy(5.0))])
    assert {c["x"]: c["verdict"] for c in checks.compare(better, old, 0.05)}[1] == "improvement"
    # One run of one sample each: a 20 % difference is not evidence of anything.
    one_old = series.build([rec(1, 1000, [10.0]), rec(2, 1000, [5.0])])
    one_new = series.build([rec(1, 1000, [10.2]), rec(2, 1000, [6.0])])
    assert {c["verdict"] for c in checks.compare(one_new, one_old, 0.05)} == {
        "no significant change"
    }


def test_compare_never_matches_a_1_node_run_with_a_2_node_run():
    two_nodes = records.fingerprint(
        hosts=["n1", "n2"], mpi_library="MPICH 4", device="cpu", device_name="x86"
    )
    old = series.build([rec(2, 1000, _noisy(5.0)), rec(4, 1000, _noisy(3.0))])
    new = series.build(
        [rec(2, 1000, _noisy(9.0), env=two_nodes), rec(4, 1000, _noisy(6.0), env=two_nodes)]
    )
    assert checks.compare(new, old, 0.05) == []


def test_fail_on_regression_exits_3(tmp_path):
    from hpcsuite.core.errors import CheckError

    for name, t in (("old", 5.0), ("new", 6.0)):
        records.append(tmp_path / name / "r.jsonl", rec(1, 1000, _noisy(10.0)))
        records.append(tmp_path / name / "r.jsonl", rec(2, 1000, _noisy(t)))
    argv = [
        str(tmp_path / "new"),
        "--compare",
        str(tmp_path / "old"),
        "--out",
        str(tmp_path / "rep"),
        "--no-plots",
        "--quiet",
    ]
    assert report.main(argv) == 0
    assert "regression (slower)" in (tmp_path / "rep" / "report.md").read_text()
    with pytest.raises(CheckError, match="1 regression"):
        report.main(argv + ["--fail-on-regression"])


def test_reference_bounds_pass_fail_and_unit(tmp_path):
    found = series.build([rec(1, 1000, [1.0], fom=10.0), rec(2, 1000, [1.0], fom=7.0)])
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"mean": {"bandwidth": [10.0, -0.2, None, "GB/s"]}}))
    results = checks.against_reference(found, checks.load_reference(str(ref)))
    assert [(r["x"], r["passed"]) for r in results] == [(1, True), (2, False)]
    ref.write_text(json.dumps({"mean@2": {"bandwidth": [7.0, -0.1, 0.1, "MB/s"]}}))
    results = checks.against_reference(found, checks.load_reference(str(ref)))
    assert [(r["x"], r["passed"]) for r in results] == [(2, False)] and "unit" in results[0]["why"]
    ref.write_text(json.dumps({"mean": {"bandwidth": [7.0, "-10%"]}}))
    with pytest.raises(InputError, match="write \\[value, lower, upper, unit\\]"):
        checks.load_reference(str(ref))


def _results(tmp_path):
    folder = tmp_path / "results"
    for r in _sample_set():
        records.append(folder / "runs.jsonl", r)
    curve = records.make(
        "microbench.latency",
        params={"test": "latency", "size": 8, "buffer": "numpy"},
        ranks=2,
        env=ENV,
        times={"unit": "us"},
        fom={"name": "latency", "value": 1.5, "unit": "us", "higher_is_better": False},
    )
    records.append(folder / "omb.jsonl", curve)
    return folder


def test_report_writes_tables_plots_markdown_html_and_csv(tmp_path, capsys):
    out = tmp_path / "rep"
    assert report.main([str(_results(tmp_path)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "strong scaling" in printed and "Karp-Flatt" in printed
    md = (out / "report.md").read_text()
    assert "| ranks | nodes | ranks/node | time s | interval s |" in md and "](plots/" in md
    pngs, svgs = sorted((out / "plots").glob("*.png")), sorted((out / "plots").glob("*.svg"))
    assert len(pngs) == len(svgs) == 5  # 2 strong, 1 weak, 1 single, 1 latency curve
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(pngs)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    csv_lines = (out / "report.csv").read_text().splitlines()
    assert csv_lines[0].startswith("series,kind,kernel,environment,x,")
    assert len(csv_lines) > 10


def test_reference_violation_exits_non_zero(tmp_path):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"mean": {"bandwidth": [100.0, -0.1, None, "GB/s"]}}))
    from hpcsuite.core.errors import CheckError

    with pytest.raises(CheckError, match="reference bound"):
        report.main(
            [
                str(_results(tmp_path)),
                "--out",
                str(tmp_path / "r"),
                "--reference",
                str(ref),
                "--no-plots",
                "--quiet",
            ]
        )


def _chromium():
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


@pytest.mark.skipif(
    not _chromium() and os.environ.get("CI") != "true",
    reason="no headless Chromium here (apt-get install chromium); CI installs it",
)
def test_html_renders_in_a_real_browser(tmp_path):
    import matplotlib.image
    import numpy as np

    assert _chromium(), "CI must install chromium (see .ci/run)"
    out = tmp_path / "rep"
    report.main([str(_results(tmp_path)), "--out", str(out), "--quiet"])
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), proc.stderr
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    not_white = np.mean(np.any(pixels < 0.9, axis=-1))
    assert not_white > 0.02  # text, tables and plots, not a blank page
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


# --- issue 14: one bad record, a bad --reference, a bad --out: one line, never a traceback.


def _run_cli(argv, capsys):
    from hpcsuite.core import cli

    code = cli.run(report.main, argv, prog=report.PROG)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_bad_record_is_skipped_with_file_and_line(tmp_path, capsys):
    folder = tmp_path / "res"
    records.append(folder / "a.jsonl", rec(1, 1000, [1.0, 1.1]))
    bad = rec(2, 1000, [0.5])
    bad["params"]["shape"] = ["many", 100]
    del bad["params"]["bytes"]  # as a hand-written record would: the shape is all there is
    records.append(folder / "a.jsonl", bad)
    records.append(folder / "a.jsonl", rec(2, 1000, [0.6, 0.5]))
    code, out, err = _run_cli([str(folder), "--out", str(tmp_path / "rep"), "--no-plots"], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"{folder / 'a.jsonl'}:2:" in err and "shape" in err and "skipped" in err
    assert (tmp_path / "rep" / "report.md").exists()


@pytest.mark.parametrize("content", [[1, 2], {"mean": [10.0, -0.1, None, "GB/s"]}, {"mean": 3}])
def test_reference_of_the_wrong_form_is_one_line_exit_2(tmp_path, capsys, content):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps(content))
    code, _, err = _run_cli(
        [
            str(_results(tmp_path)),
            "--out",
            str(tmp_path / "rep"),
            "--no-plots",
            "--reference",
            str(ref),
        ],
        capsys,
    )
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "reference" in err


def test_out_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    code, _, err = _run_cli([str(_results(tmp_path)), "--out", str(target), "--no-plots"], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "--out" in err and target.read_text() == "not a folder"


def test_out_that_is_read_only_is_one_line_exit_2(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes into any mode-0500 folder; /sys refuses even root
        outs, locked = [Path("/sys"), Path("/sys/hpcsuite-report")], None
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        outs = [locked, locked / "sub"]
    try:
        for out in outs:
            code, _, err = _run_cli(
                [str(_results(tmp_path)), "--out", str(out), "--no-plots"], capsys
            )
            assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert "--out" in err
    finally:
        if locked is not None:
            locked.chmod(0o700)


# --- issue 12: series by layout, the interval, the figure of merit from the same median.


def new_rec(
    ranks,
    nodes,
    times,
    *,
    kernel="stream",
    size=1_000_000,
    rpn=None,
    job=None,
    array=None,
    commit="0123456789abcdef0123456789abcdef01234567",
    thread_level="multiple",
    test=None,
    **extra,
):
    """A record as the driver writes it now (RECORD-SCHEMA.md): fom from the median, provenance."""
    from hpcsuite.core import stats

    hosts = [f"n{i}" for i in range(nodes)]
    env = {
        **records.fingerprint(hosts=hosts, mpi_library="MPICH 4", device="cpu", device_name="x86"),
        "thread_level": thread_level,
    }
    if kernel.startswith("microbench."):
        params = {
            "test": test or kernel.split(".")[1],
            "size": size,
            "buffer": "numpy",
            "iterations": 100,
        }
        row = {
            "size": size,
            "min_us": min(times),
            "p99_us": max(times),
            "avg_us": sum(times) / len(times),
        }
        fom = {"name": "latency", "value": row["avg_us"], "unit": "us", "higher_is_better": False}
        t = {"unit": "us", "median": sorted(times)[len(times) // 2]}
    else:
        nbytes = 24 * size
        params = {"size": size, "bytes": nbytes, "repeat": len(times), "warmup": 1, **extra}
        st = stats.summarize(times)
        value, low, high = stats.rate_interval(nbytes / 1e6, st)
        fom = {
            "name": "triad",
            "value": value,
            "low": low,
            "high": high,
            "unit": "MB/s",
            "higher_is_better": True,
            "basis": "median",
        }
        t, row = {"unit": "s", "samples": times, "stats": st.as_dict()}, None
    slurm = (
        None
        if job is None
        else {
            "job_id": str(job),
            "array_job_id": None if array is None else str(job),
            "array_task_id": None if array is None else str(array),
            "partition": "debug",
        }
    )
    r = records.make(
        kernel,
        params=params,
        ranks=ranks,
        env=env,
        times=t,
        fom=fom,
        result=row,
        check={"passed": True},
    )
    r.update(
        nodes=nodes,
        ranks_per_node=rpn or -(-ranks // nodes),
        provenance={
            "utc": "2026-12-01T16:20:00Z",
            "slurm": slurm,
            "git": {"commit": commit, "describe": "x", "dirty": False},
            "mpi": {"library": "MPICH 4", "thread_level": thread_level},
        },
    )
    return r


def test_a_1_node_and_a_2_node_sweep_are_two_series():
    recs = [new_rec(r, 1, _noisy(8.0 / r)) for r in (2, 4)] + [
        new_rec(r, 2, _noisy(9.0 / r)) for r in (2, 4)
    ]
    strong = [s for s in series.build(recs) if s.kind == "strong" and s.axis == "ranks"]
    assert sorted(s.nodes for s in strong) == [1, 2]
    for s in strong:
        assert {p.runs[0].nodes for p in s.points} == {s.nodes} and [p.x for p in s.points] == [
            2,
            4,
        ]
        assert all(len(p.runs) == 1 for p in s.points)  # nothing pooled across layouts
    assert "on 1 node" in strong[0].title and "on 2 nodes" in strong[1].title
    # The same records as sweeps over nodes at a fixed number of ranks per node.
    # (2 ranks on 1 node and 4 on 2 nodes: 2 per node; 1 per node has one point only)
    by_nodes = [s for s in series.build(recs) if s.axis == "nodes"]
    assert [(s.ranks_per_node, [(p.x, p.runs[0].ranks) for p in s.points]) for s in by_nodes] == [
        (2, [(1, 2), (2, 4)])
    ]


def test_old_records_without_ranks_per_node_get_it_from_the_layout():
    r = new_rec(3, 2, [1.0])
    del r["ranks_per_node"], r["nodes"]  # older records: only env.nodes / hosts
    run = runs.describe(r)
    assert (run.ranks, run.nodes, run.ranks_per_node) == (3, 2, 2)
    uneven = new_rec(4, 2, [1.0], rpn=3)  # placed 3 + 1
    assert runs.describe(uneven).ranks_per_node == 3


def test_problem_sizes_thread_levels_and_curves_are_never_pooled():
    small = [new_rec(r, 1, [1.0 / r], size=800_000) for r in (1, 2)]  # 19.2 MB
    large = [new_rec(r, 1, [10.0 / r], size=8_000_000) for r in (1, 2)]  # 192 MB
    found = [s for s in series.build(small + large) if s.kind == "strong"]
    assert sorted(s.problem for s in found) == ["19.2 MB", "192 MB"]
    levels = [new_rec(2, 1, [1.0]), new_rec(2, 1, [2.0], thread_level="single")]
    assert len(series.build(levels)) == 2
    intra = [new_rec(2, 1, [1.0, 1.2], kernel="microbench.latency", size=s) for s in (8, 1024)]
    inter = [new_rec(2, 2, [3.0, 3.5], kernel="microbench.latency", size=s) for s in (8, 1024)]
    curves = [s for s in series.build(intra + inter) if s.kind == "curve"]
    assert len(curves) == 2 and {c.nodes for c in curves} == {1, 2}
    assert {c.layout for c in curves} == {"2 ranks on 1 node", "2 ranks on 2 nodes"}
    assert curves[0].table()[0]["band_low"] == 1.0 and curves[0].table()[0]["band_high"] == 1.2


def test_figure_of_merit_is_the_work_over_the_median_time():
    # Two runs of one point pool their samples; the figure is bytes / pooled median.
    a, b = new_rec(2, 1, [1.0, 1.1, 5.0]), new_rec(2, 1, [1.2, 1.3, 1.25, 0.9])
    row = series.build([a, b])[0].table()[0]
    work = 24 * 1_000_000 / 1e6
    assert row["time_s"] == 1.2 and row["fom"] == pytest.approx(work / row["time_s"])
    assert row["fom_low"] == pytest.approx(work / row["time_high"])
    assert row["fom_high"] == pytest.approx(work / row["time_low"])
    assert row["fom_low"] <= row["fom"] <= row["fom_high"] and row["fom_basis"] == "median"
    # Older mean records (no basis): the same, from the kernel's formula (bytes / 1e9).
    old = rec(1, 1000, [2.0, 4.0, 3.0], fom=800_000 / 3.0 / 1e9)
    old2 = rec(1, 1000, [1.0], fom=800_000 / 1.0 / 1e9)
    row = series.build([old, old2])[0].table()[0]
    assert row["time_s"] == 2.5 and row["fom"] == pytest.approx(800_000 / 2.5 / 1e9)
    # A recorded value the formula cannot reproduce is shown as recorded, not replaced.
    odd = rec(1, 1000, [2.0], fom=42.0)
    row = series.build([odd])[0].table()[0]
    assert row["fom"] == 42.0 and row["fom_basis"] == "recorded"


def test_intervals_contain_the_point_and_are_never_negative():
    skewed = [0.010] * 8 + [2.5]  # where the mean's interval went below zero
    bimodal = [1.0, 1.01, 0.99, 1.02, 2.0, 2.02, 1.98, 2.01, 1.0, 2.0, 0.98]
    recs = [new_rec(1, 1, skewed), new_rec(2, 1, bimodal), new_rec(4, 1, [0.5])]
    for row in series.build(recs)[0].table():
        assert 0 <= row["time_low"] <= row["time_s"] <= row["time_high"]
        assert row["fom_low"] <= row["fom"] <= row["fom_high"]
        for k in ("speedup", "efficiency"):
            if row.get(f"{k}_low") == row.get(f"{k}_low"):  # not NaN
                assert 0 <= row[f"{k}_low"] <= row[k] <= row[f"{k}_high"]


def test_job_ids_and_git_commit_are_shown_per_row():
    from hpcsuite.report import render

    recs = [
        new_rec(1, 1, [1.0, 1.1], job=4242),
        new_rec(2, 1, [0.6, 0.5], job=777, array=3),
        new_rec(2, 1, [0.55], job=778, commit="fedcba9876543210fedcba9876543210fedcba98"),
    ]
    s = series.build(recs)[0]
    rows = s.table()
    assert rows[0]["jobs"] == "4242" and rows[1]["jobs"] == "777_3 778"  # what sacct -j takes
    assert rows[0]["git"] == "0123456789ab" and rows[1]["git"] == "0123456789ab fedcba987654"
    head, cells = render.rows_text(s)
    assert (
        "Slurm jobs" in head and "git" in head and cells[1][head.index("Slurm jobs")] == "777_3 778"
    )
    csv_text = render.to_csv([s])
    assert "777_3 778" in csv_text and ",jobs,git," in csv_text.splitlines()[0]
    no_prov = [rec(1, 1000, [1.0]), rec(2, 1000, [0.5])]
    for r in no_prov:
        r["env"]["git"] = None
        r.pop("provenance", None)  # a record from before provenance existed
    head, _ = render.rows_text(series.build(no_prov)[0])
    assert "Slurm jobs" not in head and "git" not in head


def test_error_bars_are_never_negative():
    from hpcsuite.report import plots

    rows = [
        {"t": 1.0, "lo": 0.5, "hi": 2.0},
        {"t": 1.0, "lo": 1.5, "hi": 2.0},  # does not contain it
        {"t": 1.0, "lo": float("nan"), "hi": 2.0},
        {"t": 1.0, "lo": 0.0, "hi": float("inf")},
    ]
    below, above = plots.yerr(rows, "t", "lo", "hi")
    assert below == [0.5, 0.0, 0.0, 0.0] and above == [1.0, 0.0, 0.0, 0.0]


def _captured_figure(monkeypatch, s):
    from hpcsuite.report import plots

    got = {}

    def keep(plt, fig, series_, folder, index):
        got["fig"] = fig
        return []

    monkeypatch.setattr(plots, "_finish", keep)
    plots.draw(s, None, 0)
    return got["fig"]


def test_plots_have_integer_rank_and_node_ticks_a_grid_and_a_nodes_axis(monkeypatch):
    recs = [new_rec(r, 1, _noisy(8.0 / r)) for r in (1, 2, 4, 8)]
    recs += [new_rec(2 * n, n, _noisy(4.0 / n)) for n in (2, 3)]  # 2 per node on 1, 2, 3 nodes
    found = series.build(recs)
    by_ranks = next(s for s in found if s.kind == "strong" and s.axis == "ranks")
    fig = _captured_figure(monkeypatch, by_ranks)
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8"]
        assert ax.xaxis.get_gridlines()[0].get_visible()
    by_nodes = next(s for s in found if s.axis == "nodes")
    fig = _captured_figure(monkeypatch, by_nodes)
    assert fig.axes[0].get_xlabel().startswith("nodes")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2", "3"]
    curve = series.build(
        [new_rec(2, 1, [1.0, 1.5], kernel="microbench.latency", size=s) for s in (1, 1024, 1 << 20)]
    )[0]
    fig = _captured_figure(monkeypatch, curve)
    ax = fig.axes[0]
    assert len(ax.collections) == 1  # the min..p99 band
    assert any(t.get_text().endswith("KiB") for t in ax.get_xticklabels())


def test_a_bimodal_timing_set_renders(tmp_path):
    folder = tmp_path / "res"
    for r, base in ((1, 1.0), (2, 0.5), (4, 0.25)):
        records.append(folder / "r.jsonl", new_rec(r, 1, [base] * 6 + [base * 3] * 5))
    out = tmp_path / "rep"
    assert report.main([str(folder), "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.html", "report.csv", "plots"}
    assert len(list((out / "plots").glob("*.png"))) == 1


def test_problem_sizes_carry_units():
    assert runs._problem("montecarlo", {"paths": 10**6, "size": 10**6, "seed": 1})[2] == "1 M paths"
    assert (
        runs._problem("kmer", {"reads": 5000, "size": 750000, "k": 21})[2]
        == "750 k bases, 5 k reads"
    )
    assert (
        runs._problem("matmul", {"n": 512, "size": 512, "bytes": 6291456})[2] == "6.29 MB (n 512)"
    )
    assert runs._problem("mean", {"shape": [1000, 100], "bytes": 800000})[2] == "800 kB (1000x100)"
    weak = [new_rec(r, 1, [1.0], size=10**6 * r) for r in (1, 2)]
    assert next(s for s in series.build(weak) if s.kind == "weak").problem == "24 MB"


def test_compare_tests_runs_when_there_are_enough():
    # Four runs each; within a run the repetitions agree, between runs they scatter.
    # Pooled, 40 vs 40 repetitions would look significant; over runs it is not.
    old = series.build([rec(1, 1000, [t] * 10) for t in (1.0, 1.3, 0.9, 1.2)])
    new = series.build([rec(1, 1000, [t] * 10) for t in (1.1, 1.35, 1.0, 1.25)])
    (c,) = checks.compare(new, old, 0.05)
    assert "4 vs 4 runs" in c["method"] and c["verdict"] == "no significant change"
    assert c["old"] == pytest.approx(1.1) and c["new"] == pytest.approx(1.175)
