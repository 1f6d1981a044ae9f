"""Horovod's public collective API (``horovod.torch.mpi_ops``) over the engine in :mod:`ops`.

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

import numpy as np
import torch

from hpcsuite.core import mpi
from hpcsuite.core.mpi import MPI
from hpcsuite.core.partition import owned
from hpcsuite.train import ops
from hpcsuite.train.exceptions import ArgumentError, CollectiveMismatch, HorovodInternalError, NotSupported
from hpcsuite.train.ops import _HALF, Adasum, Average, Max, Min, Product, Sum

#: Operations ranks inside :func:`join` take part in (with zeros / no rows).
JOINABLE = ("allreduce", "grouped_allreduce", "broadcast", "allgather", "reducescatter", "sparse_allreduce")
#: Blocking calls (matched in call order, as Horovod's barrier and join) joined ranks take part in.
JOINABLE_CALLS = ("gradients", "broadcast_parameters", "broadcast_object", "allgather_object", "barrier")


class Handle:
    """An asynchronous collective: queued until every rank has issued it, then started;
    :func:`synchronize` returns its result, :func:`poll` says whether it is done."""

    def __init__(self, name: str, kind: str, match: Any, local: Any, start: Callable | None,
                 error: BaseException | None = None) -> None:
        self.name, self.kind, self.match, self.local = name, kind, match, local
        self.start = start  # start(everyone's local info) -> (finish, request)
        self.error = error  # raised by synchronize (an argument refused here, or a collective failure)
        self.state = "queued"  # -> "started" -> "done"; or "failed"
        self.finish: Callable[[], Any] | None = None
        self.request: Any = None  # the MPI request, for poll
        self.result: Any = None

    def wire(self) -> tuple:
        """What the other ranks see in a negotiation round."""
        return (self.name, self.kind, self.match, self.local, None if self.error is None else str(self.error))


class _Queue:
    queued: dict[str, Handle] = {}  # issued here, not started (insertion order)
    inflight: dict[str, Handle] = {}  # started, not synchronized
    unnamed: dict[str, int] = {}  # per kind: the next unnamed operation's number
    mirrored: list[Callable] = []  # joined rank: finishes of the operations it mirrors


# -- Horovod's scaling and argument checks ----------------------------------------------------

def _scale(t: torch.Tensor, factor: float) -> None:
    """``t *= factor`` as Horovod's ScaleBuffer: the product in double precision, converted
    back to ``t``'s type (integers truncate toward zero)."""
    if factor == 1:
        return
    with torch.no_grad():
        if t.dtype.is_floating_point and t.dtype not in _HALF or t.dtype.is_complex:
            t.mul_(factor)
        elif t.dtype == torch.bool:
            raise ArgumentError("prescale/postscale factors cannot scale a bool tensor")
        else:
            t.copy_(torch.trunc(t.double() * float(factor)) if not t.dtype.is_floating_point
                    else t.double() * float(factor))


def _resolve(op: str | None, average: bool | None = None) -> str:
    """The reduction op from Horovod's arguments (``average=`` is Horovod's deprecated form)."""
    if op is not None and average is not None:
        raise ArgumentError("give op= or the deprecated average=, not both")
    if op is None:
        op = Sum if average is False else Average
    if op == Adasum:
        raise NotSupported("op=hvd.Adasum is not supported by hpcsuite.train; use hvd.Average")
    if op not in ops._MPI_OP:
        raise ArgumentError(f"unknown reduction op {op!r}; use hvd.Average, Sum, Min, Max or Product")
    return op


def _no_process_set(process_set: Any) -> None:
    if process_set is not None and process_set is not global_process_set:
        raise NotSupported("process sets are not supported by hpcsuite.train: every collective runs on all "
                           "ranks (leave process_set at its default)")


class _GlobalProcessSet:
    """Horovod's ``hvd.global_process_set``: all ranks (the only process set here)."""

    process_set_id = 0

    def size(self) -> int:
        return ops.size()

    def rank(self) -> int:
        return ops.rank()

    def __repr__(self) -> str:
        return "ProcessSet(all ranks)"


global_process_set = _GlobalProcessSet()


