"""GPU reduction bandwidth against the device's own copy bandwidth, in one run.

Allocates an array on the GPU, measures the device-to-device copy bandwidth (bytes
read + bytes written, as STREAM counts copy) and the bandwidth of hpcsuite.mean's
reduction (``partials`` + combine; bytes read) over the same array, medians of
``--repeat`` timed runs after warm-up, and prints the ratio. Target: at least 0.80.

usage: python benchmarks/gpu_mean_bench.py [--gbytes 4] [--repeat 20] [--device gpu|cpu]
(--device cpu exercises the same code on NumPy, to test the script without a GPU.)
"""

from __future__ import annotations

import argparse
import sys
import time

from hpcsuite import mean
from hpcsuite.core import backend
from hpcsuite.core.partition import Layout
from hpcsuite.core.timing import measure, summarize


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gbytes", type=float, default=4.0, help="array size in GB [%(default)s]")
    p.add_argument("--repeat", type=int, default=20, help="timed runs [%(default)s]")
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    args = p.parse_args()
    bk = backend.select(args.device)
    xp = bk.xp
    cols = 10000
    rows = max(1, int(args.gbytes * 1e9 / 8 / cols))
    layout = Layout.for_shape((rows, cols))
    a = xp.ones((rows, cols), dtype=xp.float64)
    b = xp.empty_like(a)
    bk.synchronize()
    spans = [(s, e) for _, s, e in layout.local_blocks(1, 0)]

    def copy() -> None:
        b[...] = a

    def reduce() -> float:
        parts = bk.to_host(mean.partials(a, spans, xp, None))
        return mean.combine(parts, None, layout.shape)

    copy_t, _ = measure(copy, warmup=3, repeat=args.repeat, sync=bk.synchronize)
    red_t, value = measure(reduce, warmup=3, repeat=args.repeat, sync=bk.synchronize)
    assert value == 1.0, f"reduction of ones gave {value!r}"
    copy_bw = 2 * a.nbytes / summarize(copy_t).median / 1e9
    red_bw = a.nbytes / summarize(red_t).median / 1e9
    ratio = red_bw / copy_bw
    print(f"device {bk.description}; array {a.nbytes / 1e9:.2f} GB; medians of {args.repeat}")
    print(f"{'kernel':<34}{'GB/s':>10}")
    print(f"{'device-to-device copy (r+w)':<34}{copy_bw:>10.1f}")
    print(f"{'hpcsuite.mean reduction (read)':<34}{red_bw:>10.1f}")
    print(
        f"reduction / copy = {ratio:.2f} (target at least 0.80):"
        f" {'met' if ratio >= 0.8 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    sys.exit(code)
