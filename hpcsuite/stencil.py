"""``python -m hpcsuite.stencil``: 2-D heat diffusion, 5-point Jacobi, on a Cartesian rank grid.

The global grid of ``NY x NX`` interior points (zero on the boundary) is split over a
``P x Q`` process grid (``Create_cart``); each step exchanges one-point halos with the
four neighbours by non-blocking sends and receives, then updates
``u <- (1 - 4 alpha) u + alpha (u_N + u_S + u_W + u_E)``. With ``--overlap`` the interior is
updated while the halos are in flight and the edges after they arrive.

Checks: the field after the steps is bitwise equal to a one-process NumPy run of the
same steps, and the start field - the lowest sine mode - has decayed by exactly the
scheme's factor ``g = 1 - 4 alpha (sin^2(pi/(2(NY+1))) + sin^2(pi/(2(NX+1))))`` per
step, within rounding. Figure of merit: lattice-site updates per second.

On the CPU the update runs as NumPy passes over cache-sized strips, or - with numba
installed (``pip install 'hpcsuite[fast]'``; ``--engine``) - as one compiled loop that
reads each point once (faster; ``benchmarks/kernels_bench.py`` measures both). Both
give the same bits: the loop evaluates the same expression in the same order, and the
check compares it with NumPy.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli, driver, mpi, stats
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary
from hpcsuite.core.errors import UsageError
from hpcsuite.core.mpi import MPI
from hpcsuite.core.partition import owned

PROG = "hpcsuite.stencil"


def initial(rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int], xp: Any) -> Any:
    """The lowest sine mode on global rows and columns ``[start, stop)``, zero halo. Pure."""
    ny, nx = shape
    y = np.sin(np.pi * (np.arange(rows[0], rows[1]) + 1) / (ny + 1))
    x = np.sin(np.pi * (np.arange(cols[0], cols[1]) + 1) / (nx + 1))
    u = np.zeros((rows[1] - rows[0] + 2, cols[1] - cols[0] + 2))
    u[1:-1, 1:-1] = np.outer(y, x)
    return xp.asarray(u)


#: Bytes of one temporary strip on the CPU: small enough for the L2 cache, so the
#: intermediate sums of a strip never travel to memory.
STRIP_BYTES = 1 << 18


#: CPU engines for the update (``auto``: numba when it imports, else NumPy).
ENGINES = ("auto", "numpy", "numba")
_compiled: dict[str, Any] = {}


def _loop() -> Any:
    """The update as one numba-compiled loop (compiled once per process, cached on disk)."""
    if "loop" not in _compiled:
        import numba  # optional (the fast extra) and slow to import: only when the loop runs

        @numba.njit(
            "void(float64[:, ::1], float64[:, ::1], float64, float64, int64, int64, int64, int64)",
            cache=True,
            nogil=True,
        )
        def loop(u, v, alpha, beta, r0, r1, c0, c1):  # pragma: no cover - runs compiled
            # Row views and unsigned offsets: a signed index like j - 1 makes numba
            # check it for negative wraparound on every access, and those branches kept
            # LLVM from vectorizing the loop (276 -> 646 M updates/s, 4096^2, 1 core).
            one, two = numba.uint64(1), numba.uint64(2)
            for i in range(r0, r1):
                up, down = u[i - 1, c0:c1], u[i + 1, c0:c1]
                row, out = u[i, c0 - 1 : c1 + 1], v[i, c0:c1]
                for j in range(numba.uint64(c1 - c0)):
                    out[j] = beta * row[j + one] + alpha * (
                        ((up[j] + down[j]) + row[j]) + row[j + two]
                    )

        _compiled["loop"] = loop
    return _compiled["loop"]


def engine(name: str, on_device: bool) -> str:
    """Resolve ``--engine`` (``auto`` to what is installed); device arrays use their own."""
    if name not in ENGINES:
        raise UsageError(f"--engine {name!r} is unknown; choose one of {', '.join(ENGINES)}")
    if on_device:
        if name == "numba":
            raise UsageError("--engine numba runs on the CPU; leave --engine out with --device gpu")
        return "device"
    if name == "numpy":
        return name
    try:
        _loop()
    except ImportError:
        if name == "numba":
            raise UsageError(
                "--engine numba needs numba: pip install 'hpcsuite[fast]' (or --engine numpy)"
            ) from None
        return "numpy"
    return "numba"


def update(
    u: Any, v: Any, alpha: float, r0: int, r1: int, c0: int, c1: int, engine: str = "numpy"
) -> None:
    """One Jacobi step for padded rows ``[r0, r1)`` and columns ``[c0, c1)``: v from u. Pure.

    ``v = (1 - 4 alpha) c + alpha (((N + S) + W) + E)``, always in this order, so any
    split of the grid and every engine give the same bits per point. ``numpy``: the
    rows go in strips whose temporaries stay in cache (faster than whole-array NumPy,
    same bits); ``numba``: one compiled pass; device arrays take the whole range
    in one expression.
    """
    beta = 1.0 - 4.0 * alpha
    if engine == "numba" and isinstance(u, np.ndarray):
        _loop()(u, v, alpha, beta, r0, r1, c0, c1)
        return
    if not isinstance(u, np.ndarray):
        v[r0:r1, c0:c1] = beta * u[r0:r1, c0:c1] + alpha * (
            ((u[r0 - 1 : r1 - 1, c0:c1] + u[r0 + 1 : r1 + 1, c0:c1]) + u[r0:r1, c0 - 1 : c1 - 1])
            + u[r0:r1, c0 + 1 : c1 + 1]
        )
        return
    width = c1 - c0
    rows = max(1, STRIP_BYTES // max(8 * width, 1))
    t = np.empty((rows, width))
    for a in range(r0, r1, rows):
        b = min(a + rows, r1)
        s, out = t[: b - a], v[a:b, c0:c1]
        np.add(u[a - 1 : b - 1, c0:c1], u[a + 1 : b + 1, c0:c1], out=s)
        s += u[a:b, c0 - 1 : c1 - 1]
        s += u[a:b, c0 + 1 : c1 + 1]
        s *= alpha
        np.multiply(u[a:b, c0:c1], beta, out=out)
        out += s


def decay(shape: tuple[int, int], alpha: float) -> float:
    """Per-step factor of the lowest sine mode under the scheme. Pure."""
    ny, nx = shape
    return 1.0 - 4.0 * alpha * (
        math.sin(math.pi / (2 * (ny + 1))) ** 2 + math.sin(math.pi / (2 * (nx + 1))) ** 2
    )


def reference(shape: tuple[int, int], steps: int, alpha: float) -> np.ndarray:
    """One process, plain NumPy, the same steps: the bitwise reference."""
    u = initial((0, shape[0]), (0, shape[1]), shape, np)
    v = u.copy()
    for _ in range(steps):
        update(u, v, alpha, 1, shape[0] + 1, 1, shape[1] + 1)
        u, v = v, u
    return u[1:-1, 1:-1]


class Halo:
    """Non-blocking exchange of one-point halos with the four Cartesian neighbours."""

    def __init__(self, cart: Any, backend: Any, ny: int, nx: int) -> None:
        self.cart, self.backend, self.mpi = cart, backend, mpi
        (self.north, self.south), (self.west, self.east) = cart.Shift(0, 1), cart.Shift(1, 1)
        # Device buffers where MPI takes them (CUDA-aware), host buffers otherwise.
        self.recv = {
            k: mpi.recv_buffer(backend, (n,), np.float64)
            for k, n in (("n", nx), ("s", nx), ("w", ny), ("e", ny))
        }
        self.requests: list[Any] = []

    def start(self, u: Any) -> None:
        """Post receives and sends of the edge rows and columns of ``u``."""
        xp = self.backend.xp
        edges = {"n": u[1, 1:-1], "s": u[-2, 1:-1], "w": u[1:-1, 1], "e": u[1:-1, -2]}
        # Columns are strided: contiguous copies (on the device), then the stream sync
        # in send_buffer covers both them and the last update.
        self._keep = {
            k: self.mpi.send_buffer(self.backend, xp.ascontiguousarray(v)) for k, v in edges.items()
        }
        c, r = self.cart, self.recv
        self.requests = [
            c.Irecv(r["n"], self.north, 1),
            c.Irecv(r["s"], self.south, 0),
            c.Irecv(r["w"], self.west, 3),
            c.Irecv(r["e"], self.east, 2),
            c.Isend(self._keep["n"], self.north, 0),
            c.Isend(self._keep["s"], self.south, 1),
            c.Isend(self._keep["w"], self.west, 2),
            c.Isend(self._keep["e"], self.east, 3),
        ]

    def finish(self, u: Any) -> None:
        """Wait and write the received halos into ``u`` (edges of the domain stay zero)."""
        MPI.Request.Waitall(self.requests)

        def put(buffer: Any) -> Any:
            return self.mpi.received(self.backend, buffer)

        if self.north != MPI.PROC_NULL:
            u[0, 1:-1] = put(self.recv["n"])
        if self.south != MPI.PROC_NULL:
            u[-1, 1:-1] = put(self.recv["s"])
        if self.west != MPI.PROC_NULL:
            u[1:-1, 0] = put(self.recv["w"])
        if self.east != MPI.PROC_NULL:
            u[1:-1, -1] = put(self.recv["e"])


def grid_dims(size: int, spec: tuple[int, ...] | None) -> tuple[int, int]:
    """The process grid: ``--proc-grid PxQ`` if given (must multiply to ``size``), else balanced."""
    if spec is None:
        p, q = MPI.Compute_dims(size, 2)
        return p, q
    if len(spec) != 2 or spec[0] * spec[1] != size:
        raise UsageError(
            f"--proc-grid {'x'.join(map(str, spec))} does not fit {size} ranks; "
            f"give P x Q = {size}, or leave it out"
        )
    return spec[0], spec[1]


@dataclass
class State:
    """One rank's part of the grid: the Cartesian communicator, the two fields (``u``
    holds the current one), the halo exchange and the start field to reset to."""

    cart: Any
    backend: Any
    shape: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]
    u: Any
    v: Any
    start: Any
    halo: Halo
    alpha: float
    overlap: bool
    engine: str
    dims: tuple[int, int] = (1, 1)
    steps_per_run: int = 0

    def free(self) -> None:
        """Release the Cartesian communicator (collective)."""
        self.cart.Free()


def prepare(
    comm: Any,
    backend: Any,
    shape: tuple[int, int],
    alpha: float,
    *,
    dims: tuple[int, int],
    overlap: bool,
    engine: str = "numpy",
) -> State:
    """Build the Cartesian grid, the fields and the halo buffers once (untimed)."""
    cart = comm.Create_cart(list(dims), periods=[False, False], reorder=False)
    py, px = cart.Get_coords(cart.rank)
    rows, cols = owned(shape[0], dims[0], py), owned(shape[1], dims[1], px)
    start = initial(rows, cols, shape, backend.xp)
    u, v = start.copy(), start.copy()  # v's halo ring must be zero too: copy, not zeros
    halo = Halo(cart, backend, rows[1] - rows[0], cols[1] - cols[0])
    return State(cart, backend, shape, rows, cols, u, v, start, halo, alpha, overlap, engine, dims)


def advance(state: State, steps: int) -> None:
    """``steps`` Jacobi steps from the current field (halos exchanged every step)."""
    u, v, halo, alpha, engine = state.u, state.v, state.halo, state.alpha, state.engine
    ny, nx = state.rows[1] - state.rows[0], state.cols[1] - state.cols[0]
    for _ in range(steps):
        halo.start(u)
        if state.overlap and ny > 2 and nx > 2:
            update(u, v, alpha, 2, ny, 2, nx, engine)  # interior: needs no halo
            halo.finish(u)
            for r0, r1, c0, c1 in (
                (1, 2, 1, nx + 1),
                (ny, ny + 1, 1, nx + 1),
                (2, ny, 1, 2),
                (2, ny, nx, nx + 1),
            ):
                update(u, v, alpha, r0, r1, c0, c1, engine)
        else:
            halo.finish(u)
            if ny and nx:
                update(u, v, alpha, 1, ny + 1, 1, nx + 1, engine)
        u, v = v, u
    state.u, state.v = u, v


def run(
    comm: Any,
    backend: Any,
    shape: tuple[int, int],
    steps: int,
    alpha: float,
    *,
    dims: tuple[int, int],
    overlap: bool,
    engine: str = "numpy",
) -> tuple[Any, tuple[tuple[int, int], tuple[int, int]], Any]:
    """Run ``steps`` steps from the start field once; returns (local interior, (rows, cols)
    owned, Cartesian communicator - the caller frees it)."""
    state = prepare(comm, backend, shape, alpha, dims=dims, overlap=overlap, engine=engine)
    advance(state, steps)
    backend.synchronize()
    return state.u[1:-1, 1:-1], (state.rows, state.cols), state.cart


def gather(
    cart: Any,
    backend: Any,
    local: Any,
    where: tuple[tuple[int, int], tuple[int, int]],
    shape: tuple[int, int],
) -> np.ndarray | None:
    """The whole field on rank 0 of ``cart`` (for the check)."""
    parts = cart.gather((where, backend.to_host(local)), root=0)  # comm: blocks for the check
    if cart.rank != 0:
        return None
    field = np.empty(shape)
    for (rows, cols), block in parts:
        field[rows[0] : rows[1], cols[0] : cols[1]] = block
    return field


class Stencil(Kernel):
    """The heat equation as a kernel: each repetition runs ``--steps`` steps from the
    start field (reset untimed in between)."""

    name = "stencil"
    description = __doc__.split("\n\n")[0]
    step_label = "steps"

    def add_arguments(self, g: Any) -> None:
        g.add_argument(
            "--shape", type=cli.shape, default=(2048, 2048), help="interior grid NYxNX [2048x2048]"
        )
        g.add_argument(
            "--steps", type=cli.positive_int, default=100, help="Jacobi steps [%(default)s]"
        )
        g.add_argument(
            "--alpha", type=float, default=0.2, help="diffusion number, at most 0.25 [%(default)s]"
        )
        g.add_argument(
            "--proc-grid",
            type=cli.shape,
            default=None,
            metavar="PxQ",
            help="process grid [balanced: MPI_Dims_create]",
        )
        g.add_argument(
            "--overlap", action="store_true", help="update the interior while halos travel"
        )
        g.add_argument(
            "--engine",
            choices=ENGINES,
            default="auto",
            help=(
                "CPU update: NumPy strips, or a numba loop (pip install 'hpcsuite[fast]') "
                "[auto: numba if installed]"
            ),
        )

    def validate(self, args: Any) -> None:
        if len(args.shape) != 2:
            raise UsageError(
                f"--shape {'x'.join(map(str, args.shape))} must be two-dimensional, e.g. 2048x2048"
            )
        if not (math.isfinite(args.alpha) and 0 < args.alpha <= 0.25):
            raise UsageError(
                f"--alpha {args.alpha!r} must lie in (0, 0.25]; above 0.25 the scheme is unstable"
            )

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        ny, nx = args.shape
        # Three padded fields (u, v, the start) per rank; the root's check adds the
        # gathered field and a one-process reference (three fields of the whole grid).
        grid = 8 * (ny * nx // comm.size + 2 * (ny + nx) + 4)
        check = 5 * 8 * ny * nx if args.check and comm.rank == 0 else 0
        return Footprint(
            host=(0 if backend.on_device else 3 * grid) + check,
            device=3 * grid,
            hint="use a smaller --shape or more nodes"
            + (", or drop --check" if args.check else ""),
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        shape = (args.shape[0], args.shape[1])
        with mpi.agree(comm):
            dims = grid_dims(comm.size, args.proc_grid)
            if dims[0] > shape[0] or dims[1] > shape[1]:
                raise UsageError(
                    f"a {shape[0]}x{shape[1]} grid is too small for {dims[0]}x{dims[1]} ranks: "
                    "every rank needs at least one row and one column; use a larger --shape"
                )
            how = engine(args.engine, backend.on_device)  # compiles the numba loop before timing
        state = prepare(
            comm, backend, shape, args.alpha, dims=dims, overlap=args.overlap, engine=how
        )
        state.steps_per_run = args.steps
        return state

    def reset(self, state: State) -> None:
        state.u[...] = state.start

    def step(self, state: State, phase: str) -> None:
        advance(state, state.steps_per_run)

    def check(self, state: State) -> dict[str, Any] | None:
        shape, steps, alpha = state.shape, state.steps_per_run, state.alpha
        field = gather(
            state.cart, state.backend, state.u[1:-1, 1:-1], (state.rows, state.cols), shape
        )
        if state.cart.rank != 0:
            return None
        same = np.array_equal(field, reference(shape, steps, alpha))
        mode = initial((0, shape[0]), (0, shape[1]), shape, np)[1:-1, 1:-1]
        want = decay(shape, alpha) ** steps * mode
        rel = float(np.max(np.abs(field - want)) / np.max(np.abs(want)))
        return {
            "passed": same and rel <= 1e-10,
            "bitwise_equal_to_numpy": same,
            "decay_rel_error": rel,
            "detail": (
                f"{'bitwise equal' if same else 'DIFFERS from'} one-process NumPy; sine-mode "
                f"decay off by {rel:.1e} (allowed 1e-10)"
            ),
        }

    def figure(self, state: State) -> Figure:
        return Figure(
            "updates/s", state.shape[0] * state.shape[1] * state.steps_per_run, "site updates/s"
        )

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        ny, nx = state.shape
        rate = ny * nx * state.steps_per_run / stats.median(times["step"])
        return Summary(
            headline=f"{rate / 1e6:.1f} M lattice-site updates/s",
            details=[
                (
                    f"grid       {ny}x{nx} interior points, {state.steps_per_run} steps, alpha"
                    f" {state.alpha}"
                ),
                (
                    f"ranks grid {state.dims[0]}x{state.dims[1]} (Create_cart), halo exchange"
                    f" {'overlapped with the interior' if state.overlap else 'then update'}, engine"
                    f" {state.engine}"
                ),
            ],
            params={
                "shape": [ny, nx],
                "steps": state.steps_per_run,
                "alpha": state.alpha,
                "proc_grid": list(state.dims),
                "overlap": state.overlap,
                "engine": state.engine,
                "size": ny * nx,
                "bytes": ny * nx * 8,
            },
        )

    def teardown(self, state: State) -> None:
        state.free()


KERNEL = Stencil()


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.stencil``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