class ProcessSet:
    """Horovod's ``hvd.ProcessSet``: out of scope, constructing one is a clear error."""

    def __init__(self, *_: Any, **__: Any) -> None:
        raise NotSupported("hvd.ProcessSet: process sets are not supported by hpcsuite.train: every collective "
                           "runs on all ranks")


def add_process_set(*_: Any, **__: Any) -> None:
    """Out of scope: a clear error (every collective runs on all ranks)."""
    raise NotSupported("hvd.add_process_set: process sets are not supported by hpcsuite.train")


remove_process_set = add_process_set


def _describe(kind: str, name: str, match: Any) -> str:
    shape = match[0] if match and isinstance(match[0], tuple) else ()
    dtype = match[1] if match and len(match) > 1 and isinstance(match[1], str) else ""
    return f"{kind}({name}{list(shape)} {dtype})".replace(" )", ")")


# -- issuing and negotiating ------------------------------------------------------------------

def _issue(kind: str, name: str | None, match: Any, local: Any, start: Callable | None,
           error: BaseException | None = None) -> Handle:
    ops._comm()
    if name is None:  # unnamed operations of a kind match in call order, as Horovod's
        number = _Queue.unnamed.get(kind, 0)
        _Queue.unnamed[kind] = number + 1
        name = f"{kind}.noname.{number}"
    if name in _Queue.queued or name in _Queue.inflight:
        raise HorovodInternalError(f"a collective named {name!r} is already in flight on rank {ops.rank()}: "
                                   "operations are matched by name, so synchronize the first or use another name")
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
        err = CollectiveMismatch(f"ranks disagree on the collective named {name!r}: " + " | ".join(
            f"rank {r}: {_describe(w[1], name, w[2])}" for r, w in zip(active, wires)))
    elif joined and kind not in JOINABLE:
        err = CollectiveMismatch(f"{kind} cannot run while ranks have joined (hvd.join): ranks "
                                 f"{', '.join(map(str, joined))} joined; {kind} {name!r} fails on every rank")
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
        finish, _ = _MIRRORS[kind](match, everyone_local)
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
            names = ", ".join(f"{n}{list(s)} {d}" for n, s, d, _ in q[2][:4]) + (" ..." if len(q[2]) > 4 else "")
            lines.append(f"rank {r}: {q[1]}({names}{'' if q[3] is None else f'; {q[3]}'})")
        elif q[0] == "wait":
            lines.append(f"rank {r}: {q[2]}")
        else:
            lines.append(f"rank {r}: join")
    why = {"mismatch": "ranks disagree on a collective",
           "deadlock": "ranks disagree on a collective (each waits for one no other rank has issued)",
           "not joinable": f"{next((q[1] for q in requests if q[0] == 'call'), '?')} cannot run while ranks "
                           "have joined (hvd.join)"}[decision]
    err = CollectiveMismatch(f"{why}: " + " | ".join(lines))
    err.collective = True  # every rank saw the same requests and raises the same error
    return err


def negotiate(kind: str, tensors: Sequence[tuple[str, torch.Tensor]], extra: Any = None) -> None:
    """A blocking collective matched in call order (gradients, objects, barrier): all ranks
    agree on it and its tensors, or all raise :class:`CollectiveMismatch`. Ranks inside
    :func:`join` take part in those of :data:`JOINABLE_CALLS`."""
    descr = tuple((n, tuple(t.shape), str(t.dtype), str(t.device)) for n, t in tensors)
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
            handle.error = _failure(requests, decision)


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
            requests, progress = _round(("join", rounds), "join (waiting for the other ranks to join)", factor=10)
            decision = _decide(requests, progress)
            if decision == "joined":
                return max(r for r, q in enumerate(requests) if q[1] == 0)  # who joined in this round
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


def _complete_all() -> None:
    """Finish every started operation (MPI must not finalize, nor free their buffers, while
    requests are pending); queued ones never reached MPI and are dropped."""
    inflight, _Queue.inflight = _Queue.inflight, {}
    _Queue.queued = {}
    for handle in inflight.values():
        if handle.state == "started" and handle.finish is not None:
            try:
                with ops._watchdog(f"{handle.kind} {handle.name!r} (pending at exit)"):
                    handle.result = handle.finish()  # synchronize() still returns it afterwards
                handle.state = "done"
            except Exception as exc:  # raised by a later synchronize(), not at shutdown
                handle.state, handle.error = "failed", exc
            handle.finish = None


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


