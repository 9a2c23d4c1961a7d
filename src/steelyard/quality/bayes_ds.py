"""Dawid-Skene with a worker-structured Dirichlet prior (MAP-EM): the model behind the default."""

from __future__ import annotations

import numpy as np

from ._base import (
    CategoricalAggregator,
    ConfusionModel,
    Design,
    check_iter,
    col_sum,
    expected_accuracy,
)
from ._data import CodedLabels, FloatArray, IntArray
from .dawid_skene import run_em
from .majority_vote import majority_probas

__all__ = ["BayesianDawidSkene"]

EPS = 1e-12
ANCHOR_LABELS = 10.0
ANCHOR_ACCURACY = 0.7


class BayesianDawidSkene(ConfusionModel, CategoricalAggregator):
    r"""**Bayesian Dawid-Skene** with shrinkage towards a per-worker "knows or guesses" matrix.

    The Dawid-Skene model (each worker $w$ has a confusion matrix $\pi^w$, true classes
    $z_t \sim \mathrm{Cat}(p)$) with empirical-Bayes Dirichlet priors:

    $$\pi^w_{k\cdot} \sim \mathrm{Dir}\big(1 + s\, m^w_{k\cdot}\big), \qquad
      m^w_{kl} = a_w [l = k] + (1 - a_w)\, g_{wl}, \qquad
      p \sim \mathrm{Dir}(1 + c).$$

    ($c$ = ``prior_strength``).  $m^w$ is the worker's matrix in the simple "knows with
    probability $a_w$, otherwise guesses from $g_w$" model (MACE's structure): $g_w$ is the
    worker's label distribution shrunk towards the crowd's (``bias_strength`` pseudo-labels),
    $a_w$ the chance-corrected accuracy
    $(\bar a_w - \sum_k p_k g_{wk}) / (1 - \sum_k p_k g_{wk})$ of the worker's expected
    accuracy $\bar a_w$ shrunk towards the crowd's (``skill_strength`` pseudo-labels).
    The crowd's accuracy itself carries a weak anchor, 10 pseudo-labels at 0.7: irrelevant
    with thousands of labels, it stops EM on a handful of labels from drifting to "nobody
    knows anything" (all rows equal, answers = the class prior).  All of these are
    re-estimated from the current posteriors in every M-step.  MAP-EM then gives

    $$\pi^w_{kl} = \frac{C^w_{kl} + s\, m^w_{kl}}{\sum_l C^w_{kl} + s}, \qquad
      C^w_{kl} = \sum_{i: w_i = w,\ y_i = l} v_i P(z_{t_i} = k),$$

    so a worker with hundreds of labels keeps a full confusion matrix while a worker with a
    handful falls back smoothly to the two-parameter model (and, through the shrinkage of
    $a_w$ and $g_w$, to the crowd's).  $s$ = ``strength`` pseudo-labels per row.  The E-step
    and convergence rule are Dawid-Skene's (sparse products, log-likelihood change per label
    below ``tol``), starting from the majority-vote shares.

    Measured (Steelyard's benchmark, 11 real datasets): mean accuracy 0.821 against
    0.818 for Dawid-Skene (ours and crowd-kit's), 0.804 for MACE and 0.774 for majority vote;
    on the same sets thinned to 30% of their labels (3 seeds) 0.734 against 0.729 (DS),
    0.724 (MACE) and 0.695 (MV) -- the shrinkage pays off where workers have few labels.
    No single ``strength`` suits every crowd (a crowd that misses a rare class wants 16-64):
    the default, :class:`~steelyard.quality.selection.HeldOutSelection`, picks it per dataset.

    ``confusions_``, ``priors_`` as in Dawid-Skene; ``skills_`` $= \sum_k p_k \pi^w_{kk}$.

    A. P. Dawid and A. M. Skene, *Applied Statistics* 28(1), 1979 (the model);
    D. Hovy et al., Learning Whom to Trust with MACE, *NAACL-HLT* 2013 (the prior's structure);
    H.-C. Kim and Z. Ghahramani, Bayesian Classifier Combination, *AISTATS* 2012 (Dirichlet
    priors on confusion matrices).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"),
        ...                    "label": ["x", "x", "y", "y", "y", "x"]})
        >>> BayesianDawidSkene().fit_predict(df).tolist()
        ['x', 'y']
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        strength: float = 4.0,
        skill_strength: float = 2.0,
        bias_strength: float = 2.0,
        prior_strength: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.strength = strength
        self.skill_strength = skill_strength
        self.bias_strength = bias_strength
        self.prior_strength = prior_strength
        self.random_state = random_state

    def _params(
        self, design: Design, totals: FloatArray, probas: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        k = design.n_classes
        counts = design.counts(probas)
        priors = col_sum(probas) + self.prior_strength
        priors /= max(float(priors.sum()), EPS)
        n_w = totals.sum(axis=1)
        right = np.einsum("wkk->w", counts)
        crowd_acc = (float(right.sum()) + ANCHOR_LABELS * ANCHOR_ACCURACY) / (
            float(n_w.sum()) + ANCHOR_LABELS
        )
        acc = (right + self.skill_strength * crowd_acc) / np.maximum(n_w + self.skill_strength, EPS)
        crowd_guess = totals.sum(axis=0) / max(float(totals.sum()), EPS)
        guess = (totals + self.bias_strength * crowd_guess) / np.maximum(
            n_w + self.bias_strength, EPS
        )[:, None]
        chance = guess @ priors
        knows = np.clip((acc - chance) / np.maximum(1.0 - chance, EPS), 0.0, 1.0)
        structured = np.repeat(((1.0 - knows)[:, None] * guess)[:, None, :], k, axis=1)
        diag = np.arange(k)
        structured[:, diag, diag] += knows[:, None]
        pseudo = np.maximum(counts + self.strength * structured, EPS)
        return pseudo / pseudo.sum(axis=2, keepdims=True), priors

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        check_iter(self.n_iter, self.tol)
        if min(self.strength, self.skill_strength, self.bias_strength, self.prior_strength) < 0:
            raise ValueError("prior strengths must be >= 0")
        design = Design.build(data)
        totals = design.worker_label_totals()

        def m_step(p: FloatArray) -> tuple[FloatArray, FloatArray]:
            conf, priors = self._params(design, totals, p)
            return np.log(conf), np.log(np.maximum(priors, EPS))

        probas, self.n_iter_, self.converged_ = run_em(
            design,
            majority_probas(data, gold),
            gold,
            m_step,
            self.n_iter,
            self.tol,
            float(data.weights.sum()),
        )
        self.confusions_, self.priors_ = self._params(design, totals, probas)
        self.skills_ = expected_accuracy(self.confusions_, self.priors_)
        return probas
