"""MPI tests of the scientific kernels: hold at any rank count (run at n = 1..4)."""

from __future__ import annotations

import numpy as np
import pytest

from hpcsuite import montecarlo, stream
from hpcsuite.core import backend

pytestmark = pytest.mark.mpi
CPU = backend.load("numpy")
OPTION = dict(kind="call", spot=100.0, strike=105.0, rate=0.05, vol=0.2, maturity=1.0)


def test_stream_arrays_follow_the_recurrence_on_every_rank(comm):
    a, b, c = stream.arrays(CPU, 10007)
    state = stream.State(comm, CPU, 10007, "", a, b, c, stream.kernels(a, b, c, np))
    for _ in range(3):
        for phase in stream.KERNELS:
            stream.KERNEL.step(state, phase)
    assert state.runs == 3
    assert stream.validate_arrays(comm, state) == [0.0, 0.0, 0.0]
    if comm.rank == comm.size - 1:
        state.a[5] += 1.0  # one wrong element on one rank fails every rank's check
    assert stream.validate_arrays(comm, state)[0] > 0


@pytest.mark.parametrize("paths", [1, 1000, montecarlo.BLOCK * 3 + 17])
def test_monte_carlo_price_is_bitwise_the_one_process_price(comm, paths):
    from mpi4py import MPI

    got = montecarlo.run(comm, CPU, paths, 7, OPTION)
    if comm.rank == 0:
        alone = montecarlo.run(MPI.COMM_SELF, CPU, paths, 7, OPTION)
        assert got == alone
    else:
        assert got is None


def test_monte_carlo_price_is_within_four_standard_errors(comm):
    got = montecarlo.run(comm, CPU, 1 << 20, 3, OPTION)
    if comm.rank == 0:
        price, se = got
        assert abs(price - montecarlo.black_scholes(**OPTION)) <= 4 * se
        assert 0 < se < 0.02


@pytest.mark.parametrize("shape", [(37, 23), (8, 64), (64, 5)])
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_stencil_is_bitwise_the_one_process_numpy_run(comm, shape, overlap, engine):
    from hpcsuite import stencil

    dims = stencil.grid_dims(comm.size, None)
    if dims[0] > shape[0] or dims[1] > shape[1]:
        dims = (comm.size, 1) if comm.size <= shape[0] else (1, comm.size)
    local, where, cart = stencil.run(
        comm, CPU, shape, 13, 0.2, dims=dims, overlap=overlap, engine=engine
    )
    field = stencil.gather(cart, CPU, local, where, shape)
    if comm.rank == 0:
        assert field.tobytes() == stencil.reference(shape, 13, 0.2).tobytes()


@pytest.mark.parametrize("n,width", [(33, 8), (64, 64), (5, 2)])
def test_summa_matches_numpy_on_any_grid(comm, n, width):
    from hpcsuite import matmul
    from hpcsuite.stencil import grid_dims

    dims = grid_dims(comm.size, None)
    if max(dims) > n:
        pytest.skip(
            f"n={n} is too small for a {dims[0]}x{dims[1]} grid (the CLI refuses it,"
            " tests/test_jobs.py)"
        )
    grid = matmul.Grid(comm, n, dims, 3, "float64")
    c = matmul.summa(grid, CPU, width)
    parts = grid.cart.gather(((grid.rows, grid.cols), c), root=0)
    grid.free()
    if comm.rank == 0:
        full = np.empty((n, n))
        for (rows, cols), block in parts:
            full[rows[0] : rows[1], cols[0] : cols[1]] = block
        a = matmul.rows_of(0, 3, (0, n), (0, n), n, "float64")
        b = matmul.rows_of(1, 3, (0, n), (0, n), n, "float64")
        np.testing.assert_allclose(full, a @ b, rtol=1e-12)


@pytest.mark.parametrize("shape", [(16, 12), (7, 5, 3), (2, 9), (9, 2, 4)])
def test_fft_matches_numpy_and_round_trips(comm, shape):
    from hpcsuite import fft
    from hpcsuite.core.partition import owned

    rows, cols = owned(shape[0], comm.size, comm.rank), owned(shape[1], comm.size, comm.rank)
    data = fft.slab(shape, *rows, 5)
    x = fft.forward(comm, CPU, data, shape)
    back = fft.inverse(comm, CPU, x, shape)
    np.testing.assert_allclose(back, data, rtol=0, atol=1e-12)
    ref = np.fft.fftn(fft.slab(shape, 0, shape[0], 5))
    np.testing.assert_allclose(x, ref[:, cols[0] : cols[1]], rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [1, 7, 31])
