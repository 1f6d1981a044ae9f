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
import time
from collections.abc import Callable, Sequence
from typing import Any

from hpcsuite.core import cli

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


def default_size(ranks_on_node: int, available: int | None, device_cache: int | None = None) -> tuple[int, str]:
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
        return cap, (f"note: arrays below STREAM's 4x last-level-cache rule ({want} elements) "
                     "to fit in memory")
    return want, ""


def kernels(a: Any, b: Any, c: Any, xp: Any, scalar: float = SCALAR) -> dict[str, Callable[[], None]]:
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
    return [float(xp.mean(xp.abs(arr - w))) / abs(w) if w else float(xp.mean(xp.abs(arr)))
            for arr, w in zip(arrays, want)]


def run(comm: Any, backend: Any, n: int, *, iterations: int) -> dict[str, Any]:
    """STREAM on every rank of ``comm``: per-kernel times (max over ranks) and the check.

    Returns
    -------
    dict
        ``times``: kernel -> seconds of each counted iteration; ``errors``: the
        largest relative error of a, b and c over ranks.
    """
    from hpcsuite.core import mpi

    xp = backend.xp
    a = xp.full(n, 1.0)
    b = xp.full(n, 2.0)
    c = xp.zeros(n)
    a *= 2.0
    ops = kernels(a, b, c, xp)
    times: dict[str, list[float]] = {k: [] for k in KERNELS}
    for it in range(iterations + 1):
        for name in KERNELS:
            comm.Barrier()  # comm: every rank starts the kernel together
            start = time.perf_counter()
            ops[name]()
            backend.synchronize()
            elapsed = mpi.max_over_ranks(comm, time.perf_counter() - start)
            if it > 0:  # STREAM ignores the first iteration
                times[name].append(elapsed)
    errs = errors((a, b, c), expected(iterations + 1), xp)
    worst = [mpi.max_over_ranks(comm, e) for e in errs]
    return {"times": times, "errors": worst}


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0],
                           parents=[cli.common_parser()])
    p.set_defaults(repeat=10)
    g = p.add_argument_group("stream options")
    g.add_argument("--size", type=cli.positive_int, default=None, metavar="N",
                   help="elements per array per rank [4x the last-level cache, at least 2**23]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.stream``; return the exit status."""
    args = parser().parse_args(argv)
    from hpcsuite.core import app, memory, mpi

    ctx = app.begin(args)
    comm = ctx.comm
    node = mpi.node_comm(comm)
    note = ""
    n = args.size
    if n is None:
        free = ctx.backend.free_bytes() if ctx.backend.on_device else memory.available_bytes()
        n, note = default_size(node.size, free, ctx.backend.cache_bytes)
        n = comm.allreduce(n, op=mpi.MPI.MIN)  # comm: metadata - one size for all ranks
    elif n < rule_elements(node.size, ctx.backend.cache_bytes):
        # STREAM's own rule; smaller arrays measure the caches, which is sometimes wanted.
        note = (f"note: --size {n} is below STREAM's 4x last-level-cache rule "
                f"({rule_elements(node.size, ctx.backend.cache_bytes)} elements per rank here): "
                "these rates include cache")
    need = node.allreduce(3 * 8 * n)  # comm: metadata
    with mpi.agree(comm):
        if node.rank == 0 and not ctx.backend.on_device:
            memory.check_fits(need, memory.available_bytes(), where=f"node {mpi.processor_name()}",
                              hint="lower --size or run fewer ranks per node")
    mpi.check_device_fits(comm, ctx.backend, 3 * 8 * n, hint="lower --size or run fewer ranks per GPU")
    out = run(comm, ctx.backend, n, iterations=args.repeat)
    best = {}
    details = [f"arrays     3 x {n} float64 per rank ({3 * 8 * n / 1e6:.1f} MB), {args.repeat} counted "
               "iterations", "function   best MB/s    avg time     min time     max time"]
    if note:
        details.insert(1, note)
    for name in KERNELS:
        ts = out["times"][name]
        best[name] = WORDS[name] * 8 * n * comm.size / min(ts) / 1e6
        details.append(f"{name:<10} {best[name]:>10.1f} {sum(ts) / len(ts):>11.6f} {min(ts):>12.6f} "
                       f"{max(ts):>12.6f}")
    eps = 1e-13
    passed = all(e <= eps for e in out["errors"])
    check = {"passed": passed, "errors": out["errors"], "epsilon": eps,
             "detail": f"relative errors of a, b, c {', '.join(f'{e:.1e}' for e in out['errors'])} "
                       f"(allowed {eps:g})"}
    return app.finish(ctx, args, kernel="stream", headline=f"triad {best['triad']:.1f} MB/s "
                      f"(copy {best['copy']:.0f}, scale {best['scale']:.0f}, add {best['add']:.0f})",
                      details=details, params={"size": n, "bytes": 3 * 8 * n * comm.size,
                                               "repeat": args.repeat},
                      samples=out["times"]["triad"], fom=("triad", best["triad"], "MB/s"),
                      result={"best_MBps": best}, check=check)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
