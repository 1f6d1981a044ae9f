"""k-mer reading and counting of one long FASTA record (a chromosome) at several rank counts.

Issue 14: reading one long record was quadratic and got slower with more ranks (16 MB:
7 s at n=1, 28 s at n=2, 52 s at n=4). This writes a single-record genome (100 MB of
bases by default, 60 per line) once, then for each rank count runs an MPI job that
times, as the maximum over ranks,

* read:  ``kmer.read_file`` (every rank reads its byte range; the record stays spread),
* count: ``kmer.run`` (2-bit encoding, local counts, the Alltoallv merge by hash owner),

and prints one line per rank count. Reading should take about 1/N of the n=1 time (it
is I/O and ``bytes.translate``; a page-cached file makes it memory-bound). Run it on a
quiet machine; numbers taken while other work runs mean little.

usage: python benchmarks/kmer_long_record.py [--bases 100e6] [--ranks 1,2,4] [-k 21] [--file PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

LINE = 60


def write_genome(path: str, bases: int, seed: int = 1) -> None:
    """One FASTA record of ``bases`` random bases, ``LINE`` per line, written in pieces."""
    import numpy as np

    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGT", dtype=np.uint8)
    rows_per_piece = 1 << 16
    with open(path, "wb") as f:
        f.write(b">chr1 synthetic single-record genome for hpcsuite's kmer benchmark\n")
        left = bases
        while left > 0:
            n = min(left, rows_per_piece * LINE)
            rows = -(-n // LINE)
            block = np.full((rows, LINE + 1), ord("\n"), dtype=np.uint8)
            block[:, :LINE] = alphabet[rng.integers(0, 4, size=(rows, LINE))]
            data = block.tobytes()
            if n % LINE:  # the last, short line
                data = data[: -(LINE + 1)] + data[-(LINE + 1) :][: n % LINE] + b"\n"
            f.write(data)
            left -= n


def worker(path: str, k: int) -> None:
    """Inside the MPI job: time reading and counting, print one line on rank 0."""
    from mpi4py import MPI

    from hpcsuite import kmer

    comm = MPI.COMM_WORLD
    comm.Barrier()
    t0 = time.perf_counter()
    seqs, bases, records, _, _ = kmer.read_file(comm, path, k)
    t1 = time.perf_counter()
    codes, _, _ = kmer.run(comm, seqs, k)
    t2 = time.perf_counter()
    read = comm.allreduce(t1 - t0, op=MPI.MAX)
    counted = comm.allreduce(t2 - t1, op=MPI.MAX)
    bases = comm.allreduce(bases)
    records = comm.allreduce(records)
    distinct = comm.allreduce(len(codes))
    if comm.rank == 0:
        print(
            f"n={comm.size} records={records} bases={bases} distinct={distinct} "
            f"read_s={read:.3f} count_s={counted:.3f} total_s={read + counted:.3f} "
            f"read_MBps={bases / read / 1e6:.1f}",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bases", type=float, default=100e6, help="bases in the record [%(default).0f]")
    p.add_argument("--ranks", default="1,2,4", help="rank counts [%(default)s]")
    p.add_argument("-k", type=int, default=21, help="k-mer length [%(default)s]")
    p.add_argument("--file", help="genome file to use or create [a temporary file, removed after]")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.file, args.k)
        return 0
    folder = None
    path = args.file
    if path is None:
        folder = tempfile.mkdtemp(prefix="kmer-long-record-")
        path = os.path.join(folder, "chr.fa")
    try:
        if not os.path.exists(path):
            started = time.perf_counter()
            write_genome(path, int(args.bases))
            print(
                f"wrote {path}: {os.path.getsize(path)} bytes in"
                f" {time.perf_counter() - started:.1f} s",
                flush=True,
            )
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which(
            "mpiexec"
        )
        if mpiexec is None:
            sys.exit("kmer_long_record: no mpiexec next to this Python or on PATH")
        for n in (int(r) for r in args.ranks.split(",")):
            cmd = [
                mpiexec,
                "-n",
                str(n),
                sys.executable,
                os.path.abspath(__file__),
                "--worker",
                "--file",
                path,
                "-k",
                str(args.k),
            ]
            code = subprocess.run(cmd, timeout=3600).returncode
            if code:
                print(f"n={n} failed with exit status {code}", flush=True)
                return code
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
