"""The command line of ``python -m hpcsuite.sweep``: plan, run or resume, collect, report."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.registry import PARALLEL as MODULES
from hpcsuite.report import render, series
from hpcsuite.sweep.batch import run_slurm
from hpcsuite.sweep.local import Progress, run_local
from hpcsuite.sweep.plan import PROG, Point, job_script, plan
from hpcsuite.sweep.store import collect, done, load_state, tail, write_atomic


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
        write_atomic(state_path, json.dumps(state, indent=1, sort_keys=True))

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
        print(tail(out / "logs" / f"{p.name}.log"))
    if recs:
        print(render.terminal(series.build(recs)))
    print(
        f"{PROG}: {len(points) - len(failed)} of {len(points)} points done; records in "
        f"{out / 'results.jsonl'}; plots: python -m hpcsuite.report {out / 'results.jsonl'}"
    )
    return 1 if failed else 0
