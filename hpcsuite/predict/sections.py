"""From records to "prediction" sections: which model fits which series, and what it
says at ``--predict-to`` ranks. Pure (no MPI); the report and ``python -m
hpcsuite.predict`` render these sections.

Series identity is the report's (:func:`hpcsuite.report.series.build`): one module, the
same parameters, problem, node layout and environment; unlike runs are never pooled.
"""

from __future__ import annotations

import json
import math
import socket
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcsuite.core import records
from hpcsuite.predict import comm, empirical, training
from hpcsuite.report import series as rseries

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


def _grid(lo: float, hi: float) -> np.ndarray:
    """Process counts from ``lo`` to ``hi``: every integer up to 8, then powers of two."""
    pts = set(range(max(int(lo), 1), min(int(hi), 8) + 1))
    q = 1
    while q < hi:
        if q >= lo:
            pts.add(q)
        q *= 2
    pts.add(int(hi))
    return np.array(sorted(pts), dtype=float)


def _local_cores(recs: list[dict[str, Any]]) -> int | None:
    """This machine's cores when every record ran on it (a local sweep), else None: the
    fallback for records older than ``provenance.cores``."""
    me = socket.gethostname()
    for r in recs:
        hosts = (r.get("env") or {}).get("hosts")
        if not isinstance(hosts, list) or any(h != me for h in hosts):
            return None
    return records.node_cores()


def _recorded_cores(recs: list[dict[str, Any]]) -> int | None:
    """The fewest cores any of these records had on its node (``provenance.cores``), else
    :func:`_local_cores`."""
    got = [
        c
        for r in recs
        for c in [(r.get("provenance") or {}).get("cores")]
        if isinstance(c, int) and not isinstance(c, bool) and c > 0
    ]
    return min(got) if got else _local_cores(recs)


def _recorded_share(recs: list[dict[str, Any]]) -> float | None:
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


def _sharing(series: Any, pts: list[Any], opts: Options) -> tuple[Any, int | None, float]:
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
    per_point = [opts.cores_per_node or _recorded_cores([r.rec for r in p.runs]) for p in pts]
    known = [c for c in per_point if c]
    if not known:
        return None, None, 0.0
    cores = opts.cores_per_node or max(known)
    per_point = [c or cores for c in per_point]
    loads, room, seen = [], math.inf, {}
    if not opts.cores_per_node:
        for p, r, c in zip(pts, rpn, per_point):
            share = _recorded_share([run.rec for run in p.runs])
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


