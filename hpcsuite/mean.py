"""``python -m hpcsuite.mean``: the mean of a distributed array, the HPC way.

The default job is the workload users know from Dask's tutorial - the mean of a
10000 x 10000 array of uniform random doubles - done as rank-SPMD blocks over MPI:

1. every rank gets whole fixed-size blocks of rows (generated in place, read from a
   file in place, or scattered from the root);
2. ``local``: each block is summed in float64 on NumPy or CuPy;
3. the per-block partial sums are gathered to the root in block order;
4. ``combine``: an exactly rounded sum (``math.fsum``) of the partials.

The printed mean is therefore bitwise identical at any rank count and in both
distribution modes.

Examples
--------
mpirun -n 8 python -m hpcsuite.mean
mpirun -n 4 python -m hpcsuite.mean --shape 20000x5000 --dtype float32 --check
mpirun -n 2 python -m hpcsuite.mean --source data.npy --axis 0 --output colmeans.npy
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.core.partition import Layout
from hpcsuite.core.sources import DEFAULT_SHAPE, DTYPES, Source
from hpcsuite.core.summation import exact_sum, exact_sum_rows

PROG = "hpcsuite.mean"
AXES = ("none", "0", "1")
#: Relative tolerance of --check, against the mean absolute value. Both sides
#: accumulate in float64; pairwise summation of 10**10 values stays far below it.
CHECK_RTOL = 1e-12


# -- 1. local: the computation on one block, pure ------------------------------------------

def local(block: Any, xp: Any, axis: int | None) -> Any:
    """Sum one block in float64.

    Parameters
    ----------
    block : array
        Rows of the global array (NumPy or CuPy).
    xp : module
        The array module of ``block``.
    axis : {None, 0, 1}
        None: the block's total (0-d); 0: column sums (one row); 1: row sums.

    Returns
    -------
    array
        float64 partial: shape ``()``, ``block.shape[1:]`` or ``(rows, *block.shape[2:])``.
    """
    if axis is None:
        # One row of a (1, elements) view, the shape :func:`partials` batches blocks in:
        # CuPy may sum a 1-D array in another order than a row, and every block must get
        # the same bits whichever rank (and batch) holds it.
        return xp.sum(block.reshape(1, -1), axis=1, dtype=xp.float64)[0]
    return xp.sum(block, axis=axis, dtype=xp.float64)


def partials(rows: Any, spans: list[tuple[int, int]], xp: Any, axis: int | None) -> Any:
    """``local`` of each block of a rank, in block order, as one float64 array.

    For the total (axis None) the equal-sized blocks are summed in one batched call,
    one row of a ``(blocks, elements)`` view each: the same bits as block-by-block
    ``local`` (a test holds this), without a Python call per block, which keeps the
    reduction at the memory bandwidth.

    Parameters
    ----------
    rows : array
        The rank's rows.
    spans : list of (start, stop)
        Local row range of each block (consecutive, in order); may be empty.
    xp : module
    axis : {None, 0, 1}
    """
    if not spans:
        trailing = {None: (), 0: rows.shape[1:], 1: rows.shape[2:]}[axis]
        return xp.empty((0, *trailing), dtype=xp.float64)
    if axis is None:
        first, size = spans[0][0], spans[0][1] - spans[0][0]
        equal = next((i for i, (a, b) in enumerate(spans) if b - a != size), len(spans))
        head = xp.sum(rows[first:first + equal * size].reshape(equal, -1), axis=1, dtype=xp.float64)
        tail = [local(rows[a:b], xp, None) for a, b in spans[equal:]]
        return xp.concatenate([head, xp.stack(tail)]) if tail else head
    parts = [local(rows[a:b], xp, axis) for a, b in spans]
    return xp.concatenate(parts) if axis == 1 else xp.stack(parts)


# -- 2. combine: merge the per-block partials, pure ----------------------------------------

def combine(parts: np.ndarray, axis: int | None, shape: tuple[int, ...]) -> float | np.ndarray:
    """Turn the per-block partials, in block order, into the mean.

    Parameters
    ----------
    parts : numpy.ndarray
        axis None: one sum per block; axis 0: one row of column sums per block;
        axis 1: the row sums of every row.
    axis : {None, 0, 1}
    shape : tuple of int
        Global shape.
    """
    if axis is None:
        return exact_sum(parts.tolist()) / math.prod(shape)
    if axis == 0:
        return exact_sum_rows(parts) / shape[0]
    return parts / shape[1]


def reference(source: Source, axis: int | None) -> tuple[float | np.ndarray, float]:
    """One-process NumPy mean of the whole source: the independent check.

    Returns
    -------
    value : float or numpy.ndarray
        ``numpy.mean(whole, axis, dtype=float64)``.
    scale : float
        Mean absolute value of the finite elements: what the tolerance is relative to.
    """
    whole = np.empty(source.shape, dtype=source.dtype)
    source.read(0, source.shape[0], whole)
    value = np.mean(whole, axis=axis, dtype=np.float64)
    finite = np.abs(whole[np.isfinite(whole)]) if whole.dtype.kind == "f" else np.abs(whole)
    scale = float(np.mean(finite, dtype=np.float64)) if finite.size else 0.0
    return (float(value) if axis is None else value), scale


def compare(ours: float | np.ndarray, ref: float | np.ndarray, scale: float) -> tuple[bool, float]:
    """Whether ``ours`` matches ``ref`` within ``CHECK_RTOL * scale``; the largest difference.

    NaN matches NaN and an infinity matches the same infinity, as NumPy computes them.
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    same_special = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    with np.errstate(invalid="ignore"):
        diff = np.where(same_special, 0.0, np.abs(a - b))
    worst = float(np.max(diff)) if diff.size else 0.0
    ok = bool(np.all(diff <= CHECK_RTOL * max(scale, np.finfo(np.float64).tiny)))
    return ok, worst


