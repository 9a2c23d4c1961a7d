"""Simulated crowds with known structure, where the right answer is known (seeded, numpy only).

Real datasets show how methods do on the crowds someone happened to collect; these show how they
do on the crowds a customer may have, one structure at a time.  Each family exaggerates one:

``spammers``
    A third of the workers answer at random or always give the same class.
``sparse``
    Hundreds of workers, most with a handful of labels (a heavy-tailed workload), mixed skill.
``adversaries``
    A fifth of the workers are good but systematically swap classes (a fixed permutation),
    besides honest mediocre ones: full confusion matrices can use them, one-coin models cannot.
``correlated``
    Cliques of workers who copy a shared, often wrong, clique answer (same source, same
    mistake), besides independent workers: the cliques outvote the truth under independence.
``imbalanced``
    A rare class (5 %) that most workers often miss, plus a 10 % class.
``dense``
    An expert panel: eight workers label every task, each with its own asymmetric confusions.

>>> crowd = simulate("spammers", seed=0)
>>> crowd.labels.shape == crowd.tasks.shape, crowd.truth.shape
(True, (400,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._data import FloatArray, IntArray

__all__ = ["FAMILIES", "Crowd", "simulate"]

FAMILIES: tuple[str, ...] = (
    "spammers",
    "sparse",
    "adversaries",
    "correlated",
    "imbalanced",
    "dense",
)


@dataclass(frozen=True)
class Crowd:
    """Labels (``tasks[i]``, ``workers[i]``, ``labels[i]``: codes) and each task's true class."""

    family: str
    seed: int
    tasks: IntArray
    workers: IntArray
    labels: IntArray
    truth: IntArray
    n_classes: int

    def table(self) -> dict[str, IntArray]:
        """The labels as a ``task`` / ``worker`` / ``label`` table for the estimators."""
        return {"task": self.tasks, "worker": self.workers, "label": self.labels}


def _noisy_matrix(rng: np.random.Generator, k: int, accuracy: float) -> FloatArray:
    """A confusion row set with ``accuracy`` on the diagonal, errors spread by Dirichlet(1)."""
    conf = np.empty((k, k))
    for c in range(k):
        off = rng.dirichlet(np.ones(k - 1)) * (1.0 - accuracy)
        conf[c] = np.insert(off, c, accuracy)
    return conf


def _draw(rng: np.random.Generator, rows: FloatArray) -> IntArray:
    """One label per row of ``rows`` (n, K): a draw from that row's distribution."""
    u = rng.random(len(rows))
    lab = (u[:, None] > rows.cumsum(axis=1)).sum(axis=1)
    out: IntArray = np.minimum(lab, rows.shape[1] - 1).astype(np.int64)
    return out


def _assign(
    rng: np.random.Generator, n_tasks: int, per_task: int, weights: FloatArray
) -> tuple[IntArray, IntArray]:
    """``per_task`` distinct workers per task, drawn with probability ``weights``."""
    p = weights / weights.sum()
    tasks = np.repeat(np.arange(n_tasks), per_task)
    workers = np.concatenate(
        [rng.choice(len(p), size=per_task, replace=False, p=p) for _ in range(n_tasks)]
    )
    return tasks.astype(np.int64), workers.astype(np.int64)


def _labels_from_matrices(
    rng: np.random.Generator, confs: FloatArray, tasks: IntArray, workers: IntArray, truth: IntArray
) -> IntArray:
    rows: FloatArray = confs[workers, truth[tasks]]
    return _draw(rng, rows)


def simulate(family: str, seed: int = 0) -> Crowd:
    """A crowd of ``family`` (one of ``FAMILIES``) drawn from ``seed``; a few thousand labels."""
    if family not in FAMILIES:
        raise ValueError(f"unknown crowd family {family!r}; choose one of: {', '.join(FAMILIES)}")
    rng = np.random.default_rng([FAMILIES.index(family), seed])
    if family == "dense":
        k, n_tasks = 4, 300
        truth = rng.choice(k, size=n_tasks, p=[0.4, 0.3, 0.2, 0.1])
        n_w = 8
        confs = np.empty((n_w, k, k))
        for w in range(n_w):
            for c in range(k):  # class-dependent skill, errors to one favourite neighbour
                acc = rng.uniform(0.45, 0.95)
                row = np.full(k, (1.0 - acc) * 0.2 / (k - 2))
                row[(c + 1 + rng.integers(k - 1)) % k] = (1.0 - acc) * 0.8
                row[c] = acc
                confs[w, c] = row / row.sum()
        tasks = np.repeat(np.arange(n_tasks), n_w)
        workers = np.tile(np.arange(n_w), n_tasks)
        labels = _labels_from_matrices(rng, confs, tasks, workers, truth)
        return Crowd(family, seed, tasks, workers, labels, truth.astype(np.int64), k)

    k = 2 if family in ("spammers", "correlated") else 3
    n_tasks = 400
    prior = np.full(k, 1.0 / k)
    if family == "imbalanced":
        prior = np.array([0.85, 0.10, 0.05])
    truth = rng.choice(k, size=n_tasks, p=prior).astype(np.int64)

    if family == "sparse":
        n_w, per_task = 300, 5
        load = rng.pareto(1.2, n_w) + 0.2  # a few busy workers, most with a handful of labels
    elif family == "correlated":
        n_w, per_task = 30, 7
        load = np.ones(n_w)
    else:
        n_w, per_task = 30, 5
        load = np.ones(n_w)
    tasks, workers = _assign(rng, n_tasks, per_task, load)

    confs = np.stack([_noisy_matrix(rng, k, rng.beta(5, 2.5)) for _ in range(n_w)])
    if family == "spammers":
        for w in rng.choice(n_w, size=n_w // 3, replace=False):
            confs[w] = 1.0 / k if rng.random() < 0.5 else np.eye(k)[rng.integers(k)][None, :]
    elif family == "adversaries":
        perm = np.roll(np.arange(k), 1)
        for w in rng.choice(n_w, size=n_w // 5, replace=False):
            confs[w] = _noisy_matrix(rng, k, rng.uniform(0.85, 0.95))[:, perm]
    elif family == "imbalanced":
        for w in range(n_w):  # most workers miss the rare classes, saying the common one
            for c in (1, 2):
                miss = rng.uniform(0.2, 0.6)
                confs[w, c] *= 1.0 - miss
                confs[w, c, 0] += miss
    labels = _labels_from_matrices(rng, confs, tasks, workers, truth)
    if family == "correlated":
        # three cliques of six: per task a clique answer, right only 55 % of the time, which
        # each member present copies with probability 0.85
        cliques = rng.permutation(n_w)[:18].reshape(3, 6)
        clique_of = np.full(n_w, -1)
        for i, members in enumerate(cliques):
            clique_of[members] = i
        shared = np.where(rng.random((3, n_tasks)) < 0.55, truth[None, :], (truth[None, :] + 1) % k)
        member = clique_of[workers] >= 0
        copy = member & (rng.random(len(labels)) < 0.85)
        labels = np.where(copy, shared[np.maximum(clique_of[workers], 0), tasks], labels)
    return Crowd(family, seed, tasks, workers, labels.astype(np.int64), truth, k)
