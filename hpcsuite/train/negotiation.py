"""How ranks agree on collectives: name matching, negotiation rounds, join, completion at exit.

Matching, as Horovod's: every collective is an *operation with a name* (given, or
``<kind>.noname.<n>`` counted per process as Horovod does). An asynchronous call
(``allreduce_async_`` ...) only queues it on this rank; ranks negotiate in *rounds* -
one small ``allgather`` of what each rank waits for and has queued - at every
``synchronize`` of a queued operation, every blocking collective and in ``join``. An
operation starts in the first round in which every rank that has not joined has queued
it, so ranks may issue operations in different orders. A second operation with the
name of one in flight is refused (:class:`HorovodInternalError`, as Horovod).

Failures are collective: a rank whose arguments are refused queues the operation
with its error, and every rank raises for that operation (the failing rank its own
error, the others :class:`HorovodInternalError` naming it) as soon as all have issued
it; ranks that cannot agree (different shapes under one name, or each waiting for
something no other rank will issue) all raise :class:`CollectiveMismatch` in the same
round. After either, the job can go on.

Ranks inside :func:`join` take part in what the others start (zeros, no rows) with the
same MPI calls, non-blocking where theirs are. Operations still in flight at
:func:`shutdown` or at interpreter exit are completed before MPI finalizes.
"""

from __future__ import annotations

import atexit
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from hpcsuite.core.mpi import MPI
from hpcsuite.train import ops
from hpcsuite.train.exceptions import CollectiveMismatch, HorovodInternalError, InvalidArgument
from hpcsuite.train.ops import _HALF

#: Operations ranks inside :func:`join` take part in (with zeros / no rows).
JOINABLE = (
    "allreduce",
    "grouped_allreduce",
    "broadcast",
    "allgather",
    "reducescatter",
    "sparse_allreduce",
)
#: Blocking calls (matched in call order, as Horovod's barrier and join) joined ranks take part in.
JOINABLE_CALLS = (
    "gradients",
    "broadcast_parameters",
    "broadcast_object",
    "allgather_object",
    "barrier",
)


class Handle:
    """An asynchronous collective: queued until every rank has issued it, then started;
    :func:`synchronize` returns its result, :func:`poll` says whether it is done."""

    def __init__(
        self,
        name: str,
        kind: str,
        match: Any,
        local: Any,
        start: Callable | None,
        error: BaseException | None = None,
    ) -> None:
        self.name, self.kind, self.match, self.local = name, kind, match, local
        self.start = start  # start(everyone's local info) -> (finish, request)
        self.error = (
            error  # raised by synchronize (an argument refused here, or a collective failure)
        )
        self.state = "queued"  # -> "started" -> "done"; or "failed"
        self.finish: Callable[[], Any] | None = None
        self.request: Any = None  # the MPI request, for poll
        self.result: Any = None

    def wire(self) -> tuple:
        """What the other ranks see in a negotiation round."""
        return (
            self.name,
            self.kind,
            self.match,
            self.local,
            None if self.error is None else str(self.error),
        )


class _Queue:
    queued: dict[str, Handle] = {}  # issued here, not started (insertion order)
    inflight: dict[str, Handle] = {}  # started, not synchronized
    unnamed: dict[str, int] = {}  # per kind: the next unnamed operation's number
    mirrored: list[Callable] = []  # joined rank: finishes of the operations it mirrors


def _describe(kind: str, name: str, match: Any) -> str:
    shape = match[0] if match and isinstance(match[0], tuple) else ()
    dtype = match[1] if match and len(match) > 1 and isinstance(match[1], str) else ""
    return f"{kind}({name}{list(shape)} {dtype})".replace(" )", ")")


def _issue(
    kind: str,
    name: str | None,
    match: Any,
    local: Any,
    start: Callable | None,
    error: BaseException | None = None,
) -> Handle:
    ops._comm()
    if name is None:  # unnamed operations of a kind match in call order, as Horovod's
        number = _Queue.unnamed.get(kind, 0)
        _Queue.unnamed[kind] = number + 1
        name = f"{kind}.noname.{number}"
    done = _Queue.inflight.get(name)
    if done is not None and poll(
        done
    ):  # complete, only not synchronized: the name is free (Horovod's)
        _settle(done)
    if name in _Queue.queued or name in _Queue.inflight:
        raise InvalidArgument(
            f"a collective named {name!r} is already in flight on rank {ops.rank()}: "
            "operations are matched by name, so synchronize the first or use another name"
        )
    handle = Handle(name, kind, match, local, start, error)
    _Queue.queued[name] = handle
    return handle


