"""MPI tests of hpcsuite.microbench: every benchmark validates at any rank count."""

from __future__ import annotations

import numpy as np
import pytest

from hpcsuite.core.errors import UsageError
from hpcsuite.microbench import runner
from hpcsuite.microbench.buffers import Messages

pytestmark = pytest.mark.mpi


def _run(comm, name, kind, nbytes):
    msgs = Messages(kind)
    return runner.measure(comm, name, msgs, nbytes, iters=3, warmup=1, window=4, validate=True,
                          budget=None)


@pytest.mark.parametrize("name", list(runner.TESTS))
@pytest.mark.parametrize("kind", ["numpy", "bytearray", "pickle", "pkl5"])
def test_every_benchmark_validates_or_refuses_clearly(comm, name, kind):
    msgs = Messages(kind)
    problem = runner.rank_problem(name, comm.size)
    if problem or (msgs.pickled and not runner.TESTS[name].pickle):
        with pytest.raises(UsageError):
            runner.check_request([name], msgs, comm.size)
        return
    for nbytes in (4, 4096, 65536):  # eager and rendezvous protocols
        row = _run(comm, name, kind, nbytes)
        if comm.rank == 0:
            assert row["errors"] == [], row["errors"]
            assert row["size"] == nbytes and row["iterations"] == 3
            value = row["mbps"] if runner.TESTS[name].family == "bandwidth" else row["median_us"]
            assert value > 0
        else:
            assert row is None


class Corrupting(Messages):
    """Flips one received byte: validation must notice."""

    def read(self, buf, dtype=np.uint8):
        data = super().read(buf, dtype).copy()
        if data.size:
            data[0] += 1
        return data


@pytest.mark.parametrize("name", ["bcast", "allreduce", "alltoall", "multi_lat"])
def test_validation_catches_a_corrupted_buffer(comm, name):
    if runner.rank_problem(name, comm.size):
        return  # the refusal itself is covered above
    row = runner.measure(comm, name, Corrupting("numpy"), 64, iters=2, warmup=0, window=2,
                         validate=True, budget=None)
    if comm.rank == 0:
        assert row["errors"] and "mismatch" in row["errors"][0]


def test_time_budget_gives_every_rank_the_same_count(comm, monkeypatch):
    name = "allreduce" if comm.size > 1 else None
    if name is None:
        return
    loops = []  # the iteration count of every timed loop this rank ran
    real = runner._timed
    monkeypatch.setattr(runner, "_timed", lambda run, count, *a: loops.append(count) or real(run, count, *a))
    row = runner.measure(comm, name, Messages("numpy"), 1024, iters=100000, warmup=1, window=1,
                         validate=False, budget=0.01)
    assert comm.allgather(loops) == [loops] * comm.size  # a rank running more would deadlock the others
    if comm.rank == 0:
        assert 5 <= row["iterations"] < 100000 and loops[-1] == row["iterations"]


def test_nonblocking_rows_carry_the_overlap(comm):
    if comm.size < 2:
        return
    row = _run(comm, "iallreduce", "numpy", 1024)
    if comm.rank == 0:
        assert row["pure_us"] > 0 and row["compute_us"] > 0
        # OSU's formula, from the row's own times (overlap_percent clips it to 0..100)
        raw = 100.0 * (1 - (row["overall_us"] - row["compute_us"]) / row["pure_us"])
        assert row["overlap_pct"] == pytest.approx(min(max(raw, 0.0), 100.0))


class Recording(Messages):
    """Remembers every buffer a benchmark allocates."""

    def __init__(self, kind):
        super().__init__(kind)
        self.made = []

    def alloc(self, count, dtype=np.uint8):
        buf = super().alloc(count, dtype)
        self.made.append(buf)
        return buf


def _unwritten_pages(buf) -> int:
    """4 KiB blocks of ``buf`` that hold only zero bytes: never written (or written zeros)."""
    data = np.frombuffer(buf, np.uint8) if isinstance(buf, bytearray) else np.asarray(buf).reshape(-1).view(np.uint8)
    return sum(1 for i in range(0, data.size, 4096) if not data[i:i + 4096].any())


@pytest.mark.parametrize("kind", ["numpy", "bytearray", "pickle", "pkl5"])
def test_every_buffer_is_written_before_the_clock(comm, kind, monkeypatch):
    # A zeroed allocation nobody writes maps every page to the kernel's shared zero
    # page: a 1 MiB send from it reads one cached 4 KiB page and looks 1.7x too fast.
    real = runner._timed
    ran = 0
    for name in runner.TESTS:
        msgs = Recording(kind)
        if runner.rank_problem(name, comm.size) or (msgs.pickled and not runner.TESTS[name].pickle):
            continue
        seen = []

        def spy(run, count, *args):
            if not seen:  # the first loop (warm-up) starts: nothing may be left unwritten
                seen.append([_unwritten_pages(b) for b in msgs.made])
            return real(run, count, *args)

        monkeypatch.setattr(runner, "_timed", spy)
        runner.measure(comm, name, msgs, 65536, iters=1, warmup=1, window=2, validate=False, budget=None)
        assert seen and not any(seen[0]), f"{name}: unwritten 4 KiB pages per buffer {seen}"
        ran += 1
    if ran == 0:
        pytest.skip(f"no benchmark runs on {comm.size} rank(s)")
