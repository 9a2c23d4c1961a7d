"""Served gold in the per-project worker model: clamped in the fit, and the calibrator fitted on
replays of the gold items cut to a live task's size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from steelyard.quality import project_model as pm
from steelyard.quality.adaptive import WorkerModel, decide
from steelyard.quality.calibration import Calibrator
from steelyard.quality.simulate import simulate


def _accuracy_off_gold(family: str, seed: int, with_gold: bool) -> float:
    crowd = simulate(family, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(crowd.truth)
    gold = {int(t): int(crowd.truth[t]) for t in rng.choice(n, n // 5, replace=False)}
    table = {
        "task": crowd.tasks.tolist(),
        "worker": crowd.workers.tolist(),
        "label": crowd.labels.tolist(),
    }
    model = pm.fit_worker_model(table, gold=gold if with_gold else None)
    assert model is not None
    by_task: dict[int, list[tuple[int, int]]] = {}
    for t, w, lab in zip(
        crowd.tasks.tolist(), crowd.workers.tolist(), crowd.labels.tolist(), strict=True
    ):
        by_task.setdefault(t, []).append((w, lab))
    right = [
        decide(
            a, worker_model=model, min_labels=len(a), max_labels=len(a), target_confidence=1.0
        ).label
        == crowd.truth[t]
        for t, a in by_task.items()
        if t not in gold
    ]
    return float(np.mean(right))


@pytest.mark.parametrize("family", ["spammers", "correlated", "imbalanced"])
def test_gold_recovers_the_truth_of_the_other_tasks_better(family: str) -> None:
    # A fifth of the tasks gold; scored on the rest. Measured (seeds 0-2, mean): spammers
    # 0.806 -> 0.831, correlated 0.664 -> 0.799, imbalanced 0.678 -> 0.804.
    without = np.mean([_accuracy_off_gold(family, s, False) for s in range(3)])
    with_gold = np.mean([_accuracy_off_gold(family, s, True) for s in range(3)])
    assert with_gold > without + 0.02


def test_gold_of_unknown_tasks_or_classes_is_ignored() -> None:
    table = {"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": ["x", "y", "y", "y"]}
    plain = pm.fit_worker_model(table)
    odd = pm.fit_worker_model(table, gold={7: "x", 1: "z"})
    assert plain is not None and odd is not None
    np.testing.assert_allclose(plain.confusions, odd.confusions)
    clamped = pm.fit_worker_model(table, gold={1: "x"})
    assert clamped is not None
    # Told task 1 was "x", worker a (who said x) looks better than worker b (who said y).
    assert clamped.confusion("a")[0, 0] > clamped.confusion("b")[0, 0]


def _gold_items(
    n_items: int, n_answers: int, seed: int = 0
) -> tuple[WorkerModel, dict[int, list[tuple[str, str]]], dict[int, str]]:
    """An over-confident model (it believes 0.95-accurate workers who are right 75 % of the
    time) and gold items answered by ``n_answers`` of them."""
    classes = ["x", "y"]
    workers = [f"w{i}" for i in range(10)]
    model = WorkerModel.one_coin(classes, [0.5, 0.5], dict.fromkeys(workers, 0.95))
    rng = np.random.default_rng(seed)
    answers: dict[int, list[tuple[str, str]]] = {}
    truth: dict[int, str] = {}
    for item in range(n_items):
        truth[item] = classes[item % 2]
        who = rng.choice(workers, n_answers, replace=False)
        answers[item] = [
            (str(w), truth[item] if rng.random() < 0.75 else classes[1 - item % 2]) for w in who
        ]
    return model, answers, truth


def test_the_calibrator_needs_enough_gold_items() -> None:
    model, answers, truth = _gold_items(pm.MIN_GOLD_ITEMS - 1, 5)
    assert pm.calibrate_on_answers(model, answers, truth, size=3) is None
    single = {i: a[:1] for i, a in _gold_items(pm.MIN_GOLD_ITEMS + 5, 5)[1].items()}
    assert pm.calibrate_on_answers(model, single, truth, size=3) is None  # once each: no draw
    with pytest.raises(ValueError, match="size"):
        pm.calibrate_on_answers(model, answers, truth, size=0)


@pytest.mark.parametrize("stopping", [True, False])
def test_the_calibrator_corrects_an_over_confident_model(stopping: bool) -> None:
    model, answers, truth = _gold_items(200, 6)
    cal = pm.calibrate_on_answers(model, answers, truth, size=3, stopping=stopping)
    assert cal is not None
    again = pm.calibrate_on_answers(model, answers, truth, size=3, stopping=stopping)
    assert again is not None and again.params == cal.params  # seeded: same data, same map
    assert 190 <= cal.n_fit <= 200  # an item's draws weigh one in all
    # One label says 0.95; such answers are right 75 % of the time: the promise follows data.
    assert float(cal.point(0.95)) == pytest.approx(0.75, abs=0.06)
    assert float(cal.apply(0.95)) < 0.8
    # Round trip through the stored form.
    back, stored = pm.loads(pm.dumps(model, cal))
    assert isinstance(stored, Calibrator) and stored.params == pytest.approx(cal.params)
    assert back.classes.tolist() == ["x", "y"]


def _crowd_with_gold(
    seed: int = 0,
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], dict[int, int]]:
    """A simulated crowd, a fifth of its tasks served as gold (negative keys, as the workflow
    codes them)."""
    crowd = simulate("spammers", seed=seed)
    rng = np.random.default_rng(seed)
    n = len(crowd.truth)
    gold_tasks = set(rng.choice(n, n // 5, replace=False).tolist())
    table: dict[str, list[Any]] = {"task": [], "worker": [], "label": []}
    gold: dict[str, list[Any]] = {"task": [], "worker": [], "label": []}
    for t, w, lab in zip(
        crowd.tasks.tolist(), crowd.workers.tolist(), crowd.labels.tolist(), strict=True
    ):
        into, key = (gold, -(t + 1)) if t in gold_tasks else (table, t)
        into["task"].append(key)
        into["worker"].append(w)
        into["label"].append(lab)
    return table, gold, {-(t + 1): int(crowd.truth[t]) for t in gold_tasks}


def test_cross_fitted_gold_is_scored_out_of_sample() -> None:
    table, gold, truth = _crowd_with_gold()
    cal = pm.calibrate_cross_fitted(table, gold, truth, size=5)
    assert cal is not None
    assert 0.9 * len(truth) <= cal.n_fit <= len(truth)  # each item weighs one
    again = pm.calibrate_cross_fitted(table, gold, truth, size=5)
    assert again is not None and again.params == cal.params
    # In sample (the model fitted with these very answers clamped) the pairs look better than
    # they are, so the map promises more than the out-of-sample one.
    combined = {k: [*table[k], *gold[k]] for k in table}
    model = pm.fit_worker_model(combined, gold=truth)
    assert model is not None
    answers: dict[int, list[tuple[Any, Any]]] = {}
    for t, w, lab in zip(gold["task"], gold["worker"], gold["label"], strict=True):
        answers.setdefault(t, []).append((w, lab))
    in_sample = pm.calibrate_on_answers(model, answers, truth, size=5)
    assert in_sample is not None
    assert float(in_sample.point(0.99)) > float(cal.point(0.99))
    with pytest.raises(ValueError, match="folds"):
        pm.calibrate_cross_fitted(table, gold, truth, size=5, folds=1)
    few = {k: v[: 3 * 5] for k, v in gold.items()}
    assert pm.calibrate_cross_fitted(table, few, truth, size=5) is None


def test_a_class_only_gold_shows_is_in_every_fold() -> None:
    # Live labels never say "bird"; half the gold items are birds.
    table = {"task": [1, 1, 2, 2, 3, 3], "worker": ["a", "b"] * 3, "label": ["cat", "cat"] * 3}
    rows = [(-(i + 1), w, "bird" if i % 2 else "cat") for i in range(8) for w in ("a", "b")]
    gold = {
        "task": [r[0] for r in rows],
        "worker": [r[1] for r in rows],
        "label": [r[2] for r in rows],
    }
    truth = {-(i + 1): "bird" if i % 2 else "cat" for i in range(8)}
    cal = pm.calibrate_cross_fitted(table, gold, truth, size=2, min_items=8)
    assert cal is not None and cal.n_fit == pytest.approx(8)
