"""``python -m hpcsuite.microbench TEST [TEST ...] | --all``: MPI communication benchmarks.

Examples
--------
mpirun -n 2 python -m hpcsuite.microbench latency bw --validate
mpirun -n 4 python -m hpcsuite.microbench allreduce --max 64M --format table
mpirun -n 2 python -m hpcsuite.microbench --all --json results/omb.jsonl
mpirun -n 2 python -m hpcsuite.microbench latency -m 8 -x 10 -i 1000 -c     # OSU's own flags
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpcsuite.core import cli, mpi, records
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.microbench import DATATYPES, KINDS, NAMES, THREAD_LEVELS, output, runner, schedule
from hpcsuite.microbench.buffers import Messages
from hpcsuite.microbench.catalog import SYNCS as SYNC_NAMES
from hpcsuite.microbench.catalog import WINDOWS as WINDOW_NAMES

PROG = "hpcsuite.microbench"
FORMATS = ("osu", "table", "json", "csv")
#: OSU's -z without percentiles.
DEFAULT_TAILS = (50, 90, 99)
SYNCS = ("lock", "pscw", "fence", "flush", "flush_local", "lock_all")
WINDOWS = ("create", "allocate", "dynamic")


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
            f"unknown buffer {(bad or [text])[0]!r}; choose from {', '.join(KINDS)}"
        )
    return list(dict.fromkeys(kinds))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive and finite (seconds)")
    return value


def _message_size(text: str) -> tuple[int | None, int | None]:
    """OSU's ``-m [MIN:]MAX``: ``128`` (max), ``2:128`` (both), ``2:`` (min)."""
    lo, sep, hi = text.partition(":")
    if not sep:
        lo, hi = "", lo
    if not lo and not hi:
        raise argparse.ArgumentTypeError(f"-m {text!r}: give [MIN:]MAX, e.g. 128, 2:128 or 2:")
    return (_size(lo) if lo else None, _size(hi) if hi else None)


def _types(text: str) -> list[str]:
    name = text.strip().lower()
    if name == "all":
        return list(DATATYPES)
    if name not in DATATYPES:
        raise argparse.ArgumentTypeError(
            f"unknown type {text!r}; choose from {', '.join(DATATYPES)} or all"
        )
    return [name]


def _root(text: str) -> int | str:
    """OSU's ``-k fixed:RANK`` or ``-k rotate`` (a bare RANK is taken as fixed)."""
    kind, _, rank = text.partition(":")
    if kind.lower() == "rotate" and not rank:
        return "rotate"
    value = rank if kind.lower() == "fixed" else (kind if not rank else "")
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"-k {text!r}: give fixed:RANK (e.g. fixed:0) or rotate")


def _percentiles(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and 0 < int(p) <= 100 for p in parts):
        raise argparse.ArgumentTypeError(
            f"-z {text!r}: give percentiles from 1 to 100, e.g. 50,90,99"
        )
    return tuple(int(p) for p in parts)


