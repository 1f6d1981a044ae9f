"""The one kernel driver: every ``python -m hpcsuite.<kernel>`` runs through :func:`main`.

A kernel says only what is its own (a :class:`Kernel`): its options, its per-rank
memory footprint, an untimed ``setup``, the timed ``step``, a ``check`` against an
independent reference, its figure of merit (work and unit) and its summary lines.
The driver does the rest, once, for all of them:

1. parse the options (before MPI starts, so ``--help`` is fast), start MPI, choose the
   backend and check output paths - agreed across ranks;
2. the memory guard: the footprints of a node's ranks add up and must fit the node's
   limit (free memory, cgroup, Slurm); on a GPU, the ranks sharing it must fit it;
3. ``setup`` (timed apart: "load" for ``mean``), never inside the timed region;
4. warm-up and repetitions: every rank starts each timed phase together (barrier),
   queued device work is inside the interval (stream sync), and each repetition's
   time is the slowest rank's (one ``Allreduce(MAX)`` after the loop, not one per
   repetition);
5. the check, agreed on every rank (exit 3 on every rank when it fails);
6. statistics (:mod:`hpcsuite.core.stats`): the figure of merit is the work over the
   *median* time, with the interval of that same median;
7. the summary on rank 0 and one record with its provenance.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from hpcsuite.core import backend as backends
from hpcsuite.core import cli, memory, mpi, records, stats
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.core.mpi import MPI

#: Seconds between progress lines on a terminal.
PROGRESS_EVERY = 5.0


class Footprint(NamedTuple):
    """Bytes one rank allocates, and how to make a job that does not fit smaller.

    ``host`` counts host memory (on a GPU run: staging buffers and what the root keeps
    for the check), ``device`` memory on the rank's GPU.
    """

    host: int = 0
    device: int = 0
    hint: str = "use more nodes or a smaller problem"


class Figure(NamedTuple):
    """A figure of merit: ``work`` units done per timed repetition, shown as
    ``work / time / scale`` in ``unit`` (higher is better)."""

    name: str
    work: float
    unit: str
    scale: float = 1.0


class Summary(NamedTuple):
    """What a run printed and recorded besides the driver's own lines."""

    headline: str
    details: Sequence[str] = ()
    params: Mapping[str, Any] = MappingProxyType({})  # read-only: a shared default
    result: Any = None


class Kernel:
    """A kernel's protocol; subclasses override what is theirs.

    Attributes
    ----------
    name : str
        Module name (``python -m hpcsuite.<name>``) and record kernel.
    description : str
        ``--help``'s first paragraph.
    phases : tuple of str
        Separately timed parts of one repetition (STREAM's four operations); most
        kernels have one, ``"step"``.
    primary : str
        The phase the figure of merit and the record's ``samples`` time.
    setup_label, step_label : str
        Names of the setup and timed step in the summary and the record's ``times``.
    defaults : dict
        Overrides of the common options' defaults (e.g. ``{"repeat": 10}``).
    devices : tuple of str
        The ``--device`` values the kernel supports.
    """

    name = ""
    description = ""
    epilog = ""
    phases: tuple[str, ...] = ("step",)
    primary = "step"
    setup_label = "setup"
    step_label = "time"
    defaults: dict[str, Any] = {}
    devices: tuple[str, ...] = ("cpu", "gpu", "auto")

    def add_arguments(self, group: Any) -> None:
        """Add the kernel's own options to its argparse group."""

    def validate(self, args: Any) -> None:
        """Refuse bad option values before MPI starts (pure; raise UsageError)."""

    def outputs(self, args: Any) -> list[tuple[str | None, str]]:
        """Output files the kernel writes, as (path, option), checked before any work."""
        return []

    def plan(self, comm: Any, backend: Any, args: Any) -> None:
        """Resolve the inputs before the memory guard (collective, cheap: open files and
        agree on their shape); what it learns goes into ``args`` for the later steps."""

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        """Bytes this rank will allocate (no communication)."""
        return Footprint()

    def setup(self, comm: Any, backend: Any, args: Any) -> Any:
        """Untimed: allocate, generate or read, build communicators; returns the state."""
        raise NotImplementedError

    def reset(self, state: Any) -> None:
        """Untimed, before every repetition: restore the input a step consumes (a field
        that steps in place), so each repetition does the same work from the same start."""

    def step(self, state: Any, phase: str) -> None:
        """The timed work of one repetition's ``phase``."""
        raise NotImplementedError

    def conclude(self, state: Any) -> None:
        """Collective, untimed, after the repetitions: gather what the summary and the
        figure of merit need (totals over ranks, a top list)."""

    def check(self, state: Any) -> dict[str, Any] | None:
        """Compare with an independent reference (collective); ``{"passed": bool,
        "detail": str, ...}`` on rank 0, anything elsewhere."""
        return None

    def checks_always(self, args: Any) -> bool:
        """Whether the check runs without ``--check`` (STREAM validates every run)."""
        return False

    def figure(self, state: Any) -> Figure:
        """The figure of merit's work per repetition and unit."""
        raise NotImplementedError

    def summary(self, state: Any, times: dict[str, list[float]]) -> Summary:
        """Headline, detail lines, record parameters and result (``times``: per phase,
        seconds of each repetition, max over ranks)."""
        raise NotImplementedError

    def write_outputs(self, state: Any, args: Any) -> None:
        """Write the kernel's own output files (rank 0, after the summary)."""

    def teardown(self, state: Any) -> None:
        """Free what ``setup`` built (communicators); runs on every rank."""