# -- the operations: one runner per kind, used alike by active and joined ranks -----------------

def _zeros(shape: Sequence[int], dtype: str) -> torch.Tensor:
    return torch.zeros(tuple(shape), dtype=getattr(torch, dtype.removeprefix("torch.")))


def _allreduce_now(t: torch.Tensor, op: str, pre: float, post: float) -> None:
    """Blocking in-place allreduce with Horovod's scaling (``post`` already divided for averages)."""
    comm = ops._comm()
    with ops._on_host(t) as host:
        _scale(host, pre)
        ops._ready(host)
        ops._state.calls += 1
        if host.dtype in _HALF and op in (Sum, Average):
            ops._Sum16(comm, host).run()
        elif host.dtype in _HALF:  # min, max, product: exact enough in float32
            wide = host.float()
            comm.Allreduce(MPI.IN_PLACE, wide.numpy(), op=getattr(MPI, ops._MPI_OP[op]))  # comm: the reduction
            host.copy_(wide)
        else:
            comm.Allreduce(MPI.IN_PLACE, ops._host_view(host)[0], op=getattr(MPI, ops._MPI_OP[op]))  # comm
        _scale(host, post)


def _post(op: str, post: float) -> float:
    """Horovod divides averages through the postscale factor (in double precision)."""
    return post / ops.size() if op == Average else post


def _start_allreduce(t: torch.Tensor, op: str, pre: float, post: float) -> tuple[Callable, Any]:
    post = _post(op, post)
    if op in (Sum, Average) and t.dtype not in _HALF and t.dtype != torch.bool:
        _scale(t, pre)
        pending = ops.start_sum(t, "poll")  # Iallreduce

        def finish() -> torch.Tensor:
            ops.wait_sums([pending], "allreduce", buckets=False)
            _scale(t, post)
            return t
        return finish, pending.request
    # Completed at once: min/max/product, and 16-bit sums (two halves, which would otherwise
    # interleave with later collectives differently on different ranks).
    _allreduce_now(t, op, pre, post)
    return (lambda: t), None


def _mirror_allreduce(match: tuple, _: list) -> tuple[Callable, Any]:
    shape, dtype, _device, op, pre, post = match
    return _start_allreduce(_zeros(shape, dtype), op, pre, post)


