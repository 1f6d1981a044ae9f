"""The training engine under :mod:`hpcsuite.train.mpi_ops` (Horovod's public API): process
state and topology, the stall watchdog, host/device staging, the 16-bit sum and the
overlap engine. With ``hpcsuite.core.mpi``, the only place that imports mpi4py.

A rank that waits longer than ``HPCSUITE_TRAIN_TIMEOUT`` seconds (default 60) in one
collective - its peers are gone or stuck elsewhere - prints what it waited for and
aborts the job.

CPU tensors move in place through their NumPy views; CUDA tensors go to MPI directly
when it is CUDA-aware (after the stream is synchronized) and through host copies
otherwise. float16 and bfloat16 are summed on the host in float32 by the slice owners
(:class:`_Sum16`): MPI has no fast 16-bit float sum.

Gradient reductions may overlap backward (:func:`start_sum` / :func:`wait_sums`):
``poll`` starts ``Iallreduce`` and drives it with ``Test`` from later gradient hooks,
``thread`` hands blocking ``Allreduce`` calls to one background thread on its own
communicator, ``sync`` reduces at once (blocking).
"""

from __future__ import annotations

import faulthandler
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from hpcsuite.core import mpi
from hpcsuite.core.errors import HpcsuiteError
from hpcsuite.core.mpi import MPI
from hpcsuite.core.partition import owned
from hpcsuite.train import timeline
from hpcsuite.train.exceptions import ArgumentError, CollectiveMismatch  # noqa: F401 - re-exported

Average = "average"
Sum = "sum"
Min = "min"
Max = "max"
Product = "product"
Adasum = "adasum"  # Horovod's name, so scripts import; using it is a clear error
_MPI_OP = {Average: "SUM", Sum: "SUM", Min: "MIN", Max: "MAX", Product: "PROD"}
TIMEOUT_ENV = "HPCSUITE_TRAIN_TIMEOUT"


OVERLAP_MODES = ("sync", "poll", "thread")


class _State:
    comm: Any = None
    local: Any = None
    cross: Any = None
    worker: Any = None  # the background reduction thread ("thread" mode), started on first use
    worker_comm: Any = None
    calls: int = 0  # reductions issued (the fusion target counts them)


_state = _State()


def init(comm: Any = None) -> None:
    """Start (idempotent): a private duplicate of ``comm`` (COMM_WORLD) carries the traffic."""
    if _state.comm is not None:
        return
    base = comm if comm is not None else mpi.world()
    _state.comm = base.Dup()
    # The background thread's own communicator: its collectives never interleave with
    # the main thread's on one communicator (MPI orders collectives per communicator).
    _state.worker_comm = base.Dup()
    _state.local = mpi.node_comm(_state.comm)
    # Horovod's "cross" communicator: the ranks with this local rank, one per node.
    _state.cross = _state.comm.Split(_state.local.rank, _state.comm.rank)
    timeline.from_environment(_state.comm.rank)  # HOROVOD_TIMELINE, as Horovod


def shutdown() -> None:
    """Release the communicators (``init`` may be called again); close a timeline."""
    timeline.stop_timeline()
    if _state.worker is not None:
        _state.worker.stop()
        _state.worker = None
    for c in (_state.comm, _state.worker_comm, _state.cross):
        if c is not None:
            c.Free()
    _state.comm = _state.worker_comm = _state.local = _state.cross = None


def _comm() -> Any:
    if _state.comm is None:
        raise ArgumentError(
            "hpcsuite.train is not initialized: call hvd.init() first"
        )  # Horovod: ValueError
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


def cross_rank() -> int:
    """This rank's node index (among the ranks with the same local rank)."""
    _comm()
    return _state.cross.rank


def cross_size() -> int:
    """Nodes that run a rank with this local rank."""
    _comm()
    return _state.cross.size


def mpi_threads_supported() -> bool:
    """Whether MPI runs with ``MPI_THREAD_MULTIPLE`` (other threads may call MPI too)."""
    _comm()  # Horovod's error before init(); MPI is not running yet, and would abort the query
    return MPI.Query_thread() == MPI.THREAD_MULTIPLE


def mpi_built() -> bool:
    """True: every collective here is MPI."""
    return True


def mpi_enabled() -> bool:
    """True: every collective here is MPI."""
    return True


def gloo_built() -> bool:
    """False: no Gloo; MPI carries everything."""
    return False


gloo_enabled = gloo_built


def nccl_built() -> int:
    """0 (Horovod returns the NCCL version): GPU tensors go through MPI, not NCCL."""
    return 0


