"""hpcsuite.train with CUDA tensors inside MPI jobs (marked ``mpi`` and ``gpu``).

Run by benchmarks/gpu_check.sh (``mpiexec -n 2 python -m mpi4py -m pytest --with-mpi
-m "mpi and gpu"``); tests/run.sh deselects them, and without a CUDA device they skip.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs the train extra: pip install 'hpcsuite[train]'")
import hpcsuite.train as hvd  # noqa: E402

pytestmark = [
    pytest.mark.mpi,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch"),
]


def _run(device, overlap, compression, steps=4):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 5)
    ).to(device)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        model.named_parameters(),
        compression=compression,
        fusion_bytes=4096,
        overlap=overlap,
    )
    for step in range(steps):
        g = torch.Generator().manual_seed(100 * step + hvd.rank())
        x, y = torch.randn(8, 32, generator=g), torch.randint(0, 5, (8,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device)).backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()])


def _choose_path(monkeypatch, staged):
    """Staged: every call through pinned host memory; else device memory wherever this MPI
    takes it - skipped, and said so, where MPI is not CUDA-aware (the PyPI wheels)."""
    if not staged and not hvd.ops.mpi.gpu_aware():
        pytest.skip("MPI is not CUDA-aware here: the direct path cannot run")
    if staged:  # the policy's own input (read at every call): MPI taken as not CUDA-aware
        monkeypatch.setenv(hvd.ops.mpi.GPU_AWARE_ENV, "0")


@pytest.mark.parametrize("staged", [True, False])
@pytest.mark.parametrize("compression", [hvd.Compression.none, hvd.Compression.fp16])
@pytest.mark.parametrize("overlap", hvd.ops.OVERLAP_MODES)
def test_cuda_training_equals_cpu_training(overlap, compression, staged, monkeypatch):
    """Staged through pinned host memory, or handed to a CUDA-aware MPI directly."""
    hvd.init()
    _choose_path(monkeypatch, staged)
    device = hvd.ops.bind_device("cuda")
    on_gpu, on_cpu = (
        _run(device, overlap, compression),
        _run(torch.device("cpu"), overlap, compression),
    )
    torch.testing.assert_close(
        on_gpu, on_cpu, rtol=1e-3 if compression is hvd.Compression.fp16 else 1e-5, atol=1e-4
    )
    everyone = hvd.allgather_object(on_gpu)
    assert all(torch.equal(everyone[0], p) for p in everyone), "ranks diverged"


@pytest.mark.parametrize("staged", [True, False])
def test_collectives_on_cuda_tensors_equal_the_cpu_ones(staged, monkeypatch):
    hvd.init()
    _choose_path(monkeypatch, staged)
    device = hvd.ops.bind_device("cuda")
    r, n = hvd.rank(), hvd.size()
    x = torch.arange(6 * n, dtype=torch.float32).view(2 * n, 3) + r
    calls = {
        "allreduce": lambda t: hvd.allreduce(t, op=hvd.Sum),
        "allreduce fp16": lambda t: hvd.allreduce(t.half(), op=hvd.Sum).float(),
        "allgather": lambda t: hvd.allgather(t[: r + 1]),
        "broadcast": lambda t: hvd.broadcast(t, root_rank=n - 1),
        "alltoall": lambda t: hvd.alltoall(t),
        "reducescatter": lambda t: hvd.reducescatter(t, op=hvd.Sum),
        "grouped": lambda t: torch.cat(
            [o.reshape(-1) for o in hvd.grouped_allreduce([t, t[0]], op=hvd.Sum)]
        ),
        "async": lambda t: hvd.synchronize(hvd.allreduce_async(t, op=hvd.Sum)),
    }
    for name, call in calls.items():
        on_gpu, on_cpu = call(x.to(device)), call(x)
        assert on_gpu.is_cuda, name
        assert torch.equal(on_gpu.cpu(), on_cpu), name
    bn = hvd.SyncBatchNorm(3).to(device)
    torch.testing.assert_close(
        bn(x.to(device)).cpu(), hvd.SyncBatchNorm(3)(x), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("staged", [True, False])
def test_tensors_reach_mpi_only_after_queued_kernels_finish(staged, monkeypatch):
    """The GPU spins ~0.25 s, then a kernel writes the tensor: what MPI gets must come
    after both (the stream is synchronized), staged or handed over directly."""
    hvd.init()
    _choose_path(monkeypatch, staged)
    device = hvd.ops.bind_device("cuda")
    t = torch.zeros(1 << 20, device=device)
    torch.cuda._sleep(500_000_000)
    t.fill_(float(hvd.rank() + 1))
    done = torch.cuda.Event()
    done.record()
    buffer = hvd.ops._staged(t)
    assert done.query(), "a tensor went to MPI while kernels writing it were queued"
    assert torch.equal(buffer.cpu(), torch.full((1 << 20,), float(hvd.rank() + 1)))


@pytest.mark.parametrize("staged", [True, False])
def test_async_operations_and_join_on_cuda_tensors(staged, monkeypatch):
    """Horovod's async forms on device tensors, with Horovod's integer averages and scale
    factors; a rank that joined mirrors them on the host (same MPI calls, same sizes)."""
    hvd.init()
    _choose_path(monkeypatch, staged)
    device = hvd.ops.bind_device("cuda")
    n, r = hvd.size(), hvd.rank()
    if r == 0 and n > 1:
        assert hvd.join() == n - 1
        return
    active = n - 1 if n > 1 else 1
    first = 1 if n > 1 else 0
    s = hvd.allreduce_async_(torch.ones(5, device=device), op=hvd.Sum, prescale_factor=2, name="s")
    i = hvd.allreduce_async(torch.full((3,), 7, dtype=torch.int64, device=device), name="i")
    b = hvd.broadcast_async(torch.full((4,), float(r), device=device), root_rank=first, name="b")
    g = hvd.allgather_async(torch.full((1, 2), float(r), device=device), name="g")
    grouped = hvd.grouped_allreduce_async(
        [torch.ones(2, device=device), torch.ones(3)], op=hvd.Sum, name="grp"
    )
    assert torch.equal(
        hvd.synchronize(g).cpu(), torch.tensor([[float(q)] * 2 for q in range(first, n)])
    )
    assert torch.equal(hvd.synchronize(b).cpu(), torch.full((4,), float(first)))
    assert torch.equal(hvd.synchronize(s).cpu(), torch.full((5,), 2.0 * active))
    average = hvd.synchronize(i)
    assert average.is_cuda and average.tolist() == [int(7 * active * (1.0 / n))] * 3
    two, three = hvd.synchronize(grouped)
    assert (
        two.is_cuda
        and two.tolist() == [float(active)] * 2
        and three.tolist() == [float(active)] * 3
    )
    if n > 1:
        assert hvd.join() == n - 1
