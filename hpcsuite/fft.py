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
from typing import Any

import numpy as np

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.core.partition import owned, split

PROG = "hpcsuite.fft"
TOLERANCE = 1e-12


def slab(shape: tuple[int, ...], start: int, stop: int, seed: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the global complex input; each row from its own stream. Pure."""
    out = np.empty((stop - start, *shape[1:]), dtype=np.complex128)
    for i, r in enumerate(range(start, stop)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(r,))))
        out[i].real = rng.random(shape[1:])
        out[i].imag = rng.random(shape[1:])
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
        send = xp.concatenate([a[:, cols_s[r]:cols_s[r] + cols_n[r]].reshape(-1) for r in range(size)]) \
            if a.size else xp.zeros(0, xp.complex128)
        scounts = [rows_n[rank] * cols_n[r] * rest for r in range(size)]
        rcounts = [rows_n[r] * cols_n[rank] * rest for r in range(size)]
    else:  # a: (N0, my cols, ...) -> (my rows, N1, ...)
        rows_s = [sum(rows_n[:r]) for r in range(size)]
        send = xp.concatenate([a[rows_s[r]:rows_s[r] + rows_n[r]].reshape(-1) for r in range(size)]) \
            if a.size else xp.zeros(0, xp.complex128)
        scounts = [rows_n[r] * cols_n[rank] * rest for r in range(size)]
        rcounts = [rows_n[rank] * cols_n[r] * rest for r in range(size)]
    from hpcsuite.core import mpi

    recv = mpi.recv_buffer(backend, (sum(rcounts),), np.complex128)
    sdispl = [sum(scounts[:r]) for r in range(size)]
    rdispl = [sum(rcounts[:r]) for r in range(size)]
    z = mpi.datatype(np.complex128)
    comm.Alltoallv([mpi.send_buffer(backend, send), scounts, sdispl, z],
                   [recv, rcounts, rdispl, z])  # comm: the transpose
    recv = mpi.received(backend, recv)
    if forward:  # blocks from each source rank stack along axis 0
        blocks = [recv[rdispl[s]:rdispl[s] + rcounts[s]].reshape(rows_n[s], cols_n[rank], *shape[2:])
                  for s in range(size)]
        return xp.concatenate(blocks, axis=0)
    # backward: blocks from each source rank sit side by side along axis 1
    blocks = [recv[rdispl[s]:rdispl[s] + rcounts[s]].reshape(rows_n[rank], cols_n[s], *shape[2:])
              for s in range(size)]
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


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0],
                           parents=[cli.common_parser()])
    g = p.add_argument_group("fft options")
    g.add_argument("--shape", type=cli.shape, default=(256, 256, 256),
                   help="2-D or 3-D complex grid, e.g. 4096x4096 or 256x256x256 [256x256x256]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.fft``; return the exit status."""
    args = parser().parse_args(argv)
    shape = tuple(args.shape)
    if len(shape) not in (2, 3):
        raise UsageError(f"--shape {'x'.join(map(str, shape))} must be 2-D or 3-D, e.g. 256x256x256")
    from hpcsuite.core import app, memory, mpi
    from hpcsuite.core.timing import measure

    ctx = app.begin(args)
    comm, bk = ctx.comm, ctx.backend
    with mpi.agree(comm):
        need = 6 * 16 * math.prod(shape) // comm.size + (4 * 16 * math.prod(shape) if args.check and comm.rank == 0 else 0)
        memory.check_fits(need, memory.available_bytes(), where=f"node {mpi.processor_name()} (one rank)",
                          hint="use a smaller --shape, more nodes, or drop --check")
    # On a GPU: the slab, its transform and the transpose's send, receive and result.
    mpi.check_device_fits(comm, bk, 6 * 16 * math.prod(shape) // comm.size, hint="use a smaller --shape or more GPUs")
    rows = owned(shape[0], comm.size, comm.rank)
    data = slab(shape, *rows, args.seed)
    a = bk.from_host(data) if bk.on_device else data
    state: dict[str, Any] = {}

    def once() -> None:
        state["x"] = forward(comm, bk, a, shape)
        state["back"] = inverse(comm, bk, state["x"], shape)
        bk.synchronize()

    times, _ = measure(once, warmup=args.warmup, repeat=args.repeat, barrier=comm.Barrier)
    times = [mpi.max_over_ranks(comm, t) for t in times]
    check = None
    if args.check:
        cols = owned(shape[1], comm.size, comm.rank)
        mine = (cols, bk.to_host(state["x"]), float(np.linalg.norm(bk.to_host(state["back"]) - data) ** 2))
        parts = comm.gather(mine, root=0)  # comm: transform slabs and round-trip errors for the check
        if comm.rank == 0:
            full = slab(shape, 0, shape[0], args.seed)
            ref = np.fft.fftn(full)
            ours = np.empty_like(ref)
            for (c0, c1), block, _ in parts:
                ours[:, c0:c1] = block
            err = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
            trip = math.sqrt(sum(p[2] for p in parts)) / float(np.linalg.norm(full))
            check = {"passed": err <= TOLERANCE and trip <= TOLERANCE, "forward_rel_error": err,
                     "round_trip_rel_error": trip,
                     "detail": f"forward vs numpy.fft.fftn {err:.1e}, round trip {trip:.1e} (allowed {TOLERANCE:g})"}
    gflops = 2 * flops(shape) / min(times) / 1e9  # a forward and an inverse transform per run
    dims = "x".join(map(str, shape))
    return app.finish(ctx, args, kernel="fft", headline=f"{gflops:.2f} GFLOP/s ({dims} complex, forward + inverse)",
                      details=[f"grid       {dims} complex128, slabs of axis 0 over {comm.size} ranks, "
                               "one Alltoallv per transform"],
                      params={"shape": list(shape), "repeat": args.repeat, "bytes": 16 * math.prod(shape)},
                      samples=times, fom=("GFLOP/s", gflops, "GFLOP/s"), check=check)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
