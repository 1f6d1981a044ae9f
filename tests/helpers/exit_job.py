"""A job for the exit-policy tests: one rank leaves by SystemExit or KeyboardInterrupt
while the others wait in a collective (issue 14, item 5).

usage: mpiexec -n N python tests/helpers/exit_job.py exit|interrupt|agreed-exit RANK
  exit         RANK raises SystemExit(4) (sys.exit deep in a library): MPI_Abort(4)
  interrupt    RANK raises KeyboardInterrupt: MPI_Abort(130)
  agreed-exit  every rank raises cli.collective_exit(5) together: clean exit 5, no abort
Without the policy, the other ranks would wait in Barrier forever.
"""

from __future__ import annotations

import sys

from hpcsuite.core import cli


def main(argv):
    kind, bad = argv[0], int(argv[1])
    from hpcsuite.core import mpi

    comm = mpi.world()
    comm.Barrier()
    if kind == "agreed-exit":
        raise cli.collective_exit(5)
    if comm.rank == bad:
        if kind == "exit":
            sys.exit(4)
        raise KeyboardInterrupt
    comm.Barrier()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, sys.argv[1:], prog="exit_job"))
