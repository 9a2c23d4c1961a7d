"""Per-worker quality estimates: accuracy with credible intervals, confusion, spammer flags.

Accuracy. Every label a worker gave is a Bernoulli trial "was it right?". On a gold task the
outcome is known; on another task a fitted estimator gives the probability ``q_t(l)`` that the
true class of task ``t`` is the given label ``l``, which counts as ``q_t(l)`` of a success (an
*effective* count). With ``c`` (expected) successes in ``n`` trials and the Jeffreys prior
``Beta(1/2, 1/2)`` the posterior is

    accuracy | labels ~ Beta(1/2 + c, 1/2 + n - c),

reported as its mean with an equal-tailed credible interval. Inference-based counts reuse the
worker's own labels (the estimator saw them), so they are slightly optimistic; gold is not.

Confusion. ``N_w[k, l] = sum over the worker's labels l on task t of q_t(k)`` (one-hot on gold
tasks) is the expected number of times worker ``w`` answered ``l`` when the truth was ``k``;
rows are smoothed towards the pooled (all-worker) confusion with ``smoothing`` pseudo-labels,
i.e. the posterior mean under a Dirichlet prior on each row.

Spammers. A worker whose answers are independent of the truth has a rank-one confusion
matrix: every row is the same answer distribution (uniformly random clicking, or always the
same button). Raykar & Yu (2012, *Eliminating spammers and ranking annotators for
crowdsourced labeling tasks*, JMLR 13) score the distance from rank one as

    S(A) = 1 / (K (K - 1)) * sum_{c < c'} ||A[c] - A[c']||^2  in [0, 1],

0 for a spammer, 1 for a perfect (or perfectly permuted) worker; in the two-class case
``S = (sensitivity + specificity - 1)^2`` and for a symmetric worker of accuracy ``a``,
``S = (a - (1 - a)/(K - 1))^2``. The plug-in score of a random clicker is inflated by
sampling noise (about ``(K - 1)^2 / n``), so the reported score is bias-corrected
(``unbiased_raykar_yu``) and the flag asks the Dirichlet posterior of the rows, re-centred on
that corrected value, for ``P(S < spammer_threshold) >= spammer_certainty``, after at least
``min_labels`` labels on tasks with a truth estimate. Calibration with the defaults (gold,
symmetric workers, 150 simulated workers per cell): a uniformly random worker is flagged with
probability 0.07-0.33 after 30 labels, 0.66-0.69 after 120, 0.89-0.99 after 240 (K = 2..5);
honest workers with ``S`` about 0.15 (70% binary, 60% of 3, 50% of 5 classes) at most 1.3%
after 30 labels and never after 60; weak ones with ``S`` 0.06-0.09 up to 5%. Workers with no
truth information at all are flagged only for constant answers (one label on at least
``constant_share`` of their labels while that label is rarer than that overall).

Example:
    >>> import pandas as pd
    >>> labels = pd.DataFrame({"task": [1, 2, 3, 1, 2, 3], "worker": list("aaabbb"),
    ...                        "label": ["x", "y", "x", "x", "x", "x"]})
    >>> table = estimate_workers(labels, gold={1: "x", 2: "y", 3: "x"}, min_labels=1)
    >>> table.records()[0].accuracy  # 3 of 3 right: Beta(3.5, 0.5) mean
    0.875
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from steelyard.quality._data import CodedLabels, FloatArray, IntArray, encode


@dataclass(frozen=True)
class WorkerEstimate:
    """One worker's row of a ``WorkerTable``."""

    worker_id: Any
    n_labels: int
    n_gold: int
    accuracy: float
    ci_low: float
    ci_high: float
    source: str
    spammer_score: float
    is_spammer: bool
    reason: str


