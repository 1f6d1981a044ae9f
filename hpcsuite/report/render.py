"""Write the report: terminal summary, Markdown, one self-contained HTML file, CSV."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path
from typing import Any

from hpcsuite.report.series import Series

#: What the numbers are, printed at the top of the Markdown and HTML reports.
LEGEND = (
    "time: median of the timed repetitions (pooled over the runs of a point); interval: "
    "distribution-free 95 % interval of that median (binomial order statistics), "
    "min-max when there are too few samples for 95 %, none for one sample. Figure of merit: "
    "the work over the same median, its interval the work over the interval's ends. "
    "Speedup and efficiency intervals combine the two time intervals (conservative). "
    "Rows of different node layouts or environments are never pooled."
)

_LAYOUT = {
    "ranks": [
        ("ranks", "ranks", "d"),
        ("nodes", "nodes", "d"),
        ("ranks/node", "ranks_per_node", "d"),
    ],
    "nodes": [
        ("nodes", "nodes", "d"),
        ("ranks", "ranks", "d"),
        ("ranks/node", "ranks_per_node", "d"),
    ],
}
_TIME = [("time s", "time_s", ".4g"), ("interval s", "interval", "")]
_TAIL = [
    ("figure of merit", "fom", "fom"),
    ("runs", "runs", "d"),
    ("samples", "samples", "d"),
    ("Slurm jobs", "jobs", "s"),
    ("git", "git", "s"),
    ("status", "status", ""),
]


def columns(series: Series) -> list[tuple[str, str, str]]:
    """(header, row key, format) of a series' table; job and git columns only when known."""
    if series.kind == "curve":
        band = "min..p99 us" if _unit(series) == "us" else "min..p99"
        cols = [
            ("size B", "x", "d"),
            ("value", "fom", "fom"),
            (band, "band", ""),
            ("runs", "runs", "d"),
            ("Slurm jobs", "jobs", "s"),
            ("git", "git", "s"),
            ("status", "status", ""),
        ]
    else:
        cols = list(_LAYOUT.get(series.axis, _LAYOUT["ranks"]))
        if series.kind == "single":
            cols.append(("problem", "problem", "s"))
        cols += _TIME
        if series.kind == "strong":
            cols += [
                ("speedup", "speedup", "ratio"),
                ("ideal", "ideal", ".0f"),
                ("efficiency", "efficiency", "%"),
                ("Karp-Flatt", "karp_flatt", ".3f"),
            ]
        elif series.kind == "weak":
            cols += [
                ("efficiency", "efficiency", "%"),
                ("relative perf.", "relative_performance", "ratio"),
                ("ideal", "ideal", ".0f"),
            ]
        cols += _TAIL
    rows = series.table()
    return [c for c in cols if c[1] not in ("jobs", "git") or any(r.get(c[1]) for r in rows)]


def _unit(series: Series) -> str:
    return next((r["fom_unit"] for r in series.table() if r.get("fom_unit")), "")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _range(lo: Any, hi: Any, fmt: str = ".3g", scale: float = 1.0) -> str:
    if not _finite(lo) or not _finite(hi) or lo == hi:
        return ""  # unknown, or no spread to show (a base point, equal runs)
    return f"{lo * scale:{fmt}}-{hi * scale:{fmt}}"


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if key == "interval":
        lo, hi, n = row.get("time_low"), row.get("time_high"), row.get("samples") or 0
        if n <= 1 or not _finite(lo):
            return "-" if n == 0 else "- (1 sample)"
        note = (
            ""
            if _finite(row.get("confidence")) and row["confidence"] >= 0.95 - 1e-9
            else " (min-max)"
        )
        return f"{lo:.4g} - {hi:.4g}{note}"
    if key == "band":
        r = _range(row.get("band_low"), row.get("band_high"), ".4g")
        return r or "-"
    value = row.get(key)
    if fmt == "fom":
        if not _finite(value):
            return "-"
        r = _range(row.get("fom_low"), row.get("fom_high"), ".4g")
        return f"{value:.4g} {row['fom_unit']}".rstrip() + (f" ({r})" if r else "")
    if fmt == "s":
        return str(value) if value else "-"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if fmt == "ratio":
        r = _range(row.get(f"{key}_low"), row.get(f"{key}_high"), ".3g")
        return f"{value:.3g}" + (f" ({r})" if r else "")
    if fmt == "%":
        r = _range(row.get(f"{key}_low"), row.get(f"{key}_high"), ".0f", 100)
        return f"{100 * value:.0f}%" + (f" ({r}%)" if r else "")
    return format(value, fmt) if fmt else str(value)


