"""Result records: one JSON object per line, appended atomically by rank 0.

A record says what ran (kernel, parameters, command line, version, git revision),
where (hosts, ranks, nodes, device, MPI library: the environment fingerprint the
report groups by), and what came out (times with units, the figure of merit with
its unit, the result and the check). Appending is one ``write`` of a whole line to
a file opened ``O_APPEND``, so concurrent jobs writing one file never interleave.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import hpcsuite

SCHEMA = "hpcsuite.record/1"


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the source tree hpcsuite runs from, if any."""
    here = Path(hpcsuite.__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def fingerprint(*, hosts: Sequence[str], mpi_library: str, device: str, device_name: str,
                gpu_aware: bool | None = None) -> dict[str, Any]:
    """The environment a result belongs to; reports never merge different fingerprints."""
    import numpy

    return {
        "hosts": sorted(set(hosts)),
        "nodes": len(set(hosts)),
        "machine": platform.machine(),
        "mpi_library": mpi_library,
        "device": device,
        "device_name": device_name,
        "gpu_aware_mpi": gpu_aware,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "hpcsuite": hpcsuite.__version__,
        "git": git_revision(),
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


def make(kernel: str, *, params: dict[str, Any], ranks: int, env: dict[str, Any],
         times: dict[str, Any], fom: dict[str, Any] | None, result: Any = None,
         check: dict[str, Any] | None = None, argv: Sequence[str] | None = None) -> dict[str, Any]:
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
        Command line (default ``sys.argv``).
    """
    return _jsonable({
        "schema": SCHEMA,
        "kernel": kernel,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": params,
        "ranks": ranks,
        "nodes": env.get("nodes", 1),
        "device": env.get("device"),
        "times": times,
        "fom": fom,
        "result": result,
        "check": check,
        "env": env,
        "argv": list(argv if argv is not None else sys.argv),
        "version": hpcsuite.__version__,
    })


def append(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append ``record`` as one line with a single ``write`` to an ``O_APPEND`` file."""
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):
        raise OSError(f"short write to {str(path)!r}: {written} of {len(line)} bytes")


def read(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield ``(line_number, record, None)`` or ``(line_number, None, problem)`` per line."""
    with open(path, encoding="utf-8") as f:
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
