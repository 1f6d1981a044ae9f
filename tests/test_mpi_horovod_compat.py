"""``import hpcsuite.train as hvd`` behaves as ``horovod.torch``: Horovod-style code for each
point of issue 16, run in every MPI leg (n = 1..4), each result compared with a
one-process computation of Horovod's definition (its C++ ScaleBuffer, its optimizer).
The exit and ``hvd.run`` checks launch their own small MPI jobs."""

from __future__ import annotations

import os
import textwrap
import warnings

import pytest

if os.environ.get("CI") == "true":  # CI installs the train extra: a missing torch fails there
    import torch
else:
    torch = pytest.importorskip(
        "torch", reason="needs the train extra: pip install 'hpcsuite[train]'"
    )
import hpcsuite.train as hvd  # noqa: E402

#: The public names of ``horovod.torch`` in scope here (process sets and elastic are
#: names that raise a clear error; see README's compatibility table).
HOROVOD_TORCH_NAMES = """
    init shutdown is_initialized size local_size cross_size rank local_rank cross_rank
    mpi_threads_supported mpi_enabled mpi_built gloo_enabled gloo_built nccl_built ddl_built
    ccl_built
    cuda_built rocm_built start_timeline stop_timeline
    Average Sum Adasum Min Max Product Compression HorovodInternalError
    allreduce allreduce_ allreduce_async allreduce_async_ grouped_allreduce grouped_allreduce_
    grouped_allreduce_async grouped_allreduce_async_ sparse_allreduce_async
    allgather allgather_async grouped_allgather grouped_allgather_async allgather_object
    broadcast broadcast_ broadcast_async broadcast_async_ broadcast_object
    broadcast_parameters broadcast_optimizer_state
    alltoall alltoall_async reducescatter reducescatter_async grouped_reducescatter
    grouped_reducescatter_async
    join barrier poll synchronize
    DistributedOptimizer SyncBatchNorm run
    ProcessSet global_process_set add_process_set remove_process_set elastic
""".split()


def test_the_public_names_of_horovod_torch_in_scope_exist():
    missing = [name for name in HOROVOD_TORCH_NAMES if not hasattr(hvd, name)]
    assert not missing, f"missing Horovod names: {missing}"
    assert issubclass(hvd.HorovodInternalError, RuntimeError)


def test_out_of_scope_features_raise_a_clear_error():
    with pytest.raises(NotImplementedError, match="elastic training is not supported"):
        hvd.elastic.run  # noqa: B018 - the attribute access is the call Horovod scripts make
    with pytest.raises(NotImplementedError, match="process sets are not supported"):
        hvd.ProcessSet([0])
    with pytest.raises(NotImplementedError, match="process sets are not supported"):
        hvd.add_process_set([0])


@pytest.fixture
def _hvd():
    hvd.init()
    yield


def _scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Horovod's ScaleBuffer: ``factor * x`` in double, converted back (integers truncate)."""
    out = x.double() * float(factor)
    return (torch.trunc(out) if not x.dtype.is_floating_point else out).to(x.dtype)


def _horovod_allreduce(inputs, op, pre=1.0, post=1.0):
    """Horovod's allreduce on one process: prescale each, reduce, postscale (/ size for Average)."""
    scaled = [_scale(x, pre) for x in inputs]
    total = scaled[0].clone()
    for x in scaled[1:]:
        total += x
    return _scale(total, post / len(inputs) if op == hvd.Average else post)


def _every_rank(make):
    return [make(r) for r in range(hvd.size())]