def parser(kernel: Kernel) -> cli.ArgumentParser:
    """The kernel's command line: the common options plus its own."""
    p = cli.ArgumentParser(
        prog=f"python -m hpcsuite.{kernel.name}",
        description=kernel.description,
        epilog=kernel.epilog or None,
        parents=[cli.common_parser()],
    )
    p.set_defaults(**kernel.defaults)
    kernel.add_arguments(p.add_argument_group(f"{kernel.name} options"))
    return p


def command_line(name: str, argv: Sequence[str] | None) -> list[str]:
    """The module's own command line, also when another module (``suite``) calls it."""
    args = list(sys.argv[1:] if argv is None else argv)
    return ["python", "-m", f"hpcsuite.{name}", *args]


def main(kernel: Kernel, argv: Sequence[str] | None = None) -> int:
    """Run ``kernel`` as ``python -m hpcsuite.<name>``; return the exit status."""
    args = parser(kernel).parse_args(argv)
    if args.device not in kernel.devices:
        raise UsageError(
            f"--device {args.device} is not supported by {kernel.name}; "
            f"it runs on {', '.join(kernel.devices)} (drop --device)"
        )
    kernel.validate(args)

    comm = mpi.world()
    started = time.perf_counter()
    local_rank = mpi.local_rank(comm)  # collective: never inside a block one rank may leave early
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
            for path, option in kernel.outputs(args):
                cli.check_writable(path, option)
        bk = backends.select(args.device, local_rank)
    kernel.plan(comm, bk, args)
    guard(comm, bk, kernel.footprint(comm, bk, args))
    progress = Progress(comm, kernel.name, args)
    progress.say(f"{kernel.setup_label} on {comm.size} rank{'s' if comm.size > 1 else ''}")

    comm.Barrier()  # comm: setup starts together, so its time is the job's
    t0 = time.perf_counter()
    state = kernel.setup(comm, bk, args)
    bk.synchronize()
    setup_local = time.perf_counter() - t0
    times, setup_s = _timed(comm, bk, kernel, state, args, setup_local, progress)
    kernel.conclude(state)
    check = None
    if args.check or kernel.checks_always(args):
        progress.say("checking against the reference")
        check = kernel.check(state)
    passed = comm.bcast(
        check["passed"] if comm.rank == 0 and check else True, root=0
    )  # comm: metadata
    wall = mpi.max_over_ranks(comm, time.perf_counter() - started)
    hosts = mpi.hosts(comm)
    with mpi.agree(comm):  # a record or output that cannot be written fails every rank alike
        if comm.rank == 0:
            _report(kernel, state, args, comm, bk, argv, times, setup_s, wall, hosts, check)
            kernel.write_outputs(state, args)
    # Not in a `finally`: freeing communicators is collective, and after a failure on
    # one rank the job is being aborted anyway.
    kernel.teardown(state)
    if not passed:
        err = CheckError(
            f"{kernel.name}: the result does not match the reference (see the check line)"
        )
        err.collective = True  # every rank knows: all exit 3, no abort
        raise err
    return 0


def guard(comm: Any, backend: Any, need: Footprint) -> None:
    """Refuse, on every rank together, a job that would not fit (collective).

    Host bytes of all ranks on a node add up against the node's limit (the smallest of
    free memory, a cgroup limit and Slurm's ``--mem``); device bytes of the ranks
    sharing a GPU add up against its free memory.
    """
    node = mpi.node_comm(comm)
    total = node.allreduce(need.host)  # comm: metadata
    with mpi.agree(comm):
        if node.rank == 0:
            limit, what = memory.node_limit()
            memory.check_fits(
                total, limit, where=f"node {mpi.processor_name()}", hint=need.hint, what=what
            )
    mpi.check_device_fits(comm, backend, need.device, hint=need.hint)


