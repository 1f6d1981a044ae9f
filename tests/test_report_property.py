"""hpcsuite.report never crashes on valid records (issue 12): property-based, with
hypothesis generating record sets as real runs produce them, and worse."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcsuite.core import records
from hpcsuite.report import __main__ as report

pytest.importorskip("matplotlib")

KERNELS = ["mean", "mean", "stream"]  # mixed kernels, but often enough one sweep


@st.composite
def timings(draw):
    """Skewed, bimodal, constant, tiny or single timings (seconds)."""
    shape = draw(st.sampled_from(["skewed", "bimodal", "constant", "single", "spread", "zeros"]))
    base = draw(st.floats(min_value=1e-7, max_value=100.0))
    n = 1 if shape == "single" else draw(st.integers(min_value=2, max_value=25))
    if shape == "constant":
        return [base] * n
    if shape == "zeros":
        return [0.0] * (n - 1) + [base]
    if shape == "skewed":
        return [base] * (n - 1) + [base * draw(st.floats(min_value=1.0, max_value=1e4))]
    if shape == "bimodal":
        return [base if i % 2 else base * 3 for i in range(n)]
    jitter = st.floats(min_value=0.5, max_value=2.0)
    return [base * draw(jitter) for _ in range(n)]


def _fom(draw, times, higher=True, unit="GB/s"):
    choice = draw(
        st.sampled_from(["median", "recorded", "nan", "string-nan", "none", "missing", "inf"])
    )
    if choice == "missing":
        return None
    value = {"nan": math.nan, "string-nan": "nan", "none": None, "inf": "inf"}.get(
        choice, draw(st.floats(min_value=1e-6, max_value=1e6))
    )
    fom = {"name": "bandwidth", "value": value, "unit": unit, "higher_is_better": higher}
    if choice == "median":
        fom.update(basis="median", low=value * 0.9, high=value * 1.1)
    return fom


@st.composite
def kernel_record(draw):
    kernel = draw(st.sampled_from(KERNELS))
    nodes = draw(st.sampled_from([1, 1, 2]))
    ranks = nodes * draw(st.sampled_from([1, 2, 4]))
    rows = draw(st.sampled_from([1000, 1000, 2000]))
    params = {"shape": [rows, 100], "bytes": rows * 800, "repeat": 3}
    if draw(st.booleans()):
        params.pop("bytes")
    times = draw(timings())
    t = (
        {"unit": "s", "samples": times}
        if draw(st.integers(0, 9))
        else {"unit": "s", "wall": times[0]}
    )
    env = records.fingerprint(
        hosts=[f"n{i}" for i in range(nodes)],
        mpi_library="MPICH 4",
        device="cpu",
        device_name="x86",
    )
    rec = records.make(
        kernel,
        params=params,
        ranks=ranks,
        env=env,
        times=t,
        fom=_fom(draw, times),
        check=draw(st.sampled_from([None, {"passed": True}, {"passed": True}, {"passed": False}])),
    )
    if draw(st.booleans()):  # a record from before provenance and ranks_per_node
        rec.pop("provenance", None)
        rec.pop("ranks_per_node", None)
        rec["env"].pop("thread_level", None)
    else:
        rec["ranks_per_node"] = draw(st.sampled_from([-(-ranks // nodes), ranks, "2", None]))
        rec["env"]["thread_level"] = draw(st.sampled_from(["single", "multiple", None]))
        if draw(st.booleans()):
            job = str(draw(st.integers(1, 10**6)))
            task = draw(st.sampled_from([None, "3"]))
            rec["provenance"]["slurm"] = {
                "job_id": job,
                "array_job_id": job if task else None,
                "array_task_id": task,
            }
    return rec


@st.composite
def microbench_record(draw):
    nodes = draw(st.sampled_from([1, 2]))
    test = draw(st.sampled_from(["latency", "bw", "barrier"]))
    size = 0 if test == "barrier" else 2 ** draw(st.integers(0, 20))
    lo = draw(st.floats(min_value=0.01, max_value=1e4))
    row = {
        "size": size,
        "min_us": lo,
        "p99_us": lo * draw(st.floats(1.0, 10.0)),
        "avg_us": lo * 1.5,
    }
    higher = test == "bw"
    fom = draw(
        st.sampled_from(
            [
                {
                    "name": "latency",
                    "value": row["avg_us"],
                    "unit": "us",
                    "higher_is_better": False,
                },
                {"name": "bandwidth", "value": lo, "unit": "MB/s", "higher_is_better": higher},
                {"name": "latency", "value": "nan", "unit": "us", "higher_is_better": False},
                None,
            ]
        )
    )
    env = records.fingerprint(
        hosts=[f"n{i}" for i in range(nodes)],
        mpi_library="MPICH 4",
        device="cpu",
        device_name="x86",
    )
    return records.make(
        f"microbench.{test}",
        ranks=2,
        env=env,
        fom=fom,
        result=row,
        params={"test": test, "size": size, "buffer": "numpy", "iterations": 100},
        times={"unit": "us", "median": row["min_us"]},
    )


record_sets = st.lists(
    st.one_of(kernel_record(), kernel_record(), microbench_record()), min_size=1, max_size=12
)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(new=record_sets, old=record_sets)
def test_report_finishes_and_writes_every_file(tmp_path_factory, new, old):
    base = tmp_path_factory.mktemp("prop")
    for name, recs in (("new", new), ("old", old)):
        with open(base / f"{name}.jsonl", "w") as f:
            for r in recs:
                f.write(json.dumps(r, allow_nan=False) + "\n")
    out = base / "rep"
    code = report.main(
        [
            str(base / "new.jsonl"),
            "--compare",
            str(base / "old.jsonl"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    for name in ("report.md", "report.html", "report.csv"):
        assert (out / name).stat().st_size > 0
    from hpcsuite.report import load, series

    found = series.build(load.load([str(base / "new.jsonl")])[0])
    drawable = [
        s
        for s in found
        if any(
            r["status"] == "ok"
            and (r["time_s"] > 0 if s.kind != "curve" else (r["fom"] or 0) > 0 and r["x"] > 0)
            for r in s.table()
        )
    ]
    pngs = list((out / "plots").glob("*.png")) if (out / "plots").exists() else []
    assert len(pngs) == len(drawable)
    assert len(list((out / "plots").glob("*.svg")) if pngs else []) == len(pngs)
    for s in found:
        for r in s.table():
            if r["samples"]:
                assert 0 <= r["time_low"] <= r["time_s"] <= r["time_high"]
            if r["fom"] is not None and r["fom_low"] is not None and r["fom_high"] is not None:
                assert r["fom_low"] <= r["fom"] <= r["fom_high"]
