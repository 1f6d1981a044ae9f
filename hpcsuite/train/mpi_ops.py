"""Horovod's public collective API (``horovod.torch.mpi_ops``): argument checks, Horovod's
scaling, and one *runner* per operation kind, used alike by the ranks that issue the
operation and by ranks inside ``join`` (which run it on zeros). How ranks agree on
operations - by name, in negotiation rounds, failures on every rank - is
:mod:`hpcsuite.train.negotiation`; staging, the 16-bit sum and the overlap engine are
:mod:`hpcsuite.train.ops`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from hpcsuite.train import ops, runners
from hpcsuite.train.exceptions import (
    ArgumentError,
    HorovodInternalError,
    InvalidArgument,
    NotSupported,
)
from hpcsuite.train.negotiation import (  # noqa: F401 - Horovod's names, re-exported
    JOINABLE,
    MIRRORS,
    Handle,
    _Group,
    _issue,
    _zeros,
    join,
    negotiate,
    poll,
    shutdown,
    synchronize,
)
from hpcsuite.train.ops import Adasum, Average, Sum

# -- Horovod's scaling and argument checks ----------------------------------------------------


def _resolve(op: str | None, average: bool | None = None) -> str:
    """The reduction op from Horovod's arguments (``average=`` is Horovod's deprecated form)."""
    if op is not None and average is not None:
        raise ArgumentError("give op= or the deprecated average=, not both")
    if op is None:
        op = Sum if average is False else Average
    if op == Adasum:
        raise NotSupported("op=hvd.Adasum is not supported by hpcsuite.train; use hvd.Average")
    if op not in ops._MPI_OP:
        raise ArgumentError(
            f"unknown reduction op {op!r}; use hvd.Average, Sum, Min, Max or Product"
        )
    return op


def _no_process_set(process_set: Any) -> None:
    if process_set is not None and process_set is not global_process_set:
        raise NotSupported(
            "process sets are not supported by hpcsuite.train: every collective runs on all "
            "ranks (leave process_set at its default)"
        )


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
        raise NotSupported(
            "hvd.ProcessSet: process sets are not supported by hpcsuite.train: every collective "
            "runs on all ranks"
        )


def add_process_set(*_: Any, **__: Any) -> None:
    """Out of scope: a clear error (every collective runs on all ranks)."""
    raise NotSupported("hvd.add_process_set: process sets are not supported by hpcsuite.train")


remove_process_set = add_process_set


# -- the public API ---------------------------------------------------------------------------


def _failed_or(
    kind: str,
    name: str | None,
    match: Any,
    local: Any,
    start: Callable | None,
    check: Callable[[], None],
) -> Handle:
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


def allreduce_async_(
    tensor: torch.Tensor,
    average: bool | None = None,
    name: str | None = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> Handle:
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
    match = (
        tuple(tensor.shape),
        str(tensor.dtype),
        tensor.device.type,
        op,
        prescale_factor,
        postscale_factor,
    )

    def check() -> None:
        if tensor.dtype == torch.bool and op in (Sum, Average):
            raise InvalidArgument(
                "a bool tensor has no sum or average; use op=hvd.Max/Min or convert it"
            )

    return _failed_or(
        "allreduce",
        name,
        match,
        None,
        lambda _: runners.start_allreduce(tensor, op, prescale_factor, postscale_factor),
        check,
    )


def allreduce_async(
    tensor: torch.Tensor,
    average: bool | None = None,
    name: str | None = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> Handle:
    """Start reducing a copy of ``tensor`` (arguments as :func:`allreduce_async_`)."""
    copy = tensor.detach().clone() if isinstance(tensor, torch.Tensor) else tensor
    return allreduce_async_(copy, average, name, op, prescale_factor, postscale_factor, process_set)


def allreduce_(
    tensor: torch.Tensor,
    average: bool | None = None,
    name: str | None = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> torch.Tensor:
    """Reduce ``tensor`` over ranks in place; returns it (arguments as :func:`allreduce_async_`)."""
    return synchronize(
        allreduce_async_(tensor, average, name, op, prescale_factor, postscale_factor, process_set)
    )


def grouped_allreduce_async_(
    tensors: Sequence[torch.Tensor],
    average: bool | None = None,
    name: str | None = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> Handle:
    """Start reducing several tensors in place, fused: one reduction per dtype and device."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        op = _resolve(op, average)
    except (ArgumentError, NotSupported) as exc:
        return _issue("grouped_allreduce", name, None, None, None, exc)
    tensors = list(tensors)
    for t in tensors:
        _tensor_check(t)
    descrs = tuple((tuple(t.shape), str(t.dtype), t.device.type) for t in tensors)
    return _issue(
        "grouped_allreduce",
        name,
        (descrs, op, prescale_factor, postscale_factor),
        None,
        lambda _: runners.start_grouped(tensors, descrs, op, prescale_factor, postscale_factor),
    )


