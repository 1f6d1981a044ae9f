"""Communication microbenchmarks in the OSU tradition: ``python -m hpcsuite.microbench``.

A drop-in for OSU Micro-Benchmarks 7.4: the same measurements (every buffer written
before timing, MPI started at OSU's thread level, OSU's overlap formula), OSU's text
output and short flags, plus per-size statistics and validation.

Modules: ``schedule`` (sizes, iterations; pure), ``stats`` (per-size statistics, OSU's
overlap and tail percentiles; pure), ``buffers`` (numpy, cupy, bytearray, pickle, pkl5
message kinds), ``catalog`` (point-to-point, multi-pair and one-sided benchmarks: what
one iteration does and how its data is validated), ``collectives`` (blocking and
non-blocking collectives), ``runner`` (the registry and the timing loop; the only part
that times), ``output`` (OSU 7.4 text, tables, CSV; the OSU parser), ``__main__`` (the
command line, OSU's flags, MPI start-up at the chosen thread level).
"""

#: The benchmarks, in ``--all`` order. Listed here, apart from ``runner.TESTS`` (a test
#: keeps the two equal), so that ``--help`` and argument errors load neither mpi4py nor
#: libmpi, which ``runner`` imports. Message kinds (see ``buffers``), for the same reason.
KINDS = ("numpy", "cupy", "bytearray", "pickle", "pkl5")
NAMES = (
    "latency",
    "bw",
    "bibw",
    "multi_lat",
    "mbw_mr",
    "put_latency",
    "get_latency",
    "acc_latency",
    "barrier",
    "bcast",
    "reduce",
    "allreduce",
    "gather",
    "gatherv",
    "scatter",
    "scatterv",
    "allgather",
    "allgatherv",
    "alltoall",
    "alltoallv",
    "reduce_scatter",
    "reduce_scatter_block",
    "iallreduce",
    "ibcast",
    "ialltoall",
    "ialltoallv",
    "igather",
    "igatherv",
    "iscatter",
    "iscatterv",
    "iallgather",
    "iallgatherv",
    "ireduce",
    "ireduce_scatter",
    "ibarrier",
    "init",
    "hello",
)
#: ``--thread-level`` choices: mpi4py's names of MPI's thread levels.
THREAD_LEVELS = ("single", "funneled", "serialized", "multiple")
#: OSU's ``-T`` choices: (NumPy element type, MPI name).
DATATYPES = {
    "mpi_char": ("uint8", "MPI_CHAR"),
    "mpi_int": ("int32", "MPI_INT"),
    "mpi_float": ("float32", "MPI_FLOAT"),
}
