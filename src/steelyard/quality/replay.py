"""Replay crowdsourced labels through adaptive redundancy as an operator would have run it.

Used by ``bench/adaptive_replay.py`` and the calibration tests; pure numpy plus the quality
core's estimators. The protocol (everything an operator could know at each point, nothing more):

* **Arrival.** Tasks arrive in a random order and each task's labels in a random order (fixed
  ``seed``); the public datasets carry no timestamps, and their row order is sorted by ids.
* **Chunks.** The stream is cut into ``n_chunks`` equal chunks of tasks. The worker model that
  decides chunk ``j`` is Bayesian Dawid-Skene at its fixed strength 4 (``BayesianDawidSkene``;
  the default estimator since issue 11 picks the strength per dataset, and the calibration
  figures were measured with strength 4, not re-measured with the picked ones) fitted on the
  labels *bought* in chunks ``< j`` (with the gold answers of the gold tasks among them), made a
  ``WorkerModel`` with shrinkage (``WorkerModel.from_estimator``), exactly as a background
  refresh would. Chunk 0 is a burn-in (``burn_k`` labels per task, fixed) and is not scored.
* **Gold.** A share ``gold_rate`` of the tasks that have a known answer are evaluation tasks:
  they are labelled up to ``max_labels`` (their labels count as gold overhead, not as live cost),
  and, once their chunk is done, their top-label posteriors after each label *as computed at
  the time* (burn-in gold: by a model fitted without it) become calibration pairs:
  ``calibration.stopping_pairs`` by default, or every prefix (``pairs="prefix"``, each task's
  pairs weighing ``pairs_per_task`` in all, default one per pair). The calibrator for chunk
  ``j`` is the prior refitted on the pairs of chunks ``0 .. j-1``. ``pairs="draws"`` is what
  the workflow's background fit does instead (``project_model.calibrate_on_answers``): the
  gold tasks of chunks ``< j`` replayed in random orders, each scored by a model fitted on
  the bought live labels and the other fold's gold (``project_model.calibrate_cross_fitted``),
  and the prior map unfitted below ``project_model.MIN_GOLD_ITEMS`` gold tasks.
* **Scoring** is on live (non-gold) tasks of chunks ``>= 1`` that have a known answer.

Example:
    >>> rng = np.random.default_rng(1)
    >>> truth = rng.integers(0, 2, 300)
    >>> rows = [(t, w, truth[t] if rng.random() < 0.75 else 1 - truth[t])
    ...         for t in range(300) for w in rng.choice(40, 6, replace=False)]
    >>> t, w, lab = (np.array(c) for c in zip(*rows))
    >>> stream = Stream.build(t, w, lab, dict(enumerate(truth)), seed=0)
    >>> res = replay(stream, Policy("fixed", 3))
    >>> 0.75 < res.accuracy < 1.0, res.labels_per_task
    (True, 3.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import logsumexp

from steelyard.quality._data import FloatArray, IntArray, factorize
from steelyard.quality.adaptive import WorkerModel
from steelyard.quality.bayes_ds import BayesianDawidSkene
from steelyard.quality.calibration import Calibrator, stopping_pairs
from steelyard.quality.project_model import calibrate_cross_fitted

__all__ = ["Policy", "ReplayResult", "Stream", "pooled_prior", "replay"]


@dataclass(frozen=True)
class Stream:
    """Labels in arrival order. Task codes are arrival positions; rows sorted by task."""

    tasks: IntArray
    workers: npt.NDArray[Any]
    labels: IntArray  # index into ``classes``
    classes: npt.NDArray[Any]
    truth: IntArray  # per task, index into ``classes``; -1 = unknown
    start: IntArray
    size: IntArray
    rank: IntArray  # position of the row within its task (0-based)

    @property
    def n_tasks(self) -> int:
        return len(self.start)

    @classmethod
    def build(
        cls,
        tasks: npt.ArrayLike,
        workers: npt.ArrayLike,
        labels: npt.ArrayLike,
        truth: Mapping[Any, Any],
        *,
        seed: int = 0,
    ) -> Stream:
        """Shuffle tasks and, within each task, labels with ``seed``; code everything."""
        t_arr, w_arr, l_arr = np.asarray(tasks), np.asarray(workers), np.asarray(labels)
        task_ids, t_codes = factorize(t_arr)
        gold_vals = [truth.get(t) for t in task_ids.tolist()]
        extra = np.asarray([g for g in gold_vals if g is not None], dtype=l_arr.dtype)
        classes, codes = factorize(np.concatenate([l_arr, extra]))
        l_codes = codes[: len(l_arr)]
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        truth_codes = np.asarray([lookup.get(g, -1) for g in gold_vals], dtype=np.int64)
        rng = np.random.default_rng(seed)
        arrival = rng.permutation(len(task_ids))  # arrival[code] = position
        pos = arrival[t_codes]
        order = np.lexsort((rng.random(len(pos)), pos))
        size = np.bincount(pos, minlength=len(task_ids)).astype(np.int64)
        start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
        sorted_tasks = pos[order].astype(np.int64)
        truth_by_pos = np.empty_like(truth_codes)
        truth_by_pos[arrival] = truth_codes
        return cls(
            tasks=sorted_tasks,
            workers=w_arr[order],
            labels=l_codes[order].astype(np.int64),
            classes=classes,
            truth=truth_by_pos,
            start=start,
            size=size,
            rank=np.arange(len(order), dtype=np.int64) - start[sorted_tasks],
        )


@dataclass(frozen=True)
class Policy:
    """``fixed``: buy ``value`` labels; ``adaptive``: stop when confidence >= ``value``.

    ``calibrated`` adaptive policies stop on the calibrator's confidence, the others on the
    raw posterior.
    """

    kind: Literal["fixed", "adaptive"]
    value: float
    calibrated: bool = False


@dataclass(frozen=True)
class ReplayResult:
    """Per scored live task and per calibration pair; see the module docstring."""

    n_labels: IntArray  # labels bought per scored task
    correct: npt.NDArray[np.bool_]  # answer at the stop == gold
    raw: FloatArray  # top-label posterior at the stop
    calibrated: FloatArray  # calibrated confidence (the promised bound) at the stop
    point: FloatArray  # the calibrator's point map at the stop
    reached: npt.NDArray[np.bool_]  # adaptive: stopped because it reached the target
    prefix_raw: FloatArray  # every prefix (1..max_labels) of the scored tasks
    prefix_calibrated: FloatArray  # point map
    prefix_correct: npt.NDArray[np.bool_]
    gold_raw: FloatArray  # calibration pairs collected from gold tasks
    gold_correct: npt.NDArray[np.bool_]
    gold_weight: FloatArray
    gold_labels_per_live_task: float

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")

    @property
    def labels_per_task(self) -> float:
        return float(self.n_labels.mean()) if len(self.n_labels) else float("nan")

    @property
    def confident_accuracy(self) -> float:
        """Accuracy of the tasks that stopped because they reached the target."""
        return float(self.correct[self.reached].mean()) if self.reached.any() else float("nan")


def _model(stream: Stream, rows: IntArray, gold_tasks: IntArray) -> WorkerModel:
    """Default estimator on the bought ``rows``, gold clamped, with every class of the stream."""
    data = {
        "task": stream.tasks[rows],
        "worker": stream.workers[rows],
        "label": stream.labels[rows],
    }
    gold = {int(t): int(stream.truth[t]) for t in gold_tasks.tolist()}
    est = BayesianDawidSkene().fit(data, gold=gold or None)
    model = WorkerModel.from_estimator(est, labels=data)
    k = len(stream.classes)
    have = np.asarray(model.classes, dtype=np.int64)
    if len(have) == k:
        return model
    # A class nobody has used yet: embed in the full class set, uniform rows for it.
    conf = np.full((len(model.worker_ids), k, k), 1.0 / k)
    conf[np.ix_(np.arange(len(model.worker_ids)), have, have)] = model.confusions
    default = np.full((k, k), 1.0 / k)
    default[np.ix_(have, have)] = model.default_confusion
    priors = np.full(k, 1e-3)
    priors[have] = model.priors
    return WorkerModel.from_confusions(
        np.arange(k), priors, conf, model.worker_ids, default_confusion=default
    )


def _prefix_probas(stream: Stream, rows: IntArray, model: WorkerModel) -> FloatArray:
    """Posterior after each row of ``rows`` (whole tasks, contiguous, in arrival order)."""
    tasks = stream.tasks[rows]
    codes = model.worker_codes(stream.workers[rows])
    contrib = model._log_tables[codes, :, stream.labels[rows]]
    total = np.cumsum(contrib, axis=0)
    first = np.flatnonzero(np.r_[True, tasks[1:] != tasks[:-1]])
    before = np.where(first[:, None] > 0, total[np.maximum(first - 1, 0)], 0.0)
    group = np.cumsum(np.r_[True, tasks[1:] != tasks[:-1]]) - 1
    loglik = total - before[group] + np.log(model.priors)[None]
    return np.asarray(np.exp(loglik - logsumexp(loglik, axis=1, keepdims=True)), np.float64)


def _pairs(
    raw: FloatArray,
    correct: npt.NDArray[np.bool_],
    tasks: IntArray,
    gold_row: npt.NDArray[np.bool_],
    pairs_per_task: float | None,
    kind: Literal["stopping", "prefix"],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Calibration pairs of the gold rows, weighted (see ``replay``)."""
    g = np.flatnonzero(gold_row)
    if kind == "stopping":
        return stopping_pairs(raw[g], correct[g], tasks[g])
    _, inverse, counts = np.unique(tasks[g], return_inverse=True, return_counts=True)
    n = counts[inverse].astype(np.float64)
    m = n if pairs_per_task is None else np.minimum(pairs_per_task, n)
    return raw[g], correct[g].astype(np.float64), m / n


