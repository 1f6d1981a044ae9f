"""hpcsuite.mean side by side with its peers, in one run: medians and ratios.

Every program computes the mean of the same 10000 x 10000 uniform random array,
end to end (start-up, data generation, reduction, exit), timed from outside:

* ``mpirun -n 2 python -m hpcsuite.mean``      (and n = 8, oversubscribed)
* ``mpirun -n 2 python handwritten_mean.py``    (the minimal mpi4py program; and n = 8)
* ``python numpy_mean.py``                      (one process)
* ``python dask_mean.py``                       (the Dask ``Client()`` program)

Rounds are interleaved, each in a new (seeded) random order, so drift of the machine
and leftovers of the previous program hit every program alike. Then the reduction
kernel's bandwidth (``--repeat`` timed runs inside hpcsuite.mean) is put beside the
STREAM-style read bandwidth measured by ``stream_read.py`` at the same rank counts, in
the same invocation.

usage: python benchmarks/mean_bench.py [--runs 5] [--shape 10000x10000] [--no-dask]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpcsuite.core import stats

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIRUN = str(BIN / "mpirun") if (BIN / "mpirun").exists() else "mpirun"

#: Targets from the issue, as (row, reference row, maximum ratio).
TARGETS = [
    ("hpcsuite.mean n=2", "hand-written mpi4py n=2", 1.10),
    ("hpcsuite.mean n=2", "Dask Client() program", 1 / 3.5),
]


def _run(cmd: list[str], timeout: float = 300) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}"
        )
    return elapsed, proc.stdout


def _programs(shape: tuple[int, int], dask: bool) -> dict[str, list[str]]:
    rows, cols = map(str, shape)
    py = sys.executable
    progs = {
        "hpcsuite.mean n=2": [
            MPIRUN,
            "-n",
            "2",
            py,
            "-m",
            "hpcsuite.mean",
            "--quiet",
            "--shape",
            f"{rows}x{cols}",
        ],
        "hand-written mpi4py n=2": [
            MPIRUN,
            "-n",
            "2",
            py,
            str(HERE / "handwritten_mean.py"),
            rows,
            cols,
        ],
        "hand-written mpi4py n=8": [
            MPIRUN,
            "-n",
            "8",
            py,
            str(HERE / "handwritten_mean.py"),
            rows,
            cols,
        ],
        "NumPy, 1 process": [py, str(HERE / "numpy_mean.py"), rows, cols],
        "hpcsuite.mean n=8": [
            MPIRUN,
            "-n",
            "8",
            py,
            "-m",
            "hpcsuite.mean",
            "--quiet",
            "--shape",
            f"{rows}x{cols}",
        ],
    }
    if dask:
        progs["Dask Client() program"] = [py, str(HERE / "dask_mean.py"), rows, cols]
    return progs


def _bandwidths(shape: tuple[int, int], ranks: int, repeat: int) -> tuple[float, float]:
    """(hpcsuite reduction GB/s, STREAM-style read GB/s), both medians, at ``ranks``."""
    nbytes = shape[0] * shape[1] * 8
    with tempfile.TemporaryDirectory() as tmp:
        record = os.path.join(tmp, "r.jsonl")
        _run(
            [
                MPIRUN,
                "-n",
                str(ranks),
                sys.executable,
                "-m",
                "hpcsuite.mean",
                "--quiet",
                "--shape",
                f"{shape[0]}x{shape[1]}",
                "--warmup",
                "2",
                "--repeat",
                str(repeat),
                "--json",
                record,
            ]
        )
        with open(record, encoding="utf-8") as f:
            ours = json.loads(f.readline())["fom"]["value"]
    _, out = _run(
        [
            MPIRUN,
            "-n",
            str(ranks),
            sys.executable,
            str(HERE / "stream_read.py"),
            str(nbytes),
            str(repeat),
        ]
    )
    stream = float(re.search(r"median=([\d.]+)", out).group(1))
    return ours, stream


def _ratio_verdict(ours: list[float], ref: list[float], limit: float) -> str:
    """``median(ours) / median(ref) <= limit``, judged as the report judges a change:
    a Mann-Whitney test of ``ours`` against ``limit`` times ``ref``. A median on the
    wrong side of the limit that the test does not carry is said to be within the noise."""
    ratio = statistics.median(ours) / statistics.median(ref)
    c = stats.compare([limit * t for t in ref], ours)
    if ratio <= limit:
        return "met" + (f" (significantly, p={c.p_value:.2g})" if c.verdict == "faster" else "")
    if c.verdict == "slower":
        return f"MISSED (significantly, p={c.p_value:.2g})"
    return f"MISSED by the median, within the noise (p={c.p_value:.2g}; more --runs decide)"


def _limit_verdict(low: float, high: float, limit: float) -> str:
    """At most ``limit``, from the interval of the median: met, MISSED, or undecided."""
    if high <= limit:
        return "met"
    if low > limit:
        return "MISSED (the whole interval is above)"
    return "undecided (the interval straddles the limit; more --runs decide)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs of each program [%(default)s]")
    p.add_argument("--shape", default="10000x10000", help="array shape [%(default)s]")
    p.add_argument("--no-dask", action="store_true", help="leave Dask out")
    p.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds of rest before each timed program [%(default)s]",
    )
    p.add_argument(
        "--repeat", type=int, default=10, help="reduction repetitions for GB/s [%(default)s]"
    )
    args = p.parse_args()
    shape = tuple(int(s) for s in args.shape.split("x"))
    dask = not args.no_dask and importlib.util.find_spec("distributed") is not None
    if not dask and not args.no_dask:
        print("note: Dask not installed (pip install 'hpcsuite[bench]'); its row is left out")
    progs = _programs(shape, dask)
    # A pip install compiles hpcsuite's bytecode; an editable install writes it on first
    # import, unless PYTHONDONTWRITEBYTECODE is set (as on this project's VMs), when
    # every rank would compile hpcsuite's sources again at each start: time what users
    # run. (The hand-written program is one script, compiled at every start either way.)
    compileall.compile_dir(str(HERE.parent / "hpcsuite"), quiet=1)

    times: dict[str, list[float]] = {name: [] for name in progs}
    for name, cmd in progs.items():  # one untimed round: file caches, first-run effects
        _run(cmd)
    order = random.Random(0)
    for r in range(args.runs):
        # A new order each round: on these VMs a program's time depends on what ran
        # just before it (memory an exiting 800 MB process gives back, Dask's workers
        # outliving its client), and a fixed cycle hands that cost to the same program.
        names = list(progs)
        order.shuffle(names)
        for name in names:
            time.sleep(args.settle)  # 0 by default: an idle pause lets this VM's CPUs clock down
            times[name].append(_run(progs[name])[0])
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr, flush=True)

    base = statistics.median(times["hand-written mpi4py n=2"])
    print(
        f"\nmean of a {args.shape} float64 array, end to end, {args.runs} runs each "
        f"(cpu count {os.cpu_count()})"
    )
    print(f"{'program':<28}{'median s':>10}{'min s':>9}{'max s':>9}{'vs hand-written':>17}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<28}{med:>10.3f}{min(ts):>9.3f}{max(ts):>9.3f}{med / base:>16.2f}x")

    print(f"\nreduction bandwidth vs STREAM-style read, medians of {args.repeat} (GB/s = 1e9 B/s)")
    print(f"{'ranks':<8}{'hpcsuite':>10}{'STREAM read':>13}{'ratio':>8}")
    ratios = {}
    for ranks in (1, 2):
        ours, stream = _bandwidths(shape, ranks, args.repeat)
        ratios[ranks] = ours / stream
        print(f"{ranks:<8}{ours:>10.2f}{stream:>13.2f}{ours / stream:>8.2f}")

    print("\ntargets (a verdict the noise cannot carry says so: rank test / interval, 95 %)")
    for name, ref, limit in TARGETS:
        if ref in times:
            ratio = statistics.median(times[name]) / statistics.median(times[ref])
            verdict = _ratio_verdict(times[name], times[ref], limit)
            print(f"  {name} / {ref} = {ratio:.2f} (at most {limit:.2f}): {verdict}")
    n8 = statistics.median(times["hpcsuite.mean n=8"])
    hand8 = statistics.median(times["hand-written mpi4py n=8"])
    low, high = stats.median_interval(times["hpcsuite.mean n=8"])
    print(
        f"  hpcsuite.mean n=8 = {n8:.2f} s, median interval {low:.2f} to {high:.2f} s "
        f"(at most 2 s): {_limit_verdict(low, high, 2.0)} "
        f"(the hand-written program at n=8: {hand8:.2f} s, {n8 / hand8:.2f}x)"
    )
    for ranks, ratio in ratios.items():
        print(
            f"  reduction / STREAM read at n={ranks} = {ratio:.2f} (at least 0.90): "
            f"{'met' if ratio >= 0.9 else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