@pytest.mark.mpi
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.float32, torch.float64])
@pytest.mark.parametrize(
    "op,pre,post",
    [
        (hvd.Average, 1, 1),
        (hvd.Average, 3, 2),
        (hvd.Sum, 2, 3),
        (hvd.Sum, 0.5, 1),
        (hvd.Average, 1, 0.7),
    ],
)
def test_allreduce_of_every_dtype_with_integer_and_float_scale_factors(_hvd, dtype, op, pre, post):
    def make(r):
        return torch.tensor(
            [7 * r - 5, -3 * r - 1, 11, r * r + 1], dtype=dtype
        )  # negatives: truncation

    want = _horovod_allreduce(_every_rank(make), op, pre, post)
    got = hvd.allreduce(make(hvd.rank()), op=op, prescale_factor=pre, postscale_factor=post)
    assert got.dtype == dtype
    if (
        dtype == torch.float64
    ):  # Horovod multiplies in double: float64 sums may differ in the last bit
        torch.testing.assert_close(got, want, rtol=1e-15, atol=0)
    else:  # integers truncate, float32 rounds once from the double product: bit for bit
        assert torch.equal(got, want), (got, want)
    handle = hvd.allreduce_async(
        make(hvd.rank()), op=op, prescale_factor=pre, postscale_factor=post
    )
    again = hvd.synchronize(handle)
    assert torch.equal(again, got)


@pytest.mark.mpi
def test_metric_average_of_an_integer_count(_hvd):
    """Horovod's idiom: ``hvd.allreduce(torch.tensor(count))`` averages integers (truncated)."""
    n = hvd.size()
    got = hvd.allreduce(torch.tensor(hvd.rank() * 5 + 1))
    assert got.dtype == torch.int64
    assert int(got) == int(sum(r * 5 + 1 for r in range(n)) * (1.0 / n))


@pytest.mark.mpi
@pytest.mark.parametrize("dtype", [torch.int64, torch.float32])
@pytest.mark.parametrize("op,pre,post", [(hvd.Average, 1, 1), (hvd.Sum, 3, 2), (hvd.Average, 2, 3)])
def test_reducescatter_scale_factors_as_horovod(_hvd, dtype, op, pre, post):
    n, r = hvd.size(), hvd.rank()
    rows = 2 * n + 1  # uneven: the first ranks get one more row

    def make(q):
        return (torch.arange(rows * 3).reshape(rows, 3) * (q + 1) - 4 * q).to(dtype)

    total = _horovod_allreduce(_every_rank(make), op, pre, post)
    lo = sum(rows // n + (q < rows % n) for q in range(r))
    mine = rows // n + (r < rows % n)
    got = hvd.reducescatter(make(r), op=op, prescale_factor=pre, postscale_factor=post)
    assert got.dtype == dtype and got.shape == (mine, 3)
    torch.testing.assert_close(got, total[lo : lo + mine], rtol=1e-6, atol=0)


@pytest.mark.mpi
@pytest.mark.parametrize("passes", [2, 3])
def test_backward_passes_per_step_sum_as_horovods_optimizer(_hvd, passes):
    """Horovod: the k local gradients accumulate (a sum), then the average over ranks."""
    n, r = hvd.size(), hvd.rank()
    torch.manual_seed(3)
    model = torch.nn.Linear(5, 2)
    ref = torch.nn.Linear(5, 2)
    ref.load_state_dict(model.state_dict())
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.05),
        model.named_parameters(),
        backward_passes_per_step=passes,
    )
    data = torch.randn(2, passes, n, 4, 5, generator=torch.Generator().manual_seed(9))
    for step in range(2):
        opt.zero_grad()
        for k in range(passes):
            model(data[step, k, r]).pow(2).mean().backward()
        opt.step()
        # one process: sum over passes of (average over ranks of each rank's gradient)
        grads = [torch.zeros_like(p) for p in ref.parameters()]
        for k in range(passes):
            for q in range(n):
                ref.zero_grad()
                ref(data[step, k, q]).pow(2).mean().backward()
                for g, p in zip(grads, ref.parameters()):
                    g += p.grad / n
        with torch.no_grad():
            for g, p in zip(grads, ref.parameters()):
                p -= 0.05 * g
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.mpi
def test_more_backward_passes_than_declared_raise_as_horovod(_hvd):
    model = torch.nn.Linear(3, 1)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(), overlap="sync"
    )
    model(torch.ones(1, 3)).sum().backward()
    with pytest.raises(AssertionError, match="more than backward_passes_per_step=1"):
        model(torch.ones(1, 3)).sum().backward()
    opt.zero_grad()


