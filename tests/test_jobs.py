"""Whole jobs under mpiexec, as a user runs them: output, exit codes, no hangs."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from conftest import launch, python

MEAN = ("-m", "hpcsuite.mean")


def _mean_line(stdout: str) -> str:
    match = re.search(r"mean = (\S+)", stdout)
    assert match, stdout
    return match.group(1)


def test_default_job_prints_the_same_bits_at_1_2_3_and_8_ranks():
    seen = {}
    for n in (1, 2, 3, 8):
        proc = launch(n, *MEAN, timeout=120)
        assert proc.returncode == 0, proc.stderr
        seen[n] = _mean_line(proc.stdout)
        assert f"ranks      {n} on 1 node" in proc.stdout
    assert len(set(seen.values())) == 1, seen
    assert abs(float(seen[1]) - 0.5) < 1e-4


@pytest.mark.parametrize(
    "extra",
    [
        ("--shape", "3001x700", "--dtype", "float32"),
        ("--shape", "1500x800", "--dtype", "int32", "--axis", "0"),
    ],
)
def test_local_and_scatter_agree_at_every_rank_count(extra, tmp_path):
    lines, saved = set(), set()
    for n, mode in ((1, "local"), (2, "scatter"), (3, "local"), (3, "scatter"), (4, "local")):
        out = tmp_path / f"{n}-{mode}.npy"
        proc = launch(
            n, *MEAN, *extra, "--distribute", mode, "--check", "--output", str(out), timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "check      ok" in proc.stdout
        lines.add(proc.stdout.splitlines()[0])
        saved.add(out.read_bytes())  # every value (the column means too), not only the summary line
    assert len(lines) == 1 and len(saved) == 1, lines


def test_the_mean_of_a_file_matches_numpy(tmp_path):
    data = np.random.default_rng(1).normal(size=(1234, 56))
    np.save(tmp_path / "a.npy", data)
    proc = launch(3, *MEAN, "--source", str(tmp_path / "a.npy"), "--quiet", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert float(_mean_line(proc.stdout)) == pytest.approx(data.mean(), rel=1e-12, abs=1e-15)


def _bad_inputs(tmp):
    np.save(tmp / "good.npy", np.ones((10, 4)))
    (tmp / "trunc.npy").write_bytes((tmp / "good.npy").read_bytes()[:-16])
    (tmp / "text.npy").write_text("not an array")
    np.save(tmp / "vec.npy", np.ones(10))
    return [
        (("--shape", "0x5"), "bad shape '0x5'"),
        (("--shape", "10xa"), "bad shape '10xa'"),
        (("--dtype", "complex64"), "invalid choice: 'complex64'"),
        (("--repeat", "0"), "'0' must be a positive integer"),
        (("--source", str(tmp / "missing.npy")), "no such file"),
        (("--source", str(tmp / "trunc.npy")), "is truncated"),
        (("--source", str(tmp / "text.npy")), "not a readable .npy"),
        (
            ("--source", str(tmp / "good.npy"), "--shape", "4x10"),
            "holds shape 10x4 but --shape says 4x10",
        ),
        (("--source", str(tmp / "vec.npy"), "--axis", "1"), "--axis 1 needs an array of 2 or more"),
        (("--source", "data.csv"), "unknown source 'data.csv'"),
        (("--json", str(tmp / "nowhere" / "r.jsonl")), "does not exist"),
        (("--output", "means.txt"), "must end in .npy"),
        (("--device", "gpu"), "--device gpu"),
        (("--shape", "1000000x1000000"), "GB is available there"),
    ]


@pytest.mark.parametrize("distribute", ["local", "scatter"])
def test_bad_input_gives_one_line_and_exit_2_on_every_rank(tmp_path, distribute):
    for args, message in _bad_inputs(tmp_path):
        if args[:2] == ("--device", "gpu") and "cupy" in python("-c", "import cupy").stderr:
            message = "needs CuPy"
        started = time.monotonic()
        proc = launch(3, *MEAN, "--distribute", distribute, *args, timeout=30)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert time.monotonic() - started < 20
        errors = [line for line in proc.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and message in errors[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_help_is_printed_once_and_imports_nothing_heavy():
    proc = launch(3, *MEAN, "--help", timeout=30)
    assert proc.returncode == 0 and proc.stdout.count("usage:") == 1
    assert "--distribute" in proc.stdout and "--check" in proc.stdout
    # mpi4py is a real dependency of the kernels and is imported; MPI itself is not started.
    probe = python(
        "-c",
        "import sys\nfrom hpcsuite import mean\n"
        "try:\n    mean.parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('cupy', 'torch', 'matplotlib', 'h5py', 'numba') "
        "if m in sys.modules))\n"
        "from mpi4py import MPI\nprint(MPI.Is_initialized())",
    )
    assert probe.stdout.splitlines()[-2:] == ["[]", "False"], probe.stdout + probe.stderr


@pytest.mark.parametrize(
    "kind,code,marker",
    [
        ("crash", 1, "RuntimeError: injected failure on rank 1"),
        ("user", 2, "[rank 1] fault_job: error: injected user error"),
        ("memory", 1, "[rank 1] fault_job: error: out of memory (MemoryError: Unable to allocate"),
    ],
)
def test_a_failing_rank_ends_the_whole_job_within_seconds(kind, code, marker):
    started = time.monotonic()
    proc = launch(3, "tests/helpers/fault_job.py", kind, "1", timeout=30)
    assert time.monotonic() - started < 10
    assert proc.returncode == code, proc.stderr
    assert marker in proc.stderr
    if kind == "crash":
        assert "[rank 1] Traceback" in proc.stderr
        assert all(
            line.startswith("[rank 1]")
            for line in proc.stderr.splitlines()
            if "Traceback" in line or "File " in line
        )
    else:  # a user's mistake or a size too big: a message, no traceback
        assert "Traceback" not in proc.stderr


def test_an_agreed_error_exits_cleanly_everywhere_with_one_message():
    proc = launch(4, "tests/helpers/fault_job.py", "agreed", "3", timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("injected user error on rank 3") == 1
    assert "Abort" not in proc.stderr


def test_json_record_describes_the_run(tmp_path):
    path = tmp_path / "runs.jsonl"
    for n in (1, 2):
        proc = launch(
            n,
            *MEAN,
            "--shape",
            "2000x300",
            "--repeat",
            "3",
            "--warmup",
            "1",
            "--json",
            str(path),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["ranks"] for r in recs] == [1, 2]
    assert recs[0]["result"] == recs[1]["result"] == float(_mean_line(proc.stdout))
    assert len(recs[1]["times"]["reduction"]) == 3 and recs[1]["times"]["unit"] == "s"
    assert recs[1]["env"]["mpi_library"].startswith(("MPICH", "Open MPI"))
    assert recs[1]["fom"]["value"] > 0 and recs[1]["params"]["bytes"] == 2000 * 300 * 8


def test_info_reports_the_stack_and_ranks_per_node():
    proc = launch(2, "-m", "hpcsuite", "info", timeout=30)
    assert proc.returncode == 0, proc.stderr
    for field in (
        "numpy",
        "mpi4py",
        "mpi library",
        "cuda-aware mpi",
        "mpi threads",
        "cupy",
        "torch",
        "numba",
    ):
        assert re.search(rf"^{field}\s", proc.stdout, re.M), field
    assert "ranks          2 on 1 node" in proc.stdout
    listing = python("-m", "hpcsuite")
    assert "mean" in listing.stdout and listing.returncode == 0


MB = ("-m", "hpcsuite.microbench")


def _one_usage_error(proc, message):
    """Exit 2, one error line naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "n,args,message",
    [
        (2, ("nosuch",), "unknown test 'nosuch'"),
        (2, (), "name at least one test"),
        (2, ("latency", "--min", "64", "--max", "8"), "--min 64 is larger than --max 8"),
        (2, ("latency", "--max", "12Q"), "bad size '12Q'"),
        (3, ("latency",), "exactly 2 ranks, not 3"),
        (3, ("multi_lat",), "even number of them, not 3"),
        (1, ("allreduce",), "at least 2 ranks, not 1"),
        (2, ("reduce_scatter", "--buffer", "pickle"), "no pickle form"),
        (2, ("latency", "--buffer", "numpy,gpu"), "unknown buffer 'gpu'"),
        (2, ("alltoall", "--max", "64G"), "GB is available there"),
        (2, ("--all", "--time-per-size", "0"), "must be positive"),
    ],
)
def test_microbench_bad_arguments_give_one_line_and_exit_2(n, args, message):
    _one_usage_error(launch(n, *MB, *args, timeout=30), message)


