"""hpcsuite.train inside MPI jobs (n = 1..4): the optimizer equals one-process big-batch
training, ranks stay identical, compression stays close, mismatches are caught."""

from __future__ import annotations

import math
import os

import pytest

if os.environ.get("CI") == "true":  # CI installs the train extra: a missing torch fails there
    import torch
else:
    torch = pytest.importorskip(
        "torch", reason="needs the train extra: pip install 'hpcsuite[train]'"
    )
from mpi4py import MPI  # noqa: E402

import hpcsuite.train as hvd  # noqa: E402
from hpcsuite.core.errors import HpcsuiteError  # noqa: E402

pytestmark = pytest.mark.mpi
B = 4  # samples per rank and step
MODES = hvd.ops.OVERLAP_MODES
SMALL = (
    256  # bytes: the test model's 652 bytes of gradients in 3 buckets, tensors split across them
)


@pytest.fixture(autouse=True)
def _hvd():
    hvd.init()
    yield


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def _data(step, n):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _train(
    opt_cls,
    kwargs,
    steps,
    *,
    compression=hvd.Compression.none,
    passes=1,
    fusion=SMALL,
    module_zero_grad=False,
    overlap="sync",
    predivide=1.0,
):
    """Distributed run and the one-process run on the concatenated batches."""
    size, rank = hvd.size(), hvd.rank()
    model, alone = _model(), _model()
    opt = hvd.DistributedOptimizer(
        opt_cls(model.parameters(), **kwargs),
        model.named_parameters(),
        compression=compression,
        backward_passes_per_step=passes,
        fusion_bytes=fusion,
        overlap=overlap,
        gradient_predivide_factor=predivide,
    )
    ref = opt_cls(alone.parameters(), **kwargs)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(steps):
        x, y = _data(step, size * B * passes)
        if module_zero_grad:
            model.zero_grad(set_to_none=True)  # drops the fused views: the optimizer must cope
        else:
            opt.zero_grad()
        for k in range(passes):  # this rank's micro-batches
            lo = (k * size + rank) * B
            loss_fn(model(x[lo : lo + B]), y[lo : lo + B]).backward()
        opt.step()
        # Horovod's definition: each pass's gradient averaged over ranks (= the pass's
        # combined batch on one process), the passes summed.
        ref.zero_grad()
        for k in range(passes):
            lo, hi = k * size * B, (k + 1) * size * B
            loss_fn(alone(x[lo:hi]), y[lo:hi]).backward()
        ref.step()
        flats = hvd.allgather_object(_flat(model))
        assert all(torch.equal(flats[0], f) for f in flats), "ranks diverged"
    return _flat(model), _flat(alone)


@pytest.mark.parametrize("overlap", MODES)
@pytest.mark.parametrize("fusion", [SMALL, 1 << 26])
@pytest.mark.parametrize(
    "opt_cls,kwargs",
    [(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}), (torch.optim.Adam, {"lr": 0.01})],
)
def test_optimizer_equals_one_process_on_the_combined_batch(opt_cls, kwargs, fusion, overlap):
    ours, alone = _train(opt_cls, kwargs, steps=5, fusion=fusion, overlap=overlap)
    torch.testing.assert_close(ours, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", MODES)
def test_backward_passes_per_step_sum_the_passes_as_horovod(overlap):
    ours, alone = _train(
        torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, steps=4, passes=2, overlap=overlap
    )
    torch.testing.assert_close(ours, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", MODES)
@pytest.mark.parametrize(
    "compression,tol", [(hvd.Compression.fp16, 2e-3), (hvd.Compression.bf16, 2e-2)]
)
def test_sixteen_bit_compression_stays_within_tolerance(compression, tol, overlap):
    ours, alone = _train(
        torch.optim.SGD, {"lr": 0.1}, steps=5, compression=compression, overlap=overlap
    )
    assert torch.max(torch.abs(ours - alone)) <= tol * torch.max(torch.abs(alone))


@pytest.mark.parametrize("compression", [hvd.Compression.none, hvd.Compression.fp16])
def test_fusion_uses_ceil_bytes_over_buffer_reductions(compression):
    model = _model()
    wire_bytes = sum(p.numel() for p in model.parameters()) * (
        2 if compression is hvd.Compression.fp16 else 4
    )
    before = hvd.ops.reduction_calls()
    _train(torch.optim.SGD, {"lr": 0.1}, steps=1, fusion=SMALL, compression=compression)
    expected = math.ceil(wire_bytes / SMALL) if hvd.size() > 1 else 0  # one rank exchanges nothing
    assert hvd.ops.reduction_calls() - before == expected


@pytest.mark.parametrize("overlap", ["poll", "thread"])
def test_reductions_start_during_backward(overlap):
    """The last layer's buckets are started by the gradient hooks, before step()."""
    model = _model()
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        model.named_parameters(),
        fusion_bytes=SMALL,
        overlap=overlap,
    )
    opt.zero_grad()
    x, y = _data(0, B)
    torch.nn.CrossEntropyLoss()(model(x), y).backward()
    started = len(opt._started)
    opt.step()
    if hvd.size() > 1:
        # 3 buckets; the first (last layer) is complete before the first layer's gradients
        assert 1 <= started <= 3
    else:
        assert started == 0


def test_unknown_overlap_mode_is_named():
    model = _model()
    with pytest.raises(hvd.ops.HpcsuiteError, match="overlap='eager' is not an overlap mode"):
        hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), overlap="eager")