@pytest.mark.mpi
def test_async_operations_are_matched_by_name_not_call_order(_hvd):
    n, r = hvd.size(), hvd.rank()
    names = [f"t{i}" for i in range(4)]
    order = names[r % 4 :] + names[: r % 4]  # every rank issues them in another order
    handles = {
        name: hvd.allreduce_async(torch.full((3,), float(r + int(name[1]))), name=name, op=hvd.Sum)
        for name in order
    }
    assert (
        not all(hvd.poll(h) for h in handles.values()) or n == 1
    )  # not started before a negotiation
    for name in reversed(order) if r % 2 else order:  # and synchronizes them in yet another
        want = sum(q + int(name[1]) for q in range(n))
        assert torch.equal(hvd.synchronize(handles[name]), torch.full((3,), float(want)))
    b = hvd.broadcast_async(torch.full((2,), float(r)), root_rank=n - 1, name="b")
    g = hvd.allgather_async(torch.full((r + 1, 2), float(r)), name="g")
    assert torch.equal(
        hvd.synchronize(g), torch.cat([torch.full((q + 1, 2), float(q)) for q in range(n)])
    )
    assert torch.equal(hvd.synchronize(b), torch.full((2,), float(n - 1)))


@pytest.mark.mpi
def test_a_second_in_flight_operation_with_the_same_name_is_refused(_hvd):
    first = hvd.allreduce_async(torch.ones(2), name="twice")
    with pytest.raises(
        ValueError, match="'twice' is already in flight"
    ) as info:  # Horovod: ValueError
        hvd.allreduce_async(torch.ones(2), name="twice")
    assert isinstance(info.value, RuntimeError)  # ... and a HorovodInternalError, caught either way
    assert torch.equal(hvd.synchronize(first), torch.ones(2))
    assert torch.equal(
        hvd.synchronize(hvd.allreduce_async(torch.ones(2), name="twice")), torch.ones(2)
    )
    # Horovod frees a name when its operation completes, synchronized or not
    dropped = hvd.allreduce_async(torch.ones(2), name="again", op=hvd.Sum)
    hvd.barrier()  # starts it
    while not hvd.poll(dropped):
        pass
    again = hvd.allreduce_async(torch.full((2,), 2.0), name="again", op=hvd.Sum)
    assert torch.equal(hvd.synchronize(again), torch.full((2,), 2.0 * hvd.size()))
    assert torch.equal(hvd.synchronize(dropped), torch.full((2,), float(hvd.size())))


@pytest.mark.mpi
def test_every_async_and_grouped_operation(_hvd):
    n, r = hvd.size(), hvd.rank()
    x = torch.full((n, 2), float(r))
    h = hvd.alltoall_async(x, name="a2a")
    out, received = hvd.synchronize(h)
    assert torch.equal(out, torch.arange(n, dtype=torch.float32).repeat_interleave(2).reshape(n, 2))
    assert received.tolist() == [1] * n
    rs = hvd.synchronize(hvd.reducescatter_async(torch.ones(n + 1, 2), op=hvd.Sum, name="rs"))
    assert torch.equal(rs, torch.full((2 if r == 0 else 1, 2), float(n)))
    grouped = hvd.synchronize(
        hvd.grouped_allreduce_async([torch.ones(2), torch.ones(3, dtype=torch.float64)], op=hvd.Sum)
    )
    assert [t.tolist() for t in grouped] == [[float(n)] * 2, [float(n)] * 3]
    inplace = [torch.ones(2)]
    hvd.synchronize(hvd.grouped_allreduce_async_(inplace, op=hvd.Sum))
    assert torch.equal(inplace[0], torch.full((2,), float(n)))
    gathered = hvd.grouped_allgather([torch.full((1,), float(r)), torch.full((2, 2), 1.0)])
    assert gathered[0].tolist() == [float(q) for q in range(n)] and gathered[1].shape == (2 * n, 2)
    scattered = hvd.grouped_reducescatter([torch.ones(n, 1), torch.ones(2 * n)], op=hvd.Sum)
    assert [t.tolist() for t in scattered] == [[[float(n)]], [float(n)] * 2]


@pytest.mark.mpi
def test_alltoall_with_an_uneven_first_dimension_and_no_splits_raises(_hvd):
    n = hvd.size()
    if n == 1:
        pytest.skip("one rank divides every first dimension")
    with pytest.raises(ValueError, match="divisible by the") as info:
        hvd.alltoall(torch.ones(n + 1, 2))
    assert isinstance(info.value, hvd.HorovodInternalError)  # Horovod's test catches RuntimeError
    assert torch.equal(
        hvd.allreduce(torch.ones(1), op=hvd.Sum), torch.full((1,), float(n))
    )  # the job goes on


