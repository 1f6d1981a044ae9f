"""The registry of benchmarks and the timing loop: the part of microbench that communicates.

Every iteration is timed on its own (as ``python -m mpi4py.bench pingpong`` does), so
each size gets a distribution - min, median, p99, not only OSU's average. Collectives
are separated by an untimed barrier, as in OSU, so one iteration's stragglers do not
leak into the next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hpcsuite.core import memory, mpi
from hpcsuite.core.errors import UsageError
from hpcsuite.microbench import catalog, collectives, schedule, stats
from hpcsuite.microbench.buffers import Messages
from hpcsuite.microbench.catalog import F32, Spec

U8 = np.uint8
TESTS: dict[str, Spec] = {
    "latency": Spec("latency", U8, "two", True, catalog.latency, "Latency"),
    "bw": Spec("bandwidth", U8, "two", True, catalog.bw, "Bandwidth"),
    "bibw": Spec("bandwidth", U8, "two", False, catalog.bibw, "Bi-Directional Bandwidth"),
    "multi_lat": Spec("latency", U8, "even", True, catalog.multi_lat, "Multi Latency"),
    "barrier": Spec("collective", U8, "many", True, collectives.barrier, "Barrier Latency"),
    "bcast": Spec("collective", U8, "many", True, collectives.bcast, "Broadcast Latency"),
    "reduce": Spec("collective", F32, "many", True, collectives.reduce, "Reduce Latency"),
    "allreduce": Spec("collective", F32, "many", True, collectives.allreduce, "Allreduce Latency"),
    "gather": Spec("collective", U8, "many", True, collectives.gather, "Gather Latency"),
    "gatherv": Spec("collective", U8, "many", False, collectives.gatherv, "Gatherv Latency"),
    "scatter": Spec("collective", U8, "many", True, collectives.scatter, "Scatter Latency"),
    "scatterv": Spec("collective", U8, "many", False, collectives.scatterv, "Scatterv Latency"),
    "allgather": Spec("collective", U8, "many", True, collectives.allgather, "Allgather Latency"),
    "allgatherv": Spec("collective", U8, "many", False, collectives.allgatherv, "Allgatherv Latency"),
    "alltoall": Spec("collective", U8, "many", True, collectives.alltoall, "All-to-All Personalized Exchange Latency"),
    "alltoallv": Spec("collective", U8, "many", False, collectives.alltoallv, "All-to-Allv Personalized Exchange Latency"),
    "reduce_scatter": Spec("collective", F32, "many", False, collectives.reduce_scatter, "Reduce_scatter Latency"),
    "iallreduce": Spec("nonblocking", F32, "many", False, collectives.allreduce, "Non-blocking Allreduce Latency"),
    "ibcast": Spec("nonblocking", U8, "many", False, collectives.bcast, "Non-blocking Broadcast Latency"),
    "ialltoall": Spec("nonblocking", U8, "many", False, collectives.alltoall, "Non-blocking All-to-All Latency"),
}
#: Default largest size (bytes), as OSU: 4 MiB point to point, 1 MiB collectives.
MAX_DEFAULT = {"latency": 4 << 20, "bandwidth": 4 << 20, "collective": 1 << 20, "nonblocking": 1 << 20}


def rank_problem(name: str, size: int) -> str | None:
    """Why ``name`` cannot run on ``size`` ranks, or None."""
    rule = TESTS[name].ranks
    if rule == "two" and size != 2:
        return (f"{name} runs between exactly 2 ranks, not {size}: use mpirun -n 2 "
                "(multi_lat measures many pairs at once)")
    if rule == "even" and (size < 2 or size % 2):
        return f"{name} pairs ranks and needs an even number of them, not {size}"
    if rule == "many" and size < 2:
        return f"{name} needs at least 2 ranks, not {size}"
    return None


def footprint(name: str, nbytes: int, ranks: int, pickled: bool) -> int:
    """Bytes one rank allocates for ``name`` at ``nbytes`` (root-heavy tests counted on all)."""
    per_peer = {"gather", "gatherv", "scatter", "scatterv", "allgather", "allgatherv"}
    if name in per_peer:
        need = nbytes * (ranks + 1)
    elif name in ("alltoall", "alltoallv", "ialltoall"):
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
            memory.check_fits(total, memory.available_bytes(), where=f"node {mpi.processor_name()}",
                              hint="lower --max, or run fewer ranks per node")


def _spin(seconds: float) -> None:
    """Dummy compute for the overlap measurement: keep the CPU busy, call no MPI."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _timed(run: Callable[[], Any], iters: int, barrier: Callable[[], None] | None) -> list[float]:
    clock = time.perf_counter
    times = []
    for _ in range(iters):
        t0 = clock()
        run()
        times.append(clock() - t0)
        if barrier is not None:
            barrier()
    return times


