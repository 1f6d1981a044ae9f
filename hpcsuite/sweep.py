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
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hpcsuite.core import cli, records
from hpcsuite.core.errors import UsageError
from hpcsuite.registry import PARALLEL as MODULES
from hpcsuite.registry import SHAPED
from hpcsuite.report import render, series

PROG = "hpcsuite.sweep"
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


@dataclass(frozen=True)
class Point:
    """One run of the series."""

    name: str
    ranks: int
    nodes: int
    repeat: int
    args: tuple[str, ...]


def plan(
    module: str,
    ranks: Sequence[int],
    args: Sequence[str],
    *,
    repeat: int = 1,
    weak_shape: tuple[int, ...] | None = None,
    ranks_per_node: int | None = None,
) -> list[Point]:
    """The points of a sweep. Pure.

    Raises
    ------
    UsageError
        For an unknown module, bad rank counts, or weak scaling of a module without ``--shape``.
    """
    if module not in MODULES:
        raise UsageError(f"unknown module {module!r}; choose one of {', '.join(MODULES)}")
    if not ranks or any(r < 1 for r in ranks):
        raise UsageError(
            f"--ranks {','.join(map(str, ranks))!r}: give positive rank counts, e.g. 1,2,4"
        )
    if weak_shape is not None and module not in SHAPED:
        raise UsageError(
            f"--weak-shape needs a module with --shape ({', '.join(SHAPED)}), not {module!r}"
        )
    if weak_shape is not None and any(a == "--shape" or a.startswith("--shape=") for a in args):
        raise UsageError("give the per-rank shape with --weak-shape only, not also --shape")
    points = []
    for r in sorted(set(ranks)):
        extra: tuple[str, ...] = ()
        if weak_shape is not None:
            extra = ("--shape", "x".join(map(str, (weak_shape[0] * r, *weak_shape[1:]))))
        nodes = math.ceil(r / ranks_per_node) if ranks_per_node else 1
        for k in range(repeat):
            points.append(Point(f"{module}-n{r}-r{k}", r, nodes, k, (*args, *extra)))
    return points


def job_script(
    point: Point,
    module: str,
    out: Path,
    *,
    python: str,
    ranks_per_node: int | None,
    time_limit: str,
    exclusive: bool = True,
    serial_name: str | None = None,
    gpus_per_task: int | None = None,
    cpus_per_task: int | None = None,
) -> str:
    """The batch script of one point. Every value is shell-quoted. Pure.

    ``exclusive`` keeps other jobs off the point's nodes (timings of a scaling series
    mean nothing on shared nodes); ``serial_name`` gives every point that one job name
    with ``--dependency=singleton``, so Slurm runs them one at a time;
    ``gpus_per_task`` and ``cpus_per_task`` become those ``#SBATCH`` requests.
    """
    # Quoting protects the exec line, but no quoting protects a #SBATCH line from a
    # newline: every value is refused if it holds a control character.
    for value, what in (
        (time_limit, "--time"),
        (serial_name or "", "--one-at-a-time name"),
        (python, "python"),
        (str(out), "--out"),
        (module, "module"),
        (point.name, "point"),
    ):
        cli.refuse_control(value, what)
    cli.refuse_control_in(point.args, "option after --")
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={q(serial_name or point.name)}",
        f"#SBATCH --ntasks={point.ranks}",
        f"#SBATCH --nodes={point.nodes}",
        f"#SBATCH --time={q(time_limit)}",
        f"#SBATCH --output={q(str(out / 'logs' / (point.name + '.log')))}",
    ]
    if exclusive:
        lines.append("#SBATCH --exclusive")
    if serial_name:
        lines.append("#SBATCH --dependency=singleton")
    if ranks_per_node:
        lines.append(f"#SBATCH --ntasks-per-node={min(ranks_per_node, point.ranks)}")
    if gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={int(gpus_per_task)}")
    if cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={int(cpus_per_task)}")
    record = out / "records" / f"{point.name}.jsonl"
    cmd = [python, "-m", "hpcsuite.slurm", module, *point.args, "--json", str(record)]
    lines += ["set -euo pipefail", "exec " + " ".join(q(c) for c in cmd), ""]
    return "\n".join(lines)


