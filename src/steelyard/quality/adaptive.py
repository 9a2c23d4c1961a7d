"""Adaptive redundancy: after each label, decide whether a task needs another one.

Model (Dawid & Skene 1979). Class prior ``pi``; worker ``w`` answers ``l`` when the truth is
``k`` with probability ``C_w[k, l]``. Given the labels ``(w_1, l_1) ... (w_n, l_n)`` of a task,

    P(y = k | labels) = pi_k * prod_i C_{w_i}[k, l_i] / Z,

computed in log space. The task is done when ``max_k P(y = k | labels) >= target_confidence``
(after at least ``min_labels``) or when it has ``max_labels``. For two classes this is Wald's
sequential probability ratio test; for crowdsourcing see Welinder & Perona, *Online
crowdsourcing: rating annotators and obtaining cost-effective labels* (CVPR-W 2010).
Unseen workers get ``default_confusion`` (the pooled, "average worker" matrix). Confusion cells
are floored (``floor``) so that no single label can make a class impossible: a worker model is
an estimate, and a zero would turn one slip into certainty. The posterior is over-confident on
real crowds; pass a ``calibration.Calibrator`` fitted on gold to make the target a promise.

Example:
    >>> import numpy as np
    >>> model = WorkerModel.from_confusions(
    ...     ["a", "b"], [0.5, 0.5], {"w1": [[0.8, 0.2], [0.2, 0.8]]},
    ...     default_confusion=[[0.8, 0.2], [0.2, 0.8]])
    >>> d = decide([("w1", "a"), ("w2", "a"), ("w3", "b")], worker_model=model)
    >>> d.label, round(d.confidence, 3), d.done, d.reason
    ('a', 0.8, False, 'need_more')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import logsumexp

from steelyard.quality._data import FloatArray, IntArray, encode
from steelyard.quality.calibration import Calibrator
from steelyard.quality.workers import expected_confusion_counts, index_of

REASONS = ("confident", "max_labels", "need_more", "below_min")


def _row_stochastic(a: npt.ArrayLike, floor: float) -> FloatArray:
    m = np.maximum(np.asarray(a, dtype=np.float64), floor)
    return np.asarray(m / m.sum(axis=-1, keepdims=True), dtype=np.float64)


def one_coin_confusion(skill: npt.ArrayLike, n_classes: int) -> FloatArray:
    """``(..., K, K)`` matrices with ``skill`` on the diagonal and the rest spread evenly."""
    s = np.asarray(skill, dtype=np.float64)[..., None, None]
    eye = np.eye(n_classes)
    return np.asarray(s * eye + (1.0 - s) * (1.0 - eye) / max(1, n_classes - 1), np.float64)


@dataclass(frozen=True)
class WorkerModel:
    """Current worker estimates: class prior, one confusion matrix per known worker, default.

    ``confusions[i]`` belongs to ``worker_ids[i]``; rows are true classes, columns given labels.
    Build it with ``from_confusions``, ``one_coin`` or ``from_estimator``.
    """

    classes: npt.NDArray[Any]
    priors: FloatArray
    confusions: FloatArray
    worker_ids: npt.NDArray[Any]
    default_confusion: FloatArray

    def __post_init__(self) -> None:
        k = len(self.classes)
        if k < 2:
            raise ValueError("need at least two classes")
        if self.priors.shape != (k,) or self.default_confusion.shape != (k, k):
            raise ValueError("priors must be (K,) and default_confusion (K, K)")
        if self.confusions.shape != (len(self.worker_ids), k, k):
            raise ValueError("confusions must be (n_workers, K, K)")

    @cached_property
    def _log_tables(self) -> FloatArray:
        # Last slot is the default so unseen workers index it with -1.
        stacked = np.concatenate([self.confusions, self.default_confusion[None]], axis=0)
        return np.asarray(np.log(stacked), dtype=np.float64)

    @cached_property
    def _worker_index(self) -> dict[Any, int]:
        return {w: i for i, w in enumerate(self.worker_ids.tolist())}

    def confusion(self, worker: Any) -> FloatArray:
        """The worker's confusion matrix, or the default for an unseen worker."""
        i = self._worker_index.get(_py(worker))
        return self.default_confusion if i is None else self.confusions[i]

    def worker_codes(self, workers: npt.ArrayLike) -> IntArray:
        """Index of each worker into ``confusions`` (-1 = default)."""
        return np.fromiter(
            (self._worker_index.get(w, -1) for w in np.asarray(workers).tolist()), dtype=np.int64
        )

    @classmethod
    def from_confusions(
        cls,
        classes: npt.ArrayLike,
        priors: npt.ArrayLike,
        confusions: Mapping[Any, npt.ArrayLike] | npt.ArrayLike,
        worker_ids: npt.ArrayLike | None = None,
        *,
        default_confusion: npt.ArrayLike | None = None,
        floor: float = 1e-3,
    ) -> WorkerModel:
        """From a mapping worker -> KxK matrix, or an (n, K, K) array plus ``worker_ids``.

        ``default_confusion`` defaults to the mean of the workers' matrices.
        """
        if isinstance(confusions, Mapping):
            worker_ids = list(confusions.keys())
            stack = np.asarray([np.asarray(c, np.float64) for c in confusions.values()])
        else:
            stack = np.asarray(confusions, dtype=np.float64)
            if worker_ids is None:
                raise ValueError("worker_ids is required with an array of confusions")
        k = len(np.asarray(classes))
        stack = stack.reshape(-1, k, k)
        if default_confusion is None:
            if len(stack) == 0:
                raise ValueError("default_confusion is required when there are no workers")
            default_confusion = stack.mean(axis=0)
        p = np.maximum(np.asarray(priors, dtype=np.float64), floor)
        return cls(
            classes=np.asarray(classes),
            priors=p / p.sum(),
            confusions=_row_stochastic(stack, floor),
            worker_ids=np.asarray(worker_ids),
            default_confusion=_row_stochastic(default_confusion, floor),
        )

    @classmethod
    def one_coin(
        cls,
        classes: npt.ArrayLike,
        priors: npt.ArrayLike,
        skills: Mapping[Any, float] | npt.ArrayLike,
        worker_ids: npt.ArrayLike | None = None,
        *,
        default_skill: float | None = None,
        floor: float = 1e-3,
    ) -> WorkerModel:
        """Skill-only workers: right with probability ``skill``, else uniformly wrong."""
        if isinstance(skills, Mapping):
            worker_ids = list(skills.keys())
            s = np.asarray(list(skills.values()), dtype=np.float64)
        else:
            s = np.asarray(skills, dtype=np.float64)
        k = len(np.asarray(classes))
        default = float(np.mean(s)) if default_skill is None else default_skill
        return cls.from_confusions(
            classes,
            priors,
            one_coin_confusion(s, k),
            worker_ids,
            default_confusion=one_coin_confusion(default, k),
            floor=floor,
        )

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        *,
        labels: Any = None,
        strength: float | None = None,
        floor: float = 1e-3,
    ) -> WorkerModel:
        """From a fitted estimator (``confusions_``/``priors_``, or ``skills_`` for one-coin).

        With the training ``labels`` each worker's rows are shrunk towards the pooled matrix:
        ``C_w[k] <- (n_wk C_w[k] + strength D[k]) / (n_wk + strength)`` where ``n_wk`` is the
        expected number of the worker's labels on class-``k`` tasks and ``D`` the
        ``n``-weighted mean matrix, so a worker seen twice is not trusted like one seen 200
        times. ``strength`` defaults to K pseudo-labels per row (about one per cell). In
        bench/adaptive.py's cross-fitting 2 was at or near the best on the two-class sets but
        under-shrank five-class rows (zhang_web, all labels: 0.773 at 2, 0.792 at 5, 0.816 at
        50). Without ``labels`` the matrices are used as they are.
        """
        classes = np.asarray(estimator.classes_)
        k = len(classes)
        workers = np.asarray(estimator.worker_ids_)
        probas = np.asarray(estimator.probas_, dtype=np.float64)
        priors = getattr(estimator, "priors_", None)
        if priors is None:
            priors = probas.mean(axis=0)
        if getattr(estimator, "confusions_", None) is not None:
            conf = np.asarray(estimator.confusions_, dtype=np.float64)
        elif getattr(estimator, "skills_", None) is not None:
            conf = one_coin_confusion(np.clip(estimator.skills_, 0.0, 1.0), k)
        else:
            raise ValueError("estimator has neither confusions_ nor skills_")
        if labels is None:
            return cls.from_confusions(classes, priors, conf, workers, floor=floor)
        strength = float(k) if strength is None else strength
        coded = encode(labels, classes=classes)
        truth = np.zeros((coded.n_tasks, k))
        pos = index_of(coded.task_ids, estimator.task_ids_)
        truth[pos >= 0] = probas[pos[pos >= 0]]
        per_coded = expected_confusion_counts(coded, truth).sum(axis=2)  # (W_coded, K)
        n_wk = np.zeros((len(workers), k))
        w_pos = index_of(coded.worker_ids, workers)
        n_wk[w_pos[w_pos >= 0]] = per_coded[w_pos >= 0]
        weight = n_wk[:, :, None]
        pooled = (weight * conf).sum(axis=0) / np.maximum(weight.sum(axis=0), 1e-12)
        pooled = np.where(weight.sum(axis=0) > 0, pooled, conf.mean(axis=0))
        shrunk = (weight * conf + strength * pooled[None]) / (weight + strength)
        return cls.from_confusions(
            classes, priors, shrunk, workers, default_confusion=pooled, floor=floor
        )