def measure(comm: Any, name: str, msgs: Messages, nbytes: int, *, iters: int | None,
            warmup: int | None, window: int, validate: bool, budget: float | None
            ) -> dict[str, Any] | None:
    """Run benchmark ``name`` at one size; the row of statistics on rank 0, None elsewhere."""
    spec = TESTS[name]
    msgs.reset()
    case = spec.make(comm, msgs, nbytes, window=window)
    run = case.run
    if spec.family == "nonblocking":
        run = lambda: case.finish(case.start())  # noqa: E731 - start, then wait at once
    problems: list[str] = []
    # Validated or not, every send and receive buffer is written before the clock
    # starts: pages of a zeroed allocation that nobody wrote all map the kernel's one
    # zero page, and sending from them reads a single cached page (hpcsuite's 1 MiB
    # latency measured 0.6x OSU C's that way).
    case.prime()
    comm.Barrier()  # comm: every buffer primed before anyone sends
    if validate:
        run()
        comm.Barrier()  # comm: every message arrived before anyone checks
        problems = case.check()
    family = "collective" if spec.family == "nonblocking" else spec.family
    count, skip = schedule.iterations(family, nbytes, iters=iters, warmup=warmup)
    barrier = comm.Barrier if family == "collective" else None
    _timed(run, skip, barrier)
    if budget is not None:  # --time-per-size: all ranks agree on one iteration count
        probe = max(_timed(run, 1, barrier)[0], 1e-9)
        count = schedule.bounded(count, mpi.max_over_ranks(comm, probe), budget)
    comm.Barrier()  # comm: start the timed loop together
    times = _timed(run, count, barrier)
    extra: dict[str, float] = {}
    if spec.family == "nonblocking":
        extra = _overlap(comm, case, times, count)
    if name in ("latency", "multi_lat"):
        times = [t / 2 for t in times]  # a round trip is two one-way latencies
    gathered = comm.gather(times if case.timed else None, root=0)  # comm: results
    problems = comm.gather(problems, root=0)  # comm: results
    if comm.rank != 0:
        return None
    per_rank = [t for t in gathered if t]
    flat = [x for t in per_rank for x in t]
    row: dict[str, Any] = {"size": nbytes, "iterations": count}
    if spec.family == "bandwidth":
        row.update(stats.bandwidth_row(flat, case.bytes_per_iteration))
    else:
        row.update(stats.latency_row(flat, [math.fsum(t) / len(t) for t in per_rank]))
        row.update(stats.bus_bandwidth(name, nbytes, row["median_us"] / 1e6, comm.size))
    row.update(extra)
    row["errors"] = [p for rank_problems in problems for p in rank_problems]
    return row


def _overlap(comm: Any, case: Any, pure: list[float], count: int) -> dict[str, float]:
    """OSU's overlap: time start + compute + wait, with compute as long as the pure operation."""
    target = mpi.max_over_ranks(comm, float(np.median(pure)))
    overall, compute = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        req = case.start()
        c0 = time.perf_counter()
        _spin(target)
        compute.append(time.perf_counter() - c0)
        case.finish(req)
        overall.append(time.perf_counter() - t0)
        comm.Barrier()  # comm: separate iterations, as OSU
    o = mpi.max_over_ranks(comm, float(np.mean(overall)))
    c = mpi.max_over_ranks(comm, float(np.mean(compute)))
    p = mpi.max_over_ranks(comm, float(np.mean(pure)))
    return {"overall_us": o * 1e6, "compute_us": c * 1e6, "pure_us": p * 1e6,
            "overlap_pct": stats.overlap_percent(p, o, c)}


def check_request(names: list[str], msgs: Messages, size: int) -> None:
    """Refuse what cannot run: pickle forms that do not exist, wrong rank counts."""
    for name in names:
        if name not in TESTS:
            raise UsageError(f"unknown test {name!r}; choose from {', '.join(TESTS)} or --all")
        if msgs.pickled and not TESTS[name].pickle:
            raise UsageError(f"{name} has no pickle form in mpi4py; use --buffer numpy, bytearray or cupy")
        problem = rank_problem(name, size)
        if problem:
            raise UsageError(problem)
