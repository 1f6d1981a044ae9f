"""From records to the list of sections: which model fits which series. Pure."""

from __future__ import annotations

import json
from typing import Any

from hpcsuite.predict import comm, training
from hpcsuite.predict.sections.base import Options, Section
from hpcsuite.predict.sections.collectives import collective_section, p2p_section
from hpcsuite.predict.sections.scaling import scaling_section
from hpcsuite.predict.sections.training import training_section
from hpcsuite.report import series as rseries


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
