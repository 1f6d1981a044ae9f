"""``python -m hpcsuite.suite --size small|medium|large``: every kernel, one table.

Runs every kernel that gives suite sizes in ``hpcsuite.registry`` (mean, stream,
stencil, matmul, fft, kmer, montecarlo) one after another in the same MPI job, each with
its check on, writes one record per kernel, and prints one summary table. A kernel that
fails its check is reported as such and the suite goes on; the exit status is 3 if any
failed.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Sequence

from hpcsuite.core import cli, mpi, records, stats
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.registry import MODULES, SIZE_CLASSES, SUITE

PROG = "hpcsuite.suite"

#: Options per size class and kernel (the registry's suite sizes); each kernel adds --check.
SIZES: dict[str, dict[str, list[str]]] = {
    size: {name: list(MODULES[name].suite_sizes[size]) for name in SUITE} for size in SIZE_CLASSES
}
#: Kernels that run on the CPU whatever --device says.
CPU_ONLY = tuple(name for name in SUITE if not MODULES[name].gpu)


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--size", choices=tuple(SIZES), default="small", help="problem sizes [%(default)s]"
    )
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

    comm = mpi.world()
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
    path = args.json
    if path is None:
        path = comm.bcast(
            (
                tempfile.mkstemp(prefix="hpcsuite-suite-", suffix=".jsonl")[1]
                if comm.rank == 0
                else None
            ),
            root=0,
        )  # comm: metadata
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
            value = (
                f"{fom['value']:.4g} {fom['unit']}"
                if fom and isinstance(fom.get("value"), float)
                else "-"
            )
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
