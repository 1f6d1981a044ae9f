"""The benchmarks: what one iteration does, and how its received data is validated.

Each entry builds a :class:`Case` for one message size on one rank. A case's ``run``
is one timed iteration; ``prime`` fills the send buffers with a pattern that depends
on the sending rank and writes :func:`unset` into the receive buffers; after one
``prime`` + ``run``, ``check`` lists what arrived wrong. Every case is primed before
its timed loop, validated or not: a buffer that was allocated zeroed and never
written maps every page to the kernel's one shared zero page, and a 4 MiB send from
it reads one cached 4 KiB page, which is not what an application's send costs. Sizes are bytes per rank and message, as in OSU;
reductions use float32 elements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


def reduced(size: int, count: int) -> np.ndarray:
    """What summing :func:`pattern` over ``size`` ranks gives, in float32."""
    return ((np.arange(count) % 13 + 1) * (size * (size + 1) // 2)).astype(F32)


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
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spec:
    """A benchmark's family (for iteration counts and output), element type and rank rule."""

    family: str  # latency | bandwidth | collective | nonblocking
    dtype: Any
    ranks: str  # "two" | "even" | "any"
    pickle: bool  # has a lower-case (pickle) form
    make: Callable[..., Case]
    title: str


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


def _window(comm: Any, m: Messages, n: int, window: int, both: bool) -> Case:
    c = m.comm(comm)
    peer = 1 - comm.rank
    s, r, ack = m.alloc(n), m.alloc(n), np.zeros(1, np.uint8)
    sender = comm.rank == 0
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

    return Case(run=run, prime=prime, check=check, timed=sender,
                bytes_per_iteration=n * window * (2 if both else 1))


def bw(comm: Any, m: Messages, n: int, window: int = 64, **_: Any) -> Case:
    """Rank 0 streams a window of non-blocking sends to rank 1, which acknowledges."""
    return _window(comm, m, n, window, both=False)


def bibw(comm: Any, m: Messages, n: int, window: int = 64, **_: Any) -> Case:
    """Ranks 0 and 1 stream windows to each other at once."""
    return _window(comm, m, n, window, both=True)
