"""Collective operations on torch tensors over MPI: Horovod's ``mpi_ops``, in Python.

With ``hpcsuite.core.mpi``, the only place that imports mpi4py. Every collective is
*negotiated*: before the data moves, all ranks exchange one small descriptor (which
operation, which tensor names, shapes and dtypes). If the ranks disagree - one rank
reduces a tensor the others never reduce, or shapes differ - every rank raises the
same :class:`CollectiveMismatch` naming the ranks and tensors involved, instead of
the silent hang Horovod users know. A rank that waits longer than
``HPCSUITE_TRAIN_TIMEOUT`` seconds (default 60) in one collective - its peers are gone
or stuck elsewhere - prints what it waited for and aborts the job.

CPU tensors move in place through their NumPy views; CUDA tensors go to MPI directly
when it is CUDA-aware (after the stream is synchronized) and through host copies
otherwise. float16 and bfloat16 are reduced by a user-defined MPI operation that
adds in float32.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from hpcsuite.core import mpi
from hpcsuite.core.errors import HpcsuiteError
from hpcsuite.core.mpi import MPI

Average = "average"
Sum = "sum"
TIMEOUT_ENV = "HPCSUITE_TRAIN_TIMEOUT"


class CollectiveMismatch(HpcsuiteError):
    """Ranks called different collectives, or the same one on different tensors."""


class _State:
    comm: Any = None
    local: Any = None
    ops: dict[str, Any] = {}
    calls: int = 0  # reductions issued (the fusion target counts them)


_state = _State()


def init(comm: Any = None) -> None:
    """Start (idempotent): a private duplicate of ``comm`` (default COMM_WORLD) carries training traffic."""
    if _state.comm is not None:
        return
    base = comm if comm is not None else mpi.world()
    _state.comm = base.Dup()
    _state.local = mpi.node_comm(_state.comm)


def shutdown() -> None:
    """Release the communicators (``init`` may be called again)."""
    if _state.comm is not None:
        _state.comm.Free()
    _state.comm = _state.local = None


def _comm() -> Any:
    if _state.comm is None:
        raise HpcsuiteError("hpcsuite.train is not initialized: call hvd.init() first")
    return _state.comm


def is_initialized() -> bool:
    """Whether :func:`init` has run."""
    return _state.comm is not None


def rank() -> int:
    """This process's rank."""
    return _comm().rank


def size() -> int:
    """Number of ranks."""
    return _comm().size


def local_rank() -> int:
    """Rank within the node (selects the GPU)."""
    _comm()
    return _state.local.rank


def local_size() -> int:
    """Ranks on this node."""
    _comm()
    return _state.local.size


def bind_device(kind: str) -> torch.device:
    """``"cpu"``, or ``"cuda"``: the GPU of this rank's node-local rank, made current."""
    if kind != "cuda":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise HpcsuiteError("--device cuda: no CUDA device visible to this process; use --device cpu")
    device = torch.device("cuda", local_rank() % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


def reduction_calls() -> int:
    """MPI reduction calls issued so far (for the fusion benchmark and tests)."""
    return _state.calls


# -- safety: negotiation and the stall watchdog -----------------------------------------------

def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, "60"))
    except ValueError:
        return 60.0


