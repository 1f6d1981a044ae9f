"""Figures with matplotlib (headless Agg), PNG and SVG, one figure set per series.

Every error bar is the interval of the statistic plotted (never a negative length:
an interval that does not contain its point is not drawn); rank and node axes carry
integer ticks at the measured counts; message sizes carry byte units; every axis has
a grid.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Any

from hpcsuite.report.series import Series


def _pyplot() -> Any:
    # matplotlib (the report extra, slow to import) loads only when a plot is drawn.
    import matplotlib

    matplotlib.use("Agg")  # no display on compute nodes or CI
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    """A file-name-safe version of a series title."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80].lower()


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _good(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and _finite(r.get(key)) and r[key] > 0]


def yerr(
    rows: list[dict[str, Any]], key: str, low: str, high: str, scale: float = 1.0
) -> list[list[float]]:
    """Asymmetric error bars ``[below, above]`` of ``key``; 0 where the interval is
    unknown, infinite or does not contain the point (never negative)."""
    below, above = [], []
    for r in rows:
        v, lo, hi = r.get(key), r.get(low), r.get(high)
        ok = _finite(v) and _finite(lo) and _finite(hi) and lo <= v <= hi
        below.append((v - lo) * scale if ok else 0.0)
        above.append((hi - v) * scale if ok else 0.0)
    return [below, above]


def size_label(n: float) -> str:
    """Binary byte units for message-size ticks: 1 B, 4 KiB, 1 MiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.3g} {unit}"
    return f"{n:.0f} B"


def _integer_ticks(ax: Any, values: list[int]) -> None:
    """Ticks exactly at the measured counts, labelled as integers (no 10^0.3)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    ticks = sorted(set(values))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter([str(int(t)) for t in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())


def _finish(plt: Any, fig: Any, series: Series, folder: Path, index: int) -> list[Path]:
    fig.suptitle("\n".join(textwrap.wrap(series.title, 100)), fontsize=9)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{index:02d}-{slug(series.title)}"
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    try:
        for path in paths:
            fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return paths


def draw(series: Series, folder: Path, index: int) -> list[Path]:
    """Draw ``series`` into ``folder``; return the PNG and SVG paths (none if nothing to draw)."""
    rows = series.table()
    if series.kind == "curve":
        return _curve(series, rows, folder, index)
    if series.kind in ("strong", "weak"):
        return _scaling(series, rows, folder, index)
    return _single(series, rows, folder, index)


def _curve(series: Series, rows: list[dict[str, Any]], folder: Path, index: int) -> list[Path]:
    good = [
        r for r in _good(rows, "fom") if r["x"] > 0
    ]  # size 0 (barrier) has no place on a log axis
    if not good:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    unit, name = good[0]["fom_unit"], good[0]["fom_name"]
    xs = [r["x"] for r in good]
    ax.plot(xs, [r["fom"] for r in good], "o-", label=f"{name}")
    band = [
        r
        for r in good
        if _finite(r.get("band_low"))
        and _finite(r.get("band_high"))
        and 0 < r["band_low"] <= r["band_high"]
    ]
    if band:
        ax.fill_between(
            [r["x"] for r in band],
            [r["band_low"] for r in band],
            [r["band_high"] for r in band],
            alpha=0.25,
            label="min .. p99 of iterations",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: size_label(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_xlabel("message size")
    ax.set_ylabel(f"{name} ({unit})" if unit else name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(plt, fig, series, folder, index)


def _scaling(series: Series, rows: list[dict[str, Any]], folder: Path, index: int) -> list[Path]:
    good = _good(rows, "time_s")
    if len(good) < 2 or not all(_finite(r.get("efficiency")) for r in good):
        return _single(series, rows, folder, index)
    plt = _pyplot()
    axis = series.axis if series.axis in ("ranks", "nodes") else "ranks"
    xs = [r[axis] for r in good]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    t = [r["time_s"] for r in good]
    axes[0].errorbar(
        xs,
        t,
        yerr=yerr(good, "time_s", "time_low", "time_high"),
        fmt="o-",
        capsize=3,
        label="median (interval)",
    )
    q = [r["ideal"] for r in good]
    if series.kind == "strong":
        axes[0].plot(xs, [t[0] / qi for qi in q], "--", color="gray", label="ideal")
        axes[1].errorbar(
            xs,
            [r["speedup"] for r in good],
            yerr=yerr(good, "speedup", "speedup_low", "speedup_high"),
            fmt="o-",
            capsize=3,
            label="speedup (interval)",
        )
        axes[1].set_ylabel("speedup")
        axes[0].set_yscale("log")
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda v, _: f"{v:g}")  # 6 rather than 6x10^0
        axes[0].yaxis.set_major_formatter(plain)
        axes[0].yaxis.set_minor_formatter(plain)
    else:
        axes[0].axhline(t[0], ls="--", color="gray", label="ideal")
        axes[1].errorbar(
            xs,
            [r["relative_performance"] for r in good],
            yerr=yerr(
                good,
                "relative_performance",
                "relative_performance_low",
                "relative_performance_high",
            ),
            fmt="o-",
            capsize=3,
            label="relative perf. (interval)",
        )
        axes[1].set_ylabel("relative performance")
    axes[1].plot(xs, q, "--", color="gray", label="ideal")
    axes[0].set_ylabel("time (s)")
    axes[2].errorbar(
        xs,
        [100 * r["efficiency"] for r in good],
        yerr=yerr(good, "efficiency", "efficiency_low", "efficiency_high", 100),
        fmt="o-",
        capsize=3,
        label="efficiency (interval)",
    )
    axes[2].axhline(100, ls="--", color="gray")
    axes[2].set_ylabel("parallel efficiency (%)")
    top = max(100 * r["efficiency"] for r in good)
    axes[2].set_ylim(0, max(110.0, 10 + top) if math.isfinite(top) else 110.0)
    label = "MPI ranks" if axis == "ranks" else "nodes"
    if axis == "ranks" and series.nodes is not None:
        label += f" (on {series.nodes} node{'s' if series.nodes != 1 else ''})"
    elif axis == "nodes":
        label += f" ({series.ranks_per_node} ranks per node)"
    for ax in axes:
        if len(set(xs)) > 1 and max(xs) / max(min(xs), 1) >= 4:
            ax.set_xscale("log", base=2)
        _integer_ticks(ax, xs)
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _finish(plt, fig, series, folder, index)


def _single(series: Series, rows: list[dict[str, Any]], folder: Path, index: int) -> list[Path]:
    """Runs that form no sweep: median time with its interval per layout, as points."""
    good = _good(rows, "time_s")
    if not good:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    labels = [
        f"{r['ranks']} ranks\n{r['nodes']} node{'s' if r['nodes'] != 1 else ''}" for r in good
    ]
    pos = list(range(len(good)))
    ax.errorbar(
        pos,
        [r["time_s"] for r in good],
        yerr=yerr(good, "time_s", "time_low", "time_high"),
        fmt="o",
        capsize=4,
        label="median (interval)",
    )
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.5, len(good) - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("time (s)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(plt, fig, series, folder, index)
