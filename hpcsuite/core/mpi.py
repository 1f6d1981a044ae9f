"""The MPI layer: the only kernel-side module that imports mpi4py.

Importing it starts nothing: MPI starts on the first :func:`world` (or :func:`init`)
call, at the thread level asked for, and mpi4py finalizes it at exit (its ``rc``
switches ``initialize=False``, ``finalize=True``). So ``--help`` and argument errors
never wait for ``MPI_Init``, and a command can choose the thread level first.

Upper-case (buffer) methods move arrays; lower-case (pickle) methods move only small
metadata. Arrays on a GPU are handled here once for every kernel: the device stream
is synchronized before MPI touches a buffer (OMB-Py forgets this and its GPU numbers
are wrong for it), and when the MPI library is not CUDA-aware the data is staged
through host memory.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import mpi4py
import numpy as np

# Before the first import of mpi4py.MPI; a no-op when something imported it already
# (MPI then started as mpi4py's rc said, and world() finds it running).
mpi4py.rc.initialize = False
mpi4py.rc.finalize = True

from mpi4py import MPI  # noqa: E402 (after the rc switches above)
from mpi4py.util import dtlib  # noqa: E402

from hpcsuite.core import memory, records  # noqa: E402
from hpcsuite.core import staging as policy  # noqa: E402
from hpcsuite.core.backend import Backend  # noqa: E402
from hpcsuite.core.errors import HpcsuiteError, UsageError  # noqa: E402

if TYPE_CHECKING:
    from mpi4py.util import pkl5

# The staging policy's overrides, here too for the callers that name them (info, tests).
GPU_AWARE_ENV = policy.GPU_AWARE_ENV
GPU_AWARE_NONBLOCKING_ENV = policy.GPU_AWARE_NONBLOCKING_ENV


#: Thread levels by name, lowest first (``--thread-level`` values).
THREAD_LEVELS = ("single", "funneled", "serialized", "multiple")


def _default_level() -> str:
    """mpi4py's choice: ``MPI4PY_RC_THREAD_LEVEL`` or ``mpi4py.rc.thread_level``
    (``multiple`` unless changed), ``single`` when ``rc.threads`` is off."""
    if not mpi4py.rc.threads:
        return "single"
    level = os.environ.get("MPI4PY_RC_THREAD_LEVEL", str(mpi4py.rc.thread_level)).strip().lower()
    return level if level in THREAD_LEVELS else "multiple"


#: MPICH's switch from busy-polling to yielding the core while a rank waits.
YIELD_ENV = "MPIR_CVAR_ENABLE_HEAVY_YIELD"


def oversubscribed(env: Mapping[str, str], cores: int) -> bool:
    """Whether the launcher put more ranks on this node than this rank has cores.

    Hydra (MPICH's and Intel MPI's ``mpiexec``) says how many ranks share the node in
    ``MPI_LOCALNRANKS``; without it (another launcher) the answer is no.
    """
    try:
        return int(env.get("MPI_LOCALNRANKS", "0")) > cores
    except ValueError:
        return False


def _yield_when_oversubscribed(env: MutableMapping[str, str] = os.environ) -> None:
    """Let waiting MPICH ranks give up their core when the node is oversubscribed.

    MPICH busy-polls in every blocking call; with more ranks than cores (``mpirun -n 8``
    on a 2-core machine) a waiting rank then spins on the core a working rank needs
    (``benchmarks/mean_bench.py`` times ``mpirun -n 8 python -m hpcsuite.mean``). Open
    MPI switches to yielding by itself when oversubscribed; this does the same for
    MPICH before ``MPI_Init`` reads its variables. A value the user set wins (``0``
    keeps the polling), and the variable shows in every record's MPI tuning.
    """
    cores = records.node_cores()  # the rank's and its launcher's: no Linux-only call here
    if cores is not None and oversubscribed(env, cores):
        env.setdefault(YIELD_ENV, "1")


def init(thread_level: str | None = None) -> float | None:
    """Start MPI at ``thread_level`` unless it runs already; idempotent.

    Parameters
    ----------
    thread_level : {"single", "funneled", "serialized", "multiple"}, optional
        ``single`` calls plain ``MPI_Init`` (as OSU's C benchmarks do); the others
        ``MPI_Init_thread``. Default: mpi4py's (``multiple``, which ``hpcsuite.train``'s
        background thread needs).

    Returns
    -------
    float or None
        Seconds ``MPI_Init`` took, or None when MPI was already running (e.g. under
        ``python -m mpi4py``) and the level could not apply.
    """
    level = _default_level() if thread_level is None else thread_level
    if level not in THREAD_LEVELS:
        choices = ", ".join(THREAD_LEVELS)
        raise UsageError(f"unknown thread level {level!r}; choose one of {choices}")
    if MPI.Is_initialized():  # also true after MPI_Finalize, which cannot be undone
        return None
    _yield_when_oversubscribed()
    start = time.perf_counter()
    if level == "single":
        MPI.Init()
    else:
        MPI.Init_thread(getattr(MPI, f"THREAD_{level.upper()}"))
    return time.perf_counter() - start


def world() -> MPI.Comm:
    """Return ``MPI.COMM_WORLD``, starting MPI (:func:`init`) on the first call."""
    init()
    return MPI.COMM_WORLD


def _free_node_comm(comm: MPI.Comm, keyval: int, node: MPI.Comm) -> None:
    """Delete callback: the parent communicator is being freed, so is its node comm."""
    if not MPI.Is_finalized():
        node.Free()


@lru_cache(maxsize=1)
def _node_keyval() -> int:
    # A dup of a communicator gets its own node comm: no copy callback.
    return MPI.Comm.Create_keyval(delete_fn=_free_node_comm)


def node_comm(comm: MPI.Comm) -> MPI.Comm:
    """Communicator of the ranks that share a node with this one (collective on first use).

    Cached as an MPI attribute of ``comm``, as mpi4py caches its own per-communicator
    state: MPI deletes it, and the callback frees the node comm, when ``comm`` is freed.
    A cache keyed by handle would hand a stale node comm to the next communicator that
    MPI gives the freed handle.
    """
    keyval = _node_keyval()
    node = comm.Get_attr(keyval)
    if node is None:
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
        comm.Set_attr(keyval, node)
    return node


def local_rank(comm: MPI.Comm) -> int:
    """Rank within the node: what selects a GPU (global rank 9 on a 4-GPU node is not 9)."""
    return node_comm(comm).rank


def processor_name() -> str:
    """This rank's node name; no communication.

    Under Slurm, the scheduler's name for the node (``SLURMD_NODENAME``), which is what
    users see in ``squeue`` and what tells nodes apart when several share one host;
    elsewhere MPI's processor name.
    """
    return os.environ.get("SLURMD_NODENAME") or MPI.Get_processor_name()


def hosts(comm: MPI.Comm) -> list[str]:
    """Processor (node) name of every rank, in rank order (collective)."""
    return comm.allgather(processor_name())  # comm: metadata


def library_version() -> str:
    """First line of the MPI library's version string, e.g. ``'MPICH Version: 4.2.0'``."""
    text = MPI.Get_library_version().strip()
    return " ".join(text.splitlines()[0].split()) if text else "unknown MPI"