def _round(request: tuple, what: str, factor: float = 1.0) -> tuple[list, bool]:
    """One negotiation round: start (or fail) every operation all active ranks have queued,
    in the first active rank's order. Returns everyone's requests and whether anything started."""
    queued = tuple(h.wire() for h in _Queue.queued.values())
    everyone = ops._exchange((request, queued), what, factor)
    joined = [r for r, (req, _) in enumerate(everyone) if req[0] == "join"]
    active = [r for r in range(len(everyone)) if r not in joined]
    progress = False
    if active:
        tables = {r: {w[0]: w for w in everyone[r][1]} for r in active}
        for wire in everyone[active[0]][1]:
            if all(wire[0] in tables[r] for r in active):
                progress = True
                _matched(wire[0], [tables[r][wire[0]] for r in active], active, joined)
    return [req for req, _ in everyone], progress


def _matched(name: str, wires: list, active: list[int], joined: list[int]) -> None:
    """Every active rank has issued ``name``: start it here, mirror it (joined), or fail it."""
    me = ops.rank()
    mine = _Queue.queued.pop(name, None) if me in active else None
    kind, match = wires[0][1], wires[0][2]
    failed = [(r, w[4]) for r, w in zip(active, wires) if w[4] is not None]
    err: HorovodInternalError | None = None
    if failed:
        err = HorovodInternalError(f"{kind} {name!r} failed on rank {failed[0][0]}: {failed[0][1]}")
    elif any((w[1], w[2]) != (kind, match) for w in wires):
        err = CollectiveMismatch(
            f"ranks disagree on the collective named {name!r}: "
            + " | ".join(f"rank {r}: {_describe(w[1], name, w[2])}" for r, w in zip(active, wires))
        )
    elif joined and kind not in JOINABLE:
        err = CollectiveMismatch(
            f"{kind} cannot run while ranks have joined (hvd.join): ranks "
            f"{', '.join(map(str, joined))} joined; {kind} {name!r} fails on every rank"
        )
    if err is not None:
        err.collective = True
        if mine is not None:
            mine.state = "failed"
            if mine.error is None:
                mine.error = err
            else:
                mine.error.collective = True  # every rank raises for this operation now
        elif me in joined and kind not in JOINABLE:
            raise err
        return
    everyone_local = [None] * (len(active) + len(joined))
    for r, w in zip(active, wires):
        everyone_local[r] = w[3]
    if mine is not None:
        mine.finish, mine.request = mine.start(everyone_local)
        mine.state = "started"
        _Queue.inflight[name] = mine
    else:  # joined: the same MPI calls on zeros / no rows
        if name.startswith(f"{kind}.noname."):  # count it as issued: later unnamed ones still match
            _Queue.unnamed[kind] = max(_Queue.unnamed.get(kind, 0), int(name.rsplit(".", 1)[1]) + 1)
        finish, _ = MIRRORS[kind](match, everyone_local)
        _Queue.mirrored.append(finish)


def _decide(requests: list, progress: bool) -> str:
    """What a round means, computed alike on every rank: ``joined`` (all joined), ``call``
    (the active ranks agree on one blocking call), ``mismatch``, ``deadlock``, or ``go on``."""
    active = [q for q in requests if q[0] != "join"]
    if not active:
        return "joined"
    calls = [q for q in active if q[0] == "call"]
    if len(calls) == len(active):
        if any(q != calls[0] for q in calls):
            return "mismatch"
        if len(active) < len(requests) and calls[0][1] not in JOINABLE_CALLS:
            return "not joinable"
        return "call"
    return "go on" if progress else "deadlock"


def _failure(requests: list, decision: str) -> CollectiveMismatch:
    lines = []
    for r, q in enumerate(requests):
        if q[0] == "call":
            names = ", ".join(f"{n}{list(s)} {d}" for n, s, d, _ in q[2][:4]) + (
                " ..." if len(q[2]) > 4 else ""
            )
            lines.append(f"rank {r}: {q[1]}({names}{'' if q[3] is None else f'; {q[3]}'})")
        elif q[0] == "wait":
            lines.append(f"rank {r}: {q[2]}")
        else:
            lines.append(f"rank {r}: join")
    why = {
        "mismatch": "ranks disagree on a collective",
        "deadlock": "ranks disagree on a collective (each waits for one no other rank has issued)",
        "not joinable": (
            f"{next((q[1] for q in requests if q[0] == 'call'), '?')} cannot run while ranks "
            "have joined (hvd.join)"
        ),
    }[decision]
    err = CollectiveMismatch(f"{why}: " + " | ".join(lines))
    err.collective = True  # every rank saw the same requests and raises the same error
    return err


