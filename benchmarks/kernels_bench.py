"""Every scientific kernel at n = 1 and n = 2 beside its limit, measured in the same run.

| kernel     | limit measured here                              | target                          |
| stream     | one-process NumPy triad, median (two-pass triad) | n=1 triad within 10 % of it     |
| stencil    | STREAM-triad bandwidth / 16 B per site update    | at least 50 % of that bound     |
| matmul     | one-process NumPy matmul GFLOP/s (1 BLAS thread) | SUMMA n=2 >= 1.6x n=1 (n>=4096) |
| fft        | one-process numpy.fft.fftn GFLOP/s               | (reported)                      |
| montecarlo | one-process NumPy paths/s                        | (reported)                      |
| kmer       | one-process collections.Counter bases/s          | (reported)                      |

Limits and kernels alike are work over the median time of their repetitions.
BLAS runs one thread per rank (OPENBLAS_NUM_THREADS=1 etc.), so n ranks use n cores.

usage: python benchmarks/kernels_bench.py [--quick] [--only stream,stencil,...]
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process, set before NumPy loads: the one-process limits and
# every rank then use one core each.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIRUN = str(BIN / "mpirun") if (BIN / "mpirun").exists() else "mpirun"
ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def ours(kernel: str, ranks: int, args: list[str]) -> float:
    """The kernel's figure of merit from its record, run under mpirun."""
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "r.jsonl")
        proc = subprocess.run(
            [
                MPIRUN,
                "-n",
                str(ranks),
                sys.executable,
                "-m",
                f"hpcsuite.{kernel}",
                *args,
                "--warmup",
                "1",
                "--quiet",
                "--json",
                rec,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, **ONE_THREAD},
            cwd=HERE.parent,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{kernel} n={ranks} failed:\n{proc.stderr}")
        with open(rec, encoding="utf-8") as f:
            return json.loads(f.readline())["fom"]["value"]


def best(fn, repeat: int = 5) -> float:
    """Median of ``repeat`` timed calls (after one warm-up): the statistic the kernels'
    figures of merit use (work over the median time), so limits and kernels compare alike."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def numpy_triad(n: int) -> float:
    # Every array written, as STREAM's C initializes them: np.zeros's pages are never
    # touched, all map the kernel's one zero page, and reading c then costs almost no
    # memory traffic (a limit up to 25 % too high).
    a, b, c = np.full(n, 1.0), np.full(n, 2.0), np.full(n, 0.0)

    def triad() -> None:
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    return 3 * 8 * n / best(triad) / 1e6


def numpy_matmul(n: int) -> float:
    a, b = np.random.default_rng(0).random((n, n)), np.random.default_rng(1).random((n, n))
    return 2 * n**3 / best(lambda: a @ b, 3) / 1e9


def numpy_fft(shape: tuple[int, ...]) -> float:
    x = np.random.default_rng(0).random(shape) + 1j
    n = math.prod(shape)
    return 2 * 5 * n * math.log2(n) / best(lambda: np.fft.ifftn(np.fft.fftn(x)), 3) / 1e9


def numpy_montecarlo(paths: int) -> float:
    def price() -> float:
        z = np.random.default_rng(0).standard_normal(paths)
        st = 100 * np.exp((0.05 - 0.02) + 0.2 * z)
        return float(np.maximum(st - 105, 0).mean())

    return paths / best(price, 3)


def counter_kmer(reads: int, k: int) -> float:
    from hpcsuite.kmer import generate, reference_counts

    seqs = generate(0, reads, 0, 150, 1_000_000)
    return sum(map(len, seqs)) / best(lambda: reference_counts(seqs, k), 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smaller problems (a smoke test of this script)"
    )
    p.add_argument(
        "--only",
        default="stream,stencil,matmul,fft,montecarlo,kmer",
        help="comma list of kernels to run [all]",
    )
    args = p.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    n_stream = 2_000_000 if q else 50_000_000
    grid, steps = ("512x512", "10") if q else ("4096x4096", "50")
    n_mm = 512 if q else 4096
    fft_shape = (32, 32, 32) if q else (256, 256, 256)
    paths = 1_000_000 if q else 20_000_000
    reads = 2_000 if q else 40_000

    rows = []
    if only & {"stream", "stencil"}:
        triad_np = numpy_triad(n_stream)
    if "stream" in only:
        s1, s2 = (ours("stream", r, ["--size", str(n_stream), "--repeat", "5"]) for r in (1, 2))
        rows.append(
            (
                "stream triad MB/s",
                s1,
                s2,
                triad_np,
                "NumPy triad, 1 process",
                s1 / triad_np,
                ">= 0.90",
            )
        )
    if "stencil" in only:
        bound = triad_np * 1e6 / 16  # site updates/s if each update moved only its 16 bytes
        t1, t2 = (
            ours("stencil", r, ["--shape", grid, "--steps", steps, "--repeat", "3"]) for r in (1, 2)
        )
        rows.append(
            (
                "stencil site updates/s",
                t1,
                t2,
                bound,
                "triad BW / 16 B per update",
                t1 / bound,
                ">= 0.50",
            )
        )
    if "matmul" in only:
        mm = numpy_matmul(n_mm)
        m1, m2 = (ours("matmul", r, ["--n", str(n_mm), "--repeat", "3"]) for r in (1, 2))
        rows.append(
            (
                f"matmul GFLOP/s (n {n_mm})",
                m1,
                m2,
                mm,
                "NumPy A @ B, 1 thread",
                m2 / m1,
                "n2/n1 >= 1.6",
            )
        )
    if "fft" in only:
        ff = numpy_fft(fft_shape)
        f1, f2 = (
            ours("fft", r, ["--shape", "x".join(map(str, fft_shape)), "--repeat", "3"])
            for r in (1, 2)
        )
        rows.append(("fft GFLOP/s", f1, f2, ff, "numpy.fft, 1 process", f1 / ff, "-"))
    if "montecarlo" in only:
        mc = numpy_montecarlo(paths)
        c1, c2 = (
            ours("montecarlo", r, ["--paths", str(paths), "--no-check", "--repeat", "3"])
            for r in (1, 2)
        )
        rows.append(("montecarlo paths/s", c1, c2, mc, "NumPy, 1 process", c1 / mc, "-"))
    if "kmer" in only:
        kc = counter_kmer(reads, 21)
        k1, k2 = (ours("kmer", r, ["--reads", str(reads), "--repeat", "3"]) for r in (1, 2))
        rows.append(("kmer bases/s", k1, k2, kc, "Counter, 1 process", k1 / kc, "-"))

    print(
        f"\n{'figure of merit':<28}{'n=1':>12}{'n=2':>12}{'limit':>12} "
        f" {'limit is':<28}{'ratio':>7}  target"
    )
    for name, a, b, lim, what, ratio, target in rows:
        print(f"{name:<28}{a:>12.4g}{b:>12.4g}{lim:>12.4g}  {what:<28}{ratio:>7.2f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