def rows_text(series: Series) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a series' table."""
    cols = columns(series)
    return [c[0] for c in cols], [[_cell(r, k, f) for _, k, f in cols] for r in series.table()]


def terminal(series: list[Series]) -> str:
    """Aligned plain-text tables."""
    out = []
    for s in series:
        head, rows = rows_text(s)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        out.append(s.title)
        out.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        out.append("")
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(
    series: list[Series],
    figures: dict[str, list[Path]],
    folder: Path,
    problems: list[str],
    checks: list[str],
    predictions: str = "",
) -> str:
    """A Markdown report with tables and links to the plots."""
    out = ["# hpcsuite scaling report", "", LEGEND, ""]
    for s in series:
        head, rows = rows_text(s)
        out += [
            f"## {s.title}",
            "",
            f"environment: {s.env}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
        for fig in figures.get(s.key, []):
            if fig.suffix == ".png":
                out += ["", f"![{s.title}]({fig.relative_to(folder).as_posix()})"]
        out.append("")
    if predictions:  # hpcsuite.predict's sections, already rendered (report --model)
        out += [predictions, ""]
    if checks:
        out += ["## Checks", ""] + [f"- {c}" for c in checks] + [""]
    if problems:
        out += ["## Skipped input", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(out)


def _check_class(line: str) -> str:
    """The CSS class of a check line: ``bad`` for a failure or a regression."""
    return "bad" if "FAIL" in line or "regression" in line else ""


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}tr.failed td{background:#fdd}tr.partial td{background:#ffd}
img{max-width:100%}.env,.legend{color:#666;font-size:90%}li.bad{color:#a00}"""


def html_page(
    series: list[Series],
    figures: dict[str, list[Path]],
    problems: list[str],
    checks: list[str],
    predictions: str = "",
) -> str:
    """One self-contained HTML file: styles inline, plots embedded as data URIs."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>hpcsuite scaling report</title>",
        f"<style>{_CSS}</style></head><body><h1>hpcsuite scaling report</h1>",
        f"<p class='legend'>{html.escape(LEGEND)}</p>",
    ]
    for s in series:
        head, rows = rows_text(s)
        statuses = [r["status"] for r in s.table()]
        parts.append(
            f"<h2>{html.escape(s.title)}</h2><p class='env'>environment: {html.escape(s.env)}</p>"
        )
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        for r, status in zip(rows, statuses):
            parts.append(
                f"<tr class='{status}'>"
                + "".join(f"<td>{html.escape(c)}</td>" for c in r)
                + "</tr>"
            )
        parts.append("</table>")
        for fig in figures.get(s.key, []):
            if fig.suffix == ".png":
                data = base64.b64encode(fig.read_bytes()).decode()
                parts.append(
                    f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,{data}'>"
                )
    if predictions:  # an HTML fragment from hpcsuite.predict (report --model)
        parts.append(predictions)
    if checks:
        parts.append(
            "<h2>Checks</h2><ul>"
            + "".join(f"<li class='{_check_class(c)}'>{html.escape(c)}</li>" for c in checks)
            + "</ul>"
        )
    if problems:
        parts.append(
            "<h2>Skipped input</h2><ul>"
            + "".join(f"<li>{html.escape(p)}</li>" for p in problems)
            + "</ul>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


#: CSV columns after series, kind, kernel, environment.
CSV_KEYS = [
    "x",
    "ranks",
    "nodes",
    "ranks_per_node",
    "runs",
    "samples",
    "time_s",
    "time_low",
    "time_high",
    "confidence",
    "time_min",
    "time_p99",
    "speedup",
    "speedup_low",
    "speedup_high",
    "ideal",
    "efficiency",
    "efficiency_low",
    "efficiency_high",
    "karp_flatt",
    "relative_performance",
    "relative_performance_low",
    "relative_performance_high",
    "fom",
    "fom_low",
    "fom_high",
    "fom_unit",
    "fom_name",
    "fom_basis",
    "band_low",
    "band_high",
    "problem",
    "jobs",
    "git",
    "status",
    "axis",
]


def to_csv(series: list[Series]) -> str:
    """Every point of every series, one CSV line each (job ids space-separated)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["series", "kind", "kernel", "environment"] + CSV_KEYS)
    for s in series:
        for r in s.table():
            r = {**r, "axis": s.axis}
            w.writerow(
                [s.title, s.kind, s.kernel, s.env]
                + ["" if r.get(k) is None else r.get(k) for k in CSV_KEYS]
            )
    return out.getvalue()
