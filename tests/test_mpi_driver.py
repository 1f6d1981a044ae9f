"""The one kernel driver (hpcsuite.core.driver), with a toy kernel and a fake clock:
what is timed, how repetitions combine over ranks, the figure of merit, the check's
agreement and the record. Holds at any rank count (run at n = 1..4)."""

from __future__ import annotations

import json

import pytest

from hpcsuite.core import driver
from hpcsuite.core.errors import CheckError

pytestmark = pytest.mark.mpi


class Clock:
    """A clock that moves only when the toy kernel says it worked: exact, no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Toy(driver.Kernel):
    """Setup costs 100 s; repetition i of rank r costs r + 1 + i s; work 1000 units."""

    name = "toy"
    description = "a toy kernel"

    def __init__(self, clock: Clock, passed: bool = True) -> None:
        self.clock, self.passed, self.log = clock, passed, []

    def setup(self, comm, backend, args):
        self.log.append("setup")
        self.clock.now += 100.0
        return {"comm": comm, "reps": 0}

    def reset(self, state):
        self.log.append("reset")
        self.clock.now += 50.0  # untimed: must not show in any sample

    def step(self, state, phase):
        self.log.append("step")
        self.clock.now += state["comm"].rank + 1 + state["reps"]
        state["reps"] += 1

    def check(self, state):
        return {"passed": self.passed, "detail": "toy"} if state["comm"].rank == 0 else None

    def figure(self, state):
        return driver.Figure("work/s", 1000.0, "units/s")

    def summary(self, state, times):
        return driver.Summary(headline="done", params={"size": 7}, result=state["reps"])


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(driver.time, "perf_counter", fake)
    return fake


def test_only_the_step_is_timed_and_each_repetition_is_the_slowest_rank(
    comm, clock, shared_tmp, capsys
):
    toy = Toy(clock)
    path = shared_tmp / "toy.jsonl"
    assert driver.main(toy, ["--warmup", "2", "--repeat", "3", "--json", str(path)]) == 0
    # setup once; a reset before every repetition (warm-up included), then the step
    assert toy.log == ["setup"] + ["reset", "step"] * 5
    comm.Barrier()
    rec = json.loads(path.read_text().splitlines()[-1])
    # Repetition i (after 2 warm-ups) of rank r took r + 1 + 2 + i s; the slowest rank is the last.
    want = [comm.size + 2 + i for i in range(3)]
    assert rec["times"]["samples"] == want
    assert rec["times"]["setup"] == 100.0  # apart from the samples
    median = want[1]
    assert rec["fom"]["value"] == pytest.approx(1000.0 / median) and rec["fom"]["basis"] == "median"
    assert rec["fom"]["low"] <= rec["fom"]["value"] <= rec["fom"]["high"]
    assert rec["fom"]["low"] == pytest.approx(1000.0 / max(want))  # interval of the same median
    assert rec["times"]["stats"]["median"] == median and rec["params"]["repeat"] == 3
    assert rec["argv"] == [
        "python",
        "-m",
        "hpcsuite.toy",
        "--warmup",
        "2",
        "--repeat",
        "3",
        "--json",
        str(path),
    ]
    assert rec["ranks"] == comm.size and rec["result"] == 5
    from hpcsuite.core import mpi

    hosts = mpi.hosts(comm)
    assert rec["nodes"] == len(set(hosts)) and rec["ranks_per_node"] == max(map(hosts.count, hosts))
    prov = rec["provenance"]
    assert prov["argv"] == rec["argv"] and prov["mpi"]["thread_level"] == rec["env"]["thread_level"]
    assert prov["mpi"]["library"] == rec["env"]["mpi_library"] and rec["timestamp"].endswith("Z")
    if comm.rank == 0:
        out = capsys.readouterr().out
        assert "hpcsuite.toy: done" in out and "median of 3" in out


def test_a_failed_check_fails_every_rank_with_exit_status_3(comm, clock):
    with pytest.raises(CheckError) as err:
        driver.main(Toy(clock, passed=False), ["--check", "--quiet"])
    assert err.value.collective and err.value.exit_code == 3


def test_no_check_without_check_option(comm, clock):
    toy = Toy(clock, passed=False)
    assert driver.main(toy, ["--quiet"]) == 0  # the failing check never ran


def test_an_unsupported_device_is_a_usage_error_before_mpi_work(comm, clock):
    toy = Toy(clock)
    toy.devices = ("cpu",)
    with pytest.raises(driver.UsageError, match="--device gpu is not supported by toy"):
        driver.main(toy, ["--device", "gpu"])
    assert toy.log == []


def test_stencil_repeats_thousands_of_times_without_leaking_communicators(comm):
    """The Cartesian communicator is built once in setup and freed in teardown; it used
    to be built in every repetition and never freed (MPI runs out of context ids)."""
    from hpcsuite import stencil

    shape = f"{2 * comm.size}x{2 * comm.size}"
    assert (
        stencil.main(
            [
                "--shape",
                shape,
                "--steps",
                "1",
                "--repeat",
                "5000",
                "--engine",
                "numpy",
                "--check",
                "--quiet",
            ]
        )
        == 0
    )
