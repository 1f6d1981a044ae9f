"""Data-parallel training step time at N ranks, from measurements.

    step(N) = compute + comm(N) - hidden(N)

* ``compute``: the measured step time of a one-rank ``train.synthetic`` run (no
  reduction at all: forward, backward and the optimizer);
* ``comm(N)``: the gradient bytes split into fusion buffers (Horovod's Tensor Fusion:
  ``ceil(bytes / fusion)`` allreduces, all full but the last), each a ring allreduce
  ``2(N-1) alpha + 2(N-1)/N m beta``. Up to ``gpus_per_node`` ranks the links are the
  intra-node ones; beyond, every ring step crosses a node boundary somewhere, so the
  inter-node latency and bandwidth set its pace;
* ``hidden(N)``: what the overlap mode hides behind the backward pass, *measured*: a
  multi-rank record gives the exposed reduction time ``e(n)`` it saw, and the hidden
  fraction ``f = 1 - e(n) / comm(n)`` is carried to N (never more than the compute
  itself can hide). Without a multi-rank record nothing is assumed hidden (``f = 0``):
  the prediction is then a pessimistic bound and says so.

Throughput is ``N * batch / step(N)`` and the scaling efficiency ``compute / step(N)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcsuite.core import stats
from hpcsuite.predict import comm


@dataclass(frozen=True)
class Network:
    """Alpha-beta parameters of the links (seconds, seconds per byte)."""

    alpha_intra: float
    beta_intra: float
    alpha_inter: float
    beta_inter: float
    source: str = ""

    @staticmethod
    def from_knobs(latency_us: float, bandwidth_gbps: float, source: str = "what-if") -> Network:
        """One latency (microseconds) and bandwidth (GB/s, 1e9 bytes/s) for every link."""
        if latency_us < 0 or bandwidth_gbps <= 0:
            raise ValueError("--latency must be >= 0 and --bandwidth > 0")
        a, b = latency_us * 1e-6, 1.0 / (bandwidth_gbps * 1e9)
        return Network(a, b, a, b, source)

    def with_knobs(self, latency_us: float | None, bandwidth_gbps: float | None) -> Network:
        """These parameters with the inter-node (and intra-node) link replaced by a knob."""
        a_i, b_i, a_x, b_x = self.alpha_intra, self.beta_intra, self.alpha_inter, self.beta_inter
        src = self.source
        if latency_us is not None:
            if latency_us < 0:
                raise ValueError("--latency must be >= 0")
            a_x = latency_us * 1e-6
            src += f"; latency {latency_us:g} us (what-if)"
        if bandwidth_gbps is not None:
            if bandwidth_gbps <= 0:
                raise ValueError("--bandwidth must be > 0")
            b_x = 1.0 / (bandwidth_gbps * 1e9)
            src += f"; bandwidth {bandwidth_gbps:g} GB/s (what-if)"
        return Network(a_i, b_i, a_x, b_x, src.strip("; "))


def fusion_buffers(nbytes: float, fusion: float) -> list[float]:
    """Sizes of the allreduces Tensor Fusion makes of ``nbytes`` of gradients."""
    if nbytes <= 0:
        return []
    if fusion <= 0 or fusion >= nbytes:
        return [float(nbytes)]
    full = int(nbytes // fusion)
    rest = nbytes - full * fusion
    return [float(fusion)] * full + ([float(rest)] if rest > 0 else [])


def comm_time(n: int, nbytes: float, fusion: float, net: Network, gpus_per_node: int) -> float:
    """Time of the step's gradient allreduces on ``n`` ranks (ring, per fusion buffer)."""
    if n <= 1:
        return 0.0
    inter = n > max(gpus_per_node, 1)
    a, b = (net.alpha_inter, net.beta_inter) if inter else (net.alpha_intra, net.beta_intra)
    return sum(comm.allreduce_time(m, n, a, b) for m in fusion_buffers(nbytes, fusion))


