"""STREAM-style read bandwidth: each rank sums its own resident array, timed.

The memory-bound ceiling for a reduction kernel: ``numpy.sum`` over an array much
larger than the caches, all ranks at once, the maximum time over ranks per
repetition, the best-of and median reported as aggregate GB/s (10^9 B/s).

usage: mpirun -n N python benchmarks/stream_read.py [TOTAL_BYTES] [REPEAT]
"""

import statistics
import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
total = int(float(sys.argv[1])) if len(sys.argv) > 1 else 800_000_000
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 10
a = np.random.default_rng(comm.rank).random(total // 8 // comm.size)
a.sum()  # warm-up: pages touched, code paths hot
times = []
for _ in range(repeat):
    comm.Barrier()
    t = time.perf_counter()
    a.sum()
    times.append(comm.allreduce(time.perf_counter() - t, op=MPI.MAX))
if comm.rank == 0:
    nbytes = a.nbytes * comm.size
    print(
        f"read_GBps median={nbytes / statistics.median(times) / 1e9:.3f} "
        f"best={nbytes / min(times) / 1e9:.3f}"
    )