def thread_level() -> str:
    """The thread support MPI gave this process, e.g. ``'multiple'``."""
    names = {
        MPI.THREAD_SINGLE: "single",
        MPI.THREAD_FUNNELED: "funneled",
        MPI.THREAD_SERIALIZED: "serialized",
        MPI.THREAD_MULTIPLE: "multiple",
    }
    return names.get(MPI.Query_thread(), "unknown")


def _libmpi_query() -> bool | None:
    """Ask the loaded libmpi through ``MPIX_Query_cuda_support`` (Open MPI, MPICH >= 4)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "libmpi" in line and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            query = getattr(ctypes.CDLL(path), "MPIX_Query_cuda_support", None)
        except OSError:
            continue
        if query is not None:
            query.restype = ctypes.c_int
            return bool(query())
    return None


@lru_cache(maxsize=1)
def _library_says() -> bool | None:
    init()  # MPICH answers only once MPI runs (it aborts the process before MPI_Init)
    return _libmpi_query()  # asked once: it opens libmpi through ctypes


def gpu_aware() -> bool:
    """Whether MPI may be handed device buffers (:func:`hpcsuite.core.staging.cuda_aware`):
    ``HPCSUITE_GPU_AWARE=1`` or ``0`` decides, else the library through
    ``MPIX_Query_cuda_support``."""
    return policy.cuda_aware(_library_says(), os.environ)


def gpu_aware_nonblocking() -> bool:
    """Whether non-blocking collectives (``Iallreduce``, ``Ibcast``...) may get device
    buffers (:func:`hpcsuite.core.staging.nonblocking_direct`: not under Open MPI)."""
    return policy.nonblocking_direct(gpu_aware(), library_version(), os.environ)


def route(on_device: bool, *, nonblocking: bool = False) -> policy.Route:
    """How this process hands data to MPI (:func:`hpcsuite.core.staging.decide` over this
    MPI library and environment): the one policy of kernels, microbench and train. Starts
    MPI for device data (the library is asked)."""
    if not on_device:  # nothing to ask the library
        return policy.decide(
            on_device=False, nonblocking=nonblocking, library_says=None, library="", env=os.environ
        )
    return policy.decide(
        on_device=on_device,
        nonblocking=nonblocking,
        library_says=_library_says(),
        library=library_version(),
        env=os.environ,
    )


def staging(backend: Backend) -> bool:
    """True when this backend's arrays must pass MPI (blocking calls) through host memory."""
    return route(backend.on_device).staged


