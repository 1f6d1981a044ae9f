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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli, driver, mpi
from hpcsuite.core.distribute import rows_of_rank
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary
from hpcsuite.core.errors import UsageError
from hpcsuite.core.partition import Layout
from hpcsuite.core.reduction import reduce_blocks
from hpcsuite.core.sources import DEFAULT_SHAPE, DTYPES, Source, open_source
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
        head = xp.sum(
            rows[first : first + equal * size].reshape(equal, -1), axis=1, dtype=xp.float64
        )
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


# -- 3. the communicating part: load once, reduce per repetition -------------------------


@dataclass
class State:
    """One rank's rows and what the reduction needs to know about the layout."""

    comm: Any
    backend: Any
    layout: Layout
    axis: int | None
    rows: Any
    spans: list[tuple[int, int]]
    counts: list[int]
    source: Source | None = None
    description: str = ""
    dtype: np.dtype = np.dtype("float64")
    distribute: str = "local"
    spec: str = "random"
    seed: int = 0
    value: float | np.ndarray | None = None


def load(
    comm: Any,
    backend: Any,
    source: Source | None,
    layout: Layout,
    *,
    axis: int | None,
    distribute: str,
    root: int = 0,
) -> State:
    """Give every rank its rows (generated, read or scattered) and the reduction's layout."""
    rows = rows_of_rank(comm, backend, source, layout, distribute, root=root)
    spans = [(a, b) for _, a, b in layout.local_blocks(comm.size, comm.rank)]
    if axis == 1:  # one partial per row
        counts = layout.row_counts(comm.size)[0]
    else:  # one partial per block
        counts = [len(layout.rank_blocks(comm.size, r)) for r in range(comm.size)]
    return State(comm, backend, layout, axis, rows, spans, counts, source, distribute=distribute)


def reduce(state: State, *, root: int = 0) -> float | np.ndarray | None:
    """The mean, on ``root`` (None elsewhere): per-block partials, gathered in block order,
    combined exactly (:mod:`hpcsuite.core.reduction`)."""
    parts = partials(state.rows, state.spans, state.backend.xp, state.axis)
    return reduce_blocks(
        state.comm,
        state.backend,
        parts,
        state.counts,
        lambda rows: combine(rows, state.axis, state.layout.shape),
        root=root,
    )


def compute(
    comm: Any,
    backend: Any,
    source: Source | None,
    layout: Layout,
    *,
    axis: int | None,
    distribute: str,
    root: int = 0,
) -> float | np.ndarray | None:
    """Load and reduce once, untimed: the mean on ``root``, None elsewhere."""
    return reduce(
        load(comm, backend, source, layout, axis=axis, distribute=distribute, root=root), root=root
    )


# -- 4. the kernel: what the driver needs to know ------------------------------------------


