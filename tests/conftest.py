"""Shared fixtures. MPI tests (marked ``mpi``) run under ``mpiexec -n N`` via tests/run.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def pytest_configure(config):
    """An MPI run (``--with-mpi``) starts MPI once, up front: importing hpcsuite.core.mpi
    starts none, and tests use ``MPI.COMM_WORLD``/``COMM_SELF`` directly."""
    if config.getoption("with_mpi", default=False):
        from hpcsuite.core import mpi

        mpi.world()


@pytest.fixture
def comm():
    """COMM_WORLD of the MPI job this test runs in."""
    from hpcsuite.core import mpi

    return mpi.world()


@pytest.fixture
def shared_tmp(comm):
    """A temporary folder that every rank of the job sees (rank 0 makes it)."""
    path = tempfile.mkdtemp(prefix="hpcsuite-test-") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    yield Path(path)
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def mpiexec() -> str:
    """The mpiexec next to this Python (the PyPI MPICH wheel's), else the one on PATH."""
    local = BIN / "mpiexec"
    return str(local) if local.exists() else (shutil.which("mpiexec") or "mpiexec")


def launch(
    n: int,
    *args: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``mpiexec -n n python ARGS`` and return the finished process (never hangs)."""
    full_env = {**os.environ, **(env or {})}
    # A test's own MPI job must not inherit the rank variables of an outer job.
    for name in ("PMI_RANK", "PMI_SIZE", "PMI_FD", "PMI_PORT", "PMI_ID", "OMPI_COMM_WORLD_RANK"):
        full_env.pop(name, None)
    cmd = [mpiexec(), "-n", str(n), sys.executable, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd or ROOT
    )


def python(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` without a launcher."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