# ----------------------------------------------------------------------------- scaling
def scaling_section(series: Any, opts: Options) -> Section | None:
    """Extra-P normal-form model of one strong or weak series (None when it has fewer
    than two measured rank counts).

    Ranks beyond a node's cores time-share them: the fit divides each measured time by
    its point's factor and the prediction multiplies by the target's (:func:`_sharing`).
    """
    pts = [p for p in series.points if p.status == "ok" and p.samples]
    if len({p.runs[0].ranks for p in pts}) < 2:
        return None
    ranks = [p.runs[0].ranks for p in pts]
    samples = [p.samples for p in pts]
    nodes = [p.runs[0].nodes for p in pts]
    rpn = [p.runs[0].ranks_per_node for p in pts]
    sec = Section(f"prediction: {series.title}", "scaling")
    # Time-sharing by default: on a quiet 2-core runner montecarlo at 3 ranks took the
    # 2-rank time (each core runs 1.5 ranks), 1.8x the plain normal form's prediction.
    factor, cores, load = _sharing(series, pts, opts)
    over = cores is not None and max(rpn) > cores
    tf = float(factor([opts.predict_to])[0]) if factor is not None else 1.0
    shared = over or tf > 1
    if factor is None and max(rpn) > 1:
        sec.warnings.append(
            "the records do not say how many cores their nodes had (provenance.cores): "
            "ranks beyond the cores are not modelled as time-shared (give --cores-per-node)"
        )
    src = "--cores-per-node" if opts.cores_per_node else "as recorded"
    if load > 0.5:
        sec.warnings.append(
            f"other work shared the cores while this ran (about {load:.2g} busy threads besides "
            "the ranks, from the records' cpu_share): modelled as time-sharing, and assumed to "
            "continue at the predicted points (--cores-per-node C: quiet nodes of C cores)"
        )
    if over:
        sec.warnings.append(
            f"{max(rpn)} ranks per node on {cores} cores ({src}): oversubscribed points are "
            "modelled as time-shared (time x ranks per node / cores)"
        )
    layout = "--ranks-per-node" if opts.ranks_per_node else "the series' layout"
    if tf > 1:
        sec.warnings.append(
            f"at p={opts.predict_to:g} {layout} puts {tf * cores - load:g} ranks on "
            f"each {cores}-core node ({src}): the prediction is {tf:.3g}x time-shared (give "
            "--ranks-per-node R to spread them over p / R nodes, --cores-per-node C for "
            "nodes of C cores)"
        )
    try:
        model = empirical.fit(ranks, samples, negative=series.kind == "strong", factor=factor)
    except ValueError as exc:
        sec.warnings.append(str(exc))
        return sec
    target = float(opts.predict_to)
    grid = _grid(min(ranks), max(target, max(ranks)))
    v, lo, hi = model.predict(grid)
    sec.lines.append(
        f"model: t(p) = {model.best.formula()}"
        + (" (x time-sharing factor where ranks per node exceed the cores)" if shared else "")
    )
    sec.lines.append(
        f"selection: {model.selection}; {len(model.plausible)} forms within 2 AICc kept in the "
        "interval"
    )
    r2 = "" if not math.isfinite(model.r2_adj) else f", adjusted R^2 {model.r2_adj:.3f}"
    sec.lines.append(f"fit: SMAPE {model.smape:.2f} % on the measured medians{r2}")
    tv, tlo, thi = model.predict([target])
    sec.lines.append(
        f"at p={target:g}: {_t(tv[0])} (95 % prediction interval {_t(tlo[0])} .. {_t(thi[0])})"
    )
    sec.warnings += model.warnings + empirical.extrapolation_warnings(model, target)
    # Regime: everything measured inside one node, but the target needs more.
    if max(nodes) == 1 and target > max(rpn) and (cores is None or target > cores):
        sec.warnings.append(
            f"every measurement is inside one node (up to {max(rpn)} ranks): if p={target:g} "
            "spans nodes, inter-node communication is not in the data"
        )
    if min(nodes) == 1 < max(nodes):
        multi = [k for k, nd in enumerate(nodes) if nd > 1]
        try:
            sub = empirical.fit(
                [ranks[k] for k in multi],
                [samples[k] for k in multi],
                negative=series.kind == "strong",
                factor=factor,
            )
            sv = float(sub.predict([target])[0][0])
        except ValueError:  # fewer than two usable multi-node points
            sv = None
        if sv is not None:
            if not tlo[0] <= sv <= thi[0]:
                sec.warnings.append(
                    "regime change between intra- and inter-node: the multi-node points alone "
                    f"predict {_t(sv)} at p={target:g}, outside the interval of all points"
                )
    for p, s, nd in zip(ranks, samples, nodes):
        mv, mlo, mhi = model.predict([p])
        sec.rows.append(
            {
                "ranks": p,
                "nodes": nd,
                "measured_s": float(np.median(s)),
                "model_s": float(mv[0]),
                "low": float(mlo[0]),
                "high": float(mhi[0]),
                "kind": "measured",
            }
        )
    for p, a, b, c in zip(grid, v, lo, hi):
        if p > max(ranks):
            sec.rows.append(
                {
                    "ranks": int(p),
                    "nodes": None,
                    "measured_s": None,
                    "model_s": float(a),
                    "low": float(b),
                    "high": float(c),
                    "kind": "predicted",
                }
            )
    sec.plot = {
        "x": grid,
        "value": v,
        "low": lo,
        "high": hi,
        "mx": ranks,
        "my": [float(np.median(s)) for s in samples],
        "xlabel": "ranks",
        "ylabel": "time (s)",
        "xmax_measured": max(ranks),
    }
    sec.data = {
        "formula": model.best.formula(),
        "terms": [(str(t.i), t.j) for t in model.best.terms],
        "coef": model.best.fit.coef,
        "smape": model.smape,
        "r2_adj": model.r2_adj,
        "predict_to": target,
        "prediction": [tv[0], tlo[0], thi[0]],
    }
    return sec