def test_broadcast_makes_a_diverged_rank_identical():
    model = _model(seed=hvd.rank())  # every rank starts different
    opt = torch.optim.Adam(model.parameters(), lr=0.01 * (hvd.rank() + 1))
    model(torch.randn(2, 6)).sum().backward()
    opt.step()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    flats = hvd.allgather_object((_flat(model), opt.state_dict()))
    assert all(torch.equal(flats[0][0], f[0]) for f in flats)
    assert all(f[1]["param_groups"][0]["lr"] == 0.01 for f in flats)
    assert all(
        torch.equal(flats[0][1]["state"][0]["exp_avg"], f[1]["state"][0]["exp_avg"]) for f in flats
    )


def test_mismatched_collectives_raise_the_same_error_everywhere():
    name = "weights" if hvd.rank() == 0 else "biases"
    if hvd.size() == 1:
        pytest.skip("one rank always agrees with itself")
    with pytest.raises(hvd.CollectiveMismatch, match="rank 0: allreduce\\(weights") as info:
        hvd.allreduce(torch.ones(3), name=name)
    assert "rank 1: allreduce(biases" in str(info.value) and info.value.collective


def test_collectives_on_tensors():
    r, n = hvd.rank(), hvd.size()
    t = torch.full((3,), float(r))
    assert torch.equal(hvd.allreduce(t, op=hvd.Sum), torch.full((3,), float(n * (n - 1) / 2)))
    assert torch.allclose(hvd.allreduce(t), torch.full((3,), (n - 1) / 2))
    gathered = hvd.allgather(torch.arange(r + 1))
    assert torch.equal(gathered, torch.cat([torch.arange(i + 1) for i in range(n)]))
    assert torch.equal(hvd.broadcast(t, n - 1), torch.full((3,), float(n - 1)))
    handle = hvd.allreduce_async(torch.ones(5), op=hvd.Sum)
    assert torch.equal(hvd.synchronize(handle), torch.full((5,), float(n)))
    half = hvd.allreduce(torch.full((4,), 1.5, dtype=torch.bfloat16), op=hvd.Sum)
    assert half.dtype == torch.bfloat16 and torch.equal(half.float(), torch.full((4,), 1.5 * n))
    assert hvd.broadcast_object({"rank": r}, root_rank=0) == {"rank": 0}
    assert hvd.allgather_object(r) == list(range(n))
    assert hvd.local_size() == n and 0 <= hvd.local_rank() < n


def test_wrapping_keeps_the_optimizer_state():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 6)).sum().backward()
    opt.step()
    wrapped = hvd.DistributedOptimizer(opt, model.named_parameters())
    before = opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(wrapped.state_dict()["state"][0]["momentum_buffer"], before)
    assert isinstance(wrapped, torch.optim.SGD)


