"""Blocking and non-blocking collectives as :class:`~hpcsuite.microbench.catalog.Case` s.

Sizes are bytes per rank and message (OSU's convention): ``gather`` of 1 KiB gathers
1 KiB from each rank; ``alltoall`` of 1 KiB sends 1 KiB to each peer; reductions
reduce ``n / itemsize`` elements (float32 unless ``-T`` says otherwise);
``reduce_scatter`` leaves about ``n / size`` bytes on each rank of an ``n``-byte vector,
``reduce_scatter_block`` exactly ``n // size`` bytes (at least one element).

Every builder also gives the case its non-blocking form (``start``: the ``I...`` call,
``finish``: wait for it), which the ``i...`` benchmarks time; rooted collectives take
``root`` (OSU's ``-k``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpcsuite.core.mpi import MPI
from hpcsuite.core.partition import split
from hpcsuite.microbench.buffers import Messages
from hpcsuite.microbench.catalog import (
    F32,
    Case,
    _compare,
    addends,
    mpi_type,
    pattern,
    reduced,
    unset,
)

ROOT = 0


def _nb(api: str) -> str:
    """``Gatherv`` -> ``Igatherv``: mpi4py's name of the non-blocking form."""
    return "I" + api[0].lower() + api[1:]


def _case(
    comm: Any,
    m: Messages,
    send: Any,
    recv: Any,
    sent: np.ndarray,
    expect: np.ndarray | None,
    blocking: Any,
    start: Any = None,
    box: dict[str, Any] | None = None,
) -> Case:
    """Wrap buffers and the operation; ``expect`` is what ``recv`` must hold (None: nothing)."""
    box = box if box is not None else {}

    def prime() -> None:
        if send is not None:
            m.fill(send, sent)
        if recv is not None:
            like = expect if expect is not None else sent
            m.fill(recv, unset(like.size, like.dtype))
        box["got"] = None

    def check() -> list[str]:
        if expect is None:
            return []
        got = np.asarray(box["got"]).reshape(-1) if m.pickled else m.read(recv, expect.dtype)
        return _compare(f"rank {comm.rank}", got.astype(expect.dtype, copy=False), expect)

    finish = None
    if start is not None:

        def finish(req: Any) -> None:
            req.Wait()
            if recv is not None:
                m.landed(recv)

    return Case(run=blocking, prime=prime, check=check, start=start, finish=finish)


