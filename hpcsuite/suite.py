"""``python -m hpcsuite.suite --size small|medium|large``: every kernel, one table.

Runs mean, stream, stencil, matmul, fft, montecarlo and kmer one after another in the
same MPI job, each with its check on, writes one record per kernel, and prints one
summary table. A kernel that fails its check is reported as such and the suite goes
on; the exit status is 3 if any failed. ``small`` finishes in under a minute on 2 cores.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Sequence

from hpcsuite.core import cli
from hpcsuite.core.errors import CheckError, UsageError

PROG = "hpcsuite.suite"

#: Options per kernel and size class; every kernel runs with --check.
SIZES: dict[str, dict[str, list[str]]] = {
    "small": {
        "mean": ["--shape", "4000x1000"],
        "stream": ["--size", "2000000", "--repeat", "5"],
        "stencil": ["--shape", "512x512", "--steps", "20"],
        "matmul": ["--n", "512"],
        "fft": ["--shape", "64x64x64"],
        "montecarlo": ["--paths", "2000000"],
        "kmer": ["--reads", "20000", "-k", "21"],
    },
    "medium": {
        "mean": ["--shape", "10000x10000", "--repeat", "3"],
        "stream": ["--size", "20000000", "--repeat", "10"],
        "stencil": ["--shape", "2048x2048", "--steps", "100", "--overlap"],
        "matmul": ["--n", "2048"],
        "fft": ["--shape", "256x256x256"],
        "montecarlo": ["--paths", "50000000"],
        "kmer": ["--reads", "200000", "-k", "31"],
    },
    "large": {
        "mean": ["--shape", "40000x20000", "--repeat", "3"],
        "stream": ["--repeat", "10"],
        "stencil": ["--shape", "8192x8192", "--steps", "200", "--overlap"],
        "matmul": ["--n", "8192"],
        "fft": ["--shape", "512x512x512"],
        "montecarlo": ["--paths", "500000000"],
        "kmer": ["--reads", "2000000", "-k", "31"],
    },
}
#: Kernels that run on the CPU whatever --device says.
CPU_ONLY = ("kmer",)


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=tuple(SIZES), default="small", help="problem sizes [%(default)s]")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu", help="[%(default)s]")
    p.add_argument("--only", default=None, metavar="K1,K2", help="run these kernels only")
    p.add_argument("--json", metavar="PATH", help="append the kernels' records to PATH")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.suite``; return the exit status."""
    args = parser().parse_args(argv)
    kernels = list(SIZES[args.size])
    if args.only:
        chosen = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in chosen if k not in kernels]
        if unknown or not chosen:
            raise UsageError(f"--only {args.only!r}: choose from {', '.join(kernels)}")
        kernels = chosen
    from hpcsuite.core import mpi, records

    comm = mpi.world()
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
    path = args.json
    if path is None:
        path = comm.bcast(tempfile.mkstemp(prefix="hpcsuite-suite-", suffix=".jsonl")[1]
                          if comm.rank == 0 else None, root=0)  # comm: metadata
    status: dict[str, str] = {}
    for name in kernels:
        device = "cpu" if name in CPU_ONLY else args.device
        argv_k = [*SIZES[args.size][name], "--check", "--quiet", "--json", path]
        if device != "cpu":
            argv_k += ["--device", device]
        try:
            importlib.import_module(f"hpcsuite.{name}").main(argv_k)
            status[name] = "ok"
        except CheckError as err:
            if not err.collective:
                raise
            status[name] = "FAILED"
        # Any other user error (no GPU for --device gpu, a full disk for --json) is the
        # suite's own mistake, not a kernel's: it ends the suite with its message, exit 2.
    if comm.rank == 0:
        from hpcsuite.core import stats

        got = {}
        for _, rec, _ in records.read(path):
            if rec is not None:
                got[rec["kernel"]] = rec  # the latest record of each kernel
        if args.json is None:
            os.unlink(path)
        print(f"\n{PROG}: --size {args.size}, {comm.size} ranks, device {args.device}")
        print(f"{'kernel':<12}{'figure of merit (median)':>28}{'time s':>12}  check")
        for name in kernels:
            rec = got.get(name)
            fom = rec["fom"] if rec else None
            value = f"{fom['value']:.4g} {fom['unit']}" if fom and isinstance(fom.get("value"), float) else "-"
            samples = (rec["times"].get("samples") or []) if rec else []
            t = f"{stats.median(samples):.4g}" if samples else "-"
            print(f"{name:<12}{value:>28}{t:>12}  {status[name]}")
    failed = [k for k, s in status.items() if s != "ok"]
    if failed:
        err = CheckError(f"{len(failed)} kernel(s) failed: {', '.join(failed)}")
        err.collective = True
        raise err
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