@pytest.mark.parametrize("overlap", MODES)
def test_gradients_replaced_by_module_zero_grad_are_still_reduced(overlap):
    ours, alone = _train(
        torch.optim.SGD,
        {"lr": 0.1, "momentum": 0.9},
        steps=3,
        module_zero_grad=True,
        overlap=overlap,
    )
    torch.testing.assert_close(ours, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", MODES)
def test_a_parameter_without_gradient_receives_the_average(overlap):
    model = torch.nn.ModuleDict({"used": torch.nn.Linear(3, 1), "idle": torch.nn.Linear(3, 1)})
    for p in model.parameters():
        torch.nn.init.constant_(p, 1.0)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        model.named_parameters(),
        fusion_bytes=64,
        overlap=overlap,
    )
    opt.zero_grad()
    # Only rank 0 uses "idle"; every rank uses "used".
    out = model["used"](torch.ones(1, 3)) + (
        model["idle"](torch.ones(1, 3)) if hvd.rank() == 0 else 0
    )
    out.sum().backward()
    opt.step()
    idle = hvd.allgather_object(model["idle"].weight.detach().clone())
    assert all(torch.equal(idle[0], w) for w in idle)
    assert torch.allclose(idle[0], torch.full((1, 3), 1.0 - 1.0 / hvd.size()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sixteen_bit_sums_add_in_float32_in_rank_order_and_round_once(dtype, mode):
    n = hvd.size()
    inputs = [
        torch.randn(1001, generator=torch.Generator().manual_seed(r)).to(dtype) for r in range(n)
    ]
    total = inputs[0].float()
    for x in inputs[1:]:
        total += x.float()
    mine = inputs[hvd.rank()].clone()
    hvd.ops.wait_sums([hvd.ops.start_sum(mine, mode)], "test")
    assert torch.equal(mine, total.to(dtype))
    assert torch.equal(hvd.allreduce(inputs[hvd.rank()], op=hvd.Sum), total.to(dtype))


def test_horovod_allreduce_signature_ops_and_scaling():
    r, n = hvd.rank(), hvd.size()
    t = torch.full((3,), float(r + 1))
    assert torch.equal(hvd.allreduce(t, average=False), torch.full((3,), n * (n + 1) / 2))
    assert torch.equal(hvd.allreduce(t, op=hvd.Min), torch.ones(3))
    assert torch.equal(hvd.allreduce(t, op=hvd.Max), torch.full((3,), float(n)))
    assert torch.equal(hvd.allreduce(t, op=hvd.Product), torch.full((3,), float(math.factorial(n))))
    assert torch.equal(hvd.allreduce(t.half(), op=hvd.Max), torch.full((3,), float(n)).half())
    scaled = hvd.allreduce(t, op=hvd.Sum, prescale_factor=2.0, postscale_factor=0.25)
    assert torch.equal(scaled, torch.full((3,), n * (n + 1) / 4))
    squeezed = hvd.allreduce(t, compression=hvd.Compression.fp16)
    assert squeezed.dtype == torch.float32 and torch.equal(squeezed, torch.full((3,), (n + 1) / 2))
    handle = hvd.allreduce_async(t, op=hvd.Sum, postscale_factor=2.0)
    assert torch.equal(hvd.synchronize(handle), torch.full((3,), float(n * (n + 1))))
    assert torch.equal(t, torch.full((3,), float(r + 1)))  # the out-of-place forms leave it alone


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: hvd.allreduce(torch.ones(2), op=hvd.Adasum), "Adasum is not supported"),
        (lambda: hvd.allreduce(torch.ones(2), average=True, op=hvd.Sum), "not both"),
        (
            lambda: hvd.DistributedOptimizer(
                torch.optim.SGD(_model().parameters(), lr=0.1), op=hvd.Adasum
            ),
            "Adasum is not supported",
        ),
        (
            lambda: hvd.DistributedOptimizer(
                torch.optim.SGD(_model().parameters(), lr=0.1),
                op=hvd.Sum,
                gradient_predivide_factor=2.0,
            ),
            "needs op=hvd.Average",
        ),
    ],
)
def test_unsupported_horovod_options_are_named(call, message):
    with pytest.raises(hvd.ops.HpcsuiteError, match=message):
        call()


def test_grouped_allreduce_and_broadcast_async():
    r, n = hvd.rank(), hvd.size()
    group = [
        torch.full((2, 3), float(r)),
        torch.full((4,), float(r), dtype=torch.float64),
        torch.full((1,), 1.0),
    ]
    out = hvd.grouped_allreduce(group, op=hvd.Sum, name="g")
    assert [o.dtype for o in out] == [torch.float32, torch.float64, torch.float32]
    assert all(torch.equal(o, torch.full_like(o, n * (n - 1) / 2)) for o in out[:2])
    assert torch.equal(out[2], torch.full((1,), float(n)))
    assert torch.equal(group[0], torch.full((2, 3), float(r)))  # copies
    hvd.grouped_allreduce_(group)
    assert torch.equal(group[1], torch.full((4,), (n - 1) / 2, dtype=torch.float64))
    handle = hvd.broadcast_async(torch.full((5,), float(r)), root_rank=n - 1)
    assert torch.equal(hvd.synchronize(handle), torch.full((5,), float(n - 1)))


