"""``python -m hpcsuite.matmul``: distributed C = A B by SUMMA on a 2-D grid of ranks.

A, B and C (``n x n``) are split in blocks over a ``P x Q`` process grid
(``MPI_Dims_create``; any rank count works, a prime ``p`` as ``p x 1``). SUMMA walks the
inner dimension in panels: the owner of each panel of A broadcasts it along its process
row, the owner of the matching panel of B along its process column, and every rank adds
the product of the two panels to its block of C. Panels are cut where either
decomposition changes owner and at most ``--panel`` wide.

Check: the relative Frobenius error of C against NumPy's ``A @ B`` on one process.
Figure of merit: GFLOP/s, counting ``2 n^3`` operations.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli, driver, mpi, rng, stats
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary
from hpcsuite.core.errors import UsageError
from hpcsuite.core.mpi import bcast_array
from hpcsuite.core.partition import owned, split
from hpcsuite.stencil import grid_dims

PROG = "hpcsuite.matmul"
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def rows_of(
    matrix: int, seed: int, rows: tuple[int, int], cols: tuple[int, int], n: int, dtype: str
) -> np.ndarray:
    """Block ``rows x cols`` of matrix 0 (A) or 1 (B): each global row from its own stream. Pure."""
    out = np.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=dtype)
    for i, r in enumerate(range(*rows)):
        out[i] = rng.stream(seed, matrix, r).random(n)[cols[0] : cols[1]]
    return out


def panels(n: int, p: int, q: int, width: int) -> list[tuple[int, int, int, int]]:
    """SUMMA panels ``(k0, k1, owner column of A, owner row of B)``. Pure.

    Breaks fall where A's column blocks (split over ``q``) or B's row blocks (split over
    ``p``) change owner, and every ``width`` columns in between.
    """
    a_counts, a_starts = split(n, q)
    b_counts, b_starts = split(n, p)
    breaks = sorted(set(a_starts) | set(b_starts) | {n})
    out = []
    for k0, k1 in zip(breaks, breaks[1:]):
        for s in range(k0, k1, width):
            e = min(s + width, k1)
            jq = max(j for j in range(q) if a_starts[j] <= s and a_counts[j] > 0)
            ip = max(i for i in range(p) if b_starts[i] <= s and b_counts[i] > 0)
            out.append((s, e, jq, ip))
    return out


class Grid:
    """A ``P x Q`` Cartesian grid of ranks with its row and column communicators,
    and this rank's blocks of A and B (generated once, outside the timed multiply)."""

    def __init__(self, comm: Any, n: int, dims: tuple[int, int], seed: int, dtype: str) -> None:
        self.n, self.dims, self.dtype, self.seed = n, dims, dtype, seed
        self.cart = comm.Create_cart(list(dims), periods=[False, False], reorder=False)
        self.i, self.j = self.cart.Get_coords(self.cart.rank)
        self.rows, self.cols = owned(n, dims[0], self.i), owned(n, dims[1], self.j)
        self.row_comm = self.cart.Sub([False, True])  # ranks (i, *); my rank there is j
        self.col_comm = self.cart.Sub([True, False])  # ranks (*, j); my rank there is i
        self.a = rows_of(0, seed, self.rows, self.cols, n, dtype)  # A[rows, cols]
        self.b = rows_of(1, seed, self.rows, self.cols, n, dtype)  # B[rows, cols]

    def blocks(self, backend: Any) -> tuple[Any, Any]:
        """This rank's blocks of A and B on ``backend`` (copied to a device once, then kept)."""
        if not backend.on_device:
            return self.a, self.b
        if getattr(self, "_on_device", None) is None:
            self._on_device = (backend.from_host(self.a), backend.from_host(self.b))
        return self._on_device

    def free(self) -> None:
        """Release the communicators."""
        for c in (self.row_comm, self.col_comm, self.cart):
            c.Free()


def summa(grid: Grid, backend: Any, width: int) -> Any:
    """C = A B over the grid's ranks; returns this rank's block of C."""
    xp, n, dtype = backend.xp, grid.n, grid.dtype
    p, q = grid.dims
    rows, cols, i, j = grid.rows, grid.cols, grid.i, grid.j
    a, b = grid.blocks(backend)
    row_comm, col_comm = grid.row_comm, grid.col_comm
    m, k = rows[1] - rows[0], cols[1] - cols[0]
    c = xp.zeros((m, k), dtype=dtype)
    for k0, k1, owner_j, owner_i in panels(n, p, q, width):
        # Panels travel in device memory where MPI takes it, else staged through the host.
        a_panel = bcast_array(
            row_comm,
            backend,
            xp.ascontiguousarray(a[:, k0 - cols[0] : k1 - cols[0]]) if j == owner_j else None,
            (m, k1 - k0),
            dtype,
            root=owner_j,
        )  # comm: A's panel
        b_panel = bcast_array(
            col_comm,
            backend,
            xp.ascontiguousarray(b[k0 - rows[0] : k1 - rows[0], :]) if i == owner_i else None,
            (k1 - k0, k),
            dtype,
            root=owner_i,
        )  # comm: B's panel
        c += a_panel @ b_panel
    backend.synchronize()
    return c