# -- 3. the driver: the only place that communicates ---------------------------------------

@dataclass
class Outcome:
    """What one run produced (on the root; ``value`` is None elsewhere)."""

    value: float | np.ndarray | None
    times: list[float]
    load_s: float


def run(comm: Any, backend: Any, source: Source | None, layout: Layout, *, axis: int | None,
        distribute: str, warmup: int = 0, repeat: int = 1, root: int = 0) -> Outcome:
    """Compute the mean on every rank of ``comm``; the value arrives on ``root``.

    Parameters
    ----------
    comm : MPI.Comm
    backend : Backend
    source : Source or None
        Needed on every rank for ``distribute="local"``, on ``root`` for ``"scatter"``.
    layout : Layout
        Block layout of the global array.
    axis : {None, 0, 1}
    distribute : {"local", "scatter"}
    warmup, repeat : int
        Untimed and timed repetitions of the reduction (load happens once).
    root : int

    Returns
    -------
    Outcome
        The mean (root only), the reduction time of each repetition (max over
        ranks) and the load time (max over ranks).
    """
    from hpcsuite.core import mpi
    from hpcsuite.core.distribute import rows_of_rank
    from hpcsuite.core.timing import measure

    xp = backend.xp
    comm.Barrier()  # comm: load starts together, so its time is the job's
    start = time.perf_counter()
    rows = rows_of_rank(comm, backend, source, layout, distribute, root=root)
    backend.synchronize()
    load_s = mpi.max_over_ranks(comm, time.perf_counter() - start)
    blocks = layout.local_blocks(comm.size, comm.rank)
    if axis == 1:
        counts = layout.row_counts(comm.size)[0]
    else:
        counts = [len(layout.rank_blocks(comm.size, r)) for r in range(comm.size)]
    spans = [(a, b) for _, a, b in blocks]

    def reduce_once() -> float | np.ndarray | None:
        parts = partials(rows, spans, xp, axis)
        gathered = mpi.gather_rows(comm, backend, parts, counts, root=root)  # comm: gather partials
        return combine(gathered, axis, layout.shape) if comm.rank == root else None

    times, value = measure(reduce_once, warmup=warmup, repeat=repeat, barrier=comm.Barrier,
                           sync=backend.synchronize)
    times = [mpi.max_over_ranks(comm, t) for t in times]
    return Outcome(value=value, times=times, load_s=load_s)


# -- 4. main: parse, run, check, time, print, record ---------------------------------------