@contextmanager
def _watchdog(what: str):
    """Abort the job if the body blocks for longer than the timeout."""
    limit = _timeout()
    comm = _comm()

    def fire() -> None:
        sys.stderr.write(f"[rank {comm.rank}] hpcsuite.train: no progress for {limit:g} s in {what}; "
                         f"the other ranks never joined (stopped, or stuck elsewhere). Aborting the job; "
                         f"raise {TIMEOUT_ENV} if this step is just slow.\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def negotiate(kind: str, tensors: Sequence[tuple[str, torch.Tensor]], extra: Any = None) -> None:
    """All ranks agree on the collective and its tensors, or all raise :class:`CollectiveMismatch`."""
    comm = _comm()
    mine = (kind, tuple((n, tuple(t.shape), str(t.dtype)) for n, t in tensors), extra)
    with _watchdog(f"{kind} of {', '.join(repr(n) for n, _ in tensors[:3]) or 'nothing'}"):
        everyone = comm.allgather(mine)  # comm: descriptors (small)
    if all(d == everyone[0] for d in everyone):
        return
    lines = []
    for r, (k, descr, ex) in enumerate(everyone):
        names = ", ".join(f"{n}{list(s)} {d}" for n, s, d in descr[:4]) + (" ..." if len(descr) > 4 else "")
        lines.append(f"rank {r}: {k}({names}{'' if ex is None else f'; {ex}'})")
    err = CollectiveMismatch("ranks disagree on a collective: " + " | ".join(lines))
    err.collective = True  # every rank saw the same descriptors and raises the same error
    raise err


# -- moving tensor data ------------------------------------------------------------------------

_HALF = {torch.float16: np.float16, torch.bfloat16: None}


def _add16(kind: str):
    """A commutative MPI op that adds 16-bit floats (as uint16 words) in float32."""
    def to32(words: np.ndarray) -> np.ndarray:
        if kind == "f16":
            return words.view(np.float16).astype(np.float32)
        return (words.astype(np.uint32) << 16).view(np.float32)

    def to16(values: np.ndarray) -> np.ndarray:
        if kind == "f16":
            return values.astype(np.float16).view(np.uint16)
        bits = values.view(np.uint32)
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)  # round to nearest even
        return (rounded >> 16).astype(np.uint16)

    def op(inbuf: Any, outbuf: Any, datatype: Any) -> None:
        a = np.frombuffer(inbuf, dtype=np.uint16)
        b = np.frombuffer(outbuf, dtype=np.uint16)
        b[...] = to16(to32(a) + to32(b))

    return op


def _mpi_op(dtype: torch.dtype, op: str) -> Any:
    if dtype in (torch.float16, torch.bfloat16):
        key = "f16" if dtype == torch.float16 else "bf16"
        if key not in _state.ops:
            _state.ops[key] = MPI.Op.Create(_add16(key), commute=True)
        return _state.ops[key]
    return MPI.SUM


