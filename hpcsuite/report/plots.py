"""Figures with matplotlib (headless Agg), PNG and SVG, one figure set per series."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from hpcsuite.report.series import Series


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on compute nodes or CI
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    """A file-name-safe version of a series title."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80].lower()


def _good(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and isinstance(r.get(key), (int, float))
            and math.isfinite(r[key]) and r[key] > 0]


def draw(series: Series, folder: Path, index: int) -> list[Path]:
    """Draw ``series`` into ``folder``; return the PNG and SVG paths (none if nothing to draw)."""
    plt = _pyplot()
    rows = series.table()
    if series.kind == "curve":
        good = _good(rows, "fom")
        if not good:
            return []
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        unit, name = good[0]["fom_unit"], good[0]["fom_name"]
        ax.loglog([r["x"] for r in good], [r["fom"] for r in good], "o-", base=2)
        ax.set_xlabel("message size (bytes)")
        ax.set_ylabel(f"{name} ({unit})")
        axes = [ax]
    elif series.kind in ("strong", "weak"):
        good = _good(rows, "time_s")
        if len(good) < 2:
            return []
        ranks = [r["x"] for r in good]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        t = [r["time_s"] for r in good]
        err = [[r["time_s"] - r["ci95_low"] for r in good], [r["ci95_high"] - r["time_s"] for r in good]]
        axes[0].errorbar(ranks, t, yerr=err, fmt="o-", capsize=3, label="measured (95 % CI)")
        if series.kind == "strong":
            axes[0].plot(ranks, [t[0] * ranks[0] / p for p in ranks], "--", color="gray", label="ideal")
            axes[1].plot(ranks, [r["speedup"] for r in good], "o-", label="speedup")
            axes[1].plot(ranks, [r["ideal"] for r in good], "--", color="gray", label="ideal")
            axes[1].set_ylabel("speedup")
            axes[0].set_xscale("log", base=2)
            axes[0].set_yscale("log")
        else:
            axes[0].axhline(t[0], ls="--", color="gray", label="ideal")
            axes[1].plot(ranks, [r["relative_performance"] for r in good], "o-", label="relative perf.")
            axes[1].plot(ranks, [r["ideal"] for r in good], "--", color="gray", label="ideal")
            axes[1].set_ylabel("relative performance")
        axes[0].set_ylabel("time (s)")
        axes[2].plot(ranks, [100 * r["efficiency"] for r in good], "o-")
        axes[2].axhline(100, ls="--", color="gray")
        axes[2].set_ylabel("parallel efficiency (%)")
        axes[2].set_ylim(0, max(110, 10 + max(100 * r["efficiency"] for r in good)))
        for ax in axes:
            ax.set_xlabel("MPI ranks")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend()
        axes[1].legend()
    else:
        return []
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(series.title, 90 if series.kind != "curve" else 60)), fontsize=10)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{index:02d}-{slug(series.title)}"
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return paths
