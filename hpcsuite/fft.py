"""``python -m hpcsuite.fft``: distributed 2-D and 3-D complex FFT with slab decomposition.

Each rank owns a slab of the first axis. Forward: transform the other axes locally,
redistribute with one ``Alltoallv`` so that each rank owns all of the first axis and a
slab of the second, transform the first axis. The result stays in that transposed
layout (``X[:, slab, ...]``), as FFTW-MPI's ``TRANSPOSED_OUT``; the inverse runs the
same steps backwards and returns the input layout.

Checks: the forward transform against ``numpy.fft.fftn`` on one process, and the round
trip against the input. Figure of merit: GFLOP/s, counting ``5 N log2 N`` per
transform of ``N`` points (the usual convention).

Not mpi4py-fft: it installs only from source, against the system FFTW and a compiler.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli, driver, mpi, rng, stats
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary
from hpcsuite.core.errors import UsageError
from hpcsuite.core.partition import owned, split

PROG = "hpcsuite.fft"
TOLERANCE = 1e-12


def slab(shape: tuple[int, ...], start: int, stop: int, seed: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the global complex input; each row from its own stream. Pure."""
    out = np.empty((stop - start, *shape[1:]), dtype=np.complex128)
    for i, r in enumerate(range(start, stop)):
        g = rng.stream(seed, r)
        out[i].real = g.random(shape[1:])
        out[i].imag = g.random(shape[1:])
    return out


def flops(shape: Sequence[int]) -> float:
    """5 N log2 N for one complex transform of ``N`` points."""
    n = math.prod(shape)
    return 5.0 * n * math.log2(n) if n > 1 else 0.0


def _exchange(comm: Any, backend: Any, a: Any, shape: tuple[int, ...], forward: bool) -> Any:
    """Move between row slabs (axis 0) and column slabs (axis 1) with one Alltoallv."""
    size, rank = comm.size, comm.rank
    if size == 1:
        return a  # one rank owns every row and every column: nothing moves
    rows_n, _ = split(shape[0], size)
    cols_n, cols_s = split(shape[1], size)
    rest = math.prod(shape[2:])
    xp = backend.xp  # packing and unpacking run where the data is; only MPI may need the host
    if forward:  # a: (my rows, N1, ...) -> (N0, my cols, ...)
        send = (
            xp.concatenate(
                [a[:, cols_s[r] : cols_s[r] + cols_n[r]].reshape(-1) for r in range(size)]
            )
            if a.size
            else xp.zeros(0, xp.complex128)
        )
        scounts = [rows_n[rank] * cols_n[r] * rest for r in range(size)]
        rcounts = [rows_n[r] * cols_n[rank] * rest for r in range(size)]
    else:  # a: (N0, my cols, ...) -> (my rows, N1, ...)
        rows_s = [sum(rows_n[:r]) for r in range(size)]
        send = (
            xp.concatenate([a[rows_s[r] : rows_s[r] + rows_n[r]].reshape(-1) for r in range(size)])
            if a.size
            else xp.zeros(0, xp.complex128)
        )
        scounts = [rows_n[r] * cols_n[rank] * rest for r in range(size)]
        rcounts = [rows_n[rank] * cols_n[r] * rest for r in range(size)]

    recv = mpi.recv_buffer(backend, (sum(rcounts),), np.complex128)
    sdispl = [sum(scounts[:r]) for r in range(size)]
    rdispl = [sum(rcounts[:r]) for r in range(size)]
    z = mpi.datatype(np.complex128)
    comm.Alltoallv(
        [mpi.send_buffer(backend, send), scounts, sdispl, z], [recv, rcounts, rdispl, z]
    )  # comm: the transpose
    recv = mpi.received(backend, recv)
    if forward:  # blocks from each source rank stack along axis 0
        blocks = [
            recv[rdispl[s] : rdispl[s] + rcounts[s]].reshape(rows_n[s], cols_n[rank], *shape[2:])
            for s in range(size)
        ]
        return xp.concatenate(blocks, axis=0)
    # backward: blocks from each source rank sit side by side along axis 1
    blocks = [
        recv[rdispl[s] : rdispl[s] + rcounts[s]].reshape(rows_n[rank], cols_n[s], *shape[2:])
        for s in range(size)
    ]
    return xp.concatenate(blocks, axis=1)


