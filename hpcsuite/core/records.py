"""Result records: one JSON object per line, appended whole or not at all by rank 0.

A record says what ran (kernel, parameters, command line, version, git revision),
where (hosts, ranks, nodes, ranks per node, device, MPI library and thread level:
the environment fingerprint the report groups by), what came out (times with
units, the figure of merit with its unit, the result and the check), and its
provenance: enough to join it with the scheduler (``sacct`` by job id) and the code
(git commit), and to tell two runs apart that differ only in tuning variables, BLAS
threads or library versions. The fields are specified in RECORD-SCHEMA (the
``hpcsuite.record/1`` schema; readers tolerate the absence of any newer key).

This module never imports mpi4py (it runs where MPI is not up, e.g. in the report):
the MPI library and thread level come in as parameters.

Appending takes an advisory lock, writes the whole line to a file opened
``O_APPEND`` and syncs it; when any of that fails (disk full, I/O error, quota) the
file is truncated back to what it was and :class:`~hpcsuite.core.errors.OutputError`
says so in one line. A file whose last line was cut short by an older crashed writer
gets a newline first, so that half line cannot swallow the new record.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import math
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy

import hpcsuite
from hpcsuite.core.errors import OutputError

SCHEMA = "hpcsuite.record/1"

#: Seconds all git commands together may take (a huge or network-mounted checkout
#: must not hold up a benchmark's exit).
GIT_TIMEOUT = 5.0

#: Prefixes of the environment variables that tune MPI and the network stack
#: (MPICH CVARs, Open MPI / PMIx MCA parameters, UCX, libfabric, Intel MPI, NCCL, Cray MPICH).
TUNING_PREFIXES = (
    "MPIR_CVAR_",
    "OMPI_MCA_",
    "PMIX_MCA_",
    "UCX_",
    "FI_",
    "I_MPI_",
    "NCCL_",
    "MPICH_",
)

#: Seconds :func:`append` waits for another writer's lock before writing without it.
LOCK_WAIT = 10.0


# ---------------------------------------------------------------------------------------
# provenance


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with ``Z`` (e.g. ``2026-12-01T16:20:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _checkout() -> Path | None:
    here = Path(hpcsuite.__file__).resolve().parent.parent
    return here if (here / ".git").exists() else None  # a file in a worktree, a folder otherwise


@functools.lru_cache(maxsize=1)
def git_info() -> dict[str, Any] | None:
    """``{"commit", "describe", "dirty"}`` of the checkout hpcsuite runs from, or None.

    None when hpcsuite is installed (no ``.git`` beside the package), git is missing,
    or git refuses (e.g. a checkout owned by another user). Asked once per process:
    the tree does not change under a running benchmark. Every value may be None when
    its command failed or ran out of :data:`GIT_TIMEOUT`.
    """
    here = _checkout()
    if here is None:
        return None
    # Here, not at the top: subprocess (with selectors, signal, threading) costs every
    # rank ~7 ms of start-up, and only a record from a checkout needs it.
    import subprocess

    # GIT_DIR and friends in the user's shell would point git at another repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    deadline = time.monotonic() + GIT_TIMEOUT

    def git(*args: str) -> str | None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            out = subprocess.run(
                ["git", "-C", str(here), *args],
                capture_output=True,
                text=True,
                timeout=left,
                check=False,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return (out.stdout.strip() or None) if out.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if commit is None:
        return None
    describe = git("describe", "--always", "--dirty", "--abbrev=12")
    dirty = describe.endswith("-dirty") if describe else None
    return {"commit": commit, "describe": describe, "dirty": dirty}


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the source tree hpcsuite runs from, if any."""
    info = git_info()
    return info["describe"] if info else None


def _int_or_text(text: str | None) -> int | str | None:
    if text is None or text == "":
        return None
    return int(text) if text.isdigit() else text


