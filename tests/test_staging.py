"""The one staging policy (hpcsuite.core.staging) over its inputs: where the data lives,
blocking or non-blocking, the MPI library and what it says of CUDA, the environment."""

from __future__ import annotations

import pytest

from hpcsuite.core import mpi, staging
from hpcsuite.core.errors import UsageError
from hpcsuite.core.staging import (
    GPU_AWARE_ENV,
    GPU_AWARE_NONBLOCKING_ENV,
    NO_NONBLOCKING,
    NOT_AWARE,
)

MPICH = "MPICH Version: 4.2.0"
OPEN_MPI = "Open MPI v5.0.3, package: Open MPI builder Distribution, ident: 5.0.3"


def decide(*, on_device=True, nonblocking=False, says=None, library=MPICH, env=None):
    return staging.decide(
        on_device=on_device,
        nonblocking=nonblocking,
        library_says=says,
        library=library,
        env=env or {},
    )


@pytest.mark.parametrize("nonblocking", [False, True])
@pytest.mark.parametrize("env", [{}, {GPU_AWARE_ENV: "0"}, {GPU_AWARE_ENV: "1"}])
def test_host_data_goes_to_mpi_as_it_is(nonblocking, env):
    route = decide(on_device=False, nonblocking=nonblocking, says=False, env=env)
    assert route == (False, "host memory")


@pytest.mark.parametrize(
    "says,env,staged",
    [
        (None, {}, True),  # a library that cannot say: staged, always correct
        (False, {}, True),
        (True, {}, False),
        (False, {GPU_AWARE_ENV: "1"}, False),  # the override wins either way
        (True, {GPU_AWARE_ENV: "0"}, True),
        (None, {GPU_AWARE_ENV: "yes"}, False),
        (True, {GPU_AWARE_ENV: "off"}, True),
    ],
)
def test_blocking_calls_stage_exactly_when_mpi_is_not_cuda_aware(says, env, staged):
    for library in (MPICH, OPEN_MPI):
        route = decide(says=says, env=env, library=library)
        assert route.staged is staged and route.direct is not staged
        assert route.reason == (NOT_AWARE if staged else "CUDA-aware MPI")


@pytest.mark.parametrize(
    "library,env,staged",
    [
        (MPICH, {}, False),
        (OPEN_MPI, {}, True),  # its CUDA support leaves out the non-blocking collectives
        (OPEN_MPI, {GPU_AWARE_NONBLOCKING_ENV: "1"}, False),
        (MPICH, {GPU_AWARE_NONBLOCKING_ENV: "0"}, True),
    ],
)
def test_nonblocking_collectives_on_a_cuda_aware_mpi(library, env, staged):
    route = decide(nonblocking=True, says=True, library=library, env=env)
    assert route == (staged, NO_NONBLOCKING if staged else "CUDA-aware MPI")
    assert decide(nonblocking=False, says=True, library=library, env=env).direct  # blocking: direct


def test_the_nonblocking_override_cannot_make_mpi_cuda_aware():
    route = decide(nonblocking=True, says=False, env={GPU_AWARE_NONBLOCKING_ENV: "1"})
    assert route == (True, NOT_AWARE)


@pytest.mark.parametrize("name", [GPU_AWARE_ENV, GPU_AWARE_NONBLOCKING_ENV])
def test_a_switch_that_is_neither_on_nor_off_is_a_usage_error(name):
    with pytest.raises(UsageError, match=f"{name}='maybe' is not understood; set it to 1 or 0"):
        decide(nonblocking=True, says=True, env={name: "maybe"})


def test_the_mpi_layer_asks_the_policy_with_this_process_facts(monkeypatch):
    monkeypatch.setenv(GPU_AWARE_ENV, "1")
    library = mpi.library_version()
    assert mpi.route(True) == (False, "CUDA-aware MPI") and mpi.gpu_aware()
    assert mpi.route(True, nonblocking=True).staged is ("open mpi" in library.lower())
    monkeypatch.setenv(GPU_AWARE_ENV, "0")  # read at every call: no cache to clear
    assert mpi.route(True, nonblocking=True) == (True, NOT_AWARE) and not mpi.gpu_aware()
    assert mpi.route(False) == (False, "host memory")
