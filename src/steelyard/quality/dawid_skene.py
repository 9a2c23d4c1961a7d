"""Dawid-Skene: one full confusion matrix per worker, fitted by EM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._base import (
    CategoricalAggregator,
    ConfusionModel,
    Design,
    check_iter,
    col_sum,
    expected_accuracy,
    posterior,
)
from ._data import CodedLabels, FloatArray, IntArray
from .majority_vote import majority_probas

__all__ = ["DawidSkene", "run_em"]

EPS = 1e-10

MStep = Callable[[FloatArray], tuple[FloatArray, FloatArray]]
"""probas -> (log confusions (W, K, K), log class prior (K,))."""


def run_em(
    design: Design,
    probas: FloatArray,
    gold: IntArray,
    m_step: MStep,
    n_iter: int,
    tol: float,
    n_labels: float,
) -> tuple[FloatArray, int, bool]:
    """EM over confusion-matrix models: alternate ``m_step`` and the sparse E-step.

    Stops when the log-likelihood of the data, per label, changes by less than ``tol`` between
    two iterations, or after ``n_iter`` iterations.  Returns (probas, iterations, converged).
    """
    previous = -np.inf
    scale = max(n_labels, 1e-300)
    for it in range(1, n_iter + 1):
        log_conf, log_prior = m_step(probas)
        joint = design.loglik(log_conf)
        joint += log_prior
        probas, loglik = posterior(joint, gold)
        if abs(loglik - previous) / scale < tol:
            return probas, it, True
        previous = loglik
    return probas, n_iter, n_iter == 0


class DawidSkene(ConfusionModel, CategoricalAggregator):
    r"""**Dawid-Skene**: every worker has a full confusion matrix, fitted by EM.

    True classes $z_t \sim \mathrm{Cat}(p)$; worker $w$ labels a task of class $k$ with $l$
    with probability $\pi^w_{kl}$.  EM alternates

    * E-step: $P(z_t = k) \propto p_k \prod_{i: t_i = t} (\pi^{w_i}_{k y_i})^{v_i}$
      (in log space: one sparse product of the task x (worker, label) count matrix with
      $\log \pi$);
    * M-step: $\pi^w_{kl} \propto \sum_{i: w_i = w, y_i = l} v_i P(z_{t_i} = k)$ (entries
      clipped at $10^{-10}$), $p_k = \frac1T \sum_t P(z_t = k)$,

    starting from the majority-vote shares, until the log-likelihood per label changes by less
    than ``tol``.
    Gold tasks are clamped to their answer in every E-step.  ``skills_`` is
    $\sum_k p_k \pi^w_{kk}$.  Duplicate (worker, task) rows count as separate labels.

    A. P. Dawid and A. M. Skene. Maximum Likelihood Estimation of Observer Error-Rates Using the
    EM Algorithm. *Journal of the Royal Statistical Society C* 28(1), 20-28, 1979.
    <https://doi.org/10.2307/2346806>

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"),
        ...                    "label": [0, 0, 1, 1, 1, 0]})
        >>> ds = DawidSkene().fit(df)
        >>> ds.labels_.tolist(), ds.confusions_.shape
        ([0, 1], (3, 2, 2))
    """

    def __init__(
        self, n_iter: int = 100, tol: float = 1e-5, random_state: int | None = None
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state

    def _m_step(self, design: Design, probas: FloatArray) -> tuple[FloatArray, FloatArray]:
        counts = np.maximum(design.counts(probas), EPS)
        conf = counts / counts.sum(axis=2, keepdims=True)
        priors = np.maximum(col_sum(probas) / len(probas), EPS)
        return conf, priors / priors.sum()

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        check_iter(self.n_iter, self.tol)
        design = Design.build(data)

        def m_step(p: FloatArray) -> tuple[FloatArray, FloatArray]:
            conf, priors = self._m_step(design, p)
            return np.log(conf), np.log(priors)

        probas0 = majority_probas(data, gold)
        probas, self.n_iter_, self.converged_ = run_em(
            design, probas0, gold, m_step, self.n_iter, self.tol, float(data.weights.sum())
        )
        self.confusions_, self.priors_ = self._m_step(design, probas)
        self.skills_ = expected_accuracy(self.confusions_, self.priors_)
        return probas
