"""The registry of benchmarks and the timing loop: the part of microbench that communicates.

Every iteration is timed on its own (as ``python -m mpi4py.bench pingpong`` does), so
each size gets a distribution - min, median, p99, not only OSU's average. Collectives
are separated by an untimed barrier, as in OSU, so one iteration's stragglers do not
leak into the next.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hpcsuite.core import memory, mpi
from hpcsuite.core.errors import UsageError
from hpcsuite.microbench import catalog, collectives, schedule, stats
from hpcsuite.microbench.buffers import Messages
from hpcsuite.microbench.catalog import F32, Case, Spec

U8 = np.uint8
C = collectives


def _spec(
    family: str, dtype: Any, ranks: str, pickle: bool, make: Any, title: str, **kw: Any
) -> Spec:
    # OSU's title is "OSU MPI <Name> Test", or "OSU MPI_Put Latency Test" for one-sided.
    return Spec(
        family,
        dtype,
        ranks,
        pickle,
        make,
        "MPI" + (title if title.startswith("_") else " " + title),
        **kw,
    )


TESTS: dict[str, Spec] = {
    "latency": _spec("latency", U8, "two", True, catalog.latency, "Latency"),
    "bw": _spec("bandwidth", U8, "two", True, catalog.bw, "Bandwidth"),
    "bibw": _spec("bandwidth", U8, "two", False, catalog.bibw, "Bi-Directional Bandwidth"),
    "multi_lat": _spec("latency", U8, "even", True, catalog.multi_lat, "Multi Latency"),
    "mbw_mr": _spec("rate", U8, "even", False, catalog.mbw_mr, "Multiple Bandwidth / Message Rate"),
    "put_latency": _spec("onesided", U8, "two", False, catalog.put_latency, "_Put Latency"),
    "get_latency": _spec("onesided", U8, "two", False, catalog.get_latency, "_Get latency"),
    "acc_latency": _spec("onesided", U8, "two", False, catalog.acc_latency, "_Accumulate latency"),
    "barrier": _spec("collective", U8, "many", True, C.barrier, "Barrier Latency"),
    "bcast": _spec("collective", U8, "many", True, C.bcast, "Broadcast Latency", rooted=True),
    "reduce": _spec(
        "collective", F32, "many", True, C.reduce, "Reduce Latency", rooted=True, reduces=True
    ),
    "allreduce": _spec(
        "collective", F32, "many", True, C.allreduce, "Allreduce Latency", reduces=True
    ),
    "gather": _spec("collective", U8, "many", True, C.gather, "Gather Latency", rooted=True),
    "gatherv": _spec("collective", U8, "many", False, C.gatherv, "Gatherv Latency", rooted=True),
    "scatter": _spec("collective", U8, "many", True, C.scatter, "Scatter Latency", rooted=True),
    "scatterv": _spec("collective", U8, "many", False, C.scatterv, "Scatterv Latency", rooted=True),
    "allgather": _spec("collective", U8, "many", True, C.allgather, "Allgather Latency"),
    "allgatherv": _spec("collective", U8, "many", False, C.allgatherv, "Allgatherv Latency"),
    "alltoall": _spec(
        "collective", U8, "many", True, C.alltoall, "All-to-All Personalized Exchange Latency"
    ),
    "alltoallv": _spec(
        "collective", U8, "many", False, C.alltoallv, "All-to-Allv Personalized Exchange Latency"
    ),
    "reduce_scatter": _spec(
        "collective", F32, "many", False, C.reduce_scatter, "Reduce_scatter Latency", reduces=True
    ),
    "reduce_scatter_block": _spec(
        "collective",
        F32,
        "many",
        False,
        C.reduce_scatter_block,
        "Reduce_scatter_block Latency",
        reduces=True,
    ),
    "iallreduce": _spec(
        "nonblocking",
        F32,
        "many",
        False,
        C.allreduce,
        "Non-blocking Allreduce Latency",
        reduces=True,
    ),
    "ibcast": _spec(
        "nonblocking", U8, "many", False, C.bcast, "Non-blocking Broadcast Latency", rooted=True
    ),
    "ialltoall": _spec(
        "nonblocking", U8, "many", False, C.alltoall, "Non-blocking All-to-All Latency"
    ),
    "ialltoallv": _spec(
        "nonblocking", U8, "many", False, C.alltoallv, "Non-blocking All-to-Allv Latency"
    ),
    "igather": _spec(
        "nonblocking", U8, "many", False, C.gather, "Non-blocking Gather Latency", rooted=True
    ),
    "igatherv": _spec(
        "nonblocking", U8, "many", False, C.gatherv, "Non-blocking Gatherv Latency", rooted=True
    ),
    "iscatter": _spec(
        "nonblocking", U8, "many", False, C.scatter, "Non-blocking Scatter Latency", rooted=True
    ),
    "iscatterv": _spec(
        "nonblocking", U8, "many", False, C.scatterv, "Non-blocking Scatterv Latency", rooted=True
    ),
    "iallgather": _spec(
        "nonblocking", U8, "many", False, C.allgather, "Non-blocking Allgather Latency"
    ),
    "iallgatherv": _spec(
        "nonblocking", U8, "many", False, C.allgatherv, "Non-blocking Allgatherv Latency"
    ),
    "ireduce": _spec(
        "nonblocking",
        F32,
        "many",
        False,
        C.reduce,
        "Non-blocking Reduce Latency",
        rooted=True,
        reduces=True,
    ),
    "ireduce_scatter": _spec(
        "nonblocking",
        F32,
        "many",
        False,
        C.reduce_scatter,
        "Non-blocking Reduce_scatter Latency",
        reduces=True,
    ),
    "ibarrier": _spec("nonblocking", U8, "many", False, C.barrier, "Non-blocking Barrier Latency"),
    "init": _spec("startup", U8, "any", True, None, "Init"),
    "hello": _spec("startup", U8, "any", True, None, "Hello World"),
}
#: Tests without a size: OSU prints no size column for them.
UNSIZED = ("barrier", "ibarrier")
#: Point-to-point and one-sided tests that need host buffers.
HOST_ONLY = ("put_latency", "get_latency", "acc_latency")
#: Default largest size (bytes), as OSU: 4 MiB point to point, 1 MiB collectives.
MAX_DEFAULT = {
    "latency": 4 << 20,
    "bandwidth": 4 << 20,
    "rate": 4 << 20,
    "onesided": 4 << 20,
    "collective": 1 << 20,
    "nonblocking": 1 << 20,
    "startup": 0,
}


def rank_problem(name: str, size: int) -> str | None:
    """Why ``name`` cannot run on ``size`` ranks, or None."""
    rule = TESTS[name].ranks
    if rule == "two" and size != 2:
        return f"{name} runs between exactly 2 ranks, not {size}: use mpirun -n 2" + (
            " (multi_lat measures many pairs at once)" if name == "latency" else ""
        )
    if rule == "even" and (size < 2 or size % 2):
        return f"{name} pairs ranks and needs an even number of them, not {size}"
    if rule == "many" and size < 2:
        return f"{name} needs at least 2 ranks, not {size}"
    return None


def footprint(name: str, nbytes: int, ranks: int, pickled: bool) -> int:
    """Bytes one rank allocates for ``name`` at ``nbytes`` (root-heavy tests counted on all)."""
    per_peer = {
        "gather",
        "gatherv",
        "scatter",
        "scatterv",
        "allgather",
        "allgatherv",
        "igather",
        "igatherv",
        "iscatter",
        "iscatterv",
        "iallgather",
        "iallgatherv",
    }
    if name in per_peer:
        need = nbytes * (ranks + 1)
    elif name in ("alltoall", "alltoallv", "ialltoall", "ialltoallv"):
        need = 2 * nbytes * ranks
    else:
        need = 2 * nbytes
    return need * (3 if pickled else 1)  # pickles copy into and out of the stream


def check_memory(comm: Any, names: list[str], top: int, pickled: bool) -> None:
    """Refuse sizes whose buffers would not fit in memory across the ranks of a node."""
    node = mpi.node_comm(comm)
    need = max(footprint(n, top, comm.size, pickled) for n in names)
    total = node.allreduce(need)  # comm: metadata
    with mpi.agree(comm):
        if node.rank == 0:
            memory.check_fits(
                total,
                memory.available_bytes(),
                where=f"node {mpi.processor_name()}",
                hint="lower --max, or run fewer ranks per node",
            )


def _spin(seconds: float) -> None:
    """Dummy compute for the overlap measurement: keep the CPU busy, call no MPI."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _timed(run: Callable[[], Any], iters: int, barrier: Callable[[], None] | None) -> list[float]:
    # Stamps only, subtracted afterwards, and no branch inside the loop: an 8-byte
    # round trip is a microsecond, and every bytecode in the loop is counted in it.
    clock = time.perf_counter
    starts = [0.0] * iters
    ends = [0.0] * iters
    if barrier is None:
        for i in range(iters):
            starts[i] = clock()
            run()
            ends[i] = clock()
    else:
        for i in range(iters):
            starts[i] = clock()
            run()
            ends[i] = clock()
            barrier()
    return [e - s for s, e in zip(starts, ends)]


