"""A project's worker model: Dawid-Skene fitted from its labels, stored as JSON and read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steelyard.quality.adaptive import WorkerModel
from steelyard.quality.calibration import Calibrator
from steelyard.quality.project_model import calibrate_on_gold, dumps, fit_worker_model, loads


def _crowd(n_tasks: int, seed: int = 0) -> tuple[dict[str, list[object]], list[str]]:
    """Two reliable workers (right 95 %) and a spammer who always says "dog"."""
    rng = np.random.default_rng(seed)
    classes = ["cat", "dog", "bird"]
    truth = [classes[i % 3] for i in range(n_tasks)]
    table: dict[str, list[object]] = {"task": [], "worker": [], "label": []}
    for t, y in enumerate(truth):
        for w in ("r1", "r2"):
            wrong = [c for c in classes if c != y]
            table["task"].append(t)
            table["worker"].append(w)
            table["label"].append(y if rng.random() < 0.95 else wrong[rng.integers(2)])
        table["task"].append(t)
        table["worker"].append("spam")
        table["label"].append("dog")
    return table, truth


def test_fit_tells_a_reliable_worker_from_a_spammer() -> None:
    table, _ = _crowd(60)
    model = fit_worker_model(table)
    assert model is not None
    cat = list(model.classes).index("cat")
    assert model.confusion("r1")[cat, cat] > 0.85
    assert model.confusion("spam")[cat, cat] < 0.2
    # Unseen workers get the pooled matrix, between the two.
    assert model.confusion("r1")[cat, cat] > model.confusion("new")[cat, cat]
    assert model.confusion("new")[cat, cat] > model.confusion("spam")[cat, cat]


@pytest.mark.parametrize(
    "table",
    [
        {"task": [], "worker": [], "label": []},
        {"task": [1, 2], "worker": ["a", "b"], "label": ["x", "x"]},
    ],
    ids=["empty", "one-class"],
)
def test_nothing_to_fit_is_none(table: dict[str, list[object]]) -> None:
    assert fit_worker_model(table) is None


def test_json_round_trip_keeps_model_and_calibrator() -> None:
    table, _ = _crowd(30)
    model = fit_worker_model(table)
    assert model is not None
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.5, 0.999, 500)
    calibrator = Calibrator().fit(raw, rng.random(500) < raw * 0.9)
    doc = json.loads(json.dumps(dumps(model, calibrator)))  # survives a JSON column
    back, cal = loads(doc)
    assert isinstance(back, WorkerModel) and cal is not None
    assert back.classes.tolist() == model.classes.tolist()
    assert back.worker_ids.tolist() == model.worker_ids.tolist()
    np.testing.assert_allclose(back.confusions, model.confusions, atol=1e-5)
    np.testing.assert_allclose(back.default_confusion, model.default_confusion, atol=1e-5)
    np.testing.assert_allclose(cal.apply([0.7, 0.95]), calibrator.apply([0.7, 0.95]))
    assert loads(dumps(model))[1] is None


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        loads({"format": 99})


def test_gold_calibrates_an_over_confident_model() -> None:
    """The model claims every worker is right 99 % of the time; on gold they are right 70 %."""
    rng = np.random.default_rng(3)
    classes = ["cat", "dog", "bird"]
    table: dict[str, list[object]] = {"task": [], "worker": [], "label": []}
    gold = {}
    for t in range(80):
        y = classes[t % 3]
        gold[t] = y
        for w in range(3):
            wrong = [c for c in classes if c != y]
            table["task"].append(t)
            table["worker"].append(f"w{w}")
            table["label"].append(y if rng.random() < 0.7 else wrong[rng.integers(2)])
    model = WorkerModel.one_coin(classes, [1 / 3] * 3, {}, default_skill=0.99)
    cal = calibrate_on_gold(model, table, gold)
    assert cal is not None and cal.n_fit > 0
    assert float(cal.apply(0.99)) < 0.9  # the promise is far below the model's claim
    few = {t: gold[t] for t in range(4)}
    assert calibrate_on_gold(model, table, few) is None  # not enough gold for a promise
