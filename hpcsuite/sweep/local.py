"""Running points on this machine (``mpiexec``), and the progress line of any launcher."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from hpcsuite.core.errors import UsageError
from hpcsuite.sweep.plan import PROG, Point
from hpcsuite.sweep.store import done


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


def counts(status: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    return counts


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
        progress.show(counts(status))
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
        progress.show(counts(status))
