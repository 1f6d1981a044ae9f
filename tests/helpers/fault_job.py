"""A job for the error-policy tests: one rank fails while the others wait in a collective.

usage: mpiexec -n N python tests/helpers/fault_job.py crash|memory|user|agreed RANK
  crash   RANK raises RuntimeError (a bug): traceback tagged [rank RANK], MPI_Abort(1)
  memory  RANK asks NumPy for 2**55 doubles (256 PiB): one line tagged [rank RANK], MPI_Abort(1)
  user    RANK raises InputError outside any agreement: tagged message, MPI_Abort(2)
  agreed  RANK raises InputError inside mpi.agree: one message from rank 0, exit 2 everywhere
Without the policy, the other ranks would wait in Barrier forever.
"""

from __future__ import annotations

import sys

from hpcsuite.core import cli
from hpcsuite.core.errors import InputError


def main(argv):
    kind, bad = argv[0], int(argv[1])
    from hpcsuite.core import mpi

    comm = mpi.world()
    if kind == "agreed":
        with mpi.agree(comm):
            if comm.rank == bad:
                raise InputError(f"injected user error on rank {bad}")
    elif comm.rank == bad:
        if kind == "crash":
            raise RuntimeError(f"injected failure on rank {bad}")
        if kind == "memory":
            import numpy as np

            np.empty(1 << 55)
        raise InputError(f"injected user error on rank {bad}")
    comm.Barrier()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, sys.argv[1:], prog="fault_job"))
