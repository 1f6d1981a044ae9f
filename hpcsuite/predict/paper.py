"""The training model against the Horovod paper (``benchmarks/horovod_paper.json``).

The inputs that are published (25 Gbit/s links, 4 GPUs per server, 64 MB fusion
buffer, batch 64, the models' parameter counts, one-GPU P100 rates) go in as they are;
the two that are published nowhere (the latency of one ring step and the fraction of
the allreduce hidden behind backward) are calibrated once, shared by all three models
and both GPU counts, by least squares on the efficiencies. Leave-one-model-out
calibration then predicts each model from the other two, which is the honest test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hpcsuite.predict import training

DEFAULT = Path(__file__).resolve().parents[2] / "benchmarks" / "horovod_paper.json"
_ALPHAS = np.linspace(0.0, 100e-6, 201)
_FRACTIONS = np.linspace(0.0, 1.0, 201)


def load(path: str | Path = DEFAULT) -> dict[str, Any]:
    """The data file."""
    return json.loads(Path(path).read_text())


def efficiency(data: dict[str, Any], model: str, n: int, alpha: float, hidden: float) -> float:
    """Predicted scaling efficiency of ``model`` at ``n`` GPUs."""
    net_d, m = data["network"], data["models"][model]
    beta = 8.0 / (net_d["bandwidth_gbit_s"] * 1e9)
    batch = int(data["batch_per_gpu"]["value"])
    compute = batch / float(m["images_per_s_1gpu"])
    tm = training.TrainingModel(
        compute=compute,
        compute_low=compute,
        compute_high=compute,
        batch=batch,
        grad_bytes=4.0 * m["parameters"],
        fusion=float(net_d["fusion_bytes"]),
        gpus_per_node=int(net_d["gpus_per_node"]),
        net=training.Network(alpha, beta, alpha, beta, "paper"),
        hidden_fraction=hidden,
    )
    return tm.predict([n])[0]["efficiency"]


def _targets(data: dict[str, Any], models: list[str]) -> list[tuple[str, int, float]]:
    return [
        (m, int(n), float(v)) for m in models for n, v in data["models"][m]["efficiency"].items()
    ]


def _linear(data: dict[str, Any], model: str, n: int) -> tuple[float, float, float]:
    """Compute time, and the allreduce time as ``t0 + alpha * t1`` (the ring model is
    linear in the latency), from :mod:`.training` itself."""
    net_d, m = data["network"], data["models"][model]
    beta = 8.0 / (net_d["bandwidth_gbit_s"] * 1e9)
    compute = int(data["batch_per_gpu"]["value"]) / float(m["images_per_s_1gpu"])
    args = (n, 4.0 * m["parameters"], float(net_d["fusion_bytes"]))
    g = int(net_d["gpus_per_node"])
    t0 = training.comm_time(*args, training.Network(0.0, beta, 0.0, beta), g)
    t1 = training.comm_time(*args, training.Network(1.0, beta, 1.0, beta), g) - t0
    return compute, t0, t1


def calibrate(data: dict[str, Any], models: list[str] | None = None) -> tuple[float, float]:
    """Ring-step latency (s) and hidden fraction minimising the squared efficiency error
    over ``models`` (all by default); a grid search (two bounded parameters)."""
    models = models or list(data["models"])
    a, f = np.meshgrid(_ALPHAS, _FRACTIONS, indexing="ij")
    err = np.zeros_like(a)
    for m, n, v in _targets(data, models):
        c, t0, t1 = _linear(data, m, n)
        t = t0 + a * t1
        err += (c / (c + t - np.minimum(f * t, c)) - v) ** 2
    i, j = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(_ALPHAS[i]), float(_FRACTIONS[j])


def compare(data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per model and GPU count: the paper's efficiency, the calibrated model's,
    the leave-one-model-out model's, and the no-overlap / full-overlap bounds."""
    data = data or load()
    alpha, hidden = calibrate(data)
    rows = []
    loo = {m: calibrate(data, [o for o in data["models"] if o != m]) for m in data["models"]}
    for m, n, v in _targets(data, list(data["models"])):
        a_m, f_m = loo[m]
        rows.append(
            {
                "model": m,
                "gpus": n,
                "paper": v,
                "model_eff": efficiency(data, m, n, alpha, hidden),
                "loo_eff": efficiency(data, m, n, a_m, f_m),
                "no_overlap": efficiency(data, m, n, alpha, 0.0),
                "full_overlap": efficiency(data, m, n, alpha, 1.0),
                "alpha_us": 1e6 * alpha,
                "hidden": hidden,
                "loo_alpha_us": 1e6 * a_m,
                "loo_hidden": f_m,
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`compare`."""
    out = [
        "| model | GPUs | paper | model | leave-one-model-out | no overlap | full overlap |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['gpus']} | {100 * r['paper']:.0f} % | "
            f"{100 * r['model_eff']:.1f} % | {100 * r['loo_eff']:.1f} % | "
            f"{100 * r['no_overlap']:.1f} % | {100 * r['full_overlap']:.1f} % |"
        )
    r0 = rows[0]
    out.append("")
    out.append(
        f"Calibrated on all six: ring-step latency {r0['alpha_us']:.1f} us, "
        f"hidden fraction {r0['hidden']:.2f}."
    )
    return "\n".join(out)
