"""Message kinds: what a benchmark hands to MPI.

* ``numpy``: host arrays through the buffer (upper-case) API.
* ``bytearray``: plain Python buffers through the same API.
* ``cupy``: device arrays. The stream is synchronized before every MPI call (OMB-Py
  does not, and times work still queued on the GPU); with CUDA-aware MPI the device
  buffer goes to MPI directly, otherwise it is staged through a host copy each
  iteration - a real cost that the timing includes and the report names.
* ``pickle``: NumPy arrays as Python objects through the lower-case API (pickled).
* ``pkl5``: the same through ``mpi4py.util.pkl5``, which sends large buffers out of
  band (no copy into the pickle stream).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpcsuite.core import backend as backends
from hpcsuite.core import mpi
from hpcsuite.core.errors import UsageError
from hpcsuite.microbench import KINDS


class Messages:
    """Allocate, fill, pass to MPI and read back the buffers of one message kind.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    local_rank : int
        Node-local rank, to bind a GPU for ``cupy``.
    nonblocking : bool
        For non-blocking collectives: device buffers go to MPI directly only where the
        MPI takes them there too (:func:`hpcsuite.core.mpi.gpu_aware_nonblocking`).
    """

    def __init__(self, kind: str, local_rank: int = 0, nonblocking: bool = False) -> None:
        if kind not in KINDS:
            raise UsageError(f"unknown buffer {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.pickled = kind in ("pickle", "pkl5")
        self.backend = (
            backends.load("cupy", local_rank) if kind == "cupy" else backends.load("numpy")
        )
        self.route = mpi.route(self.backend.on_device, nonblocking=nonblocking)  # core's one policy
        self.staged = self.route.staged
        self._shadow: dict[int, np.ndarray] = {}

    @property
    def path(self) -> str:
        """How data reaches MPI, for the report."""
        if self.kind == "cupy":
            if not self.staged:
                return "device buffers, CUDA-aware MPI"
            return f"device buffers, host-staged ({self.route.reason})"
        return {
            "numpy": "host buffers",
            "bytearray": "host bytearray buffers",
            "pickle": "pickled objects (lower-case API)",
            "pkl5": "pickled objects, out-of-band buffers (mpi4py.util.pkl5)",
        }[self.kind]

    def comm(self, comm: Any) -> Any:
        """The communicator to call: pkl5 wraps it for out-of-band pickling."""
        if self.kind == "pkl5":
            return mpi.pickle5(comm)
        return comm

    def alloc(self, count: int, dtype: Any = np.uint8) -> Any:
        """A zeroed buffer of ``count`` elements."""
        if self.kind == "bytearray":
            return bytearray(count * np.dtype(dtype).itemsize)
        return self.backend.xp.zeros(count, dtype=dtype)

    def view(self, buf: Any, dtype: Any = np.uint8) -> Any:
        """The buffer as an array (host or device) of ``dtype``, for filling."""
        if isinstance(buf, bytearray):
            return np.frombuffer(buf, dtype=dtype)
        return buf

    def fill(self, buf: Any, values: np.ndarray) -> None:
        """Write host ``values`` into ``buf``."""
        target = self.view(buf, values.dtype)
        target[...] = self.backend.from_host(values) if self.backend.on_device else values

    def read(self, buf: Any, dtype: Any = np.uint8) -> np.ndarray:
        """A host copy of ``buf`` as ``dtype``, for validation."""
        self.backend.synchronize()
        if isinstance(buf, bytearray):
            return np.frombuffer(bytes(buf), dtype=dtype)
        return np.asarray(self.backend.to_host(buf)).view(dtype)

    def typed(self, obj: Any, dtype: Any) -> Any:
        """Attach the MPI datatype where the buffer carries none (bytearray of non-bytes)."""
        if isinstance(obj, bytearray) and np.dtype(dtype) != np.uint8:
            return [obj, mpi.datatype(dtype)]
        return obj

    def reset(self) -> None:
        """Forget the staging copies of the previous message size."""
        self._shadow.clear()

    def send(self, buf: Any) -> Any:
        """What to hand MPI to send ``buf``: synchronized, and staged when needed."""
        if not self.backend.on_device:
            return buf
        self.backend.synchronize()
        if not self.staged:
            return buf
        host = self._host(buf)
        buf.get(out=host)
        return host

    def recv(self, buf: Any) -> Any:
        """What to hand MPI to receive into ``buf`` (a host shadow when staging)."""
        if self.backend.on_device:
            self.backend.synchronize()
            if self.staged:
                return self._host(buf)
        return buf

    def landed(self, buf: Any) -> None:
        """After a receive: move the staged host copy into the device buffer."""
        if self.backend.on_device and self.staged:
            buf.set(self._host(buf))

    def _host(self, buf: Any) -> np.ndarray:
        key = id(buf)
        if key not in self._shadow:
            self._shadow[key] = np.empty(buf.shape, dtype=buf.dtype)
        return self._shadow[key]
