"""The points of a sweep and the batch script of each. Pure."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.registry import PARALLEL as MODULES
from hpcsuite.registry import SHAPED

PROG = "hpcsuite.sweep"


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
