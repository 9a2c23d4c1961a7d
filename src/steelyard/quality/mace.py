"""MACE: multi-annotator competence estimation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import digamma

from ._base import (
    CategoricalAggregator,
    ConfusionModel,
    Design,
    check_iter,
    expected_accuracy,
    posterior,
)
from ._data import CodedLabels, FloatArray, IntArray

__all__ = ["MACE"]

TINY = 1e-300


@dataclass(frozen=True)
class _Run:
    loglik: float
    probas: FloatArray
    know: FloatArray
    spam: FloatArray
    xi: FloatArray
    priors: FloatArray
    n_iter: int
    converged: bool


class MACE(ConfusionModel, CategoricalAggregator):
    r"""**MACE** (Multi-Annotator Competence Estimation): workers either know or spam.

    True classes are uniform, $z_t \sim \mathrm{Cat}(1/K)$ (the paper's assumption; with
    ``fit_priors=True`` the class prior is learned, which fixes skewed sets such as zheng_product,
    12% positives, 0.827 -> 0.931, but lets EM collapse onto the dominant class on sparse data:
    zhang_web thinned to 30% of its labels drops from 0.64 to 0.48).  On each label worker $w$ knows
    the answer with probability $\theta_w$ and gives $z_t$; otherwise (spamming) draws a label
    from their own strategy $\xi_w \in \Delta^{K}$.  So the confusion matrix is
    $\pi^w_{kl} = \theta_w [l = k] + (1 - \theta_w)\,\xi_{wl}$ and the E-step is the
    Dawid-Skene one (a sparse product).  The M-step needs, per worker, the expected number of
    labels given while knowing, $\sum_l C^w_{ll}\,\theta_w / \pi^w_{ll}$ (with
    $C^w_{kl}$ the expected count of label $l$ on class-$k$ tasks), and the expected spam
    counts per label.  ``method="vb"`` (default) is the variational-Bayes update with priors
    $\theta_w \sim \mathrm{Beta}(\beta, \alpha)$ and $\xi_w \sim \mathrm{Dir}(\gamma)$
    (``beta``, ``alpha``, ``strategy_prior``: 0.5, 0.5, 10 as in crowd-kit), using
    $\exp\psi(\cdot)$ expectations; ``method="em"`` is the smoothed maximum-likelihood update.
    Stops when the log-likelihood per label changes by less than ``tol``.

    Restarts: the first run starts from $\theta_w = 1/2$, $\xi_w$ uniform (deterministic and
    independent of the order of workers, tasks and classes); ``n_restarts - 1`` further runs
    start from random parameters drawn from ``random_state``; the run with the best
    log-likelihood is kept.

    Comparing with crowd-kit 1.4.2: its ``MACE`` stores the strategy counts in sorted-worker
    order but reads them by first-appearance worker code, so each worker gets another's
    strategy unless the rows happen to be sorted by worker; its accuracy then depends on row
    order (zheng_product: 0.929 as the file comes, 0.828 with the rows sorted by worker; ours:
    0.827).

    Fitted extras: ``competence_`` $= \theta_w$ (n_workers,) and ``strategies_`` $= \xi_w$
    (n_workers, K), posterior means.  ``confusions_`` is $\pi^w$, ``priors_`` the class prior
    (uniform unless ``fit_priors``) and ``skills_`` $= \sum_k p_k \pi^w_{kk}$.

    D. Hovy, T. Berg-Kirkpatrick, A. Vaswani and E. Hovy. Learning Whom to Trust with MACE.
    *NAACL-HLT* 2013, 1120-1130. <https://aclanthology.org/N13-1132>

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"),
        ...                    "label": ["x", "x", "y", "y", "y", "x"]})
        >>> MACE().fit_predict(df).tolist()
        ['x', 'y']
    """

    def __init__(
        self,
        n_iter: int = 50,
        tol: float = 1e-5,
        n_restarts: int = 1,
        method: Literal["vb", "em"] = "vb",
        alpha: float = 0.5,
        beta: float = 0.5,
        strategy_prior: float = 10.0,
        fit_priors: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.fit_priors = fit_priors
        self.n_iter = n_iter
        self.tol = tol
        self.n_restarts = n_restarts
        self.method = method
        self.alpha = alpha
        self.beta = beta
        self.strategy_prior = strategy_prior
        self.random_state = random_state

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        check_iter(self.n_iter, self.tol)
        if self.method not in ("vb", "em"):
            raise ValueError("method must be 'vb' or 'em'")
        if self.n_restarts < 1:
            raise ValueError("n_restarts must be >= 1")
        design = Design.build(data)
        n_w, k = data.n_workers, data.n_classes
        totals = design.worker_label_totals()
        n_labels = max(float(data.weights.sum()), TINY)
        rng = np.random.default_rng(self.random_state)

        best: _Run | None = None
        for restart in range(self.n_restarts):
            if restart == 0:
                know, spam, xi = np.full(n_w, 0.5), np.full(n_w, 0.5), np.full((n_w, k), 1 / k)
            else:
                pair = rng.uniform(1.0, 1.5, size=(n_w, 2))
                know, spam = pair[:, 1] / pair.sum(axis=1), pair[:, 0] / pair.sum(axis=1)
                xi = rng.uniform(1.0, 1.5, size=(n_w, k))
                xi /= xi.sum(axis=1, keepdims=True)
            run = self._run(design, data, gold, totals, n_labels, know, spam, xi)
            if best is None or run.loglik > best.loglik:
                best = run
        assert best is not None
        probas, know, spam = best.probas, best.know, best.spam
        self.n_iter_, self.converged_ = best.n_iter, best.converged
        if self.method == "vb":
            # report posterior means: the VB parameters are sub-normalised geometric means
            spam_counts = self._spam_counts(design, probas, totals, know, spam, best.xi)
            n_w_labels, spam_total = totals.sum(axis=1), spam_counts.sum(axis=1)
            theta = (n_w_labels - spam_total + self.beta) / np.maximum(
                n_w_labels + self.alpha + self.beta, TINY
            )
            xi_mean = spam_counts + self.strategy_prior
            xi_mean /= np.maximum(xi_mean.sum(axis=1, keepdims=True), TINY)
        else:
            theta, xi_mean = know, best.xi
        self.competence_, self.strategies_ = theta, xi_mean
        self.priors_ = best.priors
        self.confusions_ = self._confusions(theta, 1.0 - theta, xi_mean)
        self.skills_ = expected_accuracy(self.confusions_, self.priors_)
        return probas

    def _empty(self, n_classes: int) -> None:
        super()._empty(n_classes)
        self.competence_ = np.zeros(0)
        self.strategies_ = np.zeros((0, n_classes))

    @staticmethod
    def _confusions(know: FloatArray, spam: FloatArray, xi: FloatArray) -> FloatArray:
        k = xi.shape[1]
        conf = spam[:, None, None] * xi[:, None, :] * np.ones((1, k, 1))
        diag = np.arange(k)
        conf[:, diag, diag] += know[:, None]
        return conf

    @staticmethod
    def _spam_counts(
        design: Design,
        probas: FloatArray,
        totals: FloatArray,
        know: FloatArray,
        spam: FloatArray,
        xi: FloatArray,
    ) -> FloatArray:
        """Expected number of spam labels of each class per worker, (n_workers, K)."""
        counts = design.counts(probas)
        right = np.diagonal(counts, axis1=1, axis2=2)  # labels equal to the true class
        p_know = know[:, None] / np.maximum(know[:, None] + spam[:, None] * xi, TINY)
        return np.asarray(np.maximum(totals - right * p_know, 0.0), dtype=np.float64)

    def _run(
        self,
        design: Design,
        data: CodedLabels,
        gold: IntArray,
        totals: FloatArray,
        n_labels: float,
        know: FloatArray,
        spam: FloatArray,
        xi: FloatArray,
    ) -> _Run:
        k = data.n_classes
        log_prior = np.full(k, -np.log(max(k, 1)))
        previous, loglik = -np.inf, -np.inf
        probas = np.zeros((data.n_tasks, k))
        n_done, converged = 0, False
        worker_totals = totals.sum(axis=1)
        for it in range(1, self.n_iter + 2):
            conf = self._confusions(know, spam, xi)
            joint = design.loglik(np.log(np.maximum(conf, TINY)))
            joint += log_prior
            probas, loglik = posterior(joint, gold)
            if abs(loglik - previous) / n_labels < self.tol or it > self.n_iter:
                converged = it <= self.n_iter
                break
            previous, n_done = loglik, it
            if self.fit_priors:
                log_prior = np.log(np.maximum(probas.mean(axis=0), 1e-10))
            spam_counts = self._spam_counts(design, probas, totals, know, spam, xi)
            spam_total = spam_counts.sum(axis=1)
            know_total = np.maximum(worker_totals - spam_total, 0.0)
            if self.method == "vb":
                norm = np.exp(digamma(worker_totals + self.alpha + self.beta))
                know = np.exp(digamma(know_total + self.beta)) / norm
                spam = np.exp(digamma(spam_total + self.alpha)) / norm
                xi_norm = np.exp(digamma(spam_total + k * self.strategy_prior))
                xi = np.exp(digamma(spam_counts + self.strategy_prior)) / xi_norm[:, None]
            else:
                s = 0.01 / k
                know = (know_total + s) / (worker_totals + 2 * s)
                spam = 1.0 - know
                xi = (spam_counts + s) / (spam_total + k * s)[:, None]
        return _Run(loglik, probas, know, spam, xi, np.exp(log_prior), n_done, converged)