def _t(v: float) -> str:
    if not math.isfinite(v):
        return "unbounded"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(v) >= scale or unit == "us":
            return f"{v / scale:.3g} {unit}"
    return f"{v:g} s"


# ----------------------------------------------------------------------------- communication
def p2p_section(curve: comm.Curve, model: comm.P2PModel) -> Section:
    """Hockney regimes of one point-to-point curve."""
    sec = Section(
        f"prediction: microbench.{curve.test} ({curve.where}, {curve.ranks} ranks on "
        f"{curve.nodes} node{'s' if curve.nodes > 1 else ''}): Hockney alpha-beta",
        "p2p",
    )
    for r in model.regimes:
        sec.lines.append(r.words())
        sec.rows.append(
            {
                "from_bytes": r.lo,
                "to_bytes": r.hi,
                "alpha_s": r.alpha,
                "alpha_low": r.interval("alpha")[0],
                "alpha_high": r.interval("alpha")[1],
                "bandwidth_Bps": r.bandwidth()[0],
                "bandwidth_low": r.bandwidth()[1],
                "bandwidth_high": r.bandwidth()[2],
                "points": r.fit.n,
                "rel_error": r.fit.s,
            }
        )
        if r.fit.dof < 1:
            sec.warnings.append(
                f"{comm._bytes(r.lo)}..{comm._bytes(r.hi)}: as many sizes as parameters, "
                "no interval"
            )
    if len(model.regimes) > 1:
        sec.lines.append(
            f"{len(model.regimes)} regimes (protocol switches near "
            + ", ".join(comm._bytes(r.lo) for r in model.regimes[1:])
            + ")"
        )
    fitted = np.array([model.time(m) for m in curve.sizes])
    sec.plot = {
        "x": curve.sizes,
        "value": fitted,
        "low": None,
        "high": None,
        "mx": curve.sizes,
        "my": curve.times,
        "xlabel": "message size (bytes)",
        "ylabel": "time (s)",
        "loglog": True,
    }
    sec.data = {"where": curve.where, "regimes": sec.rows}
    return sec


def collective_section(
    model: comm.CollectiveModel, opts: Options, inter: comm.P2PModel | None
) -> Section:
    """Algorithm models of one collective over its curves, and the time at ``predict_to``."""
    c0 = model.curves[0]
    where = c0.where
    ranks = sorted({c.ranks for c in model.curves})
    sec = Section(
        f"prediction: microbench.{model.collective} ({where}, ranks {ranks}): algorithm models",
        "collective",
    )
    sec.warnings += model.warnings
    for r in model.regimes:
        a_lo, a_hi = r.chosen.fit.coef_interval(0)
        b_lo, b_hi = r.chosen.fit.coef_interval(1)
        beta = (
            f"beta {1e12 * r.chosen.beta:.3g} ps/B [{1e12 * b_lo:.3g}, {1e12 * b_hi:.3g}] "
            "(effective "
            f"{1 / r.chosen.beta / 1e9:.3g} GB/s, reduction cost included)"
            if r.chosen.beta > 0
            else "beta not resolved (the time does not grow with the size here)"
        )
        sec.lines.append(
            f"{comm._bytes(r.lo)}..{comm._bytes(r.hi)}: {r.chosen.algorithm} "
            f"({r.basis}); alpha {1e6 * r.chosen.alpha:.3g} us "
            f"[{1e6 * a_lo:.3g}, {1e6 * a_hi:.3g}], " + beta
        )
        others = ", ".join(
            f"{f.algorithm} {f.fit.aicc():.1f}"
            for f in r.candidates
            if f is not r.chosen and math.isfinite(f.fit.aicc())
        )
        if others and len(ranks) >= 2:
            sec.lines.append(f"  AICc of the others: {others} (chosen {r.chosen.fit.aicc():.1f})")
    target = float(opts.predict_to)
    top_rpn = max(c.ranks_per_node for c in model.curves)
    crosses = where == "intra-node" and target > top_rpn
    if crosses:
        sec.warnings.append(
            f"measured inside one node (up to {top_rpn} ranks): at p={target:g} the "
            "collective crosses nodes; the intra-node parameters are an optimistic bound"
            + ("; the inter-node point-to-point fit is also shown" if inter else "")
        )
    sizes = [s for s in TABLE_SIZES if c0.sizes.min() <= s <= 16 * c0.sizes.max()]
    for m in sizes:
        v, lo, hi = model.predict(target, m)
        row = {"ranks": int(target), "bytes": m, "time_s": v, "low": lo, "high": hi}
        if m > c0.sizes.max():
            row["note"] = "beyond the largest measured size"
        if crosses and inter is not None:
            reg = inter.regime(m)
            row["time_inter_s"] = model.predict(target, m, alpha_beta=(reg.alpha, reg.beta))[0]
        sec.rows.append(row)
    top = max(model.curves, key=lambda c: c.ranks)
    pv = np.array([model.predict(target, m) for m in top.sizes])
    sec.plot = {
        "x": top.sizes,
        "value": pv[:, 0],
        "low": pv[:, 1],
        "high": pv[:, 2],
        "mx": top.sizes,
        "my": top.times,
        "xlabel": "message size (bytes)",
        "ylabel": "time (s)",
        "loglog": True,
        "label_measured": f"measured, {top.ranks} ranks",
        "label_model": f"model at {int(target)} ranks",
        "extra": [
            (c.sizes, c.times, f"measured, {c.ranks} ranks") for c in model.curves if c is not top
        ],
    }
    sec.data = {
        "collective": model.collective,
        "where": where,
        "ranks": ranks,
        "regimes": [
            {
                "from": r.lo,
                "to": r.hi,
                "algorithm": r.chosen.algorithm,
                "alpha": r.chosen.alpha,
                "beta": r.chosen.beta,
                "basis": r.basis,
            }
            for r in model.regimes
        ],
    }
    return sec


