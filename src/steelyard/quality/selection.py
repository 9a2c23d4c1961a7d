"""Choosing the worker model on the customer's own data, without gold: held-out labels.

No truth-inference model wins on every crowd: full confusion matrices win on dense expert panels
and on workers who swap classes, one-coin and "knows or guesses" models on sparse crowds where a
full matrix per worker overfits.  Which one suits a crowd shows in how well each *predicts
labels it was not fitted on*: hold out a fold of the labels, fit each candidate on the rest,
and score each held-out label by its predictive probability

$$p(y_i) = \\sum_k P(z_{t_i} = k \\mid \\text{other labels})\\, \\pi^{w_i}_{k y_i}.$$

A model that overfits a worker's handful of labels, or that cannot express a worker's
systematic confusions, predicts that worker's other labels worse.  The candidate with the best
mean held-out log-probability is refitted on all labels.  Nothing here looks at gold answers
(gold tasks, when given, are clamped in every fit like in the candidates themselves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._base import CategoricalAggregator, ConfusionModel
from ._data import CodedLabels, FloatArray, IntArray
from .bayes_ds import BayesianDawidSkene
from .dawid_skene import DawidSkene
from .mace import MACE
from .one_coin import OneCoinDawidSkene

__all__ = ["CANDIDATES", "STRENGTHS", "HeldOutSelection", "heldout_scores", "pair_folds"]

CANDIDATES: dict[str, Callable[[], CategoricalAggregator]] = {
    "bayes_ds": BayesianDawidSkene,  # strength 4
    "bayes_ds_1": lambda: BayesianDawidSkene(strength=1.0),
    "bayes_ds_16": lambda: BayesianDawidSkene(strength=16.0),
    "bayes_ds_64": lambda: BayesianDawidSkene(strength=64.0),
    "ds": DawidSkene,
    "onecoin": OneCoinDawidSkene,
    "mace": MACE,
}
"""Models that ``HeldOutSelection`` can choose from (every one has ``confusions_``).
``bayes_ds_S`` is Bayesian Dawid-Skene with ``strength=S`` pseudo-labels of shrinkage."""

STRENGTHS = ("bayes_ds", "bayes_ds_1", "bayes_ds_16", "bayes_ds_64")
"""The default candidates: how far each worker's matrix is shrunk towards the "knows or guesses"
model, from nearly free (1) to nearly that model (64)."""

LARGE = 100_000
"""From this many labels one held-out fold is enough to tell the candidates apart."""

TINY = 1e-300
MIN_LABELS = 30
"""With fewer labels the folds say nothing: the first candidate is taken."""


def _subset(data: CodedLabels, rows: IntArray) -> CodedLabels:
    """The labels ``rows`` of ``data`` with the same ids and codes (a task may lose them all)."""
    return CodedLabels(
        tasks=data.tasks[rows],
        workers=data.workers[rows],
        labels=data.labels[rows],
        weights=data.weights[rows],
        task_ids=data.task_ids,
        worker_ids=data.worker_ids,
        classes=data.classes,
    )


def _fit_coded(model: CategoricalAggregator, data: CodedLabels, gold: IntArray) -> FloatArray:
    """``model``'s posteriors on already coded labels (its ``confusions_`` set as a side effect)."""
    probas: FloatArray = model._fit(data, gold)
    return probas


def pair_folds(data: CodedLabels, folds: int, seed: int) -> IntArray:
    """Fold of each label, a hash of its (task, worker) codes and ``seed``: every label of a pair
    (duplicates, or one weighted row) falls in the same fold, whatever the row order."""
    x = data.tasks.astype(np.uint64) * np.uint64(max(data.n_workers, 1))
    x += data.workers.astype(np.uint64)
    x += np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    # splitmix64's finaliser: consecutive pair ids spread evenly over the folds
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x % np.uint64(folds)).astype(np.int64)