def ddl_built() -> bool:
    """False, as Horovod without IBM DDL."""
    return False


ccl_built = rocm_built = ddl_built


def cuda_built() -> bool:
    """Whether CUDA tensors can be reduced: this torch has CUDA (MPI or host staging moves them)."""
    return torch.backends.cuda.is_built()


#: ``--device`` values, the kernels' ``cpu|gpu|auto``; ``cuda`` is ``gpu`` (Horovod's word).
DEVICES = ("cpu", "gpu", "auto", "cuda")


def bind_device(kind: str) -> torch.device:
    """Map ``--device`` to a torch device, as the kernels map it to a backend.

    Parameters
    ----------
    kind : {"cpu", "gpu", "auto", "cuda"}
        ``gpu`` (or its alias ``cuda``): the GPU of this rank's node-local rank, made
        current; an error when none is visible. ``auto``: that GPU when one is visible,
        else the CPU.

    Returns
    -------
    torch.device
    """
    if kind not in DEVICES:
        raise HpcsuiteError(f"unknown device {kind!r}; choose one of {', '.join(DEVICES)}")
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise HpcsuiteError(
            f"--device {kind}: no CUDA device visible to this process; use --device cpu or auto"
        )
    device = torch.device("cuda", local_rank() % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


def reduction_calls() -> int:
    """MPI reduction calls issued so far (for the fusion benchmark and tests)."""
    return _state.calls


# -- safety: the stall watchdog and the negotiation exchange ----------------------------


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, "60"))
    except ValueError:
        return 60.0


class _Watchdog(threading.Thread):
    """One thread watching every armed deadline (a Timer per collective cost a thread start
    each): past one, it prints what the rank waited for and every thread's stack, then
    aborts the job."""

    def __init__(self) -> None:
        super().__init__(name="hpcsuite-train-watchdog", daemon=True)
        self.cond = threading.Condition()
        self.armed: dict[
            int, tuple[float, str, float, int]
        ] = {}  # key -> (deadline, what, limit, rank)
        self.keys = iter(range(1 << 62))

    def arm(self, what: str, limit: float, rank: int) -> int:
        with self.cond:
            key = next(self.keys)
            self.armed[key] = (time.monotonic() + limit, what, limit, rank)
            self.cond.notify()
        return key

    def disarm(self, key: int) -> None:
        with self.cond:
            self.armed.pop(key, None)  # the thread re-reads the deadlines when it wakes

    def run(self) -> None:
        with self.cond:
            while True:
                if not self.armed:
                    self.cond.wait()
                    continue
                deadline, what, limit, rank = min(self.armed.values())
                left = deadline - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                    continue
                sys.stderr.write(
                    f"[rank {rank}] hpcsuite.train: no progress for {limit:g} s in {what}; the"
                    " other ranks never joined (stopped, or stuck elsewhere). Aborting the job;"
                    f" raise {TIMEOUT_ENV} if this step is just slow. Where this rank's threads"
                    " are:\n"
                )
                sys.stderr.flush()
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                mpi.abort(MPI.COMM_WORLD, 1)


_watcher: _Watchdog | None = None
_watcher_lock = threading.Lock()


@contextmanager
def _watchdog(what: str, factor: float = 1.0, row: str = "collectives"):
    """Abort the job if the body blocks for longer than ``factor`` times the timeout;
    the body is an event on the timeline's ``row`` when one is running."""
    global _watcher
    rank = _comm().rank
    with _watcher_lock:
        if _watcher is None:
            _watcher = _Watchdog()
            _watcher.start()
    key = _watcher.arm(what, factor * _timeout(), rank)
    start = time.perf_counter()
    try:
        yield
    finally:
        _watcher.disarm(key)
        timeline.span(row, what, start)


def _exchange(mine: Any, what: str, factor: float = 1.0) -> list[Any]:
    with _watchdog(what, factor, row="negotiation"):
        return _comm().allgather(mine)  # comm: descriptors (small)


# -- moving tensor data ------------------------------------------------------------------------

_HALF = (torch.float16, torch.bfloat16)


