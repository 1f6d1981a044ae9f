"""``python -m hpcsuite.microbench TEST [TEST ...] | --all``: MPI communication benchmarks.

Examples
--------
mpirun -n 2 python -m hpcsuite.microbench latency bw --validate
mpirun -n 4 python -m hpcsuite.microbench allreduce --max 64M --format table
mpirun -n 2 python -m hpcsuite.microbench --all --json results/omb.jsonl
mpirun -n 2 python -m hpcsuite.microbench latency -m 8 -x 10 -i 1000 -c     # OSU's own flags
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpcsuite.core import cli, mpi, records
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.microbench import DATATYPES, options, output, runner, schedule
from hpcsuite.microbench.buffers import Messages
from hpcsuite.microbench.catalog import SYNCS as SYNC_NAMES
from hpcsuite.microbench.catalog import WINDOWS as WINDOW_NAMES
from hpcsuite.microbench.options import PROG


def start_mpi(level: str) -> tuple[float | None, str | None]:
    """Start MPI at thread ``level`` and time ``MPI_Init`` itself (OSU's osu_init).

    ``single`` calls plain ``MPI_Init``, as OSU's C benchmarks do (mpi4py's default is
    ``multiple``). Returns the seconds ``MPI_Init`` took (None when MPI was already
    running, e.g. under ``python -m mpi4py``) and a warning when ``level`` could not apply.
    """
    seconds = mpi.init(level)
    if seconds is None:
        return (
            None,
            (
                f"--thread-level {level} not applied: MPI was started before "
                "hpcsuite.microbench (e.g. by python -m mpi4py)"
            ),
        )
    return seconds, None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.microbench``; return the exit status."""
    args = options.parse_args(sys.argv[1:] if argv is None else argv)
    types = options.settle(args)

    init_seconds, warning = start_mpi(args.thread_level)
    comm = mpi.world()
    if warning and comm.rank == 0:
        sys.stderr.write(f"{PROG}: warning: {warning}\n")
    level = mpi.thread_level()
    local_rank = mpi.local_rank(comm)
    jobs = []  # (messages, test names) per buffer kind
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
        if isinstance(args.root_rank, int) and args.root_rank >= comm.size:
            raise UsageError(
                f"-k fixed:{args.root_rank}: there are only {comm.size} ranks (0 to"
                f" {comm.size - 1})"
            )
        startup = [n for n in args.tests if runner.TESTS[n].family == "startup"]
        for kind in args.buffer:
            msgs = Messages(kind, local_rank)
            names = [n for n in args.tests if n not in startup]
            if args.all:
                names += [
                    n
                    for n in runner.TESTS
                    if n not in names
                    and n not in startup
                    and runner.TESTS[n].family != "startup"
                    and runner.rank_problem(n, comm.size) is None
                    and (runner.TESTS[n].pickle or not msgs.pickled)
                    and (n not in runner.HOST_ONLY or not (msgs.pickled or msgs.backend.on_device))
                ]
            runner.check_request(names, msgs, comm.size)
            later = (
                [n for n in names if runner.TESTS[n].family == "nonblocking"]
                if kind == "cupy"
                else []
            )
            if later:  # device buffers there only where this MPI takes them (Open MPI does not)
                names = [n for n in names if n not in later]
            jobs += [(msgs, names)] if names else []
            jobs += [(Messages(kind, local_rank, nonblocking=True), later)] if later else []
        if args.all and not jobs and not startup:
            raise UsageError(
                f"--all: no benchmark runs on {comm.size} rank{'s' if comm.size > 1 else ''} "
                "(point-to-point tests need 2 ranks, collectives 2 or more); "
                "launch with mpirun -n 2 or more"
            )
        plans = {
            (n, t): _sizes(runner, n, args, t) for _, names in jobs for n in names for t in types
        }
    for msgs, names in jobs:
        runner.check_memory(
            comm, names, max(max(plans[n, t]) for n in names for t in types), msgs.pickled
        )

    errors: list[str] = []
    first = True
    hosts = mpi.hosts(comm)
    for name in startup:  # MPI start-up (osu_init) and hello (osu_hello)
        times = comm.gather(init_seconds, root=0)  # comm: results
        if comm.rank == 0:
            note = f"{PROG}, {comm.size} ranks, MPI threads {level}"
            ms = [t * 1e3 for t in times] if None not in times else None
            if not args.quiet and args.format == "osu":
                sys.stdout.write(output.startup(name, comm.size, note, ms))
            _startup_record(args, name, comm, ms, level, hosts)
    for msgs, names in jobs:
        note = f"{PROG}, {comm.size} ranks, {msgs.path}, MPI threads {level}"
        env = _environment(mpi, hosts, msgs) if comm.rank == 0 else None
        for name in names:
            for dtype in types:
                spec = runner.TESTS[name]
                element = DATATYPES[dtype][0] if dtype else None
                rows = []
                for nbytes in plans[name, dtype]:
                    row = runner.measure(
                        comm,
                        name,
                        msgs,
                        nbytes,
                        iters=args.iterations,
                        warmup=args.warmup,
                        window=args.window,
                        validate=args.validate,
                        budget=args.time_per_size,
                        dtype=element,
                        root=args.root_rank,
                        tails=args.tail_lat,
                        sync=args.sync_option,
                        win=args.win_options,
                        probes=args.num_test_calls,
                    )
                    if row is not None:
                        row["thread_level"] = level
                        rows.append(row)
                        errors += [
                            f"{name} ({msgs.kind}) size {nbytes}: {e}" for e in row["errors"]
                        ]
                if comm.rank == 0:
                    _emit(
                        args,
                        name,
                        spec,
                        rows,
                        note,
                        first=first,
                        env=env,
                        comm=comm,
                        kind=msgs.kind,
                        datatype=_datatype(spec, dtype),
                        level=level,
                    )
                first = False
    failed = comm.bcast(bool(errors), root=0)  # comm: metadata
    if failed:
        if comm.rank == 0:
            sys.stderr.write("".join(f"{PROG}: validation: {e}\n" for e in errors[:20]))
        err = CheckError(f"{len(errors) if comm.rank == 0 else 'some'} received buffers were wrong")
        err.collective = True
        raise err
    return 0