def _good(rec: Any) -> bool:
    """A valid record whose ``--check`` (if any) passed: a wrong result is no point of a series."""
    if not isinstance(rec, dict):
        return False
    check = rec.get("check")
    return check is None or (isinstance(check, dict) and check.get("passed") is True)


def _records(out: Path, point: Point) -> list[dict[str, Any]]:
    path = out / "records" / f"{point.name}.jsonl"
    if not path.exists():
        return []
    return [rec for _, rec, _ in records.read(path) if _good(rec)]


def done(out: Path, point: Point) -> bool:
    """Whether the point left at least one valid record whose check, if it ran one, passed.

    A run whose ``--check`` failed still appends its record (exit 3); resuming must run
    that point again, not count it as done.
    """
    return bool(_records(out, point))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"


class Progress:
    """One status line, rewritten in place on a terminal, printed on change elsewhere."""

    def __init__(self, total: int) -> None:
        self.total, self.last = total, ""
        self.tty = sys.stderr.isatty()

    def show(self, counts: dict[str, int]) -> None:
        text = (
            f"{PROG}: {counts.get('pending', 0)} pending, {counts.get('running', 0)} running, "
            f"{counts.get('done', 0)} done, {counts.get('failed', 0)} failed of {self.total}"
        )
        if text != self.last:
            sys.stderr.write(("\r" + text) if self.tty else text + "\n")
            sys.stderr.flush()
            self.last = text

    def close(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\n")


def run_local(
    points: list[Point],
    module: str,
    out: Path,
    *,
    python: str,
    timeout: float,
    progress: Progress,
    status: dict[str, str],
) -> None:
    """Run points one after another with this environment's mpiexec."""
    mpiexec = shutil.which("mpiexec", path=str(Path(python).parent)) or shutil.which("mpiexec")
    if mpiexec is None:
        raise UsageError("--launcher local needs mpiexec on PATH (pip install 'hpcsuite[mpich]')")
    for p in points:
        status[p.name] = "running"
        progress.show(_counts(status))
        record = out / "records" / f"{p.name}.jsonl"
        cmd = [
            mpiexec,
            "-n",
            str(p.ranks),
            python,
            "-m",
            f"hpcsuite.{module}",
            *p.args,
            "--json",
            str(record),
        ]
        with open(out / "logs" / f"{p.name}.log", "w") as log:
            log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
            log.flush()
            try:
                code = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
                ).returncode
            except subprocess.TimeoutExpired:
                log.write(f"\n{PROG}: killed after {timeout:g} s (--timeout)\n")
                code = -1
        status[p.name] = "done" if code == 0 and done(out, p) else "failed"
        progress.show(_counts(status))


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
        _write_atomic(
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
        progress.show(_counts(status))
        if pending:
            interval = POLL_FIRST if status != before else min(POLL_MOST, interval * 1.5)
            sleep(interval)


def _counts(status: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    return counts


def collect(out: Path, points: list[Point]) -> list[dict[str, Any]]:
    """Every valid record of the finished points, written to ``out/results.jsonl`` atomically."""
    recs = []
    for p in points:
        recs += _records(out, p)
    _write_atomic(
        out / "results.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)
    )
    return recs


def _write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file renamed over it, removed on failure."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: A plan file larger than this is not one of ours (it holds points and job ids only).
MAX_STATE_BYTES = 64 << 20


def load_state(path: Path) -> dict[str, Any]:
    """The saved state of a sweep in ``path`` (``sweep.json``), checked; {} when there is none.

    Raises
    ------
    UsageError
        When the file is not a regular file, too large, not JSON, or not a sweep's state.
    """
    if not path.exists() and not path.is_symlink():
        return {}
    if not path.is_file():  # a FIFO would block, /dev/zero never ends: read regular files only
        raise UsageError(f"{path} is not a regular file; remove it or use another --out")
    if path.stat().st_size > MAX_STATE_BYTES:
        raise UsageError(
            f"{path} is too large to be a sweep's plan; remove it or use another --out"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path} is corrupt ({exc}); remove it to start the sweep over, or use another --out"
        ) from None
    jobs = state.get("jobs", {}) if isinstance(state, dict) else None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("plan"), dict)
        or not isinstance(jobs, dict)
        or not all(isinstance(v, str) for v in jobs.values())
    ):
        raise UsageError(
            f"{path} is not a sweep's plan (no plan or job ids); remove it to start "
            "the sweep over, or use another --out"
        )
    return state