def test_microbench_all_writes_records_and_osu_text(tmp_path):
    path = tmp_path / "omb.jsonl"
    proc = launch(
        2,
        *MB,
        "--all",
        "--max",
        "1K",
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--validate",
        "--json",
        str(path),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    from hpcsuite.microbench import output, runner

    sections = [
        s for s in proc.stdout.split("\n# OSU ") if s.strip()
    ]  # OSU 7.4: each test opens so
    sized = [
        n for n in runner.TESTS if runner.TESTS[n].family != "startup"
    ]  # --all leaves out init, hello
    assert len(sections) == len(sized)  # at n=2 every test applies
    assert all(output.parse_osu(s) for s in sections)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["kernel"] for r in recs} == {f"microbench.{n}" for n in sized}
    allreduce = [r for r in recs if r["kernel"] == "microbench.allreduce"]
    assert allreduce[-1]["result"]["busbw_gbps"] > 0 and allreduce[-1]["fom"]["unit"] == "us"


def test_microbench_help_starts_no_mpi():
    # Importing core.mpi loads mpi4py (MPI starts at the first world()/init()), so
    # --help may load the library but must not start MPI: that would fix the thread
    # level before --thread-level is read.
    probe = python(
        "-c",
        "from hpcsuite.microbench import __main__, options\n"
        "try:\n    options.parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "from mpi4py import MPI\nprint(MPI.Is_initialized())",
    )
    assert probe.stdout.strip().endswith("False"), probe.stdout + probe.stderr


