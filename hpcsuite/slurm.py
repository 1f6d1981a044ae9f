"""``python -m hpcsuite.slurm MODULE [options]``: launch a module inside a batch job.

The ``slurm/*.sbatch`` templates end in this one line, so the launch logic lives in
Python, tested, instead of in a dozen shell scripts:

* launcher: ``srun --mpi=pmi2`` for MPICH-family libraries, ``srun --mpi=pmix`` for
  Open MPI, ``mpirun -n $SLURM_NTASKS`` where srun is missing;
  ``HPCSUITE_LAUNCHER=srun|mpirun`` and ``HPCSUITE_SRUN_MPI=pmi2|pmix|...`` override;
* ``OMP_NUM_THREADS`` from ``--cpus-per-task``;
* one record appended to ``$HPCSUITE_RESULTS/<job name>-<job id>.jsonl`` (default
  folder ``results`` in the submission folder), unless the options name ``--json``.

The command is built as a list and run as a child: options pass through untouched,
with no shell and no ``eval``, whatever quotes or spaces they hold. Signals the job
receives (``--signal=B:USR1@60`` before the time limit, TERM, INT) are forwarded to it.
When the module exits with :data:`REQUEUE_EXIT` - a trainer that checkpointed on
SIGUSR1 - the launcher asks Slurm to requeue the job, *after* every rank has finished
cleanly (requeueing while ranks still run would kill them mid-exit and leave stale MPI
shared-memory segments that break the requeued run's start).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError

PROG = "hpcsuite.slurm"
from hpcsuite.registry import PARALLEL as MODULES  # what a template may launch

#: Exit status of a module that checkpointed and wants the job requeued (EX_TEMPFAIL).
REQUEUE_EXIT = 75
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


def mpi_family() -> str:
    """``"openmpi"``, ``"mpich"`` or ``"unknown"``: the library mpi4py is built on.

    Asked without initializing MPI (this process is not an MPI rank).
    """
    try:
        import mpi4py

        mpi4py.rc.initialize = False
        from mpi4py import MPI

        text = MPI.Get_library_version()
    except Exception:  # no mpi4py or no libmpi: srun still works with the default plugin
        return "unknown"
    if "Open MPI" in text:
        return "openmpi"
    if any(name in text for name in ("MPICH", "MVAPICH", "Intel(R) MPI", "CRAY MPICH")):
        return "mpich"
    return "unknown"


def command(module: str, args: Sequence[str], env: Mapping[str, str], *, python: str,
            family: str, srun: bool) -> list[str]:
    """The parallel launch command for ``python -m hpcsuite.MODULE ARGS`` in this job. Pure.

    Parameters
    ----------
    module, args
        What to run.
    env : mapping
        The job's environment (``SLURM_*``, ``HPCSUITE_*``).
    python : str
        Interpreter every rank runs.
    family : {"mpich", "openmpi", "unknown"}
        MPI library family, for srun's PMI plugin.
    srun : bool
        Whether ``srun`` is available.
    """
    cli.refuse_control(module, "module")
    cli.refuse_control_in(list(args), "module option")
    for name in ("HPCSUITE_LAUNCHER", "HPCSUITE_SRUN_MPI", "HPCSUITE_RESULTS", "SLURM_SUBMIT_DIR",
                 "SLURM_JOB_NAME", "SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_NPROCS"):
        cli.refuse_control(env.get(name, ""), name)  # these become arguments and paths
    if module not in MODULES:
        raise UsageError(f"unknown module {module!r}; choose one of {', '.join(MODULES)}")
    launcher = env.get("HPCSUITE_LAUNCHER") or ("srun" if srun and env.get("SLURM_JOB_ID") else "mpirun")
    if launcher not in ("srun", "mpirun"):
        raise UsageError(f"HPCSUITE_LAUNCHER={launcher!r}; set it to srun or mpirun")
    if launcher == "srun":
        plugin = env.get("HPCSUITE_SRUN_MPI") or {"mpich": "pmi2", "openmpi": "pmix"}.get(family)
        cmd = ["srun"] + ([f"--mpi={plugin}"] if plugin else [])
    else:
        ntasks = env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS") or "1"
        cmd = ["mpirun", "-n", ntasks]
    cmd += [python, "-m", f"hpcsuite.{module}", *args]
    if not any(a == "--json" or a.startswith("--json=") for a in args):
        folder = env.get("HPCSUITE_RESULTS") or os.path.join(env.get("SLURM_SUBMIT_DIR", "."), "results")
        name = f"{env.get('SLURM_JOB_NAME', 'hpcsuite')}-{env.get('SLURM_JOB_ID', 'local')}.jsonl"
        cmd += ["--json", os.path.join(folder, name)]
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    """Build the launch command and replace this process with it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[0] + "\n\nusage: python -m hpcsuite.slurm MODULE [options]\n"
              f"modules: {', '.join(MODULES)}")
        return 0 if argv else 2
    module, args = argv[0], argv[1:]
    env = dict(os.environ)
    cmd = command(module, args, env, python=sys.executable, family=mpi_family(),
                  srun=shutil.which("srun") is not None)
    if shutil.which(cmd[0], path=env.get("PATH")) is None:
        raise UsageError(f"{cmd[0]} is not on PATH ({env.get('PATH', '')!r}): load your MPI module "
                         "(module load ...), or pip install 'hpcsuite[mpich]' into this environment")
    if "--json" in cmd:
        folder = os.path.dirname(cmd[cmd.index("--json") + 1]) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the results folder {folder!r}: {exc.strerror or exc}; "
                             "set HPCSUITE_RESULTS to a writable folder") from None
    env.setdefault("OMP_NUM_THREADS", env.get("SLURM_CPUS_PER_TASK", "1"))
    print(f"{PROG}: job {env.get('SLURM_JOB_ID', '-')} on {env.get('SLURM_JOB_NODELIST', '-')}, "
          f"{env.get('SLURM_NTASKS', '?')} tasks: {' '.join(cmd)}", flush=True)
    child = subprocess.Popen(cmd, env=env)
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    code = child.wait()
    if code == REQUEUE_EXIT and env.get("SLURM_JOB_ID"):
        print(f"{PROG}: the module checkpointed and asked for more time: requeueing job "
              f"{env['SLURM_JOB_ID']}", flush=True)
        subprocess.run(["scontrol", "requeue", env["SLURM_JOB_ID"]], check=False, timeout=60)
        return 0
    return code


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