@dataclass(frozen=True)
class Decision:
    """Verdict for one task. ``reason`` is one of ``REASONS``.

    ``confidence`` is what the stopping rule used: the calibrated probability that ``label``
    is right when ``decide`` had a calibrator, else ``raw_confidence`` (the model's top
    posterior). ``posterior`` is always the model's.
    """

    done: bool
    label: Any
    posterior: dict[Any, float]
    confidence: float
    reason: str
    n_labels: int
    raw_confidence: float | None = None


@dataclass(frozen=True)
class BatchDecision:
    """Verdicts for many tasks, one entry per ``task_ids`` element."""

    task_ids: npt.NDArray[Any]
    classes: npt.NDArray[Any]
    n_labels: IntArray
    labels: npt.NDArray[Any]
    probas: FloatArray
    confidence: FloatArray
    done: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.str_]
    raw_confidence: FloatArray | None = None


def log_posteriors(
    tasks: IntArray,
    worker_codes: IntArray,
    labels: IntArray,
    n_tasks: int,
    model: WorkerModel,
) -> FloatArray:
    """Normalised log posteriors ``(n_tasks, K)`` from integer-coded labels.

    ``worker_codes`` index ``model.confusions`` (-1 = default), ``labels`` index
    ``model.classes``. One gather and K bincounts: linear in the number of labels.
    """
    k = len(model.classes)
    contrib = model._log_tables[worker_codes, :, labels]  # (n_labels, K): log C_w[:, l]
    out = np.empty((n_tasks, k), dtype=np.float64)
    for c in range(k):
        out[:, c] = np.bincount(tasks, weights=contrib[:, c], minlength=n_tasks)
    out += np.log(model.priors)[None]
    return np.asarray(out - logsumexp(out, axis=1, keepdims=True), dtype=np.float64)


