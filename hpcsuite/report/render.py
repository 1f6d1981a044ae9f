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

#: Columns per series kind: (header, row key, format).
COLUMNS = {
    "strong": [("ranks", "x", "d"), ("nodes", "nodes", "d"), ("time s", "time_s", ".4g"),
               ("95% CI s", "ci", ""), ("speedup", "speedup", ".2f"), ("ideal", "ideal", ".0f"),
               ("efficiency", "efficiency", "%"), ("Karp-Flatt", "karp_flatt", ".3f"),
               ("figure of merit", "fom", "fom"), ("runs", "runs", "d"), ("status", "status", "")],
    "weak": [("ranks", "x", "d"), ("nodes", "nodes", "d"), ("time s", "time_s", ".4g"),
             ("95% CI s", "ci", ""), ("efficiency", "efficiency", "%"),
             ("relative perf.", "relative_performance", ".2f"), ("ideal", "ideal", ".0f"),
             ("figure of merit", "fom", "fom"), ("runs", "runs", "d"), ("status", "status", "")],
    "curve": [("size B", "x", "d"), ("value", "fom", "fom"), ("runs", "runs", "d"),
              ("status", "status", "")],
    "single": [("ranks", "x", "d"), ("nodes", "nodes", "d"), ("time s", "time_s", ".4g"),
               ("95% CI s", "ci", ""), ("figure of merit", "fom", "fom"), ("runs", "runs", "d"),
               ("status", "status", "")],
}


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if key == "ci":
        lo, hi = row.get("ci95_low"), row.get("ci95_high")
        return "-" if not _finite(lo) else f"{lo:.4g} - {hi:.4g}"
    value = row.get(key)
    if fmt == "fom":
        return "-" if value is None else f"{value:.4g} {row['fom_unit']}"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if fmt == "%":
        return f"{100 * value:.1f} %"
    return format(value, fmt) if fmt else str(value)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def rows_text(series: Series) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a series' table."""
    cols = COLUMNS[series.kind]
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


def markdown(series: list[Series], figures: dict[str, list[Path]], folder: Path,
             problems: list[str], checks: list[str]) -> str:
    """A Markdown report with tables and links to the plots."""
    out = ["# hpcsuite scaling report", ""]
    for s in series:
        head, rows = rows_text(s)
        out += [f"## {s.title}", "", f"environment: {s.env}", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        for fig in figures.get(s.key, []):
            if fig.suffix == ".png":
                out += ["", f"![{s.title}]({fig.relative_to(folder).as_posix()})"]
        out.append("")
    if checks:
        out += ["## Checks", ""] + [f"- {c}" for c in checks] + [""]
    if problems:
        out += ["## Skipped input", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(out)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}tr.failed td{background:#fdd}tr.partial td{background:#ffd}
img{max-width:100%}.env{color:#666;font-size:90%}li.bad{color:#a00}"""


def html_page(series: list[Series], figures: dict[str, list[Path]], problems: list[str],
              checks: list[str]) -> str:
    """One self-contained HTML file: styles inline, plots embedded as data URIs."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>hpcsuite scaling report</title>",
             f"<style>{_CSS}</style></head><body><h1>hpcsuite scaling report</h1>"]
    for s in series:
        head, rows = rows_text(s)
        statuses = [r["status"] for r in s.table()]
        parts.append(f"<h2>{html.escape(s.title)}</h2><p class='env'>environment: {html.escape(s.env)}</p>")
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        for r, status in zip(rows, statuses):
            parts.append(f"<tr class='{status}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        parts.append("</table>")
        for fig in figures.get(s.key, []):
            if fig.suffix == ".png":
                data = base64.b64encode(fig.read_bytes()).decode()
                parts.append(f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,{data}'>")
    if checks:
        parts.append("<h2>Checks</h2><ul>" + "".join(
            f"<li class='{'bad' if 'FAIL' in c or 'regression' in c else ''}'>{html.escape(c)}</li>"
            for c in checks) + "</ul>")
    if problems:
        parts.append("<h2>Skipped input</h2><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_csv(series: list[Series]) -> str:
    """Every point of every series, one CSV line each."""
    keys = ["x", "nodes", "runs", "samples", "time_s", "ci95_low", "ci95_high", "speedup", "ideal",
            "efficiency", "karp_flatt", "relative_performance", "fom", "fom_unit", "fom_name", "status"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["series", "kind", "kernel", "environment"] + keys)
    for s in series:
        for r in s.table():
            w.writerow([s.title, s.kind, s.kernel, s.env] + ["" if r.get(k) is None else r.get(k) for k in keys])
    return out.getvalue()
