"""The real slurm/*.sbatch templates and sweeps on a throwaway Slurm cluster of 2 nodes.

Skips where Slurm is not installed, except in CI (CI=true), where that is a failure:
.ci/run installs Debian's slurmctld, slurmd and slurm-client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT
from slurm_cluster import SlurmCluster, missing

if missing() and os.environ.get("CI") != "true":
    pytest.skip(f"Slurm is not installed here (missing {', '.join(missing())}; "
                "apt-get install slurmctld slurmd slurm-client)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    assert not missing(), f"CI must install Slurm; missing {missing()}"
    root = Path(tempfile.mkdtemp(prefix="hpcsuite-slurm-"))
    c = SlurmCluster(root, nodes=2, cpus=4)
    c.env["HPCSUITE_PYTHON"] = sys.executable
    c.env["PATH"] = f"{Path(sys.executable).parent}:{c.env.get('PATH', '')}"
    try:
        yield c.start()
    finally:
        c.stop()


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_single_node_template_writes_its_record(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path / "results")
    job = cluster.submit(ROOT / "slurm" / "mean.sbatch", "--shape", "3000x200", "--check",
                         sbatch_args=("--ntasks-per-node=2",), cwd=tmp_path)
    assert cluster.wait(job) == "COMPLETED", (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    log = (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    assert "srun --mpi=pmi2" in log and "check      ok" in log
    recs = _records(tmp_path / "results")
    assert len(recs) == 1 and (tmp_path / "results" / f"hpcsuite-mean-{job}.jsonl").exists()
    assert recs[0]["ranks"] == 2 and recs[0]["check"]["passed"] and recs[0]["env"]["hosts"] == ["node1"]


def test_two_node_mpi_job_spans_both_nodes(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path)
    job = cluster.submit(ROOT / "slurm" / "mean.sbatch", "--shape", "2000x300", "--distribute", "scatter",
                         sbatch_args=("--nodes=2", "--ntasks-per-node=2"), cwd=tmp_path)
    assert cluster.wait(job) == "COMPLETED", (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    rec = _records(tmp_path)[0]
    assert rec["ranks"] == 4 and rec["nodes"] == 2 and rec["env"]["hosts"] == ["node1", "node2"]


def test_microbench_template_between_two_nodes(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path)
    job = cluster.submit(ROOT / "slurm" / "microbench.sbatch", "latency", "bw", "--validate", "--max", "1K",
                         "--iterations", "5", cwd=tmp_path)
    assert cluster.wait(job) == "COMPLETED", (tmp_path / f"hpcsuite-microbench-{job}.out").read_text()
    recs = _records(tmp_path)
    assert {r["kernel"] for r in recs} == {"microbench.latency", "microbench.bw"}
    assert all(r["nodes"] == 2 and r["ranks"] == 2 for r in recs)


def test_a_failing_job_is_reported_failed_with_its_log(cluster, tmp_path):
    job = cluster.submit(ROOT / "slurm" / "mean.sbatch", "--source", "missing.npy",
                         sbatch_args=("--ntasks-per-node=2",), cwd=tmp_path)
    assert cluster.wait(job) == "FAILED"
    assert "no such file: 'missing.npy'" in (tmp_path / f"hpcsuite-mean-{job}.out").read_text()


def _sweep(cluster, out, *args):
    return subprocess.run([sys.executable, "-m", "hpcsuite.sweep", "mean", "--launcher", "slurm",
                           "--out", str(out), *args], env=cluster.env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_strong_scaling_sweep_on_slurm_end_to_end(cluster, tmp_path):
    out = tmp_path / "sweep"
    proc = _sweep(cluster, out, "--ranks", "1,2,4", "--ranks-per-node", "2", "--one-at-a-time", "--",
                  "--shape", "4000x1000", "--repeat", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 points done" in proc.stdout and "strong scaling" in proc.stdout
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["ranks"], r["nodes"]) for r in recs) == [(1, 1), (2, 1), (4, 2)]
    assert "0 pending, 0 running, 3 done, 0 failed of 3" in proc.stderr
    again = _sweep(cluster, out, "--ranks", "1,2,4", "--ranks-per-node", "2", "--one-at-a-time", "--",
                   "--shape", "4000x1000", "--repeat", "3")
    assert "resuming: 3 of 3 points already done" in again.stderr


def test_a_failing_sweep_point_is_reported_with_its_log_tail(cluster, tmp_path):
    proc = _sweep(cluster, tmp_path / "bad", "--ranks", "1,2", "--", "--source", "missing.npy")
    assert proc.returncode == 1
    assert "point mean-n1-r0 (1 ranks) failed" in proc.stdout and "no such file" in proc.stdout
