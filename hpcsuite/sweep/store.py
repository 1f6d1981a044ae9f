"""The sweep's ``--out`` folder: its plan file, each point's records and log, the results.

Every file is written whole or not at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hpcsuite.core import records
from hpcsuite.core.errors import UsageError
from hpcsuite.sweep.plan import Point


def _good(rec: Any) -> bool:
    """A valid record whose ``--check`` (if any) passed: a wrong result is no point of a series."""
    if not isinstance(rec, dict):
        return False
    check = rec.get("check")
    return check is None or (isinstance(check, dict) and check.get("passed") is True)


def records_of(out: Path, point: Point) -> list[dict[str, Any]]:
    path = out / "records" / f"{point.name}.jsonl"
    if not path.exists():
        return []
    return [rec for _, rec, _ in records.read(path) if _good(rec)]


def done(out: Path, point: Point) -> bool:
    """Whether the point left at least one valid record whose check, if it ran one, passed.

    A run whose ``--check`` failed still appends its record (exit 3); resuming must run
    that point again, not count it as done.
    """
    return bool(records_of(out, point))


def collect(out: Path, points: list[Point]) -> list[dict[str, Any]]:
    """Every valid record of the finished points, written to ``out/results.jsonl`` atomically."""
    recs = []
    for p in points:
        recs += records_of(out, p)
    write_atomic(out / "results.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))
    return recs


def write_atomic(path: Path, text: str) -> None:
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


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"
