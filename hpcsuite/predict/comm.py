"""Communication models fitted to microbenchmark curves.

Point to point: Hockney's model ``t(m) = alpha + beta * m`` (latency ``alpha``, inverse
bandwidth ``beta``), fitted per message-size *regime*: MPI libraries switch protocol
with the size (eager, then rendezvous), so one straight line over 1 B .. 4 MB is wrong
at both ends. The sizes are split where a piecewise fit is better by AICc (at most
three regimes, at least three sizes each). Intra-node and inter-node curves are fitted
separately, from the records' node layout.

Collectives: the standard algorithm models in the alpha-beta-gamma form (Thakur,
Rabenseifner and Gropp, IJHPCA 2005; Chan et al. 2007), ``m`` the message size as the
OSU tests define it (the vector for allreduce and bcast, each rank's block for
allgather, each destination's block for alltoall) and ``L = ceil(log2 p)``:

=============  =====================  ==================  =====================
collective     algorithm              alpha (latency)     beta*m (+ gamma*m)
=============  =====================  ==================  =====================
allreduce      ring                   2(p-1)              2(p-1)/p m (+ (p-1)/p)
allreduce      recursive doubling     L                   L m (+ L)
allreduce      Rabenseifner           2L                  2(p-1)/p m (+ (p-1)/p)
allreduce      binomial tree          2L                  2L m (+ L)
bcast          binomial tree          L                   L m
bcast          scatter + ring         L + p - 1           2(p-1)/p m
bcast          scatter + rec. doubl.  2L                  2(p-1)/p m
allgather      ring                   p - 1               (p-1) m
allgather      recursive doubling     L                   (p-1) m
alltoall       pairwise               p - 1               (p-1) m
alltoall       Bruck                  L                   (p/2) L m
=============  =====================  ==================  =====================

The reduction term ``gamma`` (time per byte reduced) is proportional to the transfer
term in each of these models, so it cannot be fitted apart from ``beta``: the fitted
``beta`` of a reduction is an effective time per byte that includes it. Each algorithm
is fitted (``alpha, beta >= 0``) to every measured ``(p, m)`` of a regime at once.
With curves at two or more rank counts the algorithms differ in how they grow with
``p``, and the one with the best AICc is the one the data supports; with one rank count
every algorithm is a straight line in ``m`` and the data cannot tell them apart: the
choice is then the algorithm whose implied ``alpha`` and ``beta`` are closest to
the point-to-point fit of the same layout, and the output says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hpcsuite.predict import fit as fitlib

Coeffs = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _log(p: np.ndarray) -> np.ndarray:
    return np.ceil(np.log2(np.maximum(p, 1)))


#: collective -> algorithm -> p -> (alpha coefficient, beta coefficient, gamma coefficient)
ALGORITHMS: dict[str, dict[str, Coeffs]] = {
    "allreduce": {
        "ring": lambda p: (2 * (p - 1), 2 * (p - 1) / p, (p - 1) / p),
        "recursive doubling": lambda p: (_log(p), _log(p), _log(p)),
        "Rabenseifner": lambda p: (2 * _log(p), 2 * (p - 1) / p, (p - 1) / p),
        "binomial tree": lambda p: (2 * _log(p), 2 * _log(p), _log(p)),
    },
    "bcast": {
        "binomial tree": lambda p: (_log(p), _log(p), 0 * p),
        "scatter + ring allgather": lambda p: (_log(p) + p - 1, 2 * (p - 1) / p, 0 * p),
        "scatter + recursive doubling allgather": lambda p: (2 * _log(p), 2 * (p - 1) / p, 0 * p),
    },
    "allgather": {
        "ring": lambda p: (p - 1, p - 1, 0 * p),
        "recursive doubling": lambda p: (_log(p), p - 1, 0 * p),
    },
    "alltoall": {
        "pairwise": lambda p: (p - 1, p - 1, 0 * p),
        "Bruck": lambda p: (_log(p), p / 2 * _log(p), 0 * p),
    },
}
#: Point-to-point tests whose figure is a one-way time per message.
P2P_LATENCY = ("latency",)
#: Point-to-point tests whose figure is a bandwidth (MB/s, OSU's 1e6 bytes/s).
P2P_BANDWIDTH = ("bw",)
MAX_REGIMES = 3
MIN_PER_REGIME = 3


@dataclass
class Curve:
    """One microbenchmark curve: sizes and one-message times (seconds)."""

    test: str
    ranks: int
    nodes: int
    ranks_per_node: int
    sizes: np.ndarray
    times: np.ndarray

    @property
    def where(self) -> str:
        """intra-node (one node), inter-node (one rank per node) or mixed."""
        if self.nodes == 1:
            return "intra-node"
        return "inter-node" if self.ranks_per_node == 1 else "mixed"


def curve_from_records(recs: list[dict[str, Any]]) -> Curve | None:
    """A curve from the per-size records of one test at one layout (None when the test is
    not modelled or has fewer than two usable sizes). Uses each size's median over the
    timed iterations (``result.median_us``; ``median_mbps`` for bandwidth tests)."""
    if not recs:
        return None
    test = str(recs[0].get("kernel", "")).removeprefix("microbench.")
    rows = []
    for r in recs:
        res = r.get("result") if isinstance(r.get("result"), dict) else {}
        size = (r.get("params") or {}).get("size", res.get("size"))
        if not isinstance(size, (int, float)) or size <= 0:
            continue
        if test in P2P_BANDWIDTH:
            mbps = res.get("median_mbps", res.get("mbps"))
            t = size / (mbps * 1e6) if isinstance(mbps, (int, float)) and mbps > 0 else None
        else:
            us = res.get("median_us", res.get("avg_us"))
            t = us * 1e-6 if isinstance(us, (int, float)) and us > 0 else None
        if t is not None and math.isfinite(t):
            rows.append((float(size), t))
    if len(rows) < 2 or (test not in ALGORITHMS and test not in P2P_LATENCY + P2P_BANDWIDTH):
        return None
    rows.sort()
    # Repeated runs of one size: the median of their medians.
    sizes = sorted({s for s, _ in rows})
    times = [float(np.median([t for s2, t in rows if s2 == s])) for s in sizes]
    first = recs[0]
    ranks = int(first.get("ranks", 1))
    nodes = int(first.get("nodes") or (first.get("env") or {}).get("nodes") or 1)
    rpn = int(first.get("ranks_per_node") or -(-ranks // nodes))
    return Curve(test, ranks, nodes, rpn, np.array(sizes), np.array(times))


# ----------------------------------------------------------------------------- regimes
def _segments(n: int, k: int) -> list[tuple[int, ...]]:
    """Start indices of ``k`` contiguous segments of ``n`` points, each at least
    :data:`MIN_PER_REGIME` long."""
    out = []

    def rec(start: int, left: int, acc: tuple[int, ...]) -> None:
        """Every way to place ``left`` segments from ``start`` on."""
        if left == 1:
            if n - start >= MIN_PER_REGIME:
                out.append(acc + (start,))
            return
        for nxt in range(start + MIN_PER_REGIME, n - MIN_PER_REGIME * (left - 1) + 1):
            rec(nxt, left - 1, acc + (start,))

    rec(0, k, ())
    return out


def split_regimes(
    sizes: np.ndarray, score: Callable[[np.ndarray], tuple[float, int, int]]
) -> list[tuple[int, int]]:
    """Best split of sorted sizes into at most :data:`MAX_REGIMES` regimes.

    ``score(mask) -> (rss, n, k)`` fits one regime. The split minimises the total BIC
    (each regime's parameters, plus one per breakpoint), a further regime only when
    it lowers the BIC by 10: BIC, not AIC, because a
    spurious regime fitted to noise must not pass for a protocol switch.
    """
    n = sizes.size
    best, best_bic = [(0, n)], math.inf
    for k in range(1, MAX_REGIMES + 1):
        bic_k, bounds_k = math.inf, None
        for starts in _segments(n, k):
            bounds = list(zip(starts, starts[1:] + (n,)))
            rss = nobs = npar = 0.0
            for a, b in bounds:
                mask = np.zeros(n, bool)
                mask[a:b] = True
                r, m, q = score(mask)
                rss, nobs, npar = rss + r, nobs + m, npar + q
            npar += k - 1
            if nobs - npar - 1 <= 0:
                continue
            bic = nobs * math.log(max(rss, 1e-300) / nobs) + npar * math.log(nobs)
            if bic < bic_k:
                bic_k, bounds_k = bic, bounds
        # One more regime must be strongly supported (BIC lower by 10, Kass and
        # Raftery's "very strong"), not merely fit the noise of a few sizes.
        if bounds_k is not None and (best_bic == math.inf or bic_k < best_bic - 10):
            best, best_bic = bounds_k, bic_k
    return best


class _AlphaBeta:
    """Latency and time per byte of a fit whose first two coefficients they are (the
    Hockney regimes and the collective algorithm models alike)."""

    fit: fitlib.Fit

    @property
    def alpha(self) -> float:
        """Latency (s; per step for a collective)."""
        return float(self.fit.coef[0])

    @property
    def beta(self) -> float:
        """Time per byte (s/byte): the inverse bandwidth, for a collective an effective one."""
        return float(self.fit.coef[1])


def _regime_of(regimes: list[Any], m: float) -> Any:
    """The regime that holds ``m`` bytes (the last beyond the largest size)."""
    for r in regimes:
        if m <= r.hi:
            return r
    return regimes[-1]


# ----------------------------------------------------------------------------- Hockney
@dataclass
class Hockney(_AlphaBeta):
    """``t = alpha + beta * m`` over ``lo <= m <= hi`` bytes."""

    lo: float
    hi: float
    fit: fitlib.Fit

    def interval(self, which: str) -> tuple[float, float]:
        """95 % interval of ``"alpha"`` or ``"beta"``."""
        return self.fit.coef_interval(0 if which == "alpha" else 1)

    def bandwidth(self) -> tuple[float, float, float]:
        """Asymptotic bandwidth ``1/beta`` (bytes/s) and its interval."""
        lo, hi = self.interval("beta")
        inv = lambda b: math.inf if b <= 0 else 1.0 / b  # noqa: E731
        return inv(self.beta), inv(hi), inv(lo)

    def words(self) -> str:
        """The regime in words, with intervals."""
        a_lo, a_hi = self.interval("alpha")
        bw, bw_lo, bw_hi = self.bandwidth()
        head = (
            f"{_bytes(self.lo)}..{_bytes(self.hi)}: latency {1e6 * self.alpha:.3g} us "
            f"[{1e6 * a_lo:.3g}, {1e6 * a_hi:.3g}], "
        )
        if self.beta <= 0:
            return head + "bandwidth not resolved (the time does not grow with the size here)"
        hi = "unbounded" if not math.isfinite(bw_hi) else f"{bw_hi / 1e9:.3g}"
        return head + f"bandwidth {bw / 1e9:.3g} GB/s [{bw_lo / 1e9:.3g}, {hi}]"


def _bytes(n: float) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


@dataclass
class P2PModel:
    """Hockney fits of one point-to-point curve, one per regime."""

    curve: Curve
    regimes: list[Hockney]

    def regime(self, m: float) -> Hockney:
        """The regime that holds ``m`` bytes (the last beyond the largest size)."""
        return _regime_of(self.regimes, m)

    def time(self, m: float) -> float:
        """Model time of one ``m``-byte message."""
        r = self.regime(m)
        return r.alpha + r.beta * m

    def large(self) -> Hockney:
        """The largest-message regime: the one that sets the bandwidth."""
        return self.regimes[-1]

    def small(self) -> Hockney:
        """The smallest-message regime: the one that sets the latency."""
        return self.regimes[0]


def fit_hockney(curve: Curve) -> P2PModel:
    """Piecewise Hockney fit of a point-to-point curve (see the module docstring)."""
    m, t = curve.sizes, curve.times
    X = np.column_stack([np.ones_like(m), m])

    def score(mask: np.ndarray) -> tuple[float, int, int]:
        """RSS, points and parameters of one regime's fit."""
        f = fitlib.nnls_fit(X[mask], t[mask])
        return f.rss, int(mask.sum()), 2

    if m.size >= 2 * MIN_PER_REGIME:
        bounds = split_regimes(m, score)
    else:
        bounds = [(0, m.size)]
    regimes = [
        Hockney(float(m[a]), float(m[b - 1]), fitlib.nnls_fit(X[a:b], t[a:b])) for a, b in bounds
    ]
    return P2PModel(curve, regimes)


# ----------------------------------------------------------------------------- collectives
@dataclass
class AlgoFit(_AlphaBeta):
    """One algorithm fitted to one regime of a collective."""

    algorithm: str
    fit: fitlib.Fit
    use_gamma: bool

    def design(self, coll: str, p: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Design matrix of this algorithm at ranks ``p`` and sizes ``m``."""
        a, b, g = ALGORITHMS[coll][self.algorithm](np.asarray(p, float))
        cols = [a * np.ones_like(m), b * m]
        if self.use_gamma:
            cols.append(g * m)
        return np.column_stack(cols)

    @property
    def gamma(self) -> float:
        """Reduction time per byte when fitted apart (never, see the module docstring)."""
        return float(self.fit.coef[2]) if self.use_gamma else 0.0


@dataclass
class CollectiveRegime:
    """The algorithm chosen for ``lo <= m <= hi`` and its competitors."""

    lo: float
    hi: float
    chosen: AlgoFit
    candidates: list[AlgoFit]
    basis: str


@dataclass
class CollectiveModel:
    """Per-regime algorithm models of one collective over one or more curves."""

    collective: str
    curves: list[Curve]
    regimes: list[CollectiveRegime]
    warnings: list[str] = field(default_factory=list)

    def regime(self, m: float) -> CollectiveRegime:
        """The regime that holds ``m`` bytes (the last beyond the largest size)."""
        return _regime_of(self.regimes, m)

    def predict(
        self,
        p: float,
        m: float,
        confidence: float = fitlib.CONFIDENCE,
        alpha_beta: tuple[float, float] | None = None,
    ) -> tuple[float, float, float]:
        """Time of one collective of ``m`` bytes on ``p`` ranks, with its prediction
        interval; ``alpha_beta`` replaces the fitted latency and inverse bandwidth (a
        what-if, or the inter-node point-to-point values) and then has no interval."""
        r = self.regime(m)
        row = r.chosen.design(self.collective, np.array([float(p)]), np.array([float(m)]))
        if alpha_beta is not None:
            coef = r.chosen.fit.coef.copy()
            coef[0], coef[1] = alpha_beta
            v = float((row @ coef)[0])
            return v, v, v
        v, lo, hi = r.chosen.fit.predict(row, confidence)
        return float(v[0]), float(lo[0]), float(hi[0])


def fit_collective(
    collective: str, curves: list[Curve], p2p: P2PModel | None = None
) -> CollectiveModel:
    """Fit every algorithm of ``collective`` per size regime to ``curves`` (one per rank
    count, same node layout kind) and choose, per regime, the one the data supports.

    Raises
    ------
    ValueError
        Unknown collective, or no curve.
    """
    if collective not in ALGORITHMS:
        raise ValueError(f"no algorithm models for {collective!r}; known: {', '.join(ALGORITHMS)}")
    if not curves:
        raise ValueError("no curves to fit")
    ps = np.concatenate([np.full(c.sizes.size, float(c.ranks)) for c in curves])
    ms = np.concatenate([c.sizes for c in curves])
    ts = np.concatenate([c.times for c in curves])
    order = np.lexsort((ps, ms))
    ps, ms, ts = ps[order], ms[order], ts[order]
    several = len({c.ranks for c in curves}) >= 2
    # In every model above the gamma coefficient is proportional to the beta one, so
    # the reduction cost per byte cannot be told from the transfer cost: it is folded
    # into beta (an effective time per byte), and said so in the output.
    use_gamma = False
    warnings = []
    if not several:
        warnings.append(
            f"one rank count ({curves[0].ranks}): every algorithm is a straight line in the "
            "message size there, so the data cannot tell them apart"
            + (
                "; chosen by agreement with the point-to-point fit"
                if p2p
                else "; no point-to-point curve of this layout to choose by: ring/binomial assumed"
            )
        )

    def algo_fit(name: str, mask: np.ndarray) -> AlgoFit:
        """One algorithm fitted to the points in ``mask``."""
        dummy = AlgoFit(name, None, use_gamma)  # type: ignore[arg-type]
        X = dummy.design(collective, ps[mask], ms[mask])
        dummy.fit = fitlib.nnls_fit(X, ts[mask])
        return dummy

    # Regimes over distinct sizes (every rank count shares the library's size thresholds).
    sizes = np.unique(ms)

    def score(mask_sizes: np.ndarray) -> tuple[float, int, int]:
        """RSS of the best algorithm over the sizes in ``mask_sizes``."""
        mask = np.isin(ms, sizes[mask_sizes])
        fits = [algo_fit(a, mask) for a in ALGORITHMS[collective]]
        best = min(fits, key=lambda f: f.fit.rss)
        return best.fit.rss, int(mask.sum()), 2

    bounds = split_regimes(sizes, score) if sizes.size >= 2 * MIN_PER_REGIME else [(0, sizes.size)]
    regimes = []
    for a, b in bounds:
        lo, hi = float(sizes[a]), float(sizes[b - 1])
        mask = (ms >= lo) & (ms <= hi)
        fits = [algo_fit(name, mask) for name in ALGORITHMS[collective]]
        if several:
            chosen = min(fits, key=lambda f: (round(f.fit.aicc(), 9), f.fit.rss))
            basis = f"best AICc over rank counts {sorted({int(v) for v in ps[mask]})}"
        elif p2p is not None:
            ref = p2p.regime(math.sqrt(lo * hi))

            def distance(f: AlgoFit) -> float:
                """Squared log distance of implied alpha, beta from point to point."""
                d = 0.0
                for mine, theirs in ((f.alpha, ref.alpha), (f.beta, ref.beta)):
                    if mine > 0 and theirs > 0:
                        d += math.log(mine / theirs) ** 2
                    elif mine > 0 or theirs > 0:
                        d += 25.0  # one is zero: far apart
                return d

            chosen = min(fits, key=distance)
            basis = "closest alpha and beta to the point-to-point fit (one rank count)"
        else:
            chosen = fits[0]
            basis = "first algorithm (one rank count, no point-to-point fit)"
        regimes.append(CollectiveRegime(lo, hi, chosen, fits, basis))
    return CollectiveModel(collective, curves, regimes, warnings)


def allreduce_time(
    nbytes: float, n: int, alpha: float, beta: float, gamma: float = 0.0, algorithm: str = "ring"
) -> float:
    """Model time of one allreduce of ``nbytes`` on ``n`` ranks (0 for one rank)."""
    if n <= 1 or nbytes <= 0:
        return 0.0
    a, b, g = (float(v) for v in ALGORITHMS["allreduce"][algorithm](np.array(float(n))))
    return a * alpha + (b * beta + g * gamma) * nbytes