def _groups(descrs: Sequence[tuple]) -> dict[tuple[str, str], list[int]]:
    """Indices of a group's tensors by (dtype, device), in first-appearance order: active
    and joined ranks fuse alike."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, dtype, device) in enumerate(descrs):
        groups.setdefault((dtype, device), []).append(i)
    return groups


def _start_grouped(tensors: list[torch.Tensor], descrs: tuple, op: str, pre: float,
                   post: float) -> tuple[Callable, Any]:
    finishes, requests = [], []
    for idx in _groups(descrs).values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in idx])
        finish, request = _start_allreduce(flat, op, pre, post)
        finishes.append((idx, flat, finish))
        requests += [request] if request is not None else []

    def done() -> list[torch.Tensor]:
        with torch.no_grad():
            for idx, flat, finish in finishes:
                finish()
                offset = 0
                for i in idx:
                    n = tensors[i].numel()
                    tensors[i].copy_(flat[offset:offset + n].view_as(tensors[i]))
                    offset += n
        return tensors
    return done, (_AllRequests(requests) if requests else None)


class _AllRequests:
    """Several requests polled as one."""

    def __init__(self, requests: list) -> None:
        self.requests = requests

    def Test(self) -> bool:  # noqa: N802 - mpi4py's name
        return bool(MPI.Request.Testall(self.requests))


def _mirror_grouped(match: tuple, _: list) -> tuple[Callable, Any]:
    descrs, op, pre, post = match
    return _start_grouped([_zeros(s, d) for s, d, _ in descrs], descrs, op, pre, post)


def _start_broadcast(t: torch.Tensor, root: int) -> tuple[Callable, Any]:
    buffer = ops._staged(t, nonblocking=True)
    request = ops._comm().Ibcast(ops._host_view(buffer)[0], root=root)  # comm: started
    pending = ops.Pending(t, buffer, request=request)

    def finish() -> torch.Tensor:
        ops.wait_sums([pending], "broadcast", buckets=False)
        return t
    return finish, request


def _mirror_broadcast(match: tuple, _: list) -> tuple[Callable, Any]:
    shape, dtype, _device, root = match
    return _start_broadcast(_zeros(shape, dtype), root)


def _rows(counts: Sequence[int], row: int) -> tuple[list[int], list[int]]:
    """Element counts and displacements of consecutive blocks of ``counts`` rows. Pure."""
    elems = [c * row for c in counts]
    return elems, [sum(elems[:i]) for i in range(len(elems))]


def _allgather_now(t: torch.Tensor, counts: list[int]) -> torch.Tensor:
    comm = ops._comm()
    with ops._on_host(t, write_back=False) as host:
        row = int(np.prod(host.shape[1:], dtype=np.int64))
        out = torch.empty((sum(counts), *host.shape[1:]), dtype=host.dtype)
        send, _ = ops._host_view(host)
        recv, _ = ops._host_view(out)
        elems, displs = _rows(counts, row)
        comm.Allgatherv(send.reshape(-1), [recv.reshape(-1), elems, displs, mpi.datatype(recv.dtype)])  # comm
    return out.to(t.device)


def _start_allgather(t: torch.Tensor, everyone: list) -> tuple[Callable, Any]:
    out = _allgather_now(t, [0 if c is None else c for c in everyone])
    return (lambda: out), None


def _mirror_allgather(match: tuple, everyone: list) -> tuple[Callable, Any]:
    rest, dtype, _device = match
    return _start_allgather(_zeros((0, *rest), dtype), everyone)


def _start_alltoall(t: torch.Tensor, everyone: list) -> tuple[Callable, Any]:
    comm = ops._comm()
    splits = everyone[comm.rank]
    received = [everyone[r][comm.rank] for r in range(comm.size)]  # every rank's splits came with the names
    with ops._on_host(t, write_back=False) as host:
        row = int(np.prod(host.shape[1:], dtype=np.int64))
        out = torch.empty((sum(received), *host.shape[1:]), dtype=host.dtype)
        send, _ = ops._host_view(host.contiguous())
        recv, _ = ops._host_view(out)
        z = mpi.datatype(recv.dtype)
        comm.Alltoallv([send.reshape(-1), *_rows(splits, row), z], [recv.reshape(-1), *_rows(received, row), z])  # comm
    result = (out.to(t.device), torch.tensor(received, dtype=torch.int32))
    return (lambda: result), None


def _reduce_rows(rows: int, n: int) -> list[int]:
    """Rows of each rank's block: the first ``rows % n`` ranks one more (Horovod's split)."""
    return [hi - lo for lo, hi in (owned(rows, n, r) for r in range(n))]


def _start_reducescatter(t: torch.Tensor, op: str, pre: float, post: float) -> tuple[Callable, Any]:
    comm = ops._comm()
    rows = _reduce_rows(int(t.shape[0]), comm.size)
    with ops._on_host(t, write_back=False) as host:
        wide = host.float() if host.dtype in _HALF else host.clone()  # MPI has no fast 16-bit sum
        _scale(wide, pre)
        ops._ready(wide)
        row = int(np.prod(host.shape[1:], dtype=np.int64))
        out = torch.empty((rows[comm.rank], *host.shape[1:]), dtype=wide.dtype, device=wide.device)
        ops._state.calls += 1
        comm.Reduce_scatter(ops._host_view(wide)[0].reshape(-1), ops._host_view(out)[0].reshape(-1),
                            [c * row for c in rows], op=MPI.SUM)  # comm: the reduction
        out = out.to(dtype=t.dtype)
        _scale(out, _post(op, post))
    result = out.to(device=t.device)
    return (lambda: result), None


def _mirror_reducescatter(match: tuple, _: list) -> tuple[Callable, Any]:
    shape, dtype, op, pre, post = match
    return _start_reducescatter(_zeros(shape, dtype), op, pre, post)


def _start_sparse(t: torch.Tensor, op: str, everyone: list) -> tuple[Callable, Any]:
    """Horovod's sparse allreduce: every rank's indices and values allgathered, summed by
    coalescing (averages divide the values by the rank count)."""
    counts = [0 if c is None else c for c in everyone]
    t = t.coalesce()
    indices = _allgather_now(t.indices().t().contiguous(), counts)
    values = _allgather_now(t.values().contiguous(), counts)
    if op == Average:
        values = values / ops.size()
    out = torch.sparse_coo_tensor(indices.t(), values, t.shape, check_invariants=True).coalesce()
    return (lambda: out), None


def _mirror_sparse(match: tuple, everyone: list) -> tuple[Callable, Any]:
    shape, dtype, op, sparse_dims = match
    empty = torch.sparse_coo_tensor(torch.zeros((sparse_dims, 0), dtype=torch.int64),
                                    _zeros((0, *shape[sparse_dims:]), dtype), tuple(shape),
                                    check_invariants=True)
    return _start_sparse(empty, op, everyone)


_MIRRORS: dict[str, Callable] = {"allreduce": _mirror_allreduce, "grouped_allreduce": _mirror_grouped,
                                 "broadcast": _mirror_broadcast, "allgather": _mirror_allgather,
                                 "reducescatter": _mirror_reducescatter, "sparse_allreduce": _mirror_sparse}


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


def _mirror_gradients(descr: tuple, op: str, compression: str, passes: int, fusion: int, overlap: str) -> None:
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
        MPI.Request.Waitall([p.start() if p else comm.Iallreduce(MPI.IN_PLACE, ops._host_view(b)[0], op=MPI.SUM)
                             for p, b in zip(plans, buckets)])  # comm: the buckets' reductions
        for p in plans:
            if p is not None:
                p.finish()
        return
    for b in buckets:
        if b.dtype in _HALF:
            ops._Sum16(comm, b).run()
        else:
            comm.Allreduce(MPI.IN_PLACE, ops._host_view(b)[0], op=MPI.SUM)  # comm: the reduction


# -- the public API ---------------------------------------------------------------------------

def _failed_or(kind: str, name: str | None, match: Any, local: Any, start: Callable | None,
               check: Callable[[], None]) -> Handle:
    """Issue an operation; one whose arguments ``check`` refuses is issued with the error,
    so that every rank learns of it when all have issued it (see the module docstring)."""
    try:
        check()
    except (ArgumentError, HorovodInternalError, NotSupported) as exc:
        return _issue(kind, name, match, None, None, exc)
    return _issue(kind, name, match, local, start)


def _tensor_check(tensor: Any) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ArgumentError(f"expected a torch.Tensor, got {type(tensor).__name__}")


def allreduce_async_(tensor: torch.Tensor, average: bool | None = None, name: str | None = None,
                     op: str | None = None, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                     process_set: Any = None) -> Handle:
    """Start reducing ``tensor`` in place over ranks; :func:`synchronize` the handle.

    ``op``: ``Average`` (default), ``Sum``, ``Min``, ``Max`` or ``Product``. As Horovod's:
    the tensor is scaled by ``prescale_factor`` before and ``postscale_factor`` after (in
    double precision, integers truncated), and an average is a sum scaled by
    ``postscale_factor / size`` - integer averages included.
    """
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
        op = _resolve(op, average)
    except (ArgumentError, NotSupported) as exc:
        return _issue("allreduce", name, None, None, None, exc)
    match = (tuple(tensor.shape), str(tensor.dtype), str(tensor.device), op, prescale_factor, postscale_factor)

    def check() -> None:
        if tensor.dtype == torch.bool and op in (Sum, Average):
            raise ArgumentError("a bool tensor has no sum or average; use op=hvd.Max/Min or convert it")

    return _failed_or("allreduce", name, match, None,
                      lambda _: _start_allreduce(tensor, op, prescale_factor, postscale_factor), check)


def allreduce_async(tensor: torch.Tensor, average: bool | None = None, name: str | None = None,
                    op: str | None = None, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                    process_set: Any = None) -> Handle:
    """Start reducing a copy of ``tensor`` (arguments as :func:`allreduce_async_`)."""
    copy = tensor.detach().clone() if isinstance(tensor, torch.Tensor) else tensor
    return allreduce_async_(copy, average, name, op, prescale_factor, postscale_factor, process_set)


def allreduce_(tensor: torch.Tensor, average: bool | None = None, name: str | None = None, op: str | None = None,
               prescale_factor: float = 1.0, postscale_factor: float = 1.0, process_set: Any = None) -> torch.Tensor:
    """Reduce ``tensor`` over ranks in place; returns it (arguments as :func:`allreduce_async_`)."""
    return synchronize(allreduce_async_(tensor, average, name, op, prescale_factor, postscale_factor, process_set))


def grouped_allreduce_async_(tensors: Sequence[torch.Tensor], average: bool | None = None, name: str | None = None,
                             op: str | None = None, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                             process_set: Any = None) -> Handle:
    """Start reducing several tensors in place, fused: one reduction per dtype and device."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        op = _resolve(op, average)
    except (ArgumentError, NotSupported) as exc:
        return _issue("grouped_allreduce", name, None, None, None, exc)
    tensors = list(tensors)
    for t in tensors:
        _tensor_check(t)
    descrs = tuple((tuple(t.shape), str(t.dtype), str(t.device)) for t in tensors)
    return _issue("grouped_allreduce", name, (descrs, op, prescale_factor, postscale_factor), None,
                  lambda _: _start_grouped(tensors, descrs, op, prescale_factor, postscale_factor))


