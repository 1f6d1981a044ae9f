from __future__ import annotations

import datetime
import errno
import json
import math
import multiprocessing
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import ROOT, launch

from hpcsuite.core import records
from hpcsuite.core.errors import OutputError


def _record(i: int = 0) -> dict:
    env = records.fingerprint(
        hosts=["b", "a", "a"], mpi_library="MPICH 4", device="cpu", device_name="x86"
    )
    return records.make(
        "mean",
        params={"i": i, "shape": (3, 4)},
        ranks=2,
        env=env,
        times={"unit": "s", "reduction": [0.1]},
        fom={"name": "bandwidth", "value": 1.5, "unit": "GB/s"},
        result=np.float64(math.nan),
        argv=["x"],
    )


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
    assert sorted(r["params"]["i"] for _, r, _ in rows) == sorted(
        w * 100 + i for w in range(4) for i in range(50)
    )


# ---------------------------------------------------------------------------------------
# provenance

SLURM = {
    "SLURM_JOB_ID": "4242",
    "SLURM_ARRAY_JOB_ID": "4240",
    "SLURM_ARRAY_TASK_ID": "2",
    "SLURM_JOB_PARTITION": "debug",
    "SLURM_JOB_ACCOUNT": "proj7",
    "SLURM_JOB_NODELIST": "node[1-2]",
    "SLURM_CPUS_PER_TASK": "2",
    "SLURM_NTASKS": "4",
    "SLURM_NTASKS_PER_NODE": "2",
    "SLURM_JOB_NAME": "hpcsuite-mean",
    "SLURM_CLUSTER_NAME": "c1",
    "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1",
    "UCX_TLS": "tcp,self",
    "FI_PROVIDER": "tcp",
    "OMPI_MCA_btl": "^openib",
    "PMIX_MCA_gds": "hash",
    "I_MPI_PIN": "1",
    "NCCL_DEBUG": "INFO",
    "MPICH_GPU_SUPPORT_ENABLED": "0",
    "OMP_NUM_THREADS": "2",
    "OPENBLAS_NUM_THREADS": "1",
    "HOME": "/root",
    "UCXX": "not tuning",
    "MY_FI_THING": "no",
    "PATH": "/bin",
}


def _with(environ, **kw):
    env = records.fingerprint(
        hosts=["n1", "n1", "n2", "n2", "n2"],
        mpi_library="MPICH Version: 5",
        device="cpu",
        device_name="x86",
        thread_level=kw.pop("thread_level", "multiple"),
    )
    return records.make(
        "mean",
        params={},
        ranks=5,
        env=env,
        times={"unit": "s", "samples": [1.0]},
        fom=None,
        argv=["python", "-m", "hpcsuite.mean", "--check"],
        environ=environ,
        **kw,
    )


