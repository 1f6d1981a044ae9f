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
from hpcsuite.report import checks, load, scaling, series

ENV = records.fingerprint(hosts=["n1"], mpi_library="MPICH 4", device="cpu", device_name="x86")
OTHER_ENV = records.fingerprint(hosts=["n1"], mpi_library="Open MPI 5", device="cpu", device_name="x86")


def rec(ranks, rows, times, *, env=ENV, kernel="mean", passed=True, fom=1.0, **params):
    shape = [rows, 100]
    return records.make(kernel, params={"shape": shape, "bytes": rows * 800, "dtype": "float64",
                                        "repeat": len(times), **params},
                        ranks=ranks, env=env, times={"unit": "s", "samples": times},
                        fom={"name": "bandwidth", "value": fom, "unit": "GB/s", "higher_is_better": True},
                        check={"passed": passed})


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
        rec(1, 1000, [10.0, 10.2, 9.8]), rec(2, 1000, [5.1, 5.0]), rec(4, 1000, [3.0]),
        rec(4, 1000, [2.9, 3.1]),                                   # a repeat of the n=4 point
        rec(2, 2000, [10.4]), rec(4, 4000, [11.0]),                 # weak: 1000 rows per rank
        rec(1, 1000, [7.0], env=OTHER_ENV), rec(2, 1000, [3.0], env=OTHER_ENV),
        rec(3, 777, [1.0]),                                         # fits no series
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
        f"{good}:2: not JSON: Expecting property name enclosed in double quotes at column 2; skipped",
        f"{good}:3: record with bad ranks 'many'; skipped"]
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
    assert {c["verdict"] for c in checks.compare(one_new, one_old, 0.05)} == {"no significant change"}


def test_compare_never_matches_a_1_node_run_with_a_2_node_run():
    two_nodes = records.fingerprint(hosts=["n1", "n2"], mpi_library="MPICH 4", device="cpu", device_name="x86")
    old = series.build([rec(2, 1000, _noisy(5.0)), rec(4, 1000, _noisy(3.0))])
    new = series.build([rec(2, 1000, _noisy(9.0), env=two_nodes), rec(4, 1000, _noisy(6.0), env=two_nodes)])
    assert checks.compare(new, old, 0.05) == []


def test_fail_on_regression_exits_3(tmp_path):
    from hpcsuite.core.errors import CheckError

    for name, t in (("old", 5.0), ("new", 6.0)):
        records.append(tmp_path / name / "r.jsonl", rec(1, 1000, _noisy(10.0)))
        records.append(tmp_path / name / "r.jsonl", rec(2, 1000, _noisy(t)))
    argv = [str(tmp_path / "new"), "--compare", str(tmp_path / "old"), "--out", str(tmp_path / "rep"),
            "--no-plots", "--quiet"]
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
    curve = records.make("microbench.latency", params={"test": "latency", "size": 8, "buffer": "numpy"},
                         ranks=2, env=ENV, times={"unit": "us"},
                         fom={"name": "latency", "value": 1.5, "unit": "us", "higher_is_better": False})
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
        report.main([str(_results(tmp_path)), "--out", str(tmp_path / "r"), "--reference", str(ref),
                     "--no-plots", "--quiet"])


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(not _chromium() and os.environ.get("CI") != "true",
                    reason="no headless Chromium here (apt-get install chromium); CI installs it")
def test_html_renders_in_a_real_browser(tmp_path):
    import matplotlib.image
    import numpy as np

    assert _chromium(), "CI must install chromium (see .ci/run)"
    out = tmp_path / "rep"
    report.main([str(_results(tmp_path)), "--out", str(out), "--quiet"])
    shot = tmp_path / "shot.png"
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           f"--screenshot={shot}", "--window-size=1200,1600",
                           (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
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
    code, _, err = _run_cli([str(_results(tmp_path)), "--out", str(tmp_path / "rep"), "--no-plots",
                             "--reference", str(ref)], capsys)
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
            code, _, err = _run_cli([str(_results(tmp_path)), "--out", str(out), "--no-plots"], capsys)
            assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert "--out" in err
    finally:
        if locked is not None:
            locked.chmod(0o700)
