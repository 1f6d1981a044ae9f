"""The minimal hand-written mpi4py mean: what hpcsuite.mean is measured against.

Each rank generates its share of rows of a 10000 x 10000 uniform array, sums it, and
one Reduce brings the total to rank 0. No checks, no records, no reproducibility
across rank counts: the floor a framework's overhead is judged by.

usage: mpirun -n N python benchmarks/handwritten_mean.py [ROWS COLS]
"""

import sys

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rows, cols = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (10000, 10000)
mine = rows // comm.size + (1 if comm.rank < rows % comm.size else 0)
block = np.random.default_rng([comm.rank, 42]).random((mine, cols))
total = comm.reduce(block.sum(), op=MPI.SUM, root=0)
if comm.rank == 0:
    print(f"mean = {total / (rows * cols)!r}")