def _host_view(t: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """A NumPy view of a contiguous CPU tensor (16-bit floats as uint16 words), and the tensor."""
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().view(np.uint16), t
    return t.numpy(), t


@contextmanager
def _on_host(tensor: torch.Tensor, write_back: bool = True):
    """Yield a contiguous CPU tensor holding ``tensor``'s data; copy results back if needed."""
    if tensor.is_cuda:
        torch.cuda.current_stream(tensor.device).synchronize()  # queued kernels finish first
        host = tensor.detach().to("cpu", copy=True).contiguous()
        yield host
        if write_back:
            tensor.copy_(host.to(tensor.device))
    elif tensor.is_contiguous():
        yield tensor.detach()
    else:
        host = tensor.detach().contiguous()
        yield host
        if write_back:
            tensor.copy_(host)


def _allreduce_inplace(t: torch.Tensor, op: str) -> None:
    comm = _comm()
    with _on_host(t) as host:
        buf, _ = _host_view(host)
        _state.calls += 1
        comm.Allreduce(MPI.IN_PLACE, buf, op=_mpi_op(t.dtype, op))  # comm: the reduction
        if op == Average:
            host.div_(comm.size)


def allreduce_(tensor: torch.Tensor, op: str = Average, name: str | None = None) -> torch.Tensor:
    """Reduce ``tensor`` over ranks in place (``Average`` or ``Sum``); returns it."""
    if op not in (Average, Sum):
        raise HpcsuiteError(f"unknown reduction op {op!r}; use hvd.Average or hvd.Sum")
    negotiate("allreduce", [(name or "tensor", tensor)], op)
    with _watchdog(f"allreduce of {name or 'a tensor'!r}"):
        _allreduce_inplace(tensor, op)
    return tensor


def allreduce(tensor: torch.Tensor, op: str = Average, name: str | None = None) -> torch.Tensor:
    """Reduce a copy of ``tensor`` over ranks."""
    return allreduce_(tensor.detach().clone(), op, name)


class Handle:
    """An outstanding reduction (the result is ready after :func:`synchronize`)."""

    def __init__(self, tensor: torch.Tensor, host: torch.Tensor, request: Any, op: str, name: str) -> None:
        self.tensor, self.host, self.request, self.op, self.name = tensor, host, request, op, name


def allreduce_async_(tensor: torch.Tensor, op: str = Average, name: str | None = None) -> Handle:
    """Start reducing ``tensor`` in place (``Iallreduce``); finish with :func:`synchronize`."""
    if op not in (Average, Sum):
        raise HpcsuiteError(f"unknown reduction op {op!r}; use hvd.Average or hvd.Sum")
    negotiate("allreduce", [(name or "tensor", tensor)], op)
    if tensor.is_cuda:
        torch.cuda.current_stream(tensor.device).synchronize()
        host = tensor.detach().to("cpu", copy=True)
    else:
        host = tensor.detach() if tensor.is_contiguous() else tensor.detach().contiguous()
    buf, _ = _host_view(host)
    _state.calls += 1
    request = _comm().Iallreduce(MPI.IN_PLACE, buf, op=_mpi_op(tensor.dtype, op))  # comm: started
    return Handle(tensor, host, request, op, name or "tensor")


def allreduce_async(tensor: torch.Tensor, op: str = Average, name: str | None = None) -> Handle:
    """Start reducing a copy of ``tensor``."""
    return allreduce_async_(tensor.detach().clone(), op, name)


def synchronize(handle: Handle) -> torch.Tensor:
    """Wait for ``handle``; returns the reduced tensor."""
    with _watchdog(f"allreduce of {handle.name!r}"):
        handle.request.Wait()
    if handle.op == Average:
        handle.host.div_(_comm().size)
    if handle.host.data_ptr() != handle.tensor.data_ptr():
        handle.tensor.copy_(handle.host.to(handle.tensor.device))
    return handle.tensor


def poll(handle: Handle) -> bool:
    """Whether ``handle`` has completed (drives MPI progress)."""
    return bool(handle.request.Test())


def broadcast_(tensor: torch.Tensor, root_rank: int = 0, name: str | None = None) -> torch.Tensor:
    """Overwrite ``tensor`` on every rank with ``root_rank``'s; returns it."""
    negotiate("broadcast", [(name or "tensor", tensor)], root_rank)
    with _watchdog(f"broadcast of {name or 'a tensor'!r}"), _on_host(tensor) as host:
        buf, _ = _host_view(host)
        _comm().Bcast(buf, root=root_rank)  # comm: the broadcast
    return tensor


def broadcast(tensor: torch.Tensor, root_rank: int = 0, name: str | None = None) -> torch.Tensor:
    """``root_rank``'s ``tensor``, as a new tensor on every rank."""
    return broadcast_(tensor.detach().clone(), root_rank, name)


def allgather(tensor: torch.Tensor, name: str | None = None) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dimension 0 (first dimensions may differ)."""
    comm = _comm()
    negotiate("allgather", [(name or "tensor", tensor[:0])], tuple(tensor.shape[1:]))
    with _watchdog(f"allgather of {name or 'a tensor'!r}"), _on_host(tensor, write_back=False) as host:
        counts = comm.allgather(int(host.shape[0]))  # comm: first dimensions
        row = int(np.prod(host.shape[1:], dtype=np.int64))
        out = torch.empty((sum(counts), *host.shape[1:]), dtype=host.dtype)
        send, _ = _host_view(host)
        recv, _ = _host_view(out)
        elems = [c * row for c in counts]
        displs = np.concatenate(([0], np.cumsum(elems)[:-1])).astype(int).tolist()
        comm.Allgatherv(send.reshape(-1), [recv.reshape(-1), elems, displs, mpi.datatype(recv.dtype)])  # comm
    return out.to(tensor.device)


def broadcast_object(obj: Any, root_rank: int = 0, name: str | None = None) -> Any:
    """``root_rank``'s picklable object on every rank (objects travel in memory, never from files)."""
    negotiate("broadcast_object", [], (name, root_rank))
    with _watchdog(f"broadcast_object {name or ''}"):
        return _comm().bcast(obj, root=root_rank)  # comm: pickled object


def allgather_object(obj: Any, name: str | None = None) -> list[Any]:
    """Every rank's picklable object, in rank order."""
    negotiate("allgather_object", [], name)
    with _watchdog(f"allgather_object {name or ''}"):
        return _comm().allgather(obj)  # comm: pickled objects


def barrier() -> None:
    """Wait for every rank."""
    negotiate("barrier", [])
    with _watchdog("barrier"):
        _comm().Barrier()  # comm: barrier