class Mean(Kernel):
    """The mean as a kernel: loading is the setup, the timed step is the reduction."""

    name = "mean"
    description = (
        "Mean of a distributed array over MPI ranks, on NumPy (CPU) or CuPy (GPU). "
        "Default: the mean of a 10000x10000 array of uniform random doubles "
        "(Dask tutorial workload), bitwise identical at any rank count."
    )
    epilog = "example: mpirun -n 8 python -m hpcsuite.mean --check"
    setup_label = "load"
    step_label = "reduction"

    def add_arguments(self, g: Any) -> None:
        g.add_argument(
            "--shape",
            type=cli.shape,
            default=None,
            help=(
                f"global shape, e.g. 10000x10000 [{'x'.join(map(str, DEFAULT_SHAPE))}; "
                "a file's own shape]"
            ),
        )
        g.add_argument(
            "--dtype",
            default=None,
            choices=DTYPES,
            help=(
                "element type of generated data; float32 and integers accumulate "
                "in float64 [float64; a file's own dtype]"
            ),
        )
        g.add_argument(
            "--axis",
            default="none",
            choices=AXES,
            help="none: one mean; 0: column means; 1: row means [%(default)s]",
        )
        g.add_argument(
            "--source",
            default="random",
            metavar="random|FILE",
            help=(
                "'random' (uniform [0,1) floats, integers in [0,1000)), a .npy file, "
                "or an HDF5 file as FILE.h5 or FILE.h5:DATASET [%(default)s]"
            ),
        )
        g.add_argument(
            "--distribute",
            default="local",
            choices=("local", "scatter"),
            help=(
                "local: each rank generates or reads only its own rows; scatter: "
                "rank 0 builds the whole array and Scatterv's it [%(default)s]"
            ),
        )
        g.add_argument(
            "--output",
            metavar="PATH.npy",
            help="save the mean (a scalar, or the vector for --axis 0/1) as .npy",
        )

    def validate(self, args: Any) -> None:
        if args.output and not args.output.endswith(".npy"):
            raise UsageError(f"--output {args.output!r} must end in .npy")

    def outputs(self, args: Any) -> list[tuple[str | None, str]]:
        return [(args.output, "--output")]

    def plan(self, comm: Any, backend: Any, args: Any) -> None:
        axis = None if args.axis == "none" else int(args.axis)
        source = None
        with mpi.agree(comm):
            if args.distribute == "local" or comm.rank == 0:
                source = open_source(
                    args.source, shape=args.shape, dtype=args.dtype, seed=args.seed
                )
        meta = (source.shape, source.dtype.str, source.description) if comm.rank == 0 else None
        shape, dtype_str, description = comm.bcast(meta, root=0)  # comm: metadata
        with mpi.agree(comm):
            if axis is not None and axis >= len(shape):
                raise UsageError(
                    f"--axis {axis} needs an array of {axis + 1} or more dimensions; "
                    f"this one has shape {shape}"
                )
        args.source_, args.layout_, args.axis_ = source, Layout.for_shape(shape), axis
        args.dtype_, args.description_ = np.dtype(dtype_str), description

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        layout = args.layout_
        start, stop = layout.rank_rows(comm.size, comm.rank)
        row_bytes = layout.row_elements * args.dtype_.itemsize
        # Host bytes: the rank's rows (on a GPU they pass through a block-sized buffer),
        # plus on the root the whole array for --distribute scatter and again for
        # --check's one-process reference.
        host = layout.block_rows * row_bytes if backend.on_device else (stop - start) * row_bytes
        if comm.rank == 0:
            host += layout.rows * row_bytes * ((args.distribute == "scatter") + args.check)
        return Footprint(
            host=host,
            device=(stop - start) * row_bytes,
            hint="use more nodes (GPUs), fewer ranks per node, or a smaller --shape"
            + (", or drop --check" if args.check else ""),
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        state = load(
            comm, backend, args.source_, args.layout_, axis=args.axis_, distribute=args.distribute
        )
        state.description, state.dtype = args.description_, args.dtype_
        state.spec, state.seed = args.source, args.seed
        return state

    def step(self, state: State, phase: str) -> None:
        state.value = reduce(state)

    def check(self, state: State) -> dict[str, Any] | None:
        if state.comm.rank != 0:
            return None
        ref, scale = reference(state.source, state.axis)
        ok, worst = compare(state.value, ref, scale)
        return {
            "passed": ok,
            "max_abs_diff": worst,
            "rtol": CHECK_RTOL,
            "reference": "numpy.mean(dtype=float64), one process",
            "detail": f"max |ours - numpy| = {worst:.3g} (allowed {CHECK_RTOL:g} x mean |x|)",
        }

    def nbytes(self, state: State) -> int:
        return math.prod(state.layout.shape) * state.dtype.itemsize

    def figure(self, state: State) -> Figure:
        return Figure("bandwidth", self.nbytes(state), "GB/s", 1e9)

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        shape, axis = state.layout.shape, state.axis
        nbytes = self.nbytes(state)
        return Summary(
            headline=f"mean = {_format_value(state.value)}"
            + ("" if axis is None else f" (axis {axis})"),
            details=[
                f"array      {state.description}, {nbytes / 1e6:.1f} MB",
                f"distribute {state.distribute} (blocks of {state.layout.block_rows} rows)",
            ],
            params={
                "shape": list(shape),
                "dtype": state.dtype.name,
                "source": state.spec,
                "seed": state.seed,
                "axis": "none" if axis is None else str(axis),
                "distribute": state.distribute,
                "block_rows": state.layout.block_rows,
                "bytes": nbytes,
                "size": math.prod(shape),
            },
            result=state.value if axis is None else {"size": int(np.size(state.value))},
        )

    def write_outputs(self, state: State, args: Any) -> None:
        if args.output:
            _save(args.output, state.value)


KERNEL = Mean()


def _save(path: str, value: float | np.ndarray) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(value, dtype=np.float64))
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UsageError(
            f"--output {path!r} could not be written ({exc.strerror or exc})"
        ) from None


def _format_value(value: float | np.ndarray | None) -> str:
    if value is None:
        return "nan"
    if np.ndim(value) == 0:
        return repr(float(value))  # all 17 digits: equal text means equal bits
    v = np.asarray(value)
    return (
        f"{v.size} values, min {float(np.min(v))!r}, max {float(np.max(v))!r}, "
        f"first {float(v.reshape(-1)[0])!r}"
    )


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.mean``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