@dataclass
class State:
    """The grid with this rank's blocks, and the last product."""

    grid: Grid
    backend: Any
    panel: int
    c: Any = None


class Matmul(Kernel):
    """SUMMA as a kernel: A and B are generated (and moved to the GPU) in setup."""

    name = "matmul"
    description = __doc__.split("\n\n")[0]
    step_label = "multiply"

    def add_arguments(self, g: Any) -> None:
        g.add_argument(
            "--n", type=cli.positive_int, default=2048, help="matrix order [%(default)s]"
        )
        g.add_argument("--dtype", choices=tuple(TOLERANCE), default="float64", help="[%(default)s]")
        g.add_argument(
            "--panel",
            type=cli.positive_int,
            default=512,
            help="largest SUMMA panel width [%(default)s]",
        )
        g.add_argument(
            "--proc-grid",
            type=cli.shape,
            default=None,
            metavar="PxQ",
            help="process grid [balanced: MPI_Dims_create]",
        )

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        n, item = args.n, np.dtype(args.dtype).itemsize
        # Blocks of A, B and C and the two panels in flight; the root's check holds the
        # whole A, B, C and the reference.
        mine = 5 * n * n * item // comm.size
        check = 4 * n * n * item if args.check and comm.rank == 0 else 0
        return Footprint(
            host=(mine if not backend.on_device else 2 * mine // 5) + check,
            device=mine,
            hint="lower --n or use more nodes (GPUs)" + (", or drop --check" if args.check else ""),
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        with mpi.agree(comm):
            dims = grid_dims(comm.size, args.proc_grid)
            if dims[0] > args.n or dims[1] > args.n:
                raise UsageError(
                    f"--n {args.n} is too small for a {dims[0]}x{dims[1]} process grid; "
                    "every rank needs part of the matrix"
                )
        grid = Grid(comm, args.n, dims, args.seed, args.dtype)
        grid.blocks(backend)  # on a GPU: A and B move there before the clock starts
        return State(grid, backend, args.panel)

    def step(self, state: State, phase: str) -> None:
        state.c = summa(state.grid, state.backend, state.panel)

    def check(self, state: State) -> dict[str, Any] | None:
        grid, n = state.grid, state.grid.n
        parts = grid.cart.gather(
            ((grid.rows, grid.cols), state.backend.to_host(state.c)), root=0
        )  # comm: C
        if grid.cart.rank != 0:
            return None
        full = np.empty((n, n), dtype=grid.dtype)
        for (rows, cols), block in parts:
            full[rows[0] : rows[1], cols[0] : cols[1]] = block
        ref = rows_of(0, grid.seed, (0, n), (0, n), n, grid.dtype) @ rows_of(
            1, grid.seed, (0, n), (0, n), n, grid.dtype
        )
        err = float(np.linalg.norm(full - ref) / np.linalg.norm(ref))
        tol = TOLERANCE[grid.dtype]
        return {
            "passed": err <= tol,
            "relative_frobenius_error": err,
            "tolerance": tol,
            "detail": f"||C - numpy A@B||_F / ||A@B||_F = {err:.2e} (allowed {tol:g})",
        }

    def figure(self, state: State) -> Figure:
        return Figure("GFLOP/s", 2.0 * state.grid.n**3, "GFLOP/s", 1e9)

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        grid, n = state.grid, state.grid.n
        gflops = 2 * n**3 / stats.median(times["step"]) / 1e9
        item = np.dtype(grid.dtype).itemsize
        return Summary(
            headline=f"{gflops:.2f} GFLOP/s (n {n}, {grid.dtype})",
            details=[
                f"matrices   {n}x{n} {grid.dtype}, panels up to {state.panel} wide",
                f"ranks grid {grid.dims[0]}x{grid.dims[1]} (SUMMA)",
            ],
            params={
                "n": n,
                "dtype": grid.dtype,
                "panel": state.panel,
                "proc_grid": list(grid.dims),
                "size": n,
                "bytes": 3 * n * n * item,
            },
        )

    def teardown(self, state: State) -> None:
        state.grid.free()


KERNEL = Matmul()


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.matmul``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