def grouped_allreduce_async(tensors: Sequence[torch.Tensor], average: bool | None = None, name: str | None = None,
                            op: str | None = None, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                            process_set: Any = None) -> Handle:
    """Start reducing copies of several tensors (arguments as :func:`grouped_allreduce_async_`)."""
    return grouped_allreduce_async_([t.detach().clone() for t in tensors], average, name, op, prescale_factor,
                                    postscale_factor, process_set)


def grouped_allreduce_(tensors: Sequence[torch.Tensor], average: bool | None = None, name: str | None = None,
                       op: str | None = None, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                       process_set: Any = None) -> list[torch.Tensor]:
    """Reduce several tensors in place, fused; returns them."""
    return synchronize(grouped_allreduce_async_(tensors, average, name, op, prescale_factor, postscale_factor,
                                                process_set))


def broadcast_async_(tensor: torch.Tensor, root_rank: int = 0, name: str | None = None,
                     process_set: Any = None) -> Handle:
    """Start overwriting ``tensor`` with ``root_rank``'s (``Ibcast``); :func:`synchronize` the handle."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
    except (ArgumentError, NotSupported) as exc:
        return _issue("broadcast", name, None, None, None, exc)
    match = (tuple(tensor.shape), str(tensor.dtype), str(tensor.device), root_rank)

    def check() -> None:
        if not 0 <= root_rank < ops.size():
            raise ArgumentError(f"root_rank={root_rank} is not a rank of this job (0..{ops.size() - 1})")

    return _failed_or("broadcast", name, match, None, lambda _: _start_broadcast(tensor, root_rank), check)


def broadcast_async(tensor: torch.Tensor, root_rank: int = 0, name: str | None = None,
                    process_set: Any = None) -> Handle:
    """Start broadcasting into a copy of ``tensor``."""
    copy = tensor.detach().clone() if isinstance(tensor, torch.Tensor) else tensor
    return broadcast_async_(copy, root_rank, name, process_set)


def broadcast_(tensor: torch.Tensor, root_rank: int = 0, name: str | None = None,
               process_set: Any = None) -> torch.Tensor:
    """Overwrite ``tensor`` on every rank with ``root_rank``'s; returns it."""
    return synchronize(broadcast_async_(tensor, root_rank, name, process_set))


