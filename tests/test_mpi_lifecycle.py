"""MPI starts on the first ``world()`` call, not at import; node communicators live and
die with their parent communicator."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import python

from hpcsuite.core import mpi, records


def _probe(code: str) -> str:
    proc = python("-c", code, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_importing_the_mpi_layer_starts_no_mpi():
    out = _probe("import hpcsuite.core.mpi\nfrom mpi4py import MPI\nprint(MPI.Is_initialized())")
    assert out == "False"


def test_importing_every_kernel_module_starts_no_mpi():
    code = (
        "import importlib\nfrom hpcsuite.registry import MODULES\n"
        "for name in MODULES:\n    importlib.import_module(f'hpcsuite.{name}')\n"
        "from hpcsuite.core.mpi import MPI\nprint(MPI.Is_initialized())"
    )
    assert _probe(code).endswith("False")


def test_world_starts_mpi_at_the_level_asked_for_once():
    code = (
        "from hpcsuite.core import mpi\n"
        "first = mpi.init('serialized')\nsecond = mpi.init('multiple')\n"
        "print(first is not None and first >= 0, second, mpi.world().size, mpi.thread_level())"
    )
    assert _probe(code) == "True None 1 serialized"


def test_world_defaults_to_mpi4pys_thread_level():
    out = _probe("from hpcsuite.core import mpi\nmpi.world()\nprint(mpi.thread_level())")
    assert out == "multiple"


def test_asking_train_about_mpi_before_init_is_horovods_error_not_an_abort():
    pytest.importorskip("torch", reason="hpcsuite.train needs the train extra (torch)")
    code = (
        "import hpcsuite.train as hvd\n"
        "try:\n    hvd.mpi_threads_supported()\nexcept ValueError as exc:\n    print(exc)\n"
        "hvd.init()\nprint(hvd.mpi_threads_supported())"
    )
    assert _probe(code).splitlines() == [
        "hpcsuite.train is not initialized: call hvd.init() first",
        "True",
    ]


def test_an_unknown_thread_level_is_a_usage_error():
    with pytest.raises(mpi.UsageError, match="unknown thread level 'many'"):
        mpi.init("many")


@pytest.mark.mpi
def test_a_freed_and_recreated_communicator_never_gets_a_stale_node_comm(comm):
    world = mpi.world()
    first = world.Split(color=world.rank % 2, key=world.rank)
    node_of_first = mpi.node_comm(first)
    assert mpi.node_comm(first) is node_of_first  # cached
    handle = first.py2f()
    first.Free()
    assert node_of_first == mpi.MPI.COMM_NULL  # freed with its parent, not leaked
    second = world.Dup()  # MPI may hand out the freed handle again (MPICH does)
    try:
        node = mpi.node_comm(second)
        assert node is not node_of_first and node != mpi.MPI.COMM_NULL
        fresh = second.Split_type(mpi.MPI.COMM_TYPE_SHARED, key=second.rank)
        try:
            assert mpi.MPI.Group.Compare(node.group, fresh.group) == mpi.MPI.IDENT
        finally:
            fresh.Free()
        if second.py2f() == handle:  # the case a handle-keyed cache got wrong
            assert node.size == mpi.node_comm(world).size
    finally:
        second.Free()


@pytest.mark.parametrize(
    "local_ranks,user,expected",
    [("1000", None, "1"), ("1", None, "None"), ("1000", "0", "0"), (None, None, "None")],
)
def test_an_oversubscribed_node_makes_mpich_yield_unless_the_user_chose(
    local_ranks, user, expected
):
    env = {k: v for k, v in os.environ.items() if k not in (mpi.YIELD_ENV, "MPI_LOCALNRANKS")}
    if local_ranks is not None:
        env["MPI_LOCALNRANKS"] = local_ranks  # what Hydra tells a rank: ranks on its node
    if user is not None:
        env[mpi.YIELD_ENV] = user
    code = (
        "import os\nfrom hpcsuite.core import mpi\nmpi.init()\n"
        f"print(os.environ.get({mpi.YIELD_ENV!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_oversubscription_is_more_ranks_on_the_node_than_cores():
    assert mpi.oversubscribed({"MPI_LOCALNRANKS": "8"}, 2)
    assert not mpi.oversubscribed({"MPI_LOCALNRANKS": "2"}, 2)
    assert not mpi.oversubscribed({}, 2) and not mpi.oversubscribed({"MPI_LOCALNRANKS": "x"}, 1)


@pytest.mark.parametrize("local_ranks,expected", [("1000", "1"), ("1", None)])
def test_the_yield_decision_works_without_an_affinity_api(monkeypatch, local_ranks, expected):
    # macOS has no os.sched_getaffinity: the cores come from os.cpu_count() there.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert records.node_cores() == 2
    env = {"MPI_LOCALNRANKS": local_ranks}
    mpi._yield_when_oversubscribed(env)
    assert env.get(mpi.YIELD_ENV) == expected
