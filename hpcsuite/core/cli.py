"""Shared command-line conventions and the one error and exit policy.

Policy (every ``python -m hpcsuite.<module>`` follows it through :func:`run`):

* A user mistake that every rank sees alike (bad arguments, or an error made
  collective by :func:`hpcsuite.core.mpi.agree`): rank 0 prints one line, every rank
  exits with the same non-zero status. No traceback.
* A user error seen by one rank only, after ranks have started talking: that rank
  prints the message tagged with its rank and aborts the whole job (``MPI_Abort``),
  because the other ranks may already wait in a collective.
* Running out of memory (host or GPU): one line tagged with the rank, then ``MPI_Abort``.
* Any other exception: the traceback, every line tagged ``[rank r]``, then
  ``MPI_Abort``: the job ends within seconds instead of hanging (mpi4py's
  ``python -m mpi4py`` does the same).
* ``SystemExit`` and ``KeyboardInterrupt`` once MPI runs with more than one rank: the
  same, ``MPI_Abort`` - one rank leaving on its own would leave the others waiting in
  their next collective forever. Only an exit every rank takes together passes: before
  MPI starts (``--help``, argparse errors), or a ``SystemExit`` marked ``collective``
  (see :func:`collective_exit`).

Argument parsing happens before MPI is initialized, so ``--help`` is fast and rank 0
is recognized from the launcher's environment.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hpcsuite.core.errors import HpcsuiteError, UsageError

#: Environment variables through which launchers tell a process its rank.
RANK_VARIABLES = (
    "PMI_RANK",
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "MV2_COMM_WORLD_RANK",
    "SLURM_PROCID",
)


def env_rank() -> int:
    """This process's rank as the launcher announced it (0 when run without one)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 0


def _mpi_rank_size() -> tuple[int, int] | None:
    """Rank and size if MPI is up in this process, without importing mpi4py otherwise."""
    if "mpi4py.MPI" not in sys.modules:
        return None
    # Lazy: cli also serves commands that never load libmpi (report, deploy, sweep).
    from hpcsuite.core import mpi

    if not mpi.is_running():
        return None
    comm = mpi.world()
    return comm.rank, comm.size


class ArgumentParser(argparse.ArgumentParser):
    """argparse that prints on rank 0 only and raises :class:`UsageError` for bad input."""

    def _print_message(self, message: str, file=None) -> None:  # noqa: ANN001 - argparse's signature
        if env_rank() == 0:
            super()._print_message(message, file)

    # What argparse decides depends on the command line only, which every rank of a job
    # shares: its exits and errors are collective, also when MPI already runs (a module
    # whose imports start MPI). A job launched with different arguments per rank
    # (MPMD) must not rely on this.
    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            self._print_message(message, sys.stderr)
        raise collective_exit(status)

    def error(self, message: str) -> None:  # type: ignore[override]
        err = UsageError(message)
        err.usage = self.format_usage()  # type: ignore[attr-defined]
        err.collective = True
        raise err


def split_passthrough(argv: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Split ``argv`` at the first ``--``: our options, and those we pass through untouched."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    return argv[:cut], argv[cut + 1 :]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 0")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def shape(text: str) -> tuple[int, ...]:
    """argparse type: ``10000x10000`` (or ``10000,10000``, or ``1000000``) -> tuple of ints."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(
            f"bad shape {text!r}: give positive integers separated by 'x', e.g. 10000x10000"
        )
    return dims


def check_writable(path: str | None, option: str) -> None:
    """Fail early, before any work, when an output ``path`` cannot be written."""
    if not path:
        return
    if os.path.isdir(path):
        raise UsageError(f"{option} {path!r} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path!r}: folder {folder!r} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path!r} is not writable; choose another path")


#: Characters no value that goes into a generated script or manifest may hold: the C0
#: controls (newline, carriage return, NUL, escape...) and DEL. A newline in a value
#: written into ``#SBATCH --time=...`` ends the directive, and the next line runs as a
#: shell command; quoting cannot help there.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control(value: str, option: str) -> str:
    """Return ``value``, or raise :class:`UsageError` when it holds a control character.

    Parameters
    ----------
    value : str
        What the user gave.
    option : str
        Names the value in the message, e.g. ``"--time"``.
    """
    bad = _CONTROL.search(value)
    if bad:
        raise UsageError(
            f"{option} {value!r} holds the control character {bad.group()!r} "
            f"(position {bad.start()}); it would break the generated file, remove it"
        )
    return value


def refuse_control_in(values: Any, option: str) -> None:
    """:func:`refuse_control` over every string in ``values`` (a string, a sequence or a
    mapping, nested); ``option`` names them in the message."""
    if isinstance(values, str):
        refuse_control(values, option)
    elif isinstance(values, dict):
        for key, value in values.items():
            refuse_control_in(key, option)
            refuse_control_in(value, option)
    elif isinstance(values, (list, tuple)):
        for value in values:
            refuse_control_in(value, option)


def refuse_control_args(args: argparse.Namespace, passthrough: Sequence[str] = ()) -> None:
    """Refuse control characters in every string option of ``args`` and in ``passthrough``
    (the options after ``--``), naming the option."""
    for name, value in vars(args).items():
        refuse_control_in(value, "--" + name.replace("_", "-"))
    for value in passthrough:
        refuse_control(value, "option after --")


def write_file(path: str, text: str, option: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; a failure is one :class:`UsageError`.

    A regular file (or a new one) is written to a temporary file next to it and renamed
    over it, so a full disk leaves the old file (or none), never half of the new one.
    Anything else (``/dev/stdout``, a pipe) is written directly.
    """
    check_writable(path, option)
    regular = not os.path.exists(path) or os.path.isfile(path)
    tmp = f"{path}.tmp.{os.getpid()}" if regular else path
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
        if regular:
            os.replace(tmp, path)
    except OSError as exc:
        if regular:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise UsageError(
            f"{option} {path!r} could not be written ({exc.strerror or exc})"
        ) from None