def forward(comm: Any, backend: Any, a: Any, shape: tuple[int, ...]) -> Any:
    """FFT of the row slab ``a``; returns this rank's column slab of the transform."""
    xp = backend.xp
    local_axes = tuple(range(1, len(shape)))
    a = xp.fft.fftn(a, axes=local_axes) if a.size else a
    b = _exchange(comm, backend, a, shape, True)
    return xp.fft.fft(b, axis=0) if b.size else b


def inverse(comm: Any, backend: Any, b: Any, shape: tuple[int, ...]) -> Any:
    """Inverse of :func:`forward`: column slab of the transform -> row slab of the data."""
    xp = backend.xp
    b = xp.fft.ifft(b, axis=0) if b.size else b
    a = _exchange(comm, backend, b, shape, False)
    return xp.fft.ifftn(a, axes=tuple(range(1, len(shape)))) if a.size else a


@dataclass
class State:
    """This rank's slab of the input (host copy for the check, and on the backend) and
    the last transform and round trip."""

    comm: Any
    backend: Any
    shape: tuple[int, ...]
    seed: int
    data: np.ndarray
    a: Any
    x: Any = None
    back: Any = None


class Fft(Kernel):
    """A forward and an inverse distributed transform per repetition."""

    name = "fft"
    description = __doc__.split("\n\n")[0]
    step_label = "transforms"

    def add_arguments(self, g: Any) -> None:
        g.add_argument(
            "--shape",
            type=cli.shape,
            default=(256, 256, 256),
            help="2-D or 3-D complex grid, e.g. 4096x4096 or 256x256x256 [256x256x256]",
        )

    def validate(self, args: Any) -> None:
        if len(args.shape) not in (2, 3):
            raise UsageError(
                f"--shape {'x'.join(map(str, args.shape))} must be 2-D or 3-D, e.g. 256x256x256"
            )

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        points = math.prod(args.shape)
        # The slab, its transform and the transpose's send, receive and result; the
        # root's check holds the whole input, its transform and ours.
        mine = 6 * 16 * points // comm.size
        check = 4 * 16 * points if args.check and comm.rank == 0 else 0
        return Footprint(
            host=(mine if not backend.on_device else 16 * points // comm.size) + check,
            device=mine,
            hint="use a smaller --shape or more nodes (GPUs)"
            + (", or drop --check" if args.check else ""),
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        shape = tuple(args.shape)
        data = slab(shape, *owned(shape[0], comm.size, comm.rank), args.seed)
        return State(
            comm,
            backend,
            shape,
            args.seed,
            data,
            backend.from_host(data) if backend.on_device else data,
        )

    def step(self, state: State, phase: str) -> None:
        state.x = forward(state.comm, state.backend, state.a, state.shape)
        state.back = inverse(state.comm, state.backend, state.x, state.shape)

    def check(self, state: State) -> dict[str, Any] | None:
        comm, bk, shape = state.comm, state.backend, state.shape
        cols = owned(shape[1], comm.size, comm.rank)
        mine = (
            cols,
            bk.to_host(state.x),
            float(np.linalg.norm(bk.to_host(state.back) - state.data) ** 2),
        )
        parts = comm.gather(
            mine, root=0
        )  # comm: transform slabs and round-trip errors for the check
        if comm.rank != 0:
            return None
        full = slab(shape, 0, shape[0], state.seed)
        ref = np.fft.fftn(full)
        ours = np.empty_like(ref)
        for (c0, c1), block, _ in parts:
            ours[:, c0:c1] = block
        err = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
        trip = math.sqrt(sum(p[2] for p in parts)) / float(np.linalg.norm(full))
        return {
            "passed": err <= TOLERANCE and trip <= TOLERANCE,
            "forward_rel_error": err,
            "round_trip_rel_error": trip,
            "detail": (
                f"forward vs numpy.fft.fftn {err:.1e}, round trip {trip:.1e} (allowed"
                f" {TOLERANCE:g})"
            ),
        }

    def figure(self, state: State) -> Figure:
        return Figure("GFLOP/s", 2 * flops(state.shape), "GFLOP/s", 1e9)  # a forward and an inverse

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        gflops = 2 * flops(state.shape) / stats.median(times["step"]) / 1e9
        dims = "x".join(map(str, state.shape))
        return Summary(
            headline=f"{gflops:.2f} GFLOP/s ({dims} complex, forward + inverse)",
            details=[
                f"grid       {dims} complex128, slabs of axis 0 over {state.comm.size} ranks, "
                "one Alltoallv per transform"
            ],
            params={
                "shape": list(state.shape),
                "size": math.prod(state.shape),
                "bytes": 16 * math.prod(state.shape),
            },
        )


KERNEL = Fft()


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.fft``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