def allgather_async(tensor: torch.Tensor, name: str | None = None, process_set: Any = None) -> Handle:
    """Start concatenating every rank's ``tensor`` along dimension 0 (first dimensions may differ)."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
    except (ArgumentError, NotSupported) as exc:
        return _issue("allgather", name, None, None, None, exc)
    match = (tuple(tensor.shape[1:]), str(tensor.dtype), str(tensor.device))

    def check() -> None:
        if tensor.dim() == 0:
            raise ArgumentError("allgather needs a tensor with a first dimension to concatenate along")

    t = tensor.detach()

    def start(everyone: list) -> tuple[Callable, Any]:
        handle.counts = [0 if c is None else c for c in everyone]  # first dimensions came with the names
        return _start_allgather(t, everyone)

    handle = _failed_or("allgather", name, match, int(tensor.shape[0]) if tensor.dim() else 0, start, check)
    return handle


def allgather_counts(tensor: torch.Tensor, name: str | None = None) -> tuple[torch.Tensor, list[int]]:
    """Every rank's ``tensor`` concatenated along dimension 0, and every rank's first dimension.
    (Differentiable form: :mod:`hpcsuite.train.autograd`.)"""
    handle = allgather_async(tensor, name)
    out = synchronize(handle)
    return out, handle.counts


def grouped_allgather_async(tensors: Sequence[torch.Tensor], name: str | None = None,
                            process_set: Any = None) -> Handle:
    """Start allgathering several tensors: one operation, results in order."""
    _no_process_set(process_set)
    handles = [allgather_async(t, f"{name or 'grouped_allgather'}.{i}" if name else None)
               for i, t in enumerate(tensors)]
    return _Group(handles)


def grouped_allgather(tensors: Sequence[torch.Tensor], name: str | None = None,
                      process_set: Any = None) -> list[torch.Tensor]:
    """Every rank's tensors concatenated along dimension 0, each (not differentiable here)."""
    return synchronize(grouped_allgather_async(tensors, name, process_set))