def test_topology_and_build_queries(comm):
    # Horovod's layout, computed here from the host names alone: local rank = place among
    # this host's ranks; cross communicator = the ranks with the same local rank.
    hosts = comm.allgather(MPI.Get_processor_name())
    local = [hosts[:q].count(hosts[q]) for q in range(comm.size)]
    peers = [q for q in range(comm.size) if local[q] == local[comm.rank]]
    assert (hvd.rank(), hvd.size()) == (comm.rank, comm.size)
    assert (hvd.local_rank(), hvd.local_size()) == (local[comm.rank], hosts.count(hosts[comm.rank]))
    assert (hvd.cross_rank(), hvd.cross_size()) == (peers.index(comm.rank), len(peers))
    assert hvd.mpi_built() and hvd.mpi_enabled() and not hvd.gloo_built() and hvd.nccl_built() == 0
    assert (
        hvd.mpi_threads_supported()
    )  # mpi4py asks for MPI_THREAD_MULTIPLE; overlap="thread" needs it


@pytest.mark.parametrize("kind", ["cpu", "auto"])
def test_device_cpu_and_auto_without_a_gpu_bind_the_cpu(kind, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without one
    assert hvd.ops.bind_device(kind) == torch.device("cpu")


@pytest.mark.parametrize("kind", ["gpu", "cuda", "auto"])
def test_device_gpu_and_its_alias_cuda_bind_the_node_local_gpu(kind, monkeypatch):
    # Three GPUs per node: rank r takes local rank r mod 3, made current (nothing runs on it).
    made = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "set_device", made.append)
    want = torch.device("cuda", hvd.local_rank() % 3)
    assert hvd.ops.bind_device(kind) == want and made == [want]


@pytest.mark.parametrize("kind", ["gpu", "cuda"])
def test_device_gpu_without_one_names_the_fix(kind, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        HpcsuiteError, match=rf"--device {kind}: no CUDA device visible .*cpu or auto"
    ):
        hvd.ops.bind_device(kind)
    with pytest.raises(
        HpcsuiteError, match=r"unknown device 'tpu'; choose one of cpu, gpu, auto, cuda"
    ):
        hvd.ops.bind_device("tpu")


def test_gradient_predivide_factor_gives_the_same_average():
    ours, alone = _train(torch.optim.SGD, {"lr": 0.1}, steps=3, predivide=2.0)
    torch.testing.assert_close(ours, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", MODES)
def test_sparse_gradients_are_reduced_dense(overlap):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 4, sparse=True)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(emb.parameters(), lr=1.0), emb.named_parameters(), overlap=overlap
    )
    before = emb.weight.detach().clone()
    opt.zero_grad()
    emb(torch.tensor([hvd.rank() % 10])).sum().backward()  # each rank touches its own row
    opt.step()
    want = before.clone()
    for r in range(hvd.size()):
        want[r % 10] -= 1.0 / hvd.size()
    torch.testing.assert_close(emb.weight.detach(), want)