def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Mean of a distributed array over MPI ranks, on NumPy (CPU) or CuPy (GPU). "
                    "Default: the mean of a 10000x10000 array of uniform random doubles "
                    "(Dask tutorial workload), bitwise identical at any rank count.",
        epilog="example: mpirun -n 8 python -m hpcsuite.mean --check",
        parents=[cli.common_parser()],
    )
    g = p.add_argument_group("mean options")
    g.add_argument("--shape", type=cli.shape, default=None,
                   help=f"global shape, e.g. 10000x10000 [{'x'.join(map(str, DEFAULT_SHAPE))}; "
                        "a file's own shape]")
    g.add_argument("--dtype", default=None, choices=DTYPES,
                   help="element type of generated data; float32 and integers accumulate "
                        "in float64 [float64; a file's own dtype]")
    g.add_argument("--axis", default="none", choices=AXES,
                   help="none: one mean; 0: column means; 1: row means [%(default)s]")
    g.add_argument("--source", default="random", metavar="random|FILE",
                   help="'random' (uniform [0,1) floats, integers in [0,1000)), a .npy file, "
                        "or an HDF5 file as FILE.h5 or FILE.h5:DATASET [%(default)s]")
    g.add_argument("--distribute", default="local", choices=("local", "scatter"),
                   help="local: each rank generates or reads only its own rows; scatter: "
                        "rank 0 builds the whole array and Scatterv's it [%(default)s]")
    g.add_argument("--output", metavar="PATH.npy",
                   help="save the mean (a scalar, or the vector for --axis 0/1) as .npy")
    return p


def _check_memory(comm: Any, args: Any, layout: Layout, itemsize: int, backend: Any) -> None:
    """Refuse, on every rank together, a job whose arrays would not fit in a node's memory
    (or, on a GPU, in the GPU's)."""
    from hpcsuite.core import memory, mpi

    on_device = backend.on_device
    start, stop = layout.rank_rows(comm.size, comm.rank)
    row_bytes = layout.row_elements * itemsize
    # Host bytes this rank allocates: its rows (on the GPU they pass through a block-
    # sized buffer), plus on the root the whole array for --distribute scatter and
    # again for --check's one-process reference.
    need = layout.block_rows * row_bytes if on_device else (stop - start) * row_bytes
    if comm.rank == 0:
        need += layout.rows * row_bytes * ((args.distribute == "scatter") + args.check)
    node = mpi.node_comm(comm)
    node_need = node.allreduce(need)  # comm: metadata
    with mpi.agree(comm):
        if node.rank == 0:
            memory.check_fits(node_need, memory.available_bytes(), where=f"node {mpi.processor_name()}",
                              hint="use more nodes, fewer ranks per node, or a smaller --shape"
                                   + (", or drop --check" if args.check else ""))
    mpi.check_device_fits(comm, backend, (stop - start) * row_bytes,  # the rank's rows live on its GPU
                          hint="use more GPUs (ranks), or a smaller --shape")


def _progress(args: Any, comm: Any, text: str) -> None:
    # A progress line on a terminal; batch logs get the summary instead.
    if comm.rank == 0 and not args.quiet and sys.stderr.isatty():
        sys.stderr.write(f"{PROG}: {text}\n")
        sys.stderr.flush()


def _save(path: str, value: float | np.ndarray) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, np.asarray(value, dtype=np.float64))
    os.replace(tmp, path)