class _Group(Handle):
    """Handles synchronized together (grouped allgather / reducescatter)."""

    def __init__(self, handles: list[Handle]) -> None:
        self.handles, self.state, self.name, self.kind = handles, "group", "group", "group"


def alltoall_async(tensor: torch.Tensor, splits: Any = None, name: str | None = None,
                   process_set: Any = None) -> Handle:
    """Start sending ``splits[r]`` rows of ``tensor`` to rank ``r``; the result is the rows
    received (in rank order) and how many came from each rank. Without ``splits`` the first
    dimension must divide evenly by the rank count (Horovod's rule)."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
    except (ArgumentError, NotSupported) as exc:
        return _issue("alltoall", name, None, None, None, exc)
    n = ops.size()
    rows = int(tensor.shape[0]) if tensor.dim() else 0
    given = splits
    if splits is not None:
        splits = [int(s) for s in (splits.tolist() if isinstance(splits, torch.Tensor) else splits)]
    match = (tuple(tensor.shape[1:]), str(tensor.dtype))

    def check() -> None:
        if tensor.dim() == 0:
            raise ArgumentError("alltoall needs a tensor with a first dimension to split")
        if given is None and rows % n:
            raise ArgumentError(f"alltoall without splits needs a first dimension divisible by the {n} ranks; "
                                f"this rank has {rows} rows: give splits= (rows per destination rank)")
        if splits is not None and (len(splits) != n or any(s < 0 for s in splits) or sum(splits) != rows):
            raise ArgumentError(f"alltoall splits {splits} must be {n} non-negative row counts adding up to the "
                                f"first dimension, {rows}")

    mine = splits if splits is not None else [rows // n] * n
    t = tensor.detach()
    return _failed_or("alltoall", name, match, mine, lambda everyone: _start_alltoall(t, everyone), check)


def alltoall_splits(tensor: torch.Tensor, splits: Any = None, name: str | None = None) -> tuple[torch.Tensor, list[int]]:
    """Rows received and how many came from each rank (blocking; see :func:`alltoall_async`)."""
    out, received = synchronize(alltoall_async(tensor, splits, name))
    return out, received.tolist()


def _rs_op(op: str | None) -> str:
    op = _resolve(op)
    if op not in (Sum, Average):
        raise ArgumentError(f"reducescatter supports hvd.Sum and hvd.Average, not {op!r}")
    return op


def reducescatter_async(tensor: torch.Tensor, name: str | None = None, op: str | None = Average,
                        prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                        process_set: Any = None) -> Handle:
    """Start reducing ``tensor`` over ranks (``Sum`` or ``Average``, scaled as
    :func:`allreduce_async_`); the result is this rank's block of rows (the first dimension
    split evenly, the first ranks one more)."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
        op = _rs_op(op)
    except (ArgumentError, NotSupported) as exc:
        return _issue("reducescatter", name, None, None, None, exc)
    match = (tuple(tensor.shape), str(tensor.dtype), op, prescale_factor, postscale_factor)

    def check() -> None:
        if tensor.dim() == 0:
            raise ArgumentError("reducescatter needs a tensor with a first dimension to split")

    t = tensor.detach()
    return _failed_or("reducescatter", name, match, None,
                      lambda _: _start_reducescatter(t, op, prescale_factor, postscale_factor), check)