@dataclass(frozen=True)
class WorkerTable:
    """Worker estimates as columns (one entry per worker, ``worker_ids`` order).

    ``source`` is ``"gold"``, ``"inference"``, ``"both"`` or ``"none"`` (no truth information:
    accuracy and interval are NaN). ``reason`` is ``"constant"``, ``"uniform"`` or ``""``.
    ``confusions[w, k, l]`` is the smoothed P(answer l | truth k); ``label_counts[w, l]``
    counts the worker's answers per class.
    """

    worker_ids: npt.NDArray[Any]
    classes: npt.NDArray[Any]
    n_labels: IntArray
    n_gold: IntArray
    accuracy: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    source: npt.NDArray[np.str_]
    spammer_score: FloatArray
    is_spammer: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.str_]
    confusions: FloatArray
    label_counts: IntArray

    def __len__(self) -> int:
        return len(self.worker_ids)

    def records(self) -> list[WorkerEstimate]:
        """The table as one dataclass per worker (Python scalars, ready for JSON or an ORM)."""
        return [
            WorkerEstimate(
                worker_id=self.worker_ids[i].item()
                if isinstance(self.worker_ids[i], np.generic)
                else self.worker_ids[i],
                n_labels=int(self.n_labels[i]),
                n_gold=int(self.n_gold[i]),
                accuracy=float(self.accuracy[i]),
                ci_low=float(self.ci_low[i]),
                ci_high=float(self.ci_high[i]),
                source=str(self.source[i]),
                spammer_score=float(self.spammer_score[i]),
                is_spammer=bool(self.is_spammer[i]),
                reason=str(self.reason[i]),
            )
            for i in range(len(self))
        ]


def index_of(values: npt.ArrayLike, reference: npt.ArrayLike) -> IntArray:
    """Position of each of ``values`` in ``reference`` (-1 where absent); any hashable ids."""
    lookup = {v: i for i, v in enumerate(np.asarray(reference).tolist())}
    return np.fromiter((lookup.get(v, -1) for v in np.asarray(values).tolist()), dtype=np.int64)