def _serial_name(args: Any, out: Path) -> str | None:
    return f"hpcsuite-sweep-{out.name}" if args.one_at_a_time else None


def _counts_list(text: str, option: str, what: str) -> list[int]:
    try:
        return [int(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: give {what} separated by commas, e.g. 1,2,4"
        ) from None


def _ranks(args: Any) -> list[int]:
    """The rank counts of the sweep, from ``--ranks``, or ``--nodes`` times ``--ranks-per-node``."""
    if (args.ranks is None) == (args.nodes is None):
        raise UsageError(
            "give --ranks (rank counts) or --nodes (node counts, with --ranks-per-node), one of"
            " them"
        )
    if (args.gpus_per_task or args.cpus_per_task) and args.launcher != "slurm":
        raise UsageError(
            "--gpus-per-task and --cpus-per-task are Slurm requests: add --launcher slurm"
        )
    if args.ranks is not None:
        return _counts_list(args.ranks, "--ranks", "rank counts")
    if args.launcher != "slurm" or not args.ranks_per_node:
        raise UsageError(
            "--nodes needs --launcher slurm and --ranks-per-node (ranks = nodes x ranks per node)"
        )
    nodes = _counts_list(args.nodes, "--nodes", "node counts")
    if not nodes or any(n < 1 for n in nodes):
        raise UsageError(f"--nodes {args.nodes!r}: give positive node counts, e.g. 1,2,4")
    return [n * args.ranks_per_node for n in nodes]


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(
        prog=f"python -m {PROG}",
        description=(
            "Run a strong or weak scaling series of a module locally (mpiexec) or on "
            "Slurm (one job per point), resumably, and collect its records."
        ),
        epilog=(
            "options after -- go to the module. example: python -m hpcsuite.sweep mean "
            "--ranks 1,2,4,8 --repeat 3 --launcher slurm -- --shape 20000x10000 --repeat 5"
        ),
    )
    p.add_argument("module", help=f"module to run: {', '.join(MODULES)}")
    p.add_argument("--ranks", help="rank counts, e.g. 1,2,4,8")
    p.add_argument(
        "--nodes", help="Slurm: node counts instead of --ranks, e.g. 1,2,4 (with --ranks-per-node)"
    )
    p.add_argument(
        "--repeat", type=cli.positive_int, default=1, help="runs per rank count [%(default)s]"
    )
    p.add_argument(
        "--weak-shape",
        type=cli.shape,
        metavar="SHAPE",
        help="weak scaling: the shape per rank; rows grow with the rank count",
    )
    p.add_argument("--launcher", choices=("local", "slurm"), default="local", help="[%(default)s]")
    p.add_argument(
        "--ranks-per-node", type=cli.positive_int, help="Slurm: tasks per node (sets --nodes)"
    )
    p.add_argument("--time", default="00:15:00", help="Slurm: time limit per job [%(default)s]")
    p.add_argument(
        "--shared",
        action="store_true",
        help="Slurm: let other jobs share the nodes (default: --exclusive)",
    )
    p.add_argument(
        "--one-at-a-time",
        action="store_true",
        help=(
            "Slurm: run the points one after another (--dependency=singleton), "
            "for nodes that share hardware"
        ),
    )
    p.add_argument(
        "--gpus-per-task",
        type=cli.positive_int,
        metavar="N",
        help=(
            "Slurm: GPUs for every rank (--gpus-per-task; give the module its GPU option after --)"
        ),
    )
    p.add_argument(
        "--cpus-per-task",
        type=cli.positive_int,
        metavar="N",
        help="Slurm: CPU cores for every rank",
    )
    p.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra sbatch option, e.g. --sbatch-arg=--partition=debug (repeatable)",
    )
    p.add_argument(
        "--timeout", type=float, default=600, help="local: seconds per point [%(default)s]"
    )
    p.add_argument(
        "--out", default="sweep", help="folder for the plan, logs and records [%(default)s]"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the job scripts or commands; run nothing"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.sweep``; return the exit status."""
    ours, theirs = cli.split_passthrough(argv)  # after "--": the module's options
    args = parser().parse_args(ours)
    cli.refuse_control_args(args, theirs)  # values end up in job scripts and logs
    args.module_args = theirs
    ranks = _ranks(args)
    points = plan(
        args.module,
        ranks,
        args.module_args,
        repeat=args.repeat,
        weak_shape=args.weak_shape,
        ranks_per_node=args.ranks_per_node,
    )
    out = Path(args.out).resolve()
    python = sys.executable
    if args.dry_run:
        for p in points:
            if args.launcher == "slurm":
                print(f"# {out / 'jobs' / (p.name + '.sbatch')}")
                print(
                    job_script(
                        p,
                        args.module,
                        out,
                        python=python,
                        ranks_per_node=args.ranks_per_node,
                        time_limit=args.time,
                        exclusive=not args.shared,
                        serial_name=_serial_name(args, out),
                        gpus_per_task=args.gpus_per_task,
                        cpus_per_task=args.cpus_per_task,
                    )
                )
            else:
                print(
                    " ".join(
                        shlex.quote(c)
                        for c in [
                            "mpiexec",
                            "-n",
                            str(p.ranks),
                            python,
                            "-m",
                            f"hpcsuite.{args.module}",
                            *p.args,
                            "--json",
                            str(out / "records" / f"{p.name}.jsonl"),
                        ]
                    )
                )
        return 0

    try:
        return _run(args, points, out, python)
    except OSError as exc:  # a full disk, a read-only folder: one line, the files left whole
        where = f" ({exc.filename})" if exc.filename else ""
        raise UsageError(
            f"cannot write the sweep in --out {out}{where}: {exc.strerror or exc}"
        ) from None


def _run(args: Any, points: list[Point], out: Path, python: str) -> int:
    """Run (or resume) the sweep in ``out``; the part of :func:`main` that writes files."""
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"--out {out} is a file; give a folder (it holds the plan, logs and records)"
        )
    state_path = out / "sweep.json"
    state = load_state(state_path)
    plan_doc = {"module": args.module, "points": [asdict(p) for p in points]}
    if state and state.get("plan") != json.loads(json.dumps(plan_doc)):
        raise UsageError(f"{out} holds a different sweep; use another --out or remove it")
    for sub in ("records", "logs", "jobs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    state["plan"] = plan_doc

    def save() -> None:
        _write_atomic(state_path, json.dumps(state, indent=1, sort_keys=True))

    save()
    status = {p.name: "done" if done(out, p) else "pending" for p in points}
    todo = [p for p in points if status[p.name] != "done"]
    if len(todo) < len(points):
        print(
            f"{PROG}: resuming: {len(points) - len(todo)} of {len(points)} points already done",
            file=sys.stderr,
        )
    progress = Progress(len(points))
    try:
        if args.launcher == "local":
            run_local(
                todo,
                args.module,
                out,
                python=python,
                timeout=args.timeout,
                progress=progress,
                status=status,
            )
        else:
            run_slurm(
                todo,
                args.module,
                out,
                state,
                python=python,
                ranks_per_node=args.ranks_per_node,
                time_limit=args.time,
                sbatch_args=args.sbatch_arg,
                progress=progress,
                status=status,
                save=save,
                exclusive=not args.shared,
                serial_name=_serial_name(args, out),
                gpus_per_task=args.gpus_per_task,
                cpus_per_task=args.cpus_per_task,
            )
    except KeyboardInterrupt:
        progress.close()
        print(
            f"{PROG}: interrupted; queued jobs keep running. Run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    progress.close()
    save()
    recs = collect(out, points)
    failed = [p for p in points if status[p.name] == "failed"]
    for p in failed:
        print(
            f"{PROG}: point {p.name} ({p.ranks} ranks) failed; log"
            f" {out / 'logs' / (p.name + '.log')}:"
        )
        print(_tail(out / "logs" / f"{p.name}.log"))
    if recs:
        print(render.terminal(series.build(recs)))
    print(
        f"{PROG}: {len(points) - len(failed)} of {len(points)} points done; records in "
        f"{out / 'results.jsonl'}; plots: python -m hpcsuite.report {out / 'results.jsonl'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
