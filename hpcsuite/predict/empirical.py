"""Empirical scaling models in Extra-P's performance-model normal form.

Extra-P (Calotoiu et al., SC'13; PyPI ``extrap``) models a measured quantity as a
function of the process count ``p`` in the *performance-model normal form*

    f(p) = c_0 + sum_k c_k * p^(i_k) * log2(p)^(j_k)

with exponents drawn from small sets (``i`` from :data:`EXPONENTS_I`, ``j`` from
:data:`EXPONENTS_J`), fits every hypothesis by least squares and keeps the one that a
selection metric (cross-validated SMAPE when there are enough points) prefers.

This module implements the same form with NumPy/SciPy, because ``pip install extrap``
(4.2.5) pins NumPy to 1.26 and pulls in Qt (PySide6): it would downgrade the NumPy
every rank of hpcsuite imports. Differences from Extra-P, on purpose:

* negative exponents are allowed (``-I``): a strong-scaling time is ``c_0 + c_1 / p``,
  which the positive set cannot express without a negative coefficient;
* coefficients are non-negative (each term is a cost; see :mod:`.fit`) and the fit is
  on relative errors over every timed sample, so replicates give the noise level;
* the interval is honest about the *form* as well as the coefficients: it is the union
  of the prediction intervals of every hypothesis the data cannot reject (within 2 of
  the best AICc). With two rank counts every form passes through both points, and the
  interval at 512 says so by being wide.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from hpcsuite.predict import fit as fitlib

#: Extra-P's default polynomial exponents for one parameter.
EXPONENTS_I = tuple(
    Fraction(v)
    for v in (
        "0",
        "1/4",
        "1/3",
        "1/2",
        "2/3",
        "3/4",
        "4/5",
        "1",
        "5/4",
        "4/3",
        "3/2",
        "5/3",
        "7/4",
        "2",
        "9/4",
        "7/3",
        "5/2",
        "8/3",
        "11/4",
        "3",
    )
)
#: Extra-P's default logarithm exponents.
EXPONENTS_J = (0, 1, 2)
#: Hypotheses within this AICc of the best are kept in the interval (Burnham-Anderson).
PLAUSIBLE_AICC = 2.0
#: Warn above this in-sample SMAPE (percent).
POOR_SMAPE = 10.0


@dataclass(frozen=True)
class Term:
    """One term ``p^i * log2(p)^j``."""

    i: Fraction
    j: int

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        out = p ** float(self.i)
        if self.j:
            out = out * np.log2(p) ** self.j
        return out

    def words(self) -> str:
        """``p^(1/2) * log2(p)`` style text."""
        parts = []
        if self.i == 1:
            parts.append("p")
        elif self.i != 0:
            parts.append(f"p^({self.i})")
        if self.j == 1:
            parts.append("log2(p)")
        elif self.j > 1:
            parts.append(f"log2(p)^{self.j}")
        return " * ".join(parts) or "1"


def candidate_terms(negative: bool = True) -> list[Term]:
    """Every single term of the normal form (``(0, 0)``, the constant, excluded)."""
    signs = (1, -1) if negative else (1,)
    out = []
    for s in signs:
        for i in EXPONENTS_I:
            for j in EXPONENTS_J:
                if i == 0 and (j == 0 or s < 0):
                    continue
                out.append(Term(s * i, j))
    return out


@dataclass
class Hypothesis:
    """A fitted hypothesis: constant plus ``terms``."""

    terms: tuple[Term, ...]
    fit: fitlib.Fit
    cv_smape: float = math.nan

    def design(self, p: np.ndarray) -> np.ndarray:
        """Design matrix: the constant and each term at ``p``."""
        p = np.asarray(p, dtype=np.float64)
        return np.column_stack([np.ones_like(p)] + [t(p) for t in self.terms])

    def predict(
        self, p: Any, confidence: float = fitlib.CONFIDENCE, noise: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value and prediction interval of this hypothesis at ``p``."""
        return self.fit.predict(self.design(np.atleast_1d(p)), confidence, noise)

    def formula(self, unit: str = "s") -> str:
        """The fitted formula in words, e.g. ``0.12 s + 3.4 s * p^(-1)``."""
        parts = []
        for c, t in zip(self.fit.coef, (None,) + self.terms):
            if c == 0 and t is not None:
                continue
            parts.append(f"{c:.4g} {unit}" + ("" if t is None else f" * {t.words()}"))
        return " + ".join(parts)


