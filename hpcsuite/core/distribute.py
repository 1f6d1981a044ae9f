"""How each rank gets its rows of a global array: read in place, or scattered from the root.

``local``: every rank loads only its own rows from the source (generation or a
parallel file read); nothing passes through the root. ``scatter``: the root loads the
whole array and ``Scatterv``'s the rows (the path of the design card, and what most
hand-written MPI codes do). Both give every rank exactly the same rows.
"""

from __future__ import annotations

from typing import Any

from hpcsuite.core import mpi
from hpcsuite.core.backend import Backend
from hpcsuite.core.partition import Layout
from hpcsuite.core.sources import Source, load_rows

MODES = ("local", "scatter")


def rows_of_rank(
    comm: mpi.MPI.Comm,
    backend: Backend,
    source: Source | None,
    layout: Layout,
    mode: str,
    *,
    root: int = 0,
) -> Any:
    """Return this rank's rows of the global array on ``backend``.

    Parameters
    ----------
    comm : MPI.Comm
    backend : Backend
    source : Source or None
        Needed on every rank for ``local``, on ``root`` only for ``scatter``.
    layout : Layout
        The block layout; ranks own whole blocks (:meth:`Layout.rank_rows`).
    mode : {"local", "scatter"}
    root : int
    """
    if mode == "local":
        start, stop = layout.rank_rows(comm.size, comm.rank)
        return load_rows(source, backend, layout, start, stop)
    if mode != "scatter":
        raise ValueError(f"unknown distribution mode {mode!r}; choose one of {', '.join(MODES)}")
    counts, _ = layout.row_counts(comm.size)
    dtype = None
    whole = None
    if comm.rank == root:
        whole = load_rows(source, backend, layout, 0, layout.rows)
        dtype = source.dtype
    dtype = comm.bcast(dtype, root=root)  # comm: metadata
    return mpi.scatter_rows(comm, backend, whole, counts, layout.row_shape, dtype, root=root)
