"""A project's worker model for categorical tasks: fitted from its stored labels, kept as JSON.

The workflow engine fits one per project in the background (never per request) and reads it at
completion time. The fit is Dawid-Skene (the quality core's default for categorization) with
each worker's rows shrunk towards the pooled matrix (``WorkerModel.from_estimator`` with the
training labels), so a worker seen on two tasks is not trusted like one seen on two hundred.
The pooled matrix is the default for workers the fit has not seen.

The stored form is plain JSON (lists of floats) so that it fits a JSON column; ``loads`` gives
back a ``WorkerModel`` and, when the project has one, its gold-fitted ``Calibrator``.

Example:
    >>> table = {"task": [1, 1, 2, 2, 3, 3], "worker": ["a", "b"] * 3,
    ...          "label": ["x", "x", "y", "y", "x", "y"]}
    >>> model = fit_worker_model(table)
    >>> doc = dumps(model)
    >>> back, cal = loads(doc)
    >>> back.classes.tolist(), cal is None, back.confusions.shape
    (['x', 'y'], True, (2, 2, 2))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from steelyard.quality.adaptive import WorkerModel
from steelyard.quality.calibration import Calibrator, stopping_pairs
from steelyard.quality.dawid_skene import DawidSkene

#: Bumped when the stored form changes; an unknown version reads as "no model".
FORMAT = 1
#: Fewer gold tasks than this: no calibrator (the prior alone is not "gold-derived").
MIN_GOLD_TASKS = 5
#: Fewer gold items (answered at least twice) than this: no calibrator from served gold. Each
#: item weighs one in the fit (its draws share one truth), so this is the number of independent
#: outcomes: at 30 a 0.9 accuracy is known to about +-0.055 (binomial SE), which the 90 % lower
#: bound turns into a promise within ~0.07 of the point map; with fewer the map is mostly its
#: prior while claiming to be fitted on gold.
MIN_GOLD_ITEMS = 30
#: Random answer orders drawn per gold item (deterministic seed): enough that every threshold a
#: live task can reach is seen on most items, few enough to stay a few ms per hundred items.
GOLD_DRAWS = 8
#: The calibrator's prior for a project's served gold: ``Calibrator.pooled`` over the beta maps
#: fitted on the gold of the ten categorical public datasets in ``bench/adaptive_replay.py``
#: (fixed k = 3 replays, seed 0): accuracy plateaus below the raw posterior on real crowds, so
#: a new project starts from that, not from the identity. A customer's project is held out
#: from it by construction; the replay scores each dataset with the prior pooled without it.
DEFAULT_PRIOR = Calibrator(prior_mean=(0.58, 0.32, 0.79), prior_sd=(0.48, 0.29, 0.64))
#: Folds of the cross-fit that scores gold out of sample (``calibrate_cross_fitted``): two
#: extra fits, each on all live labels and half the gold.
GOLD_FOLDS = 2


def fit_worker_model(
    table: Mapping[str, Sequence[Any]],
    *,
    gold: Mapping[Any, Any] | None = None,
    n_iter: int = 100,
) -> WorkerModel | None:
    """Dawid-Skene on ``table`` (columns ``task``, ``worker``, ``label``), shrunk per worker;
    ``None`` when there is nothing to learn from (no labels, or a single class).

    ``gold``: task -> its known class, for tasks of ``table`` whose answer is known (served
    evaluation items). Their posteriors are clamped to the truth in every EM step
    (semi-supervised), so a worker's confusion row learns from gold what it would otherwise
    guess from agreement. Gold of a task with no row in ``table`` is ignored."""
    labels = list(table["label"])
    known = set(labels)
    if len(known) < 2:
        return None
    tasks = set(table["task"])
    gold = {t: c for t, c in (gold or {}).items() if t in tasks and c in known}
    estimator = DawidSkene(n_iter=n_iter).fit(table, gold=gold or None)
    return WorkerModel.from_estimator(estimator, labels=table)


def calibrate_on_answers(
    model: WorkerModel,
    answers: Mapping[Any, Sequence[tuple[Any, Any]]],
    truth: Mapping[Any, Any],
    *,
    size: int,
    stopping: bool = True,
    draws: int = GOLD_DRAWS,
    seed: int = 0,
    min_items: int | None = None,
    prior: Calibrator | None = None,
) -> Calibrator | None:
    """A calibrator fitted on served gold items, shaped like live tasks.

    ``answers``: gold item -> its (worker, label) answers (any order); ``truth``: item -> the
    right class. A live task gets ``size`` labels (``labels_max`` when adaptive, ``k`` when
    fixed), a gold item is answered by however many workers were served it, so each item is
    replayed ``draws`` times as a live task would have been: a random order of its answers
    (seeded: the same data give the same calibrator) cut at ``size``, the model's posterior
    after each label. ``stopping``: the pairs a stopping rule needs
    (``calibration.stopping_pairs``: right at the first label reaching each threshold), else
    one pair per draw (the posterior after all ``size`` labels, what a fixed-k task reports).
    An item's draws weigh one in all: they share one truth. ``None`` with fewer than
    ``min_items`` (default ``MIN_GOLD_ITEMS``) items answered at least twice, of a class the
    model knows.

    ``model`` must not have seen these answers: fitted with them (clamped or not) its
    posteriors on them are in-sample and the calibrator believes them (replayed, "stop at 0.9"
    then stopped tasks right 76 % of the time on zheng_dog). ``calibrate_cross_fitted`` does
    that for a project whose model was fitted on its gold."""
    pairs = _gold_pairs(model, answers, truth, size, stopping, draws, seed)
    return _fit_pairs(pairs, stopping, draws, min_items, prior)


_Pairs = tuple[list[float], list[bool], list[int], int]


def _gold_pairs(
    model: WorkerModel,
    answers: Mapping[Any, Sequence[tuple[Any, Any]]],
    truth: Mapping[Any, Any],
    size: int,
    stopping: bool,
    draws: int,
    seed: int,
    first_id: int = 0,
) -> _Pairs:
    """(confidence, right, draw id) rows of ``calibrate_on_answers`` and the items used."""
    if size < 1 or draws < 1:
        raise ValueError("size and draws must be >= 1")
    classes = model.classes.tolist()
    index = {c: i for i, c in enumerate(classes)}
    log_prior = np.log(model.priors)
    rng = np.random.default_rng(seed)
    conf: list[float] = []
    right: list[bool] = []
    ids: list[int] = []
    n_items, n_draws = 0, first_id
    for item in sorted(answers, key=str):  # a fixed order: the seed then fixes the draws
        pairs = list(answers[item])
        if item not in truth or truth[item] not in index or len(pairs) < 2:
            continue
        if any(label not in index for _, label in pairs):
            continue
        contrib = np.asarray([np.log(model.confusion(w)[:, index[lab]]) for w, lab in pairs])
        m = min(size, len(pairs))
        for _ in range(draws):
            logp = np.cumsum(contrib[rng.permutation(len(pairs))[:m]], axis=0) + log_prior[None]
            post = np.exp(logp - logp.max(axis=1, keepdims=True))
            post /= post.sum(axis=1, keepdims=True)
            if not stopping:
                post = post[-1:]
            best = post.argmax(axis=1)
            conf.extend(post[np.arange(len(best)), best].tolist())
            right.extend(classes[b] == truth[item] for b in best)
            ids.extend([n_draws] * len(best))
            n_draws += 1
        n_items += 1
    return conf, right, ids, n_items


def _fit_pairs(
    pairs: _Pairs,
    stopping: bool,
    draws: int,
    min_items: int | None,
    prior: Calibrator | None,
) -> Calibrator | None:
    conf, right, ids, n_items = pairs
    if n_items < (MIN_GOLD_ITEMS if min_items is None else min_items):
        return None
    if stopping:
        r, y, w = stopping_pairs(conf, right, ids)
    else:
        r, y, w = np.asarray(conf), np.asarray(right, dtype=np.float64), np.ones(len(conf))
    return (prior or Calibrator()).fit(r, y, w / draws)


FitFn = Callable[[Mapping[str, Sequence[Any]], Mapping[Any, Any]], WorkerModel | None]


def calibrate_cross_fitted(
    table: Mapping[str, Sequence[Any]],
    gold_table: Mapping[str, Sequence[Any]],
    truth: Mapping[Any, Any],
    *,
    size: int,
    stopping: bool = True,
    folds: int = GOLD_FOLDS,
    draws: int = GOLD_DRAWS,
    seed: int = 0,
    min_items: int | None = None,
    prior: Calibrator | None = None,
    fit: FitFn | None = None,
) -> Calibrator | None:
    """``calibrate_on_answers`` with out-of-sample posteriors: the gold items (rows of
    ``gold_table``, truth in ``truth``) are cut into ``folds`` (seeded), and each fold is scored
    by a model fitted on ``table`` plus the *other* folds' gold (clamped) — as a live task is
    scored by a model fitted before its labels arrived. ``fit(table, gold)`` defaults to
    ``fit_worker_model``; ``folds`` extra fits is the price."""
    if folds < 2:
        raise ValueError("folds must be >= 2")
    fit = fit or (lambda t, g: fit_worker_model(t, gold=g))
    items = sorted(set(gold_table["task"]), key=str)
    if len(items) < (MIN_GOLD_ITEMS if min_items is None else min_items):
        return None  # not enough even before any fit: skip the folds' fits
    # Stratified by truth: each class's gold in every fold, so a class that live labels never
    # use (only gold shows it) is still a class of every fold's model.
    rng = np.random.default_rng(seed)
    shuffled = [items[i] for i in rng.permutation(len(items))]
    ordered = sorted(shuffled, key=lambda t: str(truth.get(t)))  # stable: shuffled per class
    fold_of = {t: i % folds for i, t in enumerate(ordered)}
    rows = list(zip(gold_table["task"], gold_table["worker"], gold_table["label"], strict=True))
    conf: list[float] = []
    right: list[bool] = []
    ids: list[int] = []
    n_items = 0
    for f in range(folds):
        train = [r for r in rows if fold_of[r[0]] != f]
        combined = {
            "task": [*table["task"], *(r[0] for r in train)],
            "worker": [*table["worker"], *(r[1] for r in train)],
            "label": [*table["label"], *(r[2] for r in train)],
        }
        model = fit(combined, {t: c for t, c in truth.items() if fold_of.get(t, f) != f})
        if model is None:
            continue
        answers: dict[Any, list[tuple[Any, Any]]] = {}
        for t, w, lab in rows:
            if fold_of[t] == f:
                answers.setdefault(t, []).append((w, lab))
        c, y, i, n = _gold_pairs(
            model, answers, truth, size, stopping, draws, seed + 1 + f, ids[-1] + 1 if ids else 0
        )
        conf += c
        right += y
        ids += i
        n_items += n
    return _fit_pairs((conf, right, ids, n_items), stopping, draws, min_items, prior)


def calibrate_on_gold(
    model: WorkerModel,
    table: Mapping[str, Sequence[Any]],
    gold: Mapping[Any, Any],
    *,
    prior: Calibrator | None = None,
) -> Calibrator | None:
    """``prior`` (default: the identity-centred one) fitted on the gold tasks of ``table``
    (rows of a task in label order), as docs/quality-calibration.md says: each gold task's
    top-label posterior after each of its labels, and whether that answer was right, turned
    into stopping pairs. ``None`` with fewer than ``MIN_GOLD_TASKS`` gold tasks labeled.

    The model was fitted on these same labels, so the posteriors are in-sample (a little
    optimistic); the calibrator's lower bound is what absorbs that."""
    by_task: dict[Any, list[tuple[Any, Any]]] = {}
    for task, worker, label in zip(table["task"], table["worker"], table["label"], strict=True):
        if task in gold:
            by_task.setdefault(task, []).append((worker, label))
    classes = model.classes.tolist()
    log_prior = np.log(model.priors)
    conf: list[float] = []
    right: list[bool] = []
    ids: list[int] = []
    n_tasks = 0
    for task, pairs in by_task.items():
        if gold[task] not in classes or any(label not in classes for _, label in pairs):
            continue
        contrib = np.asarray(
            [np.log(model.confusion(w)[:, classes.index(label)]) for w, label in pairs]
        )
        logp = np.cumsum(contrib, axis=0) + log_prior[None]
        post = np.exp(logp - logp.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        best = post.argmax(axis=1)
        conf.extend(post[np.arange(len(pairs)), best].tolist())
        right.extend(classes[b] == gold[task] for b in best)
        ids.extend([n_tasks] * len(pairs))
        n_tasks += 1
    if n_tasks < MIN_GOLD_TASKS:
        return None
    r, y, w = stopping_pairs(conf, right, ids)
    return (prior or Calibrator()).fit(r, y, w)


def dumps(model: WorkerModel, calibrator: Calibrator | None = None) -> dict[str, Any]:
    """The JSON form of ``model`` (and ``calibrator``), rounded to 6 digits: compact, and far
    finer than the estimate's own error."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "classes": [_plain(c) for c in model.classes.tolist()],
        "priors": np.round(model.priors, 6).tolist(),
        "workers": [_plain(w) for w in model.worker_ids.tolist()],
        "confusions": np.round(model.confusions, 6).tolist(),
        "default": np.round(model.default_confusion, 6).tolist(),
    }
    if calibrator is not None:
        doc["calibrator"] = {
            "prior_mean": list(calibrator.prior_mean),
            "prior_sd": list(calibrator.prior_sd),
            "credibility": calibrator.credibility,
            "params": list(calibrator.params),
            "covariance": list(calibrator.covariance),
            "n_fit": calibrator.n_fit,
        }
    return doc


def loads(doc: Mapping[str, Any]) -> tuple[WorkerModel, Calibrator | None]:
    """``dumps``' inverse; raises ``ValueError`` on a document it cannot read."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown worker model format {doc.get('format')!r}")
    k = len(doc["classes"])
    confusions = np.asarray(doc["confusions"], dtype=np.float64).reshape(-1, k, k)
    model = WorkerModel.from_confusions(
        np.asarray(doc["classes"], dtype=object),
        doc["priors"],
        confusions,
        np.asarray(doc["workers"], dtype=object),
        default_confusion=doc["default"],
    )
    stored = doc.get("calibrator")
    calibrator = None
    if stored is not None:
        calibrator = Calibrator(
            prior_mean=_triple(stored["prior_mean"]),
            prior_sd=_triple(stored["prior_sd"]),
            credibility=stored["credibility"],
            params=_triple(stored["params"]),
            covariance=tuple(float(v) for v in stored["covariance"]),
            n_fit=float(stored["n_fit"]),
        )
    return model, calibrator


def _triple(values: Sequence[Any]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
