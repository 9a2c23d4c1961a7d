"""Aggregation of numeric answers (ratings, scores, counts): mean, median, worker bias/variance.

All three estimators take a long table of (task, worker, label) with numeric labels, as a
pandas DataFrame, a mapping of columns, or keyword arrays, and an optional ``gold`` (task →
known value: a mapping, or a table with ``task`` and ``label`` columns). Gold tasks are clamped
to their known value. Results are arrays aligned with ``task_ids_`` (sorted task ids).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = Sequence[Any] | npt.NDArray[Any]

__all__ = ["BiasVarianceAggregator", "MeanAggregator", "MedianAggregator"]


@dataclass(frozen=True)
class _Numeric:
    tasks: IntArray
    workers: IntArray
    values: FloatArray
    task_ids: npt.NDArray[Any]
    worker_ids: npt.NDArray[Any]
    gold_mask: npt.NDArray[np.bool_]
    gold_values: FloatArray

    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def n_workers(self) -> int:
        return len(self.worker_ids)


def _has(data: Any, name: str) -> bool:
    try:
        return name in data
    except TypeError:
        return False


def _read(
    labels: Any,
    gold: Any,
    tasks: ArrayLike | None,
    workers: ArrayLike | None,
    values: ArrayLike | None,
) -> _Numeric:
    if labels is not None:
        tasks, workers, values = labels["task"], labels["worker"], labels["label"]
    if tasks is None or workers is None or values is None:
        raise ValueError("need task, worker and label columns")
    t_arr, w_arr = np.asarray(tasks), np.asarray(workers)
    x = np.asarray(values, dtype=np.float64)
    if not (len(t_arr) == len(w_arr) == len(x)):
        raise ValueError("task, worker and label columns must have the same length")
    if not np.all(np.isfinite(x)):
        raise ValueError("numeric labels must be finite")
    task_ids, t_codes = np.unique(t_arr, return_inverse=True)
    worker_ids, w_codes = np.unique(w_arr, return_inverse=True)
    gold_mask = np.zeros(len(task_ids), dtype=bool)
    gold_values = np.full(len(task_ids), np.nan)
    if gold is not None:
        if _has(gold, "task") and _has(gold, "label"):
            g_tasks, g_vals = np.asarray(gold["task"]), np.asarray(gold["label"], dtype=float)
        else:
            items = list(gold.items())
            g_tasks = np.asarray([k for k, _ in items])
            g_vals = np.asarray([v for _, v in items], dtype=np.float64)
        if len(g_tasks) and len(task_ids):
            pos = np.clip(np.searchsorted(task_ids, g_tasks), 0, len(task_ids) - 1)
            hit = task_ids[pos] == g_tasks  # gold for tasks nobody labelled is irrelevant here
            gold_mask[pos[hit]] = True
            gold_values[pos[hit]] = g_vals[hit]
    return _Numeric(
        tasks=t_codes.astype(np.int64).ravel(),
        workers=w_codes.astype(np.int64).ravel(),
        values=x.ravel(),
        task_ids=task_ids,
        worker_ids=worker_ids,
        gold_mask=gold_mask,
        gold_values=gold_values,
    )


class _TaskEstimator:
    """Shared fit_predict / as_dict plumbing; subclasses implement ``_fit``."""

    task_ids_: npt.NDArray[Any]
    values_: FloatArray
    stderr_: FloatArray
    n_answers_: IntArray

    def fit(
        self,
        labels: Any = None,
        gold: Any = None,
        *,
        tasks: ArrayLike | None = None,
        workers: ArrayLike | None = None,
        values: ArrayLike | None = None,
    ) -> Self:
        data = _read(labels, gold, tasks, workers, values)
        self.task_ids_ = data.task_ids
        self.n_answers_ = np.bincount(data.tasks, minlength=data.n_tasks).astype(np.int64)
        self._fit(data)
        self.values_ = np.where(data.gold_mask, data.gold_values, self.values_)
        self.stderr_ = np.where(data.gold_mask, 0.0, self.stderr_)
        return self

    def fit_predict(self, labels: Any = None, gold: Any = None, **columns: Any) -> FloatArray:
        return self.fit(labels, gold, **columns).values_

    def as_dict(self) -> dict[Any, float]:
        """``{task_id: estimate}`` with plain Python keys and floats."""
        return {
            k.item() if hasattr(k, "item") else k: float(v)
            for k, v in zip(self.task_ids_, self.values_, strict=True)
        }

    def _fit(self, data: _Numeric) -> None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` parameters of this estimator."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def set_params(self, **params: Any) -> Self:
        """Change ``__init__`` parameters; unknown names raise ``ValueError``."""
        known = self.get_params()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _task_sd(data: _Numeric, centre: FloatArray) -> FloatArray:
    n = np.bincount(data.tasks, minlength=data.n_tasks).astype(np.float64)
    ss = np.bincount(data.tasks, (data.values - centre[data.tasks]) ** 2, data.n_tasks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)


class MeanAggregator(_TaskEstimator):
    r"""The plain mean of each task's answers.

    .. math:: \hat t_i = \frac1{n_i}\sum_{w} x_{wi}, \qquad
              \mathrm{se}_i = s_i/\sqrt{n_i}

    (``stderr_`` is NaN for tasks with one answer.) The strongest simple baseline for numeric
    crowd answers (Zheng et al., *Truth Inference in Crowdsourcing: Is the Problem Solved?*,
    PVLDB 2017).

    >>> MeanAggregator().fit(tasks=[1, 1, 2], workers=["a", "b", "a"], values=[1, 3, 5]).values_
    array([2., 5.])
    """

    def _fit(self, data: _Numeric) -> None:
        n = np.bincount(data.tasks, minlength=data.n_tasks).astype(np.float64)
        self.values_ = np.bincount(data.tasks, data.values, data.n_tasks) / n
        self.stderr_ = _task_sd(data, self.values_) / np.sqrt(n)


class MedianAggregator(_TaskEstimator):
    r"""The median of each task's answers; robust to a minority of wild answers.

    .. math:: \hat t_i = \operatorname{median}_w x_{wi}, \qquad
              \mathrm{se}_i \approx \sqrt{\pi/2}\; s_i/\sqrt{n_i}

    (the asymptotic standard error of a normal sample's median).

    >>> MedianAggregator().fit(tasks=[1, 1, 1], workers=["a", "b", "c"], values=[1, 2, 90]).values_
    array([2.])
    """

    def _fit(self, data: _Numeric) -> None:
        order = np.lexsort((data.values, data.tasks))
        sorted_vals = data.values[order]
        n = np.bincount(data.tasks, minlength=data.n_tasks)
        start = np.concatenate(([0], np.cumsum(n)[:-1]))
        # midpoint of the two middle order statistics (they coincide for odd counts)
        lo = sorted_vals[start + (n - 1) // 2]
        hi = sorted_vals[start + n // 2]
        self.values_ = (lo + hi) / 2.0
        self.stderr_ = np.sqrt(np.pi / 2) * _task_sd(data, self.values_) / np.sqrt(n)


class BiasVarianceAggregator(_TaskEstimator):
    r"""Worker bias and noise model for numeric answers, fitted by alternating estimation.

    Each answer is the truth plus the worker's bias plus Gaussian noise of the worker's own
    variance:

    .. math:: x_{wi} = t_i + b_w + \varepsilon_{wi}, \qquad
              \varepsilon_{wi} \sim \mathcal N(0, \sigma^2_w).

    Given :math:`b, \sigma^2`, the truth is the precision-weighted mean
    :math:`\hat t_i = \sum_w (x_{wi}-b_w)\sigma_w^{-2} / \sum_w \sigma_w^{-2}` with standard
    error :math:`(\sum_w \sigma_w^{-2})^{-1/2}`. Given the truth, biases and variances are
    re-estimated from residuals, iterating to a fixed point. Three safeguards matter in
    practice:

    * **Leave-one-out residuals.** Each answer is compared with the estimate made from the
      *other* answers on its task (and the variance of that estimate is subtracted). Plain
      EM compares a worker with an estimate it helped make, so a worker who gets a large
      weight looks ever more accurate and the fit collapses onto a few workers.
    * **Shrinkage.** Variances have a conjugate inverse-gamma prior centred on the pooled
      residual variance, worth ``variance_prior_strength`` pseudo-answers; biases have a
      normal prior centred on 0. Both are estimated from the data by default (empirical
      Bayes: the spread of the per-worker estimates beyond their sampling noise, the
      latter from the residuals' fourth moment so heavy tails are not mistaken for skill);
      ``variance_prior_strength`` / ``bias_prior_strength`` fix them as pseudo-answers at
      the pooled variance / at zero bias. A worker with three answers therefore keeps
      roughly the pooled variance and a small bias, while a crowd whose workers really
      differ (spammers among experts) gets a weak prior.
    * **Answer range.** With ``clip_to_answers`` the estimate stays within the range of its
      task's answers. Bias corrections are linear, but rating scales have floors: when every
      worker answered 0, the truth is 0 whatever their biases are elsewhere.

    Gold tasks are clamped to their values and anchor the biases; without gold, biases are
    centred (answer-weighted mean 0), since a common shift is not identifiable.

    The noise model is the Gaussian annotator model for regression of Raykar et al.,
    *Learning From Crowds*, JMLR 11, 2010, extended with additive biases and
    empirical-Bayes priors.

    When it helps: workers who really differ in care (``bench/numeric.py``, synthetic: MAE
    2.4 against 6.8 for the mean). When it does not: on zheng_emotion (Snow et al. 2008
    emotion scores) the workers' consistency with each other predicts their accuracy
    against the experts poorly, and the plain mean is as good (MAE 12.0 / RMSE 17.8 against
    12.2 / 18.2 here); only a strong prior (``variance_prior_strength=200``, nearly equal
    weights) edges past it (11.9 / 17.8).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.uniform(0, 100, 200)
    >>> tasks = np.repeat(np.arange(200), 5)
    >>> workers = np.tile(np.arange(5), 200)
    >>> noise = np.array([2.0, 2.0, 2.0, 30.0, 30.0])[workers]
    >>> values = truth[tasks] + rng.normal(0.0, noise)
    >>> model = BiasVarianceAggregator(clip_to_answers=False)
    >>> model = model.fit(tasks=tasks, workers=workers, values=values)
    >>> bool(np.abs(model.values_ - truth).mean() < 2.0)
    True
    """

    worker_ids_: npt.NDArray[Any]
    biases_: FloatArray
    variances_: FloatArray
    variance_prior_strength_: float
    n_iter_: int
    converged_: bool

    def __init__(
        self,
        *,
        fit_bias: bool = True,
        variance_prior_strength: float | None = None,
        bias_prior_strength: float | None = None,
        clip_to_answers: bool = True,
        n_iter: int = 100,
        tol: float = 1e-7,
    ) -> None:
        self.fit_bias = fit_bias
        self.variance_prior_strength = variance_prior_strength
        self.bias_prior_strength = bias_prior_strength
        self.clip_to_answers = clip_to_answers
        self.n_iter = n_iter
        self.tol = tol

    def _fit(self, data: _Numeric) -> None:
        t, w, x = data.tasks, data.workers, data.values
        n_t, n_w = data.n_tasks, data.n_workers
        gold = data.gold_mask[t]
        gold_x = np.where(gold, data.gold_values[t], 0.0)
        scale = max(float(np.var(x)), 1e-12)

        bias = np.zeros(n_w)
        var = np.full(n_w, scale, dtype=np.float64)
        estimate = np.zeros(n_t)
        self.n_iter_, self.converged_ = 0, False
        for iteration in range(1, self.n_iter + 1):
            self.n_iter_ = iteration
            prec = 1.0 / var[w]
            y = x - bias[w]
            sum_py = np.bincount(t, prec * y, n_t)
            sum_p = np.bincount(t, prec, n_t)
            # estimate of each answer's task from the other answers, and its variance
            rest_p = sum_p[t] - prec
            usable = gold | (rest_p > 1e-12 * prec)
            safe_p = np.where(usable, rest_p, 1.0)
            loo = np.where(gold, gold_x, (sum_py[t] - prec * y) / safe_p)
            loo_var = np.where(gold, 0.0, 1.0 / safe_p)
            resid = np.where(usable, x - loo, 0.0)
            n_used = np.bincount(w, usable.astype(np.float64), n_w).astype(np.float64)

            if self.fit_bias:
                bias = self._biases(w, resid, loo_var, usable, n_used, var, data)
            sq = np.where(usable, (resid - bias[w]) ** 2 - loo_var, 0.0)
            raw_sum = np.bincount(w, sq, n_w).astype(np.float64)
            pooled = max(float(raw_sum.sum() / max(n_used.sum(), 1.0)), 1e-9 * scale)
            a0 = self.variance_prior_strength
            if a0 is None:
                a0 = _prior_strength(w, sq, raw_sum, n_used, pooled)
            self.variance_prior_strength_ = a0
            var = (raw_sum + a0 * pooled) / np.maximum(n_used + a0, 1e-12)
            # the subtraction of loo_var can go negative for a lucky worker; keep a floor
            var = np.maximum(var, 1e-3 * pooled)

            prec = 1.0 / var[w]
            new = np.bincount(t, prec * (x - bias[w]), n_t) / np.bincount(t, prec, n_t)
            change = float(np.max(np.abs(new - estimate))) if n_t else 0.0
            estimate = new
            if change <= self.tol * np.sqrt(scale):
                self.converged_ = True
                break

        prec = 1.0 / var[w]
        self.values_ = estimate
        self.stderr_ = 1.0 / np.sqrt(np.bincount(t, prec, n_t))
        if self.clip_to_answers and n_t:
            lo = np.full(n_t, np.inf)
            hi = np.full(n_t, -np.inf)
            np.minimum.at(lo, t, x)
            np.maximum.at(hi, t, x)
            self.values_ = np.clip(estimate, lo, hi)
        self.worker_ids_ = data.worker_ids
        self.biases_ = bias
        self.variances_ = var

    def _biases(
        self,
        w: IntArray,
        resid: FloatArray,
        loo_var: FloatArray,
        usable: npt.NDArray[np.bool_],
        n_used: FloatArray,
        var: FloatArray,
        data: _Numeric,
    ) -> FloatArray:
        n_w = data.n_workers
        resid_sum = np.bincount(w, resid, n_w)
        if self.bias_prior_strength is not None:
            bias = resid_sum / np.maximum(n_used + self.bias_prior_strength, 1e-12)
        else:
            safe_n = np.maximum(n_used, 1.0)
            raw = resid_sum / safe_n
            # sampling variance of each raw bias: the worker's noise plus the reference's
            sampling = var + np.bincount(w, np.where(usable, loo_var, 0.0), n_w) / safe_n
            sampling = sampling / safe_n
            seen = n_used > 0
            spread = float(np.var(raw[seen]) - np.mean(sampling[seen])) if seen.sum() > 1 else 0.0
            tau2 = max(spread, 1e-12 * float(np.mean(var)))
            bias = np.where(seen, raw * tau2 / (tau2 + sampling), 0.0)
        if not data.gold_mask.any() and n_used.sum() > 0:
            bias = bias - float(np.average(bias, weights=n_used))
        return bias


def _prior_strength(
    w: IntArray, sq: FloatArray, raw_sum: FloatArray, n_used: FloatArray, pooled: float
) -> float:
    """Pseudo-answers of the inverse-gamma prior on variances, by the method of moments.

    An inverse-gamma prior with mean ``pooled`` and shape alpha has variance
    ``pooled**2 / (alpha - 2)``; worth ``2 * alpha`` answers. The spread of the true variances
    is the spread of the per-worker estimates minus their sampling variance.
    """
    seen = n_used > 0
    if seen.sum() < 2:
        return 1e6
    n = n_used[seen]
    raw = raw_sum[seen] / n
    fourth = np.bincount(w, sq**2, len(n_used))[seen] / n
    sampling = np.maximum(fourth - raw**2, 0.0) / n
    between = float(np.average((raw - pooled) ** 2, weights=n) - np.average(sampling, weights=n))
    if between <= 1e-12 * pooled**2:
        return 1e6  # no detectable difference between workers: pool them
    return float(min(2.0 * (2.0 + pooled**2 / between), 1e6))
