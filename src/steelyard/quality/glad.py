"""GLAD: worker ability times task easiness."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ._base import CategoricalAggregator, check_iter, posterior
from ._data import CodedLabels, FloatArray, IntArray

__all__ = ["GLAD"]

MAX_STEP = 1.0


def _log_sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(-np.logaddexp(0.0, -x), dtype=np.float64)


class GLAD(CategoricalAggregator):
    r"""**GLAD** (Generative model of Labels, Abilities and Difficulties).

    Worker $w$ has ability $\alpha_w \in \mathbb{R}$, task $t$ has easiness
    $\beta_t = e^{b_t} > 0$.  A label of worker $w$ on task $t$ is right with probability
    $\sigma(\alpha_w \beta_t)$ and otherwise one of the $K - 1$ wrong classes uniformly:

    $$P(y_i = l \mid z_t = k) = \sigma(\alpha_w\beta_t)^{[l = k]}
      \Big(\tfrac{1 - \sigma(\alpha_w\beta_t)}{K - 1}\Big)^{[l \ne k]}$$

    with priors $\alpha_w \sim N(\mu_\alpha, 1)$, $b_t \sim N(\mu_\beta, 1)$ and a class prior $p$
    (uniform unless ``fit_priors``).  EM: the E-step is the posterior of $z_t$ (two
    bincounts); the M-step maximises the expected complete log-posterior

    $$Q = \sum_i v_i \Big[q_i \log\sigma(x_i) + (1 - q_i)\log\frac{1-\sigma(x_i)}{K-1}\Big]
      - \tfrac12\sum_w (\alpha_w - \mu_\alpha)^2 - \tfrac12\sum_t (b_t - \mu_\beta)^2,$$

    $x_i = \alpha_{w_i}\beta_{t_i}$, $q_i = P(z_{t_i} = y_i)$, by block-coordinate Newton steps
    (all $\alpha$, then all $b$; at most ``m_step_max_iter`` rounds, steps capped at 1) built
    from $\partial Q/\partial x_i = v_i (q_i - \sigma(x_i))$ and
    $v_i\sigma(x_i)(1 - \sigma(x_i))$, each gathered with one bincount.  Stops when the
    log-posterior per label changes by less than ``tol``.  Starting point
    $\alpha = \mu_\alpha$, $b = \mu_\beta$ as in crowd-kit; its fixed points match crowd-kit's
    (conjugate-gradient M-step) on the benchmark sets.  With ``fit_priors`` the class prior
    is learned, which lets EM collapse onto the dominant class (zheng_duck: 0.72 -> 0.59).

    Fitted extras: ``alphas_`` (n_workers,), ``betas_`` (n_tasks,) $= \beta_t$.  ``skills_`` is
    $\sigma(\alpha_w \bar\beta)$ with $\bar\beta$ the geometric mean easiness;
    ``priors_`` $= p$.  GLAD has no per-worker confusion matrix (``confusions_`` is not set).

    J. Whitehill, P. Ruvolo, T. Wu, J. Bergsma and J. Movellan. Whose Vote Should Count More:
    Optimal Integration of Labels from Labelers of Unknown Expertise. *NIPS* 2009.
    <https://proceedings.neurips.cc/paper/2009/hash/f899139df5e1059396431415e770c6dd-Abstract.html>

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"),
        ...                    "label": ["x", "x", "y", "y", "y", "x"]})
        >>> GLAD().fit_predict(df).tolist()
        ['x', 'y']
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        m_step_max_iter: int = 5,
        alpha_prior_mean: float = 1.0,
        beta_prior_mean: float = 1.0,
        fit_priors: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.m_step_max_iter = m_step_max_iter
        self.alpha_prior_mean = alpha_prior_mean
        self.beta_prior_mean = beta_prior_mean
        self.fit_priors = fit_priors
        self.random_state = random_state

    def _empty(self, n_classes: int) -> None:
        self.alphas_, self.betas_ = np.zeros(0), np.zeros(0)
        self.priors_ = np.full(n_classes, 1.0 / n_classes) if n_classes else np.zeros(0)

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        check_iter(self.n_iter, self.tol)
        n_t, n_w, k = data.n_tasks, data.n_workers, data.n_classes
        tasks, workers, labels, v = data.tasks, data.workers, data.labels, data.weights
        log_wrong = float(np.log(max(k - 1, 1)))
        mu_a, mu_b = float(self.alpha_prior_mean), float(self.beta_prior_mean)
        alpha = np.full(n_w, mu_a)
        b = np.full(n_t, mu_b)
        log_prior = np.full(k, -np.log(max(k, 1)))
        n_labels = max(float(v.sum()), 1e-300)

        def e_step(alpha: FloatArray, b: FloatArray) -> tuple[FloatArray, float]:
            x = alpha[workers] * np.exp(b[tasks])
            ls, lns = _log_sigmoid(x), _log_sigmoid(-x)
            base = np.bincount(tasks, weights=v * (lns - log_wrong), minlength=n_t)
            bonus = np.bincount(
                tasks * k + labels, weights=v * (ls - lns + log_wrong), minlength=n_t * k
            )
            joint = np.asarray(bonus, dtype=np.float64).reshape(n_t, k)
            joint += base[:, None]
            joint += log_prior
            probas, loglik = posterior(joint, gold)
            penalty = 0.5 * (np.sum((alpha - mu_a) ** 2) + np.sum((b - mu_b) ** 2))
            return probas, loglik - penalty

        def m_step(alpha: FloatArray, b: FloatArray, q: FloatArray) -> None:
            # Block-coordinate Newton ascent on Q, in place.  Given b, Q is a sum of concave
            # 1-D functions of the alpha_w, so the diagonal Newton step is exact; for b the
            # curvature is replaced by its Fisher-information term (always positive).  Steps
            # are capped at MAX_STEP: a plain Newton step from a saturated sigmoid overshoots
            # and can send EM to the mirrored solution (all abilities negative).
            vq = v * q
            for _ in range(self.m_step_max_iter):
                eb = np.exp(b)
                ebt = eb[tasks]
                s = expit(alpha[workers] * ebt)
                g, h = vq - v * s, v * s * (1.0 - s)
                grad = np.bincount(workers, weights=g * ebt, minlength=n_w) - (alpha - mu_a)
                hess = np.bincount(workers, weights=h * ebt * ebt, minlength=n_w) + 1.0
                step_a = np.clip(grad / hess, -MAX_STEP, MAX_STEP)
                alpha += step_a
                at = alpha[workers]
                s = expit(at * ebt)
                g, h = vq - v * s, v * s * (1.0 - s)
                grad = np.bincount(tasks, weights=g * at, minlength=n_t) * eb - (b - mu_b)
                hess = np.bincount(tasks, weights=h * at * at, minlength=n_t) * eb * eb + 1.0
                step_b = np.clip(grad / hess, -MAX_STEP, MAX_STEP)
                b += step_b
                if max(np.abs(step_a).max(initial=0.0), np.abs(step_b).max(initial=0.0)) < 1e-6:
                    break

        probas, objective = e_step(alpha, b)
        self.n_iter_, self.converged_ = 0, self.n_iter == 0
        if k >= 2:
            for it in range(1, self.n_iter + 1):
                m_step(alpha, b, probas[tasks, labels])
                if self.fit_priors:
                    log_prior = np.log(np.maximum(probas.mean(axis=0), 1e-10))
                probas, new_objective = e_step(alpha, b)
                self.n_iter_ = it
                if abs(new_objective - objective) / n_labels < self.tol:
                    self.converged_ = True
                    break
                objective = new_objective
        self.alphas_ = alpha
        self.betas_ = np.exp(b)
        self.priors_ = np.exp(log_prior)
        mean_beta = float(np.exp(b.mean())) if n_t else 1.0
        self.skills_ = np.asarray(expit(alpha * mean_beta), dtype=np.float64)
        return probas
