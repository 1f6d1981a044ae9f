"""hpcsuite.microbench against the floor, side by side in one run, at n = 2.

* 8-byte latency: ``hpcsuite.microbench latency`` vs ``python -m mpi4py.bench pingpong``
  (same MPI, same iterations: 10000 after 100 warm-up). Target: within 5 %.
* 4 MiB bandwidth: ``hpcsuite.microbench bw`` vs ``handwritten_bw.py`` (a minimal
  Isend/Irecv window loop; window 64, 20 iterations). Target: within 5 %.

Each program runs ``--runs`` times, alternating; the table shows the median of the
values they report.

usage: python benchmarks/microbench_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIRUN = str(BIN / "mpirun") if (BIN / "mpirun").exists() else "mpirun"
PY = sys.executable


def _out(*args: str) -> str:
    proc = subprocess.run([MPIRUN, "-n", "2", PY, *args], capture_output=True, text=True,
                          timeout=300, cwd=HERE.parent)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr}")
    return proc.stdout


def ours(test: str, size: str, key: str) -> float:
    line = _out("-m", "hpcsuite.microbench", test, "--min", size, "--max", size,
                "--format", "json").splitlines()[0]
    return json.loads(line)["result"][key]


def mpi4py_latency_us() -> float:
    text = _out("-m", "mpi4py.bench", "pingpong", "-m", "8", "-n", "8", "-s", "100", "-l", "10000")
    row = [line for line in text.splitlines() if re.match(r"\s*8\s", line)][0]
    return float(row.split("|")[1].split()[0]) * 1e6


def handwritten_bw() -> float:
    return float(re.search(r"bandwidth_MBps=([\d.]+)", _out(str(HERE / "handwritten_bw.py"))).group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    rows = {"latency 8 B (us), hpcsuite": [], "latency 8 B (us), mpi4py.bench": [],
            "bw 4 MiB (MB/s), hpcsuite": [], "bw 4 MiB (MB/s), hand-written": []}
    for _ in range(args.runs):
        rows["latency 8 B (us), hpcsuite"].append(ours("latency", "8", "avg_us"))
        rows["latency 8 B (us), mpi4py.bench"].append(mpi4py_latency_us())
        rows["bw 4 MiB (MB/s), hpcsuite"].append(ours("bw", "4M", "mbps"))
        rows["bw 4 MiB (MB/s), hand-written"].append(handwritten_bw())
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\nn = 2, medians of {args.runs} runs")
    print(f"{'measurement':<34}{'median':>10}{'min':>10}{'max':>10}")
    for k, v in rows.items():
        print(f"{k:<34}{med[k]:>10.2f}{min(v):>10.2f}{max(v):>10.2f}")
    lat = med["latency 8 B (us), hpcsuite"] / med["latency 8 B (us), mpi4py.bench"]
    bw = med["bw 4 MiB (MB/s), hpcsuite"] / med["bw 4 MiB (MB/s), hand-written"]
    print(f"\nlatency ours / mpi4py.bench = {lat:.3f} (at most 1.05): {'met' if lat <= 1.05 else 'MISSED'}")
    print(f"bandwidth ours / hand-written = {bw:.3f} (at least 0.95): {'met' if bw >= 0.95 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
