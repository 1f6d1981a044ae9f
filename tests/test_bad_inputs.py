"""Every runnable module against bad input, as a careless or hostile user runs it (issue 14).

One table: module, arguments, the words the one error line must hold. MPI modules run
under the real ``mpiexec`` next to this Python at n = 1 and n = 2; ``sweep``,
``slurm``, ``deploy`` and ``report`` run without MPI, once. Each case must

* exit with status 2 (a user mistake),
* print no ``Traceback``,
* print exactly one error line, from rank 0 (no ``[rank 1]`` tag),
* finish within 30 s (the subprocess timeout: a hang fails the case),
* leave no file half-written: the case's folder holds exactly the files it held before,
  with the same bytes (an empty folder made on the way does not count).

Not marked ``mpi``: it starts its own jobs, so it runs in the plain leg of tests/run.sh.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, mpiexec

TIMEOUT = 30
MPI_RANKS = (1, 2)
SERIAL = ("sweep", "slurm", "deploy", "report")


#: (module, arguments, text of the error line, rank counts or None for both, marks)
#: "{tmp}" is the case's own folder (also its working directory); fixtures live there;
#: "{bin}" the folder of this Python (and of mpirun). "ENV:NAME=VALUE" sets a variable.
CASES = [
    # mean
    ("mean", ["--shape", "0x5"], "bad shape '0x5'", None, ()),
    ("mean", ["--source", "{tmp}/missing.npy"], "no such file", None, ()),
    ("mean", ["--source", "{tmp}/fifo.npy"], "not a regular file", None, ()),
    ("mean", ["--source", "{tmp}/negative.npy"], "negative dimension", None, ()),
    ("mean", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("mean", ["--shape", "100x10", "--output", "/dev/full"], "/dev/full", None, ()),
    # stream
    ("stream", ["--size", "0"], "'0' must be a positive integer", None, ()),
    ("stream", ["--size", "10000000000000"], "GB is available there", None, ()),
    ("stream", ["--repeat", "0"], "'0' must be a positive integer", None, ()),
    ("stream", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("stream", ["--json", "{tmp}"], "is a directory", None, ()),
    # stencil
    ("stencil", ["--alpha", "0.3"], "above 0.25 the scheme is unstable", None, ()),
    ("stencil", ["--shape", "10x10x10"], "must be two-dimensional", None, ()),
    ("stencil", ["--steps", "x"], "'x' is not an integer", None, ()),
    ("stencil", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("stencil", ["--shape", "2000000x2000000"], "GB is available there", None, ()),
    # matmul
    ("matmul", ["--n", "1000000"], "GB is available there", None, ()),
    ("matmul", ["--dtype", "int8"], "invalid choice: 'int8'", None, ()),
    ("matmul", ["--n", "0"], "'0' must be a positive integer", None, ()),
    ("matmul", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("matmul", ["--repeat", "-1"], "'-1' must be a positive integer", None, ()),
    # fft
    ("fft", ["--shape", "64"], "must be 2-D or 3-D", None, ()),
    ("fft", ["--shape", "100000x100000x100"], "GB is available there", None, ()),
    ("fft", ["--shape", "0x4"], "bad shape '0x4'", None, ()),
    ("fft", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("fft", ["--warmup", "-1"], "'-1' must be an integer >= 0", None, ()),
    # montecarlo
    ("montecarlo", ["--vol", "-0.2"], "--vol -0.2 must be a positive number", None, ()),
    ("montecarlo", ["--rate", "nan"], "--rate nan must be a finite number", None, ()),
    ("montecarlo", ["--paths", "x"], "'x' is not an integer", None, ()),
    ("montecarlo", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("montecarlo", ["--paths", "1"], "--paths", None, ()),
    ("montecarlo", ["--paths", "1000000000000000"], "GB is available there", None, ()),
    # kmer
    ("kmer", ["-k", "32"], "-k 32 is out of range", None, ()),
    ("kmer", ["--source", "reads.fa.gz"], "is compressed", None, ()),
    ("kmer", ["--source", "{tmp}/no-such.fq"], "no such file", None, ()),
    ("kmer", ["--source", "{tmp}/fifo.fa"], "not a regular file", None, ()),
    ("kmer", ["--source", "{tmp}/truncated.fq", "--strict"], "incomplete FASTQ record", None, ()),
    ("kmer", ["--source", "{tmp}/text.txt"], "neither FASTA", None, ()),
    # suite
    ("suite", ["--only", "mean,nbody"], "--only 'mean,nbody'", None, ()),
    ("suite", ["--size", "huge"], "invalid choice: 'huge'", None, ()),
    ("suite", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    ("suite", ["--device", "nosuch"], "invalid choice: 'nosuch'", None, ()),
    (
        "suite",
        ["--device", "gpu"],
        "gpu",
        None,
        (
            pytest.mark.skipif(
                shutil.which("nvidia-smi") is not None, reason="a GPU may be here: the run is valid"
            ),
        ),
    ),
    # microbench
    ("microbench", ["nosuch"], "unknown test 'nosuch'", None, ()),
    ("microbench", [], "name at least one test", None, ()),
    (
        "microbench",
        ["allreduce", "--min", "64", "--max", "8"],
        "--min 64 is larger than --max 8",
        None,
        (),
    ),
    ("microbench", ["allreduce", "--max", "12Q"], "bad size '12Q'", None, ()),
    ("microbench", ["allreduce", "--time-per-size", "nan"], "--time-per-size", None, ()),
    ("microbench", ["--all"], "", (1,), ()),  # ran nothing at n=1 and exited 0
    # train.mnist
    ("train.mnist", ["--momentum", "-1"], "--momentum -1.0 must be a finite number >= 0", None, ()),
    ("train.mnist", ["--hidden", "1000000000"], "GB is available there", None, ()),
    ("train.mnist", ["--checkpoint-dir", "{tmp}/text.txt"], "is not a folder", None, ()),
    ("train.mnist", ["--json", "{tmp}/nowhere/r.jsonl"], "does not exist", None, ()),
    (
        "train.mnist",
        ["--checkpoint-dir", "{tmp}/ckpt", "--resume"],
        "is corrupt or not an hpcsuite checkpoint",
        None,
        (),
    ),
    # train.synthetic
    ("train.synthetic", ["--model", "nosuch"], "invalid choice: 'nosuch'", None, ()),
    ("train.synthetic", ["--batch-size", "0"], "'0' must be a positive integer", None, ()),
    ("train.synthetic", ["--num-iters", "x"], "'x' is not an integer", None, ()),
    ("train.synthetic", ["--overlap", "never"], "invalid choice: 'never'", None, ()),
    (
        "train.synthetic",
        [
            "--json",
            "{tmp}/nowhere/r.jsonl",
            "--num-warmup-batches",
            "0",
            "--num-iters",
            "1",
            "--num-batches-per-iter",
            "1",
            "--batch-size",
            "1",
        ],
        "does not exist",
        None,
        (),
    ),
    # info (python -m hpcsuite)
    ("info", ["nosuch"], "invalid choice: 'nosuch'", None, ()),
    ("info", ["info", "--bogus"], "unrecognized arguments: --bogus", None, ()),
    ("info", ["info", "extra"], "unrecognized arguments: extra", None, ()),
    ("info", ["list", "list"], "unrecognized arguments: list", None, ()),
    ("info", ["--bogus"], "unrecognized arguments: --bogus", None, ()),
    # sweep (no MPI)
    ("sweep", ["mean", "--ranks", "0"], "positive rank counts", None, ()),
    (
        "sweep",
        ["mean", "--ranks", "1", "--launcher", "slurm", "--dry-run", "--time", "1\necho pwned"],
        "control character",
        None,
        (),
    ),
    ("sweep", ["mean", "--ranks", "1", "--out", "{tmp}/text.txt"], "is a file", None, ()),
    ("sweep", ["mean", "--ranks", "1", "--out", "{tmp}/corrupt"], "is corrupt", None, ()),
    ("sweep", ["nosuch", "--ranks", "1"], "unknown module 'nosuch'", None, ()),
    ("sweep", ["mean", "--ranks", "1,x"], "give rank counts separated by commas", None, ()),
    # slurm (no MPI): the launcher inside a batch job
    ("slurm", ["nosuch"], "unknown module 'nosuch'", None, ()),
    ("slurm", ["mean", "--source", "a\nb"], "control character", None, ()),
    ("slurm", ["mean", "ENV:HPCSUITE_LAUNCHER=aprun"], "HPCSUITE_LAUNCHER='aprun'", None, ()),
    ("slurm", ["mean", "ENV:PATH={tmp}"], "is not on PATH", None, ()),
    (
        "slurm",
        ["mean", "ENV:PATH={bin}", "ENV:HPCSUITE_RESULTS={tmp}/text.txt/r"],
        "cannot create the results folder",
        None,
        (),
    ),
    # deploy (no MPI)
    ("deploy", ["k8s", "--image", "i", "--name", "1run"], "must start with a letter", None, ()),
    ("deploy", ["k8s", "--image", "i", "--workers", "10000000"], "at most 5000", None, ()),
    (
        "deploy",
        ["k8s", "--image", "i", "--output", "{tmp}/nowhere/m.yaml"],
        "does not exist",
        None,
        (),
    ),
    (
        "deploy",
        ["k8s", "--image", "i", "--output", "/dev/full"],
        "No space left on device",
        None,
        (),
    ),
    ("deploy", ["k8s", "--image", "i\nkind: Deployment"], "control character", None, ()),
    ("deploy", ["sagemaker", "--output", "{tmp}/nowhere/e.json"], "does not exist", None, ()),
    # report (no MPI)
    ("report", ["{tmp}/missing.jsonl", "--no-plots"], "", None, ()),
    ("report", ["{tmp}/records.jsonl", "--no-plots", "--out", "{tmp}/text.txt"], "", None, ()),
    (
        "report",
        ["{tmp}/records.jsonl", "--no-plots", "--reference", "{tmp}/list.json"],
        "",
        None,
        (),
    ),
    (
        "report",
        ["{tmp}/records.jsonl", "--no-plots", "--threshold", "x"],
        "invalid float value",
        None,
        (),
    ),
    (
        "report",
        ["{tmp}/records.jsonl", "--no-plots", "--compare"],
        "expected at least one argument",
        None,
        (),
    ),
]


def _fixtures(tmp: Path) -> None:
    """The files the cases point at, made fresh for every case."""
    os.mkfifo(tmp / "fifo.npy")
    os.mkfifo(tmp / "fifo.fa")
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 4), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    (tmp / "negative.npy").write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64
    )
    (tmp / "truncated.fq").write_text(
        "".join(f"@r{i}\nACGTACGTAC\n+\nIIIIIIIIII\n" for i in range(20)) + "@r20\nACGTAC\n+\nII"
    )
    (tmp / "text.txt").write_text("hello\n")
    (tmp / "ckpt").mkdir()
    (tmp / "ckpt" / "mnist.pt").write_bytes(b"certainly not a checkpoint")
    (tmp / "corrupt").mkdir()
    (tmp / "corrupt" / "sweep.json").write_text("{not json")
    (tmp / "list.json").write_text("[1, 2, 3]\n")
    record = {
        "schema": 1,
        "kernel": "mean",
        "ranks": 1,
        "params": {"shape": ["a", "b"]},
        "times": {"unit": "s", "samples": [1.0]},
        "fom": {"name": "x", "value": 1.0, "unit": "x", "higher_is_better": True},
    }
    import json

    (tmp / "records.jsonl").write_text(json.dumps(record) + "\n")


def _snapshot(tmp: Path) -> dict[str, str]:
    """Every regular file under ``tmp`` and a hash of its bytes (FIFOs and folders skipped)."""
    out = {}
    for path in sorted(tmp.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(tmp))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _command(module: str, args: list[str], n: int | None) -> list[str]:
    target = ["-m", "hpcsuite"] if module == "info" else ["-m", f"hpcsuite.{module}"]
    cmd = [sys.executable, *target, *args]
    return cmd if n is None else [mpiexec(), "-n", str(n), *cmd]


def _params():
    for module, args, message, ranks, marks in CASES:
        counts = [None] if module in SERIAL else list(ranks or MPI_RANKS)
        for n in counts:
            label = f"{module}-{'serial' if n is None else f'n{n}'}-{' '.join(args)[:60]}"
            yield pytest.param(module, args, message, n, marks=marks, id=label)


@pytest.mark.parametrize("module,args,message,n", list(_params()))
def test_a_bad_input_is_one_line_exit_2_and_leaves_files_whole(tmp_path, module, args, message, n):
    _fixtures(tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PMI_", "OMPI_", "PMIX_", "SLURM_", "HPCSUITE_"))
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    argv = []
    for a in args:
        a = a.replace("{tmp}", str(tmp_path)).replace("{bin}", str(Path(sys.executable).parent))
        if a.startswith("ENV:"):
            key, value = a[4:].split("=", 1)
            env[key] = value
        else:
            argv.append(a)
    before = _snapshot(tmp_path)
    try:
        proc = subprocess.run(
            _command(module, argv, n),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{module} {argv} at n={n} did not finish within {TIMEOUT} s (a hang?)")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\n{output}"
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1, output  # one message, however many ranks
    assert message in errors[0], output
    assert "[rank 1]" not in output, output  # from rank 0 (or the one process)
    assert _snapshot(tmp_path) == before, "a file was created, changed or left half-written"