@dataclass
class TrainingModel:
    """Inputs of the step-time model, and where each came from."""

    compute: float  # seconds per step on one rank
    compute_low: float
    compute_high: float
    batch: int  # samples per rank per step
    grad_bytes: float
    fusion: float
    gpus_per_node: int
    net: Network
    hidden_fraction: float = 0.0
    #: The links at the ends of their fitted intervals (faster, slower); None: exact.
    net_fast: Network | None = None
    net_slow: Network | None = None
    #: ranks per node -> measured compute slowdown when ranks share a node (CPU ranks
    #: sharing cores, GPUs sharing a host); empty when the one-rank compute holds.
    contention: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def slowdown(self, n: int) -> float:
        """Compute slowdown at ``n`` ranks: the measured one of the nearest measured ranks
        per node not above ``min(n, gpus_per_node)`` (1 without a measurement)."""
        rpn = min(n, max(self.gpus_per_node, 1))
        known = [k for k in self.contention if k <= rpn]
        return self.contention[max(known)] if known else 1.0

    def step(self, n: int, compute: float | None = None, net: Network | None = None) -> float:
        """Predicted step time at ``n`` ranks."""
        c = (self.compute if compute is None else compute) * self.slowdown(n)
        t = comm_time(n, self.grad_bytes, self.fusion, net or self.net, self.gpus_per_node)
        return c + t - min(self.hidden_fraction * t, c)

    def predict(self, ns: Any) -> list[dict[str, float]]:
        """Step time, throughput and efficiency at each ``n``, each with an interval over
        the compute's interval and the links' fitted intervals (every corner: a shorter
        compute lowers the step but also the efficiency)."""
        rows = []
        nets = [self.net_fast or self.net, self.net_slow or self.net]
        for n in (int(v) for v in np.atleast_1d(ns)):
            step = self.step(n)
            corners = [
                (c, self.step(n, c, net))
                for c in (self.compute_low, self.compute_high)
                for net in nets
            ]
            lo, hi = min(t for _, t in corners), max(t for _, t in corners)
            effs = [c / t for c, t in corners if t > 0]
            comm_t = comm_time(n, self.grad_bytes, self.fusion, self.net, self.gpus_per_node)
            rows.append(
                {
                    "ranks": n,
                    "step_s": step,
                    "step_low": lo,
                    "step_high": hi,
                    "slowdown": self.slowdown(n),
                    "comm_s": comm_t,
                    "exposed_s": step - self.compute,
                    "throughput": n * self.batch / step,
                    "throughput_low": n * self.batch / hi,
                    "throughput_high": n * self.batch / lo,
                    "efficiency": self.compute / step,
                    "efficiency_low": min(effs) if effs else math.nan,
                    "efficiency_high": max(effs) if effs else math.nan,
                }
            )
        return rows


def _result(rec: dict[str, Any]) -> dict[str, Any]:
    r = rec.get("result")
    return r if isinstance(r, dict) else {}


def _samples(rec: dict[str, Any]) -> list[float]:
    t = rec.get("times") if isinstance(rec.get("times"), dict) else {}
    out = [float(v) for v in t.get("samples") or [] if isinstance(v, (int, float)) and v > 0]
    return out