def reducescatter_(tensor: torch.Tensor, op: str = Average, name: str | None = None, prescale_factor: float = 1.0,
                   postscale_factor: float = 1.0) -> torch.Tensor:
    """This rank's block of rows of the reduced ``tensor`` (blocking)."""
    return synchronize(reducescatter_async(tensor, name, op, prescale_factor, postscale_factor))


def grouped_reducescatter_async(tensors: Sequence[torch.Tensor], name: str | None = None, op: str | None = Average,
                                prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                                process_set: Any = None) -> Handle:
    """Start reducescattering several tensors: results in order."""
    _no_process_set(process_set)
    return _Group([reducescatter_async(t, f"{name}.{i}" if name else None, op, prescale_factor, postscale_factor)
                   for i, t in enumerate(tensors)])


def grouped_reducescatter(tensors: Sequence[torch.Tensor], name: str | None = None, op: str | None = Average,
                          prescale_factor: float = 1.0, postscale_factor: float = 1.0,
                          process_set: Any = None) -> list[torch.Tensor]:
    """This rank's block of each reduced tensor (not differentiable here)."""
    return synchronize(grouped_reducescatter_async(tensors, name, op, prescale_factor, postscale_factor,
                                                   process_set))


def sparse_allreduce_async(tensor: torch.Tensor, name: str | None = None, op: str | None = Average,
                           process_set: Any = None) -> Handle:
    """Start Horovod's sparse allreduce of a sparse COO tensor: every rank's indices and values
    allgathered and coalesced (``Average`` divides the values by the rank count)."""
    _no_process_set(process_set)
    _tensor_check(tensor)
    op = _resolve(op)
    if op not in (Sum, Average):
        raise ArgumentError(f"sparse_allreduce supports hvd.Sum and hvd.Average, not {op!r}")
    if not tensor.is_sparse:
        raise ArgumentError("sparse_allreduce_async needs a sparse COO tensor; use allreduce for dense ones")
    t = tensor.detach().coalesce()
    match = (tuple(t.shape), str(t.dtype), op, t.sparse_dim())
    return _issue("sparse_allreduce", name, match, int(t._nnz()),
                  lambda everyone: _start_sparse(t, op, everyone))


def broadcast_object(obj: Any, root_rank: int = 0, name: str | None = None, process_set: Any = None) -> Any:
    """``root_rank``'s picklable object on every rank (objects travel in memory, never from files)."""
    _no_process_set(process_set)
    negotiate("broadcast_object", [], (name, root_rank))
    with ops._watchdog(f"broadcast_object {name or ''}"):
        return ops._comm().bcast(obj, root=root_rank)  # comm: pickled object


def allgather_object(obj: Any, name: str | None = None, process_set: Any = None) -> list[Any]:
    """Every rank's picklable object, in rank order."""
    _no_process_set(process_set)
    negotiate("allgather_object", [], name)
    with ops._watchdog(f"allgather_object {name or ''}"):
        return ops._comm().allgather(obj)  # comm: pickled objects


def barrier(process_set: Any = None) -> None:
    """Wait for every rank."""
    _no_process_set(process_set)
    negotiate("barrier", [])
    with ops._watchdog("barrier"):
        ops._comm().Barrier()  # comm: barrier