@dataclass
class ScalingModel:
    """The chosen model of one series, with what a reader needs to judge it."""

    best: Hypothesis
    plausible: list[Hypothesis]
    x: np.ndarray  # distinct rank counts
    medians: np.ndarray
    smape: float  # in-sample, on the medians
    r2_adj: float
    selection: str
    warnings: list[str] = field(default_factory=list)
    factor: Any = None  # oversubscription factor p -> >= 1

    def predict(
        self, p: Any, confidence: float = fitlib.CONFIDENCE
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best model's value and the union of the plausible models' prediction intervals."""
        p = np.atleast_1d(np.asarray(p, dtype=np.float64))
        value, low, high = self.best.predict(p, confidence)
        for h in self.plausible:
            _, lo, hi = h.predict(p, confidence)
            low, high = np.minimum(low, lo), np.maximum(high, hi)
        f = self.factor(p) if self.factor else 1.0
        return value * f, low * f, high * f


def _fit_terms(terms: tuple[Term, ...], p: np.ndarray, y: np.ndarray) -> Hypothesis:
    design = np.column_stack([np.ones_like(p)] + [t(p) for t in terms])
    return Hypothesis(terms, fitlib.nnls_fit(design, y))


def _plain(h: Hypothesis) -> tuple[float, ...]:
    """Tie-break among equally good hypotheses: no logarithm, then exponents near -1 or 1
    (Amdahl's ``c/p`` for a falling time, linear growth for a rising one)."""
    return tuple(v for t in h.terms for v in (t.j, abs(abs(float(t.i)) - 1), float(t.i)))


def fit(
    p: Any,
    samples: list[Any],
    *,
    negative: bool = True,
    max_terms: int | None = None,
    factor: Any = None,
) -> ScalingModel:
    """Fit the normal form to timings at several process counts.

    Parameters
    ----------
    p : sequence of int
        Distinct process counts (``>= 1``).
    samples : list of sequences of float
        The timed samples at each ``p`` (seconds; one value is fine).
    negative : bool
        Also try negative exponents (decreasing terms, for strong scaling).
    max_terms : int, optional
        Terms besides the constant (1 or 2). Default 1, as Extra-P's single-parameter
        default; 2 needs at least six distinct ``p`` to tell the forms apart.
    factor : callable, optional
        ``p -> >= 1``: the slowdown from oversubscription (more ranks than cores);
        timings are divided by it before the fit and predictions multiplied by it.

    Raises
    ------
    ValueError
        Fewer than two distinct process counts, or no positive timing.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.size != len(samples):
        raise ValueError("one list of samples per process count")
    keep = [k for k in range(p.size) if len([v for v in samples[k] if v > 0 and math.isfinite(v)])]
    p = p[keep]
    samples = [
        np.asarray([v for v in samples[k] if v > 0 and math.isfinite(v)], float) for k in keep
    ]
    order = np.argsort(p)
    p, samples = p[order], [samples[k] for k in order]
    if len(set(p.tolist())) != p.size:
        raise ValueError("process counts must be distinct")
    if p.size < 2:
        raise ValueError(
            f"{p.size} process count(s) with timings: a scaling model needs at least 2"
        )
    f = (lambda q: np.asarray(factor(np.asarray(q, float)), float)) if factor else None
    scale = f(p) if f else np.ones_like(p)
    px = np.concatenate([np.full(s.size, pv) for pv, s in zip(p, samples)])
    y = np.concatenate([s / sc for s, sc in zip(samples, scale)])
    med = np.array([float(np.median(s)) for s in samples]) / scale
    if max_terms is None or (max_terms >= 2 and p.size < 6):
        max_terms = 1
    singles = candidate_terms(negative)
    combos: list[tuple[Term, ...]] = [()] + [(t,) for t in singles]
    if max_terms >= 2:
        combos += [
            c for c in itertools.combinations(singles, 2) if c[0].i != c[1].i or c[0].j != c[1].j
        ]
    hyps = []
    for c in combos:
        try:
            hyps.append(_fit_terms(c, px, y))
        except ValueError:  # a term that overflows at these points, or timings too small
            continue
    if not hyps:
        raise ValueError("no hypothesis could be fitted to these timings")
    # Hypotheses NNLS reduced to a subset are duplicates of a simpler one: drop them.
    hyps = [h for h in hyps if h.fit.active[1:].all() or not h.terms]
    use_cv = p.size >= 5
    if use_cv:
        for h in hyps:
            errs = []
            for k in range(p.size):
                mask = px != p[k]
                sub = fitlib.nnls_fit(h.design(px[mask]), y[mask])
                pred = float((h.design(p[k : k + 1]) @ sub.coef)[0])
                errs.append((med[k], pred))
            a = np.array(errs)
            h.cv_smape = fitlib.smape(a[:, 0], a[:, 1])
        best = min(
            hyps, key=lambda h: (round(h.cv_smape, 6), len(h.terms), h.fit.aicc(), _plain(h))
        )
        selection = (
            f"leave-one-out cross-validated SMAPE ({best.cv_smape:.2f} %) "
            f"over {len(hyps)} hypotheses"
        )
    else:
        best = min(hyps, key=lambda h: (round(h.fit.aicc(), 6), len(h.terms), _plain(h)))
        selection = (
            f"AICc over {len(hyps)} hypotheses ({p.size} process counts: too few to cross-validate)"
        )
    ref = best.fit.aicc()
    if math.isfinite(ref):
        plausible = [h for h in hyps if h.fit.aicc() - ref <= PLAUSIBLE_AICC]
    else:  # no replicates and as many points as coefficients: nothing can be rejected
        plausible = [h for h in hyps if len(h.terms) <= len(best.terms)]
    fitted = best.design(p) @ best.fit.coef
    sm = fitlib.smape(med, fitted)
    k = 1 + len(best.terms)
    r2_adj = math.nan
    if p.size > k + 1 and np.var(med) > 0:
        r2 = 1 - float(np.sum((med - fitted) ** 2)) / float(np.sum((med - med.mean()) ** 2))
        r2_adj = 1 - (1 - r2) * (p.size - 1) / (p.size - k - 1)
    model = ScalingModel(
        best=best,
        plausible=plausible,
        x=p,
        medians=med * scale,
        smape=sm,
        r2_adj=r2_adj,
        selection=selection,
        factor=f,
    )
    if p.size < 3:
        model.warnings.append(
            f"only {p.size} process counts: every form fits them; the interval spans "
            f"the {len(plausible)} forms the data cannot reject"
        )
    if sm > POOR_SMAPE:
        model.warnings.append(f"poor fit: SMAPE {sm:.1f} % on the measured medians")
    return model


def extrapolation_warnings(model: ScalingModel, target: float) -> list[str]:
    """Warnings about predicting at ``target`` from this model."""
    out = []
    top = float(model.x.max())
    if target > 4 * top:
        out.append(
            f"extrapolating {target / top:.0f}x beyond the largest measured process count ({top:g})"
        )
    v, lo, hi = model.predict([target])
    if not math.isfinite(float(hi[0])) or (v[0] > 0 and (hi[0] - lo[0]) > 2 * v[0]):
        out.append(
            f"the interval at p={target:g} is wider than the prediction itself: the data cannot "
            "support this extrapolation"
        )
    return out
