"""``python -m hpcsuite.microbench TEST [TEST ...] | --all``: MPI communication benchmarks.

Examples
--------
mpirun -n 2 python -m hpcsuite.microbench latency bw --validate
mpirun -n 4 python -m hpcsuite.microbench allreduce --max 64M --format table
mpirun -n 2 python -m hpcsuite.microbench --all --json results/omb.jsonl
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from hpcsuite.core import cli
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.microbench import KINDS, NAMES, output, schedule

PROG = "hpcsuite.microbench"
FORMATS = ("osu", "table", "json", "csv")


def _size(text: str) -> int:
    try:
        return schedule.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown buffer {(bad or [text])[0]!r}; choose from {', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(
        prog=f"python -m {PROG}",
        description="MPI point-to-point and collective benchmarks in the OSU tradition, with "
                    "per-size statistics (min, median, p99...), validation, OSU-compatible "
                    "output, and NumPy, CuPy, bytearray or pickled messages.",
        epilog="tests: " + ", ".join(NAMES) + ". latency, bw and bibw run on exactly 2 ranks; "
               "multi_lat on an even number; collectives on 2 or more.",
    )
    p.add_argument("tests", nargs="*", metavar="TEST", help="benchmarks to run (see below)")
    p.add_argument("--all", action="store_true",
                   help="the standard set: every test that fits the rank count")
    p.add_argument("--buffer", type=_kinds, default=["numpy"], metavar="KIND[,KIND...]",
                   help="message kinds, one run of each test per kind: numpy, cupy (GPU), "
                        "bytearray, pickle or pkl5 (lower-case API); e.g. numpy,pickle,pkl5 "
                        "shows what pickling costs [numpy]")
    p.add_argument("--min", type=_size, default=None, metavar="BYTES",
                   help="smallest message, e.g. 1, 4K [1; 4 for reductions]")
    p.add_argument("--max", type=_size, default=None, metavar="BYTES",
                   help="largest message [4M point to point, 1M collectives]")
    p.add_argument("--iterations", type=cli.positive_int, default=None,
                   help="timed iterations per size [OSU's: fewer for large messages]")
    p.add_argument("--warmup", type=cli.nonnegative_int, default=None,
                   help="untimed iterations per size [OSU's]")
    p.add_argument("--time-per-size", type=float, default=None, metavar="SECONDS",
                   help="cap each size's timed loop at about this long")
    p.add_argument("--window", type=cli.positive_int, default=64,
                   help="messages in flight per iteration of bw and bibw [%(default)s]")
    p.add_argument("--validate", "--check", action="store_true",
                   help="check every received or reduced buffer's contents; exit 3 if wrong")
    p.add_argument("--format", choices=FORMATS, default="osu",
                   help="osu (OSU's text layout), table, json (one record per size) or csv "
                        "[%(default)s]")
    p.add_argument("--json", metavar="PATH", help="also append one JSON record per size to PATH")
    p.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.microbench``; return the exit status."""
    args = parser().parse_args(argv)
    if args.time_per_size is not None and args.time_per_size <= 0:
        raise UsageError(f"--time-per-size {args.time_per_size!r} must be positive")
    if not args.tests and not args.all:
        raise UsageError("name at least one test (e.g. latency), or give --all")
    unknown = [t for t in args.tests if t not in NAMES]
    if unknown:
        raise UsageError(f"unknown test {unknown[0]!r}; choose from {', '.join(NAMES)} or --all")
    if args.min is not None and args.max is not None and args.min > args.max:
        raise UsageError(f"--min {args.min} is larger than --max {args.max}; swap them")

    from hpcsuite.core import mpi
    from hpcsuite.microbench import runner
    from hpcsuite.microbench.buffers import Messages

    comm = mpi.world()
    local_rank = mpi.local_rank(comm)
    jobs = []  # (messages, test names) per buffer kind
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
        for kind in args.buffer:
            msgs = Messages(kind, local_rank)
            names = list(args.tests)
            if args.all:
                names += [n for n in runner.TESTS if n not in names
                          and runner.rank_problem(n, comm.size) is None
                          and (runner.TESTS[n].pickle or not msgs.pickled)]
            runner.check_request(names, msgs, comm.size)
            later = [n for n in names if runner.TESTS[n].family == "nonblocking"] if kind == "cupy" else []
            if later:  # device buffers there only where this MPI takes them (Open MPI does not)
                names = [n for n in names if n not in later]
            jobs += [(msgs, names)] if names else []
            jobs += [(Messages(kind, local_rank, nonblocking=True), later)] if later else []
        plans = {n: _sizes(runner, n, args) for _, names in jobs for n in names}
    for msgs, names in jobs:
        runner.check_memory(comm, names, max(max(plans[n]) for n in names), msgs.pickled)

    errors: list[str] = []
    first = True
    hosts = mpi.hosts(comm)
    for msgs, names in jobs:
        note = f"hpcsuite.microbench, {comm.size} ranks, {msgs.path}"
        env = _environment(mpi, hosts, msgs) if comm.rank == 0 else None
        for name in names:
            rows = []
            for nbytes in plans[name]:
                row = runner.measure(comm, name, msgs, nbytes, iters=args.iterations,
                                     warmup=args.warmup, window=args.window,
                                     validate=args.validate, budget=args.time_per_size)
                if row is not None:
                    rows.append(row)
                    errors += [f"{name} ({msgs.kind}) size {nbytes}: {e}" for e in row.pop("errors")]
            if comm.rank == 0:
                _emit(args, name, runner.TESTS[name], rows, note, first=first, env=env, comm=comm,
                      kind=msgs.kind)
            first = False
    failed = comm.bcast(bool(errors), root=0)  # comm: metadata
    if failed:
        if comm.rank == 0:
            sys.stderr.write("".join(f"{PROG}: validation: {e}\n" for e in errors[:20]))
        err = CheckError(f"{len(errors) if comm.rank == 0 else 'some'} received buffers were wrong")
        err.collective = True
        raise err
    return 0