def osu_argv(argv: Sequence[str]) -> list[str]:
    """OSU's optional-argument flags as getopt reads them: ``-c`` and ``-z`` take an
    argument only when it is attached (``-z50,99``); a separate word is not theirs."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        if arg in ("-z", "--tail-lat"):
            out.append("--tail-lat=" + ",".join(map(str, DEFAULT_TAILS)))
        elif arg.startswith("-z"):
            out.append("--tail-lat=" + arg[2:])
        elif arg == "-c":
            out.append("--validate")
        elif arg.startswith("-c") and not arg.startswith("--"):
            if arg[2:].startswith("log"):
                raise UsageError(
                    f"{arg}: validation logs are not written; -c alone validates every size"
                )
            out.append("--validate")
        else:
            out.append(arg)
    return out


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(
        prog=f"python -m {PROG}",
        description=(
            "MPI point-to-point, one-sided and collective benchmarks in the OSU tradition, with "
            "per-size statistics (min, median, p99...), validation, OSU 7.4-compatible "
            "output and flags, and NumPy, CuPy, bytearray or pickled messages."
        ),
        epilog="tests: "
        + ", ".join(NAMES)
        + ". latency, bw, bibw and the one-sided *_latency run on "
        "exactly 2 ranks; multi_lat and mbw_mr on an even number; collectives on 2 or more; "
        "init and hello on any. OSU's short flags are accepted: -m [MIN:]MAX, -x, -i, -c, -f, "
        "-W, -T, -k, -z[P,...], -t, -s, -w, -d.",
    )
    p.add_argument("tests", nargs="*", metavar="TEST", help="benchmarks to run (see below)")
    p.add_argument(
        "--all",
        action="store_true",
        help="the standard set: every test that fits the rank count (not init and hello)",
    )
    p.add_argument(
        "--buffer",
        type=_kinds,
        default=["numpy"],
        metavar="KIND[,KIND...]",
        help=(
            "message kinds, one run of each test per kind: numpy, cupy (GPU), "
            "bytearray, pickle or pkl5 (lower-case API); e.g. numpy,pickle,pkl5 "
            "shows what pickling costs [numpy]"
        ),
    )
    p.add_argument(
        "-d",
        "--accelerator",
        choices=("cuda", "managed"),
        default=None,
        help=(
            "OSU's device buffers: the same as --buffer cupy; then OSU's trailing buffer "
            "words (latency ... D D or H H) pick device or host buffers"
        ),
    )
    p.add_argument(
        "--min",
        type=_size,
        default=None,
        metavar="BYTES",
        help="smallest message, e.g. 1, 4K [1; the element size with -T, 4 for reductions]",
    )
    p.add_argument(
        "--max",
        type=_size,
        default=None,
        metavar="BYTES",
        help="largest message [4M point to point, 1M collectives]",
    )
    p.add_argument(
        "-m",
        "--message-size",
        type=_message_size,
        default=None,
        metavar="[MIN:]MAX",
        help="OSU's form of --min/--max: 128, 2:128 or 2:",
    )
    p.add_argument(
        "-i",
        "--iterations",
        type=cli.positive_int,
        default=None,
        help="timed iterations per size [OSU's: fewer for large messages]",
    )
    p.add_argument(
        "-x",
        "--warmup",
        type=cli.nonnegative_int,
        default=None,
        help="untimed iterations per size [OSU's]",
    )
    p.add_argument(
        "--time-per-size",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="cap each size's timed loop at about this long",
    )
    p.add_argument(
        "-W",
        "--window",
        "--window-size",
        type=cli.positive_int,
        default=64,
        help="messages in flight per iteration of bw, bibw and mbw_mr [%(default)s]",
    )
    p.add_argument(
        "-c",
        "--validate",
        "--check",
        "--validation",
        action="store_true",
        help=(
            "check every received or reduced buffer's contents (OSU's Validation "
            "column with --format osu); exit 3 if wrong"
        ),
    )
    p.add_argument(
        "-f",
        "--full",
        action="store_true",
        help=(
            "OSU's full layout: min and max over ranks and iterations; non-blocking: "
            "init, test and wait times"
        ),
    )
    p.add_argument(
        "-T",
        "--type",
        type=_types,
        action="append",
        default=None,
        metavar="TYPE",
        help=(
            "element type, as OSU: mpi_char, mpi_int, mpi_float or all (repeatable) "
            "[mpi_char; mpi_float for reductions]"
        ),
    )
    p.add_argument(
        "-k",
        "--root-rank",
        type=_root,
        default=0,
        metavar="fixed:RANK|rotate",
        help=(
            "root of bcast, reduce, gather(v), scatter(v) and their non-blocking forms; "
            "rotate moves it every iteration [fixed:0]"
        ),
    )
    p.add_argument(
        "--tail-lat",
        type=_percentiles,
        default=(),
        metavar="P[,P...]",
        help="OSU's -z[P,...]: tail columns (P50, P90, P99 with a bare -z)",
    )
    p.add_argument(
        "-t",
        "--num-test-calls",
        type=cli.nonnegative_int,
        default=0,
        metavar="CALLS",
        help="non-blocking tests: MPI_Test calls during the dummy compute, as OSU [0]",
    )
    p.add_argument(
        "-s",
        "--sync-option",
        choices=SYNCS,
        default="flush",
        help="one-sided synchronization, as OSU [%(default)s]",
    )
    p.add_argument(
        "-w",
        "--win-options",
        choices=WINDOWS,
        default="allocate",
        help="one-sided window creation, as OSU [%(default)s]",
    )
    p.add_argument(
        "--thread-level",
        choices=THREAD_LEVELS,
        default="single",
        help=(
            "the MPI thread level to start MPI with; single calls plain MPI_Init as OSU's "
            "C benchmarks do (mpi4py's own default is multiple, which changes MPICH's "
            "collective algorithms) [%(default)s]"
        ),
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="osu",
        help="osu (OSU 7.4's text layout), table, json (one record per size) or csv [%(default)s]",
    )
    p.add_argument("--json", metavar="PATH", help="also append one JSON record per size to PATH")
    p.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line as OSU's getopt would: options and test names in any order."""
    return parser().parse_intermixed_args(osu_argv(argv))


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
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _buffer_words(args)
    if not args.tests and not args.all:
        raise UsageError("name at least one test (e.g. latency), or give --all")
    unknown = [t for t in args.tests if t not in NAMES]
    if unknown:
        raise UsageError(f"unknown test {unknown[0]!r}; choose from {', '.join(NAMES)} or --all")
    if args.message_size is not None:
        args.min = args.message_size[0] if args.message_size[0] is not None else args.min
        args.max = args.message_size[1] if args.message_size[1] is not None else args.max
    if args.min is not None and args.max is not None and args.min > args.max:
        raise UsageError(f"--min {args.min} is larger than --max {args.max}; swap them")
    types = list(dict.fromkeys(t for group in args.type for t in group)) if args.type else [None]

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


#: OSU's trailing SRC DST buffer words: host, device, managed (on host or device).
BUFFER_WORDS = {"H": "host", "D": "device", "M": "device", "MD": "device", "MH": "device"}


def _buffer_words(args: argparse.Namespace) -> None:
    """Take OSU's ``SRC DST`` words (``osu_latency ... D D``) out of the test names.

    As in OSU, they matter only with device support asked for (``-d cuda``): then ``D D``
    means CuPy buffers and ``H H`` host ones. Without ``-d`` they are accepted and left
    unused, as an OSU built without accelerator support leaves them (ReFrame appends
    ``D D`` to every point-to-point run).
    """
    words = [t for t in args.tests if t in BUFFER_WORDS]
    if not words:
        if args.accelerator:
            args.buffer = ["cupy"]
        return
    args.tests = [t for t in args.tests if t not in BUFFER_WORDS]
    if len(words) != 2:
        raise UsageError(f"buffer words {' '.join(words)}: give two, SRC and DST (e.g. D D or H H)")
    if not args.accelerator:
        return
    places = {BUFFER_WORDS[w] for w in words}
    if len(places) > 1:
        raise UsageError(
            f"buffers {' '.join(words)}: host on one rank and device on the other is not "
            "supported; use D D or H H"
        )
    args.buffer = ["cupy"] if places == {"device"} else ["numpy"]


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
