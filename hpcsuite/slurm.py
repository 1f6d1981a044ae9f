"""``python -m hpcsuite.slurm MODULE [options]``: launch a module inside a batch job.

The ``slurm/*.sbatch`` templates end in this one line, so the launch logic lives in
Python, tested, instead of in a dozen shell scripts:

* launcher: ``srun`` with the site's default PMI plugin (``MpiDefault``) where the MPI
  library speaks it, else the one it needs (:func:`srun_mpi`): PMI-2 for MPICH without
  PMIx, Intel MPI and MVAPICH (Intel MPI also gets ``I_MPI_PMI_LIBRARY`` pointing at
  Slurm's ``libpmi2.so`` when one is found); Open MPI runs under srun where the site's
  default is PMIx, else under its own ``mpirun`` (which starts through Slurm);
  ``mpirun -n $SLURM_NTASKS`` where srun is missing;
  ``HPCSUITE_LAUNCHER=srun|mpirun`` and ``HPCSUITE_SRUN_MPI=pmi2|pmix|...`` override;
* ``--cpus-per-task`` given to srun (since Slurm 22.05 a step no longer inherits the
  job's) and ``OMP_NUM_THREADS`` from it;
* GPUs: with ``--gpus-per-task`` Slurm gives each rank its own GPU; a job that holds
  GPUs per node instead (``--gpus-per-node``, ``--gres=gpu:N``) gets one GPU per rank
  by local rank (``CUDA_VISIBLE_DEVICES`` set in each rank); ``HPCSUITE_GPU_BIND=
  local-rank|none`` overrides;
* one record appended to ``$HPCSUITE_RESULTS/<job name>-<job id>.jsonl`` (default
  folder ``results`` in the submission folder), unless the options name ``--json``.

The command is built as a list and run as a child: options pass through untouched,
with no shell and no ``eval``, whatever quotes or spaces they hold (the local-rank GPU
wrapper is a fixed ``sh`` script that gets them as ``"$@"``). Signals the job
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
from hpcsuite.registry import PARALLEL as MODULES  # what a template may launch

PROG = "hpcsuite.slurm"

#: Exit status of a module that checkpointed and wants the job requeued (EX_TEMPFAIL).
REQUEUE_EXIT = 75
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


def mpi_library() -> str:
    """The version text of the MPI library mpi4py is built on; "" without mpi4py or libmpi.

    Asked without initializing MPI (this process is not an MPI rank).
    """
    try:
        # Lazy, and guarded: a launcher without a loadable libmpi still runs srun.
        from hpcsuite.core import mpi  # importing it starts no MPI

        return mpi.MPI.Get_library_version()  # allowed before MPI_Init
    except Exception:  # noqa: BLE001 - no mpi4py or no libmpi: srun works with the default plugin
        return ""


def mpi_family(text: str | None = None) -> str:
    """``"openmpi"``, ``"intel"``, ``"mpich"`` (MPICH, MVAPICH, Cray MPICH) or ``"unknown"``."""
    text = mpi_library() if text is None else text
    if "Open MPI" in text:
        return "openmpi"
    if "Intel(R) MPI" in text:
        return "intel"
    if any(name in text for name in ("MPICH", "MVAPICH")):
        return "mpich"
    return "unknown"


def srun_mpi(family: str, site: str | None, *, pmix_capable: bool = False) -> str | None:
    """The ``--mpi`` plugin srun needs for this library: None keeps the site's default. Pure.

    Slurm's MPI guide decides it: a library must speak the PMI that srun serves. The
    site's default (``MpiDefault``, or ``SLURM_MPI_TYPE``) is kept when it does, since
    sites choose it to match their MPI builds (``cray_shasta``, a PMIx version...).

    Parameters
    ----------
    family : {"mpich", "intel", "openmpi", "unknown"}
        See :func:`mpi_family`.
    site : str or None
        The site's default plugin; None when unknown.
    pmix_capable : bool
        Whether an MPICH was configured with PMIx (its version text names ``pmix``);
        the PyPI wheel is not, and speaks PMI-1 and PMI-2 only.

    Returns
    -------
    str or None
        A plugin name, None for the site's default, or ``"mpirun"``: Open MPI where
        the site's default is not PMIx (Open MPI 5 dropped PMI-2, and ``srun --mpi=list``
        names a pmix plugin even where its libpmix is missing), whose own ``mpirun``
        starts the ranks inside the allocation through Slurm instead.
    """
    site = site or None
    if family == "openmpi":
        return None if site and site.startswith("pmix") else "mpirun"
    if (
        family == "intel"
    ):  # Intel MPI under srun: PMI-2 with Slurm's libpmi2 (Intel's and Slurm's guides)
        return None if site == "pmi2" else "pmi2"
    if family == "mpich":
        if (
            site == "pmi2"
            or site == "cray_shasta"
            or (site and site.startswith("pmix") and pmix_capable)
        ):
            return None
        return "pmi2"  # "none" would start N singletons of size 1
    return None


def command(
    module: str,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    python: str,
    family: str,
    srun: bool,
    site_mpi: str | None = None,
    pmix_capable: bool = False,
) -> list[str]:
    """The parallel launch command for ``python -m hpcsuite.MODULE ARGS`` in this job. Pure.

    Parameters
    ----------
    module, args
        What to run.
    env : mapping
        The job's environment (``SLURM_*``, ``HPCSUITE_*``).
    python : str
        Interpreter every rank runs.
    family : {"mpich", "intel", "openmpi", "unknown"}
        MPI library family, for srun's PMI plugin.
    srun : bool
        Whether ``srun`` is available.
    site_mpi, pmix_capable
        The site's default ``--mpi`` and whether MPICH speaks PMIx, see :func:`srun_mpi`.
    """
    cli.refuse_control(module, "module")
    cli.refuse_control_in(list(args), "module option")
    for name in (
        "HPCSUITE_LAUNCHER",
        "HPCSUITE_SRUN_MPI",
        "HPCSUITE_RESULTS",
        "HPCSUITE_GPU_BIND",
        "SLURM_SUBMIT_DIR",
        "SLURM_JOB_NAME",
        "SLURM_JOB_ID",
        "SLURM_NTASKS",
        "SLURM_NPROCS",
        "SLURM_CPUS_PER_TASK",
    ):
        cli.refuse_control(env.get(name, ""), name)  # these become arguments and paths
    if module not in MODULES:
        raise UsageError(f"unknown module {module!r}; choose one of {', '.join(MODULES)}")
    launcher = env.get("HPCSUITE_LAUNCHER") or (
        "srun" if srun and env.get("SLURM_JOB_ID") else "mpirun"
    )
    if launcher not in ("srun", "mpirun"):
        raise UsageError(f"HPCSUITE_LAUNCHER={launcher!r}; set it to srun or mpirun")
    plugin = env.get("HPCSUITE_SRUN_MPI") or srun_mpi(
        family, env.get("SLURM_MPI_TYPE") or site_mpi, pmix_capable=pmix_capable
    )
    if launcher == "srun" and plugin == "mpirun" and not env.get("HPCSUITE_LAUNCHER"):
        launcher = "mpirun"
    if launcher == "srun":
        cmd = ["srun"] + ([f"--mpi={plugin}"] if plugin and plugin != "mpirun" else [])
        cpus = env.get("SLURM_CPUS_PER_TASK", "")
        if cpus.isdigit():
            cmd.append(f"--cpus-per-task={cpus}")
    else:
        ntasks = env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS") or "1"
        cmd = ["mpirun", "-n", ntasks]
    bind = env.get("HPCSUITE_GPU_BIND") or (
        "local-rank" if gpus_per_node(env) and not env.get("SLURM_GPUS_PER_TASK") else "none"
    )
    if bind not in ("local-rank", "none"):
        raise UsageError(f"HPCSUITE_GPU_BIND={bind!r}; set it to local-rank or none")
    if bind == "local-rank":
        cmd += ["sh", "-c", LOCAL_RANK_GPU, "hpcsuite-gpu"]
    cmd += [python, "-m", f"hpcsuite.{module}", *args]
    if not any(a == "--json" or a.startswith("--json=") for a in args):
        folder = env.get("HPCSUITE_RESULTS") or os.path.join(
            env.get("SLURM_SUBMIT_DIR", "."), "results"
        )
        name = f"{env.get('SLURM_JOB_NAME', 'hpcsuite')}-{env.get('SLURM_JOB_ID', 'local')}.jsonl"
        cmd += ["--json", os.path.join(folder, name)]
    return cmd


def gpus_per_node(env: Mapping[str, str]) -> bool:
    """Whether the job holds GPUs per node (not per task): ``--gpus-per-node``, ``--gres=gpu``,
    ``--gpus``."""
    gres = env.get("SLURM_JOB_GRES", "") or env.get("SLURM_GRES", "")
    return bool(
        env.get("SLURM_GPUS_PER_NODE")
        or env.get("SLURM_GPUS")
        or env.get("SLURM_GPUS_ON_NODE")
        or "gpu" in gres
    )


#: Each rank keeps the one GPU of its local rank (modulo the GPUs the node gives the job):
#: its entry of the job's CUDA_VISIBLE_DEVICES, or that index when none is set. A fixed
#: script; the command arrives as "$@", never parsed by the shell.
LOCAL_RANK_GPU = (
    "l=${SLURM_LOCALID:-${OMPI_COMM_WORLD_LOCAL_RANK:-${MPI_LOCALRANKID:-${PMI_LOCAL_RANK:-0}}}}; "
    "v=${CUDA_VISIBLE_DEVICES:-}; "
    'if [ -n "$v" ]; then n=$(printf "%s\\n" "$v" | tr , "\\n" | wc -l); '
    'v=$(printf %s "$v" | cut -d, -f$((l % n + 1))); else v=$l; fi; '
    'export CUDA_VISIBLE_DEVICES="$v"; exec "$@"'
)


def pmi2_library(srun_path: str | None) -> str | None:
    """Slurm's ``libpmi2.so`` (for Intel MPI's ``I_MPI_PMI_LIBRARY``), or None when not found."""
    dirs = []
    if srun_path:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(srun_path)))
        dirs += [
            os.path.join(prefix, "lib64"),
            os.path.join(prefix, "lib"),
            os.path.join(prefix, "lib", "x86_64-linux-gnu"),
            os.path.join(prefix, "lib", "aarch64-linux-gnu"),
        ]
    dirs += [
        "/usr/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/opt/slurm/lib64",
        "/opt/slurm/lib",
    ]
    for d in dirs:
        for name in ("libpmi2.so", "libpmi2.so.0"):
            path = os.path.join(d, name)
            if os.path.exists(path):
                return path
    return None


def job_field(env: Mapping[str, str], name: str) -> str | None:
    """A field of ``scontrol show job -o $SLURM_JOB_ID`` (e.g. ``Requeue``); None if unsaid."""
    try:
        proc = subprocess.run(
            ["scontrol", "show", "job", "-o", env["SLURM_JOB_ID"]],
            capture_output=True,
            text=True,
            timeout=20,
            env=dict(env),
        )
    except (OSError, subprocess.SubprocessError, KeyError):
        return None
    return next((f.split("=", 1)[1] for f in proc.stdout.split() if f.startswith(name + "=")), None)


def site_mpi(env: Mapping[str, str]) -> str | None:
    """The site's default ``--mpi`` (``MpiDefault`` of ``scontrol show config``); None if unsaid."""
    try:
        proc = subprocess.run(
            ["scontrol", "show", "config"],
            capture_output=True,
            text=True,
            timeout=20,
            env=dict(env),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in proc.stdout.splitlines() if proc.returncode == 0 else ():
        key, _, value = line.partition("=")
        if key.strip() == "MpiDefault":
            return value.strip() or None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Build the launch command and replace this process with it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(
            __doc__.strip().split("\n\n")[0]
            + f"\n\nusage: python -m hpcsuite.slurm MODULE [options]\nmodules: {', '.join(MODULES)}"
        )
        return 0 if argv else 2
    module, args = argv[0], argv[1:]
    # Forward signals from now on, before the child exists: one that came earlier would
    # take its default action - USR1 and TERM end this process, the batch shell, and with
    # it the job - or, once handlers were set, find no child and be lost. It is kept and
    # sent as soon as the child runs.
    child: subprocess.Popen | None = None
    early: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if child is None:
            early.append(signum)
        else:
            child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    env = dict(os.environ)
    srun = shutil.which("srun", path=env.get("PATH"))
    library = mpi_library()
    family = mpi_family(library)
    in_job = srun is not None and bool(env.get("SLURM_JOB_ID"))
    site = site_mpi(env) if in_job and not env.get("HPCSUITE_SRUN_MPI") else None
    cmd = command(
        module,
        args,
        env,
        python=sys.executable,
        family=family,
        srun=srun is not None,
        site_mpi=site,
        pmix_capable="pmix" in library.lower(),
    )
    if family == "intel" and cmd[0] == "srun" and "I_MPI_PMI_LIBRARY" not in env:
        found = pmi2_library(srun)
        if found:  # Intel MPI under srun loads Slurm's PMI-2 client from here
            env["I_MPI_PMI_LIBRARY"] = found
            print(f"{PROG}: Intel MPI under srun: I_MPI_PMI_LIBRARY={found}", flush=True)
    if shutil.which(cmd[0], path=env.get("PATH")) is None:
        raise UsageError(
            f"{cmd[0]} is not on PATH ({env.get('PATH', '')!r}): load your MPI module "
            "(module load ...), or pip install 'hpcsuite[mpich]' into this environment"
        )
    if "--json" in cmd:
        folder = os.path.dirname(cmd[cmd.index("--json") + 1]) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the results folder {folder!r}: {exc.strerror or exc}; "
                "set HPCSUITE_RESULTS to a writable folder"
            ) from None
    env.setdefault("OMP_NUM_THREADS", env.get("SLURM_CPUS_PER_TASK", "1"))
    if env.get("SLURM_JOB_ID"):
        requeue = job_field(env, "Requeue")
        if requeue in (
            "0",
            "1",
        ):  # a trainer stopped by SIGUSR1 writes a partial record where it is 0
            env["HPCSUITE_REQUEUE"] = requeue
    print(
        f"{PROG}: job {env.get('SLURM_JOB_ID', '-')} on {env.get('SLURM_JOB_NODELIST', '-')}, "
        f"{env.get('SLURM_NTASKS', '?')} tasks: {' '.join(cmd)}",
        flush=True,
    )
    child = subprocess.Popen(cmd, env=env)
    for signum in early:
        child.send_signal(signum)
    code = child.wait()
    # The child has ended: nothing left to warn. A late USR1 or USR2 (Slurm sends USR1 at a
    # fixed time before the limit, which may fall just after the run ended) must not end
    # this process, the batch shell, by its default action - restored when Python shuts
    # down - and fail a job that finished.
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    if code == REQUEUE_EXIT and env.get("SLURM_JOB_ID"):
        print(
            f"{PROG}: the module checkpointed and asked for more time: requeueing job "
            f"{env['SLURM_JOB_ID']}",
            flush=True,
        )
        try:
            proc = subprocess.run(
                ["scontrol", "requeue", env["SLURM_JOB_ID"]],
                capture_output=True,
                text=True,
                timeout=60,
            )
            why = proc.stderr.strip() if proc.returncode else ""
        except (OSError, subprocess.SubprocessError) as exc:
            why = str(exc)
        if why:  # --no-requeue, or the controller did not answer: the run is unfinished, say so
            print(
                f"{PROG}: cannot requeue job {env['SLURM_JOB_ID']} ({why}); the run stopped at its "
                "checkpoint unfinished: resubmit with --requeue, or run it again to resume",
                flush=True,
            )
            return REQUEUE_EXIT
        return 0
    return code


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