def send_buffer(backend: Backend, array: Any) -> Any:
    """What to hand MPI to send ``array`` (C-contiguous): the array itself once the
    stream has finished writing it, or a host copy when MPI cannot read device memory."""
    if not backend.on_device:
        return array
    backend.synchronize()  # the kernel's stream must finish writing before MPI reads
    return np.ascontiguousarray(backend.to_host(array)) if staging(backend) else array


def recv_buffer(backend: Backend, shape: tuple[int, ...], dtype: np.dtype | type) -> Any:
    """A buffer for MPI to receive into: device memory where MPI writes it, else host."""
    if backend.on_device and not staging(backend):
        backend.synchronize()  # MPI must not write while queued kernels still use the memory
        return backend.xp.empty(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype)


def received(backend: Backend, buffer: Any) -> Any:
    """The received ``buffer`` as an array of ``backend`` (uploaded when it was staged)."""
    return backend.from_host(buffer) if staging(backend) else buffer


def bcast_array(
    comm: MPI.Comm,
    backend: Backend,
    array: Any | None,
    shape: tuple[int, ...],
    dtype: np.dtype | type,
    *,
    root: int = 0,
) -> Any:
    """``root``'s C-contiguous ``array`` (ignored elsewhere) on every rank, on ``backend``."""
    if comm.rank == root:
        comm.Bcast(send_buffer(backend, array), root=root)  # comm: the broadcast
        return array
    buffer = recv_buffer(backend, shape, dtype)
    comm.Bcast(buffer, root=root)  # comm: the broadcast
    return received(backend, buffer)


@contextmanager
def _row_type(dtype: np.dtype, row_elements: int) -> Iterator[MPI.Datatype]:
    # Count in rows, not elements: keeps counts far below 2**31 for big arrays.
    rowtype = dtlib.from_numpy_dtype(np.dtype(dtype)).Create_contiguous(row_elements).Commit()
    try:
        yield rowtype
    finally:
        rowtype.Free()


def scatter_rows(
    comm: MPI.Comm,
    backend: Backend,
    array: Any | None,
    counts: list[int],
    row_shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    root: int = 0,
) -> Any:
    """Scatter contiguous runs of rows of ``array`` (significant at ``root`` only).

    Parameters
    ----------
    comm : MPI.Comm
    backend : Backend
        Where the received block lives; staging happens here when needed.
    array : array or None
        C-contiguous global array on ``root``; ignored elsewhere.
    counts : list of int
        Rows per rank (uneven and zero counts are fine).
    row_shape : tuple of int
        Shape of one row.
    dtype : numpy.dtype
    root : int

    Returns
    -------
    array
        This rank's rows, shape ``(counts[rank], *row_shape)``.
    """
    row_elements = int(np.prod(row_shape, dtype=np.int64))
    displs = np.concatenate(([0], np.cumsum(counts[:-1]))).astype(int).tolist()
    recv = recv_buffer(backend, (counts[comm.rank], *row_shape), dtype)
    with _row_type(dtype, row_elements) as rowtype:
        send = None
        if comm.rank == root:
            send = [send_buffer(backend, array), counts, displs, rowtype]
        comm.Scatterv(send, [recv, counts[comm.rank], rowtype], root=root)  # comm: scatter
    return received(backend, recv)


