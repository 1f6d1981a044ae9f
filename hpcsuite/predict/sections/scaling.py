"""The scaling section: an Extra-P normal-form model of one strong or weak series. Pure."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpcsuite.predict import empirical
from hpcsuite.predict.sections.base import Options, Section, fmt_s, rank_grid, sharing


def scaling_section(series: Any, opts: Options) -> Section | None:
    """Extra-P normal-form model of one strong or weak series (None when it has fewer
    than two measured rank counts).

    Ranks beyond a node's cores time-share them: the fit divides each measured time by
    its point's factor and the prediction multiplies by the target's (:func:`sharing`).
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
    factor, cores, load = sharing(series, pts, opts)
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
    grid = rank_grid(min(ranks), max(target, max(ranks)))
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
        f"at p={target:g}: {fmt_s(tv[0])} "
        f"(95 % prediction interval {fmt_s(tlo[0])} .. {fmt_s(thi[0])})"
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
                    f"predict {fmt_s(sv)} at p={target:g}, outside the interval of all points"
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
