"""Read records from files and folders; malformed lines and records that cannot be
placed in a series (a non-numeric shape, bad ranks...) are reported with file and line
and skipped: one bad record never stops a report."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hpcsuite.core import records
from hpcsuite.core.errors import InputError
from hpcsuite.report.runs import describe


def record_files(paths: Iterable[str]) -> list[Path]:
    """The ``.jsonl``/``.json`` files named, and those found below named folders."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.suffix in (".jsonl", ".json") and p.is_file()
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"no such file or folder: {name!r}")
    return found


def _malformed(rec: dict[str, Any]) -> str | None:
    """What makes a schema-tagged record unusable for a report, if anything."""
    try:
        describe(rec)
    except ValueError as exc:
        return str(exc)
    except (TypeError, ArithmeticError) as exc:  # a value of a type no writer produces
        return f"unusable record ({type(exc).__name__}: {exc})"
    return None


def load(paths: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every valid record under ``paths``, and one problem line per skipped line.

    Raises
    ------
    InputError
        When a path does not exist or nothing readable was found.
    """
    files = record_files(paths)
    good: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in files:
        try:
            for number, rec, problem in records.read(path):
                problem = problem or _malformed(rec)
                if problem:
                    problems.append(f"{path}:{number}: {problem}; skipped")
                else:
                    rec["_source"] = f"{path}:{number}"
                    good.append(rec)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: unreadable ({exc}); skipped")
    if not good:
        where = ", ".join(os.fspath(p) for p in files) or "the paths given"
        raise InputError(
            f"no hpcsuite records found in {where}; run a module with --json PATH first"
        )
    return good, problems