def from_records(
    recs: list[dict[str, Any]],
    net: Network,
    *,
    fusion: float | None = None,
    gpus_per_node: int | None = None,
    hidden_fraction: float | None = None,
    net_fast: Network | None = None,
    net_slow: Network | None = None,
) -> TrainingModel:
    """Build the model from the ``train.synthetic`` records of one model and batch size.

    Parameters
    ----------
    recs : list of dict
        Records of one configuration; one must be a one-rank run (the compute).
    net : Network
        Link parameters (fitted from microbenchmarks, or what-if knobs).
    fusion : float, optional
        Fusion buffer bytes [the records' ``fusion_bytes`` when present, else 4 MiB,
        ``train.synthetic``'s default].
    gpus_per_node : int, optional
        Ranks per node [the largest ``ranks_per_node`` in the records, at least 1].
    hidden_fraction : float, optional
        Override the measured overlap (what-if).
    net_fast, net_slow : Network, optional
        The links at the ends of their fitted intervals, for the prediction's interval.

    Raises
    ------
    ValueError
        No one-rank record with timings, or no gradient size.
    """
    ones = [r for r in recs if r.get("ranks") == 1 and _samples(r)]
    if not ones:
        raise ValueError(
            "a training prediction needs a one-rank train.synthetic record (the compute per step)"
        )
    samples = [s for r in ones for s in _samples(r)]
    st = stats.summarize(samples)
    res = _result(ones[0])
    grad = res.get("gradient_bytes")
    if not isinstance(grad, (int, float)) or grad <= 0:
        raise ValueError("the one-rank train.synthetic record has no result.gradient_bytes")
    params = ones[0].get("params") or {}
    batch = int(params.get("batch_size") or 1)
    notes = [
        f"compute {1e3 * st.median:.3g} ms/step: median of {st.n} one-rank steps "
        f"[{1e3 * st.low:.3g}, {1e3 * st.high:.3g}]"
    ]
    if fusion is None:
        rec_f = res.get("fusion_bytes", params.get("fusion_bytes"))
        fusion = float(rec_f) if isinstance(rec_f, (int, float)) and rec_f > 0 else float(4 << 20)
    if gpus_per_node is None:
        gpus_per_node = max([int(r.get("ranks_per_node") or 1) for r in recs] + [1])
    model = TrainingModel(
        compute=st.median,
        compute_low=st.low,
        compute_high=st.high,
        batch=batch,
        grad_bytes=float(grad),
        fusion=float(fusion),
        gpus_per_node=int(gpus_per_node),
        net=net,
        net_fast=net_fast,
        net_slow=net_slow,
        notes=notes,
    )
    if hidden_fraction is not None:
        model.hidden_fraction = min(max(hidden_fraction, 0.0), 1.0)
        notes.append(f"hidden fraction {model.hidden_fraction:.2f} (what-if)")
        return model
    multi = [
        r
        for r in recs
        if isinstance(r.get("ranks"), int)
        and r["ranks"] > 1
        and isinstance(_result(r).get("exposed_reduction_s_per_step"), (int, float))
    ]
    fractions = []
    for r in multi:
        n = int(r["ranks"])
        modelled = comm_time(n, float(grad), float(fusion), net, int(gpus_per_node))
        exposed = float(_result(r)["exposed_reduction_s_per_step"])
        # Compute of this layout: its step minus what it waited for the reduction.
        # Ranks that share a node's cores (or host) compute slower than one rank alone;
        # carrying the one-rank compute to N would then promise too much.
        steps = _samples(r)
        rpn = int(r.get("ranks_per_node") or n)
        c_eff = float(np.median(steps)) - exposed if steps else st.median
        if steps and rpn > 1 and c_eff > 1.2 * st.high:
            model.contention[rpn] = max(model.contention.get(rpn, 1.0), c_eff / st.median)
        if modelled > 0:
            hidden = modelled - exposed
            if hidden > c_eff:  # more hidden than there was compute to hide it behind
                model.warnings.append(
                    f"at {n} ranks the modelled allreduce ({1e3 * modelled:.3g} ms) exceeds the "
                    "measured compute plus exposed reduction: the network parameters "
                    "overstate this allreduce path"
                )
                hidden = c_eff
            fractions.append(min(max(hidden / modelled, 0.0), 1.0))
    for rpn, v in sorted(model.contention.items()):
        model.warnings.append(
            f"with {rpn} ranks per node the measured compute per step is {v:.2f}x the "
            "one-rank compute (ranks sharing a node's cores or host): carried to every "
            f"node of {rpn} ranks"
        )
    if fractions:
        model.hidden_fraction = float(np.median(fractions))
        notes.append(
            f"hidden fraction {model.hidden_fraction:.2f}: measured exposed reduction against the "
            f"modelled one in {len(fractions)} multi-rank record(s) (overlap "
            f"{_result(multi[0]).get('overlap', '?')})"
        )
    else:
        model.warnings.append(
            "no multi-rank train.synthetic record with an exposed reduction time: no overlap "
            "assumed (a pessimistic bound)"
        )
    return model


def network_from_fits(p2p: dict[str, comm.P2PModel]) -> tuple[Network, Network, Network] | None:
    """Link parameters from point-to-point fits (``{"intra-node": .., "inter-node": ..}``):
    the large-message regime of each (training buffers are megabytes), and the same at
    the fast and the slow ends of the fitted intervals. None when there is no usable
    point-to-point fit.

    Why not the allreduce fit: a two-rank ping-pong is never oversubscribed, while the
    allreduce curves of a small node often are (3 or 4 ranks on 2 cores), and their
    effective bandwidth then says more about time-sharing than about the links.
    """
    intra, inter = p2p.get("intra-node"), p2p.get("inter-node")
    if intra is None and inter is None:
        return None

    def ends(m: comm.P2PModel) -> list[tuple[float, float]]:
        """(alpha, beta) of the large regime: fitted, fast end, slow end."""
        r = m.large()
        (a_lo, a_hi), (b_lo, b_hi) = r.interval("alpha"), r.interval("beta")
        return [(r.alpha, r.beta), (a_lo, b_lo), (a_hi, b_hi)]

    src = []
    if intra is not None:
        src.append("intra-node: point-to-point fit")
    if inter is not None:
        src.append("inter-node: point-to-point fit")
    else:
        src.append("no inter-node curve: intra-node parameters used beyond one node")
    i_ends = ends(intra or inter)
    x_ends = ends(inter or intra)
    nets = []
    for (a_i, b_i), (a_x, b_x) in zip(i_ends, x_ends):
        if not all(math.isfinite(v) for v in (a_i, b_i, a_x, b_x)):
            nets.append(None)
            continue
        nets.append(Network(a_i, b_i, a_x, b_x, "; ".join(src)))
    if nets[0] is None or nets[0].beta_intra <= 0 or nets[0].beta_inter <= 0:
        return None
    return nets[0], nets[1] or nets[0], nets[2] or nets[0]