# ----------------------------------------------------------------------------- training
def training_section(recs: list[dict[str, Any]], nets: Any, opts: Options) -> Section:
    """Step time, throughput and efficiency vs N of one ``train.synthetic`` configuration;
    ``nets`` is :func:`hpcsuite.predict.training.network_from_fits`' (links, fast end,
    slow end), or None."""
    net, fast, slow = nets if nets else (None, None, None)
    p = recs[0].get("params") or {}
    sec = Section(
        f"prediction: train.synthetic (model {p.get('model')}, "
        f"batch {p.get('batch_size')} per rank)",
        "training",
    )
    if opts.bandwidth is not None or opts.latency is not None:
        if net is None:
            if opts.bandwidth is None or opts.latency is None:
                sec.warnings.append(
                    "without microbenchmark records both --bandwidth and --latency are needed"
                )
                return sec
            net = training.Network.from_knobs(opts.latency, opts.bandwidth)
        else:
            net, fast, slow = (
                n.with_knobs(opts.latency, opts.bandwidth) for n in (net, fast, slow)
            )
    if net is None:
        sec.warnings.append(
            "no network parameters: add microbenchmark records (latency/bw, intra- and "
            "inter-node) or give --bandwidth GB/s and --latency us"
        )
        return sec
    try:
        model = training.from_records(
            recs,
            net,
            fusion=opts.fusion_bytes,
            gpus_per_node=opts.gpus_per_node,
            hidden_fraction=opts.overlap,
            net_fast=fast,
            net_slow=slow,
        )
    except ValueError as exc:
        sec.warnings.append(str(exc))
        return sec
    sec.lines += model.notes
    sec.lines.append(
        f"gradients {model.grad_bytes / 1e6:.3g} MB in "
        f"{len(training.fusion_buffers(model.grad_bytes, model.fusion))} "
        f"fusion buffer(s) of {model.fusion / 2**20:.3g} MiB; "
        f"{model.gpus_per_node} rank(s) per node; "
        f"network: {net.source}"
    )
    sec.lines.append(
        f"links: intra-node {1e6 * net.alpha_intra:.3g} us, {1e-9 / net.beta_intra:.3g} GB/s; "
        f"inter-node {1e6 * net.alpha_inter:.3g} us, {1e-9 / net.beta_inter:.3g} GB/s"
    )
    sec.warnings += model.warnings
    measured = {}
    for r in recs:
        s = training._samples(r)
        if s and isinstance(r.get("ranks"), int):
            measured.setdefault(r["ranks"], []).extend(s)
    target = opts.predict_to
    grid = sorted(set(_grid(1, target).astype(int).tolist()) | set(measured))
    for row in model.predict(grid):
        n = row["ranks"]
        if n in measured:
            row["measured_step_s"] = float(np.median(measured[n]))
        sec.rows.append(row)
    for row in sec.rows:
        got = row.get("measured_step_s")
        if got is not None and row["ranks"] > 1 and abs(got / row["step_s"] - 1) > 0.2:
            sec.warnings.append(
                f"at {row['ranks']} ranks the model gives {_t(row['step_s'])} per step, the "
                f"measurement {_t(got)} ({100 * (got / row['step_s'] - 1):+.0f} %): the network "
                "parameters do not describe this allreduce path well"
            )
    last = sec.rows[-1]
    sec.lines.append(
        f"at N={target}: step {_t(last['step_s'])}, {last['throughput']:.4g} samples/s, efficiency "
        f"{100 * last['efficiency']:.1f} % [{100 * last['efficiency_low']:.1f}, "
        f"{100 * last['efficiency_high']:.1f}]"
    )
    if max(measured, default=1) <= model.gpus_per_node < target:
        sec.warnings.append(
            "no measurement beyond one node: the inter-node part rests on the network "
            "parameters alone"
        )
    xs = np.array([r["ranks"] for r in sec.rows], float)
    sec.plot = {
        "x": xs,
        "value": np.array([r["efficiency"] for r in sec.rows]),
        "low": np.array([r["efficiency_low"] for r in sec.rows]),
        "high": np.array([r["efficiency_high"] for r in sec.rows]),
        "mx": sorted(measured),
        "my": [model.compute / float(np.median(measured[n])) for n in sorted(measured)],
        "xlabel": "ranks",
        "ylabel": "scaling efficiency",
        "logy": False,
    }
    sec.data = {
        "compute_s": model.compute,
        "grad_bytes": model.grad_bytes,
        "fusion": model.fusion,
        "hidden_fraction": model.hidden_fraction,
        "gpus_per_node": model.gpus_per_node,
    }
    return sec