def _served_gold_calibrator(
    stream: Stream,
    bought: IntArray,
    gold_tasks: IntArray,
    prior: Calibrator,
    max_labels: int,
    seed: int,
) -> Calibrator:
    """What the workflow's background fit stores (``project_model.calibrate_cross_fitted``):
    the gold tasks seen so far, replayed in random orders cut at a live task's
    ``max_labels``, each under a model fitted on the bought live labels and the other fold's
    gold; below ``project_model.MIN_GOLD_ITEMS`` the prior map unfitted, as the workflow
    stores for a project that serves gold but has too little of it."""
    live = bought[~np.isin(stream.tasks[bought], gold_tasks)]
    table = {
        "task": stream.tasks[live].tolist(),
        "worker": stream.workers[live].tolist(),
        "label": stream.labels[live].tolist(),
    }
    gold_table: dict[str, list[Any]] = {"task": [], "worker": [], "label": []}
    for t in gold_tasks.tolist():
        lo, n = int(stream.start[t]), min(int(stream.size[t]), max_labels)
        gold_table["task"] += [t] * n
        gold_table["worker"] += stream.workers[lo : lo + n].tolist()
        gold_table["label"] += stream.labels[lo : lo + n].tolist()
    truth = {t: int(stream.truth[t]) for t in gold_tasks.tolist()}

    def fit(tbl: Mapping[str, Sequence[Any]], gold: Mapping[Any, Any]) -> WorkerModel:
        est = BayesianDawidSkene().fit(tbl, gold=dict(gold) or None)
        return WorkerModel.from_estimator(est, labels=tbl)

    fitted = calibrate_cross_fitted(
        table, gold_table, truth, size=max_labels, stopping=True, seed=seed, prior=prior, fit=fit
    )
    return prior if fitted is None else fitted


