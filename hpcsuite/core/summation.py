"""Exactly rounded combination of partial sums. Pure.

Partial sums arrive in block order from any number of ranks; combining them with an
exactly rounded sum makes the final value independent of how they were grouped, so
a result is bitwise identical at 1, 2, 3 or 1000 ranks (Dask and Heat give different
last digits for different chunkings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def exact_sum(values: Sequence[float]) -> float:
    """Return the correctly rounded sum of ``values`` (``math.fsum``) with NumPy's specials.

    ``math.fsum`` raises on ``inf + -inf`` and on intermediate overflow where NumPy
    returns ``nan`` or ``+-inf``; those cases fall back to NumPy so NaN and infinity
    propagate exactly as ``numpy.sum`` would.

    Parameters
    ----------
    values : sequence of float
        Partial sums, in a fixed (block) order.

    Returns
    -------
    float
        The sum.
    """
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.sum(np.asarray(values, dtype=np.float64)))


def exact_sum_rows(parts: np.ndarray) -> np.ndarray:
    """Sum the rows of a 2-D stack of partials, each column exactly rounded.

    Parameters
    ----------
    parts : numpy.ndarray
        Shape ``(nblocks, ...)``: one partial per block, in block order.

    Returns
    -------
    numpy.ndarray
        Shape ``parts.shape[1:]``, float64.
    """
    parts = np.asarray(parts, dtype=np.float64)
    flat = parts.reshape(parts.shape[0], -1)
    # fsum over a Python list is several times faster than over NumPy scalars.
    columns = flat.T.tolist()
    out = np.array([exact_sum(col) for col in columns], dtype=np.float64)
    return out.reshape(parts.shape[1:])
