"""Output formats: OSU-compatible text, an aligned table, CSV and JSON; and an OSU parser. Pure.

The ``osu`` format keeps OSU's layout - ``#`` header lines, then one row per size with
the size left-aligned in 10 columns and values right-aligned in 18 with 2 decimals -
so scripts and plots written for OSU's output keep working.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

#: OSU's columns per family: (header, row key).
OSU_COLUMNS = {
    "latency": [("Latency (us)", "avg_us")],
    "bandwidth": [("Bandwidth (MB/s)", "mbps")],
    "collective": [("Avg Latency(us)", "avg_us"), ("Min Latency(us)", "rank_min_us"),
                   ("Max Latency(us)", "rank_max_us"), ("Iterations", "iterations")],
    "nonblocking": [("Overall(us)", "overall_us"), ("Compute(us)", "compute_us"),
                    ("Pure Comm.(us)", "pure_us"), ("Overlap(%)", "overlap_pct")],
}
#: The statistics every family shows in the table and CSV formats.
STAT_KEYS = {
    "latency": ["min_us", "median_us", "mean_us", "p99_us", "max_us", "stddev_us"],
    "bandwidth": ["mbps", "min_mbps", "median_mbps", "p99_mbps", "max_mbps", "stddev_mbps"],
    "collective": ["min_us", "median_us", "mean_us", "p99_us", "max_us", "stddev_us",
                   "algbw_gbps", "busbw_gbps"],
    "nonblocking": ["median_us", "p99_us", "pure_us", "overall_us", "compute_us", "overlap_pct"],
}


def _cell(value: Any, width: int = 18) -> str:
    if isinstance(value, int):
        return f"{value:>{width}d}"
    return f"{value:>{width}.2f}"


def osu(title: str, family: str, rows: list[dict[str, Any]], note: str) -> str:
    """Rows in OSU's text layout."""
    cols = OSU_COLUMNS[family]
    lines = [f"# OSU MPI {title} Test ({note})", "# Size    " + "".join(f"{h:>18}" for h, _ in cols)]
    for row in rows:
        lines.append(f"{row['size']:<10d}" + "".join(_cell(row.get(k, math.nan)) for _, k in cols))
    return "\n".join(lines) + "\n"


def parse_osu(text: str) -> list[dict[str, float]]:
    """Parse OSU-style output (ours or OSU's own) into rows keyed by column header."""
    header: list[str] = []
    rows = []
    for line in text.splitlines():
        if line.startswith("# Size"):
            header = [h.strip() for h in _split_header(line[1:])]
            continue
        if not line.strip() or line.startswith("#"):
            continue
        values = line.split()
        if not header or len(values) != len(header):
            raise ValueError(f"cannot parse OSU line {line!r} with header {header!r}")
        rows.append({h: (int(v) if h in ("Size", "Iterations") else float(v))
                     for h, v in zip(header, values)})
    return rows


def _split_header(text: str) -> list[str]:
    # Columns are separated by runs of two or more spaces; names contain single spaces.
    return [part for part in (p.strip() for p in text.split("  ")) if part]


def table(name: str, family: str, rows: list[dict[str, Any]], note: str) -> str:
    """An aligned table of every statistic."""
    keys = ["size", "iterations"] + [k for k in STAT_KEYS[family] if any(k in r for r in rows)]
    lines = [f"{name} ({note})", "".join(f"{k:>13}" for k in keys)]
    for row in rows:
        lines.append("".join(_cell(row.get(k, math.nan), 13) for k in keys))
    return "\n".join(lines) + "\n"


def to_csv(name: str, family: str, rows: list[dict[str, Any]], header: bool = True) -> str:
    """CSV: one line per size, the test's name first."""
    keys = ["size", "iterations"] + STAT_KEYS[family]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["test"] + keys)
    for row in rows:
        writer.writerow([name] + [row.get(k, "") for k in keys])
    return out.getvalue()