def test_kmer_counts_equal_counter_at_any_rank_count(comm, shared_tmp, k):
    from hpcsuite import kmer
    from hpcsuite.core.partition import owned

    path = shared_tmp / "reads.fq"
    if comm.rank == 0:
        rng = np.random.default_rng(9)
        with open(path, "w") as f:
            for i in range(300):
                seq = "".join(rng.choice(list("ACGTN"), size=60))
                f.write(f"@r{i}\n{seq}\n+\n{'@' * 60}\n")
    comm.Barrier()
    size = path.stat().st_size
    seqs = kmer.read_range(str(path), "fastq", *owned(size, comm.size, comm.rank))
    codes, counts, _ = kmer.run(comm, seqs, k)
    assert np.all(kmer.owner(codes, comm.size) == comm.rank)  # each k-mer lives on its owner only
    gathered = comm.gather((codes, counts, seqs), root=0)
    if comm.rank == 0:
        ours = {kmer.decode(c, k): int(n) for part in gathered for c, n in zip(part[0], part[1])}
        assert ours == dict(kmer.reference_counts([s for part in gathered for s in part[2]], k))
        assert sum(len(part[2]) for part in gathered) == 300


class _Device(np.ndarray):
    """NumPy posing as device memory: the fake backend below hands these out."""


@pytest.fixture(params=["staged", "direct"])
def device(request, monkeypatch):
    """A device backend on the CPU, with MPI taken as CUDA-aware or not: the kernels' two
    GPU paths (device buffers to MPI, or host copies) run without a GPU. It counts
    uploads, downloads and stream syncs."""
    from hpcsuite.core import mpi

    monkeypatch.setenv(mpi.GPU_AWARE_ENV, "0" if request.param == "staged" else "1")
    log = {"sync": 0, "up": 0, "down": 0}

    def up(a):
        log["up"] += 1
        return np.array(a).view(_Device)

    def down(a):
        log["down"] += 1
        return np.array(a)  # a plain ndarray: the host copy

    fake = backend.Backend(
        name="fake-device",
        xp=np,
        device="gpu",
        on_device=True,
        from_host=up,
        to_host=down,
        synchronize=lambda: log.__setitem__("sync", log["sync"] + 1),
    )
    yield fake, request.param, log


def test_kernels_on_a_device_backend_equal_their_cpu_runs(comm, device):
    from hpcsuite import fft, matmul, stencil

    fake, path, log = device
    dims = stencil.grid_dims(comm.size, None)
    for overlap in (False, True):
        ours, where, cart = stencil.run(comm, fake, (37, 29), 6, 0.2, dims=dims, overlap=overlap)
        cpu, _, _ = stencil.run(comm, CPU, (37, 29), 6, 0.2, dims=dims, overlap=overlap)
        assert ours.tobytes() == cpu.tobytes() and where
        cart.Free()
    shape = (11, 6, 4)
    rows = fft.owned(shape[0], comm.size, comm.rank)
    data = fft.slab(shape, *rows, 5)
    x = fft.forward(comm, fake, fake.from_host(data), shape)
    assert x.tobytes() == fft.forward(comm, CPU, data, shape).tobytes()
    assert np.array_equal(
        np.asarray(fft.inverse(comm, fake, x, shape)), np.asarray(fft.inverse(comm, CPU, x, shape))
    )
    grid = matmul.Grid(comm, 23, dims, 3, "float64")
    assert matmul.summa(grid, fake, 5).tobytes() == matmul.summa(grid, CPU, 5).tobytes()
    grid.free()
    assert log["sync"] > 0
    if comm.size > 1:  # something moved: through host copies only when staged
        assert (log["down"] > 0) == (path == "staged")


def test_a_job_too_big_for_its_gpu_is_refused_on_every_rank(comm):
    """Ranks that share a GPU add up; the refusal names the GPU and comes from all ranks."""
    from hpcsuite.core import mpi
    from hpcsuite.core.errors import InputError

    def gpu(device_id, free):
        return backend.Backend(
            name="fake-device",
            xp=np,
            device="gpu",
            on_device=True,
            device_id=device_id,
            free_bytes=lambda: free,
        )

    mpi.check_device_fits(comm, CPU, 10**18, hint="x")  # host arrays: nothing to check
    mpi.check_device_fits(comm, gpu(0, 10**9), 10**8 // comm.size, hint="x")  # 0.1 GB on a 1 GB GPU
    # Every rank alone fits in 1 GB (0.6 GB), all of them on one GPU fit only when alone.
    shared = gpu(0, 10**9)
    if comm.size == 1:
        mpi.check_device_fits(comm, shared, 6 * 10**8, hint="x")
    else:
        with pytest.raises(
            InputError,
            match=(
                rf"needs {0.6 * comm.size:.2f} GB on GPU 0 of node .* \({comm.size} ranks share"
                r" it\) "
                r"but only 1.00 GB .*; fewer ranks per GPU"
            ),
        ) as err:
            mpi.check_device_fits(comm, shared, 6 * 10**8, hint="fewer ranks per GPU")
        assert err.value.collective
    # One GPU each: only the rank whose GPU is small is short, and every rank hears of it.
    mine = gpu(comm.rank, 10**8 if comm.rank == comm.size - 1 else 10**9)
    with pytest.raises(InputError, match=rf"GPU {comm.size - 1} of node") as err:
        mpi.check_device_fits(comm, mine, 6 * 10**8, hint="x")
    assert err.value.collective