def gather_rows(
    comm: MPI.Comm,
    backend: Backend,
    local: Any,
    counts: list[int],
    *,
    root: int = 0,
) -> np.ndarray | None:
    """Gather every rank's rows, in rank order, into one host array on ``root``.

    Returns
    -------
    numpy.ndarray or None
        The global array on ``root`` (shape ``(sum(counts), *row_shape)``), None elsewhere.
    """
    row_shape = tuple(local.shape[1:])
    dtype = np.dtype(local.dtype)
    row_elements = int(np.prod(row_shape, dtype=np.int64))
    displs = np.concatenate(([0], np.cumsum(counts[:-1]))).astype(int).tolist()
    if backend.on_device:
        # Gathered results land on the host; copying there first keeps both sides
        # of the collective host buffers, whatever the MPI library supports.
        backend.synchronize()
        local = backend.to_host(local)
    send = np.ascontiguousarray(local)
    recv = np.empty((sum(counts), *row_shape), dtype=dtype) if comm.rank == root else None
    with _row_type(dtype, row_elements) as rowtype:
        spec = [recv, counts, displs, rowtype] if comm.rank == root else None
        comm.Gatherv([send, len(send), rowtype], spec, root=root)  # comm: gather
    return recv


def pickle5(comm: MPI.Intracomm) -> pkl5.Intracomm:
    """``comm`` wrapped by ``mpi4py.util.pkl5``: pickled objects' large buffers travel out
    of band (no copy into the pickle stream, no 2 GiB limit)."""
    from mpi4py.util import pkl5  # for large pickled messages only: not on every rank's start

    return pkl5.Intracomm(comm)


def datatype(dtype: np.dtype | type) -> MPI.Datatype:
    """The predefined MPI datatype of a NumPy dtype (for buffers that carry no type).

    Predefined, not ``dtlib``'s derived duplicate: reductions accept only the former.
    """
    predefined = getattr(MPI, "_typedict", {}).get(np.dtype(dtype).char)
    return predefined if predefined is not None else dtlib.from_numpy_dtype(np.dtype(dtype))


def check_device_fits(comm: MPI.Comm, backend: Backend, need: int, *, hint: str) -> None:
    """On a GPU, refuse on every rank together a job whose arrays (``need`` bytes on this
    rank) would not fit in its GPU's free memory; ranks that share a GPU add up.

    Refusing up front beats an out-of-memory error after the data has been loaded.
    """
    if not backend.on_device:
        return
    node = node_comm(comm)
    everyone = node.allgather((backend.device_id, need))  # comm: metadata
    total = sum(n for device, n in everyone if device == backend.device_id)
    sharing = sum(device == backend.device_id for device, _ in everyone)
    with agree(comm):
        memory.check_fits(
            total,
            backend.free_bytes(),
            where=f"GPU {backend.device_id} of node {processor_name()}"
            + (f" ({sharing} ranks share it)" if sharing > 1 else ""),
            hint=hint,
        )


def max_over_ranks(comm: MPI.Comm, value: float) -> float:
    """Maximum of a scalar over ranks, known on every rank (the slowest rank's time)."""
    return comm.allreduce(value, op=MPI.MAX)  # comm: metadata


@contextmanager
def agree(comm: MPI.Comm) -> Iterator[None]:
    """Make a user error on any rank an error on every rank.

    Wrap a step that may fail on some ranks only (opening a file that only the root
    reads, validating a block): every rank leaves the block together, and if any
    raised :class:`HpcsuiteError`, all raise the lowest failing rank's error, marked
    ``collective`` so the CLI exits cleanly everywhere instead of aborting.

    Other exceptions pass through untouched: they are bugs, and the CLI aborts the
    job for them.
    """
    error: HpcsuiteError | None = None
    try:
        yield
    except HpcsuiteError as exc:
        error = exc
    errors = comm.allgather(error)  # comm: metadata
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        first.collective = True
        raise first


#: Seconds between flushing a failing rank's output and ``MPI_Abort``. Launchers
#: (Hydra, Open MPI's prted, srun) forward a rank's output asynchronously and tear the
#: job down at the abort: without a pause, a loaded node lost the very lines that say
#: why the job ended (a CI run got exit 1 and no output from any rank).
ABORT_GRACE = 0.5


def abort(comm: MPI.Comm, code: int) -> None:
    """End every rank of ``comm``'s job now, after flushing this rank's output and giving
    the launcher :data:`ABORT_GRACE` seconds to pass it on."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(ABORT_GRACE)
    comm.Abort(code)


def is_running() -> bool:
    """True between MPI initialization and finalization (for the CLI's error policy)."""
    return MPI.Is_initialized() and not MPI.Is_finalized()
