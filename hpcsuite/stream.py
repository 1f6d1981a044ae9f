"""``python -m hpcsuite.stream``: McCalpin's STREAM on every rank, aggregated over ranks.

Copy ``c = a``, Scale ``b = s c``, Add ``c = a + b``, Triad ``a = b + s c`` on three
arrays per rank, each at least 4 times the last-level cache by default. As STREAM:
the first iteration is not counted; the best rate is reported in MB/s (1 MB = 10^6 B)
with bytes counted as STREAM counts them (2 or 3 arrays of 8-byte words per element,
not the write-allocate traffic); average, minimum and maximum times are shown; and the
arrays are checked after the timed loop against the closed form of the recurrence.
The rate is aggregated: all ranks' bytes over the slowest rank's time.

NumPy cannot fuse Triad: it runs as two passes (``a = s c``, then ``a += b``), which
moves more bytes than STREAM counts, so NumPy's Triad rate sits below a compiled
STREAM's. The benchmark compares it with one-process NumPy doing the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hpcsuite.core import cli, driver, memory, mpi, stats
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary

PROG = "hpcsuite.stream"
SCALAR = 3.0
KERNELS = ("copy", "scale", "add", "triad")
#: 8-byte words moved per element, as STREAM counts them.
WORDS = {"copy": 2, "scale": 2, "add": 3, "triad": 3}


def last_level_cache_bytes() -> int:
    """Size of the largest cache level of CPU 0 (sysfs), or 32 MiB when unknown."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "size"), encoding="ascii") as f:
                    text = f.read().strip().upper()
            except OSError:
                continue
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * mult)
    except (OSError, ValueError):
        pass
    return best or 32 << 20


