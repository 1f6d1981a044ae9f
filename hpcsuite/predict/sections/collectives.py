"""The communication sections: a point-to-point (Hockney) curve and the collectives
predicted from it. Pure."""

from __future__ import annotations

import math

import numpy as np

from hpcsuite.predict import comm
from hpcsuite.predict.sections.base import TABLE_SIZES, Options, Section


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
