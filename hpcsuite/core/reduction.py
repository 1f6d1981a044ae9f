"""Blocked reductions over MPI: chunk, combine, aggregate (as Dask's ``reduction``).

A reduction's input is cut into fixed-size blocks keyed by their index, never by rank
(:mod:`hpcsuite.core.partition`, :mod:`hpcsuite.core.rng`). Each rank reduces its own
blocks to one row of partials per block (*chunk*: the kernel's pure ``local``, on NumPy
or CuPy); the rows travel to the root in block order (one ``Gatherv``); the root
combines them with exactly rounded sums (*combine*) and turns the sums into the result
(*aggregate*). Because every block's partial is computed the same way wherever it
lives and the combine is exact, the result's bits depend on the blocks only: the same
at 1, 2, 3 or 1000 ranks. ``mean`` and ``montecarlo`` both reduce through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hpcsuite.core import mpi
from hpcsuite.core.summation import exact_sum_rows


def reduce_blocks(
    comm: Any,
    backend: Any,
    parts: Any,
    counts: list[int],
    aggregate: Callable[[np.ndarray], Any],
    *,
    root: int = 0,
) -> Any:
    """Gather the per-block partials of every rank to ``root`` and aggregate them there.

    Parameters
    ----------
    comm : MPI.Comm
    backend : Backend
        Where ``parts`` lives (device partials are copied to the host once).
    parts : array
        This rank's partials, one row per block in block order (any trailing shape).
    counts : list of int
        Rows of partials on each rank, in rank order (ranks own consecutive blocks).
    aggregate : callable
        ``aggregate(rows)`` on the root: all partials in block order (host array) ->
        the result.
    root : int

    Returns
    -------
    object or None
        The aggregate on ``root``, None elsewhere.
    """
    rows = mpi.gather_rows(
        comm, backend, parts, counts, root=root
    )  # comm: partials, in block order
    return aggregate(rows) if comm.rank == root else None


def exact_columns(rows: np.ndarray) -> np.ndarray:
    """Exactly rounded sum of each column of ``rows`` (one row per block)."""
    return exact_sum_rows(np.asarray(rows, dtype=np.float64))