def beta_interval(
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    *,
    level: float = 0.95,
    prior: tuple[float, float] = (0.5, 0.5),
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Posterior mean and equal-tailed ``level`` interval of a Beta-Bernoulli rate.

    ``successes`` may be fractional (expected counts). Jeffreys prior by default; NaN where
    ``trials == 0`` because the prior alone says nothing about a worker.

    >>> mean, low, high = beta_interval([9], [10])
    >>> round(float(mean[0]), 3), round(float(low[0]), 3), round(float(high[0]), 3)
    (0.864, 0.619, 0.989)
    """
    c = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    a, b = prior[0] + c, prior[1] + n - c
    tail = (1.0 - level) / 2.0
    empty = n <= 0
    mean = np.where(empty, np.nan, a / (a + b))
    low = np.where(empty, np.nan, stats.beta.ppf(tail, a, b))
    high = np.where(empty, np.nan, stats.beta.ppf(1.0 - tail, a, b))
    return mean, low, high


def raykar_yu_score(confusions: npt.ArrayLike) -> FloatArray:
    """Raykar-Yu spammer score of ``(..., K, K)`` row-stochastic matrices (0 = spammer).

    Uses ``sum_{c<c'} ||a_c - a_c'||^2 = K sum_c ||a_c||^2 - ||sum_c a_c||^2``.

    >>> float(raykar_yu_score(np.eye(3))), float(raykar_yu_score(np.full((3, 3), 1 / 3)))
    (1.0, 0.0)
    """
    a = np.asarray(confusions, dtype=np.float64)
    k = a.shape[-1]
    if k < 2:
        return np.full(a.shape[:-2], np.nan)
    spread = k * np.square(a).sum(axis=(-2, -1)) - np.square(a.sum(axis=-2)).sum(axis=-1)
    return np.asarray(spread / (k * (k - 1)), dtype=np.float64)


def expected_confusion_counts(coded: CodedLabels, truth: FloatArray) -> FloatArray:
    """``N[w, k, l]``: summed ``weight * truth[t, k]`` over worker ``w``'s labels ``l``.

    ``truth`` is ``(coded.n_tasks, K)``: a posterior per task (zeros where unknown).
    """
    n_w, k = coded.n_workers, coded.n_classes
    cell = coded.workers * k + coded.labels
    counts = np.empty((n_w, k, k), dtype=np.float64)
    for true_class in range(k):  # K bincounts over all labels: no Python loop over labels
        weights = coded.weights * truth[coded.tasks, true_class]
        counts[:, true_class, :] = np.bincount(cell, weights=weights, minlength=n_w * k).reshape(
            n_w, k
        )
    return counts


def smooth_confusions(counts: FloatArray, smoothing: float) -> tuple[FloatArray, FloatArray]:
    """Dirichlet-posterior mean rows and the prior (pooled) confusion they shrink towards.

    Returns ``(confusions, pooled)``; ``pooled`` is Laplace-smoothed so every cell is > 0.
    """
    k = counts.shape[-1]
    pooled_counts = counts.sum(axis=0) + 1.0 / k
    pooled = pooled_counts / pooled_counts.sum(axis=1, keepdims=True)
    posterior = counts + smoothing * pooled[None]
    return posterior / posterior.sum(axis=2, keepdims=True), pooled


def unbiased_raykar_yu(counts: FloatArray) -> FloatArray:
    """Raykar-Yu score of ``(W, K, K)`` answer counts, corrected for sampling noise.

    The plug-in ``||p_hat - q_hat||^2`` of two rows overstates ``||p - q||^2`` by their
    sampling variance, so a random clicker with 30 labels looks informative. With row totals
    ``n`` and counts ``N_l``, ``sum_l N_l (N_l - 1) / (n (n - 1))`` is unbiased for
    ``||p||^2`` and ``<p_hat, q_hat>`` for ``<p, q>``; the score is half the mean corrected
    squared distance over pairs of rows with at least two labels (NaN if no such pair). Exact
    for integer counts, approximate for expected (soft) counts; may be slightly negative.
    """
    n = counts.sum(axis=-1)
    ok = n >= 2
    safe_n = np.where(ok, n, 2.0)
    self_sq = (counts * (counts - 1.0)).sum(axis=-1) / (safe_n * (safe_n - 1.0))
    p = counts / safe_n[..., None]
    cross = np.einsum("wcl,wdl->wcd", p, p)
    d2 = self_sq[:, :, None] + self_sq[:, None, :] - 2.0 * cross
    k = counts.shape[-1]
    pairs = ok[:, :, None] & ok[:, None, :] & np.triu(np.ones((k, k), dtype=bool), 1)[None]
    n_pairs = pairs.sum(axis=(1, 2))
    total = np.where(pairs, d2, 0.0).sum(axis=(1, 2))
    return np.where(n_pairs > 0, 0.5 * total / np.maximum(n_pairs, 1), np.nan)


def _spam_probability(
    counts: FloatArray,
    prior: FloatArray,
    threshold: float,
    n_samples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """P(score < threshold): Dirichlet-posterior spread of the score around its unbiased value.

    Raw Dirichlet draws of a squared distance are biased upwards by the same noise the
    unbiased estimate removes (for K = 5 a pure spammer would need hundreds of labels), so the
    draws are re-centred on ``unbiased_raykar_yu`` and only their spread is kept.
    """
    n_w, k, _ = counts.shape
    centre = unbiased_raykar_yu(counts)
    out = np.zeros(n_w, dtype=np.float64)
    chunk = max(1, 2_000_000 // max(1, n_samples * k * k))  # bounds memory at ~16 MB
    for start in range(0, n_w, chunk):
        a = counts[start : start + chunk] + prior[None]
        draws = rng.standard_gamma(np.broadcast_to(a[:, None], (len(a), n_samples, k, k)))
        draws /= np.maximum(draws.sum(axis=-1, keepdims=True), 1e-300)
        scores = raykar_yu_score(draws)
        shifted = scores - scores.mean(axis=1, keepdims=True) + centre[start : start + chunk, None]
        out[start : start + chunk] = (shifted < threshold).mean(axis=1)
    return np.where(np.isnan(centre), 0.0, out)


def estimate_workers(
    labels: Any,
    *,
    gold: Mapping[Any, Any] | None = None,
    estimator: Any = None,
    level: float = 0.95,
    smoothing: float = 2.0,
    min_labels: int = 30,
    spammer_threshold: float = 0.04,
    spammer_certainty: float = 0.95,
    constant_share: float = 0.95,
    n_samples: int = 200,
    random_state: int | None = 0,
) -> WorkerTable:
    """Accuracy, confusion and spammer flag for every worker in ``labels``.

    ``labels``: long table (task, worker, label) as for ``encode``; ``gold``: task → true
    label; ``estimator``: a fitted categorical estimator (``task_ids_``, ``classes_``,
    ``probas_``) supplying truth posteriors for non-gold tasks. Either may be omitted, not both
    unless you only want counts and constant-answer flags. ``spammer_threshold`` 0.04 means
    "margin over chance below 0.2" (binary accuracy below 60%); see the module docstring.
    """
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    raw = encode(labels)
    classes = _classes(raw, gold, estimator)
    coded = encode(
        labels if not isinstance(labels, CodedLabels) else _decode(labels), classes=classes
    )
    n_t, n_w, k = coded.n_tasks, coded.n_workers, coded.n_classes

    truth = np.zeros((n_t, k), dtype=np.float64)
    if estimator is not None:
        pos = index_of(coded.task_ids, estimator.task_ids_)
        cls = index_of(classes, estimator.classes_)
        hit = pos >= 0
        truth[hit] = np.asarray(estimator.probas_, dtype=np.float64)[pos[hit]][:, cls]
    is_gold = np.zeros(n_t, dtype=bool)
    if gold:
        g_pos = index_of(list(gold.keys()), coded.task_ids)
        g_cls = index_of(list(gold.values()), classes)
        if np.any(g_cls < 0):
            raise ValueError("a gold label is not among the classes")
        keep = g_pos >= 0
        is_gold[g_pos[keep]] = True
        truth[g_pos[keep]] = 0.0
        truth[g_pos[keep], g_cls[keep]] = 1.0
    known = truth.sum(axis=1) > 0

    lab_gold = is_gold[coded.tasks]
    lab_inf = known[coded.tasks] & ~lab_gold
    right = truth[coded.tasks, coded.labels]  # P(the given label is the truth)
    n_labels = np.bincount(coded.workers, minlength=n_w).astype(np.int64)
    n_gold = np.bincount(coded.workers[lab_gold], minlength=n_w).astype(np.int64)
    n_inf = np.bincount(coded.workers[lab_inf], minlength=n_w).astype(np.int64)
    successes = np.bincount(coded.workers, weights=right, minlength=n_w)
    accuracy, ci_low, ci_high = beta_interval(successes, n_gold + n_inf, level=level)
    source = np.select(
        [(n_gold > 0) & (n_inf > 0), n_gold > 0, n_inf > 0],
        ["both", "gold", "inference"],
        default="none",
    ).astype(np.str_)

    label_counts = (
        np.bincount(coded.workers * k + coded.labels, minlength=n_w * k)
        .reshape(n_w, k)
        .astype(np.int64)
    )
    counts = expected_confusion_counts(coded, truth)
    confusions, pooled = smooth_confusions(counts, smoothing)

    rng = np.random.default_rng(random_state)
    n_info = n_gold + n_inf
    informed = n_info > 0
    corrected = np.clip(unbiased_raykar_yu(counts), 0.0, 1.0)
    plug_in = raykar_yu_score(confusions)
    score = np.where(informed, np.where(np.isnan(corrected), plug_in, corrected), np.nan)
    p_spam = np.zeros(n_w, dtype=np.float64)
    eligible = informed & (n_info >= min_labels)
    if np.any(eligible) and k >= 2:
        p_spam[eligible] = _spam_probability(
            counts[eligible], smoothing * pooled, spammer_threshold, n_samples, rng
        )
    top_share = label_counts.max(axis=1) / np.maximum(n_labels, 1)
    overall_share = label_counts.sum(axis=0) / max(1, int(n_labels.sum()))
    rare_top = overall_share[label_counts.argmax(axis=1)] < constant_share
    constant = (top_share >= constant_share) & rare_top
    flagged = np.where(
        informed,
        eligible & (p_spam >= spammer_certainty),
        (n_labels >= min_labels) & constant,
    )
    reason = np.where(
        flagged, np.where(top_share >= constant_share, "constant", "uniform"), ""
    ).astype(np.str_)
    return WorkerTable(
        worker_ids=coded.worker_ids,
        classes=classes,
        n_labels=n_labels,
        n_gold=n_gold,
        accuracy=accuracy,
        ci_low=ci_low,
        ci_high=ci_high,
        source=source,
        spammer_score=score,
        is_spammer=flagged.astype(bool),
        reason=reason,
        confusions=confusions,
        label_counts=label_counts,
    )


def gold_accuracy(labels: Any, gold: Mapping[Any, Any], *, level: float = 0.95) -> WorkerTable:
    """Accuracy from gold answers only (labels on non-gold tasks count in ``n_labels`` only)."""
    return estimate_workers(labels, gold=gold, level=level)


def _classes(
    coded: CodedLabels, gold: Mapping[Any, Any] | None, estimator: Any
) -> npt.NDArray[Any]:
    if estimator is not None:
        classes = np.asarray(estimator.classes_)
        missing = np.setdiff1d(coded.classes, classes)
        if len(missing):
            raise ValueError(f"labels not among the estimator's classes: {missing[:5]}")
        return classes
    values = [coded.classes] + ([np.asarray(list(gold.values()))] if gold else [])
    return np.unique(np.concatenate(values))


def _decode(coded: CodedLabels) -> dict[str, npt.NDArray[Any]]:
    return {
        "task": coded.task_ids[coded.tasks],
        "worker": coded.worker_ids[coded.workers],
        "label": coded.classes[coded.labels],
        "weight": coded.weights,
    }
