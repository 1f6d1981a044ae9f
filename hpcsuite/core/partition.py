"""Block decomposition of N-d arrays along axis 0. Pure: no MPI, no devices.

Two levels, so that results never depend on the rank count:

* A :class:`Layout` cuts the global array into fixed-size *blocks* of whole rows.
  The cut depends only on the array's shape, never on the number of ranks, so a
  per-block computation (an RNG stream, a partial sum) is the same at any scale.
* Ranks own contiguous runs of whole blocks (:meth:`Layout.rank_blocks`), as even
  as blocks allow; with more ranks than blocks some ranks own nothing, which is
  legal everywhere in hpcsuite.
"""

from __future__ import annotations

import math
from typing import NamedTuple

#: Elements per block, aimed at: 2**19 float64 values are 4 MiB - big enough that
#: the per-block call overhead is noise, small enough for good balance (the
#: 10000 x 10000 default gives 193 blocks, so 8 ranks differ by one block, ~4 %).
BLOCK_ELEMENTS = 2**19


def split(n: int, parts: int) -> tuple[list[int], list[int]]:
    """Split ``n`` items into ``parts`` contiguous runs as evenly as possible.

    The first ``n % parts`` runs get one item more (MPI convention, as in
    ``MPI_Dist_graph`` examples and Heat's ``comm.chunk``).

    Parameters
    ----------
    n : int
        Number of items, ``n >= 0``.
    parts : int
        Number of runs, ``parts >= 1``.

    Returns
    -------
    counts, displs : list of int
        Length and start of each run.
    """
    if n < 0:
        raise ValueError(f"cannot split a negative count {n!r}")
    if parts < 1:
        raise ValueError(f"cannot split into {parts!r} parts; need at least 1")
    base, extra = divmod(n, parts)
    counts = [base + (1 if i < extra else 0) for i in range(parts)]
    displs = [0] * parts
    for i in range(1, parts):
        displs[i] = displs[i - 1] + counts[i - 1]
    return counts, displs


def owned(n: int, parts: int, index: int) -> tuple[int, int]:
    """Return the half-open range ``(start, stop)`` that run ``index`` of ``split`` owns."""
    if not 0 <= index < parts:
        raise ValueError(f"index {index!r} is outside 0..{parts - 1}")
    base, extra = divmod(n, parts)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


class Layout(NamedTuple):
    """A global array of ``shape`` cut into blocks of ``block_rows`` rows.

    Parameters
    ----------
    shape : tuple of int
        Global shape; every extent positive.
    block_rows : int
        Rows per block; the last block may be shorter.
    """

    shape: tuple[int, ...]
    block_rows: int

    @classmethod
    def for_shape(cls, shape: tuple[int, ...], target: int = BLOCK_ELEMENTS) -> Layout:
        """Choose ``block_rows`` from the shape alone so blocks hold about ``target`` elements."""
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f"shape {shape!r} must have positive extents")
        row = math.prod(shape[1:])
        return cls(tuple(shape), max(1, min(shape[0], target // max(row, 1))))

    @property
    def rows(self) -> int:
        """Number of rows (extent of axis 0)."""
        return self.shape[0]

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of one row (the trailing axes)."""
        return self.shape[1:]

    @property
    def row_elements(self) -> int:
        """Elements in one row."""
        return math.prod(self.shape[1:])

    @property
    def nblocks(self) -> int:
        """Number of blocks."""
        return -(-self.rows // self.block_rows)

    def block_range(self, b: int) -> tuple[int, int]:
        """Global rows ``(start, stop)`` of block ``b``."""
        if not 0 <= b < self.nblocks:
            raise ValueError(f"block {b!r} is outside 0..{self.nblocks - 1}")
        start = b * self.block_rows
        return start, min(start + self.block_rows, self.rows)

    def rank_blocks(self, size: int, rank: int) -> range:
        """Blocks owned by ``rank`` of ``size`` (possibly empty)."""
        start, stop = owned(self.nblocks, size, rank)
        return range(start, stop)

    def rank_rows(self, size: int, rank: int) -> tuple[int, int]:
        """Global rows ``(start, stop)`` owned by ``rank`` of ``size``."""
        blocks = self.rank_blocks(size, rank)
        if not blocks:
            # An empty range placed where the rank's blocks would start.
            start = min(blocks.start * self.block_rows, self.rows)
            return start, start
        return self.block_range(blocks[0])[0], self.block_range(blocks[-1])[1]

    def row_counts(self, size: int) -> tuple[list[int], list[int]]:
        """Rows per rank and their starting rows, ready for ``Scatterv``/``Gatherv``."""
        ranges = [self.rank_rows(size, r) for r in range(size)]
        return [b - a for a, b in ranges], [a for a, _ in ranges]

    def local_blocks(self, size: int, rank: int) -> list[tuple[int, int, int]]:
        """Blocks of ``rank`` as ``(block, local_start, local_stop)`` rows in its local array."""
        first = self.rank_rows(size, rank)[0]
        out = []
        for b in self.rank_blocks(size, rank):
            start, stop = self.block_range(b)
            out.append((b, start - first, stop - first))
        return out
