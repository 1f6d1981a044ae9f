"""The benchmarks: what one iteration does, and how its received data is validated.

Each entry builds a :class:`Case` for one message size on one rank. A case's ``run``
is one timed iteration; ``prime`` fills the send buffers with a pattern that depends
on the sending rank and writes :func:`unset` into the receive buffers; after one
``prime`` + ``run``, ``check`` lists what arrived wrong. Every case is primed before
its timed loop, validated or not: a buffer that was allocated zeroed and never
written maps every page to the kernel's one shared zero page, and a 4 MiB send from
it reads one cached 4 KiB page, which is not what an application's send costs. Sizes
are bytes per rank and message, as in OSU; reductions use float32 elements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core.mpi import MPI
from hpcsuite.microbench.buffers import Messages

F32 = np.float32


def pattern(rank: int, count: int, dtype: Any = np.uint8) -> np.ndarray:
    """Validation data sent by ``rank``: bytes that differ per rank and per position;
    for float32, small integers whose sums over ranks stay exact."""
    if np.dtype(dtype) == np.uint8:
        return ((np.arange(count, dtype=np.int64) * 7 + rank * 31 + 1) % 251).astype(np.uint8)
    return ((np.arange(count) % 13 + 1) * (rank + 1)).astype(dtype)


def unset(count: int, dtype: Any = np.uint8) -> np.ndarray:
    """What receive buffers hold before a message lands: written (never the kernel's
    shared zero page) and never equal to :func:`pattern` (0xFF bytes, which the
    modulo-251 byte pattern never produces; -1 for numbers, which it never sends)."""
    if np.dtype(dtype) == np.uint8:
        return np.full(count, 0xFF, np.uint8)
    return np.full(count, -1, dtype)


def addends(rank: int, count: int, dtype: Any = F32, size: int = 1) -> np.ndarray:
    """What ``rank`` of ``size`` contributes to a reduction, chosen so that every sum stays
    exact and in range.

    Wider types: small integers times ``rank + 1`` (exact in float32 and int32 at any
    rank count OSU runs). Bytes (OSU's ``-T mpi_char``): one rank in turn contributes
    ``i % 100 + 1`` to element ``i`` and the others 0, so each sum is at most 100. A
    signed byte would pass 127 at 4 ranks with the wider pattern, and what happens
    then is the library's choice (MPICH wraps, Open MPI saturates); this way a lost or
    misplaced contribution still shows, at any rank count.
    """
    i = np.arange(count, dtype=np.int64)
    if np.dtype(dtype).itemsize == 1:
        return np.where((i + rank) % size == 0, i % 100 + 1, 0).astype(dtype)
    return ((i % 13 + 1) * (rank + 1)).astype(dtype)


def reduced(size: int, count: int, dtype: Any = F32) -> np.ndarray:
    """What summing :func:`addends` over ``size`` ranks gives."""
    i = np.arange(count, dtype=np.int64)
    if np.dtype(dtype).itemsize == 1:
        return (i % 100 + 1).astype(dtype)
    return ((i % 13 + 1) * (size * (size + 1) // 2)).astype(dtype)


def mpi_type(dtype: Any) -> Any:
    """The MPI datatype OSU's ``-T`` names for a NumPy element type (bytes are MPI_CHAR)."""
    return {
        np.dtype(np.uint8): MPI.CHAR,
        np.dtype(np.int32): MPI.INT,
        np.dtype(np.float32): MPI.FLOAT,
    }[np.dtype(dtype)]


@dataclass
class Case:
    """One benchmark at one size on one rank."""

    run: Callable[[], None]
    prime: Callable[[], None]
    check: Callable[[], list[str]]
    #: Whether this rank's iteration times enter the statistics.
    timed: bool = True
    #: Bytes moved per iteration, for bandwidth tests.
    bytes_per_iteration: int = 0
    #: Non-blocking collectives: start the operation, and wait for a started one.
    start: Callable[[], Any] | None = None
    finish: Callable[[Any], None] | None = None
    #: Release what the case holds that needs every rank (an RMA window); None: nothing.
    close: Callable[[], None] | None = None


@dataclass(frozen=True)
class Spec:
    """A benchmark's family (for iteration counts and output), element type and rank rule."""

    family: str  # latency | bandwidth | rate | onesided | collective | nonblocking | startup
    dtype: Any
    ranks: str  # "two" | "even" | "many" | "any"
    pickle: bool  # has a lower-case (pickle) form
    make: Callable[..., Case] | None
    title: str
    #: Takes a root rank (OSU's -k).
    rooted: bool = False
    #: Reduces elements (the element type changes the arithmetic, not only the label).
    reduces: bool = False


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> list[str]:
    if got.shape == want.shape and np.array_equal(got, want):
        return []
    bad = int(np.count_nonzero(got != want)) if got.shape == want.shape else -1
    return [f"{name}: {bad if bad >= 0 else 'shape'} mismatch(es) in {want.size} elements"]


# -- point to point ------------------------------------------------------------------------


def _pingpong(comm: Any, m: Messages, n: int, peer: int, first: bool, window: int = 1) -> Case:
    c = m.comm(comm)
    s, r = m.alloc(n), m.alloc(n)
    box: dict[str, Any] = {}

    if m.pickled:

        def run() -> None:
            if first:
                c.send(box["obj"], dest=peer, tag=1)
                box["got"] = c.recv(source=peer, tag=1)
            else:
                box["got"] = c.recv(source=peer, tag=1)
                c.send(box["obj"], dest=peer, tag=1)

    elif not m.backend.on_device:
        # Host buffers: prebuilt message specs, positional arguments, no helper calls -
        # the loop must cost no more than a hand-written one (mpi4py.bench's pingpong).
        send, recv = c.Send, c.Recv
        smsg, rmsg = [s, n, MPI.BYTE], [r, n, MPI.BYTE]

        if first:

            def run() -> None:
                send(smsg, peer, 1)
                recv(rmsg, peer, 1)

        else:

            def run() -> None:
                recv(rmsg, peer, 1)
                send(smsg, peer, 1)

    else:

        def run() -> None:
            if first:
                c.Send(m.send(s), dest=peer, tag=1)
                c.Recv(m.recv(r), source=peer, tag=1)
            else:
                c.Recv(m.recv(r), source=peer, tag=1)
                m.landed(r)
                c.Send(m.send(s), dest=peer, tag=1)
                return
            m.landed(r)

    def prime() -> None:
        m.fill(s, pattern(comm.rank, n))
        m.fill(r, unset(n))
        box["obj"] = pattern(comm.rank, n)
        box["got"] = None

    def check() -> list[str]:
        got = box["got"] if m.pickled else m.read(r)
        return _compare(f"rank {comm.rank} from {peer}", np.asarray(got), pattern(peer, n))

    box["obj"] = pattern(comm.rank, n)
    return Case(run=run, prime=prime, check=check)


def latency(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """Ping-pong between ranks 0 and 1; one iteration is a round trip (reported halved)."""
    return _pingpong(comm, m, n, 1 - comm.rank, comm.rank == 0)


def multi_lat(comm: Any, m: Messages, n: int, **_: Any) -> Case:
    """All pairs (r, r + n/2) ping-pong at once."""
    half = comm.size // 2
    first = comm.rank < half
    return _pingpong(comm, m, n, comm.rank + half if first else comm.rank - half, first)


def _window(
    comm: Any,
    m: Messages,
    n: int,
    window: int,
    both: bool,
    peer: int | None = None,
    sender: bool | None = None,
) -> Case:
    c = m.comm(comm)
    peer = 1 - comm.rank if peer is None else peer
    s, r, ack = m.alloc(n), m.alloc(n), np.zeros(1, np.uint8)
    sender = comm.rank == 0 if sender is None else sender
    box: dict[str, Any] = {"obj": pattern(comm.rank, n), "got": None}

    if m.pickled:

        def run() -> None:
            if sender:
                for _ in range(window):
                    c.send(box["obj"], dest=peer, tag=2)
                c.recv(source=peer, tag=3)
            else:
                for _ in range(window):
                    box["got"] = c.recv(source=peer, tag=2)
                c.send(b"", dest=peer, tag=3)

    else:

        def run() -> None:
            reqs = []
            if both or not sender:
                rb = m.recv(r)
                reqs += [c.Irecv(rb, source=peer, tag=2) for _ in range(window)]
            if both or sender:
                sb = m.send(s)
                reqs += [c.Isend(sb, dest=peer, tag=2) for _ in range(window)]
            MPI.Request.Waitall(reqs)
            if both or not sender:
                m.landed(r)
            if not both:  # the receiver's acknowledgement closes the window, as in OSU
                if sender:
                    c.Recv(ack, source=peer, tag=3)
                else:
                    c.Send(ack, dest=peer, tag=3)

    def prime() -> None:
        m.fill(s, pattern(comm.rank, n))
        m.fill(r, unset(n))
        box["got"] = None

    def check() -> list[str]:
        if sender and not both:
            return []
        got = np.asarray(box["got"]) if m.pickled else m.read(r)
        return _compare(f"rank {comm.rank} from {peer}", got, pattern(peer, n))

    return Case(
        run=run,
        prime=prime,
        check=check,
        timed=sender,
        bytes_per_iteration=n * window * (2 if both else 1),
    )


def bw(comm: Any, m: Messages, n: int, window: int = 64, **_: Any) -> Case:
    """Rank 0 streams a window of non-blocking sends to rank 1, which acknowledges."""
    return _window(comm, m, n, window, both=False)


def bibw(comm: Any, m: Messages, n: int, window: int = 64, **_: Any) -> Case:
    """Ranks 0 and 1 stream windows to each other at once."""
    return _window(comm, m, n, window, both=True)


def mbw_mr(comm: Any, m: Messages, n: int, window: int = 64, **_: Any) -> Case:
    """OSU's multi-pair bandwidth and message rate: ranks r < n/2 each stream windows to
    r + n/2 at once (the receivers acknowledge); the row sums the pairs' bandwidths."""
    half = comm.size // 2
    sender = comm.rank < half
    return _window(
        comm,
        m,
        n,
        window,
        both=False,
        peer=comm.rank + half if sender else comm.rank - half,
        sender=sender,
    )


# -- one-sided -----------------------------------------------------------------------------

#: OSU's -s choices, and what its header calls them.
SYNCS = {
    "lock": "MPI_Win_lock/unlock",
    "pscw": "MPI_Win_post/start/complete/wait",
    "fence": "MPI_Win_fence",
    "flush": "MPI_Win_flush",
    "flush_local": "MPI_Win_flush_local",
    "lock_all": "MPI_Win_lock_all/unlock_all",
}
#: OSU's -w choices.
WINDOWS = {
    "create": "MPI_Win_create",
    "allocate": "MPI_Win_allocate",
    "dynamic": "MPI_Win_create_dynamic",
}


#: The passive-target choices: rank 1 makes no RMA call while rank 0 works on its window.
PASSIVE = ("lock", "lock_all", "flush", "flush_local")


def acc_operands(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Accumulate's validation data: what rank 1's window starts with, and what rank 0 adds.

    Both differ per position and stay small, so that every sum (at most 63 + 61) fits a
    signed char as well as an unsigned one: the MPI standard leaves an overflowing sum
    to the library, and libraries differ (Open MPI's vectorized MPI_SUM saturates 8-bit
    sums at 127 or 255, MPICH wraps). No addend is zero, so a lost accumulate shows.
    """
    i = np.arange(count, dtype=np.int64)
    return ((i * 5) % 61 + 3).astype(np.uint8), ((i * 7) % 61 + 1).astype(np.uint8)


def _rma(
    comm: Any, m: Messages, n: int, op: str, sync: str = "flush", win: str = "allocate", **_: Any
) -> Case:
    """Rank 0 puts, gets or accumulates ``n`` bytes in rank 1's window; one iteration is the
    operation and the synchronization that completes it (``sync``), timed on rank 0.

    With lock, lock_all, flush and flush_local rank 1 takes no part (passive target);
    with fence both ranks fence around the operation, with pscw rank 1 posts and waits.

    Validation follows the MPI standard's rules for a window's memory (MPI-4.0 sec. 12.7),
    which hold in its separate memory model too, not only where the library happens to
    keep one copy: rank 1 stores into and loads from its own window only where those
    stores and the origin's operations are ordered by a window synchronization of its
    own (under a lock of its own window with passive targets; before the fence or post
    that exposes it, after the fence or wait that ends the exposure, otherwise), and
    only after rank 0's operation completed at the target (flush_local completes it
    locally only, so the check unlocks first). Accumulate sums MPI_UNSIGNED_CHAR
    elements: MPI_CHAR, which put and get move as OSU does, is for characters and not
    allowed in reductions (MPI-4.0 sec. 6.9.3).
    """
    origin = comm.rank == 0
    buf = m.alloc(n)  # rank 0: what it puts or accumulates, or where a get lands
    mem = None
    if win == "allocate":
        w = MPI.Win.Allocate(n, 1, comm=comm)
        target_mem = np.frombuffer(w.tomemory(), np.uint8) if n else np.zeros(0, np.uint8)
        disp = 0
    else:
        mem = m.alloc(max(n, 1))
        target_mem = m.view(mem)[:n]
        if win == "create":
            w = MPI.Win.Create(mem, 1, comm=comm)
            disp = 0
        else:
            w = MPI.Win.Create_dynamic(comm=comm)
            w.Attach(mem)
            disp = comm.bcast(MPI.Get_address(mem), root=1)  # comm: where rank 1's memory is
    other = comm.Get_group().Incl([1 - comm.rank])
    target = 1
    element = MPI.UNSIGNED_CHAR if op == "acc" else MPI.CHAR
    spec, tspec = [buf, n, element], [disp, n, element]
    state = {"locked": False}
    start, addend = acc_operands(n)
    if op == "get":  # what rank 1's window holds, what rank 0 sends (or receives into)
        initial, sent, want = pattern(1, n), unset(n), pattern(1, n)
    elif op == "put":
        initial, sent, want = unset(n), pattern(0, n), pattern(0, n)
    else:
        initial, sent, want = start, addend, start + addend

    def rma() -> None:
        if op == "put":
            w.Put(spec, target, tspec)
        elif op == "get":
            w.Get(spec, target, tspec)
        else:
            w.Accumulate(spec, target, tspec, op=MPI.SUM)

    if sync in PASSIVE:  # passive target: rank 1 idles
        complete = {
            "flush": lambda: w.Flush(target),
            "flush_local": lambda: w.Flush_local(target),
        }.get(sync)

        def run() -> None:
            if not origin:
                return
            if sync == "lock":
                w.Lock(target, MPI.LOCK_SHARED)
                rma()
                w.Unlock(target)
            elif sync == "lock_all":
                w.Lock_all()
                rma()
                w.Unlock_all()
            else:  # one lock for the whole size, each operation flushed, as OSU
                rma()
                complete()

    elif sync == "fence":

        def run() -> None:
            if origin:
                rma()
            w.Fence()

    else:  # pscw

        def run() -> None:
            if origin:
                w.Start(other)
                rma()
                w.Complete()
            else:
                w.Post(other)
                w.Wait()

    def own_window(access: Callable[[], Any]) -> Any:
        # A load or store of this rank's own window memory. With a passive target no
        # call of rank 1's would order it against rank 0's operations, nor (separate
        # memory model) carry it between the window's private and public copies: an
        # exclusive lock of its own window does both. With fence and pscw the fence,
        # post or wait around it does, and a lock there would mix passive and active
        # synchronization on the window.
        if sync not in PASSIVE:
            return access()
        w.Lock(comm.rank, MPI.LOCK_EXCLUSIVE)
        try:
            return access()
        finally:
            w.Unlock(comm.rank)

    def lock_target() -> None:
        if sync in ("flush", "flush_local") and origin:
            w.Lock(target, MPI.LOCK_SHARED)  # held for the size's whole loop, as OSU
            state["locked"] = True

    def unlock_target() -> None:
        if state["locked"]:
            w.Unlock(target)  # completes every operation at the target, flush_local's too
            state["locked"] = False

    def store() -> None:
        target_mem[...] = initial

    def prime() -> None:
        unlock_target()
        m.fill(buf, sent if origin else unset(n))
        own_window(store)  # rank 0's window too: never reached into, but written as every buffer
        comm.Barrier()  # comm: every window written before anyone reaches into it
        if sync == "fence":
            w.Fence()  # opens the first epoch (and makes the stores above public)
        lock_target()

    def check() -> list[str]:
        unlock_target()
        comm.Barrier()  # comm: rank 0's operation completed at the target before anyone looks
        if origin:
            got = m.read(buf) if op == "get" else None
        else:
            got = None if op == "get" else own_window(lambda: np.array(target_mem, copy=True))
        comm.Barrier()  # comm: the target has looked before the origin's warm-up writes again
        lock_target()
        if got is None:
            return []
        return _compare("rank 0 got from rank 1" if op == "get" else "rank 1's window", got, want)

    def close() -> None:
        unlock_target()
        # MPI_Win_detach is local: without this a passive target, whose iterations are
        # empty, detaches its memory while rank 0 still reaches into it (Open MPI then
        # fails rank 0's operation with MPI_ERR_RMA_RANGE).
        comm.Barrier()  # comm: every epoch on the window ended before its memory goes
        if win == "dynamic":
            w.Detach(mem)
        w.Free()
        other.Free()

    return Case(run=run, prime=prime, check=check, timed=origin, close=close)


def put_latency(comm: Any, m: Messages, n: int, **kw: Any) -> Case:
    """MPI_Put latency (OSU's osu_put_latency)."""
    return _rma(comm, m, n, "put", **kw)


def get_latency(comm: Any, m: Messages, n: int, **kw: Any) -> Case:
    """MPI_Get latency (OSU's osu_get_latency)."""
    return _rma(comm, m, n, "get", **kw)


def acc_latency(comm: Any, m: Messages, n: int, **kw: Any) -> Case:
    """MPI_Accumulate (MPI_SUM on bytes) latency (OSU's osu_acc_latency)."""
    return _rma(comm, m, n, "acc", **kw)