def negotiate(kind: str, tensors: Sequence[tuple[str, torch.Tensor]], extra: Any = None) -> None:
    """A blocking collective matched in call order (gradients, objects, barrier): all ranks
    agree on it and its tensors, or all raise :class:`CollectiveMismatch`. Ranks inside
    :func:`join` take part in those of :data:`JOINABLE_CALLS`."""
    # Device *type*: ranks hold their own GPU (cuda:0 on one, cuda:1 on another) and must agree.
    descr = tuple((n, tuple(t.shape), str(t.dtype), t.device.type) for n, t in tensors)
    request = ("call", kind, descr, extra)
    what = f"{kind} of {', '.join(repr(n) for n, _ in tensors[:3]) or 'nothing'}"
    while True:
        requests, progress = _round(request, what)
        decision = _decide(requests, progress)
        if decision == "call":
            return
        if decision != "go on":
            raise _failure(requests, decision)


def _wait_started(handle: Handle) -> None:
    """Negotiate until ``handle`` has started (or failed) on this rank."""
    request = ("wait", handle.name, _describe(handle.kind, handle.name, handle.match))
    while handle.state == "queued":
        requests, progress = _round(request, f"{handle.kind} of {handle.name!r}")
        if handle.state != "queued":
            return
        decision = _decide(requests, progress)
        if decision != "go on":
            _Queue.queued.pop(handle.name, None)
            handle.state = "failed"
            last = _Queue.unnamed.get(handle.kind, 0) - 1
            if (
                handle.name == f"{handle.kind}.noname.{last}"
            ):  # never ran: later unnamed ones still match
                _Queue.unnamed[handle.kind] = last
            failure = _failure(requests, decision)
            if handle.error is None:
                handle.error = failure
            else:  # refused here: this rank's own error says more; every rank raises in this round
                handle.error.collective = True


def join(device: Any = None) -> int:
    """This rank has no more data: until every rank has joined, take part in the other
    ranks' collectives with zeros (allreduces, gradient reductions; averages still divide
    by the full rank count, as Horovod's) or no rows (allgather), with the same MPI calls
    as theirs - non-blocking where theirs are. Returns the rank that joined last, which
    holds the final parameters: broadcast from it afterwards. ``device`` is Horovod's
    (where its result tensor lives); accepted, nothing here depends on it. A joined rank
    waits up to 10x ``HPCSUITE_TRAIN_TIMEOUT`` between the others' collectives."""
    del device
    rounds = 0
    try:
        while True:
            # Waiting here is normal (the others still train, evaluate, save), so 10x the timeout.
            requests, progress = _round(
                ("join", rounds), "join (waiting for the other ranks to join)", factor=10
            )
            decision = _decide(requests, progress)
            if decision == "joined":
                return max(
                    r for r, q in enumerate(requests) if q[1] == 0
                )  # who joined in this round
            if decision == "call":
                call = next(q for q in requests if q[0] == "call")
                _mirror_call(call[1], call[2], call[3])
            elif decision != "go on":
                raise _failure(requests, decision)
            rounds += 1
    finally:
        mirrored, _Queue.mirrored = _Queue.mirrored, []
        for finish in mirrored:
            finish()


def synchronize(handle: Handle) -> Any:
    """Wait for ``handle`` and return its result (Horovod's; raises what the operation raised)."""
    if isinstance(handle, _Group):
        return [synchronize(h) for h in handle.handles]
    if handle.state == "done":
        return handle.result
    if handle.state == "queued":
        _wait_started(handle)
    _Queue.inflight.pop(handle.name, None)
    if handle.state == "failed":
        raise handle.error
    with ops._watchdog(f"{handle.kind} {handle.name!r}"):
        handle.result = handle.finish()
    handle.state, handle.finish = "done", None
    return handle.result


def poll(handle: Handle) -> bool:
    """Whether ``handle`` has completed (drives MPI progress). An operation not yet matched
    with the other ranks' is not: :func:`synchronize` (or any collective) negotiates it."""
    if isinstance(handle, _Group):
        return all([poll(h) for h in handle.handles])
    if handle.state == "queued":
        return False
    if handle.state == "started" and handle.request is not None:
        return bool(handle.request.Test())
    return True


