"""The runners of Horovod's collectives: one per operation kind, over MPI.

A runner starts an operation on a tensor and returns ``(finish, request)``: the request
MPI completes, and what turns its result into Horovod's (scaling, copies back). The
ranks that issue an operation and the ranks inside ``join`` (which mirror it on zeros,
:data:`~hpcsuite.train.negotiation.MIRRORS`) run the same runner, so both sides always
make the same MPI calls. The public API that checks arguments and negotiates is
:mod:`hpcsuite.train.mpi_ops`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from hpcsuite.core import mpi
from hpcsuite.core.mpi import MPI
from hpcsuite.core.partition import owned
from hpcsuite.train import ops
from hpcsuite.train.exceptions import (
    ArgumentError,
)
from hpcsuite.train.negotiation import MIRRORS, _zeros
from hpcsuite.train.ops import _HALF, Average, Sum


def scale(t: torch.Tensor, factor: float) -> None:
    """``t *= factor`` as Horovod's ScaleBuffer: the product in double precision, converted
    back to ``t``'s type (integers truncate toward zero)."""
    if factor == 1:
        return
    with torch.no_grad():
        if t.dtype in (torch.float64, torch.complex128) or t.dtype.is_complex:
            t.mul_(factor)
        elif t.dtype == torch.bool:
            raise ArgumentError("prescale/postscale factors cannot scale a bool tensor")
        elif t.dtype.is_floating_point:  # float32/16: rounded once from the double product
            t.copy_(t.double() * float(factor))
        else:
            t.copy_(torch.trunc(t.double() * float(factor)))


def _allreduce_now(t: torch.Tensor, op: str, pre: float, post: float) -> None:
    """Blocking in-place allreduce, Horovod's scaling (``post`` already divided for averages)."""
    comm = ops._comm()
    with ops._on_host(t) as host:
        scale(host, pre)
        ops._ready(host)
        ops._state.calls += 1
        if host.dtype in _HALF and op in (Sum, Average):
            ops._Sum16(comm, host).run()
        elif host.dtype in _HALF:  # min, max, product: exact enough in float32
            wide = host.float()
            comm.Allreduce(
                MPI.IN_PLACE, wide.numpy(), op=getattr(MPI, ops._MPI_OP[op])
            )  # comm: the reduction
            host.copy_(wide)
        else:
            comm.Allreduce(
                MPI.IN_PLACE, ops._host_view(host)[0], op=getattr(MPI, ops._MPI_OP[op])
            )  # comm
        scale(host, post)


def _post(op: str, post: float) -> float:
    """Horovod divides averages through the postscale factor (in double precision)."""
    return post / ops.size() if op == Average else post


def start_allreduce(t: torch.Tensor, op: str, pre: float, post: float) -> tuple[Callable, Any]:
    post = _post(op, post)
    if op in (Sum, Average) and t.dtype not in _HALF and t.dtype != torch.bool:
        scale(t, pre)
        pending = ops.start_sum(t, "poll")  # Iallreduce

        def finish() -> torch.Tensor:
            ops.wait_sums([pending], "allreduce", buckets=False)
            scale(t, post)
            return t

        return finish, pending.request
    # Completed at once: min/max/product, and 16-bit sums (two halves, which would otherwise
    # interleave with later collectives differently on different ranks).
    _allreduce_now(t, op, pre, post)
    return (lambda: t), None


def _mirror_allreduce(match: tuple, _: list) -> tuple[Callable, Any]:
    shape, dtype, _device, op, pre, post = match
    return start_allreduce(_zeros(shape, dtype), op, pre, post)