def replay(
    stream: Stream,
    policy: Policy,
    *,
    prior: Calibrator | None = None,
    max_labels: int = 10,
    n_chunks: int = 10,
    gold_rate: float = 0.1,
    burn_k: int = 5,
    pairs_per_task: float | None = None,
    pairs: Literal["stopping", "prefix", "draws"] = "stopping",
    seed: int = 0,
) -> ReplayResult:
    """Run ``policy`` over ``stream`` (see the module docstring); ``prior`` = unfitted map."""
    if not 0.0 <= gold_rate < 1.0 or n_chunks < 2 or max_labels < 1:
        raise ValueError("need 0 <= gold_rate < 1, n_chunks >= 2, max_labels >= 1")
    prior = Calibrator() if prior is None else prior
    rng = np.random.default_rng(seed + 1)
    known = np.flatnonzero(stream.truth >= 0)
    is_gold = np.zeros(stream.n_tasks, dtype=bool)
    is_gold[rng.choice(known, round(gold_rate * len(known)), replace=False)] = True
    usable = stream.rank < max_labels
    bounds = np.linspace(0, stream.n_tasks, n_chunks + 1).astype(np.int64)
    bought: list[IntArray] = []
    collected: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    out: dict[str, list[npt.NDArray[Any]]] = {}
    gold_labels = live_tasks = 0

    def keep(name: str, value: npt.NDArray[Any]) -> None:
        out.setdefault(name, []).append(value)

    for j in range(n_chunks):
        lo, hi = bounds[j], bounds[j + 1]
        rows = np.arange(stream.start[lo], stream.start[hi - 1] + stream.size[hi - 1])
        rows = rows[usable[rows]]
        tasks = stream.tasks[rows]
        n_so_far = stream.rank[rows] + 1
        last = np.r_[tasks[1:] != tasks[:-1], True]
        gold_row = is_gold[tasks]
        if j == 0:
            live_rows = rows[(n_so_far <= burn_k) & ~gold_row]
            bought.append(rows[(n_so_far <= burn_k) | gold_row])
            if gold_row.any():  # burn-in gold, judged by a model that never saw it
                probas = _prefix_probas(stream, rows, _model(stream, live_rows, live_rows[:0]))
                right = probas.argmax(axis=1) == stream.truth[tasks]
                kind0: Literal["stopping", "prefix"] = "prefix" if pairs == "prefix" else "stopping"
                found = _pairs(probas.max(axis=1), right, tasks, gold_row, pairs_per_task, kind0)
                collected.append(found)
            continue
        seen_gold = np.flatnonzero(is_gold[:lo])
        model = _model(stream, np.concatenate(bought), seen_gold)
        probas = _prefix_probas(stream, rows, model)
        raw = probas.max(axis=1)
        correct = probas.argmax(axis=1) == stream.truth[tasks]
        cal_map = prior
        if pairs == "draws":
            cal_map = _served_gold_calibrator(
                stream, np.concatenate(bought), seen_gold, prior, max_labels, seed
            )
        elif collected:
            r, y, w = (np.concatenate(p) for p in zip(*collected, strict=True))
            cal_map = prior.fit(r, y, w)
        cal = cal_map.apply(raw)
        point = cal_map.point(raw)
        if policy.kind == "fixed":
            stop_row = n_so_far >= policy.value
        else:
            stop_row = (cal if policy.calibrated else raw) >= policy.value
        stop_row |= last  # the task ran out of labels (or hit max_labels)
        stop_row[gold_row & ~last] = False  # gold tasks are labelled to the end
        # First stopping row per task: rows after it in the same task are not bought.
        group = np.cumsum(np.r_[True, tasks[1:] != tasks[:-1]]) - 1
        first = np.full(group[-1] + 1, np.iinfo(np.int64).max)
        np.minimum.at(first, group, np.where(stop_row, np.arange(len(rows)), first.max()))
        bought_mask = np.arange(len(rows)) <= first[group]
        bought.append(rows[bought_mask])
        gold_labels += int((bought_mask & gold_row).sum())
        kind: Literal["stopping", "prefix"] = "prefix" if pairs == "prefix" else "stopping"
        collected.append(_pairs(raw, correct, tasks, gold_row, pairs_per_task, kind))
        stop = first
        scored = (~is_gold[tasks[stop]]) & (stream.truth[tasks[stop]] >= 0)
        live_tasks += int((~is_gold[lo:hi]).sum())
        s = stop[scored]
        keep("n", n_so_far[s])
        keep("correct", correct[s])
        keep("raw", raw[s])
        keep("cal", cal[s])
        keep("point", point[s])
        value = cal if policy.calibrated else raw
        adaptive = policy.kind == "adaptive"
        keep("reached", (value[s] >= policy.value) if adaptive else np.zeros(len(s), bool))
        pre = (~gold_row) & (stream.truth[tasks] >= 0)
        keep("prefix_raw", raw[pre])
        keep("prefix_cal", point[pre])
        keep("prefix_correct", correct[pre])
    cat = {k: np.concatenate(v) for k, v in out.items()}
    r, y, w = (np.concatenate(p) for p in zip(*collected, strict=True))
    return ReplayResult(
        n_labels=cat["n"].astype(np.int64),
        correct=cat["correct"].astype(bool),
        raw=cat["raw"],
        calibrated=cat["cal"],
        point=cat["point"],
        reached=cat["reached"].astype(bool),
        prefix_raw=cat["prefix_raw"],
        prefix_calibrated=cat["prefix_cal"],
        prefix_correct=cat["prefix_correct"].astype(bool),
        gold_raw=r,
        gold_correct=y.astype(bool),
        gold_weight=w,
        gold_labels_per_live_task=gold_labels / max(live_tasks, 1),
    )


def pooled_prior(
    results: Mapping[str, ReplayResult],
    *,
    exclude: Sequence[str] = (),
    credibility: float | None = 0.9,
) -> Calibrator:
    """Leave-one-dataset-out prior: ``Calibrator.pooled`` over maps fitted on other datasets.

    Each dataset in ``results`` but ``exclude`` gets its own map from its gold pairs (a vague
    prior around the identity); their mean and spread are the prior for the held-out one.
    """
    vague = Calibrator(prior_sd=(10.0, 10.0, 10.0), credibility=credibility)
    fits = [
        vague.fit(v.gold_raw, v.gold_correct, v.gold_weight)
        for k, v in results.items()
        if k not in exclude
    ]
    return Calibrator.pooled(fits, credibility=credibility)
