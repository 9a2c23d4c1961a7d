"""Numeric aggregation: hand fixtures, the bias/variance model on simulations, zheng_emotion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steelyard.quality.numeric import BiasVarianceAggregator, MeanAggregator, MedianAggregator

# Shipped with the tests (see data/README.md): they run on every clone, never skip.
DATASETS = Path(__file__).resolve().parent / "data"

SMALL = pd.DataFrame(
    {
        "task": ["t1", "t1", "t1", "t2", "t2", "t3"],
        "worker": ["a", "b", "c", "a", "b", "c"],
        "label": [1.0, 2.0, 6.0, 10.0, 20.0, 7.0],
    }
)


def test_mean_by_hand() -> None:
    model = MeanAggregator().fit(SMALL)
    assert list(model.task_ids_) == ["t1", "t2", "t3"]
    assert model.values_.tolist() == [3.0, 15.0, 7.0]
    # t1: sd = sqrt(((1-3)^2 + (2-3)^2 + (6-3)^2) / 2) = sqrt(7); se = sqrt(7/3)
    assert model.stderr_[0] == pytest.approx(math.sqrt(7 / 3))
    assert model.stderr_[1] == pytest.approx(math.sqrt(50) / math.sqrt(2))
    assert math.isnan(model.stderr_[2])
    assert model.n_answers_.tolist() == [3, 2, 1]
    assert model.as_dict() == {"t1": 3.0, "t2": 15.0, "t3": 7.0}


def test_median_by_hand_and_inputs() -> None:
    expected = [2.0, 15.0, 7.0]
    assert MedianAggregator().fit(SMALL).values_.tolist() == expected
    as_mapping = {k: SMALL[k].tolist() for k in SMALL.columns}
    assert MedianAggregator().fit(as_mapping).values_.tolist() == expected
    arrays = MedianAggregator().fit_predict(
        tasks=SMALL["task"], workers=SMALL["worker"], values=SMALL["label"]
    )
    assert arrays.tolist() == expected


def test_gold_is_clamped() -> None:
    gold = {"t2": 12.0, "missing": 1.0}
    for model in (MeanAggregator(), MedianAggregator(), BiasVarianceAggregator()):
        model.fit(SMALL, gold)
        assert model.values_[1] == 12.0
        assert model.stderr_[1] == 0.0
    frame = pd.DataFrame({"task": ["t2"], "label": [12.0]})
    assert MeanAggregator().fit(SMALL, frame).values_[1] == 12.0


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        MeanAggregator().fit(tasks=[1], workers=[1, 2], values=[1.0])
    with pytest.raises(ValueError):
        MeanAggregator().fit(tasks=[1], workers=[1], values=[float("nan")])
    with pytest.raises(ValueError):
        MeanAggregator().fit()


def simulate(
    seed: int, n_tasks: int = 300, per_task: int = 5
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """12 workers: 8 careful (sd 3), 4 sloppy (sd 30); biases -6..+6."""
    rng = np.random.default_rng(seed)
    sd = np.array([3.0] * 8 + [30.0] * 4)
    bias = np.linspace(-6, 6, 12)
    truth = rng.uniform(0, 100, n_tasks)
    tasks = np.repeat(np.arange(n_tasks), per_task)
    workers = np.concatenate([rng.choice(12, per_task, replace=False) for _ in range(n_tasks)])
    values = truth[tasks] + bias[workers] + rng.normal(0, sd[workers])
    frame = pd.DataFrame({"task": tasks, "worker": workers, "label": values})
    return frame, {"truth": truth, "sd": sd, "bias": bias}


def test_bias_variance_recovers_workers_and_beats_mean() -> None:
    frame, true = simulate(0)
    model = BiasVarianceAggregator(clip_to_answers=False).fit(frame)
    assert model.converged_
    assert np.sqrt(model.variances_[:8]).max() < 6 < 20 < np.sqrt(model.variances_[8:]).min()
    careful = slice(0, 8)  # their biases are well determined
    assert np.abs(model.biases_[careful] - (true["bias"][careful] - true["bias"].mean())).max() < 2
    mae = np.abs(model.values_ - true["truth"]).mean()
    mean_mae = np.abs(MeanAggregator().fit(frame).values_ - true["truth"]).mean()
    assert mae < 0.5 * mean_mae
    # the reported standard errors are about right: |error| / se is roughly half-normal
    z = np.abs(model.values_ - true["truth"]) / model.stderr_
    assert 0.5 < np.median(z) < 1.0


def test_gold_anchors_a_shared_bias() -> None:
    # everybody overshoots by 10: without gold the shift is not identifiable, with gold it is
    frame, true = simulate(1)
    frame["label"] += 10.0
    gold = {t: float(true["truth"][t]) + true["bias"].mean() for t in range(0, 300, 10)}
    fitted = BiasVarianceAggregator(clip_to_answers=False).fit(frame, gold)
    free = BiasVarianceAggregator(clip_to_answers=False).fit(frame)
    others = np.array([t not in gold for t in range(300)])
    err_gold = np.abs(fitted.values_ - true["truth"] - true["bias"].mean())[others].mean()
    err_free = np.abs(free.values_ - true["truth"] - true["bias"].mean())[others].mean()
    assert err_gold < 3 < 8 < err_free


def test_shrinkage_keeps_rare_workers_near_pooled_variance() -> None:
    frame, _ = simulate(2)
    lucky = pd.DataFrame({"task": [0, 1], "worker": [99, 99], "label": [0.0, 0.0]})
    rare = pd.concat([frame, lucky], ignore_index=True)
    model = BiasVarianceAggregator(variance_prior_strength=20).fit(rare)
    rare_var = model.variances_[list(model.worker_ids_).index(99)]
    # two answers against an n=20 prior: still of the order of the pooled variance
    assert rare_var > 0.5 * np.median(model.variances_)
    assert model.get_params()["variance_prior_strength"] == 20
    assert "variance_prior_strength=20" in repr(model)


def test_single_answer_tasks_and_constant_data() -> None:
    frame = pd.DataFrame({"task": [1, 2, 2], "worker": ["a", "a", "b"], "label": [5.0, 4.0, 4.0]})
    model = BiasVarianceAggregator().fit(frame)
    assert np.all(np.isfinite(model.values_)) and np.all(np.isfinite(model.stderr_))
    assert model.values_[1] == pytest.approx(4.0)


@pytest.fixture(scope="module")
def emotion() -> tuple[pd.DataFrame, pd.Series]:
    folder = DATASETS / "zheng_emotion"
    labels = pd.read_csv(folder / "labels.csv")
    truth = pd.read_csv(folder / "truth.csv").set_index("task")["label"]
    return labels, truth


# measured with bench/numeric.py; all methods are deterministic
@pytest.mark.parametrize(
    ("model", "mae", "rmse"),
    [
        (MeanAggregator(), 12.022, 17.835),
        (MedianAggregator(), 13.529, 21.264),
        (BiasVarianceAggregator(), 12.196, 18.209),
        (BiasVarianceAggregator(variance_prior_strength=200), 11.947, 17.770),
    ],
    ids=["mean", "median", "bias-variance", "bias-variance-prior200"],
)
def test_zheng_emotion(
    emotion: tuple[pd.DataFrame, pd.Series], model: object, mae: float, rmse: float
) -> None:
    labels, truth = emotion
    fitted = model.fit(labels)  # type: ignore[attr-defined]
    err = fitted.values_ - truth.reindex(fitted.task_ids_).to_numpy()
    assert np.abs(err).mean() == pytest.approx(mae, abs=0.02)
    assert np.sqrt((err**2).mean()) == pytest.approx(rmse, abs=0.02)
