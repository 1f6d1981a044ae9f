"""The pure parts of the Slurm launcher and of sweeps, and a local sweep end to end."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from conftest import python
from hpcsuite import sweep
from hpcsuite.core.errors import UsageError
from hpcsuite.slurm import command

JOB = {"SLURM_JOB_ID": "42", "SLURM_JOB_NAME": "hpcsuite-mean", "SLURM_NTASKS": "8",
       "SLURM_SUBMIT_DIR": "/home/u/run"}


def test_srun_with_the_pmi_plugin_of_the_mpi_family():
    cmd = command("mean", ["--check"], JOB, python="py", family="mpich", srun=True)
    assert cmd == ["srun", "--mpi=pmi2", "py", "-m", "hpcsuite.mean", "--check",
                   "--json", "/home/u/run/results/hpcsuite-mean-42.jsonl"]
    assert command("mean", [], JOB, python="py", family="openmpi", srun=True)[1] == "--mpi=pmix"
    assert command("mean", [], JOB, python="py", family="unknown", srun=True)[:2] == ["srun", "py"]


def test_mpirun_fallback_and_overrides():
    cmd = command("mean", [], JOB, python="py", family="mpich", srun=False)
    assert cmd[:3] == ["mpirun", "-n", "8"]
    env = {**JOB, "HPCSUITE_LAUNCHER": "mpirun", "HPCSUITE_RESULTS": "/scratch/r"}
    cmd = command("mean", [], env, python="py", family="mpich", srun=True)
    assert cmd[0] == "mpirun" and cmd[-1] == "/scratch/r/hpcsuite-mean-42.jsonl"
    env = {**JOB, "HPCSUITE_SRUN_MPI": "cray_shasta"}
    assert command("mean", [], env, python="py", family="mpich", srun=True)[1] == "--mpi=cray_shasta"
    with pytest.raises(UsageError, match="HPCSUITE_LAUNCHER='aprun'"):
        command("mean", [], {**JOB, "HPCSUITE_LAUNCHER": "aprun"}, python="py", family="mpich", srun=True)


def test_user_json_and_odd_arguments_pass_through_untouched():
    odd = ["--json", "my file.jsonl", "--source", "a b'; rm -rf $HOME.npy"]
    cmd = command("mean", odd, JOB, python="py", family="mpich", srun=True)
    assert cmd[-4:] == odd and cmd.count("--json") == 1
    with pytest.raises(UsageError, match="unknown module 'train'"):
        command("train", [], JOB, python="py", family="mpich", srun=True)


def test_sweep_plan_strong_and_weak():
    strong = sweep.plan("mean", [4, 1, 2], ["--check"], repeat=2)
    assert [(p.name, p.ranks) for p in strong] == [("mean-n1-r0", 1), ("mean-n1-r1", 1), ("mean-n2-r0", 2),
                                                   ("mean-n2-r1", 2), ("mean-n4-r0", 4), ("mean-n4-r1", 4)]
    weak = sweep.plan("mean", [1, 3], [], weak_shape=(100, 7), ranks_per_node=2)
    assert [p.args for p in weak] == [("--shape", "100x7"), ("--shape", "300x7")]
    assert [p.nodes for p in weak] == [1, 2]


@pytest.mark.parametrize("kwargs,message", [
    ({"module": "nosuch", "ranks": [1]}, "unknown module"),
    ({"module": "mean", "ranks": [0, 2]}, "positive rank counts"),
    ({"module": "microbench", "ranks": [2], "weak_shape": (10, 10)}, "needs a module with --shape"),
    ({"module": "mean", "ranks": [2], "weak_shape": (10, 10), "args": ["--shape", "5x5"]}, "not also --shape"),
])
def test_sweep_plan_refuses_what_cannot_run(kwargs, message):
    args = kwargs.pop("args", [])
    with pytest.raises(UsageError, match=message):
        sweep.plan(kwargs.pop("module"), kwargs.pop("ranks"), args, **kwargs)


def test_job_script_quotes_every_value(tmp_path):
    point = sweep.Point("mean-n2-r0", 2, 1, 0, ("--source", "x y'$(reboot).npy"))
    text = sweep.job_script(point, "mean", tmp_path, python="/opt/py thon", ranks_per_node=None,
                            time_limit="00:05:00")
    exec_line = text.splitlines()[-1]
    assert shlex.split(exec_line[len("exec "):]) == ["/opt/py thon", "-m", "hpcsuite.slurm", "mean", "--source",
                                                     "x y'$(reboot).npy", "--json",
                                                     str(tmp_path / "records" / "mean-n2-r0.jsonl")]
    assert "#SBATCH --ntasks=2" in text and "#SBATCH --nodes=1" in text and "#SBATCH --exclusive" in text
    serial = sweep.job_script(point, "mean", tmp_path, python="py", ranks_per_node=None, time_limit="1",
                              exclusive=False, serial_name="s1")
    assert "--exclusive" not in serial and "#SBATCH --job-name=s1" in serial
    assert "#SBATCH --dependency=singleton" in serial


def test_local_sweep_collects_resumes_and_reports_failures(tmp_path):
    out = tmp_path / "sw"
    args = ["-m", "hpcsuite.sweep", "mean", "--ranks", "1,2", "--out", str(out), "--", "--shape", "300x40"]
    first = python(*args, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "strong scaling" in first.stdout and "2 of 2 points done" in first.stdout
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["ranks"] for r in recs) == [1, 2]
    (out / "records" / "mean-n2-r0.jsonl").unlink()  # as if that point had never finished
    second = python(*args, timeout=120)
    assert "resuming: 1 of 2 points already done" in second.stderr and second.returncode == 0
    assert len((out / "records" / "mean-n1-r0.jsonl").read_text().splitlines()) == 1  # not rerun
    other = python(*args[:-2], "--shape", "10x10", timeout=60)
    assert other.returncode == 2 and "holds a different sweep" in other.stderr
    bad = python("-m", "hpcsuite.sweep", "mean", "--ranks", "1", "--out", str(tmp_path / "bad"), "--",
                 "--source", "missing.npy", timeout=60)
    assert bad.returncode == 1
    assert "point mean-n1-r0 (1 ranks) failed" in bad.stdout and "no such file" in bad.stdout


def test_dry_run_prints_scripts_and_runs_nothing(tmp_path):
    proc = python("-m", "hpcsuite.sweep", "mean", "--ranks", "1,2", "--launcher", "slurm", "--dry-run",
                  "--out", str(tmp_path / "d"), "--", "--check", timeout=30)
    assert proc.returncode == 0 and proc.stdout.count("#!/bin/bash") == 2
    assert not (tmp_path / "d").exists()
    assert sys.executable in proc.stdout


def test_every_parallel_module_has_its_batch_templates():
    from conftest import ROOT
    from hpcsuite.registry import GPU, PARALLEL

    for name in PARALLEL:
        for variant in (name, f"{name}-gpu") if name in GPU else (name,):
            script = ROOT / "slurm" / f"{variant}.sbatch"
            assert script.exists(), f"{name} needs slurm/{variant}.sbatch (README, Contributing)"
            text = script.read_text()
            assert f"-m hpcsuite.slurm {name}" in text and '"$@"' in text and "#SBATCH --output=%x-%j.out" in text
            assert ("--gpus-per-node" in text) == variant.endswith("-gpu")