@pytest.mark.mpi
def test_a_rank_refusing_a_collective_fails_it_on_every_rank_and_the_job_goes_on(_hvd):
    """Horovod: every rank raises for the failed operation; no watchdog, no abort."""
    n, r = hvd.size(), hvd.rank()
    if n == 1:
        pytest.skip("needs a second rank to tell")
    splits = [n + 1] + [0] * (n - 1) if r == 0 else [1] * n  # rank 0's splits do not add up
    with pytest.raises(hvd.HorovodInternalError if r else ValueError) as info:
        hvd.alltoall(torch.ones(n, 1), splits=splits, name="bad")
    if r:
        assert "failed on rank 0" in str(info.value) and info.value.collective
    with pytest.raises(
        ValueError if r == 0 else hvd.HorovodInternalError, match="bool tensor has no sum"
    ):
        hvd.allreduce(torch.ones(2, dtype=torch.bool if r == 0 else torch.float32), op=hvd.Sum)
    with pytest.raises(
        ValueError if r == 0 else hvd.HorovodInternalError, match="unknown reduction op 'bogus'"
    ):
        hvd.allreduce(torch.ones(1), op="bogus" if r == 0 else hvd.Sum)
    with pytest.raises(
        ValueError if r == 0 else hvd.CollectiveMismatch
    ) as info:  # while the others wait elsewhere
        if r == 0:
            hvd.allreduce(torch.ones(1), op="bogus")
        else:
            hvd.barrier()
    assert info.value.collective
    assert torch.equal(hvd.allreduce(torch.ones(1), op=hvd.Sum), torch.full((1,), float(n)))


@pytest.mark.mpi
def test_exception_classes_are_horovods(_hvd):
    model = torch.nn.Linear(2, 1)
    params = list(model.named_parameters())
    with pytest.raises(ValueError, match="must be unique; duplicates: w"):
        hvd.DistributedOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1), [("w", params[0][1]), ("w", params[1][1])]
        )
    with pytest.raises(ValueError, match="not both"):
        hvd.allreduce(torch.ones(1), average=True, op=hvd.Sum)
    with pytest.raises(NotImplementedError, match="Adasum"):
        hvd.allreduce(torch.ones(1), op=hvd.Adasum)
    if hvd.size() > 1:
        shape = (2,) if hvd.rank() == 0 else (3,)
        with pytest.raises(
            hvd.HorovodInternalError, match="ranks disagree on the collective named 'shape'"
        ):
            hvd.allreduce(torch.ones(shape), name="shape")
        with pytest.raises(
            RuntimeError, match="ranks disagree"
        ):  # CollectiveMismatch is a RuntimeError
            hvd.allreduce(torch.ones(1), name=f"only-{hvd.rank()}")


@pytest.mark.mpi
def test_step_after_synchronize_warns_unless_skip_synchronize(_hvd):
    model = torch.nn.Linear(2, 1)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters()
    )
    model(torch.ones(1, 2)).sum().backward()
    opt.synchronize()
    with pytest.warns(UserWarning, match="skip_synchronize"):
        opt.step()
    opt.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    opt.synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with opt.skip_synchronize():
            opt.step()


