from __future__ import annotations

import json
import math
import multiprocessing

import numpy as np

from hpcsuite.core import records


def _record(i: int = 0) -> dict:
    env = records.fingerprint(hosts=["b", "a", "a"], mpi_library="MPICH 4", device="cpu",
                              device_name="x86")
    return records.make("mean", params={"i": i, "shape": (3, 4)}, ranks=2, env=env,
                        times={"unit": "s", "reduction": [0.1]},
                        fom={"name": "bandwidth", "value": 1.5, "unit": "GB/s"},
                        result=np.float64(math.nan), argv=["x"])


def test_record_holds_the_schema_fields_and_plain_json():
    rec = _record()
    assert rec["schema"] == records.SCHEMA
    assert rec["nodes"] == 2 and rec["env"]["hosts"] == ["a", "b"]
    assert rec["params"]["shape"] == [3, 4]
    assert rec["result"] == "nan"  # strict JSON has no NaN
    json.dumps(rec, allow_nan=False)


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "sub" / "r.jsonl"
    records.append(path, _record(1))
    records.append(path, _record(2))
    got = [(n, r["params"]["i"], e) for n, r, e in records.read(path)]
    assert got == [(1, 1, None), (2, 2, None)]


def test_read_reports_bad_lines_with_numbers(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_record()) + "\n{broken\n\n[1, 2]\n")
    rows = list(records.read(path))
    assert [n for n, _, _ in rows] == [1, 2, 4]
    assert rows[0][2] is None and "not JSON" in rows[1][2] and "not an" in rows[2][2]


def _append_many(args):
    path, worker = args
    for i in range(50):
        records.append(path, _record(worker * 100 + i))


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "r.jsonl"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(str(path), w) for w in range(4)])
    rows = list(records.read(path))
    assert len(rows) == 200 and all(e is None for _, _, e in rows)
    assert sorted(r["params"]["i"] for _, r, _ in rows) == sorted(w * 100 + i for w in range(4) for i in range(50))