def _sizes(runner: Any, name: str, args: Any) -> list[int]:
    spec = runner.TESTS[name]
    unit = spec.dtype().itemsize
    if name == "barrier":
        return [0]
    lo = args.min if args.min is not None else unit
    hi = args.max if args.max is not None else runner.MAX_DEFAULT[spec.family]
    try:
        return schedule.sizes(max(lo, unit), hi, unit=unit)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _environment(mpi: Any, hosts: list[str], msgs: Any) -> dict[str, Any]:
    from hpcsuite.core import records

    return records.fingerprint(hosts=hosts, mpi_library=mpi.library_version(),
                               device=msgs.backend.device, device_name=msgs.backend.description,
                               gpu_aware=mpi.gpu_aware() if msgs.backend.on_device else None)


def _emit(args: Any, name: str, spec: Any, rows: list[dict[str, Any]], note: str, *, first: bool,
          env: dict[str, Any], comm: Any, kind: str) -> None:
    """Print one test's rows in the chosen format, and append its records."""
    recs = []
    if args.json or args.format == "json":
        from hpcsuite.core import records

        for row in rows:
            latency = spec.family != "bandwidth"
            fom = ({"name": "latency", "value": row.get("avg_us"), "unit": "us", "higher_is_better": False}
                   if latency else
                   {"name": "bandwidth", "value": row["mbps"], "unit": "MB/s", "higher_is_better": True})
            recs.append(records.make(
                f"microbench.{name}", ranks=comm.size, env=env, fom=fom, result=row,
                params={"test": name, "size": row["size"], "buffer": kind,
                        "path": note.split(", ", 2)[-1], "iterations": row["iterations"],
                        "window": args.window if spec.family == "bandwidth" else None},
                times={"unit": "us", "median": row.get("median_us")}))
        if args.json:
            for rec in recs:
                records.append(args.json, rec)
    if args.quiet:
        return
    if args.format == "osu":
        text = output.osu(spec.title, spec.family, rows, note) + "\n"
    elif args.format == "table":
        text = output.table(name, spec.family, rows, note) + "\n"
    elif args.format == "csv":
        text = output.to_csv(name, spec.family, rows, header=first)
    else:
        import json

        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)
    sys.stdout.write(text)
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