def test_microbench_compares_buffer_kinds_in_one_run():
    proc = launch(
        2,
        *MB,
        "latency",
        "--buffer",
        "numpy,pickle,pkl5",
        "--max",
        "64",
        "--iterations",
        "5",
        "--format",
        "csv",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        lines[0].startswith("test,size") and len(lines) == 1 + 3 * 7
    )  # one header, 3 kinds x 7 sizes


@pytest.mark.parametrize(
    "module,args,message",
    [
        ("stream", ("--size", "0"), "'0' must be a positive integer"),
        ("stream", ("--size", "10000000000000"), "GB is available there"),
        ("montecarlo", ("--vol", "-0.2"), "--vol -0.2 must be a positive number"),
        ("montecarlo", ("--rate", "nan"), "--rate nan must be a finite number"),
        ("montecarlo", ("--paths", "x"), "'x' is not an integer"),
        ("stencil", ("--proc-grid", "3x1"), "--proc-grid 3x1 does not fit 2 ranks"),
        ("stencil", ("--alpha", "0.3"), "above 0.25 the scheme is unstable"),
        ("stencil", ("--shape", "1x100"), "too small for 2x1 ranks"),
        ("stencil", ("--shape", "10x10x10"), "must be two-dimensional"),
        ("matmul", ("--n", "1", "--proc-grid", "2x1"), "too small for a 2x1 process grid"),
        ("matmul", ("--n", "1000000"), "GB is available there"),
        ("matmul", ("--dtype", "int8"), "invalid choice: 'int8'"),
        ("fft", ("--shape", "64"), "must be 2-D or 3-D"),
        ("fft", ("--shape", "100000x100000x100"), "GB is available there"),
        ("kmer", ("-k", "32"), "-k 32 is out of range"),
        ("kmer", ("--source", "reads.fa.gz"), "is compressed"),
        ("kmer", ("--source", "no-such.fq"), "no such file"),
    ],
)
def test_kernel_bad_arguments_give_one_line_and_exit_2(module, args, message):
    _one_usage_error(launch(2, "-m", f"hpcsuite.{module}", *args, timeout=30), message)


def test_stream_and_montecarlo_jobs_check_out_and_record(tmp_path):
    path = tmp_path / "r.jsonl"
    for module, args in (
        ("stream", ("--size", "200000", "--repeat", "3")),
        ("montecarlo", ("--paths", "300000")),
        ("stencil", ("--shape", "120x90", "--steps", "7", "--check", "--overlap")),
        ("matmul", ("--n", "150", "--panel", "32", "--check")),
        ("fft", ("--shape", "30x20x6", "--check")),
        ("kmer", ("--reads", "500", "-k", "11", "--check")),
    ):
        proc = launch(3, "-m", f"hpcsuite.{module}", *args, "--json", str(path), timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "check      ok" in proc.stdout
        if module == "stream":  # 200000 elements: below the cache rule, and it says so
            assert "below STREAM's 4x last-level-cache rule" in proc.stdout
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["kernel"] for r in recs] == [
        "stream",
        "montecarlo",
        "stencil",
        "matmul",
        "fft",
        "kmer",
    ]
    assert recs[0]["fom"]["unit"] == "MB/s" and recs[1]["fom"]["unit"] == "paths/s"
    assert all(r["check"]["passed"] and r["ranks"] == 3 for r in recs)


