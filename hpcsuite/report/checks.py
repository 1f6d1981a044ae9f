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

from hpcsuite.core import stats
from hpcsuite.core.errors import InputError
from hpcsuite.report.series import Point, Series


def compare(
    new: list[Series], old: list[Series], threshold: float, alpha: float = 0.05
) -> list[dict[str, Any]]:
    """Point-by-point verdicts for the series present in both result sets.

    A point is a **regression** (or an **improvement**) only when the difference is
    significant: a two-sided Mann-Whitney U test at ``alpha`` over the runs' medians
    when both sides have :data:`MIN_RUNS` runs or more, else over the pooled timed
    repetitions (times: lower is better), and the medians moved by at least
    ``threshold`` (a fraction). Microbenchmark curves, which record one value per run, use the test
    over runs when both sides have several, else non-overlapping min..p99 bands.
    Anything else is "no significant change" - including one run against one run.
    """
    changes = []
    for s in new:
        before = next((o for o in old if o.key == s.key), None) or next(
            (o for o in old if s.matches(o)), None
        )
        if before is None:
            continue
        old_points = {
            (p.x, p.runs[0].ranks, p.runs[0].nodes, p.runs[0].ranks_per_node): p
            for p in before.points
        }
        for p in s.points:
            prev = old_points.get((p.x, p.runs[0].ranks, p.runs[0].nodes, p.runs[0].ranks_per_node))
            if prev is None:
                continue
            entry = (
                _curve_change(prev, p, threshold, alpha)
                if s.kind == "curve"
                else _time_change(prev, p, threshold, alpha)
            )
            if entry is not None:
                changes.append({"series": s.title, "x": p.x, **entry})
    return changes


def _verdict(direction: str) -> str:
    return {"slower": "regression", "faster": "improvement"}.get(direction, "no significant change")


#: Runs per side from which --compare tests the runs' medians rather than the pooled
#: repetitions (repetitions of one run share its placement and state, so runs are the
#: more honest unit when there are enough of them).
MIN_RUNS = 4


def _time_change(prev: Point, p: Point, threshold: float, alpha: float) -> dict[str, Any] | None:
    if not prev.samples or not p.samples:
        return None
    by_run = [[stats.median(r.samples) for r in pt.runs if r.samples] for pt in (prev, p)]
    if min(len(by_run[0]), len(by_run[1])) >= MIN_RUNS:
        (a, b), unit = by_run, "runs (their medians)"
    else:
        a, b, unit = prev.samples, p.samples, "repetitions"
    c = stats.compare(a, b, higher_is_better=False, alpha=alpha, min_change=threshold)
    # The medians shown are the table's (pooled), whichever unit the test used.
    return {
        "metric": "time_s",
        "old": stats.median(prev.samples),
        "new": stats.median(p.samples),
        "change": (
            stats.median(p.samples) / stats.median(prev.samples) - 1
            if stats.median(prev.samples)
            else math.nan
        ),
        "p_value": c.p_value,
        "method": f"{c.method}, {c.n_old} vs {c.n_new} {unit}",
        "direction": c.verdict,
        "verdict": _verdict(c.verdict),
    }


def _curve_change(prev: Point, p: Point, threshold: float, alpha: float) -> dict[str, Any] | None:
    fa, fb = prev.fom(), p.fom()
    if fa["value"] is None or fb["value"] is None or fa["unit"] != fb["unit"]:
        return None
    higher = bool(fb["higher_is_better"])
    va = [r.fom.value for r in prev.runs if r.fom is not None and r.fom.value is not None]
    vb = [r.fom.value for r in p.runs if r.fom is not None and r.fom.value is not None]
    a, b = fa["value"], fb["value"]
    change = b / a - 1 if a else math.nan
    if len(va) >= 4 and len(vb) >= 4:
        c = stats.compare(va, vb, higher_is_better=higher, alpha=alpha, min_change=threshold)
        direction, p_value, method = (
            c.verdict,
            c.p_value,
            f"{c.method}, {c.n_old} vs {c.n_new} runs",
        )
    else:
        (alo, ahi), (blo, bhi) = prev.band(), p.band()
        p_value, method, direction = math.nan, "min..p99 bands", "no significant change"
        if None in (alo, ahi, blo, bhi):
            method = "one run each and no min..p99 band: cannot tell"
        elif (blo > ahi or bhi < alo) and abs(change) >= threshold:
            up = blo > ahi
            direction = "faster" if up == higher else "slower"
            method = "min..p99 bands do not overlap"
        else:
            method = "min..p99 bands overlap"
    return {
        "metric": fb["name"] or "fom",
        "old": a,
        "new": b,
        "change": change,
        "p_value": p_value,
        "method": method,
        "direction": direction,
        "verdict": _verdict(direction),
    }


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
        raise InputError(
            f"reference file {path!r} must map kernels to {{fom: [value, lower, upper, unit]}}, "
            f"not a {type(ref).__name__}"
        )
    for kernel, metrics in ref.items():
        if metrics is None:
            continue
        if not isinstance(metrics, dict):
            raise InputError(
                f"reference {kernel!r} in {path!r} must map figures of merit to "
                f'[value, lower, upper, unit], e.g. {{"bandwidth": [10.0, -0.1, null, "GB/s"]}}'
            )
        for name, entry in metrics.items():
            ok = (
                isinstance(entry, list)
                and len(entry) == 4
                and _number(entry[0])
                and all(e is None or _number(e) for e in entry[1:3])
                and isinstance(entry[3], str)
            )
            if not ok:
                raise InputError(
                    f"reference {kernel}.{name} = {entry!r} in {path!r}: "
                    'write [value, lower, upper, unit], e.g. [10.0, -0.1, null, "GB/s"]'
                )
    return ref


def against_reference(
    series: list[Series], ref: dict[str, dict[str, list[Any]]]
) -> list[dict[str, Any]]:
    """Every point's figure of merit checked against its bounds; ``passed`` per row."""
    results = []
    for s in series:
        for row in s.table():
            if row["fom"] is None:
                continue
            x = row["x"]
            entry = (ref.get(f"{s.kernel}@{row['ranks']}") or ref.get(s.kernel) or {}).get(
                row["fom_name"]
            )
            if entry is None:
                continue
            value, lower, upper, unit = entry
            lo = value * (1 + lower) if lower is not None else -math.inf
            hi = value * (1 + upper) if upper is not None else math.inf
            unit_ok = unit == row["fom_unit"]
            passed = unit_ok and lo <= row["fom"] <= hi
            results.append(
                {
                    "series": s.title,
                    "x": x,
                    "metric": row["fom_name"],
                    "value": row["fom"],
                    "unit": row["fom_unit"],
                    "low": lo,
                    "high": hi,
                    "passed": passed,
                    "why": (
                        ""
                        if unit_ok
                        else f"unit {row['fom_unit']!r} is not the reference's {unit!r}"
                    ),
                }
            )
    return results
