"""MPI tests: run by tests/run.sh at n = 1, 2, 3 and 4; every assertion holds at any n."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from hpcsuite import mean
from hpcsuite.core import backend, mpi
from hpcsuite.core.errors import InputError
from hpcsuite.core.partition import Layout
from hpcsuite.core.sources import RandomSource

pytestmark = pytest.mark.mpi
CPU = backend.load("numpy")


class ArraySource:
    """An in-memory source, for data with chosen values (NaN, inf)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.description = data, data.shape, data.dtype, "array"

    def read(self, start, stop, out):
        out[...] = self.data[start:stop]


def _self_reference(source, layout, axis):
    """What one process computes: the same blocks and combine on COMM_SELF."""
    from mpi4py import MPI

    return mean.compute(MPI.COMM_SELF, CPU, source, layout, axis=axis, distribute="local")


CASES = [  # (shape, block_rows): several blocks, uneven last block, N-d rows
    ((101, 13), 4),
    ((3000, 70), 256),
    ((17,), 2),
    ((50, 3, 4), 7),
    ((2, 5), 1),  # fewer blocks than ranks at n >= 3: empty ranks
    ((7, 3), 2),  # ... with a short last block, so an empty rank starts off the block grid
]


@pytest.mark.parametrize(
    "shape,block_rows,axis",
    [
        (shape, rows, axis)
        for shape, rows in CASES
        for axis in (None, 0, 1)
        if axis is None or axis < len(shape)
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
@pytest.mark.parametrize("distribute", ["local", "scatter"])
def test_mean_is_bitwise_the_single_process_result(
    comm, shape, block_rows, dtype, axis, distribute
):
    layout = Layout(shape, block_rows)
    source = RandomSource(shape, np.dtype(dtype), 11, layout)
    got = mean.compute(comm, CPU, source, layout, axis=axis, distribute=distribute)
    if comm.rank != 0:
        assert got is None
        return
    expected = _self_reference(source, layout, axis)
    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()
    whole = np.empty(shape, dtype=dtype)
    source.read(0, shape[0], whole)
    np.testing.assert_allclose(got, np.mean(whole, axis=axis, dtype=np.float64), rtol=1e-13)


@pytest.mark.parametrize(
    "values,expected",
    [
        ([1.0, np.nan, 2.0], "nan"),
        ([1.0, np.inf, 2.0], "inf"),
        ([np.inf, 1.0, -np.inf], "nan"),
    ],
)
def test_nan_and_inf_propagate_like_numpy(comm, values, expected):
    data = np.zeros((40, 3))
    data[5, 1], data[21, 0], data[39, 2] = values
    layout = Layout(data.shape, 3)
    got = mean.compute(comm, CPU, ArraySource(data), layout, axis=None, distribute="local")
    if comm.rank == 0:
        with np.errstate(invalid="ignore"):
            assert str(got) == str(np.mean(data)) == expected


@pytest.mark.parametrize("row_shape", [(), (3,), (2, 3)])
def test_scatter_then_gather_rows_round_trips_uneven_counts(comm, row_shape):
    counts = [(r * 3) % 4 for r in range(comm.size)]  # includes zero-row ranks
    total = sum(counts)
    whole = np.arange(total * math.prod(row_shape), dtype=np.float32).reshape(total, *row_shape)
    mine = mpi.scatter_rows(
        comm, CPU, whole if comm.rank == 0 else None, counts, row_shape, whole.dtype
    )
    start = sum(counts[: comm.rank])
    assert np.array_equal(mine, whole[start : start + counts[comm.rank]])
    back = mpi.gather_rows(comm, CPU, mine, counts)
    if comm.rank == 0:
        assert np.array_equal(back, whole)
    else:
        assert back is None


def _staged_backend(events):
    """NumPy posing as a device backend, so the host-staging path runs on a CPU."""

    def to_host(a):
        events.append("to_host")
        return np.array(a)

    def from_host(a):
        events.append("from_host")
        return np.array(a)

    return backend.Backend(
        name="numpy-staged",
        xp=np,
        device="gpu",
        on_device=True,
        synchronize=lambda: events.append("sync"),
        to_host=to_host,
        from_host=from_host,
    )


def test_host_staging_moves_device_buffers_through_host_copies(comm, monkeypatch):
    monkeypatch.setenv(mpi.GPU_AWARE_ENV, "0")
    events: list[str] = []
    staged = _staged_backend(events)
    assert mpi.staging(staged)
    layout = Layout((90, 11), 4)
    source = RandomSource((90, 11), np.dtype("float64"), 2, layout)
    got = mean.compute(comm, staged, source, layout, axis=0, distribute="scatter")
    plain = mean.compute(comm, CPU, source, layout, axis=0, distribute="scatter")
    if comm.rank == 0:
        assert np.asarray(got).tobytes() == np.asarray(plain).tobytes()
        # The root synchronized the stream before staging its send buffer.
        assert "sync" in events and events.index("sync") < events.index("to_host")
    assert "from_host" in events  # every rank's received block went back to the "device"


def test_an_error_on_one_rank_becomes_every_ranks_error(comm):
    last = comm.size - 1
    with pytest.raises(InputError, match=f"only rank {last}") as info:
        with mpi.agree(comm):
            if comm.rank == last:
                raise InputError(f"only rank {last} saw this")
    assert info.value.collective


def test_agree_passes_when_no_rank_fails(comm):
    with mpi.agree(comm):
        pass


def test_main_writes_a_record_and_the_output(comm, shared_tmp):
    record_path, output = shared_tmp / "r.jsonl", shared_tmp / "m.npy"
    assert (
        mean.main(
            [
                "--shape",
                "300x7",
                "--axis",
                "1",
                "--check",
                "--quiet",
                "--distribute",
                "scatter",
                "--json",
                str(record_path),
                "--output",
                str(output),
            ]
        )
        == 0
    )
    comm.Barrier()
    lines = record_path.read_text().splitlines()
    assert len(lines) == 1  # rank 0 alone writes
    rec = json.loads(lines[0])
    assert rec["ranks"] == comm.size and rec["kernel"] == "mean"
    assert rec["check"]["passed"] is True and rec["fom"]["unit"] == "GB/s"
    assert rec["params"]["shape"] == [300, 7] and rec["params"]["distribute"] == "scatter"
    assert np.load(output).shape == (300,)
    comm.Barrier()
    assert os.path.exists(output)