def heldout_scores(
    data: CodedLabels,
    gold: IntArray,
    candidates: dict[str, CategoricalAggregator],
    folds: int,
    seed: int,
) -> dict[str, float]:
    """Mean held-out log-probability of a label under each candidate (``folds`` folds of
    (task, worker) pairs; only the first fold held out from ``LARGE`` labels on)."""
    n = len(data.tasks)
    fold = pair_folds(data, folds, seed)
    used = 1 if n >= LARGE else folds
    total_weight = max(float(data.weights[fold < used].sum()), TINY)
    scores = {}
    for name, model in candidates.items():
        loglik = 0.0
        for f in range(used):
            train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            if len(test) == 0 or len(train) == 0:
                continue
            probas = _fit_coded(model, _subset(data, train), gold)
            conf = model.confusions_  # type: ignore[attr-defined]
            t, w, lab = data.tasks[test], data.workers[test], data.labels[test]
            # p(label) = sum_k P(task's class k | training labels) * P(worker says label | k)
            p = np.einsum("ik,ik->i", probas[t], conf[w, :, lab])
            loglik += float(data.weights[test] @ np.log(np.maximum(p, TINY)))
        scores[name] = loglik / total_weight
    return scores


class HeldOutSelection(ConfusionModel, CategoricalAggregator):
    r"""**Held-out selection**: the candidate model that best predicts held-out labels.

    ``candidates`` names models of :data:`CANDIDATES`; each is scored by ``folds``-fold
    cross-validation over the labels (see the module docstring), the best is refitted on all
    labels and its results become this estimator's.  ``selected_`` is its name, ``scores_``
    every candidate's mean held-out log-probability per label.  Ties go to the earlier
    candidate, and so does everything with fewer than 30 labels (too few to hold any out).
    Costs ``folds + 1`` fits of every candidate (2 from 100,000 labels on: one fold is then
    plenty).

    With the default candidates, Bayesian Dawid-Skene at four prior strengths, this is
    Steelyard's default: the strength of the shrinkage of each worker's confusion matrix towards
    the "knows or guesses" model is chosen on the customer's own labels.  Why (``bench/
    aggregation.py``, leave-one-dataset-out): mean accuracy on the 11 real sets 0.8187 against
    0.8208 for the fixed strength 4, on the six families of simulated crowds 0.859 against
    0.838 -- the fixed strength loses 0.13 on a crowd that misses a rare class, where a strong
    shrinkage is right, and the selection finds it there without gold.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": list("abcabc"),
        ...                    "label": ["x", "x", "y", "y", "y", "x"]})
        >>> m = HeldOutSelection().fit(df)
        >>> m.labels_.tolist(), m.selected_ in m.scores_
        (['x', 'y'], True)
    """

    selected_: str
    scores_: dict[str, float]

    def __init__(
        self,
        candidates: tuple[str, ...] = STRENGTHS,
        folds: int = 3,
        random_state: int | None = None,
    ) -> None:
        self.candidates = candidates
        self.folds = folds
        self.random_state = random_state

    def _models(self) -> dict[str, CategoricalAggregator]:
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not self.candidates:
            raise ValueError(
                f"candidates must be names among {', '.join(CANDIDATES)}; got {self.candidates!r}"
            )
        return {c: CANDIDATES[c]() for c in self.candidates}

    def _fit(self, data: CodedLabels, gold: IntArray) -> FloatArray:
        if self.folds < 2:
            raise ValueError("folds must be >= 2")
        models = self._models()
        seed = 0 if self.random_state is None else self.random_state
        if len(models) == 1 or len(data.tasks) < MIN_LABELS:
            self.scores_ = dict.fromkeys(models, 0.0)
        else:
            self.scores_ = heldout_scores(data, gold, models, self.folds, seed)
        self.selected_ = max(self.scores_, key=lambda c: self.scores_[c])
        best = models[self.selected_]
        probas = _fit_coded(best, data, gold)
        self._copy_from(best)
        return probas

    def _copy_from(self, model: Any) -> None:
        self.confusions_ = model.confusions_
        self.priors_ = model.priors_
        self.skills_ = model.skills_
        self.n_iter_ = model.n_iter_
        self.converged_ = model.converged_
