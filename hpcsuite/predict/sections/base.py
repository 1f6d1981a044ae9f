"""What every prediction section shares: the section, the what-if options, the
process-count grid and the time-sharing factor of ranks on too few cores. Pure."""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcsuite.core import records

#: Sizes at which collective predictions are tabulated (bytes).
TABLE_SIZES = (8, 1024, 65536, 1 << 20, 16 << 20)


@dataclass
class Section:
    """One prediction section.

    ``rows`` are the table (measured and predicted points), ``lines`` the text (model
    in words, parameters with intervals), ``warnings`` what the data cannot support,
    ``plot`` what the figure draws (x, measured, curve with its band).
    """

    title: str
    kind: str  # scaling | p2p | collective | training
    lines: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinities become None)."""

        def clean(v: Any) -> Any:
            """NaN and infinities to None, NumPy to plain Python, recursively."""
            if isinstance(v, float):
                return v if math.isfinite(v) else None
            if isinstance(v, (np.floating, np.integer)):
                return clean(v.item())
            if isinstance(v, np.ndarray):
                return [clean(x) for x in v.tolist()]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return clean(
            {
                "title": self.title,
                "kind": self.kind,
                "lines": self.lines,
                "rows": self.rows,
                "warnings": self.warnings,
                "data": self.data,
            }
        )


@dataclass
class Options:
    """What-if knobs and targets."""

    predict_to: int = 512
    cores_per_node: int | None = None
    ranks_per_node: int | None = None  # layout of the predicted (unmeasured) points
    bandwidth: float | None = None  # GB/s
    latency: float | None = None  # us
    fusion_bytes: float | None = None
    gpus_per_node: int | None = None
    overlap: float | None = None  # hidden fraction override


def rank_grid(lo: float, hi: float) -> np.ndarray:
    """Process counts from ``lo`` to ``hi``: every integer up to 8, then powers of two."""
    pts = set(range(max(int(lo), 1), min(int(hi), 8) + 1))
    q = 1
    while q < hi:
        if q >= lo:
            pts.add(q)
        q *= 2
    pts.add(int(hi))
    return np.array(sorted(pts), dtype=float)


def local_cores(recs: list[dict[str, Any]]) -> int | None:
    """This machine's cores when every record ran on it (a local sweep), else None: the
    fallback for records older than ``provenance.cores``."""
    me = socket.gethostname()
    for r in recs:
        hosts = (r.get("env") or {}).get("hosts")
        if not isinstance(hosts, list) or any(h != me for h in hosts):
            return None
    return records.node_cores()


def recorded_cores(recs: list[dict[str, Any]]) -> int | None:
    """The fewest cores any of these records had on its node (``provenance.cores``), else
    :func:`local_cores`."""
    got = [
        c
        for r in recs
        for c in [(r.get("provenance") or {}).get("cores")]
        if isinstance(c, int) and not isinstance(c, bool) and c > 0
    ]
    return min(got) if got else local_cores(recs)


def recorded_share(recs: list[dict[str, Any]]) -> float | None:
    """The median ``provenance.cpu_share`` of these records (capped at 1), else None."""
    got = [
        float(v)
        for r in recs
        for v in [(r.get("provenance") or {}).get("cpu_share")]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf
    ]
    return min(1.0, float(np.median(got))) if got else None


#: A rank whose CPU share is below this shared its core (startup and waits stay above).
SHARED_BELOW = 0.9


def sharing(series: Any, pts: list[Any], opts: Options) -> tuple[Any, int | None, float]:
    """The time-sharing factor ``p -> max(1, (ranks per node + load) / cores)`` of a series.

    Measured points use their own layout and the cores their records say they had (a
    rank count run with more ranks per node than cores time-shares them); other rank
    counts the series' layout (fixed nodes: ``ceil(p / nodes)`` ranks on each; fixed
    ranks per node: those) on the most cores the series' nodes had. ``load`` is the
    other work that shared the cores while the series ran, in busy threads: the records'
    ``cpu_share`` (CPU seconds of rank 0 per second alive) says what a core gave each
    rank, so ``cores / share - ranks per node``, from the points that clearly shared
    (median; 0 when none did), at most ``cores - ranks per node`` of any point whose
    rank had a core to itself. It is assumed to continue at the predicted points; a
    measured point that clearly shared is divided by its own slowdown, ``1 / share``.
    ``--cores-per-node`` replaces the recorded cores everywhere and means quiet nodes
    (no load): a what-if; ``--ranks-per-node R`` lays the unmeasured counts out R ranks
    to a node. Returns the factor (None when no core count is known), the
    cores assumed beyond the measurements and the load.
    """
    rpn = [p.runs[0].ranks_per_node for p in pts]
    per_point = [opts.cores_per_node or recorded_cores([r.rec for r in p.runs]) for p in pts]
    known = [c for c in per_point if c]
    if not known:
        return None, None, 0.0
    cores = opts.cores_per_node or max(known)
    per_point = [c or cores for c in per_point]
    loads, room, seen = [], math.inf, {}
    if not opts.cores_per_node:
        for p, r, c in zip(pts, rpn, per_point):
            share = recorded_share([run.rec for run in p.runs])
            if share is not None and share < SHARED_BELOW:
                loads.append(max(0.0, c / share - r))
                # this point's own load (it changes from point to point on a shared
                # machine): its slowdown is then 1 / share
                seen[p.runs[0].ranks] = (r, c, loads[-1])
            elif share is not None:  # a core each: at most c - r threads of other work
                room = min(room, max(0.0, c - r))
    # A point whose rank had its core bounds the load: a slow start (disk, a lone rank's
    # imports) on a quiet node does not pass for load.
    load = min(float(np.median(loads)), room) if loads else 0.0
    measured = {p.runs[0].ranks: max(1.0, (r + load) / c) for p, r, c in zip(pts, rpn, per_point)}
    measured.update({p: max(1.0, (r + min(lk, room)) / c) for p, (r, c, lk) in seen.items()})
    n_fixed = max(series.nodes or 1, 1)

    def factor(q: Any) -> np.ndarray:
        q = np.asarray(q, float)
        if opts.ranks_per_node:  # what-if: the predicted points fill nodes of R ranks
            per = np.minimum(q, opts.ranks_per_node)
        elif series.axis == "nodes":
            per = np.full_like(q, max(rpn))
        else:
            per = np.ceil(q / n_fixed)
        out = np.maximum(1.0, (per + load) / cores)
        for p, f in measured.items():
            out = np.where(q == p, f, out)
        return out

    return factor, cores, load


def fmt_s(v: float) -> str:
    if not math.isfinite(v):
        return "unbounded"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(v) >= scale or unit == "us":
            return f"{v / scale:.3g} {unit}"
    return f"{v:g} s"
