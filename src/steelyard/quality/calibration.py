r"""Calibrated confidences for adaptive redundancy: Bayesian beta calibration fitted on gold.

The Dawid-Skene posterior of :mod:`steelyard.quality.adaptive` is a naive-Bayes product over
labels. Its assumptions fail in one direction: workers' errors are correlated through task
difficulty (a hard item fools many workers at once, and on some items the crowd is simply
wrong), and the confusion matrices are point estimates. Both make the posterior too sure:
replayed on real data (``bench/adaptive_replay.py``), "stop at 0.95" stopped tasks that were
right 69-96 % of the time. Naive Bayes' over-confidence is classical and is fixed *after* the
model by a monotone map fitted on labelled outcomes (Zadrozny & Elkan 2002; Niculescu-Mizil &
Caruana 2005).

The map. With ``r`` the top-label posterior,

    P(correct | r) = sigmoid(a * log(r) - b * log(1 - r) + c),        a, b >= 0,

beta calibration (Kull et al. 2017), fitted on gold tasks. A stopping rule promises something
about the tasks it stops, so the training pairs are built the same way (``stopping_pairs``):
for each threshold ``t`` a gold task reaches, the pair (``t``, was the answer right at the
first label where the posterior reached ``t``). Plain per-prefix pairs (r after each label,
right or not) estimate P(right | r) instead, which need not equal P(right | stopped on reaching
r): the tasks that reach a threshold late, after disagreement, tend to be the hard ones.
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
fitted elsewhere (other projects; in the benchmark, the *other* datasets only). ``apply``
returns a *lower credible bound* (``credibility``, default 0.9) on P(correct | r) under the
Laplace posterior of the parameters, not the point map (``point``): a new project that happens
to be worse than the ones its prior came from is exactly the case a promise must survive, and
with a handful of gold tasks only the bound protects it. As gold accumulates the posterior
narrows and the bound closes on the point map. The bound is replaced by its running maximum
over r so that it stays monotone (valid because accuracy does not fall as r rises).

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
    >>> [round(float(cal.point(r)), 2) for r in (0.9, 0.99)]  # truth: 0.75, 0.91
    [0.75, 0.91]
    >>> [round(float(cal.apply(r)), 2) for r in (0.9, 0.99)]  # the promise: a lower bound
    [0.74, 0.89]
    >>> expected_calibration_error(raw, correct) > 0.1 > expected_calibration_error(
    ...     cal.point(raw), correct)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_expit, ndtri

from steelyard.quality._data import FloatArray

__all__ = ["Calibrator", "expected_calibration_error", "reliability", "stopping_pairs"]

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
    credibility: float | None = 0.9
    params: Triple = field(default=(np.nan, np.nan, np.nan))
    # Laplace covariance of ``params`` (row-major 3x3); the prior's when unfitted.
    covariance: tuple[float, ...] = ()
    n_fit: float = 0.0

    def __post_init__(self) -> None:
        if len(self.prior_mean) != 3 or len(self.prior_sd) != 3:
            raise ValueError("prior_mean and prior_sd need three values (a, b, c)")
        if min(self.prior_sd) <= 0:
            raise ValueError("prior_sd must be positive")
        if self.credibility is not None and not 0.5 <= self.credibility < 1.0:
            raise ValueError("credibility must be in [0.5, 1) or None")
        if min(self.prior_mean[:2]) < 0:
            raise ValueError("prior_mean a and b must be >= 0 (the map must increase)")
        if np.isnan(self.params[0]):
            object.__setattr__(self, "params", tuple(float(v) for v in self.prior_mean))
            cov = np.diag(np.square(np.asarray(self.prior_sd, dtype=np.float64)))
            object.__setattr__(self, "covariance", tuple(cov.ravel().tolist()))

    @classmethod
    def identity(cls) -> Calibrator:
        """A calibrator that returns its input (a = b = 1, c = 0, no uncertainty)."""
        return cls(prior_sd=(1e-9, 1e-9, 1e-9), credibility=None)

    @classmethod
    def pooled(
        cls,
        fits: Sequence[Calibrator],
        *,
        credibility: float | None = 0.9,
        min_sd: float = 0.05,
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
            credibility=credibility,
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

        def objective(theta: FloatArray) -> float:
            eta = x @ theta
            # -log lik of Bernoulli(sigmoid(eta)), stable for large |eta|.
            nll = -float(np.sum(w * (y * log_expit(eta) + (1 - y) * log_expit(-eta))))
            d = theta - mean
            return nll + 0.5 * float(np.sum(precision * d * d))

        # Convex (logistic loss + Gaussian prior) in three parameters: projected Newton with
        # a, b >= 0 (the map must increase) and a backtracking line search.
        lower = np.array([0.0, 0.0, -np.inf])
        theta = mean.copy()
        value = objective(theta)
        for _ in range(100):
            p = expit(x @ theta)
            grad = x.T @ (w * (p - y)) + precision * (theta - mean)
            hess = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(precision)
            free = ~((theta <= lower) & (grad > 0))  # at a bound and pushed against it
            step = np.zeros(3)
            step[free] = np.linalg.solve(hess[np.ix_(free, free)], grad[free])
            t = 1.0
            while True:
                cand = np.maximum(theta - t * step, lower)
                cand_value = objective(cand)
                if cand_value <= value or t < 1e-10:
                    break
                t *= 0.5
            if cand_value > value:
                break  # no descent left at machine precision
            done = value - cand_value < 1e-12 * max(1.0, abs(value))
            theta, value = cand, cand_value
            if done:
                break
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
        if self.credibility is not None:
            cov = np.asarray(self.covariance, dtype=np.float64).reshape(3, 3)
            var = np.einsum("...i,ij,...j->...", x, cov, x)
            eta = eta - ndtri(self.credibility) * np.sqrt(np.maximum(var, 0.0))
        return np.asarray(expit(eta), dtype=np.float64)

    @cached_property
    def _monotone_grid(self) -> FloatArray:
        # The bound can turn down where the parameters are least known (very high r). Accuracy
        # itself does not fall as r rises, so the bound at a lower r still holds there: the
        # running maximum over a fine logit grid is a valid bound and increasing.
        return np.maximum.accumulate(self._curve(expit(_GRID)))

    def point(self, p: npt.ArrayLike) -> FloatArray:
        """The fitted map itself (posterior mode), without the credibility margin."""
        return replace(self, credibility=None).apply(p)

    def apply(self, p: npt.ArrayLike) -> FloatArray:
        """Calibrated confidence for each raw confidence in ``p`` (same shape).

        With ``credibility`` set, the lower credible bound on P(correct); else the fitted map.
        """
        if self.credibility is None:
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


# Thresholds at which stopping is simulated on gold: logit 0 .. 14 (r = 0.5 .. 0.999999).
STOP_GRID = expit(np.arange(0.0, 14.01, 0.25))


def stopping_pairs(
    confidences: npt.ArrayLike,
    correct: npt.ArrayLike,
    tasks: npt.ArrayLike,
    *,
    grid: npt.ArrayLike = STOP_GRID,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Training pairs for *stopping* calibration from gold tasks' label-by-label posteriors.

    ``confidences[i]``/``correct[i]`` are the top-label posterior after a prefix of task
    ``tasks[i]`` and whether its answer was right; rows of a task in label order. For every
    threshold ``t`` in ``grid`` and every task whose confidence reaches ``t``, one pair (``t``,
    right at the *first* prefix reaching ``t``). A calibrator fitted on these estimates
    P(right | the task stopped on reaching t), which is the promise a stopping rule makes;
    fitted on all prefixes it would estimate P(right | r), which differs because tasks that
    reach a threshold late (after disagreement) are the hard ones (optional stopping).
    A task's pairs weigh one in all: they share one truth and one label sequence, so the task,
    not the pair, is the independent observation (weighing each pair fully made four lucky
    gold tasks look like forty and collapsed the bound on zheng_duck).
    """
    r = np.asarray(confidences, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=bool).ravel()
    t = np.asarray(tasks).ravel()
    g = np.asarray(grid, dtype=np.float64).ravel()
    if not (len(r) == len(y) == len(t)):
        raise ValueError("confidences, correct and tasks must have the same length")
    if len(r) == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    new = np.r_[True, t[1:] != t[:-1]]
    group = np.cumsum(new) - 1
    start = np.flatnonzero(new)
    # Running maximum within each task: the first prefix reaching t is where it passes t.
    offset = group * 2.0  # confidences are in [0, 1]: shifting by task keeps tasks apart
    running = np.maximum.accumulate(r + offset)
    # For each (task, threshold): first row with running >= threshold, if any.
    hit = running[:, None] >= g[None, :] + offset[:, None]  # (rows, grid)
    first_hit = np.where(hit, np.arange(len(r))[:, None], len(r))
    first = np.minimum.reduceat(first_hit, start, axis=0)  # (tasks, grid)
    reached = first < len(r)
    task_of, grid_of = np.nonzero(reached)
    rows = first[task_of, grid_of]
    per_task = np.bincount(task_of, minlength=len(start)).astype(np.float64)
    weight = 1.0 / per_task[task_of]
    return g[grid_of], y[rows].astype(np.float64), weight


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