class _Sum16:
    """The sum over ranks of a 16-bit float tensor (on the host), added in float32 in rank
    order and rounded once.

    Each rank receives its slice of everyone's tensor (``Alltoallv``), adds the slices
    with vectorized float32 arithmetic, and all sums are shared (``Allgatherv``): the
    bytes of a ring allreduce, none of the cost of an MPI user operation. Measured at
    n=2 on 12.6 MB: 15 ms, against 51 ms for a Python ``MPI.Op`` and 63 ms for MPICH's
    own ``MPIX_C_FLOAT16`` sum. Every rank gets the owner's bits, so ranks agree exactly.
    """

    def __init__(self, comm: Any, tensor: torch.Tensor) -> None:
        self.comm, self.tensor = comm, tensor
        n, me = comm.size, comm.rank
        bounds = [owned(tensor.numel(), n, i) for i in range(n)]
        self.counts = [hi - lo for lo, hi in bounds]
        self.displs = [lo for lo, _ in bounds]
        self.words = tensor.view(torch.int16).numpy()
        self.parts = np.empty((n, self.counts[me]), np.int16)

    def _specs(self) -> tuple[list[Any], list[Any]]:
        mine = self.counts[self.comm.rank]
        return (
            [self.words, self.counts, self.displs, MPI.INT16_T],
            [
                self.parts,
                [mine] * self.comm.size,
                [i * mine for i in range(self.comm.size)],
                MPI.INT16_T,
            ],
        )

    def start(self) -> Any:
        """Start the first half (``Ialltoallv``); :meth:`finish` after it completed."""
        return self.comm.Ialltoallv(*self._specs())  # comm: slices to their owners

    def finish(self) -> None:
        """Add the received slices and share the sums (blocking)."""
        parts = torch.from_numpy(self.parts).view(self.tensor.dtype)
        total = parts[0].float()
        for part in parts[1:]:
            total += part.float()
        mine = total.to(self.tensor.dtype).view(torch.int16).numpy()
        self.comm.Allgatherv(
            [mine, MPI.INT16_T], [self.words, self.counts, self.displs, MPI.INT16_T]
        )  # comm

    def run(self) -> None:
        """Both halves, blocking."""
        self.comm.Alltoallv(*self._specs())  # comm: slices to their owners
        self.finish()


