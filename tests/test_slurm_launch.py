"""The pure parts of the Slurm launcher and of sweeps, and a local sweep end to end."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys

import pytest
from conftest import python

from hpcsuite import slurm, sweep
from hpcsuite.core.errors import UsageError
from hpcsuite.slurm import LOCAL_RANK_GPU, command, pmi2_library, srun_mpi

JOB = {
    "SLURM_JOB_ID": "42",
    "SLURM_JOB_NAME": "hpcsuite-mean",
    "SLURM_NTASKS": "8",
    "SLURM_SUBMIT_DIR": "/home/u/run",
}


def test_srun_with_the_pmi_plugin_of_the_mpi_family():
    cmd = command("mean", ["--check"], JOB, python="py", family="mpich", srun=True)
    assert cmd == [
        "srun",
        "--mpi=pmi2",
        "py",
        "-m",
        "hpcsuite.mean",
        "--check",
        "--json",
        "/home/u/run/results/hpcsuite-mean-42.jsonl",
    ]
    assert (
        command("mean", [], JOB, python="py", family="openmpi", srun=True, site_mpi="pmix")[1]
        == "py"
    )
    assert command("mean", [], JOB, python="py", family="unknown", srun=True)[:2] == ["srun", "py"]


def test_mpirun_fallback_and_overrides():
    cmd = command("mean", [], JOB, python="py", family="mpich", srun=False)
    assert cmd[:3] == ["mpirun", "-n", "8"]
    env = {**JOB, "HPCSUITE_LAUNCHER": "mpirun", "HPCSUITE_RESULTS": "/scratch/r"}
    cmd = command("mean", [], env, python="py", family="mpich", srun=True)
    assert cmd[0] == "mpirun" and cmd[-1] == "/scratch/r/hpcsuite-mean-42.jsonl"
    env = {**JOB, "HPCSUITE_SRUN_MPI": "cray_shasta"}
    assert (
        command("mean", [], env, python="py", family="mpich", srun=True)[1] == "--mpi=cray_shasta"
    )
    with pytest.raises(UsageError, match="HPCSUITE_LAUNCHER='aprun'"):
        command(
            "mean",
            [],
            {**JOB, "HPCSUITE_LAUNCHER": "aprun"},
            python="py",
            family="mpich",
            srun=True,
        )


def test_user_json_and_odd_arguments_pass_through_untouched():
    odd = ["--json", "my file.jsonl", "--source", "a b'; rm -rf $HOME.npy"]
    cmd = command("mean", odd, JOB, python="py", family="mpich", srun=True)
    assert cmd[-4:] == odd and cmd.count("--json") == 1
    with pytest.raises(UsageError, match="unknown module 'train'"):
        command("train", [], JOB, python="py", family="mpich", srun=True)


def test_sweep_plan_strong_and_weak():
    strong = sweep.plan("mean", [4, 1, 2], ["--check"], repeat=2)
    assert [(p.name, p.ranks) for p in strong] == [
        ("mean-n1-r0", 1),
        ("mean-n1-r1", 1),
        ("mean-n2-r0", 2),
        ("mean-n2-r1", 2),
        ("mean-n4-r0", 4),
        ("mean-n4-r1", 4),
    ]
    weak = sweep.plan("mean", [1, 3], [], weak_shape=(100, 7), ranks_per_node=2)
    assert [p.args for p in weak] == [("--shape", "100x7"), ("--shape", "300x7")]
    assert [p.nodes for p in weak] == [1, 2]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"module": "nosuch", "ranks": [1]}, "unknown module"),
        ({"module": "mean", "ranks": [0, 2]}, "positive rank counts"),
        (
            {"module": "microbench", "ranks": [2], "weak_shape": (10, 10)},
            "needs a module with --shape",
        ),
        (
            {"module": "mean", "ranks": [2], "weak_shape": (10, 10), "args": ["--shape", "5x5"]},
            "not also --shape",
        ),
    ],
)
def test_sweep_plan_refuses_what_cannot_run(kwargs, message):
    args = kwargs.pop("args", [])
    with pytest.raises(UsageError, match=message):
        sweep.plan(kwargs.pop("module"), kwargs.pop("ranks"), args, **kwargs)


def test_job_script_quotes_every_value(tmp_path):
    point = sweep.Point("mean-n2-r0", 2, 1, 0, ("--source", "x y'$(reboot).npy"))
    text = sweep.job_script(
        point, "mean", tmp_path, python="/opt/py thon", ranks_per_node=None, time_limit="00:05:00"
    )
    exec_line = text.splitlines()[-1]
    assert shlex.split(exec_line[len("exec ") :]) == [
        "/opt/py thon",
        "-m",
        "hpcsuite.slurm",
        "mean",
        "--source",
        "x y'$(reboot).npy",
        "--json",
        str(tmp_path / "records" / "mean-n2-r0.jsonl"),
    ]
    assert (
        "#SBATCH --ntasks=2" in text
        and "#SBATCH --nodes=1" in text
        and "#SBATCH --exclusive" in text
    )
    serial = sweep.job_script(
        point,
        "mean",
        tmp_path,
        python="py",
        ranks_per_node=None,
        time_limit="1",
        exclusive=False,
        serial_name="s1",
    )
    assert "--exclusive" not in serial and "#SBATCH --job-name=s1" in serial
    assert "#SBATCH --dependency=singleton" in serial


def test_local_sweep_collects_resumes_and_reports_failures(tmp_path):
    out = tmp_path / "sw"
    args = [
        "-m",
        "hpcsuite.sweep",
        "mean",
        "--ranks",
        "1,2",
        "--out",
        str(out),
        "--",
        "--shape",
        "300x40",
    ]
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
    bad = python(
        "-m",
        "hpcsuite.sweep",
        "mean",
        "--ranks",
        "1",
        "--out",
        str(tmp_path / "bad"),
        "--",
        "--source",
        "missing.npy",
        timeout=60,
    )
    assert bad.returncode == 1
    assert "point mean-n1-r0 (1 ranks) failed" in bad.stdout and "no such file" in bad.stdout


def test_dry_run_prints_scripts_and_runs_nothing(tmp_path):
    proc = python(
        "-m",
        "hpcsuite.sweep",
        "mean",
        "--ranks",
        "1,2",
        "--launcher",
        "slurm",
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
        "--",
        "--check",
        timeout=30,
    )
    assert proc.returncode == 0 and proc.stdout.count("#!/bin/bash") == 2
    assert not (tmp_path / "d").exists()
    assert sys.executable in proc.stdout


def test_every_parallel_module_has_its_batch_templates():
    from conftest import ROOT

    from hpcsuite.registry import MODULES, PARALLEL

    for name in PARALLEL:
        for path in MODULES[name].templates:
            script = ROOT / path
            variant = script.stem
            assert script.exists(), f"{name} needs {path} (README, Contributing)"
            text = script.read_text()
            assert (
                f"-m hpcsuite.slurm {name}" in text
                and '"$@"' in text
                and "#SBATCH --output=%x-%j.out" in text
            )
            assert ("--gpus-per-task=1" in text) == variant.endswith("-gpu")
            assert 'eval "$HPCSUITE_SETUP"' in text and "hpcsuite-setup.sh" in text, variant


def _directives(text):
    return dict(
        line[len("#SBATCH --") :].split("=", 1)
        for line in text.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )


@pytest.mark.parametrize(
    "variant", sorted(p.stem for p in (__import__("conftest").ROOT / "slurm").glob("*-gpu.sbatch"))
)
def test_gpu_templates_ask_one_rank_per_gpu_with_its_cores_and_binding(variant):
    from conftest import ROOT

    text = (ROOT / "slurm" / f"{variant}.sbatch").read_text()
    d = _directives(text)
    assert d["gpus-per-task"] == "1" and d["gpu-bind"].startswith(("closest", "single:"))
    assert int(d["cpus-per-task"]) >= 2 and "gpus-per-node" not in d
    assert int(d["ntasks-per-node"]) <= 8  # one rank per GPU: nodes hold 4 or 8
    for line in text.splitlines():  # every example asks a size a GPU node can give
        if line.startswith("#   sbatch") and "--ntasks-per-node=" in line:
            assert int(line.split("--ntasks-per-node=")[1].split()[0]) <= 8, line


def test_srun_mpi_keeps_the_site_default_where_the_library_speaks_it():
    # MPICH: PMI-2, or PMIx when built with it; "none" would start singletons
    assert srun_mpi("mpich", "pmi2") is None
    assert srun_mpi("mpich", "none") == "pmi2"
    assert srun_mpi("mpich", "pmix") == "pmi2"  # the PyPI wheel has no PMIx
    assert srun_mpi("mpich", "pmix_v4", pmix_capable=True) is None
    assert srun_mpi("mpich", "cray_shasta") is None
    assert srun_mpi("mpich", None) == "pmi2"
    # Intel MPI: PMI-2 with Slurm's libpmi2
    assert srun_mpi("intel", "pmi2") is None and srun_mpi("intel", "pmix") == "pmi2"
    # Open MPI 5: PMIx only; its own mpirun where PMIx is not the site's default
    assert srun_mpi("openmpi", "pmix_v5") is None
    assert srun_mpi("openmpi", "pmi2") == "mpirun" and srun_mpi("openmpi", None) == "mpirun"
    assert srun_mpi("unknown", "pmix") is None


def test_the_launch_follows_the_site_and_passes_cpus_per_task():
    job = {**JOB, "SLURM_CPUS_PER_TASK": "4"}
    cmd = command("mean", [], job, python="py", family="mpich", srun=True, site_mpi="pmi2")
    assert cmd[:3] == ["srun", "--cpus-per-task=4", "py"]
    cmd = command("mean", [], job, python="py", family="mpich", srun=True, site_mpi="none")
    assert cmd[:3] == ["srun", "--mpi=pmi2", "--cpus-per-task=4"]
    cmd = command(
        "mean",
        [],
        {**job, "SLURM_MPI_TYPE": "pmi2"},
        python="py",
        family="mpich",
        srun=True,
        site_mpi="none",
    )
    assert cmd[1] == "--cpus-per-task=4"  # SLURM_MPI_TYPE is the default srun will use
    cmd = command("mean", [], job, python="py", family="openmpi", srun=True, site_mpi="pmi2")
    assert cmd[:3] == ["mpirun", "-n", "8"]  # PMIx not the site's: Open MPI's own launcher
    cmd = command("mean", [], job, python="py", family="openmpi", srun=True, site_mpi="pmix")
    assert cmd[:2] == ["srun", "--cpus-per-task=4"]
    cmd = command(
        "mean",
        [],
        {**job, "HPCSUITE_SRUN_MPI": "pmix"},
        python="py",
        family="openmpi",
        srun=True,
        site_mpi="pmi2",
    )
    assert cmd[:2] == ["srun", "--mpi=pmix"]  # the override wins


def test_gpus_per_node_get_one_gpu_per_local_rank_gpus_per_task_are_left_to_slurm():
    cmd = command(
        "mean", [], {**JOB, "SLURM_GPUS_PER_NODE": "4"}, python="py", family="mpich", srun=True
    )
    assert cmd[2:6] == ["sh", "-c", LOCAL_RANK_GPU, "hpcsuite-gpu"] and cmd[6] == "py"
    cmd = command(
        "mean",
        [],
        {**JOB, "SLURM_GPUS_PER_NODE": "4", "SLURM_GPUS_PER_TASK": "1"},
        python="py",
        family="mpich",
        srun=True,
    )
    assert "sh" not in cmd
    cmd = command(
        "mean",
        [],
        {**JOB, "SLURM_JOB_GRES": "gpu:4", "HPCSUITE_GPU_BIND": "none"},
        python="py",
        family="mpich",
        srun=True,
    )
    assert "sh" not in cmd
    with pytest.raises(UsageError, match="HPCSUITE_GPU_BIND='closest'"):
        command(
            "mean",
            [],
            {**JOB, "HPCSUITE_GPU_BIND": "closest"},
            python="py",
            family="mpich",
            srun=True,
        )


@pytest.mark.parametrize(
    "env,seen",
    [
        ({"SLURM_LOCALID": "0", "CUDA_VISIBLE_DEVICES": "4,5,6,7"}, "4"),
        ({"SLURM_LOCALID": "3", "CUDA_VISIBLE_DEVICES": "4,5,6,7"}, "7"),
        (
            {"SLURM_LOCALID": "5", "CUDA_VISIBLE_DEVICES": "0,1"},
            "1",
        ),  # more ranks than GPUs: shared
        ({"SLURM_LOCALID": "2"}, "2"),
        ({"OMPI_COMM_WORLD_LOCAL_RANK": "1", "CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"}, "GPU-b"),
        ({"MPI_LOCALRANKID": "1", "CUDA_VISIBLE_DEVICES": "0,1"}, "1"),
    ],
)
def test_the_local_rank_wrapper_keeps_one_gpu_and_passes_arguments_untouched(env, seen):
    import os
    import subprocess

    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "OMPI_", "MPI_", "PMI_", "CUDA_"))
    }
    odd = "a b'$(echo pwned)"
    proc = subprocess.run(
        [
            "sh",
            "-c",
            LOCAL_RANK_GPU,
            "hpcsuite-gpu",
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['CUDA_VISIBLE_DEVICES']); print(sys.argv[1])",
            odd,
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [seen, odd]


def test_intel_mpi_finds_slurms_libpmi2_next_to_srun(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib64").mkdir()
    (tmp_path / "bin" / "srun").write_text("")
    (tmp_path / "lib64" / "libpmi2.so").write_text("")
    assert pmi2_library(str(tmp_path / "bin" / "srun")) == str(tmp_path / "lib64" / "libpmi2.so")


# -- issue 14: hostile option values, broken state, unwritable --out --------------------------

from hpcsuite.core import cli  # noqa: E402

#: Control characters that end or corrupt a line of a job script: each injects a command.
HOSTILE = [
    "00:10:00\necho pwned",
    "00:10:00\r\necho pwned",
    "00:10:00\recho pwned",
    "x\x00echo pwned",
    "x\x1b[2Jecho pwned",
    "x\x7fecho pwned",
    "x\techo pwned",
    "x\x0becho pwned",
]
SWEEP_BASE = ["mean", "--ranks", "1,2", "--launcher", "slurm", "--dry-run"]


def _sweep_argv(option, value, out):
    argv = [*SWEEP_BASE, "--out", str(out)]
    if option == "module":
        return [value, *argv[1:]]
    if option == "--":
        return [*argv, "--", "--source", value]
    if option == "--out":
        return [*argv[:-2], "--out", str(out) + value]
    return [*argv, f"{option}={value}"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "option", ["module", "--ranks", "--time", "--out", "--sbatch-arg", "--weak-shape", "--"]
)
def test_sweep_refuses_control_characters_in_every_option(option, value, tmp_path, capsys):
    code = cli.run(sweep.main, _sweep_argv(option, value, tmp_path / "s"), prog="hpcsuite.sweep")
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "pwned" not in out  # nothing rendered, so nothing injected
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], (
        err
    )  # argparse's usage, one error
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["time_limit", "args", "serial_name", "python", "out"])
def test_a_rendered_job_script_never_holds_an_injected_line(field, value, tmp_path):
    point = sweep.Point("mean-n2-r0", 2, 1, 0, ("--source", value) if field == "args" else ())
    kwargs = dict(python="py", ranks_per_node=None, time_limit="00:05:00", serial_name=None)
    out = tmp_path
    if field == "out":
        out = tmp_path / value
    elif field != "args":
        kwargs[field] = value
    with pytest.raises(UsageError, match="control character"):
        sweep.job_script(point, "mean", out, **kwargs)


def test_a_job_script_with_odd_but_legal_values_has_one_line_per_directive(tmp_path):
    odd = "a b'\"$(reboot);`id`|&<>*?.npy"
    point = sweep.Point("mean-n2-r0", 2, 1, 0, ("--source", odd))
    text = sweep.job_script(
        point,
        "mean",
        tmp_path / "o u't",
        python="/p y",
        ranks_per_node=2,
        time_limit="1-00:00:00 x",
        serial_name="s'1",
    )
    lines = text.splitlines()
    assert (
        lines[0] == "#!/bin/bash"
        and lines[-2] == "set -euo pipefail"
        and lines[-1].startswith("exec ")
    )
    assert all(line.startswith("#SBATCH --") for line in lines[1:-2])
    assert shlex.split(lines[-1])[1:6] == ["/p y", "-m", "hpcsuite.slurm", "mean", "--source"]
    assert shlex.split(lines[-1])[6] == odd


@pytest.mark.parametrize("value", HOSTILE)
def test_the_slurm_launcher_refuses_control_characters(value):
    with pytest.raises(UsageError, match="control character"):
        command("mean", ["--source", value], JOB, python="py", family="mpich", srun=True)
    with pytest.raises(UsageError, match="control character"):
        command(
            "mean", [], {**JOB, "HPCSUITE_RESULTS": value}, python="py", family="mpich", srun=True
        )
    with pytest.raises(UsageError, match="control character"):
        command(
            "mean", [], {**JOB, "SLURM_JOB_NAME": value}, python="py", family="mpich", srun=True
        )


def test_the_slurm_launcher_without_mpirun_says_so_in_one_line(tmp_path):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    env.update(PATH=str(tmp_path), HPCSUITE_LAUNCHER="mpirun", HPCSUITE_RESULTS=str(tmp_path / "r"))
    proc = subprocess.run(
        [sys.executable, "-m", "hpcsuite.slurm", "mean"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.strip()]
    assert "mpirun" in line and "PATH" in line


def _run_sweep(argv, capsys):
    code = cli.run(sweep.main, argv, prog="hpcsuite.sweep")
    out, err = capsys.readouterr()
    return code, out, err


def test_sweep_out_that_is_a_file_or_holds_a_corrupt_plan_is_one_line(tmp_path, capsys):
    afile = tmp_path / "f"
    afile.write_text("x")
    code, _, err = _run_sweep(["mean", "--ranks", "1", "--out", str(afile)], capsys)
    assert code == 2 and "is a file" in err and "Traceback" not in err, err
    for text in ("{not json", "[1, 2]", '{"plan": 3}'):
        (tmp_path / "c").mkdir(exist_ok=True)
        (tmp_path / "c" / "sweep.json").write_text(text)
        code, _, err = _run_sweep(["mean", "--ranks", "1", "--out", str(tmp_path / "c")], capsys)
        assert code == 2 and "sweep.json" in err and len(err.strip().splitlines()) == 1, (text, err)
        assert (tmp_path / "c" / "sweep.json").read_text() == text  # left as it was


def test_sweep_writing_to_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno
    import os

    out = tmp_path / "s"
    real = os.replace

    def full(src, dst):  # the disk fills as the plan is saved
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    code, _, err = _run_sweep(["mean", "--ranks", "1", "--out", str(out)], capsys)
    monkeypatch.setattr(os, "replace", real)
    assert code == 2 and "Traceback" not in err and "No space left" in err, err
    assert len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir() if p.is_file()] == []  # no temporary file left behind


def test_a_sweep_state_that_is_not_a_regular_file_is_refused_unread(tmp_path, capsys):
    import os

    out = tmp_path / "s"
    out.mkdir()
    os.mkfifo(out / "sweep.json")  # reading it would block forever (and /dev/zero never ends)
    code, _, err = _run_sweep(["mean", "--ranks", "1", "--out", str(out)], capsys)
    assert code == 2 and "not a regular file" in err, err


def test_a_point_whose_check_failed_is_not_done(tmp_path):
    from hpcsuite.core import records

    point = sweep.plan("mean", [1], [])[0]
    (tmp_path / "records").mkdir()
    path = tmp_path / "records" / f"{point.name}.jsonl"
    env = records.fingerprint(hosts=["h"], mpi_library="MPICH", device="cpu", device_name="cpu")
    failed = records.make(
        "mean",
        params={},
        ranks=1,
        env=env,
        times={"unit": "s", "samples": [1.0]},
        fom={"name": "x", "value": 1.0, "unit": "x", "higher_is_better": True},
        check={"passed": False, "detail": "wrong"},
    )
    records.append(str(path), failed)
    assert not sweep.done(tmp_path, point)
    assert sweep.collect(tmp_path, [point]) == []  # a wrong result is not a point of the series
    records.append(str(path), {**failed, "check": {"passed": True, "detail": "ok"}})
    assert sweep.done(tmp_path, point)
    assert len(sweep.collect(tmp_path, [point])) == 1


# -- issue 15: polling Slurm without trusting silence ------------------------------------------


def _fake_slurm(tmp_path, monkeypatch, **scripts):
    """Slurm clients on PATH that print and exit as told: name=(stdout, stderr, code)."""
    import os

    bin_ = tmp_path / "fakebin"
    bin_.mkdir(exist_ok=True)
    for name, (out, err, code) in scripts.items():
        path = bin_ / name
        path.write_text(
            f"#!/bin/sh\nprintf %s {shlex.quote(out)}\nprintf %s {shlex.quote(err)} >&2\nexit"
            f" {code}\n"
        )
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")


def test_a_controller_that_does_not_answer_decides_nothing(tmp_path, monkeypatch):
    _fake_slurm(
        tmp_path,
        monkeypatch,
        squeue=("", "slurm_load_jobs error: Unable to contact slurm controller", 1),
        scontrol=("", "Unable to contact slurm controller", 1),
        sacct=("", "", 1),
    )
    assert sweep.job_states(["11", "12"]) == {"11": "UNKNOWN", "12": "UNKNOWN"}


def test_ended_jobs_are_decided_by_sacct_else_scontrol(tmp_path, monkeypatch):
    _fake_slurm(
        tmp_path,
        monkeypatch,
        squeue=("11 RUNNING\n", "", 0),
        sacct=("12|CANCELLED by 0\n13|COMPLETED\n", "", 0),
    )
    assert sweep.job_states(["11", "12", "13"]) == {
        "11": "RUNNING",
        "12": "CANCELLED",
        "13": "COMPLETED",
    }
    # no accounting (the test cluster's default): sacct fails, scontrol answers
    _fake_slurm(
        tmp_path,
        monkeypatch,
        squeue=("", "slurm_load_jobs error: Invalid job id specified", 1),
        sacct=("", "sacct: error: Slurm accounting storage is disabled", 1),
        scontrol=("JobId=12 JobName=x JobState=SPECIAL_EXIT Reason=None\n", "", 0),
    )
    assert sweep.job_states(["12"]) == {"12": "SPECIAL_EXIT"}
    _fake_slurm(
        tmp_path, monkeypatch, scontrol=("", "slurm_load_jobs error: Invalid job id specified", 1)
    )
    assert sweep.job_states(["12"]) == {"12": "GONE"}  # purged: its record decides


def test_a_slurm_call_that_times_out_does_not_crash_the_sweep(monkeypatch):
    import subprocess

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    monkeypatch.setattr(subprocess, "run", hang)
    assert sweep.job_states(["7"]) == {"7": "UNKNOWN"}


def test_the_poll_keeps_points_through_silence_backs_off_and_ends_special_exit(
    tmp_path, monkeypatch
):
    points = sweep.plan("mean", [1, 2], [])
    answers = iter(
        [
            {"1": "RUNNING", "2": "PENDING"},  # asked before submitting: both still queued
            {"1": "RUNNING", "2": "PENDING"},
            {"1": "UNKNOWN", "2": "UNKNOWN"},
            {"1": "UNKNOWN", "2": "UNKNOWN"},
            {"1": "RUNNING", "2": "RUNNING"},
            {"1": "RUNNING", "2": "SPECIAL_EXIT"},
            {"1": "GONE"},
        ]
    )
    from hpcsuite.sweep import batch  # run_slurm looks these up in its own module

    monkeypatch.setattr(batch, "job_states", lambda ids: next(answers))
    monkeypatch.setattr(batch.shutil, "which", lambda name, **kw: "/usr/bin/" + name)
    monkeypatch.setattr(batch, "_slurm", lambda *a, **k: pytest.fail("nothing to submit: a resume"))
    state = {"jobs": {points[0].name: "1", points[1].name: "2"}}
    status = {p.name: "pending" for p in points}
    shown, naps = [], []

    class Shown(sweep.Progress):
        def show(self, counts):
            shown.append(dict(counts))

    sweep.run_slurm(
        points,
        "mean",
        tmp_path,
        state,
        python="py",
        ranks_per_node=None,
        time_limit="1",
        sbatch_args=[],
        progress=Shown(2),
        status=status,
        save=lambda: None,
        sleep=naps.append,
    )
    assert shown[:3] == [{"running": 1, "pending": 1}] * 3  # kept through the silent polls
    assert status == {points[0].name: "failed", points[1].name: "failed"}  # no records: not done
    assert all(nap >= sweep.POLL_FIRST for nap in naps) and max(naps) <= sweep.POLL_MOST
    assert naps[1] > naps[0] and naps[2] > naps[1]  # silence backs off
    assert naps[3] == sweep.POLL_FIRST  # a change polls soon again


def test_sweep_by_node_counts_with_gpus_per_task(tmp_path):
    proc = python(
        "-m",
        "hpcsuite.sweep",
        "mean",
        "--nodes",
        "1,2,4",
        "--ranks-per-node",
        "4",
        "--launcher",
        "slurm",
        "--gpus-per-task",
        "1",
        "--cpus-per-task",
        "8",
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
        "--",
        "--device",
        "gpu",
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    scripts = proc.stdout.split("#!/bin/bash")[1:]
    assert [
        "#SBATCH --nodes=%d" % n in s and ("#SBATCH --ntasks=%d" % (4 * n)) in s
        for n, s in zip((1, 2, 4), scripts)
    ] == [True] * 3
    assert all(
        "#SBATCH --gpus-per-task=1" in s and "#SBATCH --cpus-per-task=8" in s for s in scripts
    )
    for bad in (
        ["--nodes", "1,2"],
        ["--ranks", "1", "--nodes", "1", "--ranks-per-node", "2"],
        ["--ranks", "1", "--gpus-per-task", "1"],
    ):
        proc = python("-m", "hpcsuite.sweep", "mean", *bad, "--dry-run", timeout=30)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) <= 3, proc.stderr


# -- signals: the launcher and the trainer take SIGUSR1 at any moment of a job ----------------


def test_a_signal_that_comes_before_the_child_exists_is_forwarded_once_it_runs(
    tmp_path, monkeypatch
):
    # Slurm signals the batch shell (the launcher) at any time, also while it is still
    # looking at the job, before srun exists: the signal must neither end the launcher
    # (USR1's and TERM's default action) nor be lost, but reach the child once it runs.
    for name in [k for k in os.environ if k.startswith(("SLURM_", "PMI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HPCSUITE_LAUNCHER", "mpirun")
    monkeypatch.setenv("HPCSUITE_RESULTS", str(tmp_path / "r"))
    monkeypatch.setattr(slurm, "mpi_library", lambda: "")
    monkeypatch.setattr(slurm.shutil, "which", lambda name, path=None: f"/usr/bin/{name}")
    events = []

    class Child:
        pid = 12345
        returncode = None

        def send_signal(self, signum):
            events.append(("child got", signum))

        def wait(self):
            events.append("child waited")
            return 0

    def popen(cmd, env):
        # USR1 and TERM arrive while the child is being started: their handlers run
        # here, before Popen has returned the child
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        events.append("child started")
        return Child()

    monkeypatch.setattr(slurm.subprocess, "Popen", popen)
    saved = {sig: signal.getsignal(sig) for sig in slurm.FORWARDED}
    try:
        for sig in slurm.FORWARDED:  # what would have ended (or missed) the launcher
            signal.signal(sig, lambda signum, frame: events.append(("launcher got", signum)))
        assert slurm.main(["mean", "--shape", "10x10"]) == 0
        # once the child has ended, a late warning does not end the batch shell either
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert events == [
        "child started",
        ("child got", signal.SIGUSR1),
        ("child got", signal.SIGTERM),
        "child waited",
    ]


@pytest.mark.slow
def test_the_trainer_stops_on_a_usr1_from_its_start_and_ignores_one_after_its_run(tmp_path):
    # Slurm sends --signal=B:USR1@60 once, at a fixed time: while the trainer still starts
    # (imports, MPI) it must stop at the first step and ask for a requeue, not die; once
    # its run is over, a late one must not kill the rank as it exits.
    pytest.importorskip("torch")
    script = f"""
import os, signal, sys
from hpcsuite.train import mnist
train = mnist._train
def signalled_first(args):
    os.kill(os.getpid(), signal.SIGUSR1)  # Slurm's warning, as the run starts
    return train(args)
mnist._train = signalled_first
code = mnist.main(["--epochs", "2", "--checkpoint-dir", {str(tmp_path / "ck")!r}])
mnist._train = train
late = mnist.main(["--epochs", "1", "--checkpoint-dir", {str(tmp_path / "ck2")!r}])
os.kill(os.getpid(), signal.SIGUSR1)  # after the run: ignored
print("codes", code, late, signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN, flush=True)
"""
    proc = python("-c", script, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "codes 75 0 True" in proc.stdout, proc.stdout + proc.stderr
    assert "SIGUSR1: checkpoint at epoch 0 step 1" in proc.stdout + proc.stderr
