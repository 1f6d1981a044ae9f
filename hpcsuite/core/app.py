"""What every kernel's ``main`` does before and after its own work.

``begin``: start MPI (only now, so ``--help`` and usage errors stay fast), check the
output path, choose the backend - all agreed across ranks. ``finish``: agree on the
check, print the summary on rank 0, append the record, and fail every rank together
(exit 3) when the check failed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from hpcsuite.core import cli
from hpcsuite.core.errors import CheckError


@dataclass
class Context:
    """A running kernel: communicator, backend, start time."""

    comm: Any
    backend: Any
    started: float


def begin(args: Any) -> Context:
    """Initialize MPI and the backend for a kernel run (collective)."""
    from hpcsuite.core import backend as backends
    from hpcsuite.core import mpi

    comm = mpi.world()
    local_rank = mpi.local_rank(comm)
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
        bk = backends.select(args.device, local_rank)
    return Context(comm, bk, time.perf_counter())


def finish(ctx: Context, args: Any, *, kernel: str, headline: str, details: list[str],
           params: dict[str, Any], samples: list[float], fom: tuple[str, float, str],
           result: Any = None, check: dict[str, Any] | None = None) -> int:
    """Report a kernel run (collective); ``check`` and ``result`` matter on rank 0 only.

    Parameters
    ----------
    kernel : str
        Module name, e.g. ``"stream"``.
    headline : str
        The result line (what ``--quiet`` prints).
    details : list of str
        Further summary lines (problem, decomposition...).
    params : dict
        Parameters for the record.
    samples : list of float
        Seconds of each timed repetition (max over ranks).
    fom : (name, value, unit)
        Figure of merit; higher is better.
    check : dict or None
        ``{"passed": bool, ...}`` from the reference comparison, on rank 0.
    """
    from hpcsuite.core import mpi
    from hpcsuite.core.timing import summarize

    comm = ctx.comm
    wall = mpi.max_over_ranks(comm, time.perf_counter() - ctx.started)
    hosts = mpi.hosts(comm)
    passed = comm.bcast(check["passed"] if check else True, root=0)  # comm: metadata
    if comm.rank == 0:
        stats = summarize(samples)
        nodes = len(set(hosts))
        lines = [f"hpcsuite.{kernel}: {headline}"]
        if not args.quiet:
            lines += [f"  {d}" for d in details]
            lines += [
                f"  ranks      {comm.size} on {nodes} node{'s' if nodes > 1 else ''}, device "
                f"{ctx.backend.device} ({ctx.backend.description})",
                f"  time       {stats.median:.4g} s (median of {stats.n}, min {stats.min:.4g} s)",
                f"  {fom[0]:<10} {fom[1]:.4g} {fom[2]}",
                f"  wall       {wall:.3f} s",
            ]
            if check:
                lines.append(f"  check      {'ok' if check['passed'] else 'FAILED'}: {check.get('detail', '')}")
        print("\n".join(lines), flush=True)
        if args.json:
            from hpcsuite.core import records

            env = records.fingerprint(hosts=hosts, mpi_library=mpi.library_version(),
                                      device=ctx.backend.device, device_name=ctx.backend.description,
                                      gpu_aware=mpi.gpu_aware() if ctx.backend.on_device else None)
            value = fom[1] if math.isfinite(fom[1]) else None
            records.append(args.json, records.make(
                kernel, params=params, ranks=comm.size, env=env,
                times={"unit": "s", "samples": samples, "stats": stats.as_dict(), "wall": wall},
                fom={"name": fom[0], "value": value, "unit": fom[2], "higher_is_better": True},
                result=result, check=check))
    if not passed:
        err = CheckError(f"{kernel}: the result does not match the reference (see the check line)")
        err.collective = True
        raise err
    return 0
