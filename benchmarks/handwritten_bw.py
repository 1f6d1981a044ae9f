"""Minimal hand-written mpi4py bandwidth loop (OSU's osu_bw pattern), the floor for ours.

(benchmarks/microbench_bench.py carries its own copies of this loop and of the latency
and allreduce ones, at both thread levels.) Rank 0 posts a window of Isend, waits, and
waits for a 1-byte acknowledgement; rank 1 posts a window of Irecv, waits, and
acknowledges. MB/s = 10^6 B/s.

usage: mpirun -n 2 python benchmarks/handwritten_bw.py [BYTES] [ITERATIONS] [WINDOW]
"""

import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
size = int(sys.argv[1]) if len(sys.argv) > 1 else 4 << 20
iters = int(sys.argv[2]) if len(sys.argv) > 2 else 20
window = int(sys.argv[3]) if len(sys.argv) > 3 else 64
# Written before timing: a zeroed buffer nobody wrote maps the kernel's shared zero page.
buf = ((np.arange(size) * 7 + comm.rank * 31 + 1) % 251).astype(np.uint8)
ack = np.zeros(1, np.uint8)
peer = 1 - comm.rank
for i in range(iters + 2):
    if i == 2:
        comm.Barrier()
        start = time.perf_counter()
    if comm.rank == 0:
        MPI.Request.Waitall([comm.Isend(buf, peer, 2) for _ in range(window)])
        comm.Recv(ack, peer, 3)
    else:
        MPI.Request.Waitall([comm.Irecv(buf, peer, 2) for _ in range(window)])
        comm.Send(ack, peer, 3)
elapsed = time.perf_counter() - start
if comm.rank == 0:
    print(f"bandwidth_MBps={size * window * iters / elapsed / 1e6:.2f}")
