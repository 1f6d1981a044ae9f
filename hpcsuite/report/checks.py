"""Regression checks: against an older run (``--compare``) and against reference bounds
(``--reference``, ReFrame-style). Pure.

A reference file is JSON: ``{KERNEL: {FOM_NAME: [value, lower, upper, unit]}}`` where
``lower``/``upper`` are fractions of ``value`` (``-0.1`` = 10 % below; ``null`` = no
bound), exactly like ReFrame's ``reference`` tuples. A kernel may be written
``KERNEL@RANKS`` to bound one rank count only.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hpcsuite.core.errors import InputError
from hpcsuite.report.series import Series


def compare(new: list[Series], old: list[Series], threshold: float) -> list[dict[str, Any]]:
    """Point-by-point changes of the same series in two result sets.

    Times and lower-is-better figures count as regressions when they grow by more than
    ``threshold`` (a fraction); higher-is-better figures when they shrink by more.
    """
    old_by_key = {s.key: s for s in old}
    changes = []
    for s in new:
        before = old_by_key.get(s.key)
        if before is None:
            continue
        old_rows = {r["x"]: r for r in before.table()}
        for row in s.table():
            prev = old_rows.get(row["x"])
            if prev is None:
                continue
            metric, higher_better = ("time_s", False) if s.kind != "curve" else ("fom", _higher(s))
            a, b = prev.get(metric), row.get(metric)
            if not _number(a) or not _number(b) or a == 0:
                continue
            change = b / a - 1
            worse = change < -threshold if higher_better else change > threshold
            better = change > threshold if higher_better else change < -threshold
            changes.append({"series": s.title, "x": row["x"], "metric": metric, "old": a, "new": b,
                            "change": change,
                            "verdict": "regression" if worse else "improvement" if better else "same"})
    return changes


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _higher(s: Series) -> bool:
    fom = next((r.get("fom") for p in s.points for r in p.records if isinstance(r.get("fom"), dict)), {})
    return bool(fom.get("higher_is_better", True))


def load_reference(path: str) -> dict[str, dict[str, list[Any]]]:
    """Read and validate a reference file."""
    try:
        with open(path, encoding="utf-8") as f:
            ref = json.load(f)
    except FileNotFoundError:
        raise InputError(f"no such reference file: {path!r}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"reference file {path!r} is not readable JSON ({exc})") from None
    if not isinstance(ref, dict):
        raise InputError(f"reference file {path!r} must map kernels to {{fom: [value, lower, upper, unit]}}")
    for kernel, metrics in ref.items():
        for name, entry in (metrics or {}).items():
            ok = (isinstance(entry, list) and len(entry) == 4 and _number(entry[0])
                  and all(e is None or _number(e) for e in entry[1:3]) and isinstance(entry[3], str))
            if not ok:
                raise InputError(f"reference {kernel}.{name} = {entry!r} in {path!r}: "
                                 "write [value, lower, upper, unit], e.g. [10.0, -0.1, null, \"GB/s\"]")
    return ref


def against_reference(series: list[Series], ref: dict[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every point's figure of merit checked against its bounds; ``passed`` per row."""
    results = []
    for s in series:
        for row in s.table():
            if row["fom"] is None:
                continue
            x = row["x"]
            entry = (ref.get(f"{s.kernel}@{x}") or ref.get(s.kernel) or {}).get(row["fom_name"])
            if entry is None:
                continue
            value, lower, upper, unit = entry
            lo = value * (1 + lower) if lower is not None else -math.inf
            hi = value * (1 + upper) if upper is not None else math.inf
            unit_ok = unit == row["fom_unit"]
            passed = unit_ok and lo <= row["fom"] <= hi
            results.append({"series": s.title, "x": x, "metric": row["fom_name"], "value": row["fom"],
                            "unit": row["fom_unit"], "low": lo, "high": hi, "passed": passed,
                            "why": "" if unit_ok else f"unit {row['fom_unit']!r} is not the reference's {unit!r}"})
    return results