def test_gradients_flow_through_the_collectives_as_horovods():
    r, n = hvd.rank(), hvd.size()
    x = torch.full((2,), float(r + 1), requires_grad=True)
    (hvd.allreduce(x, op=hvd.Sum, name="s") * (r + 1)).sum().backward()
    assert torch.equal(
        x.grad, torch.full((2,), n * (n + 1) / 2)
    )  # the sum of every rank's upstream
    x.grad = None
    hvd.allreduce(
        x, name="a"
    ).sum().backward()  # average: d/dx_r of mean_j x_j, summed over ranks' losses
    assert torch.allclose(x.grad, torch.ones(2))
    rows = torch.full((r + 1, 3), 1.0, requires_grad=True)  # uneven first dimensions
    gathered = hvd.allgather(rows, name="g")
    assert gathered.shape == (n * (n + 1) // 2, 3)
    (gathered * (r + 1)).sum().backward()
    assert torch.allclose(rows.grad, torch.full((r + 1, 3), (n + 1) / 2))  # averaged over ranks
    b = torch.full((3,), float(r), requires_grad=True)
    hvd.broadcast(b, root_rank=0, name="b").sum().backward()
    assert torch.equal(b.grad, torch.ones(3) if r == 0 else torch.zeros(3))
    pair = [
        torch.ones(2, requires_grad=True),
        torch.ones(3, dtype=torch.float64, requires_grad=True),
    ]
    outs = hvd.grouped_allreduce(pair, op=hvd.Sum, name="gr")
    (outs[0].sum() + outs[1].sum()).backward()
    assert (
        torch.equal(pair[0].grad, torch.full((2,), float(n)))
        and pair[1].grad.dtype == torch.float64
    )
    with pytest.raises(hvd.ops.HpcsuiteError, match="has no gradient"):
        hvd.allreduce(x, op=hvd.Max, name="m").sum().backward()


@pytest.mark.parametrize("shape", [(B, 3), (B, 3, 5, 4)])
def test_sync_batch_norm_equals_batch_norm_on_the_whole_batch(shape):
    """Outputs, input gradients, and parameters after a step match one process."""
    r, n = hvd.rank(), hvd.size()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n * shape[0], *shape[1:], generator=g) * 3 + 1
    weights = torch.randn(x[:1].numel(), generator=g).view(1, *shape[1:])  # a fixed loss per sample
    sync, plain = (
        hvd.SyncBatchNorm(shape[1]),
        (torch.nn.BatchNorm1d(shape[1]) if len(shape) == 2 else torch.nn.BatchNorm2d(shape[1])),
    )
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(sync.parameters(), lr=0.5), sync.named_parameters()
    )
    ref_opt = torch.optim.SGD(plain.parameters(), lr=0.5)
    mine = x[r * shape[0] : (r + 1) * shape[0]].clone().requires_grad_()
    whole = x.clone().requires_grad_()
    out = sync(mine)
    (out * weights).sum().div(shape[0]).backward()  # per-rank mean loss, averaged by the optimizer
    opt.step()
    ref = plain(whole)
    (ref * weights).sum().div(n * shape[0]).backward()
    ref_opt.step()
    torch.testing.assert_close(out, ref[r * shape[0] : (r + 1) * shape[0]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        mine.grad / n, whole.grad[r * shape[0] : (r + 1) * shape[0]], rtol=1e-4, atol=1e-6
    )
    torch.testing.assert_close(sync.weight, plain.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sync.running_var, plain.running_var, rtol=1e-5, atol=1e-6)
    sync.eval(), plain.eval()
    torch.testing.assert_close(sync(x), plain(x), rtol=1e-5, atol=1e-5)


def test_convert_sync_batchnorm_keeps_the_state():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    with torch.no_grad():
        model[1].weight.fill_(2.0)
        model[1].running_mean.fill_(0.5)
    converted = hvd.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], hvd.SyncBatchNorm) and isinstance(converted[0], torch.nn.Conv2d)
    assert torch.equal(converted[1].weight, torch.full((2,), 2.0))
    assert torch.equal(converted[1].running_mean, torch.full((2,), 0.5))


