"""Random streams keyed by block: the same numbers whichever rank makes them. Pure.

Every generated input in hpcsuite (mean's array, matmul's matrices, fft's grid, Monte
Carlo's paths, k-mer reads) is cut into fixed units - a block of rows, a row, a block
of paths - and each unit draws from its own stream, ``SeedSequence(seed,
spawn_key=key)``. A seed therefore means one global input at any rank count and in any
distribution, and no unit's numbers depend on another's.

On a GPU, :func:`device_stream` makes the numbers on the device (CuPy's generator,
seeded from the same key): uploading host numbers would time the host, not the GPU.
Device streams are a different generator, so a GPU run's numbers differ from a CPU
run's, but not from another GPU run's at another rank count.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def stream(seed: int, *key: int) -> np.random.Generator:
    """The host generator of unit ``key`` (one or more non-negative integers) under ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def device_stream(xp: Any, seed: int, *key: int) -> Any:
    """A generator of unit ``key`` in array module ``xp``, making numbers where ``xp`` lives.

    For NumPy this is :func:`stream`; for CuPy a ``cupy.random.Generator`` whose seed is
    drawn from the same ``SeedSequence``, so units stay independent and rank-count free.
    """
    if xp is np:
        return stream(seed, *key)
    state = int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])
    return xp.random.default_rng(state)