def barrier(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Barrier (and Ibarrier); the size is ignored."""
    c = m.comm(comm)
    run = c.barrier if m.pickled else c.Barrier
    return _case(
        comm, m, None, None, np.zeros(0, np.uint8), None, run, c.Ibarrier if not m.pickled else None
    )


def bcast(comm: Any, m: Messages, n: int, root: int = ROOT, **_: Any) -> Case:
    """Broadcast ``n`` bytes from ``root``."""
    c, buf, box = m.comm(comm), m.alloc(n), {}
    me = comm.rank == root
    sent = pattern(root, n)

    def run() -> None:
        if m.pickled:
            box["got"] = c.bcast(sent if me else None, root=root)
            return
        c.Bcast(m.send(buf) if me else m.recv(buf), root=root)
        if not me:
            m.landed(buf)

    def start() -> Any:
        return c.Ibcast(m.send(buf) if me else m.recv(buf), root=root)

    # The root sends from the buffer, the others receive into it (and are checked).
    return _case(
        comm,
        m,
        buf if me else None,
        None if me else buf,
        sent,
        None if me else sent,
        run,
        start,
        box,
    )


def _reduction(comm: Any, m: Messages, n: int, kind: str, root: int, dtype: Any) -> Case:
    c, box = m.comm(comm), {}
    dtype = np.dtype(dtype if dtype is not None else F32)
    count = n // dtype.itemsize
    mtype = mpi_type(dtype)
    sent = addends(comm.rank, count, dtype, comm.size)
    counts, displs = split(count, comm.size)
    if kind == "reduce_scatter_block":
        block = max(count // comm.size, 1)
        count = block * comm.size  # whole blocks: a vector of at least one element per rank
        sent = addends(comm.rank, count, dtype, comm.size)
        counts, displs = [block] * comm.size, [i * block for i in range(comm.size)]
    total = reduced(comm.size, count, dtype)
    s = m.alloc(count, dtype)
    if kind.startswith("reduce_scatter"):
        r = m.alloc(counts[comm.rank], dtype)
        expect = total[displs[comm.rank] : displs[comm.rank] + counts[comm.rank]]
    else:
        r = m.alloc(count, dtype)
        expect = total if kind != "reduce" or comm.rank == root else None
    api = {
        "reduce": "Reduce",
        "allreduce": "Allreduce",
        "reduce_scatter": "Reduce_scatter",
        "reduce_scatter_block": "Reduce_scatter_block",
    }[kind]
    lands = kind != "reduce" or comm.rank == root  # a Reduce leaves nothing on the others

    def call(name: str) -> Any:
        # The element type is named (MPI_CHAR, MPI_INT, MPI_FLOAT), as OSU's -T does.
        sb, rb = [m.send(s), mtype], [m.recv(r), mtype]
        if kind == "reduce":
            return getattr(c, name)(sb, rb, op=MPI.SUM, root=root)
        if kind == "reduce_scatter":
            return getattr(c, name)(sb, rb, counts, op=MPI.SUM)
        return getattr(c, name)(sb, rb, op=MPI.SUM)

    def general() -> None:
        if m.pickled:
            box["got"] = (
                c.reduce(sent, op=MPI.SUM, root=root)
                if kind == "reduce"
                else c.allreduce(sent, op=MPI.SUM)
            )
            return
        call(api)
        if lands:
            m.landed(r)

    run = general
    if not m.pickled and not m.backend.on_device:
        run = _bound(getattr(c, api), kind, [s, mtype], [r, mtype], root, counts)
    case = _case(comm, m, s, r, sent, expect, run, lambda: call(_nb(api)), box)
    if not lands:  # nothing to copy back on a Reduce's non-root
        case.finish = lambda req: req.Wait()
    return case


def _bound(fn: Any, kind: str, sb: list[Any], rb: list[Any], root: int, counts: list[int]) -> Any:
    """The host-buffer reduction call with its arguments bound once.

    Host buffers need no staging and nothing to land afterwards. A small allreduce
    takes about a microsecond, and the general path's per-call lookups and argument
    lists are a measurable share of that (benchmarks/microbench_bench.py).
    """
    op = MPI.SUM
    if kind == "reduce":
        return lambda: fn(sb, rb, op, root)
    if kind == "reduce_scatter":
        return lambda: fn(sb, rb, counts, op)
    return lambda: fn(sb, rb, op)


def reduce(comm: Any, m: Messages, n: int, root: int = ROOT, dtype: Any = None, **_: Any) -> Case:
    """Sum of ``n`` bytes of elements to ``root``."""
    return _reduction(comm, m, n, "reduce", root, dtype)


def allreduce(comm: Any, m: Messages, n: int, dtype: Any = None, **_: Any) -> Case:
    """Sum of ``n`` bytes of elements to every rank."""
    return _reduction(comm, m, n, "allreduce", ROOT, dtype)


def reduce_scatter(comm: Any, m: Messages, n: int, dtype: Any = None, **_: Any) -> Case:
    """Sum of ``n`` bytes of elements, each rank keeping its (uneven) slice."""
    return _reduction(comm, m, n, "reduce_scatter", ROOT, dtype)


def reduce_scatter_block(comm: Any, m: Messages, n: int, dtype: Any = None, **_: Any) -> Case:
    """Sum of a vector of ``size`` equal blocks, each rank keeping its block."""
    return _reduction(comm, m, n, "reduce_scatter_block", ROOT, dtype)


def _rooted(comm: Any, m: Messages, n: int, kind: str, vector: bool, root: int) -> Case:
    """gather(v) / scatter(v): ``n`` bytes per rank to or from ``root``."""
    c, box, size = m.comm(comm), {}, comm.size
    me = comm.rank == root
    counts, displs = [n] * size, [i * n for i in range(size)]
    everyone = np.concatenate([pattern(r, n) for r in range(size)])
    if kind == "gather":
        s, r = m.alloc(n), (m.alloc(n * size) if me else None)
        sent, expect = pattern(comm.rank, n), (everyone if me else None)
    else:
        s, r = (m.alloc(n * size) if me else None), m.alloc(n)
        sent, expect = (everyone if me else None), pattern(comm.rank, n)
    api = ("Gather" if kind == "gather" else "Scatter") + ("v" if vector else "")

    def call(name: str) -> Any:
        sb = m.send(s) if s is not None else None
        rb = m.recv(r) if r is not None else None
        if kind == "gather":
            spec = ([rb, counts, displs, MPI.BYTE] if me else None) if vector else rb
            return getattr(c, name)(sb, spec, root=root)
        spec = ([sb, counts, displs, MPI.BYTE] if me else None) if vector else sb
        return getattr(c, name)(spec, rb, root=root)

    def run() -> None:
        if m.pickled:
            if kind == "gather":
                got = c.gather(sent, root=root)
                box["got"] = np.concatenate(got) if me else None
            else:
                box["got"] = c.scatter(np.split(sent, size) if me else None, root=root)
            return
        call(api)
        if r is not None:
            m.landed(r)

    return _case(
        comm,
        m,
        s,
        r,
        sent if sent is not None else np.zeros(0, np.uint8),
        expect,
        run,
        lambda: call(_nb(api)),
        box,
    )


def gather(comm: Any, m: Messages, n: int, root: int = ROOT, **_: Any) -> Case:
    """Gather ``n`` bytes from every rank to ``root``."""
    return _rooted(comm, m, n, "gather", False, root)


def gatherv(comm: Any, m: Messages, n: int, root: int = ROOT, **_: Any) -> Case:
    """The same through ``Gatherv`` (counts and displacements)."""
    return _rooted(comm, m, n, "gather", True, root)


def scatter(comm: Any, m: Messages, n: int, root: int = ROOT, **_: Any) -> Case:
    """Scatter ``n`` bytes to every rank from ``root``."""
    return _rooted(comm, m, n, "scatter", False, root)


def scatterv(comm: Any, m: Messages, n: int, root: int = ROOT, **_: Any) -> Case:
    """The same through ``Scatterv``."""
    return _rooted(comm, m, n, "scatter", True, root)


def _all(comm: Any, m: Messages, n: int, kind: str, vector: bool) -> Case:
    """allgather(v) / alltoall(v): ``n`` bytes per rank (per peer for alltoall)."""
    c, box, size = m.comm(comm), {}, comm.size
    counts, displs = [n] * size, [i * n for i in range(size)]
    if kind == "allgather":
        sent = pattern(comm.rank, n)
        expect = np.concatenate([pattern(r, n) for r in range(size)])
        s = m.alloc(n)
    else:
        # Block j of rank i goes to rank j and is made of pattern(i * size + j).
        sent = np.concatenate([pattern(comm.rank * size + j, n) for j in range(size)])
        expect = np.concatenate([pattern(i * size + comm.rank, n) for i in range(size)])
        s = m.alloc(n * size)
    r = m.alloc(n * size)
    api = ("Allgather" if kind == "allgather" else "Alltoall") + ("v" if vector else "")

    def call(name: str) -> Any:
        sb, rb = m.send(s), m.recv(r)
        if vector:
            spec = [sb, counts, displs, MPI.BYTE] if kind == "alltoall" else [sb, n, MPI.BYTE]
            return getattr(c, name)(spec, [rb, counts, displs, MPI.BYTE])
        return getattr(c, name)(sb, rb)

    def run() -> None:
        if m.pickled:
            got = c.allgather(sent) if kind == "allgather" else c.alltoall(np.split(sent, size))
            box["got"] = np.concatenate(got)
            return
        call(api)
        m.landed(r)

    return _case(comm, m, s, r, sent, expect, run, lambda: call(_nb(api)), box)


def allgather(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Every rank's ``n`` bytes to every rank."""
    return _all(comm, m, n, "allgather", False)


def allgatherv(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """The same through ``Allgatherv``."""
    return _all(comm, m, n, "allgather", True)


def alltoall(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """``n`` bytes from every rank to every rank, personalized."""
    return _all(comm, m, n, "alltoall", False)


def alltoallv(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """The same through ``Alltoallv``."""
    return _all(comm, m, n, "alltoall", True)