def _check_bounds(min_labels: int, max_labels: int, target_confidence: float) -> None:
    if min_labels < 0 or max_labels < 1 or min_labels > max_labels:
        raise ValueError("need 0 <= min_labels <= max_labels and max_labels >= 1")
    if not 0.0 < target_confidence <= 1.0:
        raise ValueError("target_confidence must be in (0, 1]")


def _reasons(
    n: IntArray, confidence: FloatArray, min_labels: int, max_labels: int, target: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.str_]]:
    below = n < min_labels
    confident = ~below & (confidence >= target)
    at_max = ~below & ~confident & (n >= max_labels)
    reason = np.select(
        [below, confident, at_max], ["below_min", "confident", "max_labels"], default="need_more"
    ).astype(np.str_)
    return confident | at_max, reason


def decide(
    labels: Iterable[tuple[Any, Any]],
    *,
    worker_model: WorkerModel,
    min_labels: int = 1,
    max_labels: int = 5,
    target_confidence: float = 0.95,
    calibrator: Calibrator | None = None,
) -> Decision:
    """Decide one task from its ``(worker, label)`` pairs so far (see the module docstring).

    With a ``calibrator`` (``steelyard.quality.calibration``) the target is compared with the
    calibrated confidence, which makes it a promise about accuracy rather than a knob:

    >>> from steelyard.quality.calibration import Calibrator
    >>> model = WorkerModel.one_coin(["x", "y"], [0.5, 0.5], {}, default_skill=0.9)
    >>> raw = decide([("a", "x"), ("b", "x")], worker_model=model)
    >>> cal = decide([("a", "x"), ("b", "x")], worker_model=model,
    ...              calibrator=Calibrator(prior_mean=(0.5, 0.5, 0.0), credibility=None))
    >>> (raw.done, round(raw.confidence, 3)), (cal.done, round(cal.confidence, 3))
    ((True, 0.988), (False, 0.9))
    """
    _check_bounds(min_labels, max_labels, target_confidence)
    pairs = list(labels)
    m = worker_model
    workers = m.worker_codes(np.asarray([_py(w) for w, _ in pairs], dtype=object))
    classes = index_of(np.asarray([_py(lab) for _, lab in pairs], dtype=object), m.classes)
    if np.any(classes < 0):
        raise ValueError("a label is not among the worker model's classes")
    n = len(pairs)
    logp = log_posteriors(np.zeros(n, dtype=np.int64), workers, classes, 1, m)[0]
    post = np.exp(logp)
    best = int(np.argmax(post))
    raw = post[best : best + 1]
    conf = raw if calibrator is None else calibrator.apply(raw)
    done, reason = _reasons(np.array([n]), conf, min_labels, max_labels, target_confidence)
    return Decision(
        done=bool(done[0]),
        label=_py(m.classes[best]),
        posterior={_py(c): float(p) for c, p in zip(m.classes, post, strict=True)},
        confidence=float(conf[0]),
        reason=str(reason[0]),
        n_labels=n,
        raw_confidence=float(raw[0]),
    )