def groups(descrs: Sequence[tuple]) -> dict[tuple[str, str], list[int]]:
    """Indices of a group's tensors by (dtype, device), in first-appearance order: active
    and joined ranks fuse alike."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, dtype, device) in enumerate(descrs):
        groups.setdefault((dtype, device), []).append(i)
    return groups


def start_grouped(
    tensors: list[torch.Tensor], descrs: tuple, op: str, pre: float, post: float
) -> tuple[Callable, Any]:
    finishes, requests = [], []
    for idx in groups(descrs).values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in idx])
        finish, request = start_allreduce(flat, op, pre, post)
        finishes.append((idx, flat, finish))
        requests += [request] if request is not None else []

    def done() -> list[torch.Tensor]:
        with torch.no_grad():
            for idx, flat, finish in finishes:
                finish()
                offset = 0
                for i in idx:
                    n = tensors[i].numel()
                    tensors[i].copy_(flat[offset : offset + n].view_as(tensors[i]))
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
    return start_grouped([_zeros(s, d) for s, d, _ in descrs], descrs, op, pre, post)


def start_broadcast(t: torch.Tensor, root: int) -> tuple[Callable, Any]:
    buffer = ops._staged(t, nonblocking=True)
    request = ops._comm().Ibcast(ops._host_view(buffer)[0], root=root)  # comm: started
    pending = ops.Pending(t, buffer, request=request)

    def finish() -> torch.Tensor:
        ops.wait_sums([pending], "broadcast", buckets=False)
        return t

    return finish, request


def _mirror_broadcast(match: tuple, _: list) -> tuple[Callable, Any]:
    shape, dtype, _device, root = match
    return start_broadcast(_zeros(shape, dtype), root)


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
        comm.Allgatherv(
            send.reshape(-1), [recv.reshape(-1), elems, displs, mpi.datatype(recv.dtype)]
        )  # comm
    return out.to(t.device)


def start_allgather(t: torch.Tensor, everyone: list) -> tuple[Callable, Any]:
    out = _allgather_now(t, [0 if c is None else c for c in everyone])
    return (lambda: out), None


def _mirror_allgather(match: tuple, everyone: list) -> tuple[Callable, Any]:
    rest, dtype, _device = match
    return start_allgather(_zeros((0, *rest), dtype), everyone)


def start_alltoall(t: torch.Tensor, everyone: list) -> tuple[Callable, Any]:
    comm = ops._comm()
    splits = everyone[comm.rank]
    received = [
        everyone[r][comm.rank] for r in range(comm.size)
    ]  # every rank's splits came with the names
    with ops._on_host(t, write_back=False) as host:
        row = int(np.prod(host.shape[1:], dtype=np.int64))
        out = torch.empty((sum(received), *host.shape[1:]), dtype=host.dtype)
        send, _ = ops._host_view(host.contiguous())
        recv, _ = ops._host_view(out)
        z = mpi.datatype(recv.dtype)
        comm.Alltoallv(
            [send.reshape(-1), *_rows(splits, row), z], [recv.reshape(-1), *_rows(received, row), z]
        )  # comm
    result = (out.to(t.device), torch.tensor(received, dtype=torch.int32))
    return (lambda: result), None


def _reduce_rows(rows: int, n: int) -> list[int]:
    """Rows of each rank's block: the first ``rows % n`` ranks one more (Horovod's split)."""
    return [hi - lo for lo, hi in (owned(rows, n, r) for r in range(n))]


def start_reducescatter(t: torch.Tensor, op: str, pre: float, post: float) -> tuple[Callable, Any]:
    comm = ops._comm()
    rows = _reduce_rows(int(t.shape[0]), comm.size)
    with ops._on_host(t, write_back=False) as host:
        wide = host.float() if host.dtype in _HALF else host.clone()  # MPI has no fast 16-bit sum
        scale(wide, pre)
        ops._ready(wide)
        row = int(np.prod(host.shape[1:], dtype=np.int64))
        out = torch.empty((rows[comm.rank], *host.shape[1:]), dtype=wide.dtype, device=wide.device)
        ops._state.calls += 1
        comm.Reduce_scatter(
            ops._host_view(wide)[0].reshape(-1),
            ops._host_view(out)[0].reshape(-1),
            [c * row for c in rows],
            op=MPI.SUM,
        )  # comm: the reduction
        out = out.to(dtype=t.dtype)
        scale(out, _post(op, post))
    result = out.to(device=t.device)
    return (lambda: result), None


def _mirror_reducescatter(match: tuple, _: list) -> tuple[Callable, Any]:
    shape, dtype, op, pre, post = match
    return start_reducescatter(_zeros(shape, dtype), op, pre, post)


def start_sparse(t: torch.Tensor, op: str, everyone: list) -> tuple[Callable, Any]:
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
    empty = torch.sparse_coo_tensor(
        torch.zeros((sparse_dims, 0), dtype=torch.int64),
        _zeros((0, *shape[sparse_dims:]), dtype),
        tuple(shape),
        check_invariants=True,
    )
    return start_sparse(empty, op, everyone)


MIRRORS.update(
    {
        "allreduce": _mirror_allreduce,
        "grouped_allreduce": _mirror_grouped,
        "broadcast": _mirror_broadcast,
        "allgather": _mirror_allgather,
        "reducescatter": _mirror_reducescatter,
        "sparse_allreduce": _mirror_sparse,
    }
)