def grouped_allreduce_async(
    tensors: Sequence[torch.Tensor],
    average: bool | None = None,
    name: str | None = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> Handle:
    """Start reducing copies of several tensors (arguments as :func:`grouped_allreduce_async_`)."""
    return grouped_allreduce_async_(
        [t.detach().clone() for t in tensors],
        average,
        name,
        op,
        prescale_factor,
        postscale_factor,
        process_set,
    )


def grouped_allreduce_(
    tensors: Sequence[torch.Tensor],
    average: bool | None = None,
    name: str | None = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> list[torch.Tensor]:
    """Reduce several tensors in place, fused; returns them."""
    return synchronize(
        grouped_allreduce_async_(
            tensors, average, name, op, prescale_factor, postscale_factor, process_set
        )
    )


def broadcast_async_(
    tensor: torch.Tensor, root_rank: int = 0, name: str | None = None, process_set: Any = None
) -> Handle:
    """Start overwriting ``tensor`` with ``root_rank``'s (``Ibcast``); :func:`synchronize` it."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
    except (ArgumentError, NotSupported) as exc:
        return _issue("broadcast", name, None, None, None, exc)
    match = (tuple(tensor.shape), str(tensor.dtype), tensor.device.type, root_rank)

    def check() -> None:
        if not 0 <= root_rank < ops.size():
            raise InvalidArgument(
                f"root_rank={root_rank} is not a rank of this job (0..{ops.size() - 1})"
            )

    return _failed_or(
        "broadcast", name, match, None, lambda _: runners.start_broadcast(tensor, root_rank), check
    )


def broadcast_async(
    tensor: torch.Tensor, root_rank: int = 0, name: str | None = None, process_set: Any = None
) -> Handle:
    """Start broadcasting into a copy of ``tensor``."""
    copy = tensor.detach().clone() if isinstance(tensor, torch.Tensor) else tensor
    return broadcast_async_(copy, root_rank, name, process_set)


def broadcast_(
    tensor: torch.Tensor, root_rank: int = 0, name: str | None = None, process_set: Any = None
) -> torch.Tensor:
    """Overwrite ``tensor`` on every rank with ``root_rank``'s; returns it."""
    return synchronize(broadcast_async_(tensor, root_rank, name, process_set))


def allgather_async(
    tensor: torch.Tensor, name: str | None = None, process_set: Any = None
) -> Handle:
    """Start concatenating every rank's ``tensor`` along dimension 0 (whose sizes may differ)."""
    try:  # refused arguments fail the operation on every rank (module docstring)
        _no_process_set(process_set)
        _tensor_check(tensor)
    except (ArgumentError, NotSupported) as exc:
        return _issue("allgather", name, None, None, None, exc)
    match = (tuple(tensor.shape[1:]), str(tensor.dtype), tensor.device.type)

    def check() -> None:
        if tensor.dim() == 0:
            raise InvalidArgument(
                "allgather needs a tensor with a first dimension to concatenate along"
            )

    t = tensor.detach()

    def start(everyone: list) -> tuple[Callable, Any]:
        handle.counts = [
            0 if c is None else c for c in everyone
        ]  # first dimensions came with the names
        return runners.start_allgather(t, everyone)

    handle = _failed_or(
        "allgather", name, match, int(tensor.shape[0]) if tensor.dim() else 0, start, check
    )
    return handle


def allgather_counts(
    tensor: torch.Tensor, name: str | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Every rank's ``tensor`` concatenated along dimension 0, and every rank's first dimension.
    (Differentiable form: :mod:`hpcsuite.train.autograd`.)"""
    handle = allgather_async(tensor, name)
    out = synchronize(handle)
    return out, handle.counts


def grouped_allgather_async(
    tensors: Sequence[torch.Tensor], name: str | None = None, process_set: Any = None
) -> Handle:
    """Start allgathering several tensors: one operation, results in order."""
    _no_process_set(process_set)
    handles = [
        allgather_async(t, f"{name or 'grouped_allgather'}.{i}" if name else None)
        for i, t in enumerate(tensors)
    ]
    return _Group(handles)


def grouped_allgather(
    tensors: Sequence[torch.Tensor], name: str | None = None, process_set: Any = None
) -> list[torch.Tensor]:
    """Every rank's tensors concatenated along dimension 0, each (not differentiable here)."""
    return synchronize(grouped_allgather_async(tensors, name, process_set))


def alltoall_async(
    tensor: torch.Tensor, splits: Any = None, name: str | None = None, process_set: Any = None
) -> Handle:
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
            raise InvalidArgument("alltoall needs a tensor with a first dimension to split")
        if given is None and rows % n:
            raise InvalidArgument(
                f"alltoall without splits needs a first dimension divisible by the {n} ranks; "
                f"this rank has {rows} rows: give splits= (rows per destination rank)"
            )
        if splits is not None and (
            len(splits) != n or any(s < 0 for s in splits) or sum(splits) != rows
        ):
            raise InvalidArgument(
                f"alltoall splits {splits} must be {n} non-negative row counts adding up to the "
                f"first dimension, {rows}"
            )

    mine = splits if splits is not None else [rows // n] * n
    t = tensor.detach()
    return _failed_or(
        "alltoall", name, match, mine, lambda everyone: runners.start_alltoall(t, everyone), check
    )


def alltoall_splits(
    tensor: torch.Tensor, splits: Any = None, name: str | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Rows received and how many came from each rank (blocking; see :func:`alltoall_async`)."""
    out, received = synchronize(alltoall_async(tensor, splits, name))
    return out, received.tolist()


def _rs_op(op: str | None) -> str:
    op = _resolve(op)
    if op not in (Sum, Average):
        raise ArgumentError(f"reducescatter supports hvd.Sum and hvd.Average, not {op!r}")
    return op


def reducescatter_async(
    tensor: torch.Tensor,
    name: str | None = None,
    op: str | None = Average,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> Handle:
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
            raise InvalidArgument("reducescatter needs a tensor with a first dimension to split")

    t = tensor.detach()
    return _failed_or(
        "reducescatter",
        name,
        match,
        None,
        lambda _: runners.start_reducescatter(t, op, prescale_factor, postscale_factor),
        check,
    )


def reducescatter_(
    tensor: torch.Tensor,
    op: str = Average,
    name: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
) -> torch.Tensor:
    """This rank's block of rows of the reduced ``tensor`` (blocking)."""
    return synchronize(reducescatter_async(tensor, name, op, prescale_factor, postscale_factor))


def grouped_reducescatter_async(
    tensors: Sequence[torch.Tensor],
    name: str | None = None,
    op: str | None = Average,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> Handle:
    """Start reducescattering several tensors: results in order."""
    _no_process_set(process_set)
    return _Group(
        [
            reducescatter_async(
                t, f"{name}.{i}" if name else None, op, prescale_factor, postscale_factor
            )
            for i, t in enumerate(tensors)
        ]
    )


def grouped_reducescatter(
    tensors: Sequence[torch.Tensor],
    name: str | None = None,
    op: str | None = Average,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
) -> list[torch.Tensor]:
    """This rank's block of each reduced tensor (not differentiable here)."""
    return synchronize(
        grouped_reducescatter_async(
            tensors, name, op, prescale_factor, postscale_factor, process_set
        )
    )


def sparse_allreduce_async(
    tensor: torch.Tensor, name: str | None = None, op: str | None = Average, process_set: Any = None
) -> Handle:
    """Start Horovod's sparse allreduce of a sparse COO tensor: every rank's indices and values
    allgathered and coalesced (``Average`` divides the values by the rank count)."""
    _no_process_set(process_set)
    _tensor_check(tensor)
    op = _resolve(op)
    if op not in (Sum, Average):
        raise ArgumentError(f"sparse_allreduce supports hvd.Sum and hvd.Average, not {op!r}")
    if not tensor.is_sparse:
        raise ArgumentError(
            "sparse_allreduce_async needs a sparse COO tensor; use allreduce for dense ones"
        )
    t = tensor.detach().coalesce()
    match = (tuple(t.shape), str(t.dtype), op, t.sparse_dim())
    return _issue(
        "sparse_allreduce",
        name,
        match,
        int(t._nnz()),
        lambda everyone: runners.start_sparse(t, op, everyone),
    )


def broadcast_object(
    obj: Any, root_rank: int = 0, name: str | None = None, process_set: Any = None
) -> Any:
    """``root_rank``'s picklable object on every rank (it travels in memory, never in files)."""
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
