"""Message kinds without a GPU: the device path is exercised with a fake device backend."""

from __future__ import annotations

import numpy as np
import pytest

from hpcsuite.core import backend, mpi, staging
from hpcsuite.core.errors import UsageError
from hpcsuite.microbench.buffers import Messages


class DeviceArray(np.ndarray):
    """NumPy posing as a CuPy array: ``get``/``set`` copy to and from the host, logged."""

    log: list[str] = []

    def get(self, out):
        DeviceArray.log.append("get")
        out[...] = np.asarray(self)
        return out

    def set(self, host):
        DeviceArray.log.append("set")
        np.asarray(self)[...] = host


def _device_messages(staged: bool) -> Messages:
    DeviceArray.log = []

    class Xp:
        @staticmethod
        def zeros(count, dtype):
            return np.zeros(count, dtype).view(DeviceArray)

    m = Messages("numpy")
    m.backend = backend.Backend(
        name="fake-gpu",
        xp=Xp,
        device="gpu",
        on_device=True,
        synchronize=lambda: DeviceArray.log.append("sync"),
        to_host=np.asarray,
        from_host=np.asarray,
    )
    m.route = staging.Route(staged, staging.NOT_AWARE if staged else "CUDA-aware MPI")
    m.staged = staged
    return m


def test_device_buffers_are_synchronized_before_mpi_sees_them():
    for staged in (False, True):
        m = _device_messages(staged)
        buf = m.alloc(8)
        handed = m.send(buf)
        # Without the synchronize, MPI would read a buffer the GPU may still be writing.
        assert DeviceArray.log[0] == "sync"
        assert (handed is buf) == (not staged)


def test_staging_copies_out_before_send_and_back_after_receive():
    m = _device_messages(staged=True)
    src, dst = m.alloc(8), m.alloc(8)
    m.fill(src, np.arange(8, dtype=np.uint8))
    host = m.send(src)
    assert DeviceArray.log == ["sync", "get"] and np.array_equal(host, np.arange(8))
    shadow = m.recv(dst)
    shadow[...] = 7  # what MPI would write
    m.landed(dst)
    assert DeviceArray.log[-1] == "set" and np.all(np.asarray(dst) == 7)


def test_bytearray_buffers_carry_a_datatype_for_typed_operations():
    mpi.init()  # an MPI datatype is an MPI object: MPI must run (importing core.mpi starts none)
    m = Messages("bytearray")
    buf = m.alloc(4, np.float32)
    assert isinstance(buf, bytearray) and len(buf) == 16
    typed = m.typed(buf, np.float32)
    assert typed[0] is buf and typed[1].Get_size() == 4
    assert m.typed(buf, np.uint8) is buf
    m.fill(buf, np.arange(4, dtype=np.float32))
    assert np.array_equal(m.read(buf, np.float32), np.arange(4, dtype=np.float32))


def test_unknown_kind_lists_the_choices():
    with pytest.raises(UsageError, match="unknown buffer 'gpu'; choose one of numpy, cupy"):
        Messages("gpu")


def test_paths_are_named_for_the_report():
    assert Messages("pkl5").path.startswith("pickled objects, out-of-band")
    m = _device_messages(True)
    m.kind = "cupy"
    assert m.path == "device buffers, host-staged (MPI not CUDA-aware)"


def test_the_report_says_why_device_buffers_were_staged():
    m = _device_messages(staged=True)
    m.kind = "cupy"
    for route, path in (
        (staging.Route(True, staging.NOT_AWARE), "host-staged (MPI not CUDA-aware)"),
        (
            staging.Route(True, staging.NO_NONBLOCKING),
            "host-staged (this MPI takes none in non-blocking collectives)",
        ),
        (staging.Route(False, "CUDA-aware MPI"), "CUDA-aware MPI"),
    ):
        m.route, m.staged = route, route.staged  # which route applies is tests/test_staging.py's
        assert m.path == f"device buffers, {path}"
