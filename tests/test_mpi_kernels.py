"""MPI tests of the scientific kernels: hold at any rank count (run at n = 1..4)."""

from __future__ import annotations

import numpy as np
import pytest

from hpcsuite import montecarlo, stream
from hpcsuite.core import backend

pytestmark = pytest.mark.mpi
CPU = backend.load("numpy")
OPTION = dict(kind="call", spot=100.0, strike=105.0, rate=0.05, vol=0.2, maturity=1.0)


def test_stream_validates_and_times_every_kernel(comm):
    out = stream.run(comm, CPU, 10007, iterations=3)
    assert out["errors"] == [0.0, 0.0, 0.0]
    assert all(len(out["times"][k]) == 3 for k in stream.KERNELS)
    assert comm.allgather(out["times"]["triad"]) == [out["times"]["triad"]] * comm.size


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
    local, where, cart = stencil.run(comm, CPU, shape, 13, 0.2, dims=dims, overlap=overlap, engine=engine)
    field = stencil.gather(cart, CPU, local, where, shape)
    if comm.rank == 0:
        assert field.tobytes() == stencil.reference(shape, 13, 0.2).tobytes()


@pytest.mark.parametrize("n,width", [(33, 8), (64, 64), (5, 2)])
def test_summa_matches_numpy_on_any_grid(comm, n, width):
    from hpcsuite import matmul
    from hpcsuite.stencil import grid_dims

    dims = grid_dims(comm.size, None)
    if max(dims) > n:
        return  # refused by the CLI (tests/test_jobs.py); nothing to multiply here
    grid = matmul.Grid(comm, n, dims, 3, "float64")
    c = matmul.summa(grid, CPU, width)
    parts = grid.cart.gather(((grid.rows, grid.cols), c), root=0)
    grid.free()
    if comm.rank == 0:
        full = np.empty((n, n))
        for (rows, cols), block in parts:
            full[rows[0]:rows[1], cols[0]:cols[1]] = block
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
    np.testing.assert_allclose(x, ref[:, cols[0]:cols[1]], rtol=0, atol=1e-10)


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
