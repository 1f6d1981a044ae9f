"""The command line of ``python -m hpcsuite.microbench``: OSU 7.4's flags and ours.

OSU's benchmarks read their flags with getopt: short options with optional attached
arguments (``-z50,99``, ``-c``), test names and options in any order, and trailing
``SRC DST`` buffer words (``D D``). :func:`parse_args` reads a command line that way and
:func:`settle` turns what was read into the run's settings, refusing bad input with
one line that names the fix.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.microbench import DATATYPES, KINDS, NAMES, THREAD_LEVELS, schedule

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


def settle(args: argparse.Namespace) -> list[str | None]:
    """Check what :func:`parse_args` read and fill in what follows from it, in place.

    Takes the buffer words out of the test names, resolves ``-m`` into ``--min`` and
    ``--max``, and refuses no test, unknown tests and ``--min`` above ``--max``.

    Returns
    -------
    list of str or None
        The element types to run, in order (``[None]``: each test's own type).
    """
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
    return list(dict.fromkeys(t for group in args.type for t in group)) if args.type else [None]
