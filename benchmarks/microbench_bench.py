"""hpcsuite.microbench against a minimal hand-written mpi4py loop, side by side, at n = 2.

Points: 8 B and 4 MiB latency, 4 MiB bandwidth (window 64), 8 B and 1 MiB allreduce
(float32), each at ``--thread-level single`` and ``multiple`` (the hand-written loop
starts MPI at the same level through ``mpi4py.rc``). Both sides write every buffer
before timing, run the same iterations after the same warm-up (OSU's counts), and
report what OSU reports: latency = mean over ranks of the per-iteration mean (a round
trip halved for point to point), bandwidth = bytes / total time on the sender.

Each program runs ``--runs`` times, alternating; the table shows the medians and the
ratio hpcsuite / hand-written. Target: within 5 % at every point (latency ratio at
most 1.05, bandwidth at least 0.95). Timings mean something only on a quiet machine.

With ``--same-job`` both loops run inside one MPI job per thread level, alternating
which goes first (hpcsuite's measurement function, as its command line calls it, beside
the hand-written loop): on this VM separate jobs land in one of two speeds for large
messages (a 1 MiB allreduce ~440 or ~900 us in either program), which a handful of
runs cannot average out; inside one job both share the placement.

usage: python benchmarks/microbench_bench.py [--runs 5] [--quick] [--same-job]
       (inside: mpiexec -n 2 python benchmarks/microbench_bench.py
                --worker TEST BYTES ITERS WARMUP LEVEL)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIEXEC = str(BIN / "mpiexec") if (BIN / "mpiexec").exists() else "mpiexec"
PY = sys.executable
WINDOW = 64
#: (test, bytes, iterations, warm-up): OSU's defaults for these sizes.
POINTS = [
    ("latency", 8, 10000, 100),
    ("latency", 4 << 20, 1000, 10),
    ("bw", 4 << 20, 20, 2),
    ("allreduce", 8, 1000, 100),
    ("allreduce", 1 << 20, 100, 10),
]
LEVELS = ("single", "multiple")


def _start(level: str) -> None:
    """Start MPI at ``level`` as a hand-written program does, through ``mpi4py.rc``."""
    import mpi4py

    if level == "single":
        mpi4py.rc.threads = False  # plain MPI_Init, as hpcsuite and OSU C
    else:
        mpi4py.rc.thread_level = level
    from mpi4py import MPI  # noqa: F401 - the import starts MPI


def worker(test: str, nbytes: int, iters: int, warmup: int, level: str) -> None:
    """The hand-written program (run under mpiexec -n 2); prints ``value=`` on rank 0."""
    _start(level)
    from mpi4py import MPI

    value = hand_loop(MPI.COMM_WORLD, test, nbytes, iters, warmup)
    if MPI.COMM_WORLD.rank == 0:
        print(f"value={value:.6f}", flush=True)


def hand_loop(comm, test: str, nbytes: int, iters: int, warmup: int) -> float:
    """The minimal mpi4py loop for one point; its figure (us or MB/s) on every rank."""
    import numpy as np
    from mpi4py import MPI

    peer = 1 - comm.rank
    clock = time.perf_counter
    if test == "allreduce":
        count = nbytes // 4
        send = (np.arange(count) % 13 + 1).astype(np.float32)  # written, as every buffer
        recv = np.full(count, -1, np.float32)
        total = 0.0
        for i in range(warmup + iters):
            t0 = clock()
            comm.Allreduce(send, recv, op=MPI.SUM)
            if i >= warmup:
                total += clock() - t0
            comm.Barrier()
        mean = comm.allreduce(total / iters) / comm.size  # OSU's average over ranks
        value = mean * 1e6
    else:
        send = ((np.arange(nbytes) * 7 + comm.rank * 31 + 1) % 251).astype(np.uint8)
        recv = np.full(nbytes, 0xFF, np.uint8)
        ack = np.zeros(1, np.uint8)
        for i in range(warmup + iters):
            if i == warmup:
                comm.Barrier()
                start = clock()
            if test == "latency":
                if comm.rank == 0:
                    comm.Send(send, peer, 1)
                    comm.Recv(recv, peer, 1)
                else:
                    comm.Recv(recv, peer, 1)
                    comm.Send(send, peer, 1)
            elif comm.rank == 0:
                MPI.Request.Waitall([comm.Isend(send, peer, 2) for _ in range(WINDOW)])
                comm.Recv(ack, peer, 3)
            else:
                MPI.Request.Waitall([comm.Irecv(recv, peer, 2) for _ in range(WINDOW)])
                comm.Send(ack, peer, 3)
        elapsed = clock() - start
        if test == "latency":
            value = comm.allreduce(elapsed / iters / 2) / comm.size * 1e6
        else:
            value = comm.bcast(nbytes * WINDOW * iters / elapsed / 1e6, root=0)
    return value


def same_job(level: str, runs: int, points: list[tuple[str, int, int, int]]) -> None:
    """Both loops in one MPI job, alternating which goes first (run under mpiexec -n 2).

    Separate jobs on this VM land in one of two speeds for large messages (a 1 MiB
    allreduce takes ~440 or ~900 us, in either program, from job to job); inside one
    job both loops share that placement, so their ratio is the harness's own cost.
    Prints one JSON line per point on rank 0.
    """
    from hpcsuite.core import mpi
    from hpcsuite.microbench import runner
    from hpcsuite.microbench.buffers import Messages

    mpi.init(level)
    comm = mpi.world()
    msgs = Messages("numpy")
    for test, nbytes, iters, warmup in points:
        got: dict[str, list[float]] = {"hpcsuite": [], "hand-written": []}
        for r in range(runs):
            order = ("hpcsuite", "hand-written") if r % 2 == 0 else ("hand-written", "hpcsuite")
            for who in order:
                if who == "hand-written":
                    got[who].append(hand_loop(comm, test, nbytes, iters, warmup))
                    continue
                row = runner.measure(
                    comm,
                    test,
                    msgs,
                    nbytes,
                    iters=iters,
                    warmup=warmup,
                    window=WINDOW,
                    validate=False,
                    budget=None,
                )
                value = row and (row["mbps"] if test == "bw" else row["avg_us"])
                got[who].append(comm.bcast(value, root=0))
        if comm.rank == 0:
            print(json.dumps({"test": test, "bytes": nbytes, "level": level, **got}), flush=True)


def _run(args: list[str]) -> str:
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", PY, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE.parent,
    )
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr}")
    return proc.stdout


def ours(test: str, nbytes: int, iters: int, warmup: int, level: str) -> float:
    text = _run(
        [
            "-m",
            "hpcsuite.microbench",
            test,
            "-m",
            f"{nbytes}:{nbytes}",
            "-i",
            str(iters),
            "-x",
            str(warmup),
            "-W",
            str(WINDOW),
            "--thread-level",
            level,
            "--format",
            "json",
        ]
    )
    result = json.loads(text.splitlines()[0])["result"]
    return result["mbps"] if test == "bw" else result["avg_us"]


def handwritten(test: str, nbytes: int, iters: int, warmup: int, level: str) -> float:
    text = _run(
        [
            str(Path(__file__).resolve()),
            "--worker",
            test,
            str(nbytes),
            str(iters),
            str(warmup),
            level,
        ]
    )
    return float(text.split("value=")[1].split()[0])


def _label(test: str, nbytes: int) -> str:
    size = f"{nbytes} B" if nbytes < 1024 else f"{nbytes >> 20} MiB"
    unit = "MB/s" if test == "bw" else "us"
    return f"{test} {size} ({unit})"


def _points(quick: bool) -> list[tuple[str, int, int, int]]:
    """The points to measure: :data:`POINTS`, or with few iterations for ``--quick``."""
    return [(t, b, 5, 1) for t, b, _, _ in POINTS] if quick else list(POINTS)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="alternating runs of each program [5]")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: 1 run, few iterations (no timings to quote)",
    )
    p.add_argument(
        "--worker",
        nargs=5,
        metavar=("TEST", "BYTES", "ITERS", "WARMUP", "LEVEL"),
        help=argparse.SUPPRESS,
    )
    p.add_argument(
        "--same-job",
        action="store_true",
        help="both loops inside one MPI job per thread level, alternating (hpcsuite's "
        "measurement function, not its command line): job-to-job placement noise cancels",
    )
    p.add_argument("--same-job-worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        test, nbytes, iters, warmup, level = args.worker
        worker(test, int(nbytes), int(iters), int(warmup), level)
        return 0
    if args.same_job_worker:
        level, runs, quick = args.same_job_worker
        same_job(level, int(runs), _points(quick == "1"))
        return 0
    runs = 1 if args.quick else args.runs
    points = _points(args.quick)
    values: dict[tuple, dict[str, list[float]]] = {}
    if args.same_job:
        for level in LEVELS:
            me = str(Path(__file__).resolve())
            text = _run([me, "--same-job-worker", level, str(runs), "1" if args.quick else "0"])
            for line in text.splitlines():
                got = json.loads(line)
                values[got["test"], got["bytes"], level] = {
                    k: got[k] for k in ("hpcsuite", "hand-written")
                }
    for r in range(0 if args.same_job else runs):
        for level in LEVELS:
            for test, nbytes, iters, warmup in points:
                cell = values.setdefault(
                    (test, nbytes, level), {"hpcsuite": [], "hand-written": []}
                )
                # Alternate which program goes first: what ran just before shifts a time.
                first = (ours, "hpcsuite") if r % 2 == 0 else (handwritten, "hand-written")
                second = (handwritten, "hand-written") if r % 2 == 0 else (ours, "hpcsuite")
                for fn, who in (first, second):
                    cell[who].append(fn(test, nbytes, iters, warmup, level))
    how = "one MPI job per thread level, alternating" if args.same_job else "separate jobs"
    print(
        f"\nn = 2, medians of {runs} run{'s' if runs > 1 else ''}, {how} "
        "(ratio = hpcsuite / hand-written)"
    )
    print(f"{'point':<26}{'threads':>10}{'hpcsuite':>12}{'hand-written':>14}{'ratio':>8}  target")
    missed = 0
    for (test, nbytes, level), cell in values.items():
        a, b = statistics.median(cell["hpcsuite"]), statistics.median(cell["hand-written"])
        ratio = a / b if b else float("nan")
        ok = ratio >= 0.95 if test == "bw" else ratio <= 1.05
        missed += not ok
        target = ">= 0.95" if test == "bw" else "<= 1.05"
        print(
            f"{_label(test, nbytes):<26}{level:>10}{a:>12.2f}{b:>14.2f}{ratio:>8.3f}  {target} "
            f"{'met' if ok else 'MISSED'}"
        )
    print(f"\n{len(values) - missed} of {len(values)} points within 5 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