def _settle(handle: Handle) -> None:
    """Finish a started operation now (its result kept for a later ``synchronize``)."""
    _Queue.inflight.pop(handle.name, None)
    try:
        with ops._watchdog(f"{handle.kind} {handle.name!r}"):
            handle.result = handle.finish()
        handle.state = "done"
    except Exception as exc:  # raised by a later synchronize()
        handle.state, handle.error = "failed", exc
    handle.finish = None


def _complete_all() -> None:
    """Finish every started operation (MPI must not finalize, nor free their buffers, while
    requests are pending); queued ones never reached MPI and are dropped."""
    _Queue.queued = {}
    for handle in list(_Queue.inflight.values()):
        if handle.state == "started" and handle.finish is not None:
            _settle(handle)
    _Queue.inflight = {}


def shutdown() -> None:
    """Complete pending operations, release the communicators (``init`` may be called again)."""
    if ops.is_initialized():
        _complete_all()
    ops.shutdown()


@atexit.register
def _at_exit() -> None:
    # Registered after mpi4py's finalizer, so it runs before it: pending requests complete
    # while MPI and their buffers still exist (a pending Ibcast crashed the exit otherwise).
    if ops.is_initialized() and not MPI.Is_finalized():
        _complete_all()


#: Per operation kind: how a joined rank takes part (zeros / no rows), registered by
#: :mod:`hpcsuite.train.mpi_ops` next to the runners the active ranks use.
MIRRORS: dict[str, Callable] = {}


def _mirror_call(kind: str, descr: tuple, extra: Any) -> None:
    """Take part, as a joined rank, in the blocking call the others agreed on."""
    comm = ops._comm()
    if kind == "gradients":
        _mirror_gradients(descr, *extra)
    elif kind == "broadcast_object":
        comm.bcast(None, root=extra[1])  # comm: pickled object
    elif kind == "allgather_object":
        comm.allgather(None)  # comm: pickled objects (None from this rank)
    elif kind == "barrier":
        comm.Barrier()  # comm: barrier
    # broadcast_parameters: its broadcasts are named operations, mirrored as they start


def _mirror_gradients(
    descr: tuple, op: str, compression: str, passes: int, fusion: int, overlap: str
) -> None:
    """Zeros for every bucket of a DistributedOptimizer step, in the order, grouping
    ((dtype, device), as the active ranks' flat buffers) and on the communicator the
    active ranks use (see :mod:`hpcsuite.train.optimizer`)."""
    sizes: dict[tuple[str, str], int] = {}
    for _, shape, dtype, device in descr:
        sizes[(dtype, device)] = sizes.get((dtype, device), 0) + math.prod(shape)
    wire16 = {"FP16Compressor": torch.float16, "BF16Compressor": torch.bfloat16}.get(compression)
    buckets = []
    for (dtype, _device), n in sizes.items():
        wire = _zeros((0,), dtype).dtype
        wire = wire16 if wire16 is not None and wire.is_floating_point else wire
        chunk = max(1, fusion // torch.empty(0, dtype=wire).element_size())
        buckets += [torch.zeros(min(chunk, n - lo), dtype=wire) for lo in range(0, n, chunk)]
    comm = ops._worker().comm if overlap == "thread" else ops._comm()
    if overlap == "poll":  # 16-bit: every first half is started before any second half
        plans = [ops._Sum16(comm, b) if b.dtype in _HALF else None for b in buckets]
        MPI.Request.Waitall(
            [
                p.start() if p else comm.Iallreduce(MPI.IN_PLACE, ops._host_view(b)[0], op=MPI.SUM)
                for p, b in zip(plans, buckets)
            ]
        )  # comm: the buckets' reductions
        for p in plans:
            if p is not None:
                p.finish()
        return
    for b in buckets:
        if b.dtype in _HALF:
            ops._Sum16(comm, b).run()
        else:
            comm.Allreduce(MPI.IN_PLACE, ops._host_view(b)[0], op=MPI.SUM)  # comm: the reduction


class _Group(Handle):
    """Handles synchronized together (grouped allgather / reducescatter)."""

    def __init__(self, handles: list[Handle]) -> None:
        self.handles, self.state, self.name, self.kind = handles, "group", "group", "group"


def _zeros(shape: Sequence[int], dtype: str) -> torch.Tensor:
    return torch.zeros(tuple(shape), dtype=getattr(torch, dtype.removeprefix("torch.")))
