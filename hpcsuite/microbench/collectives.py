"""Blocking and non-blocking collectives as :class:`~hpcsuite.microbench.catalog.Case` s.

Sizes are bytes per rank and message (OSU's convention): ``gather`` of 1 KiB gathers
1 KiB from each rank; ``alltoall`` of 1 KiB sends 1 KiB to each peer; reductions
reduce ``n / 4`` float32 values; ``reduce_scatter`` leaves about ``n / size`` bytes on
each rank of an ``n``-byte vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpcsuite.core.mpi import MPI
from hpcsuite.core.partition import split
from hpcsuite.microbench.buffers import Messages
from hpcsuite.microbench.catalog import F32, Case, _compare, pattern, reduced, unset

ROOT = 0


def _case(comm: Any, m: Messages, send: Any, recv: Any, sdtype: Any, sent: np.ndarray,
          expect: np.ndarray | None, blocking: Any, start: Any = None,
          box: dict[str, Any] | None = None) -> Case:
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
    """Barrier; the size is ignored."""
    c = m.comm(comm)
    run = c.barrier if m.pickled else c.Barrier
    return _case(comm, m, None, None, np.uint8, np.zeros(0, np.uint8), None, run)


def bcast(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Broadcast ``n`` bytes from rank 0."""
    c, buf, box = m.comm(comm), m.alloc(n), {}
    root = comm.rank == ROOT
    sent = pattern(ROOT, n)

    def run() -> None:
        if m.pickled:
            box["got"] = c.bcast(sent if root else None, root=ROOT)
            return
        c.Bcast(m.send(buf) if root else m.recv(buf), root=ROOT)
        if not root:
            m.landed(buf)

    def start() -> Any:
        return c.Ibcast(m.send(buf) if root else m.recv(buf), root=ROOT)

    # The root sends from the buffer, the others receive into it (and are checked).
    return _case(comm, m, buf if root else None, None if root else buf, np.uint8, sent,
                 None if root else sent, run, start, box)


def _reduction(comm: Any, m: Messages, n: int, kind: str) -> Case:
    c, box = m.comm(comm), {}
    count = n // 4
    sent = pattern(comm.rank, count, F32)
    total = reduced(comm.size, count)
    s = m.alloc(count, F32)
    if kind == "reduce_scatter":
        counts, displs = split(count, comm.size)
        r = m.alloc(counts[comm.rank], F32)
        expect = total[displs[comm.rank]:displs[comm.rank] + counts[comm.rank]]
    else:
        r = m.alloc(count, F32)
        expect = total if kind != "reduce" or comm.rank == ROOT else None

    def call(api: str) -> Any:
        sb, rb = m.typed(m.send(s), F32), m.typed(m.recv(r), F32)
        if kind == "reduce":
            return c.Reduce(sb, rb, op=MPI.SUM, root=ROOT)
        if kind == "reduce_scatter":
            return c.Reduce_scatter(sb, rb, counts, op=MPI.SUM)
        return getattr(c, api)(sb, rb, op=MPI.SUM)

    def run() -> None:
        if m.pickled:
            box["got"] = (c.reduce(sent, op=MPI.SUM, root=ROOT) if kind == "reduce"
                          else c.allreduce(sent, op=MPI.SUM))
            return
        call("Allreduce")
        if kind != "reduce" or comm.rank == ROOT:  # elsewhere a Reduce receives nothing to copy back
            m.landed(r)

    start = (lambda: call("Iallreduce")) if kind == "allreduce" else None
    return _case(comm, m, s, r, F32, sent, expect, run, start, box)


def reduce(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Sum of ``n / 4`` float32 to rank 0."""
    return _reduction(comm, m, n, "reduce")


def allreduce(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Sum of ``n / 4`` float32 to every rank."""
    return _reduction(comm, m, n, "allreduce")


def reduce_scatter(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Sum of ``n / 4`` float32, each rank keeping its slice."""
    return _reduction(comm, m, n, "reduce_scatter")


def _rooted(comm: Any, m: Messages, n: int, kind: str, vector: bool) -> Case:
    """gather(v) / scatter(v): ``n`` bytes per rank to or from rank 0."""
    c, box, size = m.comm(comm), {}, comm.size
    root = comm.rank == ROOT
    counts, displs = [n] * size, [i * n for i in range(size)]
    everyone = np.concatenate([pattern(r, n) for r in range(size)]) if size else np.zeros(0, np.uint8)
    if kind == "gather":
        s, r = m.alloc(n), (m.alloc(n * size) if root else None)
        sent, expect = pattern(comm.rank, n), (everyone if root else None)
    else:
        s, r = (m.alloc(n * size) if root else None), m.alloc(n)
        sent, expect = (everyone if root else None), pattern(comm.rank, n)

    def run() -> None:
        if m.pickled:
            if kind == "gather":
                got = c.gather(sent, root=ROOT)
                box["got"] = np.concatenate(got) if root else None
            else:
                box["got"] = c.scatter(np.split(sent, size) if root else None, root=ROOT)
            return
        sb = m.send(s) if s is not None else None
        rb = m.recv(r) if r is not None else None
        if kind == "gather":
            c.Gatherv(sb, [rb, counts, displs, MPI.BYTE] if root else None, root=ROOT) if vector \
                else c.Gather(sb, rb, root=ROOT)
        else:
            c.Scatterv([sb, counts, displs, MPI.BYTE] if root else None, rb, root=ROOT) if vector \
                else c.Scatter(sb, rb, root=ROOT)
        if r is not None:
            m.landed(r)

    return _case(comm, m, s, r, np.uint8, sent if sent is not None else np.zeros(0, np.uint8),
                 expect, run, None, box)


def gather(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Gather ``n`` bytes from every rank to rank 0."""
    return _rooted(comm, m, n, "gather", False)


def gatherv(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """The same through ``Gatherv`` (counts and displacements)."""
    return _rooted(comm, m, n, "gather", True)


def scatter(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Scatter ``n`` bytes to every rank from rank 0."""
    return _rooted(comm, m, n, "scatter", False)


def scatterv(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """The same through ``Scatterv``."""
    return _rooted(comm, m, n, "scatter", True)


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

    def call(api: str) -> Any:
        sb, rb = m.send(s), m.recv(r)
        if vector:
            spec = [sb, counts, displs, MPI.BYTE] if kind == "alltoall" else [sb, n, MPI.BYTE]
            return getattr(c, api + "v")(spec, [rb, counts, displs, MPI.BYTE])
        return getattr(c, api)(sb, rb)

    api = "Allgather" if kind == "allgather" else "Alltoall"

    def run() -> None:
        if m.pickled:
            got = c.allgather(sent) if kind == "allgather" else c.alltoall(np.split(sent, size))
            box["got"] = np.concatenate(got)
            return
        call(api)
        m.landed(r)

    start = (lambda: call("Ialltoall")) if kind == "alltoall" and not vector else None
    return _case(comm, m, s, r, np.uint8, sent, expect, run, start, box)


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