def test_provenance_carries_the_slurm_job_mpi_tuning_and_threads():
    rec = _with(SLURM)
    p = rec["provenance"]
    assert p["slurm"] == {
        "job_id": "4242",
        "array_job_id": "4240",
        "array_task_id": "2",
        "partition": "debug",
        "account": "proj7",
        "nodelist": "node[1-2]",
        "cpus_per_task": 2,
        "ntasks": 4,
        "ntasks_per_node": "2",
        "job_name": "hpcsuite-mean",
        "cluster": "c1",
        "step_id": None,
        "restarts": None,
    }
    assert p["mpi"] == {
        "library": "MPICH Version: 5",
        "thread_level": "multiple",
        "tuning": {
            "FI_PROVIDER": "tcp",
            "I_MPI_PIN": "1",
            "MPICH_GPU_SUPPORT_ENABLED": "0",
            "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1",
            "NCCL_DEBUG": "INFO",
            "OMPI_MCA_btl": "^openib",
            "PMIX_MCA_gds": "hash",
            "UCX_TLS": "tcp,self",
        },
    }
    assert p["threads"] == {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    assert p["argv"] == rec["argv"] == ["python", "-m", "hpcsuite.mean", "--check"]
    assert p["hpcsuite"] == rec["version"]
    assert rec["env"]["thread_level"] == "multiple"
    json.dumps(rec, allow_nan=False)


def test_outside_slurm_there_is_no_job_and_the_layout_still_counts():
    rec = _with({"PATH": "/bin"})
    assert rec["provenance"]["slurm"] is None and rec["provenance"]["mpi"]["tuning"] == {}
    assert rec["ranks_per_node"] == 3 and rec["nodes"] == 2  # 2 ranks on n1, 3 on n2
    # Slurm's layout text when --ntasks-per-node was not given; SLURM_JOBID of old Slurm.
    slurm = records.slurm_job(
        {"SLURM_JOBID": "7", "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_NPROCS": "4"}
    )
    assert slurm["job_id"] == "7" and slurm["ntasks_per_node"] == "2(x2)" and slurm["ntasks"] == 4
    assert slurm["partition"] is None and slurm["cpus_per_task"] is None


def test_ranks_per_node_given_or_derived():
    env = {"nodes": 2, "device": "cpu"}
    assert (
        records.make("k", params={}, ranks=5, env=env, times={}, fom=None, argv=[], environ={})[
            "ranks_per_node"
        ]
        == 3
    )
    assert (
        records.make(
            "k",
            params={},
            ranks=5,
            env=env,
            times={},
            fom=None,
            argv=[],
            environ={},
            ranks_per_node=4,
        )["ranks_per_node"]
        == 4
    )


def test_timestamps_are_utc_with_z_and_agree():
    rec = _with({})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["timestamp"])
    assert rec["provenance"]["utc"] == rec["timestamp"]
    stamp = datetime.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 3600


def test_git_commit_of_the_checkout():
    if not (ROOT / ".git").exists():
        pytest.skip("not run from a git checkout")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    git = _with({})["provenance"]["git"]
    assert git["commit"] == head and re.fullmatch(r"[0-9a-f]{40}", git["commit"])
    assert git["describe"].startswith(head[:12]) or "-g" in git["describe"]
    assert git["dirty"] == git["describe"].endswith("-dirty")


def test_git_is_none_outside_a_checkout(monkeypatch):
    monkeypatch.setattr(records, "_checkout", lambda: None)
    records.git_info.cache_clear()
    try:
        assert _with({})["provenance"]["git"] is None and records.git_revision() is None
    finally:
        records.git_info.cache_clear()


def test_a_hanging_git_is_cut_off(monkeypatch, tmp_path):
    fake = tmp_path / "git"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\nprint('a' * 40)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(records, "GIT_TIMEOUT", 0.5)
    monkeypatch.setattr(records, "_checkout", lambda: tmp_path)
    records.git_info.cache_clear()
    try:
        assert records.git_info() is None  # not 'aaa...': the command was cut off
    finally:
        records.git_info.cache_clear()


def test_blas_and_packages(monkeypatch):
    pytest.importorskip("threadpoolctl")
    blas = _with({})["provenance"]["blas"]
    assert blas and all(isinstance(b["num_threads"], int) and b["internal_api"] for b in blas)
    # torch and CuPy only when loaded; never imported for the record.
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(__version__="13.9"))
    packages = _with({})["provenance"]["packages"]
    assert (
        packages["cupy"] == "13.9"
        and "torch" not in packages
        and packages["numpy"] == np.__version__
    )
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # not installed: no BLAS list, no error
    assert _with({})["provenance"]["blas"] == []