def _format_value(value: float | np.ndarray) -> str:
    if np.ndim(value) == 0:
        return repr(float(value))  # all 17 digits: equal text means equal bits
    v = np.asarray(value)
    return (f"{v.size} values, min {float(np.min(v))!r}, max {float(np.max(v))!r}, "
            f"first {float(v.reshape(-1)[0])!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.mean``; return the exit status."""
    args = parser().parse_args(argv)
    axis = None if args.axis == "none" else int(args.axis)
    if args.output and not args.output.endswith(".npy"):
        raise UsageError(f"--output {args.output!r} must end in .npy")

    # MPI starts only now, so --help and usage errors never pay for it.
    from hpcsuite.core import backend as backends
    from hpcsuite.core import mpi
    from hpcsuite.core.sources import open_source

    comm = mpi.world()
    wall_start = time.perf_counter()
    local_rank = mpi.local_rank(comm)
    source = None
    with mpi.agree(comm):
        if comm.rank == 0:
            cli.check_writable(args.json, "--json")
            cli.check_writable(args.output, "--output")
        bk = backends.select(args.device, local_rank)
        if args.distribute == "local" or comm.rank == 0:
            source = open_source(args.source, shape=args.shape, dtype=args.dtype, seed=args.seed)
    meta = (source.shape, source.dtype.str, source.description) if comm.rank == 0 else None
    shape, dtype_str, description = comm.bcast(meta, root=0)  # comm: metadata
    with mpi.agree(comm):
        if axis is not None and axis >= len(shape):
            raise UsageError(f"--axis {axis} needs an array of {axis + 1} or more dimensions; "
                             f"this one has shape {shape}")
    layout = Layout.for_shape(shape)
    nbytes = math.prod(shape) * np.dtype(dtype_str).itemsize
    _check_memory(comm, args, layout, np.dtype(dtype_str).itemsize, bk)

    _progress(args, comm, f"loading {description} ({nbytes / 1e6:.1f} MB) on {comm.size} ranks, "
                          f"{args.distribute}")
    out = run(comm, bk, source, layout, axis=axis, distribute=args.distribute,
              warmup=args.warmup, repeat=args.repeat)
    wall_s = mpi.max_over_ranks(comm, time.perf_counter() - wall_start)
    hosts = mpi.hosts(comm)

    check = None
    if args.check:
        _progress(args, comm, "checking against one-process NumPy")
        with mpi.agree(comm):
            if comm.rank == 0:
                ref, scale = reference(source, axis)
                ok, worst = compare(out.value, ref, scale)
                check = {"passed": ok, "max_abs_diff": worst, "rtol": CHECK_RTOL,
                         "reference": "numpy.mean(dtype=float64), one process"}
    passed = comm.bcast(check["passed"] if check else True, root=0)  # comm: metadata
    if comm.rank == 0:
        _report(args, comm, bk, out, layout, description, dtype_str, wall_s, hosts, check)
    if not passed:
        err = CheckError(f"the mean differs from NumPy's by more than {CHECK_RTOL:g} x mean |x|")
        err.collective = True  # every rank knows: all exit 3, no abort
        raise err
    return 0


def _report(args: Any, comm: Any, bk: Any, out: Outcome, layout: Layout, description: str,
            dtype_str: str, wall_s: float, hosts: list[str], check: dict[str, Any] | None) -> None:
    """Print the result on rank 0 and write the output file and the record."""
    from hpcsuite.core import mpi
    from hpcsuite.core.timing import summarize

    axis = None if args.axis == "none" else int(args.axis)
    shape = layout.shape
    nbytes = math.prod(shape) * np.dtype(dtype_str).itemsize
    stats = summarize(out.times)
    bandwidth = nbytes / stats.median / 1e9 if stats.median > 0 else math.inf
    nodes = len(set(hosts))
    lines = [f"{PROG}: mean = {_format_value(out.value)}" + ("" if axis is None else f" (axis {axis})")]
    if not args.quiet:
        lines += [
            f"  array      {description}, {nbytes / 1e6:.1f} MB",
            f"  ranks      {comm.size} on {nodes} node{'s' if nodes > 1 else ''}, "
            f"device {bk.device} ({bk.description}), distribute {args.distribute}",
            f"  load       {out.load_s:.3f} s",
            f"  reduction  {stats.median:.4f} s (median of {stats.n}, min {stats.min:.4f} s), "
            f"{bandwidth:.2f} GB/s",
            f"  wall       {wall_s:.3f} s",
        ]
        if check:
            verdict = "ok" if check["passed"] else "FAILED"
            lines.append(f"  check      {verdict}: max |ours - numpy| = {check['max_abs_diff']:.3g} "
                         f"(allowed {CHECK_RTOL:g} x mean |x|)")
    print("\n".join(lines), flush=True)

    if args.output:
        _save(args.output, out.value)
    if args.json:
        from hpcsuite.core import records  # only now: it costs every rank start-up time

        env = records.fingerprint(hosts=hosts, mpi_library=mpi.library_version(), device=bk.device,
                                  device_name=bk.description,
                                  gpu_aware=mpi.gpu_aware() if bk.on_device else None)
        params = {"shape": list(shape), "dtype": np.dtype(dtype_str).name, "source": args.source,
                  "seed": args.seed, "axis": args.axis, "distribute": args.distribute,
                  "block_rows": layout.block_rows, "warmup": args.warmup, "repeat": args.repeat,
                  "bytes": nbytes}
        times = {"unit": "s", "samples": out.times, "reduction": out.times, "reduction_stats": stats.as_dict(),
                 "load": out.load_s, "wall": wall_s}
        fom = {"name": "bandwidth", "value": bandwidth, "unit": "GB/s", "higher_is_better": True}
        result = out.value if axis is None else {"size": int(np.size(out.value))}
        records.append(args.json, records.make("mean", params=params, ranks=comm.size, env=env,
                                               times=times, fom=fom, result=result, check=check))


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