def _rotating(cases: list[Case]) -> Case:
    """One case whose iterations cycle through ``cases`` (OSU's ``-k rotate``: the root
    moves on every iteration; every rank advances in step, so all agree on the root)."""
    if len(cases) == 1:
        return cases[0]
    turn = itertools.cycle(cases)

    def run() -> None:
        next(turn).run()

    def start() -> Any:
        case = next(turn)
        return case, case.start()

    def finish(started: Any) -> None:
        started[0].finish(started[1])

    def prime() -> None:
        for case in cases:
            case.prime()

    def check() -> list[str]:
        problems = []
        for case in cases:  # each root once (the validated run went through them all)
            problems += case.check()
        return problems

    return Case(
        run=run,
        prime=prime,
        check=check,
        timed=cases[0].timed,
        bytes_per_iteration=cases[0].bytes_per_iteration,
        start=start if cases[0].start else None,
        finish=finish if cases[0].finish else None,
    )


def measure(
    comm: Any,
    name: str,
    msgs: Messages,
    nbytes: int,
    *,
    iters: int | None,
    warmup: int | None,
    window: int,
    validate: bool,
    budget: float | None,
    dtype: Any = None,
    root: int | str = 0,
    tails: tuple[int, ...] = (),
    sync: str = "flush",
    win: str = "allocate",
    probes: int = 0,
) -> dict[str, Any] | None:
    """Run benchmark ``name`` at one size; the row of statistics on rank 0, None elsewhere.

    Parameters
    ----------
    dtype : numpy dtype, optional
        Element type (OSU's ``-T``); the test's own by default (float32 for reductions).
    root : int or "rotate"
        Root of rooted collectives (OSU's ``-k fixed:N`` / ``-k rotate``).
    tails : tuple of int
        Percentiles for OSU's ``-z`` columns (``row["tails"]``).
    sync, win : str
        One-sided synchronization and window creation (OSU's ``-s``, ``-w``).
    probes : int
        Non-blocking tests: MPI_Test calls spread over the dummy compute (OSU's ``-t``).
    """
    spec = TESTS[name]
    msgs.reset()
    kw: dict[str, Any] = {"window": window, "dtype": dtype, "sync": sync, "win": win}
    roots = (
        list(range(comm.size))
        if root == "rotate" and spec.rooted
        else [0 if root == "rotate" else root]
    )
    cases = [spec.make(comm, msgs, nbytes, root=r, **kw) for r in roots]
    case = _rotating(cases)
    run = case.run
    if spec.family == "nonblocking":
        run = lambda: case.finish(case.start())  # noqa: E731 - start, then wait at once
    problems: list[str] = []
    try:
        # Validated or not, every send and receive buffer is written before the clock
        # starts: pages of a zeroed allocation that nobody wrote all map the kernel's one
        # zero page, and sending from them reads a single cached page (hpcsuite's 1 MiB
        # latency measured 0.6x OSU C's that way).
        case.prime()
        comm.Barrier()  # comm: every buffer primed before anyone sends
        if validate:
            for _ in cases:  # with -k rotate, once per root
                run()
            comm.Barrier()  # comm: every message arrived before anyone checks
            problems = case.check()
        family = {"nonblocking": "collective", "rate": "bandwidth", "onesided": "latency"}.get(
            spec.family, spec.family
        )
        count, skip = schedule.iterations(family, nbytes, iters=iters, warmup=warmup)
        barrier = comm.Barrier if family == "collective" else None
        _timed(run, skip, barrier)
        if budget is not None:  # --time-per-size: all ranks agree on one iteration count
            probe = max(_timed(run, 1, barrier)[0], 1e-9)
            count = schedule.bounded(count, mpi.max_over_ranks(comm, probe), budget)
        comm.Barrier()  # comm: start the timed loop together
        times = _timed(run, count, barrier)
        extra: dict[str, Any] = {}
        if spec.family == "nonblocking":
            extra = _overlap(comm, case, times, count, skip, probes)
    finally:
        for c in cases:
            if c.close is not None:
                c.close()
    if name in ("latency", "multi_lat"):
        times = [t / 2 for t in times]  # a round trip is two one-way latencies
    gathered = comm.gather(times if case.timed else None, root=0)  # comm: results
    problems = comm.gather(problems, root=0)  # comm: results
    if comm.rank != 0:
        return None
    per_rank = [t for t in gathered if t]
    flat = [x for t in per_rank for x in t]
    row: dict[str, Any] = {"size": nbytes, "iterations": count}
    if spec.family in ("bandwidth", "rate"):
        row.update(stats.bandwidth_row(flat, case.bytes_per_iteration))
        if spec.family == "rate":  # OSU's mbw_mr: the pairs' bandwidths add up
            pairs = [stats.bandwidth_row(t, case.bytes_per_iteration)["mbps"] for t in per_rank]
            row["mbps"] = math.fsum(pairs)
            row["msg_rate"] = row["mbps"] * 1e6 / nbytes if nbytes else math.nan
        rates = [
            [case.bytes_per_iteration / t / 1e6 if t > 0 else math.inf for t in r] for r in per_rank
        ]
        row["tails"] = stats.tails(rates, tails)
    else:
        row.update(stats.latency_row(flat, [math.fsum(t) / len(t) for t in per_rank]))
        row.update(stats.bus_bandwidth(name, nbytes, row["median_us"] / 1e6, comm.size))
        row["tails"] = [v * 1e6 for v in stats.tails(per_rank, tails)]
    row.update(extra)
    row["errors"] = [p for rank_problems in problems for p in rank_problems]
    return row


