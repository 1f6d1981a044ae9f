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
import time
from pathlib import Path

import pytest
from conftest import ROOT, launch
from slurm_cluster import PREFIX, SlurmCluster, missing

if missing() and os.environ.get("CI") != "true":
    pytest.skip(
        f"Slurm is not installed here (missing {', '.join(missing())}; "
        "apt-get install slurmctld slurmd slurm-client)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    assert not missing(), f"CI must install Slurm; missing {missing()}"
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    # 32 CPUs and 4 GPUs (GRES on stand-in device files) per node: what the -gpu templates ask
    c = SlurmCluster(root, nodes=2, cpus=32, gpus=4)
    c.env["HPCSUITE_PYTHON"] = sys.executable
    c.env["PATH"] = f"{Path(sys.executable).parent}:{c.env.get('PATH', '')}"
    try:
        yield c.start()
    finally:
        c.stop()


def _records(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted(folder.glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_single_node_template_writes_its_record(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path / "results")
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--shape",
        "3000x200",
        "--check",
        sbatch_args=("--ntasks-per-node=2",),
        cwd=tmp_path,
    )
    assert cluster.wait(job) == "COMPLETED", (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    log = (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    # the site's MpiDefault (pmi2) kept, the job's --cpus-per-task passed on (Slurm >= 22.05)
    assert "tasks: srun --cpus-per-task=1 " in log and "check      ok" in log
    recs = _records(tmp_path / "results")
    assert len(recs) == 1 and (tmp_path / "results" / f"hpcsuite-mean-{job}.jsonl").exists()
    assert (
        recs[0]["ranks"] == 2
        and recs[0]["check"]["passed"]
        and recs[0]["env"]["hosts"] == ["node1"]
    )


def test_two_node_mpi_job_spans_both_nodes(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path)
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--shape",
        "2000x300",
        "--distribute",
        "scatter",
        sbatch_args=("--nodes=2", "--ntasks-per-node=2"),
        cwd=tmp_path,
    )
    assert cluster.wait(job) == "COMPLETED", (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    rec = _records(tmp_path)[0]
    assert rec["ranks"] == 4 and rec["nodes"] == 2 and rec["env"]["hosts"] == ["node1", "node2"]


def test_microbench_template_between_two_nodes(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path)
    job = cluster.submit(
        ROOT / "slurm" / "microbench.sbatch",
        "latency",
        "bw",
        "--validate",
        "--max",
        "1K",
        "--iterations",
        "5",
        cwd=tmp_path,
    )
    assert cluster.wait(job) == "COMPLETED", (
        tmp_path / f"hpcsuite-microbench-{job}.out"
    ).read_text()
    recs = _records(tmp_path)
    assert {r["kernel"] for r in recs} == {"microbench.latency", "microbench.bw"}
    assert all(r["nodes"] == 2 and r["ranks"] == 2 for r in recs)


def test_a_failing_job_is_reported_failed_with_its_log(cluster, tmp_path):
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--source",
        "missing.npy",
        sbatch_args=("--ntasks-per-node=2",),
        cwd=tmp_path,
    )
    assert cluster.wait(job) == "FAILED"
    assert "no such file: 'missing.npy'" in (tmp_path / f"hpcsuite-mean-{job}.out").read_text()


def _sweep(cluster, out, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hpcsuite.sweep",
            "mean",
            "--launcher",
            "slurm",
            "--out",
            str(out),
            *args,
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_strong_scaling_sweep_on_slurm_end_to_end(cluster, tmp_path):
    out = tmp_path / "sweep"
    proc = _sweep(
        cluster,
        out,
        "--ranks",
        "1,2,4",
        "--ranks-per-node",
        "2",
        "--one-at-a-time",
        "--",
        "--shape",
        "4000x1000",
        "--repeat",
        "3",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 points done" in proc.stdout and "strong scaling" in proc.stdout
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["ranks"], r["nodes"]) for r in recs) == [(1, 1), (2, 1), (4, 2)]
    assert "0 pending, 0 running, 3 done, 0 failed of 3" in proc.stderr
    again = _sweep(
        cluster,
        out,
        "--ranks",
        "1,2,4",
        "--ranks-per-node",
        "2",
        "--one-at-a-time",
        "--",
        "--shape",
        "4000x1000",
        "--repeat",
        "3",
    )
    assert "resuming: 3 of 3 points already done" in again.stderr


def test_a_failing_sweep_point_is_reported_with_its_log_tail(cluster, tmp_path):
    proc = _sweep(cluster, tmp_path / "bad", "--ranks", "1,2", "--", "--source", "missing.npy")
    assert proc.returncode == 1
    assert "point mean-n1-r0 (1 ranks) failed" in proc.stdout and "no such file" in proc.stdout


def _signal_usr1(cluster, job):
    """What ``--signal=B:USR1@60`` does before the time limit, now: USR1, once, to the
    batch step, whose launcher forwards it through srun to the ranks."""
    cluster.run("scancel", "--signal=USR1", "--batch", job)


def _wait_until_training(checkpoint: Path, timeout: float = 90) -> None:
    """Until the job's trainer has written its first checkpoint (``--checkpoint-every``):
    it trains now. Not a line of the job's log: on a loaded machine slurmstepd passed the
    ranks' output on seconds late, at times all of it when the run ended, and a USR1 sent
    on seeing "epoch 3" came after the last epoch (the lost signals of session 6)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not checkpoint.exists():
        time.sleep(0.05)


def test_training_signalled_before_its_limit_requeues_and_resumes_losslessly(cluster, tmp_path):
    if os.environ.get("CI") != "true":
        pytest.importorskip("torch")
    cluster.env.update(
        HPCSUITE_RESULTS=str(tmp_path / "results"), HPCSUITE_CHECKPOINTS=str(tmp_path / "ck")
    )
    # Enough epochs that the signal lands mid-training also when it is slow to arrive on a
    # loaded machine (500 epochs of 3 steps: about 20 s there), each a few large steps:
    # the job and the uninterrupted run each train every epoch. A checkpoint every 10
    # epochs says when training runs.
    args = ("--epochs", "500", "--batch-size", "256", "--checkpoint-every", "30")
    job = cluster.submit(
        ROOT / "slurm" / "train.mnist.sbatch",
        *args,
        sbatch_args=("--ntasks-per-node=2",),
        cwd=tmp_path,
    )
    log = tmp_path / f"hpcsuite-train-mnist-{job}.out"
    _wait_until_training(tmp_path / "ck" / job / "mnist.pt")
    _signal_usr1(cluster, job)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        cluster.field(job, "Restarts"),
        cluster.field(job, "JobState"),
    ) != ("1", "PENDING"):
        time.sleep(0.1)
    assert cluster.field(job, "Restarts") == "1", log.read_text()
    # Slurm holds a requeued job back until the old credentials expire (5 s on the test
    # cluster, AuthInfo=cred_expire), then runs it again.
    assert cluster.wait(job, timeout=120) == "COMPLETED", log.read_text()
    text = log.read_text()
    assert "SIGUSR1: checkpoint at epoch" in text and f"requeueing job {job}" in text
    assert "resumed from" in text  # the requeued run went on from the checkpoint, not from scratch
    resumed = json.loads(
        (tmp_path / "results" / f"hpcsuite-train-mnist-{job}.jsonl").read_text().splitlines()[-1]
    )
    # The same training without interruption, outside Slurm: the same parameters, bit for bit.
    uninterrupted = launch(
        2,
        "-m",
        "hpcsuite.train.mnist",
        "--quiet",
        *args,
        "--checkpoint-dir",
        str(tmp_path / "straight"),
        "--json",
        str(tmp_path / "straight.jsonl"),
        timeout=180,
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    straight = json.loads((tmp_path / "straight.jsonl").read_text())
    assert resumed["result"]["params_sha256"] == straight["result"]["params_sha256"]
    assert resumed["env"]["hosts"] == ["node1"] and resumed["ranks"] == 2


def _job_fields(cluster, job) -> dict[str, str]:
    out = cluster.run("scontrol", "show", "job", job, "-o").stdout
    return dict(f.split("=", 1) for f in out.split() if "=" in f)


def test_a_record_carries_its_slurm_job_as_scontrol_shows_it(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path)
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--shape",
        "2000x300",
        "--repeat",
        "2",
        sbatch_args=(
            "--nodes=2",
            "--ntasks-per-node=1",
            "--cpus-per-task=2",
            "--job-name=prov-check",
        ),
        cwd=tmp_path,
    )
    assert cluster.wait(job) == "COMPLETED", (tmp_path / f"prov-check-{job}.out").read_text()
    rec = _records(tmp_path)[0]
    slurm = rec["provenance"]["slurm"]
    fields = _job_fields(cluster, job)
    assert slurm["job_id"] == job == fields["JobId"]
    assert slurm["partition"] == fields["Partition"] == "debug"
    assert slurm["nodelist"] == fields["NodeList"] == "node[1-2]"
    assert slurm["cpus_per_task"] == int(fields["CPUs/Task"]) == 2
    assert slurm["ntasks"] == int(fields["NumTasks"]) == 2
    assert slurm["job_name"] == fields["JobName"] == "prov-check"
    assert slurm["cluster"] == "hpcsuite-test" and slurm["array_job_id"] is None
    assert rec["nodes"] == 2 and rec["ranks_per_node"] == 1 and rec["ranks"] == 2
    assert rec["provenance"]["threads"].get("OMP_NUM_THREADS") == "2"  # from --cpus-per-task
    argv = rec["provenance"]["argv"]
    assert argv == rec["argv"] and "--shape 2000x300 --repeat 2 --json" in " ".join(argv)
    assert rec["timestamp"].endswith("Z")


def test_a_job_over_its_slurm_mem_is_refused_naming_the_limit(cluster, tmp_path):
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--shape",
        "3000x2000",
        sbatch_args=("--ntasks-per-node=2", "--mem=20", "--job-name=mem-check"),
        cwd=tmp_path,
    )
    assert cluster.wait(job) == "FAILED"
    log = (tmp_path / f"mem-check-{job}.out").read_text()
    assert "needs 0.05 GB" in log and "(Slurm --mem)" in log and "Traceback" not in log, log


def _launch_line(log: str) -> str:
    return next(line for line in log.splitlines() if line.startswith("hpcsuite.slurm: job"))


def test_a_site_default_mpi_the_library_cannot_use_is_replaced(cluster, tmp_path):
    # SLURM_MPI_TYPE=none is what srun would use: MPICH would start 2 singletons of size 1
    cluster.env.update(HPCSUITE_RESULTS=str(tmp_path / "r"), SLURM_MPI_TYPE="none")
    try:
        job = cluster.submit(
            ROOT / "slurm" / "mean.sbatch",
            "--shape",
            "2000x100",
            sbatch_args=("--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=2"),
            cwd=tmp_path,
        )
        state = cluster.wait(job)
    finally:
        del cluster.env["SLURM_MPI_TYPE"]
    log = (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    assert state == "COMPLETED", log
    assert "srun --mpi=pmi2 --cpus-per-task=2 " in _launch_line(log)
    [rec] = _records(tmp_path / "r")
    assert rec["ranks"] == 2 and rec["env"]["hosts"] == ["node1", "node2"]
    assert rec["provenance"]["threads"].get("OMP_NUM_THREADS") == "2"


def test_an_export_none_job_runs_the_site_setup_file(cluster, tmp_path):
    # --export=NONE: the job inherits nothing (no venv on PATH, no HPCSUITE_*); the
    # site's set-up lines in hpcsuite-setup.sh in the submission folder provide them.
    (tmp_path / "hpcsuite-setup.sh").write_text(
        f"export PATH={Path(sys.executable).parent}:$PATH\n"
        f"export HPCSUITE_RESULTS={tmp_path / 'r'}\n"
    )
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--shape",
        "1000x100",
        sbatch_args=("--export=NONE", "--ntasks-per-node=2"),
        cwd=tmp_path,
    )
    log = tmp_path / f"hpcsuite-mean-{job}.out"
    assert cluster.wait(job) == "COMPLETED", log.read_text()
    [rec] = _records(tmp_path / "r")
    assert rec["ranks"] == 2 and "Traceback" not in log.read_text()


def test_a_failing_setup_hook_stops_the_job_in_one_line(cluster, tmp_path):
    cluster.env["HPCSUITE_SETUP"] = "module load no-such-module-here"
    try:
        job = cluster.submit(
            ROOT / "slurm" / "mean.sbatch", sbatch_args=("--ntasks-per-node=1",), cwd=tmp_path
        )
        state = cluster.wait(job)
    finally:
        del cluster.env["HPCSUITE_SETUP"]
    log = (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    assert state == "FAILED" and "HPCSUITE_SETUP failed" in log and "Traceback" not in log, log


@pytest.mark.parametrize("variant", sorted(p.stem for p in (ROOT / "slurm").glob("*-gpu.sbatch")))
def test_gpu_templates_are_accepted_by_slurm_as_written_and_for_8_gpu_nodes(cluster, variant):
    script = str(ROOT / "slurm" / f"{variant}.sbatch")
    proc = cluster.run("sbatch", "--test-only", script, check=False)
    assert proc.returncode == 0 and "to start at" in proc.stderr, proc.stderr
    # the template's own example for 8-GPU nodes, on these 4-GPU nodes: 2 tasks of 1 GPU each
    proc = cluster.run(
        "sbatch",
        "--test-only",
        "--nodes=2",
        "--ntasks-per-node=2",
        "--cpus-per-task=12",
        script,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # what the templates used to ask (8 ranks per GPU) is refused
    bad = cluster.run("sbatch", "--test-only", "--ntasks-per-node=32", script, check=False)
    assert bad.returncode != 0


def test_a_job_with_gpus_per_node_runs_each_rank_under_the_local_rank_binding(cluster, tmp_path):
    cluster.env["HPCSUITE_RESULTS"] = str(tmp_path / "r")
    job = cluster.submit(
        ROOT / "slurm" / "mean.sbatch",
        "--shape",
        "1000x100",
        sbatch_args=("--ntasks-per-node=2", "--gpus-per-node=2"),
        cwd=tmp_path,
    )
    log = tmp_path / f"hpcsuite-mean-{job}.out"
    assert cluster.wait(job) == "COMPLETED", log.read_text()
    assert " sh -c " in _launch_line(log.read_text())
    assert _records(tmp_path / "r")[0]["ranks"] == 2


OMPI = ROOT / ".venv-ompi" / "bin" / "python"
IMPI = ROOT / ".venv-impi" / "bin" / "python"
#: Each other MPI: its venv, what it needs in the job (as root, no OFI probing), how the
#: launcher starts it on this Slurm (MpiDefault=pmi2, no PMIx), and its record's name.
OTHER_MPIS = {
    "openmpi": (
        OMPI,
        {
            "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_btl": "^ofi",
            "OMPI_MCA_mtl": "^ofi",
        },
        "tasks: mpirun -n ",
        "Open MPI",
    ),
    "intel": (IMPI, {"I_MPI_WAIT_MODE": "1"}, "tasks: srun --cpus-per-task=1 ", "Intel(R) MPI"),
}


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("mpi", sorted(OTHER_MPIS))
def test_open_mpi_and_intel_mpi_run_the_template_on_one_and_two_nodes(
    cluster, tmp_path, mpi, nodes
):
    py, extra, launch, library = OTHER_MPIS[mpi]
    if not py.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must create {py.parent.parent.name} (.ci/run does)")
        pytest.skip(f"no {py.parent.parent.name} ({mpi}; .ci/run creates it)")
    env = dict(cluster.env)
    cluster.env.update(
        HPCSUITE_PYTHON=str(py),
        PATH=f"{py.parent}:{env['PATH']}",
        HPCSUITE_RESULTS=str(tmp_path / "r"),
        **extra,
    )
    try:
        job = cluster.submit(
            ROOT / "slurm" / "mean.sbatch",
            "--shape",
            "2000x100",
            "--check",
            sbatch_args=(f"--nodes={nodes}", "--ntasks-per-node=2"),
            cwd=tmp_path,
        )
        state = cluster.wait(job)
    finally:
        cluster.env.clear()
        cluster.env.update(env)
    log = (tmp_path / f"hpcsuite-mean-{job}.out").read_text()
    assert state == "COMPLETED", log
    # Debian's Slurm has no PMIx: Open MPI 5 starts under its own mpirun inside the job;
    # Intel MPI under srun with the site's PMI-2
    assert launch in _launch_line(log)
    assert ("I_MPI_PMI_LIBRARY=" in log) == (
        mpi == "intel"
    )  # Slurm's libpmi2 (.ci/run installs it)
    [rec] = _records(tmp_path / "r")
    assert rec["ranks"] == 2 * nodes and rec["check"]["passed"]
    assert rec["env"]["mpi_library"].startswith(library)
    assert rec["env"]["hosts"] == ["node1", "node2"][:nodes]


def test_a_sweep_rides_out_a_controller_that_stops_answering(cluster, tmp_path):
    # squeue, scontrol and sacct fail as while slurmctld restarts, for as long as the flag
    # file exists; the jobs run and finish meanwhile. No point may be dropped for it.
    flag, bin_ = tmp_path / "down", tmp_path / "bin"
    bin_.mkdir()
    for name in ("squeue", "scontrol", "sacct"):
        real = subprocess.run(
            ["sh", "-c", f"command -v {name}"], capture_output=True, text=True
        ).stdout.strip()
        (bin_ / name).write_text(
            f"#!/bin/sh\nif [ -e {flag} ]; then\n"
            f"  echo '{name}: error: Unable to contact slurm controller (connect failure)' >&2\n"
            f'  exit 1\nfi\nexec {real} "$@"\n'
        )
        (bin_ / name).chmod(0o755)
    flag.touch()
    out = tmp_path / "sweep"
    env = {**cluster.env, "PATH": f"{bin_}:{cluster.env['PATH']}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpcsuite.sweep",
            "mean",
            "--launcher",
            "slurm",
            "--ranks",
            "1,2",
            "--out",
            str(out),
            "--",
            "--shape",
            "1000x100",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((out / "records").glob("*.jsonl"))) < 2:
            time.sleep(0.2)
        time.sleep(3)  # a few polls into the silence, after the jobs ended
        assert proc.poll() is None, proc.communicate()  # still waiting, not given up
        flag.unlink()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert "2 of 2 points done" in stdout and "failed" not in stdout


def test_training_that_cannot_be_requeued_fails_and_leaves_a_partial_record(cluster, tmp_path):
    if os.environ.get("CI") != "true":
        pytest.importorskip("torch")
    cluster.env.update(
        HPCSUITE_RESULTS=str(tmp_path / "results"), HPCSUITE_CHECKPOINTS=str(tmp_path / "ck")
    )
    job = cluster.submit(
        ROOT / "slurm" / "train.mnist.sbatch",
        "--epochs",
        "300",  # about 20 s to train at batch 32; the signal ends it after an epoch or two
        "--checkpoint-every",
        "23",  # each epoch (23 steps of 2 ranks)
        sbatch_args=("--ntasks-per-node=2", "--no-requeue"),
        cwd=tmp_path,
    )
    log = tmp_path / f"hpcsuite-train-mnist-{job}.out"
    _wait_until_training(tmp_path / "ck" / job / "mnist.pt")
    _signal_usr1(cluster, job)
    state = cluster.wait(job, timeout=120)
    text = log.read_text()
    assert state == "FAILED", text  # not COMPLETED 0:0 after a few of 300 epochs
    assert "cannot be requeued: stopped unfinished" in text and "cannot requeue job" in text
    [rec] = [
        json.loads(line)
        for line in (
            (tmp_path / "results" / f"hpcsuite-train-mnist-{job}.jsonl").read_text().splitlines()
        )
    ]
    assert rec["result"]["partial"] is True and rec["result"]["stopped_at"]["epoch"] < 299
    assert rec["ranks"] == 2 and 0 <= rec["result"]["test_accuracy"] <= 1