def _datatype(spec: Any, dtype: str | None) -> str:
    """The ``# Datatype:`` name: -T's, else the test's own element type."""
    if dtype:
        return DATATYPES[dtype][1]
    own = np.dtype(spec.dtype).name
    return next(mpi_name for element, mpi_name in DATATYPES.values() if element == own)


def _sizes(runner: Any, name: str, args: Any, dtype: str | None) -> list[int]:
    spec = runner.TESTS[name]
    unit = np.dtype(DATATYPES[dtype][0] if dtype else spec.dtype).itemsize
    if name in runner.UNSIZED:
        return [0]
    lo = args.min if args.min is not None else unit
    hi = args.max if args.max is not None else runner.MAX_DEFAULT[spec.family]
    try:
        return schedule.sizes(max(lo, unit), hi, unit=unit)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _environment(mpi: Any, hosts: list[str], msgs: Any) -> dict[str, Any]:
    return records.fingerprint(
        hosts=hosts,
        mpi_library=mpi.library_version(),
        device=msgs.backend.device,
        device_name=msgs.backend.description,
        gpu_aware=mpi.gpu_aware() if msgs.backend.on_device else None,
        thread_level=mpi.thread_level(),
    )


def _startup_record(
    args: Any, name: str, comm: Any, ms: list[float] | None, level: str, hosts: list[str]
) -> None:
    """init: one record of MPI_Init's min/avg/max milliseconds over ranks; hello: rank count."""
    if not (args.json or args.format == "json"):
        return
    result = {"ranks": comm.size, "thread_level": level}
    if name == "init" and ms:
        result.update(min_ms=min(ms), max_ms=max(ms), avg_ms=sum(ms) / len(ms))
    fom = (
        {"name": "init", "value": result.get("avg_ms"), "unit": "ms", "higher_is_better": False}
        if name == "init"
        else {"name": "ranks", "value": comm.size, "unit": "", "higher_is_better": True}
    )
    env = records.fingerprint(
        hosts=hosts,
        mpi_library=mpi.library_version(),
        device="cpu",
        device_name="host",
        thread_level=level,
    )
    rec = records.make(
        f"microbench.{name}",
        ranks=comm.size,
        env=env,
        fom=fom,
        result=result,
        params={"test": name, "thread_level": level},
        times={"unit": "ms"},
    )
    if args.json:
        records.append(args.json, rec)
    if args.format == "json" and not args.quiet:
        sys.stdout.write(json.dumps(rec, sort_keys=True) + "\n")


def _emit(
    args: Any,
    name: str,
    spec: Any,
    rows: list[dict[str, Any]],
    note: str,
    *,
    first: bool,
    env: dict[str, Any],
    comm: Any,
    kind: str,
    datatype: str,
    level: str,
) -> None:
    """Print one test's rows in the chosen format, and append its records."""
    recs = []
    if args.json or args.format == "json":
        for row in rows:
            result = {k: v for k, v in row.items() if k != "errors"}
            result["validation"] = ("fail" if row["errors"] else "pass") if args.validate else None
            bandwidth = spec.family in ("bandwidth", "rate")
            fom = (
                {
                    "name": "bandwidth",
                    "value": row["mbps"],
                    "unit": "MB/s",
                    "higher_is_better": True,
                }
                if bandwidth
                else {
                    "name": "latency",
                    "value": row.get("avg_us"),
                    "unit": "us",
                    "higher_is_better": False,
                }
            )
            recs.append(
                records.make(
                    f"microbench.{name}",
                    ranks=comm.size,
                    env=env,
                    fom=fom,
                    result=result,
                    params={
                        "test": name,
                        "size": row["size"],
                        "buffer": kind,
                        "path": note.split(", ", 2)[-1].rsplit(", MPI threads", 1)[0],
                        "iterations": row["iterations"],
                        "thread_level": level,
                        "datatype": datatype,
                        "window": args.window if spec.family in ("bandwidth", "rate") else None,
                    },
                    times={"unit": "us", "median": row.get("median_us")},
                )
            )
        if args.json:
            for rec in recs:
                records.append(args.json, rec)
    if args.quiet:
        return
    if args.format == "osu":
        preamble: tuple[str, ...] = ()
        if spec.family == "onesided":
            preamble = (
                f"# Window creation: {WINDOW_NAMES[args.win_options]}",
                f"# Synchronization: {SYNC_NAMES[args.sync_option]}",
            )
        elif spec.family == "rate":
            preamble = (f"# [ pairs: {comm.size // 2} ] [ window size: {args.window} ]",)
        unsized = name in runner.UNSIZED
        text = output.osu(
            spec.title,
            spec.family,
            rows,
            note,
            datatype=None if unsized else datatype,
            full=args.full,
            validate=args.validate,
            tails=args.tail_lat,
            sized=not unsized,
            preamble=preamble,
        )
    elif args.format == "table":
        text = output.table(name, spec.family, rows, note) + "\n"
    elif args.format == "csv":
        text = output.to_csv(name, spec.family, rows, header=first)
    else:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)
    sys.stdout.write(text)
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