@pytest.mark.mpi
@pytest.mark.parametrize("sparse_as_dense", [False, True])
def test_sparse_adam_on_sparse_gradients_as_horovod(_hvd, sparse_as_dense):
    n, r = hvd.size(), hvd.rank()
    torch.manual_seed(1)
    emb, ref = torch.nn.Embedding(12, 3, sparse=True), torch.nn.Embedding(12, 3, sparse=True)
    ref.load_state_dict(emb.state_dict())
    cls = torch.optim.SparseAdam if not sparse_as_dense else torch.optim.Adam
    opt = hvd.DistributedOptimizer(
        cls(emb.parameters(), lr=0.1), emb.named_parameters(), sparse_as_dense=sparse_as_dense
    )
    ref_opt = cls(ref.parameters(), lr=0.1)
    rows = [torch.tensor([q % 12, (3 * q + 1) % 12]) for q in range(n)]
    for _ in range(2):
        opt.zero_grad()
        emb(rows[r]).pow(2).sum().backward()
        opt.step()
        grads = []
        for q in range(n):
            ref.zero_grad()
            ref(rows[q]).pow(2).sum().backward()
            grads.append(ref.weight.grad)
        total = (
            torch.sparse_coo_tensor(
                torch.cat([g.coalesce().indices() for g in grads], 1),
                torch.cat([g.coalesce().values() for g in grads]),
                (12, 3),
                check_invariants=True,
            ).coalesce()
            / n
        )
        ref.weight.grad = total.to_dense() if sparse_as_dense else total
        ref_opt.step()
    torch.testing.assert_close(emb.weight, ref.weight, rtol=1e-5, atol=1e-6)


@pytest.mark.mpi
def test_sparse_allreduce_async_is_horovods_allgather_of_indices_and_values(_hvd):
    n, r = hvd.size(), hvd.rank()
    mine = torch.sparse_coo_tensor(
        torch.tensor([[r % 5]]), torch.tensor([[float(r + 1), 1.0]]), (5, 2), check_invariants=True
    )
    got = hvd.synchronize(hvd.sparse_allreduce_async(mine, name="sp", op=hvd.Sum))
    want = torch.zeros(5, 2)
    for q in range(n):
        want[q % 5] += torch.tensor([float(q + 1), 1.0])
    assert got.is_sparse and torch.equal(got.to_dense(), want)


@pytest.mark.mpi
def test_join_takes_part_in_every_async_operation(_hvd):
    """Rank 0 joins at once; the others use every joinable async form (non-blocking calls
    the joined rank must mirror with non-blocking ones), grouped by (dtype, device)."""
    n, r = hvd.size(), hvd.rank()
    if n == 1:
        assert hvd.join(device=torch.device("cpu")) == 0
        pytest.skip("needs 2 ranks: one joins, the others use the async forms without it")
    if r == 0:  # joins at once and mirrors the others' operations until they join
        assert hvd.join(device=torch.device("cpu")) == n - 1
        return
    handles = [
        hvd.allreduce_async(torch.ones(3), op=hvd.Sum, name="s"),
        hvd.allreduce_async(torch.full((2,), 2.0), name="avg"),
        hvd.broadcast_async(torch.full((2,), float(r)), root_rank=1, name="b"),
        hvd.allgather_async(torch.full((1, 2), float(r)), name="g"),
        hvd.grouped_allreduce_async(
            [torch.ones(2), torch.ones(1, dtype=torch.float64), torch.ones(2)],
            op=hvd.Sum,
            name="grp",
        ),
        hvd.reducescatter_async(torch.ones(n, 1), op=hvd.Sum, name="rs"),
    ]
    s, avg, b, g, grp, rs = [hvd.synchronize(h) for h in reversed(handles)][::-1]
    assert torch.equal(s, torch.full((3,), float(n - 1)))
    assert torch.equal(
        avg, torch.full((2,), 2.0 * (n - 1) / n)
    )  # joined ranks count in the average
    assert torch.equal(b, torch.ones(2))
    assert torch.equal(g, torch.tensor([[float(q)] * 2 for q in range(1, n)]))
    assert [t.tolist() for t in grp] == [[float(n - 1)] * 2, [float(n - 1)], [float(n - 1)] * 2]
    assert torch.equal(rs, torch.full((1, 1), float(n - 1)))
    assert hvd.join() == n - 1


@pytest.mark.mpi
def test_broadcast_optimizer_state_takes_horovods_model_argument(_hvd):
    torch.manual_seed(hvd.rank())
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01 * (hvd.rank() + 1))
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(opt, root_rank=0, model=model)
    states = hvd.allgather_object(opt.state_dict())
    for s in states:
        assert s["param_groups"][0]["lr"] == 0.01
        assert torch.equal(s["state"][0]["exp_avg"], states[0]["state"][0]["exp_avg"])


# -- whole jobs ---------------------------------------------------------------------------------

