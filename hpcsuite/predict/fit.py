"""Non-negative least squares with relative errors, parameter intervals and prediction
intervals: the one fitting engine under the communication, scaling and training models.

Why relative errors
-------------------
Timings span decades (a 1-byte allreduce and a 1 MB one; one rank and 64), and their
scatter grows with the time itself. Fitting ``t`` with weights ``1 / t`` makes every
point count by its *relative* misfit, so the small sizes are not drowned by the large
ones, and the residual spread ``s`` is a relative error: a prediction ``y`` has noise
``s * y``.

Why non-negative coefficients
-----------------------------
Every term of these models is a cost (a latency, a time per byte, a share of work that
grows or shrinks with the ranks). A negative coefficient fits noise and extrapolates to
negative times; :func:`scipy.optimize.nnls` keeps each term a cost, and a term pushed
to zero is reported as not supported by the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Coverage of every interval this package reports unless told otherwise.
CONFIDENCE = 0.95


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t quantile; infinite without residual degrees of freedom."""
    if dof < 1:
        return math.inf
    from scipy import stats as sstats

    return float(sstats.t.ppf(0.5 + confidence / 2, dof))


@dataclass
class Fit:
    """A fitted linear model ``y = X @ coef`` (relative errors, ``coef >= 0``).

    Attributes
    ----------
    coef : ndarray
        Coefficients; zero where NNLS dropped a term.
    cov : ndarray
        Covariance of the coefficients (zero rows/columns for dropped terms); NaN when
        there are no residual degrees of freedom.
    dof : int
        Observations minus active coefficients.
    s : float
        Relative residual standard deviation (NaN without degrees of freedom).
    rss : float
        Sum of squared relative residuals.
    n : int
        Observations.
    """

    coef: np.ndarray
    cov: np.ndarray
    dof: int
    s: float
    rss: float
    n: int
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def k(self) -> int:
        """Number of active (non-zero) coefficients."""
        return int(np.count_nonzero(self.active))

    def aicc(self) -> float:
        """Corrected Akaike information criterion of the relative residuals (Gaussian);
        ``inf`` when it is undefined (too few observations for the parameters)."""
        n, k = self.n, max(self.k, 1)
        if n - k - 1 <= 0:
            return math.inf
        rss = max(self.rss, 1e-300 * n)
        return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)

    def coef_interval(self, i: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """Student-t interval of coefficient ``i`` (clipped at zero: a cost)."""
        c = float(self.coef[i])
        if not self.active[i]:
            return 0.0, 0.0
        var = float(self.cov[i, i])
        if not math.isfinite(var):
            return -math.inf, math.inf
        half = t_quantile(self.dof, confidence) * math.sqrt(max(var, 0.0))
        return max(c - half, 0.0), c + half

    def predict(
        self, rows: np.ndarray, confidence: float = CONFIDENCE, noise: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction and its interval at design rows.

        Parameters
        ----------
        rows : ndarray, shape (m, p)
            Design rows (the model's terms evaluated at the new points).
        noise : bool
            True: a prediction interval (where one new measurement will fall: parameter
            uncertainty plus the relative scatter of a measurement); False: the
            confidence interval of the curve itself.

        Returns
        -------
        (value, low, high) : ndarrays
            ``low`` is never below zero; both bounds are infinite without degrees of
            freedom (the model then passes through the points and says nothing of its
            own error).
        """
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        y = rows @ self.coef
        if self.dof < 1 or not math.isfinite(self.s):
            return y, np.zeros_like(y), np.full_like(y, math.inf)
        var = np.einsum("ij,jk,ik->i", rows, self.cov, rows)
        if noise:
            var = var + (self.s * y) ** 2
        half = t_quantile(self.dof, confidence) * np.sqrt(np.maximum(var, 0.0))
        return y, np.maximum(y - half, 0.0), y + half


def nnls_fit(X: np.ndarray, y: np.ndarray, *, relative: bool = True) -> Fit:
    """Fit ``y ~ X @ coef`` with ``coef >= 0`` by NNLS on relative (or absolute) residuals.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix: each column one term evaluated at each observation.
    y : ndarray, shape (n,)
        Positive observations (times).
    relative : bool
        Weight each row by ``1 / y`` (relative errors; see the module docstring).

    Raises
    ------
    ValueError
        When shapes disagree, or a value is not finite or (relative) not positive.
    """
    from scipy.optimize import nnls

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != y.size or y.size == 0:
        raise ValueError(f"design {X.shape} does not match {y.size} observations")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("non-finite value in a fit")
    if relative and np.any(y <= 0):
        raise ValueError("relative fits need positive observations")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        w = 1.0 / y if relative else np.ones_like(y)
        Xw, yw = X * w[:, None], y * w
    if not np.all(np.isfinite(Xw)):
        raise ValueError("a value is too small or a term too large to weigh")
    # Scale columns to unit norm: NNLS and the covariance are then well conditioned
    # even when one term is a latency (1e-6) and another bytes times 1e-10.
    peak = np.max(np.abs(Xw), axis=0)
    peak[peak == 0] = 1.0
    norms = peak * np.linalg.norm(Xw / peak, axis=0)  # no overflow for huge terms
    norms[norms == 0] = 1.0
    if not np.all(np.isfinite(norms)):
        raise ValueError("a term overflows at these points")
    coef_s, _ = nnls(Xw / norms, yw, maxiter=50 * X.shape[1] + 100)
    coef = coef_s / norms
    active = coef > 0
    resid = yw - Xw @ coef
    rss = float(resid @ resid)
    n, k = y.size, int(active.sum())
    dof = n - k
    p = X.shape[1]
    cov = np.full((p, p), math.nan)
    s = math.nan
    if dof >= 1:
        s = math.sqrt(rss / dof)
        cov = np.zeros((p, p))
        if k:
            A = Xw[:, active] / norms[active]
            try:
                inv = np.linalg.pinv(A.T @ A)
            except np.linalg.LinAlgError:
                inv = np.full((k, k), math.inf)
            # Extreme scales (a term of 1e300 against one of 1e-300) overflow here: the
            # interval is then unbounded (inf), which is what the data supports.
            with np.errstate(all="ignore"):
                sub = inv * s * s / np.outer(norms[active], norms[active])
            cov[np.ix_(active, active)] = np.where(np.isnan(sub), math.inf, sub)
    return Fit(coef=coef, cov=cov, dof=dof, s=s, rss=rss, n=n, active=active)


def smape(measured: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric mean absolute percentage error in percent (Extra-P's selection metric)."""
    a, b = np.asarray(measured, float), np.asarray(predicted, float)
    den = np.abs(a) + np.abs(b)
    ok = den > 0
    if not np.any(ok):
        return 0.0
    return float(100.0 * np.mean(2.0 * np.abs(a - b)[ok] / den[ok]))
