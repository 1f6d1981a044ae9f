"""GPU tests (marked ``gpu``): run by benchmarks/gpu_check.sh on a machine with a GPU.

tests/run.sh deselects them; on a machine without a usable GPU they skip.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpcsuite import mean
from hpcsuite.core import backend, mpi
from hpcsuite.core.partition import Layout
from hpcsuite.core.sources import RandomSource, load_rows

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(backend.gpu_count() == 0, reason="no usable CUDA GPU (CuPy + device)"),
]
CPU = backend.load("numpy")


@pytest.fixture
def gpu():
    mpi.init()  # tests hand MPI.COMM_SELF to kernels; importing core.mpi starts no MPI
    return backend.load("cupy")


def test_cupy_backend_binds_a_device_and_round_trips(gpu):
    import cupy

    assert gpu.on_device and gpu.device == "gpu" and gpu.xp is cupy
    host = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(gpu.to_host(gpu.from_host(host)), host)


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("distribute", ["local", "scatter"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int32"])
def test_gpu_mean_matches_the_cpu_mean(gpu, axis, distribute, dtype):
    from mpi4py import MPI

    layout = Layout((3001, 257), 64)
    source = RandomSource(layout.shape, np.dtype(dtype), 9, layout)
    ours = mean.compute(MPI.COMM_SELF, gpu, source, layout, axis=axis, distribute=distribute)
    cpu = mean.compute(MPI.COMM_SELF, CPU, source, layout, axis=axis, distribute=distribute)
    np.testing.assert_allclose(ours, cpu, rtol=1e-12)


def test_generated_data_is_the_same_array_on_gpu_and_cpu(gpu):
    layout = Layout((500, 300), 32)
    source = RandomSource(layout.shape, np.dtype("float64"), 3, layout)
    on_gpu = load_rows(source, gpu, layout, 0, 500)
    assert np.array_equal(gpu.to_host(on_gpu), load_rows(source, CPU, layout, 0, 500))


@pytest.mark.parametrize("rows", [3001, 3000])
def test_gpu_block_partials_have_the_same_bits_at_any_rank_count(gpu, rows):
    """What makes the GPU mean bitwise identical across rank counts: a block's partial does
    not depend on which rank, or which batch of blocks, summed it."""
    layout = Layout((rows, 257), 64)
    data = gpu.xp.asarray(np.random.default_rng(5).random(layout.shape))
    by_size = {}
    for size in (1, 2, 3, 8):
        parts = []
        for rank in range(size):
            start, stop = layout.rank_rows(size, rank)
            spans = [(a, b) for _, a, b in layout.local_blocks(size, rank)]
            parts.append(gpu.to_host(mean.partials(data[start:stop], spans, gpu.xp, None)))
        by_size[size] = np.concatenate(parts)
    assert all(np.array_equal(by_size[1], p) for p in by_size.values())


def test_host_staging_with_real_device_buffers(gpu, monkeypatch):
    from mpi4py import MPI

    monkeypatch.setenv(mpi.GPU_AWARE_ENV, "0")
    rows = gpu.xp.arange(40.0).reshape(10, 4)
    got = mpi.scatter_rows(MPI.COMM_SELF, gpu, rows, [10], (4,), np.dtype("float64"))
    assert isinstance(got, gpu.xp.ndarray)
    assert np.array_equal(gpu.to_host(got), np.arange(40.0).reshape(10, 4))


SPIN = r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


@pytest.mark.parametrize("aware", ["0", "1"])
def test_device_buffers_reach_mpi_only_after_queued_kernels_finish(gpu, aware, monkeypatch):
    """A kernel spins ~0.25 s on the stream; whatever hands a device buffer to MPI must
    return only after it (without the stream sync MPI would read a buffer still being
    written - the OMB-Py bug). Both paths: CUDA-aware (direct) and staged."""
    import cupy

    from hpcsuite.microbench.buffers import Messages

    monkeypatch.setenv(mpi.GPU_AWARE_ENV, aware)
    spin = cupy.RawKernel(SPIN, "spin")
    m = Messages("cupy")
    for hand_over in (lambda a: m.send(a), lambda a: mpi.send_buffer(gpu, a)):
        buf = m.alloc(1 << 20)
        spin((1,), (1,), (cupy.int64(500_000_000),))
        buf.fill(7)
        done = cupy.cuda.Event()
        done.record()
        hand_over(buf)
        assert done.done, "a device buffer went to MPI while kernels writing it were queued"


def test_auto_picks_the_gpu():
    assert backend.select("auto").device == "gpu"


def test_kernels_agree_with_their_cpu_runs_on_the_gpu(gpu):
    from mpi4py import MPI

    from hpcsuite import fft, montecarlo, stencil, stream

    comm = MPI.COMM_SELF
    out = stream.run(comm, gpu, 1 << 20, iterations=3)
    assert out["errors"] == [0.0, 0.0, 0.0]
    local, _, _ = stencil.run(comm, gpu, (300, 200), 10, 0.2, dims=(1, 1), overlap=True)
    # The same expressions in the same order as NumPy: the same bits (as on the CPU).
    assert np.array_equal(gpu.to_host(local), stencil.reference((300, 200), 10, 0.2))
    option = dict(kind="call", spot=100.0, strike=105.0, rate=0.05, vol=0.2, maturity=1.0)
    # The normals are made on the GPU (another generator than the host's): the price
    # is reproducible and within 4 standard errors of Black-Scholes, not the CPU's bits.
    price, se = montecarlo.run(comm, gpu, 1 << 20, 1, option)
    assert montecarlo.run(comm, gpu, 1 << 20, 1, option) == (price, se) and se > 0
    assert abs(price - montecarlo.black_scholes(**option)) <= 4 * se
    z = montecarlo.normals(gpu.xp, 3, 1000, 1)
    assert not isinstance(z, np.ndarray)  # made on the device, not uploaded from the host
    data = fft.slab((16, 8, 4), 0, 16, 2)
    x = fft.forward(comm, gpu, gpu.from_host(data), (16, 8, 4))
    np.testing.assert_allclose(gpu.to_host(x), np.fft.fftn(data), rtol=1e-12, atol=1e-10)
