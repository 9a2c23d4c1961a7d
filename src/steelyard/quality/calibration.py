r"""Calibrated confidences for adaptive redundancy: Bayesian beta calibration fitted on gold.

The Dawid-Skene posterior of :mod:`steelyard.quality.adaptive` is a naive-Bayes product over
labels. Its assumptions fail in one direction: workers' errors are correlated through task
difficulty (a hard item fools many workers at once, and on some items the crowd is simply
wrong), and the confusion matrices are point estimates. Both make the posterior too sure:
replayed on real data (``bench/adaptive_replay.py``), "stop at 0.95" stopped tasks that were
right 69-94 % of the time. Naive Bayes' over-confidence is classical and is fixed *after* the
model by a monotone map fitted on labelled outcomes (Zadrozny & Elkan 2002; Niculescu-Mizil &
Caruana 2005).

The map. With ``r`` the top-label posterior,

    P(correct | r) = sigmoid(a * log(r) - b * log(1 - r) + c),        a, b >= 0,

beta calibration (Kull et al. 2017), fitted on gold tasks: each time a gold task's posterior is
computed (after each of its labels), the pair (r, top label == gold) is a training point.
``a = b = 1, c = 0`` is the identity, so an already calibrated input is left (nearly)
unchanged; ``a = b < 1`` is temperature scaling of the top-label log-odds (Guo et al. 2017);
``b`` near 0 is a *plateau* at ``sigmoid(c)``: whatever the posterior, accuracy tops out
there, which is what real crowds show (dog breeds: about 0.9) and what Platt's (1999) logistic
map on the log-odds cannot express. ``a, b >= 0`` keep the map increasing, so stopping at
``calibrated >= c`` is stopping at ``raw >= t(c)`` with ``t`` increasing in ``c``, and a target
above the plateau is never reached: the task runs to ``max_labels`` instead of over-promising.

Why this and not the alternatives:

* *Isotonic regression* (Zadrozny & Elkan 2002) needs thousands of points to be stable and is
  a step function; the interesting region (targets 0.9-0.99) is where gold points are rarest.
* *A Bayesian treatment of the confusions* (integrating each worker's Dirichlet posterior, Kim
  & Ghahramani 2012) fixes only the estimation-noise part. The difficulty correlation, which
  dominates on real data, is a misspecification no within-model average removes; an
  outcome-fitted map does.
* *Platt / temperature scaling* alone: no plateau (above), so one slope is forced to fit both
  the easy and the never-right items and is wrong for both.

A promise with little gold. The three parameters get a Gaussian prior (``prior_mean``,
``prior_sd``) and the fit is the posterior mode (MAP): with no gold the calibrator is the prior
map, with plenty the data rule. ``Calibrator.pooled`` makes the prior empirical-Bayes from maps
fitted elsewhere (other projects; in the benchmark, the *other* datasets only). With
``moderate=True`` (the default) the sigmoid is averaged over the Laplace posterior of the
parameters (MacKay 1992's moderated output, probit approximation), so high targets become
reachable only once enough gold supports them; the moderated map is replaced by its running
maximum so that it stays monotone.

References: J. Platt, Probabilistic outputs for support vector machines, 1999; B. Zadrozny and
C. Elkan, KDD 2002; A. Niculescu-Mizil and R. Caruana, Predicting good probabilities with
supervised learning, ICML 2005; D. MacKay, The evidence framework applied to classification
networks, Neural Computation 4(5), 1992; C. Guo et al., On calibration of modern neural
networks, ICML 2017; M. Kull, T. Silva Filho and P. Flach, Beta calibration, AISTATS 2017;
H.-C. Kim and Z. Ghahramani, Bayesian classifier combination, AISTATS 2012; M. P. Naeini et al.,
Obtaining well calibrated probabilities using Bayesian binning, AAAI 2015 (ECE).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> raw = rng.uniform(0.5, 0.999, 4000)               # an over-confident model:
    >>> truth = 1 / (1 + np.exp(-0.5 * np.log(raw / (1 - raw))))  # right this often
    >>> correct = rng.random(4000) < truth
    >>> cal = Calibrator().fit(raw, correct)
    >>> [round(float(cal.apply(r)), 2) for r in (0.9, 0.99)]  # truth: 0.75, 0.91
    [0.75, 0.91]
    >>> expected_calibration_error(raw, correct) > 0.1 > expected_calibration_error(
    ...     cal.apply(raw), correct)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from steelyard.quality._data import FloatArray

__all__ = ["Calibrator", "expected_calibration_error", "reliability"]

# Posteriors are floored in adaptive.py, but the calibrator accepts any probability: clip so
# that the logs stay finite (1 - 1e-12 is logit ~27.6, far past every useful target).
EPS = 1e-12
IDENTITY = (1.0, 1.0, 0.0)
_GRID = np.linspace(np.log(EPS) - np.log1p(-EPS), np.log1p(-EPS) - np.log(EPS), 4001)

Triple = tuple[float, float, float]


def _features(p: npt.ArrayLike) -> FloatArray:
    """``[log r, -log(1 - r), 1]`` per confidence (beta calibration's design)."""
    r = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.stack([np.log(r), -np.log1p(-r), np.ones_like(r)], axis=-1)


@dataclass(frozen=True)
class Calibrator:
    """``P(correct | r) = sigmoid(a log r - b log(1 - r) + c)``; see the module docstring.

    Unfitted, it is the prior map (the identity by default). ``fit`` returns a new calibrator;
    ``apply`` maps confidences (scalar or array) into [0, 1], monotonically.
    """

    prior_mean: Triple = IDENTITY
    prior_sd: Triple = (0.5, 0.5, 1.0)
    moderate: bool = True
    params: Triple = field(default=(np.nan, np.nan, np.nan))
    # Laplace covariance of ``params`` (row-major 3x3); the prior's when unfitted.
    covariance: tuple[float, ...] = ()
    n_fit: float = 0.0

    def __post_init__(self) -> None:
        if len(self.prior_mean) != 3 or len(self.prior_sd) != 3:
            raise ValueError("prior_mean and prior_sd need three values (a, b, c)")
        if min(self.prior_sd) <= 0:
            raise ValueError("prior_sd must be positive")
        if min(self.prior_mean[:2]) < 0:
            raise ValueError("prior_mean a and b must be >= 0 (the map must increase)")
        if np.isnan(self.params[0]):
            object.__setattr__(self, "params", tuple(float(v) for v in self.prior_mean))
            cov = np.diag(np.square(np.asarray(self.prior_sd, dtype=np.float64)))
            object.__setattr__(self, "covariance", tuple(cov.ravel().tolist()))

    @classmethod
    def identity(cls) -> Calibrator:
        """A calibrator that returns its input (a = b = 1, c = 0, no uncertainty)."""
        return cls(prior_sd=(1e-9, 1e-9, 1e-9), moderate=False)

    @classmethod
    def pooled(
        cls, fits: Sequence[Calibrator], *, moderate: bool = True, min_sd: float = 0.05
    ) -> Calibrator:
        """Empirical-Bayes prior from maps fitted elsewhere (other projects or datasets).

        Mean and spread of their parameters become this prior's mean and standard deviation,
        so a new project starts from what was true elsewhere, as uncertain as the others
        disagree, and its own gold takes over as it accumulates.
        """
        if len(fits) < 2:
            raise ValueError("need at least two fitted calibrators to pool")
        theta = np.asarray([f.params for f in fits], dtype=np.float64)
        mean = theta.mean(axis=0)
        mean[:2] = np.maximum(mean[:2], 0.0)
        sd = np.maximum(theta.std(axis=0, ddof=1), min_sd)
        return cls(
            prior_mean=(float(mean[0]), float(mean[1]), float(mean[2])),
            prior_sd=(float(sd[0]), float(sd[1]), float(sd[2])),
            moderate=moderate,
        )

    def fit(
        self,
        confidences: npt.ArrayLike,
        correct: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> Calibrator:
        """MAP fit on pairs (confidence shown, was the answer right), optionally weighted."""
        r = np.asarray(confidences, dtype=np.float64).ravel()
        y = np.asarray(correct, dtype=np.float64).ravel()
        w = np.ones_like(r) if weights is None else np.asarray(weights, np.float64).ravel()
        if not (len(r) == len(y) == len(w)):
            raise ValueError("confidences, correct and weights must have the same length")
        if np.any(np.isnan(r)) or np.any((r < 0) | (r > 1)):
            raise ValueError("confidences must be in [0, 1]")
        if np.any((y != 0) & (y != 1)):
            raise ValueError("correct must be booleans (or 0/1)")
        if np.any(w < 0) or np.any(np.isnan(w)):
            raise ValueError("weights must be >= 0")
        x = _features(r)
        mean = np.asarray(self.prior_mean, dtype=np.float64)
        precision = 1.0 / np.square(np.asarray(self.prior_sd, dtype=np.float64))

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            eta = x @ theta
            # -log lik of Bernoulli(sigmoid(eta)), stable for large |eta|.
            nll = -float(np.sum(w * (y * log_expit(eta) + (1 - y) * log_expit(-eta))))
            d = theta - mean
            grad = x.T @ (w * (expit(eta) - y)) + precision * d
            return nll + 0.5 * float(np.sum(precision * d * d)), grad

        # Convex (logistic loss + Gaussian prior); a, b >= 0 keep the map increasing.
        res = minimize(
            objective,
            mean.copy(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None), (0.0, None), (None, None)],
        )
        theta = np.asarray(res.x, dtype=np.float64)
        p = expit(x @ theta)
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(precision)
        return replace(
            self,
            params=(float(theta[0]), float(theta[1]), float(theta[2])),
            covariance=tuple(np.linalg.inv(hessian).ravel().tolist()),
            n_fit=float(w.sum()),
        )

    def _curve(self, p: npt.ArrayLike) -> FloatArray:
        x = _features(p)
        eta = x @ np.asarray(self.params, dtype=np.float64)
        if self.moderate:
            cov = np.asarray(self.covariance, dtype=np.float64).reshape(3, 3)
            var = np.einsum("...i,ij,...j->...", x, cov, x)
            eta = eta / np.sqrt(1.0 + np.pi / 8.0 * np.maximum(var, 0.0))
        return np.asarray(expit(eta), dtype=np.float64)

    @cached_property
    def _monotone_grid(self) -> FloatArray:
        # The moderated map can turn down where the parameters are least known (very high r);
        # its running maximum over a fine logit grid is the smallest increasing map above it.
        return np.maximum.accumulate(self._curve(expit(_GRID)))

    def apply(self, p: npt.ArrayLike) -> FloatArray:
        """Calibrated confidence for each raw confidence in ``p`` (same shape)."""
        if not self.moderate:
            return self._curve(p)
        r = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
        z = np.log(r) - np.log1p(-r)
        return np.asarray(np.interp(z, _GRID, self._monotone_grid), dtype=np.float64)

    def threshold(self, target: float) -> float:
        """Smallest raw confidence whose calibrated value reaches ``target`` (1.0 if none)."""
        if float(self.apply(1.0)) < target:
            return 1.0
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if float(self.apply(mid)) < target else (lo, mid)
        return hi


def reliability(
    confidences: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per equal-width bin of confidence: mean confidence, accuracy, count (empty bins = NaN)."""
    r = np.asarray(confidences, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=np.float64).ravel()
    bins = np.clip((r * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(bins, weights=r, minlength=n_bins) / count
        acc = np.bincount(bins, weights=y, minlength=n_bins) / count
    return conf, acc, count


def expected_calibration_error(
    confidences: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15
) -> float:
    """ECE (Naeini et al. 2015): count-weighted mean |accuracy - confidence| over bins."""
    conf, acc, count = reliability(confidences, correct, n_bins)
    full = count > 0
    if not full.any():
        return float("nan")
    return float(np.sum(count[full] * np.abs(acc[full] - conf[full])) / count.sum())