def test_records_never_import_mpi4py():
    code = (
        "import sys, hpcsuite.core.records as r\nenv = r.fingerprint(hosts=['a'], mpi_library='m',"
        " device='cpu', device_name='d')\nrec = r.make('k', params={}, ranks=1, env=env, times={},"
        " fom=None)\nassert 'mpi4py' not in sys.modules, 'imported'\nassert"
        " rec['env']['thread_level'] is None and rec['provenance']['mpi']['thread_level'] is None\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_thread_level_of_a_running_mpi_is_found_without_being_passed():
    code = (
        "from mpi4py import MPI\nimport hpcsuite.core.records as r\n"
        "env = r.fingerprint(hosts=['a'], mpi_library='m', device='cpu', device_name='d')\n"
        "names = {MPI.THREAD_SINGLE: 'single', MPI.THREAD_FUNNELED: 'funneled',\n"
        "         MPI.THREAD_SERIALIZED: 'serialized', MPI.THREAD_MULTIPLE: 'multiple'}\n"
        "assert env['thread_level'] == names[MPI.Query_thread()], env\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------
# appending: the whole line or nothing


def test_a_full_disk_is_one_clear_error():
    with pytest.raises(
        OutputError, match=r"^cannot write the record to '/dev/full': No space left on device"
    ):
        records.append("/dev/full", _record())


def test_an_unusable_path_is_an_output_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write the record to"):
        records.append(tmp_path / "file" / "sub" / "r.jsonl", _record())
    with pytest.raises(OutputError):
        records.append(tmp_path, _record())  # a folder


def _short_then(error):
    """An os.write that writes the first 25 bytes for real, then fails (or writes nothing)."""
    real = os.write
    calls = []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[:25]))
        if error is None:
            return 0
        raise OSError(error, os.strerror(error))

    return write


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO, errno.EDQUOT, None])
def test_a_short_write_leaves_the_file_byte_identical(tmp_path, monkeypatch, error):
    path = tmp_path / "r.jsonl"
    records.append(path, _record(1))
    before = path.read_bytes()
    monkeypatch.setattr(records.os, "write", _short_then(error))
    with pytest.raises(OutputError, match="the file is as it was"):
        records.append(path, _record(2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    records.append(path, _record(3))
    assert [(n, r["params"]["i"], e) for n, r, e in records.read(path)] == [
        (1, 1, None),
        (2, 3, None),
    ]


def test_an_interrupted_write_is_undone_and_the_interrupt_goes_on(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    records.append(path, _record(1))
    before = path.read_bytes()
    real = os.write

    def write(fd, data):
        real(fd, bytes(data[:25]))
        raise KeyboardInterrupt

    monkeypatch.setattr(records.os, "write", write)
    with pytest.raises(KeyboardInterrupt):
        records.append(path, _record(2))
    assert path.read_bytes() == before


def test_a_failed_sync_is_undone_too(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    records.append(path, _record(1))
    before = path.read_bytes()

    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(records.os, "fsync", fsync)
    with pytest.raises(OutputError, match="Input/output error; the file is as it was"):
        records.append(path, _record(2))
    assert path.read_bytes() == before


def test_a_new_file_that_fails_is_left_empty(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    monkeypatch.setattr(records.os, "write", _short_then(errno.ENOSPC))
    with pytest.raises(OutputError):
        records.append(path, _record(1))
    assert path.read_bytes() == b""


def test_a_half_line_from_a_crashed_writer_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "r.jsonl"
    records.append(path, _record(1))
    with open(path, "ab") as f:
        f.write(json.dumps(_record(2)).encode()[:40])  # cut mid-record, no newline
    records.append(path, _record(3))
    rows = list(records.read(path))
    assert [(n, r and r["params"]["i"]) for n, r, _ in rows] == [(1, 1), (2, None), (3, 3)]
    assert "not JSON" in rows[1][2]


def test_binary_garbage_is_one_bad_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage\n")
    records.append(path, _record(1))
    rows = list(records.read(path))
    assert rows[0][1] is None and rows[1][1]["params"]["i"] == 1


@pytest.mark.parametrize("n", [1, 2])
def test_a_run_writing_to_a_full_disk_exits_2_with_one_line(n):
    proc = launch(
        n, "-m", "hpcsuite.mean", "--shape", "100x10", "--quiet", "--json", "/dev/full", timeout=60
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "No space left on device" in lines[0], proc.stderr
    assert len([x for x in lines if "cannot write the record" in x]) == 1, proc.stderr