PENDING_AT_EXIT = textwrap.dedent("""
    import torch
    import hpcsuite.train as hvd
    hvd.init()
    # The handles are dropped at once: only hpcsuite.train keeps their buffers alive.
    hvd.broadcast_async(torch.full((1 << 20,), float(hvd.rank())), root_rank=0, name="left")
    hvd.allreduce_async(torch.ones(1 << 20), name="also left")
    hvd.barrier()  # both start here, and are never synchronized
    print("rank", hvd.rank(), "leaves", flush=True)
""")


@pytest.mark.parametrize("ranks,runs", [(2, 2), (3, 1)])
def test_operations_pending_at_exit_complete_without_a_crash(tmp_path, ranks, runs):
    from conftest import launch

    script = tmp_path / "pending.py"
    script.write_text(PENDING_AT_EXIT)
    for _ in range(runs):  # it crashed (SIGSEGV, malloc corrupted) about every second run before
        proc = launch(ranks, str(script), timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("leaves") == ranks
        assert "corrupted" not in proc.stderr and "signal" not in proc.stdout + proc.stderr


RUN_SCRIPT = textwrap.dedent("""
    import argparse
    import hpcsuite.train as hvd

    def main(scale):
        hvd.init()
        import torch
        total = hvd.allreduce(torch.tensor(float(hvd.rank())), op=hvd.Sum)
        return [hvd.rank(), hvd.size(), float(total) * scale]

    parser = argparse.ArgumentParser()
    parser.add_argument("--num-proc", type=int)
    args = parser.parse_args()
    if args.num_proc:
        print("results", hvd.run(main, args=(10,), num_proc=args.num_proc), flush=True)
    else:
        main(1)
""")


def test_hvd_run_starts_the_job_from_inside_the_script_as_horovod_run(tmp_path):
    from conftest import python

    script = tmp_path / "run_me.py"
    script.write_text(RUN_SCRIPT)
    proc = python(str(script), "--num-proc", "3", timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "results [[0, 3, 30.0], [1, 3, 30.0], [2, 3, 30.0]]" in proc.stdout


def test_joined_ranks_fuse_by_dtype_and_device_as_the_active_ranks():
    from hpcsuite.train import runners

    descrs = [
        ((2,), "torch.float32", "cuda"),
        ((3,), "torch.float32", "cpu"),
        ((1,), "torch.float32", "cuda"),
        ((4,), "torch.float64", "cpu"),
    ]
    assert runners.groups(descrs) == {
        ("torch.float32", "cuda"): [0, 2],
        ("torch.float32", "cpu"): [1],
        ("torch.float64", "cpu"): [3],
    }


@pytest.mark.mpi
def test_shutdown_then_init_again(_hvd):
    n = hvd.size()
    pending = hvd.allreduce_async(torch.ones(2), op=hvd.Sum, name="before shutdown")
    hvd.barrier()  # starts it
    hvd.shutdown()
    assert not hvd.is_initialized()
    with pytest.raises(ValueError, match="call hvd.init"):
        hvd.rank()
    hvd.init()
    assert torch.equal(
        hvd.synchronize(pending), torch.full((2,), float(n))
    )  # completed at shutdown
    assert torch.equal(
        hvd.allreduce(torch.ones(1), op=hvd.Sum, name="after"), torch.full((1,), float(n))
    )


@pytest.mark.mpi
def test_an_exception_in_the_reduction_thread_reaches_the_caller(_hvd, monkeypatch):
    def broken(self):
        raise RuntimeError("injected failure in the reduction thread")

    monkeypatch.setattr(
        hvd.ops._Sum16, "run", broken
    )  # every rank fails alike: nothing half-reduced
    pending = hvd.ops.start_sum(torch.ones(4, dtype=torch.float16), "thread")
    with pytest.raises(RuntimeError, match="injected failure in the reduction thread"):
        hvd.ops.wait_sums([pending], "test")
    monkeypatch.undo()
    again = hvd.ops.start_sum(
        torch.ones(4, dtype=torch.float16), "thread"
    )  # the thread still serves
    hvd.ops.wait_sums([again], "test")
    assert torch.equal(again.tensor, torch.full((4,), float(hvd.size()), dtype=torch.float16))