def common_parser() -> argparse.ArgumentParser:
    """Options every kernel shares (an argparse parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument(
        "--device",
        choices=("cpu", "gpu", "auto"),
        default="cpu",
        help=(
            "where to compute: cpu (NumPy), gpu (CuPy, one GPU per rank, "
            "chosen by node-local rank) or auto (gpu when usable) [%(default)s]"
        ),
    )
    g.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        help=(
            "seed of the generated data; the same seed gives the same data "
            "at every rank count [%(default)s]"
        ),
    )
    g.add_argument(
        "--warmup",
        type=nonnegative_int,
        default=0,
        help="untimed runs of the kernel before the timed ones [%(default)s]",
    )
    g.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="timed runs of the kernel; statistics over them [%(default)s]",
    )
    g.add_argument(
        "--check",
        action="store_true",
        help="verify the result against a one-process NumPy reference; exit 3 on mismatch",
    )
    g.add_argument(
        "--json", metavar="PATH", help="append one JSON record of this run to PATH (rank 0 writes)"
    )
    g.add_argument("--quiet", action="store_true", help="print only the result line; no progress")
    return p


def _tag(text: str, rank: int) -> str:
    return "".join(f"[rank {rank}] {line}\n" for line in text.rstrip("\n").splitlines())


def run(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    prog: str = "hpcsuite",
) -> int:
    """Run ``main(argv)`` under the error and exit policy; return the exit status.

    Parameters
    ----------
    main : callable
        The module's ``main``; returns an exit status or None for 0.
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).
    prog : str
        Program name for messages.
    """
    try:
        return int(main(argv) or 0)
    except HpcsuiteError as err:
        return _user_error(err, prog)
    except SystemExit as exc:
        where = _mpi_rank_size()
        if where is None or where[1] == 1 or getattr(exc, "collective", False):
            raise  # every rank leaves alike (before MPI, one rank, or agreed): a clean exit
        return _crash(exc, prog)
    except BrokenPipeError:  # `... | head` closed our stdout: not an error of ours
        return 0
    except BaseException as exc:  # noqa: BLE001 - the job must end, whatever it was
        return _crash(exc, prog)


def _user_error(err: HpcsuiteError, prog: str) -> int:
    where = _mpi_rank_size()
    if where is None or err.collective or where[1] == 1:
        # Every rank has the same error (or there is one rank): one message, same exit.
        rank = where[0] if where else env_rank()
        if rank == 0:
            usage = getattr(err, "usage", "")
            sys.stderr.write(f"{usage}{prog}: error: {err}\n")
        return err.exit_code
    rank, _ = where
    sys.stderr.write(_tag(f"{prog}: error: {err}", rank))
    from hpcsuite.core import mpi  # loaded already: MPI runs (see _mpi_rank_size)

    mpi.abort(mpi.world(), err.exit_code)
    return err.exit_code


def collective_exit(code: int | str | None = 0) -> SystemExit:
    """A ``SystemExit`` that every rank raises together: :func:`run` lets it pass
    instead of aborting the job. Raise it only on every rank at once."""
    exc = SystemExit(code)
    exc.collective = True  # type: ignore[attr-defined]
    return exc


#: How torch's CPU allocator words a failed allocation (a RuntimeError, not MemoryError).
_TORCH_CPU_OOM = (
    "DefaultCPUAllocator: can't allocate memory",
    "DefaultCPUAllocator: not enough memory",
)


def _out_of_memory(exc: BaseException) -> bool:
    """NumPy's MemoryError, CuPy's OutOfMemoryError (a MemoryError), torch's CUDA one,
    or torch's CPU allocator failing (a RuntimeError naming DefaultCPUAllocator)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _TORCH_CPU_OOM)


def _crash(exc: BaseException, prog: str) -> int:
    where = _mpi_rank_size()
    rank = where[0] if where else env_rank()
    import traceback  # only on a failure: not on every rank's start

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    code = 1
    if isinstance(exc, KeyboardInterrupt):
        text, code = f"{prog}: interrupted\n", 130
    elif isinstance(exc, SystemExit):
        # One rank exited on its own while the others may wait for it: end them too.
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        message = f": {exc.code}" if isinstance(exc.code, str) else f" with status {status}"
        text = f"{prog}: error: this rank exited on its own{message}\n"
        code = status or 1  # the job did not finish: never report success
    elif _out_of_memory(exc):  # a size the machine cannot hold: say so, no traceback
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        text = (
            f"{prog}: error: out of memory ({type(exc).__name__}: {first[:200]}); use a smaller"
            " size, fewer ranks per node or GPU, or spread the job over more nodes\n"
        )
    sys.stderr.write(_tag(text, rank))
    if where is not None and where[1] > 1:
        from hpcsuite.core import mpi  # loaded already: MPI runs (see _mpi_rank_size)

        sys.stderr.write(_tag(f"{prog}: aborting all {where[1]} ranks", rank))
        mpi.abort(mpi.world(), code)
    return code