def test_alltoall_moves_rows_and_gradients_back():
    r, n = hvd.rank(), hvd.size()
    splits = [(r + j) % 3 for j in range(n)]  # uneven, some empty
    x = torch.arange(sum(splits) * 2, dtype=torch.float32).view(-1, 2).add(100 * r).requires_grad_()
    out, received = hvd.alltoall(x, splits=torch.tensor(splits), name="a2a")
    assert received.tolist() == [(j + r) % 3 for j in range(n)]
    expected = []
    for j in range(n):  # rank j sends me rows [sum of its splits before r, +splits_j[r])
        theirs = [(j + k) % 3 for k in range(n)]
        lo = sum(theirs[:r])
        rows = (
            torch.arange(sum(theirs) * 2, dtype=torch.float32)
            .view(-1, 2)
            .add(100 * j)[lo : lo + theirs[r]]
        )
        expected.append(rows)
    assert torch.equal(out, torch.cat(expected))
    (out * 2).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2.0))
    even = hvd.alltoall(torch.arange(2 * n, dtype=torch.float64).view(2 * n, 1) + 10 * r)
    assert torch.equal(
        even.view(-1),
        torch.tensor(
            [10.0 * j + 2 * r + k for j in range(n) for k in range(2)], dtype=torch.float64
        ),
    )
    with pytest.raises(hvd.ops.HpcsuiteError, match="must be"):
        hvd.alltoall(torch.ones(3, 2), splits=[3] + [1] * (n - 1) if n > 1 else [2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_reducescatter_keeps_this_ranks_rows_of_the_sum(dtype):
    r, n = hvd.rank(), hvd.size()
    rows = 2 * n + 1  # uneven: the first rank gets one more
    x = (torch.arange(rows * 3, dtype=torch.float32).view(rows, 3) + r).to(dtype).requires_grad_()
    out = hvd.reducescatter(x, op=hvd.Sum, name="rs")
    total = sum(torch.arange(rows * 3, dtype=torch.float32).view(rows, 3) + j for j in range(n))
    lo = 2 * r + min(r, 1)
    assert out.dtype == dtype and torch.equal(
        out.float(), total[lo : lo + 2 + (1 if r < 1 else 0)].to(dtype).float()
    )
    mean = hvd.reducescatter(x.detach().float(), name="rs.mean")
    torch.testing.assert_close(mean, total[lo : lo + mean.shape[0]] / n)
    out.float().sum().backward()
    assert torch.equal(
        x.grad.float(), torch.full((rows, 3), float(n))
    )  # Horovod's backward: times n for Sum


def test_fusion_buffer_from_the_environment_horovods_name_included(monkeypatch):
    from hpcsuite.train.optimizer import FUSION_BYTES, fusion_size

    assert fusion_size() == FUSION_BYTES and fusion_size(1000) == 1000
    monkeypatch.setenv("HOROVOD_FUSION_THRESHOLD", "2048")
    assert fusion_size() == 2048
    monkeypatch.setenv("HPCSUITE_TRAIN_FUSION_BYTES", "4096")
    assert fusion_size() == 4096
    monkeypatch.setenv("HPCSUITE_TRAIN_FUSION_BYTES", "lots")
    with pytest.raises(hvd.ops.HpcsuiteError, match="is not a byte count"):
        fusion_size()


@pytest.mark.parametrize("overlap", MODES)
def test_synchronize_twice_reduces_once_and_zero_grad_resets(overlap):
    n = hvd.size()
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.constant_(model.weight, 0.0)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        model.named_parameters(),
        op=hvd.Sum,
        overlap=overlap,
    )
    opt.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    opt.synchronize()
    opt.synchronize()
    assert torch.equal(model.weight.grad, torch.full((1, 2), float(n)))  # summed once
    opt.zero_grad()  # the step is skipped: the next one must reduce its own gradients
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    assert torch.equal(model.weight.detach(), torch.full((1, 2), -float(n)))


def test_wrapping_the_same_parameters_again_leaves_the_old_optimizer_idle():
    model, alone = _model(), _model()
    first = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        model.named_parameters(),
        fusion_bytes=SMALL,
        overlap="poll",
    )
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        model.named_parameters(),
        fusion_bytes=SMALL,
        overlap="poll",
    )
    ref = torch.optim.SGD(alone.parameters(), lr=0.1)
    n, r = hvd.size(), hvd.rank()
    for step in range(2):
        x, y = _data(step, n * B)
        opt.zero_grad()
        torch.nn.CrossEntropyLoss()(
            model(x[r * B : (r + 1) * B]), y[r * B : (r + 1) * B]
        ).backward()
        opt.step()
        ref.zero_grad()
        torch.nn.CrossEntropyLoss()(alone(x), y).backward()
        ref.step()
    assert not first._started and not first._passes
    torch.testing.assert_close(_flat(model), _flat(alone), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", MODES)
@pytest.mark.parametrize("compression", [hvd.Compression.none, hvd.Compression.fp16])
def test_join_lets_ranks_with_fewer_batches_stop(overlap, compression):
    """Rank r trains r + 1 steps, then joins; joined ranks send zeros, averages divide by n."""
    n, r = hvd.size(), hvd.rank()
    model, alone = _model(), _model()
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        model.named_parameters(),
        compression=compression,
        fusion_bytes=SMALL,
        overlap=overlap,
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(r + 1):
        x, y = _data(step, n * B)
        opt.zero_grad()
        loss_fn(model(x[r * B : (r + 1) * B]), y[r * B : (r + 1) * B]).backward()
        opt.step()
    assert hvd.join() == n - 1  # the rank with the most batches joined last
    for step in range(n):  # the same on one process: ranks >= step take part in step
        x, y = _data(step, n * B)
        grads = []
        for q in range(step, n):
            alone.zero_grad()
            loss_fn(alone(x[q * B : (q + 1) * B]), y[q * B : (q + 1) * B]).backward()
            grads.append([p.grad.clone() for p in alone.parameters()])
        with torch.no_grad():
            for i, p in enumerate(alone.parameters()):
                p -= 0.1 * sum(g[i] for g in grads) / n
    if r == n - 1:
        tol = 2e-3 if compression is hvd.Compression.fp16 else 1e-5
        torch.testing.assert_close(_flat(model), _flat(alone), rtol=tol, atol=tol)
    hvd.broadcast_parameters(model.state_dict(), root_rank=n - 1)  # what users do after join
    flats = hvd.allgather_object(_flat(model))
    assert all(torch.equal(flats[0], f) for f in flats)


def test_joined_ranks_take_part_with_zeros_or_no_rows():
    n, r = hvd.size(), hvd.rank()
    if n == 1:
        assert hvd.join() == 0  # nobody to wait for
        pytest.skip("needs 2 ranks: one joins, the others run collectives without it")
    if r == 0:  # joins at once, and takes part in the others' collectives until they join
        assert hvd.join() == n - 1
        return
    assert torch.equal(hvd.allreduce(torch.ones(3), op=hvd.Sum), torch.full((3,), float(n - 1)))
    assert torch.equal(hvd.allreduce(torch.ones(3)), torch.full((3,), (n - 1) / n))  # divides by n
    assert hvd.allgather(torch.full((1, 2), float(r))).shape == (n - 1, 2)
    assert hvd.broadcast_object({"from": 1}, root_rank=1) == {"from": 1}
    hvd.barrier()
    assert hvd.join() == n - 1


def test_a_collective_joined_ranks_cannot_take_part_in_fails_on_every_rank():
    n, r = hvd.size(), hvd.rank()
    if n == 1:
        assert hvd.join() == 0
        pytest.skip("needs 2 ranks: one joins while another starts an alltoall")
    with pytest.raises(hvd.CollectiveMismatch, match="alltoall cannot run while ranks have joined"):
        if r == 0:
            hvd.join()  # raises the same error, naming the collective
        else:
            hvd.alltoall(torch.ones(n, 1))
    hvd.barrier()  # everyone is out of the failed collective, in step
    assert hvd.join() == n - 1


@pytest.fixture
def staged(monkeypatch):
    """Every collective works on a copy, as on a GPU whose MPI is not CUDA-aware (pinned host
    buffers): the results must be written back - into parameters too - after MPI is done."""
    real = hvd.ops._staged
    monkeypatch.setattr(
        hvd.ops, "_staged", lambda t, nonblocking=False: real(t, nonblocking).clone()
    )


def test_staged_results_are_written_back_even_into_parameters(staged):
    r, n = hvd.rank(), hvd.size()

    def param(length):
        return torch.nn.Parameter(torch.full((length,), float(r + 1)))

    a, b, c, d, e = param(5), param(3), param(4), param(2), param(2 * n)
    hvd.allreduce_(a, op=hvd.Sum, prescale_factor=2.0, name="a")
    hvd.broadcast_(b, root_rank=n - 1, name="b")
    hvd.synchronize(hvd.allreduce_async_(c, name="c"))
    hvd.synchronize(hvd.broadcast_async_(d, root_rank=0, name="d"))
    out = hvd.reducescatter(e, op=hvd.Sum, prescale_factor=0.5, name="e")
    assert torch.equal(a.detach(), torch.full((5,), float(n * (n + 1))))
    assert torch.equal(b.detach(), torch.full((3,), float(n)))
    assert torch.equal(c.detach(), torch.full((4,), (n + 1) / 2))
    assert torch.equal(d.detach(), torch.full((2,), 1.0))
    assert torch.equal(out, torch.full((2,), n * (n + 1) / 4))
    assert all(t.requires_grad for t in (a, b, c, d))


@pytest.mark.parametrize("overlap", MODES)
def test_staged_training_equals_one_process(staged, overlap):
    ours, alone = _train(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, steps=3, overlap=overlap)
    torch.testing.assert_close(ours, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", MODES)
def test_parameters_of_two_dtypes_are_reduced_in_their_own_buffers(overlap):
    """A float64 head on a float32 body: one fused buffer per dtype, both as the one-process run."""
    n, r = hvd.size(), hvd.rank()

    class Mixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = _model()[:2], torch.nn.Linear(16, 3).double()

        def forward(self, x):
            return self.head(self.body(x).double())

    torch.manual_seed(1)
    ours = Mixed()
    alone = Mixed()
    alone.load_state_dict(ours.state_dict())
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9),
        ours.named_parameters(),
        fusion_bytes=SMALL,
        overlap=overlap,
    )
    ref = torch.optim.SGD(alone.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    # The float64 gradients travel as float64: their average has float64 precision
    # (float32 on the wire would be off by ~1e-8).
    x, y = _data(99, n * B)
    twin = Mixed()
    twin.load_state_dict(ours.state_dict())
    loss_fn(twin(x[r * B : (r + 1) * B]), y[r * B : (r + 1) * B]).backward()
    mine = torch.cat([p.grad.reshape(-1) for p in twin.head.parameters()])
    average = torch.stack(hvd.allgather_object(mine, name="local grads")).sum(0) / n
    opt.zero_grad()
    loss_fn(ours(x[r * B : (r + 1) * B]), y[r * B : (r + 1) * B]).backward()
    opt.synchronize()
    reduced = torch.cat([p.grad.reshape(-1) for p in ours.head.parameters()])
    assert reduced.dtype == torch.float64
    torch.testing.assert_close(reduced, average, rtol=1e-13, atol=1e-15)
    opt.zero_grad()
    for step in range(3):
        x, y = _data(step, n * B)
        opt.zero_grad()
        loss_fn(ours(x[r * B : (r + 1) * B]), y[r * B : (r + 1) * B]).backward()
        opt.step()
        ref.zero_grad()
        loss_fn(alone(x), y).backward()
        ref.step()
    assert {p.dtype for p in ours.parameters()} == {torch.float32, torch.float64}
    for a, b in zip(ours.parameters(), alone.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _shared_dir(tmp_path):
    return hvd.broadcast_object(str(tmp_path), root_rank=0, name="tmp")  # rank 0's folder for all


@pytest.mark.parametrize("overlap", MODES)
def test_timeline_shows_negotiation_exposed_waits_and_every_bucket(tmp_path, overlap):
    import json

    folder = _shared_dir(tmp_path)
    hvd.start_timeline(os.path.join(folder, f"tl-{overlap}-{{rank}}.json"), mark_cycles=True)
    _train(torch.optim.SGD, {"lr": 0.1}, steps=2, fusion=SMALL, overlap=overlap)  # 3 buckets a step
    hvd.allreduce(torch.ones(2), name="metric")
    hvd.stop_timeline()
    with open(os.path.join(folder, f"tl-{overlap}-{hvd.rank()}.json"), encoding="utf-8") as f:
        events = json.load(f)  # closed: a valid JSON array
    rows = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    spans = [(rows[e["tid"]], e["name"]) for e in events if e["ph"] == "X"]
    assert all(e["dur"] >= 0 and e["pid"] == hvd.rank() for e in events if e["ph"] == "X")
    buckets = [s for s in spans if s[0].startswith("reduction")]  # 163 gradients in 64 + 64 + 35
    alone = hvd.size() == 1  # one rank exchanges nothing
    assert buckets == (
        []
        if alone
        else [
            ("reduction 0", "sum of 64 float32"),
            ("reduction 1", "sum of 64 float32"),
            ("reduction 2", "sum of 35 float32"),
        ]
        * 2
    )
    assert (("collectives", "gradient reduction (3 buckets)") in spans) != alone
    assert ("negotiation", "allreduce of 'metric'") in spans
    assert sum(e["ph"] == "i" and e["name"] == "step" for e in events) == 2


def test_timeline_is_written_by_rank_0_unless_the_path_says_rank(tmp_path, monkeypatch):
    folder = _shared_dir(tmp_path)
    hvd.start_timeline(os.path.join(folder, "only-0.json"))
    hvd.barrier()
    hvd.stop_timeline()
    hvd.barrier()
    assert sorted(os.listdir(folder)) == ["only-0.json"]
    hvd.barrier()  # everyone has looked before the next test's files appear
    monkeypatch.setenv("HOROVOD_TIMELINE", os.path.join(folder, "env-{rank}.json"))
    hvd.timeline.from_environment(hvd.rank())
    assert hvd.timeline._active is not None and hvd.timeline._active.path.endswith(
        f"env-{hvd.rank()}.json"
    )
    hvd.stop_timeline()
    with pytest.raises(hvd.ops.HpcsuiteError, match="cannot write the timeline"):
        hvd.start_timeline(os.path.join(folder, "no-such-dir", "t-{rank}.json"))