def rule_elements(ranks_on_node: int, device_cache: int | None = None) -> int:
    """Elements per array per rank that meet McCalpin's rule (see :func:`default_size`)."""
    if device_cache:  # a GPU's own L2, not shared with the node's other ranks
        return max(1 << 23, -(-4 * device_cache // 8))
    return max(1 << 23, -(-4 * last_level_cache_bytes() // 8 // ranks_on_node))


def default_size(
    ranks_on_node: int, available: int | None, device_cache: int | None = None
) -> tuple[int, str]:
    """Elements per array per rank, and a note when the STREAM rule could not be met.

    McCalpin's rule: each array at least 4x the last-level cache of the node, shared by
    the node's ranks (on a GPU: 4x its L2, ``device_cache`` bytes); at least 2**23
    elements (64 MiB). Capped so that the three arrays of every rank take at most half
    the available memory.
    """
    want = rule_elements(ranks_on_node, device_cache)
    if available is None:
        return want, ""
    cap = available // 2 // (3 * 8 * ranks_on_node)
    if cap < want:
        return (
            cap,
            (
                f"note: arrays below STREAM's 4x last-level-cache rule ({want} elements) "
                "to fit in memory"
            ),
        )
    return want, ""


def kernels(
    a: Any, b: Any, c: Any, xp: Any, scalar: float = SCALAR
) -> dict[str, Callable[[], None]]:
    """The four STREAM operations on arrays ``a``, ``b``, ``c`` (in place, no allocation)."""

    def triad() -> None:
        xp.multiply(c, scalar, out=a)
        xp.add(a, b, out=a)

    return {
        "copy": lambda: xp.copyto(c, a),
        "scale": lambda: xp.multiply(c, scalar, out=b),
        "add": lambda: xp.add(a, b, out=c),
        "triad": triad,
    }


def expected(iterations: int, scalar: float = SCALAR) -> tuple[float, float, float]:
    """Values of a, b, c after ``iterations`` passes, by STREAM's recurrence on scalars."""
    a, b, c = 2.0, 2.0, 0.0  # a = 1 doubled before the loop, as STREAM does
    for _ in range(iterations):
        c = a
        b = scalar * c
        c = a + b
        a = b + scalar * c
    return a, b, c


def errors(arrays: Sequence[Any], want: Sequence[float], xp: Any) -> list[float]:
    """Mean absolute error of each array, relative to the expected value (STREAM's test)."""
    return [
        float(xp.mean(xp.abs(arr - w))) / abs(w) if w else float(xp.mean(xp.abs(arr)))
        for arr, w in zip(arrays, want)
    ]


@dataclass
class State:
    """The three arrays of one rank, their operations, and how often each ran."""

    comm: Any
    backend: Any
    n: int
    note: str
    a: Any
    b: Any
    c: Any
    ops: dict[str, Callable[[], None]]
    runs: int = 0


def arrays(backend: Any, n: int) -> tuple[Any, Any, Any]:
    """STREAM's start: a = 1 then doubled, b = 2, c = 0 - every page written before timing."""
    xp = backend.xp
    a, b, c = xp.full(n, 1.0), xp.full(n, 2.0), xp.zeros(n)
    c.fill(0.0)  # an untouched zeros page is the shared zero page: write it
    a *= 2.0
    return a, b, c


def validate_arrays(comm: Any, state: State) -> list[float]:
    """Largest relative error of a, b, c over ranks after ``state.runs`` iterations (collective)."""
    errs = errors((state.a, state.b, state.c), expected(state.runs), state.backend.xp)
    return [mpi.max_over_ranks(comm, e) for e in errs]


def _size(comm: Any, backend: Any, args: Any) -> tuple[int, str]:
    """Elements per array per rank (one for all ranks), and a note about STREAM's rule."""
    node_ranks = mpi.node_comm(comm).size
    if args.size is None:
        free = backend.free_bytes() if backend.on_device else memory.node_limit()[0]
        n, note = default_size(node_ranks, free, backend.cache_bytes)
        return comm.allreduce(n, op=mpi.MPI.MIN), note  # comm: metadata - one size for all ranks
    want = rule_elements(node_ranks, backend.cache_bytes)
    if args.size < want:
        # STREAM's own rule; smaller arrays measure the caches, which is sometimes wanted.
        return (
            args.size,
            (
                f"note: --size {args.size} is below STREAM's 4x last-level-cache rule "
                f"({want} elements per rank here): these rates include cache"
            ),
        )
    return args.size, ""


class Stream(Kernel):
    """STREAM as a kernel: four separately timed phases per repetition."""

    name = "stream"
    description = __doc__.split("\n\n")[0]
    phases = KERNELS
    primary = "triad"
    step_label = "triad"
    defaults = {"repeat": 10, "warmup": 1}  # STREAM does not count its first iteration

    def add_arguments(self, group: Any) -> None:
        group.add_argument(
            "--size",
            type=cli.positive_int,
            default=None,
            metavar="N",
            help="elements per array per rank [4x the last-level cache, at least 2**23]",
        )

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        n, _ = _size(comm, backend, args)
        return Footprint(
            host=0 if backend.on_device else 3 * 8 * n,
            device=3 * 8 * n,
            hint="lower --size or run fewer ranks per node (or per GPU)",
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        n, note = _size(comm, backend, args)
        a, b, c = arrays(backend, n)
        return State(comm, backend, n, note, a, b, c, kernels(a, b, c, backend.xp))

    def step(self, state: State, phase: str) -> None:
        state.ops[phase]()
        if phase == KERNELS[-1]:
            state.runs += 1

    def checks_always(self, args: Any) -> bool:
        return True  # STREAM validates the arrays after every run

    def check(self, state: State) -> dict[str, Any]:
        errs = validate_arrays(state.comm, state)
        eps = 1e-13
        return {
            "passed": all(e <= eps for e in errs),
            "errors": errs,
            "epsilon": eps,
            "detail": (
                f"relative errors of a, b, c {', '.join(f'{e:.1e}' for e in errs)} "
                f"after {state.runs} iterations (allowed {eps:g})"
            ),
        }

    def figure(self, state: State) -> Figure:
        return Figure("triad", WORDS["triad"] * 8 * state.n * state.comm.size, "MB/s", 1e6)

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        n, size = state.n, state.comm.size
        rates = {k: WORDS[k] * 8 * n * size / stats.median(times[k]) / 1e6 for k in KERNELS}
        best = {k: WORDS[k] * 8 * n * size / min(times[k]) / 1e6 for k in KERNELS}
        details = [
            (
                f"arrays     3 x {n} float64 per rank ({3 * 8 * n / 1e6:.1f} MB), "
                f"{len(times['triad'])} counted iterations"
            ),
            "function   median MB/s  best MB/s   avg time     min time     max time",
        ]
        if state.note:
            details.insert(1, state.note)
        for k in KERNELS:
            ts = times[k]
            details.append(
                f"{k:<10} {rates[k]:>11.1f} {best[k]:>10.1f} {sum(ts) / len(ts):>11.6f} "
                f"{min(ts):>12.6f} {max(ts):>12.6f}"
            )
        return Summary(
            headline=(
                f"triad {rates['triad']:.1f} MB/s median (copy {rates['copy']:.0f}, "
                f"scale {rates['scale']:.0f}, add {rates['add']:.0f}; best triad "
                f"{best['triad']:.1f})"
            ),
            details=details,
            params={"size": n, "bytes": 3 * 8 * n * size},
            result={"median_MBps": rates, "best_MBps": best},
        )


KERNEL = Stream()


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.stream``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
