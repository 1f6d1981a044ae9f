"""Text, Markdown and figures of prediction sections."""

from __future__ import annotations

import base64
import html
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from hpcsuite.predict.sections import Section


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf" if v > 0 else "-"
        return f"{v:.4g}"
    return str(v)


_COLUMNS = {
    "scaling": [
        ("ranks", "ranks"),
        ("nodes", "nodes"),
        ("measured_s", "measured (s)"),
        ("model_s", "model (s)"),
        ("low", "95 % low"),
        ("high", "95 % high"),
        ("kind", ""),
    ],
    "p2p": [
        ("from_bytes", "from (B)"),
        ("to_bytes", "to (B)"),
        ("alpha_s", "alpha (s)"),
        ("alpha_low", "low"),
        ("alpha_high", "high"),
        ("bandwidth_Bps", "bandwidth (B/s)"),
        ("bandwidth_low", "low"),
        ("bandwidth_high", "high"),
        ("points", "sizes"),
    ],
    "collective": [
        ("ranks", "ranks"),
        ("bytes", "bytes"),
        ("time_s", "model (s)"),
        ("low", "95 % low"),
        ("high", "95 % high"),
        ("time_inter_s", "inter-node links (s)"),
        ("note", ""),
    ],
    "training": [
        ("ranks", "ranks"),
        ("step_s", "step (s)"),
        ("measured_step_s", "measured (s)"),
        ("comm_s", "allreduce (s)"),
        ("exposed_s", "exposed (s)"),
        ("throughput", "samples/s"),
        ("efficiency", "efficiency"),
        ("efficiency_low", "low"),
        ("efficiency_high", "high"),
    ],
}


def table(sec: Section) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a section's table (columns with no value anywhere dropped)."""
    cols = [(k, h) for k, h in _COLUMNS[sec.kind] if any(r.get(k) is not None for r in sec.rows)]
    return [h for _, h in cols], [[_fmt(r.get(k)) for k, _ in cols] for r in sec.rows]


def text(sections: list[Section]) -> str:
    """Plain text for the terminal."""
    out = []
    for sec in sections:
        out += ["", sec.title, "=" * min(len(sec.title), 100)]
        out += sec.lines
        out += [f"WARNING: {w}" for w in sec.warnings]
        head, cells = table(sec)
        if cells:
            widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
            out.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
            out += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out).lstrip("\n") + "\n"


def markdown(
    sections: list[Section], figures: dict[int, Path] | None = None, folder: Path | None = None
) -> str:
    """Markdown, one ``###`` section each, with its figure when drawn."""
    out = []
    for i, sec in enumerate(sections):
        out += [f"### {sec.title}", ""]
        out += [f"- {line}" for line in sec.lines]
        out += [f"- **Warning:** {w}" for w in sec.warnings]
        out.append("")
        head, cells = table(sec)
        if cells:
            out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(c) + " |" for c in cells]
            out.append("")
        if figures and i in figures:
            rel = figures[i].relative_to(folder) if folder else figures[i]
            out += [f"![{sec.title}]({rel.as_posix()})", ""]
    return "\n".join(out)


def figure(sec: Section, path: Path) -> Path | None:
    """Measured points, the model's curve and its interval band; None when there is
    nothing to draw or matplotlib is missing."""
    p = sec.plot
    if not p:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = np.asarray(p["x"], float)
    v = np.asarray(p["value"], float)
    ax.plot(x, v, "-", color="C0", label=p.get("label_model", "model"))
    if p.get("low") is not None:
        lo = np.asarray(p["low"], float)
        hi = np.asarray(p["high"], float)
        top = (
            np.nanmax(np.where(np.isfinite(hi), hi, np.nan))
            if np.isfinite(hi).any()
            else np.nanmax(v)
        )
        hi = np.where(np.isfinite(hi), hi, 10 * top)
        ax.fill_between(
            x,
            np.maximum(lo, 1e-300) if p.get("logy", True) else lo,
            hi,
            color="C0",
            alpha=0.2,
            label="95 % prediction interval",
        )
    for ex, ey, label in p.get("extra", []):
        ax.plot(ex, ey, "x", label=label)
    ax.plot(p["mx"], p["my"], "o", color="C1", label=p.get("label_measured", "measured"))
    if p.get("xmax_measured"):
        ax.axvline(p["xmax_measured"], color="0.6", ls=":", lw=1)
    if p.get("loglog") or p.get("logy", True):
        ax.set_yscale("log")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(p["xlabel"])
    ax.set_ylabel(p["ylabel"])
    ax.grid(True, which="both", alpha=0.3)
    # Wrapped, not cut: a series title names its kernel, sizes and placement, and the
    # part a cut lost was the part that tells two figures apart.
    ax.set_title("\n".join(textwrap.wrap(sec.title.removeprefix("prediction: "), 70)), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def html_fragment(sections: list[Section], figures: dict[int, Path] | None = None) -> str:
    """The sections as an HTML fragment (tables, warnings, figures embedded as data URIs),
    for the report's self-contained page."""
    parts = ["<h2>Predictions</h2>"]
    for i, sec in enumerate(sections):
        parts.append(f"<h3>{html.escape(sec.title)}</h3><ul>")
        parts += [f"<li>{html.escape(line)}</li>" for line in sec.lines]
        parts += [f"<li class='bad'>warning: {html.escape(w)}</li>" for w in sec.warnings]
        parts.append("</ul>")
        head, cells = table(sec)
        if cells:
            parts.append(
                "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            )
            parts += [
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in cells
            ]
            parts.append("</table>")
        if figures and i in figures:
            data = base64.b64encode(figures[i].read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(sec.title)}' src='data:image/png;base64,{data}'>")
    return "\n".join(parts)


def figures(sections: list[Section], folder: Path) -> dict[int, Path]:
    """One figure per section that has one, ``folder/prediction-NN.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, sec in enumerate(sections):
        path = figure(sec, folder / f"prediction-{i + 1:02d}.png")
        if path is not None:
            out[i] = path
    return out