def slurm_job(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The Slurm job this process runs in, from its ``SLURM_*`` variables; None outside Slurm.

    ``cpus_per_task`` and ``ntasks`` are integers; ``ntasks_per_node`` is Slurm's text
    (``--ntasks-per-node``, else the layout it chose, e.g. ``"2(x2)"``).
    """
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job:
        return None

    def get(*names: str) -> str | None:
        return next((env[n] for n in names if env.get(n)), None)

    return {
        "job_id": job,
        "array_job_id": get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": get("SLURM_ARRAY_TASK_ID"),
        "partition": get("SLURM_JOB_PARTITION"),
        "account": get("SLURM_JOB_ACCOUNT"),
        "nodelist": get("SLURM_JOB_NODELIST", "SLURM_NODELIST"),
        "cpus_per_task": _int_or_text(get("SLURM_CPUS_PER_TASK")),
        "ntasks": _int_or_text(get("SLURM_NTASKS", "SLURM_NPROCS")),
        "ntasks_per_node": get("SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"),
        "job_name": get("SLURM_JOB_NAME"),
        "cluster": get("SLURM_CLUSTER_NAME"),
        "step_id": get("SLURM_STEP_ID", "SLURM_STEPID"),
        "restarts": _int_or_text(get("SLURM_RESTART_COUNT")),
    }


def node_cores() -> int | None:
    """CPUs this process and its launcher may run on: the cores ranks on this node share.

    The union of this process's affinity and its parent's (``mpiexec``'s proxy, ``srun``'s
    step daemon, a shell): a launcher that binds each rank to one core narrows the rank's
    own affinity, not its parent's; ``taskset`` on the launcher narrows both. None where
    the platform cannot say.
    """
    try:
        cpus = set(os.sched_getaffinity(0))
        try:
            cpus |= os.sched_getaffinity(os.getppid())
        except OSError:  # the parent is gone or not ours to ask
            pass
        return len(cpus)
    except (AttributeError, OSError):  # no affinity API here (macOS)
        return os.cpu_count()


def cpu_share() -> float | None:
    """CPU seconds this process used per second since it started (all its threads).

    About 1 for a busy rank on a core of its own, less where it shared the core: with
    more ranks than cores, or with other work on the node. None where ``/proc`` cannot
    say.
    """
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start = int(stat[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        alive = float(Path("/proc/uptime").read_text().split()[0]) - start
        used = os.times()
        return round((used.user + used.system) / alive, 3) if alive > 0 else None
    except (OSError, ValueError, IndexError):
        return None


def _thread_pools() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """BLAS and OpenMP libraries loaded in this process and their thread counts (threadpoolctl)."""
    try:
        import threadpoolctl  # lazy: a broken or missing install must not lose the record
    except ImportError:
        return [], []
    try:
        info = threadpoolctl.threadpool_info()
    except Exception:  # noqa: BLE001 - a library it cannot talk to must not lose the record
        return [], []
    keep = ("internal_api", "version", "num_threads", "threading_layer", "filepath")
    pools = [{k: lib.get(k) for k in keep} for lib in info]
    return (
        [p for p, lib in zip(pools, info) if lib.get("user_api") == "blas"],
        [p for p, lib in zip(pools, info) if lib.get("user_api") == "openmp"],
    )


def _packages() -> dict[str, str]:
    """Versions of the numeric stack; torch and CuPy only when this process already loaded them
    (importing them only to name their version would cost seconds)."""
    import platform  # as json and subprocess: only to write a record, not on every rank's start

    found = {"python": platform.python_version()}
    for name in ("numpy", "mpi4py", "torch", "cupy", "horovod"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        if version is not None:
            found[name] = str(version)
    return found


def provenance(
    *,
    argv: Sequence[str] | None = None,
    mpi_library: str | None = None,
    thread_level: str | None = None,
    environ: Mapping[str, str] | None = None,
    utc: str | None = None,
) -> dict[str, Any]:
    """Where a record comes from: command line, code, scheduler job, MPI, BLAS, threads.

    Cheap (a few file reads, two bounded git calls once per process); computed on the
    rank that writes the record, in its environment.

    Parameters
    ----------
    argv : sequence of str, optional
        The module's own command line (default ``sys.argv``).
    mpi_library, thread_level : str, optional
        From :func:`hpcsuite.core.mpi.library_version` and :func:`~hpcsuite.core.mpi.thread_level`.
    environ : mapping, optional
        The environment (default ``os.environ``).
    utc : str, optional
        The record's time (default now, see :func:`utc_now`).
    """
    env = os.environ if environ is None else environ
    blas, openmp = _thread_pools()
    return {
        "utc": utc or utc_now(),
        "argv": list(sys.argv if argv is None else argv),
        "hpcsuite": hpcsuite.__version__,
        "git": git_info(),
        "slurm": slurm_job(env),
        "mpi": {
            "library": mpi_library,
            "thread_level": thread_level,
            "tuning": {k: env[k] for k in sorted(env) if k.startswith(TUNING_PREFIXES)},
        },
        "blas": blas,
        "openmp": openmp,
        "threads": {k: env[k] for k in sorted(env) if k.endswith("_NUM_THREADS")},
        "packages": _packages(),
        "cores": node_cores(),
        "cpu_share": cpu_share(),
    }


_provenance = provenance  # make() has a parameter of that name


def _mpi_thread_level() -> str | None:
    """The thread level of an MPI already running in this process (None otherwise).

    Only looks: never imports mpi4py, never initializes MPI.
    """
    MPI = sys.modules.get("mpi4py.MPI")
    try:
        if MPI is None or not MPI.Is_initialized() or MPI.Is_finalized():
            return None
        names = {
            MPI.THREAD_SINGLE: "single",
            MPI.THREAD_FUNNELED: "funneled",
            MPI.THREAD_SERIALIZED: "serialized",
            MPI.THREAD_MULTIPLE: "multiple",
        }
        return names.get(MPI.Query_thread(), "unknown")
    except Exception:  # noqa: BLE001 - provenance is best effort
        return None


def fingerprint(
    *,
    hosts: Sequence[str],
    mpi_library: str,
    device: str,
    device_name: str,
    gpu_aware: bool | None = None,
    thread_level: str | None = None,
) -> dict[str, Any]:
    """The environment a result belongs to; reports never merge different fingerprints.

    Parameters
    ----------
    hosts : sequence of str
        Node name of every rank (:func:`hpcsuite.core.mpi.hosts`); ranks per node
        are counted from it.
    mpi_library : str
    device, device_name : str
    gpu_aware : bool, optional
    thread_level : str, optional
        MPI's thread support (``"multiple"``...); default: asked of an MPI already
        running in this process, else None.
    """
    import platform  # see _packages

    return {
        "hosts": sorted(set(hosts)),
        "nodes": len(set(hosts)),
        "ranks_per_node": max(Counter(hosts).values()) if hosts else None,
        "machine": platform.machine(),
        "mpi_library": mpi_library,
        "device": device,
        "device_name": device_name,
        "gpu_aware_mpi": gpu_aware,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "hpcsuite": hpcsuite.__version__,
        "git": git_revision(),
        "thread_level": thread_level if thread_level is not None else _mpi_thread_level(),
    }


def _jsonable(value: Any) -> Any:
    """Replace what JSON cannot hold (NaN, inf, NumPy scalars, tuples) by plain values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": strict JSON readers accept strings
    return value


def make(
    kernel: str,
    *,
    params: dict[str, Any],
    ranks: int,
    env: dict[str, Any],
    times: dict[str, Any],
    fom: dict[str, Any] | None,
    result: Any = None,
    check: dict[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    ranks_per_node: int | None = None,
    provenance: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Assemble one record.

    Parameters
    ----------
    kernel : str
        Module name, e.g. ``"mean"``.
    params : dict
        The kernel's parameters (shape, dtype, seed...).
    ranks : int
    env : dict
        From :func:`fingerprint`.
    times : dict
        Timings in ``times["unit"]``; ``times["samples"]`` holds the kernel's timed
        repetitions, which reports use for medians and confidence intervals.
    fom : dict or None
        Figure of merit: ``{"name", "value", "unit", "higher_is_better"}``.
    result, check : optional
        The computed answer (scalars or short lists) and the ``--check`` outcome.
    argv : sequence of str, optional
        The module's own command line (default ``sys.argv``).
    ranks_per_node : int, optional
        Most ranks on one node; default ``env["ranks_per_node"]``, else
        ``ceil(ranks / nodes)``.
    provenance : dict, optional
        Default :func:`provenance` of this process, with ``env``'s MPI library and
        thread level.
    environ : mapping, optional
        The environment the default provenance reads (default ``os.environ``).
    """
    argv = list(sys.argv if argv is None else argv)
    nodes = env.get("nodes", 1) or 1
    if ranks_per_node is None:
        ranks_per_node = env.get("ranks_per_node") or math.ceil(ranks / nodes)
    utc = provenance["utc"] if provenance and "utc" in provenance else utc_now()
    if provenance is None:
        provenance = _provenance(
            argv=argv,
            mpi_library=env.get("mpi_library"),
            thread_level=env.get("thread_level"),
            environ=environ,
            utc=utc,
        )
    return _jsonable(
        {
            "schema": SCHEMA,
            "kernel": kernel,
            "timestamp": utc,
            "params": params,
            "ranks": ranks,
            "nodes": nodes,
            "ranks_per_node": ranks_per_node,
            "device": env.get("device"),
            "times": times,
            "fom": fom,
            "result": result,
            "check": check,
            "env": env,
            "argv": argv,
            "version": hpcsuite.__version__,
            "provenance": provenance,
        }
    )


# ---------------------------------------------------------------------------------------
# writing and reading


def _lock(fd: int) -> bool:
    """Take an exclusive advisory lock on ``fd``, waiting at most :data:`LOCK_WAIT` seconds.

    Returns whether it holds the lock. A file system without locks (some parallel
    file systems) or a holder that never lets go only loses the truncate-back
    guarantee under concurrent writers, never the record.
    """
    end = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > end:
                return False
            time.sleep(0.005)
        except OSError:  # ENOLCK, EINVAL, ENOTSUP: no locks here
            return False


def _ends_mid_line(fd: int, size: int) -> bool:
    """Whether the last byte of a file of ``size`` bytes is not a newline."""
    if size == 0:
        return False
    try:
        return os.pread(fd, 1, size - 1) != b"\n"
    except OSError:
        return False


def append(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append ``record`` as one line to ``path``: the whole line, or the file as it was.

    Raises
    ------
    OutputError
        The line could not be written (disk full, I/O error, quota, permissions);
        the file is left byte for byte as it was.
    """
    import json  # here, not at the top: ~3 ms of every rank's start, for rank 0's record

    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    path = Path(path)
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            readable = True
        except PermissionError:  # a write-only file: append without looking at its end
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            readable = False
    except OSError as exc:
        raise OutputError(
            f"cannot write the record to {str(path)!r}: {exc.strerror or exc}"
        ) from None
    try:
        _append_line(fd, path, line, readable)
    finally:
        os.close(fd)  # also releases the lock


def _append_line(fd: int, path: Path, line: bytes, readable: bool) -> None:
    regular = stat.S_ISREG(os.fstat(fd).st_mode)  # /dev/full, a FIFO...: nothing to truncate
    locked = _lock(fd) if regular else False
    old = os.fstat(fd).st_size if regular else 0
    data = memoryview((b"\n" if regular and readable and _ends_mid_line(fd, old) else b"") + line)
    done = 0
    try:
        while done < len(data):
            n = os.write(fd, data[done:])
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += n
        if regular:
            try:
                os.fsync(fd)  # network file systems report a full disk at sync or close
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):
                    raise
    except BaseException as exc:
        restored = regular and _truncate_back(fd, old, old + done, locked)
        if not isinstance(exc, OSError):  # interrupted (Ctrl-C...): undone, then passed on
            raise
        state = (
            "the file is as it was"
            if restored or not done
            else "the file may end in a partial line"
        )
        raise OutputError(
            f"cannot write the record to {str(path)!r}: {exc.strerror or exc}; {state}"
        ) from None


def _truncate_back(fd: int, old: int, ours: int, locked: bool) -> bool:
    """Cut what this write left back off; True when the file is as it was."""
    try:
        size = os.fstat(fd).st_size
        if size == old:
            return True
        # Without the lock another writer may have appended after our partial bytes:
        # cutting then would lose its record, so only cut what is certainly ours.
        if not locked and size != ours:
            return False
        os.ftruncate(fd, old)
        return True
    except OSError:
        return False


def read(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield ``(line_number, record, None)`` or ``(line_number, None, problem)`` per line."""
    import json  # see append()

    # errors="replace": a line of binary garbage (a crashed writer, a disk fault) is one
    # bad line, not an exception that hides every good record of the file.
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, f"not JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(record, dict) or record.get("schema") != SCHEMA:
                yield number, None, f"not an {SCHEMA} record"
                continue
            yield number, record, None
