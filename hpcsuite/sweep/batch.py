"""Running points on Slurm: one batch job each, submitted at once, polled until all end.

A state Slurm did not give (a controller that does not answer, a timeout) decides
nothing, so running points are never dropped for it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpcsuite.core.errors import UsageError
from hpcsuite.sweep.local import Progress, counts
from hpcsuite.sweep.plan import Point, job_script
from hpcsuite.sweep.store import done, write_atomic

#: Slurm states after which a job will not run again. SPECIAL_EXIT is held after a
#: special exit code until someone requeues it: for a sweep, that point failed (it runs
#: again on resume). PREEMPTED is left out: a requeueable job goes back to PENDING.
FINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
    "REVOKED",
}


#: Seconds between polls: the first, and the most when nothing changes (it backs off).
POLL_FIRST, POLL_MOST = 2.0, 15.0


#: What a state is when Slurm did not answer: decides nothing.
UNKNOWN = "UNKNOWN"


def _slurm(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess | None:
    """Run a Slurm client; None when it could not run or did not answer in time."""
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def _state_word(text: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETED+`` stays whole (no + in Slurm states)."""
    return text.split()[0].rstrip("+") if text.split() else UNKNOWN


def job_states(ids: Sequence[str]) -> dict[str, str]:
    """Slurm state of each job id.

    ``squeue`` for jobs in the queue; a job not in it has ended, and ``sacct`` (where
    accounting runs) or ``scontrol`` say how; ``GONE`` when neither knows it any more
    (purged: its record decides). :data:`UNKNOWN` wherever Slurm did not answer - a
    controller that is restarting, a timeout - so that nothing is decided on silence.
    """
    states: dict[str, str] = {}
    if not ids:
        return states
    proc = _slurm("squeue", "-h", "-o", "%i %T", "-j", ",".join(ids))
    if proc is None or (proc.returncode != 0 and "Invalid job id" not in proc.stderr):
        return {job: UNKNOWN for job in ids}  # the controller did not answer: decide nothing
    for line in proc.stdout.splitlines() if proc.returncode == 0 else ():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ids:
            states[parts[0]] = parts[1]
    left = [job for job in ids if job not in states]
    if left:
        acct = _slurm("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(left))
        if (
            acct is not None and acct.returncode == 0
        ):  # fails where accounting is off: then scontrol
            for line in acct.stdout.splitlines():
                job, _, state = line.partition("|")
                if job in left and state:
                    states[job] = _state_word(state)
    for job in left:
        if job in states:
            continue
        proc = _slurm("scontrol", "show", "job", "-o", job)
        if proc is None:
            states[job] = UNKNOWN
        elif proc.returncode == 0:
            state = next(
                (f.split("=", 1)[1] for f in proc.stdout.split() if f.startswith("JobState=")),
                UNKNOWN,
            )
            states[job] = state
        else:
            states[job] = "GONE" if "Invalid job id" in proc.stderr else UNKNOWN
    return states


def run_slurm(
    points: list[Point],
    module: str,
    out: Path,
    state: dict[str, Any],
    *,
    python: str,
    ranks_per_node: int | None,
    time_limit: str,
    sbatch_args: Sequence[str],
    progress: Progress,
    status: dict[str, str],
    save,
    exclusive: bool = True,
    serial_name: str | None = None,
    gpus_per_task: int | None = None,
    cpus_per_task: int | None = None,
    sleep=time.sleep,
) -> None:
    """Submit every point not already queued, then poll until all have ended.

    Polls every :data:`POLL_FIRST` seconds, backing off to :data:`POLL_MOST` while
    nothing changes; a state :data:`UNKNOWN` (Slurm did not answer) keeps the point's
    last status.
    """
    if shutil.which("sbatch") is None:
        raise UsageError(
            "--launcher slurm needs sbatch on PATH; use --launcher local on a machine without Slurm"
        )
    jobs: dict[str, str] = state.setdefault("jobs", {})
    live = job_states([jobs[p.name] for p in points if p.name in jobs])
    for p in points:
        # UNKNOWN (the controller did not answer) counts as queued: never submit twice
        queued = p.name in jobs and live.get(jobs[p.name]) not in FINAL | {"GONE", None}
        if queued:
            continue  # resumed: still pending or running from the last invocation
        script = out / "jobs" / f"{p.name}.sbatch"
        write_atomic(
            script,
            job_script(
                p,
                module,
                out,
                python=python,
                ranks_per_node=ranks_per_node,
                time_limit=time_limit,
                exclusive=exclusive,
                serial_name=serial_name,
                gpus_per_task=gpus_per_task,
                cpus_per_task=cpus_per_task,
            ),
        )
        proc = _slurm("sbatch", "--parsable", *sbatch_args, str(script), timeout=120)
        if proc is None:
            raise UsageError(
                f"sbatch did not answer in 120 s for {script}; the controller may be down. "
                "Run the same command again to resume"
            )
        if proc.returncode != 0:
            raise UsageError(f"sbatch refused {script}: {proc.stderr.strip()}")
        jobs[p.name] = proc.stdout.strip().split(";")[0]
        save()
    pending = {p.name: p for p in points}
    interval = POLL_FIRST
    while pending:
        states = job_states([jobs[n] for n in pending])
        before = dict(status)
        for name, p in list(pending.items()):
            s = states.get(jobs[name], UNKNOWN)
            if s == UNKNOWN:
                continue  # Slurm did not answer: keep what we knew
            if s in FINAL or s == "GONE":
                status[name] = "done" if s in ("COMPLETED", "GONE") and done(out, p) else "failed"
                del pending[name]
            else:
                status[name] = (
                    "pending"
                    if s in ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD")
                    else "running"
                )
        progress.show(counts(status))
        if pending:
            interval = POLL_FIRST if status != before else min(POLL_MOST, interval * 1.5)
            sleep(interval)
