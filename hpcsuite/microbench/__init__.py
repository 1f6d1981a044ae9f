"""Communication microbenchmarks in the OSU tradition: ``python -m hpcsuite.microbench``.

Modules: ``schedule`` (sizes, iterations; pure), ``stats`` (per-size statistics;
pure), ``buffers`` (numpy, cupy, bytearray, pickle, pkl5 message kinds), ``tests``
(the benchmarks: what one iteration does and how its result is validated),
``runner`` (the timing loop; the only part that communicates), ``output`` (OSU text,
tables, JSON, CSV; OSU parsing), ``__main__`` (the command line).
"""

#: The benchmarks, in ``--all`` order. Listed here, apart from ``runner.TESTS``, so that
#: ``--help`` and argument errors never import mpi4py (importing it starts MPI).
#: Message kinds (see ``buffers``), for the same reason.
KINDS = ("numpy", "cupy", "bytearray", "pickle", "pkl5")
NAMES = ("latency", "bw", "bibw", "multi_lat", "barrier", "bcast", "reduce", "allreduce",
         "gather", "gatherv", "scatter", "scatterv", "allgather", "allgatherv", "alltoall",
         "alltoallv", "reduce_scatter", "iallreduce", "ibcast", "ialltoall")