def decide_batch(
    labels: Any,
    *,
    worker_model: WorkerModel,
    min_labels: int = 1,
    max_labels: int = 5,
    target_confidence: float = 0.95,
    calibrator: Calibrator | None = None,
) -> BatchDecision:
    """``decide`` for every task of a long (task, worker, label) table, vectorised.

    >>> model = WorkerModel.one_coin([0, 1], [0.5, 0.5], {"w": 0.9}, default_skill=0.7)
    >>> b = decide_batch({"task": [1, 1, 2], "worker": ["w", "v", "v"], "label": [1, 1, 0]},
    ...                  worker_model=model)
    >>> b.labels.tolist(), b.reason.tolist()
    ([1, 0], ['confident', 'need_more'])
    """
    _check_bounds(min_labels, max_labels, target_confidence)
    m = worker_model
    coded = encode(labels, classes=m.classes)
    worker_codes = m.worker_codes(coded.worker_ids)[coded.workers]
    logp = log_posteriors(coded.tasks, worker_codes, coded.labels, coded.n_tasks, m)
    probas = np.exp(logp)
    best = probas.argmax(axis=1)
    raw = probas[np.arange(coded.n_tasks), best]
    confidence = raw if calibrator is None else calibrator.apply(raw)
    n = np.bincount(coded.tasks, minlength=coded.n_tasks).astype(np.int64)
    done, reason = _reasons(n, confidence, min_labels, max_labels, target_confidence)
    return BatchDecision(
        task_ids=coded.task_ids,
        classes=m.classes,
        n_labels=n,
        labels=m.classes[best],
        probas=probas,
        confidence=confidence,
        done=done,
        reason=reason,
        raw_confidence=raw,
    )


@dataclass(frozen=True)
class NextLabelValue:
    """What one more label is expected to do, per task.

    ``p_done``: probability the task reaches the target after it; ``p_flip``: probability the
    answer changes; ``expected_gain``: ``E[max posterior after] - max posterior now`` (>= 0),
    the expected gain in accuracy from buying it.
    """

    p_done: FloatArray
    p_flip: FloatArray
    expected_gain: FloatArray


def next_label_value(
    probas: npt.ArrayLike,
    *,
    worker_model: WorkerModel,
    target_confidence: float = 0.95,
    worker: Any = None,
) -> NextLabelValue:
    """Myopic value of one more label from ``worker`` (default: the average worker).

    With current posterior ``p`` and confusion ``C``, the next label is ``l`` with probability
    ``q_l = sum_k p_k C[k, l]`` and then the posterior is ``p_k C[k, l] / q_l``; so
    ``E[max after] = sum_l max_k p_k C[k, l]``.

    >>> model = WorkerModel.one_coin([0, 1], [0.5, 0.5], {}, default_skill=0.9)
    >>> v = next_label_value([[0.5, 0.5], [0.9, 0.1]], worker_model=model, target_confidence=0.95)
    >>> v.p_done.round(2).tolist(), v.expected_gain.round(2).tolist()
    ([0.0, 0.82], [0.4, 0.0])
    """
    p = np.atleast_2d(np.asarray(probas, dtype=np.float64))
    c = worker_model.default_confusion if worker is None else worker_model.confusion(worker)
    joint = p[:, :, None] * c[None]  # (n, K true, L given)
    q = joint.sum(axis=1)  # predictive distribution of the next label
    after = joint / np.maximum(q[:, None, :], 1e-300)
    conf_after = after.max(axis=1)
    flips = after.argmax(axis=1) != p.argmax(axis=1)[:, None]
    return NextLabelValue(
        p_done=(q * (conf_after >= target_confidence)).sum(axis=1),
        p_flip=(q * flips).sum(axis=1),
        expected_gain=np.maximum(joint.max(axis=1).sum(axis=1) - p.max(axis=1), 0.0),
    )


def _py(value: Any) -> Any:
    """numpy scalars → Python scalars so that dict lookups match plain ids."""
    return value.item() if isinstance(value, np.generic) else value