def _host_view(t: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """An MPI buffer for a contiguous tensor - a NumPy view on the host (16-bit floats as
    uint16 words), the tensor itself (CUDA array interface) on a device - and the tensor."""
    if t.is_cuda:
        return t, t
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().view(np.uint16), t
    return t.numpy(), t


def _direct(tensor: torch.Tensor, nonblocking: bool = False) -> bool:
    """Whether MPI takes this CUDA tensor's device memory as it is (CUDA-aware MPI, not
    16-bit; for a non-blocking collective, an MPI that takes device memory there too)."""
    if not tensor.is_cuda or tensor.dtype in _HALF:
        return False
    return mpi.route(True, nonblocking=nonblocking).direct  # core's one staging policy


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of a CUDA tensor in page-locked host memory (torch caches these
    blocks), so the device-to-host copy runs at full PCIe/NVLink speed."""
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor.detach())
    return host


def _staged(tensor: torch.Tensor, nonblocking: bool = False) -> torch.Tensor:
    """What MPI reduces for ``tensor``: the tensor itself, or a contiguous host copy
    (``nonblocking``: for a non-blocking collective, see :func:`_direct`)."""
    if tensor.is_cuda:
        _ready(tensor)  # queued kernels finish first
        if _direct(tensor, nonblocking) and tensor.is_contiguous():
            return tensor.detach()
        return _pinned(tensor)
    return tensor.detach() if tensor.is_contiguous() else tensor.detach().contiguous()


def _ready(tensor: torch.Tensor) -> None:
    """Wait for kernels queued on ``tensor``'s device: MPI reads device memory at once
    (mpi4py passes CUDA buffers without a stream), so work queued after :func:`_staged`
    (a prescale) must finish before the collective."""
    if tensor.is_cuda:
        torch.cuda.current_stream(tensor.device).synchronize()


def _copy_back(tensor: torch.Tensor, result: torch.Tensor) -> None:
    """Write a staged result into ``tensor`` - a parameter too (no autograd record)."""
    if result.data_ptr() != tensor.data_ptr():
        with torch.no_grad():
            tensor.copy_(result.to(tensor.device))


@contextmanager
def _on_host(tensor: torch.Tensor, write_back: bool = True):
    """Yield a contiguous tensor MPI can read (see :func:`_staged`); results are copied
    back if it is a copy."""
    host = _staged(tensor)
    yield host
    if write_back:
        _copy_back(tensor, host)


class Pending:
    """A started in-place sum over ranks of a contiguous tensor (see :func:`start_sum`)."""

    def __init__(
        self,
        tensor: torch.Tensor,
        buffer: torch.Tensor,
        request: Any = None,
        done: threading.Event | None = None,
        then: Any = None,
    ) -> None:
        self.tensor = tensor  # where the sum must end up
        self.buffer = buffer  # what MPI reduces: the tensor itself, or a host copy of it
        self.request = request  # "poll": the started collective
        self.then = then  # "poll", 16-bit: the second half, run (in order) after the request
        self.done = done  # "thread": set by the worker when the sum is complete
        self.error: BaseException | None = None
        self.started = time.perf_counter()  # for the timeline (start_sum sets the real start)


class _Worker(threading.Thread):
    """One background thread that runs blocking reductions in submission order."""

    def __init__(self, comm: Any) -> None:
        super().__init__(name="hpcsuite-train-reduce", daemon=True)
        self.comm = comm
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            pending, reduce = job
            try:
                reduce()  # the blocking reduction, off the main thread
            except BaseException as exc:  # re-raised on the waiting thread
                pending.error = exc
            pending.done.set()

    def stop(self) -> None:
        self.jobs.put(None)
        self.join(timeout=5)


def _worker() -> _Worker:
    if _state.worker is None:
        _comm()
        if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise HpcsuiteError(
                "overlap='thread' needs MPI initialized with MPI_THREAD_MULTIPLE; "
                "this MPI gives less: use overlap='poll' or 'sync'"
            )
        _state.worker = _Worker(_state.worker_comm)
        _state.worker.start()
    return _state.worker


def start_sum(tensor: torch.Tensor, mode: str) -> Pending:
    """Start summing ``tensor`` over ranks, in place; finish with :func:`wait_sums`.

    Every rank must start the same sums in the same order. ``mode`` is one of
    :data:`OVERLAP_MODES`: ``sync`` sums before returning, ``poll`` starts a non-blocking
    collective (call :func:`progress` now and then), ``thread`` queues the sum for the
    background thread (which has its own communicator).
    """
    begun = time.perf_counter()
    pending = _start_sum(tensor, mode)
    pending.started = begun  # the timeline shows staging, MPI and waiting as one lifetime
    return pending


def _start_sum(tensor: torch.Tensor, mode: str) -> Pending:
    if mode not in OVERLAP_MODES:
        raise HpcsuiteError(f"unknown overlap mode {mode!r}; use one of {', '.join(OVERLAP_MODES)}")
    buffer = _staged(tensor, nonblocking=mode == "poll")
    half = buffer.dtype in _HALF
    _state.calls += 1
    comm = _worker().comm if mode == "thread" else _comm()
    if mode == "poll":
        if half:
            plan = _Sum16(comm, buffer)
            return Pending(tensor, buffer, request=plan.start(), then=plan.finish)
        return Pending(
            tensor, buffer, request=comm.Iallreduce(MPI.IN_PLACE, _host_view(buffer)[0], op=MPI.SUM)
        )  # comm: started

    def reduce() -> None:
        if buffer.is_cuda:  # the current device is per thread: the worker's is GPU 0 otherwise
            torch.cuda.set_device(buffer.device)
        if half:
            _Sum16(comm, buffer).run()
        else:
            comm.Allreduce(MPI.IN_PLACE, _host_view(buffer)[0], op=MPI.SUM)  # comm: the reduction

    if mode == "thread":
        pending = Pending(tensor, buffer, done=threading.Event())
        _worker().jobs.put((pending, reduce))
        return pending
    reduce()
    return Pending(tensor, buffer)


def progress(pendings: Sequence[Pending]) -> None:
    """Let started ``Iallreduce`` calls advance (MPI progresses them only inside MPI calls)."""
    requests = [p.request for p in pendings if p.request is not None]
    if requests:
        MPI.Request.Testall(requests)


def wait_sums(pendings: Sequence[Pending], what: str, buckets: bool = True) -> None:
    """Wait for started sums (under the stall watchdog) and put results where they belong
    (``buckets``: each is a row of the timeline, as gradient buckets are)."""
    if not pendings:
        return
    with _watchdog(what):
        requests = [p.request for p in pendings if p.request is not None]
        if requests:
            MPI.Request.Waitall(requests)
        for p in pendings:  # second halves in start order: all ranks issue them alike
            if p.then is not None:
                p.then, then = None, p.then
                then()
        for p in pendings:
            if p.done is not None:
                p.done.wait()
                if p.error is not None:
                    raise p.error
    for k, p in enumerate(pendings):
        if buckets and timeline.running():
            timeline.span(
                f"reduction {k}",
                f"sum of {p.tensor.numel()} {str(p.tensor.dtype).removeprefix('torch.')}",
                p.started,
            )
        _copy_back(p.tensor, p.buffer)