def test_suite_small_runs_every_kernel_and_writes_one_record_each(tmp_path):
    from hpcsuite.suite import SIZES

    path = tmp_path / "suite.jsonl"
    # (How long it takes is for benchmarks, not a test: this machine is shared and noisy.)
    proc = launch(2, "-m", "hpcsuite.suite", "--size", "small", "--json", str(path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("hpcsuite.suite: --size small")[1].splitlines()[2:]
    assert [line.split()[0] for line in table] == list(SIZES["small"])
    assert all(line.rstrip().endswith("ok") for line in table)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["kernel"] for r in recs) == sorted(SIZES["small"])
    assert all(r["check"]["passed"] for r in recs)
    # each record carries its kernel's own command line, not the suite's
    assert all(r["argv"][:3] == ["python", "-m", f"hpcsuite.{r['kernel']}"] for r in recs)


def test_suite_refuses_unknown_kernels():
    _one_usage_error(
        launch(2, "-m", "hpcsuite.suite", "--only", "mean,nbody", timeout=30), "--only 'mean,nbody'"
    )


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize(
    "kind,code,marker",
    [
        ("exit", 4, "exit_job: error: this rank exited on its own with status 4"),
        ("interrupt", 130, "exit_job: interrupted"),
    ],
)
def test_an_exit_or_interrupt_on_one_rank_aborts_the_job_instead_of_hanging(n, kind, code, marker):
    # The other ranks wait in Barrier: without an abort this job would never end.
    proc = launch(n, "tests/helpers/exit_job.py", kind, str(n - 1), timeout=30)
    assert proc.returncode == code, proc.stderr
    assert f"[rank {n - 1}] {marker}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_an_exit_every_rank_takes_together_is_clean(n):
    proc = launch(n, "tests/helpers/exit_job.py", "agreed-exit", "0", timeout=30)
    assert proc.returncode == 5, proc.stderr
    assert "Abort" not in proc.stderr and "Traceback" not in proc.stderr


# -- issue 14: kmer inputs -----------------------------------------------------------------------


def _kmer_fasta(tmp_path, newline):
    rng = np.random.default_rng(4)
    seq = "".join(rng.choice(list("ACGT"), size=3000))
    path = tmp_path / f"g{len(newline)}{ord(newline[0])}.fa"
    path.write_bytes(
        (
            newline.join([">chr1 test", *(seq[i : i + 60] for i in range(0, 3000, 60))]) + newline
        ).encode()
    )
    return path


def _distinct(stdout):
    match = re.search(r"(\d+) distinct (\d+)-mers", stdout)
    assert match, stdout
    return int(match.group(1))


def test_kmer_cr_crlf_and_lf_files_give_the_same_counts_and_the_check_reads_them_itself(tmp_path):
    seen = set()
    for newline in ("\n", "\r\n", "\r"):
        path = _kmer_fasta(tmp_path, newline)
        proc = launch(
            2, "-m", "hpcsuite.kmer", "--source", str(path), "-k", "9", "--check", timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "check      ok" in proc.stdout
        seen.add(_distinct(proc.stdout))
    assert len(seen) == 1 and seen.pop() > 2900  # 2992 9-mers, nearly all distinct: never 0


def test_kmer_check_fails_when_the_parallel_reader_loses_reads(tmp_path):
    # The check's reference reads the file itself: if the parallel reader drops records,
    # the check must say so (before, it counted what the reader gave it and said ok).
    path = _kmer_fasta(tmp_path, "\n")
    path.write_text(path.read_text() + ">chr2\nACGTACGTACGTTTTT\n")
    code = (
        "import sys\nfrom hpcsuite import kmer\nfrom hpcsuite.core import cli\nreal ="
        " kmer.seqio.read_distributed\ndef lossy(comm, p, fmt, overlap):\n    chunk, seqs ="
        " real(comm, p, fmt, overlap)\n    return chunk, seqs[:-1]  # the last record"
        " vanishes\nkmer.seqio.read_distributed = lossy\nsys.exit(cli.run(kmer.main, ['--source',"
        f" {str(path)!r}, '-k', '9', '--check'], prog='kmer'))\n"
    )
    proc = launch(2, "-c", code, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "check      FAILED" in proc.stdout


@pytest.mark.parametrize("n", [1, 2])
def test_kmer_truncated_fastq_warns_once_or_fails_under_strict(tmp_path, n):
    path = tmp_path / "t.fq"
    path.write_text(
        "".join(f"@r{i}\nACGTACGTAC\n+\nIIIIIIIIII\n" for i in range(50)) + "@r50\nACGTAC\n+\nII"
    )
    proc = launch(n, "-m", "hpcsuite.kmer", "--source", str(path), "-k", "5", "--check", timeout=60)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "1 incomplete FASTQ record" in warnings[0], proc.stderr
    assert "50 reads" in proc.stdout and "check      ok" in proc.stdout
    strict = launch(n, "-m", "hpcsuite.kmer", "--source", str(path), "--strict", timeout=60)
    _one_usage_error(strict, "1 incomplete FASTQ record")
    assert strict.stdout == ""


@pytest.mark.parametrize("module", ["kmer", "mean"])
def test_a_fifo_source_is_refused_at_once_not_waited_on(tmp_path, module):
    import os

    fifo = tmp_path / ("reads.fa" if module == "kmer" else "a.npy")
    os.mkfifo(fifo)
    proc = launch(2, "-m", f"hpcsuite.{module}", "--source", str(fifo), timeout=30)
    _one_usage_error(proc, "not a regular file")