def _timed(
    comm: Any,
    backend: Any,
    kernel: Kernel,
    state: Any,
    args: Any,
    setup_local: float,
    progress: Progress,
) -> tuple[dict[str, list[float]], float]:
    """Warm-up and timed repetitions; per phase, each repetition's slowest-rank seconds."""
    phases = kernel.phases
    local = np.zeros(args.repeat * len(phases) + 1)
    local[-1] = setup_local
    total = args.warmup + args.repeat
    for i in range(total):
        kernel.reset(state)
        backend.synchronize()  # a reset's device copies stay out of the interval
        for j, phase in enumerate(phases):
            comm.Barrier()  # comm: every rank starts the phase together
            start = time.perf_counter()
            kernel.step(state, phase)
            backend.synchronize()  # queued device work belongs to the interval
            elapsed = time.perf_counter() - start
            if i >= args.warmup:
                local[(i - args.warmup) * len(phases) + j] = elapsed
        progress.tick(i + 1, total)
    worst = np.empty_like(local)
    comm.Allreduce(local, worst, op=MPI.MAX)  # comm: the slowest rank's time, every repetition
    per_phase = {p: worst[j : -1 : len(phases)].tolist() for j, p in enumerate(phases)}
    return per_phase, float(worst[-1])


class Progress:
    """Progress lines on rank 0's terminal during long runs (batch logs get the summary)."""

    def __init__(self, comm: Any, name: str, args: Any) -> None:
        self.on = comm.rank == 0 and not args.quiet and sys.stderr.isatty()
        self.name, self.last = name, time.monotonic()

    def say(self, text: str) -> None:
        if self.on:
            sys.stderr.write(f"hpcsuite.{self.name}: {text}\n")
            sys.stderr.flush()

    def tick(self, done: int, total: int) -> None:
        if self.on and time.monotonic() - self.last >= PROGRESS_EVERY and done < total:
            self.last = time.monotonic()
            self.say(f"repetition {done} of {total}")


def _report(
    kernel: Kernel,
    state: Any,
    args: Any,
    comm: Any,
    bk: Any,
    argv: Sequence[str] | None,
    times: dict[str, list[float]],
    setup_s: float,
    wall: float,
    hosts: list[str],
    check: dict[str, Any] | None,
) -> None:
    """Print the summary and append the record (rank 0)."""
    samples = times[kernel.primary]
    st = stats.summarize(samples)
    fig = kernel.figure(state)
    value, low, high = stats.rate_interval(fig.work / fig.scale, st)
    out = kernel.summary(state, times)
    nodes = len(set(hosts))
    per_node = max(hosts.count(h) for h in set(hosts))
    pct = f"{round(st.confidence * 100)} %"
    lines = [f"hpcsuite.{kernel.name}: {out.headline}"]
    if not args.quiet:
        lines += [f"  {d}" for d in out.details]
        lines += [
            f"  ranks      {comm.size} on {nodes} node{'s' if nodes > 1 else ''}"
            + (f" ({per_node} per node)" if nodes > 1 else "")
            + f", device {bk.device} ({bk.description})",
            f"  {kernel.setup_label:<10} {setup_s:.3f} s",
            f"  {kernel.step_label:<10} {st.median:.4g} s median of {st.n}"
            + (
                f" ({pct} interval {st.low:.4g} to {st.high:.4g} s), min {st.min:.4g} s"
                if st.n > 1
                else " (one run: no interval; --repeat N gives one)"
            ),
            f"  {fig.name:<10} {value:.4g} {fig.unit}"
            + (f" ({pct} interval {low:.4g} to {high:.4g} {fig.unit})" if st.n > 1 else ""),
            f"  wall       {wall:.3f} s",
        ]
        if check:
            lines.append(
                f"  check      {'ok' if check['passed'] else 'FAILED'}: {check.get('detail', '')}"
            )
    print("\n".join(lines), flush=True)
    if not args.json:
        return

    env = records.fingerprint(
        hosts=hosts,
        mpi_library=mpi.library_version(),
        device=bk.device,
        device_name=bk.description,
        thread_level=mpi.thread_level(),
        gpu_aware=mpi.gpu_aware() if bk.on_device else None,
    )
    recorded_times: dict[str, Any] = {
        "unit": "s",
        "samples": samples,
        "stats": st.as_dict(),
        kernel.setup_label: setup_s,
        "wall": wall,
    }
    if kernel.step_label != "time":
        recorded_times[kernel.step_label] = samples
    if len(kernel.phases) > 1:
        recorded_times["phases"] = times
    params = {**out.params, "warmup": args.warmup, "repeat": args.repeat}
    fom = {
        "name": fig.name,
        "value": value,
        "unit": fig.unit,
        "higher_is_better": True,
        "low": low,
        "high": high,
        "basis": "median",
    }
    records.append(
        args.json,
        records.make(
            kernel.name,
            params=params,
            ranks=comm.size,
            ranks_per_node=per_node,
            env=env,
            times=recorded_times,
            fom=fom,
            result=out.result,
            check=check,
            argv=command_line(kernel.name, argv),
        ),
    )