def _overlap(
    comm: Any, case: Any, pure: list[float], count: int, skip: int, probes: int = 0
) -> dict[str, float]:
    """OSU 7.4's overlap, computed as OSU computes it.

    Each rank sizes its dummy compute to its own mean pure-communication time; then
    every iteration times the start call (Coll. Init), the compute, and the wait, and
    the whole (Overall), with a barrier between iterations and ``skip`` untimed ones
    first. Each figure is this rank's mean, averaged over ranks (OSU sums and divides
    by the rank count; Min/Max Comm. are the extremes of the per-rank means), and

        overlap % = max(0, 100 - 100 * (overall - (compute - test)) / pure)

    (``test``: the time spent in the ``probes`` MPI_Test calls made between equal slices
    of the compute, OSU's ``-t``; zero without).
    """
    target = math.fsum(pure) / len(pure)  # this rank's own mean, as OSU's latency_in_secs
    clock = time.perf_counter
    sums = {"overall": 0.0, "compute": 0.0, "init": 0.0, "wait": 0.0, "test": 0.0}
    for i in range(skip + count):
        t0 = clock()
        req = case.start()
        t1 = clock()
        tested = 0.0
        if probes:
            # -k rotate starts give (case, request); MPI_Test asks the request alone
            request = req[1] if isinstance(req, tuple) else req
            for _ in range(probes):
                _spin(target / probes)
                p0 = clock()
                request.Test()
                tested += clock() - p0
        else:
            _spin(target)
        t2 = clock()
        case.finish(req)
        t3 = clock()
        if i >= skip:
            sums["overall"] += t3 - t0
            sums["init"] += t1 - t0
            sums["compute"] += t2 - t1
            sums["wait"] += t3 - t2
            sums["test"] += tested
        comm.Barrier()  # comm: separate iterations, as OSU
    mine = [sums[k] / count for k in ("overall", "compute", "init", "wait", "test")] + [target]
    everyone = comm.allgather(mine)  # comm: results
    overall, compute, init, wait, test, pure_avg = (
        math.fsum(col) / len(everyone) for col in zip(*everyone)
    )
    means = [e[5] for e in everyone]
    return {
        "overall_us": overall * 1e6,
        "compute_us": (compute - test) * 1e6,
        "pure_us": pure_avg * 1e6,
        "pure_min_us": min(means) * 1e6,
        "pure_max_us": max(means) * 1e6,
        "init_us": init * 1e6,
        "test_us": test * 1e6,
        "wait_us": wait * 1e6,
        "overlap_pct": stats.overlap_percent(pure_avg, overall, compute - test),
    }


def check_request(names: list[str], msgs: Messages, size: int) -> None:
    """Refuse what cannot run: pickle forms that do not exist, wrong rank counts."""
    for name in names:
        if name not in TESTS:
            raise UsageError(f"unknown test {name!r}; choose from {', '.join(TESTS)} or --all")
        if name in HOST_ONLY and (msgs.pickled or msgs.backend.on_device):
            raise UsageError(f"{name} runs on host buffers only; use --buffer numpy or bytearray")
        if msgs.pickled and not TESTS[name].pickle:
            raise UsageError(
                f"{name} has no pickle form in mpi4py; use --buffer numpy, bytearray or cupy"
            )
        problem = rank_problem(name, size)
        if problem:
            raise UsageError(problem)
