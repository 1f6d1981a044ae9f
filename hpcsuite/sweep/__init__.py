"""``python -m hpcsuite.sweep MODULE --ranks 1,2,4 ...``: run a scaling series, collect it.

Strong scaling runs one problem at every rank count; weak scaling (``--weak-shape``)
grows the problem with the ranks (``--shape`` rows times the rank count). Each point
(rank count x repetition) is one job:

* ``--launcher local``: ``mpiexec -n N`` on this machine, one point after another;
* ``--launcher slurm``: one batch job per point (``sbatch``), all submitted at once,
  polled with ``squeue`` every 2 s, backing off to every 15 s while nothing changes (a
  progress line shows pending, running, done and failed). A job that left the queue is
  decided by ``sacct`` where accounting runs, else ``scontrol``, and by the record it
  left; a controller that does not answer (a failed or timed-out call) decides nothing,
  so running points are never dropped for it.

``--nodes 1,2,4`` (with ``--ranks-per-node``) sweeps node counts instead of rank counts;
``--gpus-per-task`` and ``--cpus-per-task`` ask Slurm for them in every job.

Everything lives in ``--out``: the plan (``sweep.json``), one records file and one log
per point, the job scripts, and ``results.jsonl`` with every record collected. Running
the same command again resumes: finished points are kept, jobs still queued are waited
for, failed and missing ones run again. Failed points are reported with their log tail,
and the collected series is printed as a scaling table (``python -m hpcsuite.report``
draws the plots).

Modules: :mod:`~hpcsuite.sweep.plan` (the points and their batch scripts, pure),
:mod:`~hpcsuite.sweep.store` (the ``--out`` folder), :mod:`~hpcsuite.sweep.local`
(mpiexec here, and the progress line), :mod:`~hpcsuite.sweep.batch` (Slurm) and
:mod:`~hpcsuite.sweep.command` (the command line).
"""

from hpcsuite.sweep.batch import FINAL, POLL_FIRST, POLL_MOST, UNKNOWN, job_states, run_slurm
from hpcsuite.sweep.command import main, parser
from hpcsuite.sweep.local import Progress, run_local
from hpcsuite.sweep.plan import PROG, Point, job_script, plan
from hpcsuite.sweep.store import collect, done, load_state

__all__ = [
    "FINAL",
    "POLL_FIRST",
    "POLL_MOST",
    "PROG",
    "UNKNOWN",
    "Point",
    "Progress",
    "collect",
    "done",
    "job_script",
    "job_states",
    "load_state",
    "main",
    "parser",
    "plan",
    "run_local",
    "run_slurm",
]