# ----------------------------------------------------------------------------- driver
def build(recs: list[dict[str, Any]], opts: Options | None = None) -> list[Section]:
    """Every prediction section these records support."""
    opts = opts or Options()
    out: list[Section] = []
    all_series = rseries.build(recs)
    # Microbenchmark curves, one per layout.
    p2p: dict[str, comm.P2PModel] = {}
    coll: dict[tuple[str, str, str], list[comm.Curve]] = {}
    for s in all_series:
        if s.kind != "curve":
            continue
        curve = comm.curve_from_records([r for p in s.points for r in p.records])
        if curve is None:
            continue
        if curve.test in comm.P2P_LATENCY + comm.P2P_BANDWIDTH:
            if curve.sizes.size < 3:
                continue
            try:
                m = comm.fit_hockney(curve)
            except ValueError:  # times too small to weigh: nothing to model
                continue
            if curve.where in ("intra-node", "inter-node") and (
                curve.where not in p2p or curve.test == "latency"
            ):
                p2p[curve.where] = m
            out.append(p2p_section(curve, m))
        else:
            key = (
                curve.test,
                curve.where,
                json.dumps([s.params, s.env_values], sort_keys=True, default=str),
            )
            coll.setdefault(key, []).append(curve)
    for (test, where, _), curves in coll.items():
        try:
            m = comm.fit_collective(test, curves, p2p.get(where))
        except ValueError:  # no curve, or times too small to weigh
            continue
        out.append(collective_section(m, opts, p2p.get("inter-node")))
    # Kernel scaling series.
    for s in all_series:
        if s.kind in ("strong", "weak") and not s.kernel.startswith(("microbench", "train.")):
            sec = scaling_section(s, opts)
            if sec is not None:
                out.append(sec)
    # Training.
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        if r.get("kernel") == "train.synthetic" and isinstance(r.get("params"), dict):
            env = r.get("env") or {}
            key = json.dumps(
                [r["params"], env.get("machine"), env.get("device_name"), env.get("mpi_library")],
                sort_keys=True,
                default=str,
            )
            groups.setdefault(key, []).append(r)
    if groups:
        nets = training.network_from_fits(p2p)
        for rs in groups.values():
            out.append(training_section(rs, nets, opts))
    return out
