"""The training section: data-parallel step time and efficiency from the records of
``hpcsuite.train`` (Horovod's ring allreduce, fusion and overlap). Pure."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpcsuite.predict import training
from hpcsuite.predict.sections.base import Options, Section, fmt_s, rank_grid


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
    grid = sorted(set(rank_grid(1, target).astype(int).tolist()) | set(measured))
    for row in model.predict(grid):
        n = row["ranks"]
        if n in measured:
            row["measured_step_s"] = float(np.median(measured[n]))
        sec.rows.append(row)
    for row in sec.rows:
        got = row.get("measured_step_s")
        if got is not None and row["ranks"] > 1 and abs(got / row["step_s"] - 1) > 0.2:
            sec.warnings.append(
                f"at {row['ranks']} ranks the model gives {fmt_s(row['step_s'])} per step, the "
                f"measurement {fmt_s(got)} ({100 * (got / row['step_s'] - 1):+.0f} %): the network "
                "parameters do not describe this allreduce path well"
            )
    last = sec.rows[-1]
    sec.lines.append(
        f"at N={target}: step {fmt_s(last['step_s'])}, {last['throughput']:.4g} samples/s, "
        "efficiency "
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
