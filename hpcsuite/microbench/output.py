"""Output formats: OSU 7.x text, an aligned table, CSV and JSON; and an OSU parser. Pure.

The ``osu`` format prints what OSU Micro-Benchmarks 7.4 prints, line for line in shape,
so that harnesses that parse OSU (ReFrame, Ramble, hpcbench, plots) read ours too:

* a blank line, then ``# OSU MPI <Name> Test v7.4``; hpcsuite's own details follow on
  one more ``#`` line (ranks, buffers, MPI thread level);
* non-blocking tests: ``# Overall = Coll. Init + Compute + MPI_Test + MPI_Wait`` and a
  blank line; one-sided tests: ``# Window creation:`` and ``# Synchronization:``;
* ``# Datatype: MPI_CHAR.`` (or the element type), then the column header: ``# Size``
  left-aligned in 10 columns, every other column right-aligned in 18 (``Iterations``
  in 12), values with 2 decimals; ``-f`` adds OSU's full columns, ``-c`` a
  ``Validation`` column of ``Pass``/``Fail``, ``-z`` the ``P50 Tail Lat(us)``... columns.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

#: The OSU Micro-Benchmarks release whose output layout ``--format osu`` follows.
OSU_VERSION = "7.4"
WIDTH = 18  # OSU's FIELD_WIDTH
NBC_PREAMBLE = "# Overall = Coll. Init + Compute + MPI_Test + MPI_Wait"

#: OSU's columns per family, default layout: (header, row key).
OSU_COLUMNS = {
    "latency": [("Avg Latency(us)", "avg_us")],
    "bandwidth": [("Bandwidth (MB/s)", "mbps")],
    "rate": [("MB/s", "mbps"), ("Messages/s", "msg_rate")],
    "onesided": [("Latency (us)", "avg_us")],
    "collective": [("Avg Latency(us)", "avg_us")],
    "nonblocking": [
        ("Overall(us)", "overall_us"),
        ("Compute(us)", "compute_us"),
        ("Pure Comm.(us)", "pure_us"),
        ("Overlap(%)", "overlap_pct"),
    ],
}
#: ``-f``/``--full``: OSU's full layout (point-to-point has none in OSU; latency gets the
#: collectives' columns, a superset).
OSU_FULL = {
    "latency": (
        OSU_COLUMNS["collective"]
        + [
            ("Min Latency(us)", "rank_min_us"),
            ("Max Latency(us)", "rank_max_us"),
            ("Iterations", "iterations"),
        ]
    ),
    "collective": (
        OSU_COLUMNS["collective"]
        + [
            ("Min Latency(us)", "rank_min_us"),
            ("Max Latency(us)", "rank_max_us"),
            ("Iterations", "iterations"),
        ]
    ),
    "nonblocking": [
        ("Overall(us)", "overall_us"),
        ("Compute(us)", "compute_us"),
        ("Coll. Init(us)", "init_us"),
        ("MPI_Test(us)", "test_us"),
        ("MPI_Wait(us)", "wait_us"),
        ("Pure Comm.(us)", "pure_us"),
        ("Min Comm.(us)", "pure_min_us"),
        ("Max Comm.(us)", "pure_max_us"),
        ("Overlap(%)", "overlap_pct"),
    ],
}
#: The statistics every family shows in the table and CSV formats.
STAT_KEYS = {
    "latency": ["min_us", "median_us", "mean_us", "p99_us", "max_us", "stddev_us"],
    "onesided": ["min_us", "median_us", "mean_us", "p99_us", "max_us", "stddev_us"],
    "bandwidth": ["mbps", "min_mbps", "median_mbps", "p99_mbps", "max_mbps", "stddev_mbps"],
    "rate": ["mbps", "msg_rate", "min_mbps", "median_mbps", "p99_mbps", "max_mbps", "stddev_mbps"],
    "collective": [
        "min_us",
        "median_us",
        "mean_us",
        "p99_us",
        "max_us",
        "stddev_us",
        "algbw_gbps",
        "busbw_gbps",
    ],
    "nonblocking": [
        "median_us",
        "p99_us",
        "pure_us",
        "overall_us",
        "compute_us",
        "init_us",
        "wait_us",
        "overlap_pct",
    ],
}
#: Extra columns every CSV line ends with (after the statistics).
CSV_TAIL = ["thread_level"]


def _cell(value: Any, width: int = WIDTH) -> str:
    if isinstance(value, str):
        return f"{value:>{width}}"
    if isinstance(value, int):
        return f"{value:>{width}d}"
    return f"{value:>{width}.2f}"


def _tail_header(p: int, bandwidth: bool) -> str:
    # OSU pads "P<p> Tail ..." to the field width, one space less for two-digit p.
    text = f"P{p} Tail BW(MB/s)" if bandwidth else f"P{p} Tail Lat(us)"
    pad = WIDTH - len("Px Tail BW(MB/s)" if bandwidth else "Px Tail Lat(us)") - (p > 9)
    return " " * max(pad, 0) + text


def osu(
    title: str,
    family: str,
    rows: list[dict[str, Any]],
    note: str,
    *,
    datatype: str | None = "MPI_CHAR",
    full: bool = False,
    validate: bool = False,
    tails: tuple[int, ...] = (),
    sized: bool = True,
    preamble: tuple[str, ...] = (),
) -> str:
    """One test's rows in OSU 7.4's text layout.

    Parameters
    ----------
    title : str
        OSU's name of the test, e.g. ``"MPI Latency"`` (``# OSU MPI Latency Test v7.4``).
    family : str
        latency, bandwidth, rate, onesided, collective or nonblocking: picks the columns.
    rows : list of dict
        One per size, keys as :data:`OSU_COLUMNS`; ``errors`` (a list) for validation,
        ``tails`` (list of values, one per ``tails`` percentile).
    note : str
        hpcsuite's details, printed on the line after the title.
    datatype : str or None
        For the ``# Datatype: ...`` line; None prints none (barrier).
    full, validate, tails
        OSU's ``-f``, ``-c`` and ``-z``.
    sized : bool
        False for barriers: OSU prints no size column then.
    preamble : tuple of str
        Lines between the title and the datatype (one-sided window and synchronization).
    """
    cols = (OSU_FULL.get(family) if full else None) or OSU_COLUMNS[family]
    lines = ["", f"# OSU {title} Test v{OSU_VERSION}", f"# {note}"]
    if family == "nonblocking":
        lines += [NBC_PREAMBLE, ""]
    lines += list(preamble)
    if datatype:
        lines.append(f"# Datatype: {datatype}.")
    first_header, rest = cols[0][0], cols[1:]
    if sized:
        head = f"{'# Size':<10}{first_header:>{WIDTH}}"
    else:
        head = f"# {first_header}"
    head += "".join(f"{h:>{12 if h == 'Iterations' else WIDTH}}" for h, _ in rest)
    if validate:
        head += f"{'Validation':>{WIDTH}}"
    head += "".join(_tail_header(p, family in ("bandwidth", "rate")) for p in tails)
    lines.append(head)
    # OSU prints the first value in 18 columns after the size, in 17 (13 for non-blocking)
    # when there is no size column.
    first_width = WIDTH if sized else (13 if family == "nonblocking" else 17)
    for row in rows:
        line = f"{row['size']:<10d}" if sized else ""
        line += _cell(row.get(cols[0][1], math.nan), first_width)
        line += "".join(
            _cell(row.get(k, math.nan), 12 if h == "Iterations" else WIDTH) for h, k in rest
        )
        if validate:
            line += _cell("Fail" if row.get("errors") else "Pass")
        line += "".join(_cell(v) for v in row.get("tails", [math.nan] * len(tails)))
        lines.append(line)
    return "\n".join(lines) + "\n"


def startup(kind: str, ranks: int, note: str, times_ms: list[float] | None = None) -> str:
    """``osu_init`` / ``osu_hello`` output: MPI start-up time, or the hello line."""
    if kind == "hello":
        return (
            f"\n# OSU MPI Hello World Test v{OSU_VERSION}\n# {note}\n"
            f"This is a test with {ranks} processes\n"
        )
    times = times_ms or [math.nan]
    return (
        f"\n# OSU MPI Init Test v{OSU_VERSION}\n# {note}\n"
        f"nprocs: {ranks}, min: {min(times):.0f} ms, max: {max(times):.0f} ms, "
        f"avg: {sum(times) / len(times):.0f} ms\n"
    )


#: Every column name OSU 7.x prints (``P<n> Tail ...`` for any n).
_KNOWN = re.compile(
    r"Size|Avg Latency\(us\)|Min Latency\(us\)|Max Latency\(us\)|Latency \(us\)|"
    r"Bandwidth \(MB/s\)|Iterations|Validation|Overall\(us\)|Compute\(us\)|"
    r"Coll\. Init\(us\)|MPI_Test\(us\)|MPI_Wait\(us\)|Pure Comm\.\(us\)|Min Comm\.\(us\)|"
    r"Max Comm\.\(us\)|Overlap\(%\)|Messages/s|MB/s|Transmit Size|"
    r"P\d+ Tail Lat\(us\)|P\d+ Tail BW\(MB/s\)"
)
_INTS = ("Size", "Iterations", "Transmit Size")


def _header(line: str) -> list[str] | None:
    """The column names of an OSU header line, or None when ``line`` is no header."""
    if not line.startswith("#"):
        return None
    body = line[1:]
    names = _KNOWN.findall(body)
    if names and not _KNOWN.sub("", body).strip():
        return names
    if body.strip().startswith("Size"):  # an unknown column: split at runs of 2+ spaces
        return [p.strip() for p in re.split(r"\s{2,}", body.strip()) if p.strip()]
    return None


def parse_osu(text: str) -> list[dict[str, Any]]:
    """Parse OSU-style output (ours, or OSU 7.x's own) into rows keyed by column header.

    Reads the default and ``-f`` layouts, ``Validation`` (``Pass``/``Fail``, kept as
    text), ``-z`` tail columns, and barrier tables without a size column. Raises
    ValueError for a row that does not fit its header.
    """
    header: list[str] = []
    rows = []
    for line in text.splitlines():
        names = _header(line)
        if names is not None:
            header = names
            continue
        if not line.strip() or line.startswith("#") or not header:
            continue
        values = line.split()
        if len(values) != len(header):
            raise ValueError(f"cannot parse OSU line {line!r} with header {header!r}")
        try:
            rows.append(
                {
                    h: v if h == "Validation" else int(v) if h in _INTS else float(v)
                    for h, v in zip(header, values)
                }
            )
        except ValueError:
            raise ValueError(f"cannot parse OSU line {line!r} with header {header!r}") from None
    return rows


def table(name: str, family: str, rows: list[dict[str, Any]], note: str) -> str:
    """An aligned table of every statistic."""
    keys = ["size", "iterations"] + [k for k in STAT_KEYS[family] if any(k in r for r in rows)]
    lines = [f"{name} ({note})", "".join(f"{k:>13}" for k in keys)]
    for row in rows:
        lines.append("".join(_cell(row.get(k, math.nan), 13) for k in keys))
    return "\n".join(lines) + "\n"


def to_csv(name: str, family: str, rows: list[dict[str, Any]], header: bool = True) -> str:
    """CSV: one line per size, the test's name first, the MPI thread level last."""
    keys = ["size", "iterations"] + STAT_KEYS[family] + CSV_TAIL
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["test"] + keys)
    for row in rows:
        writer.writerow([name] + [row.get(k, "") for k in keys])
    return out.getvalue()
