"""Worker estimates: credible intervals, confusion counts and spammer flags."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from steelyard.quality._data import encode
from steelyard.quality.adaptive import WorkerModel, decide_batch
from steelyard.quality.workers import (
    beta_interval,
    estimate_workers,
    expected_confusion_counts,
    gold_accuracy,
    raykar_yu_score,
)


def simulate(seed: int = 3) -> tuple[pd.DataFrame, dict[int, int]]:
    """20 good workers (accuracy 0.8, 3 classes, ~60 labels each), a constant and a random
    worker labelling every task (the random one needs a few hundred labels to be flagged)."""
    rng = np.random.default_rng(seed)
    k, n_tasks = 3, 300
    truth = rng.integers(0, k, n_tasks)
    rows: list[tuple[Any, int, int]] = []
    for t in range(n_tasks):
        for w in rng.choice(20, 4, replace=False):
            right = rng.random() < 0.8
            wrong = (truth[t] + rng.integers(1, k)) % k
            rows.append((f"good{w}", t, int(truth[t] if right else wrong)))
        rows.append(("constant", t, 0))
        rows.append(("random", t, int(rng.integers(0, k))))
    frame = pd.DataFrame(rows, columns=["worker", "task", "label"])
    return frame, {t: int(y) for t, y in enumerate(truth)}


def by_worker(table: Any) -> dict[Any, Any]:
    return {r.worker_id: r for r in table.records()}


def test_spammers_flagged_from_gold_good_workers_not() -> None:
    labels, gold = simulate()
    rows = by_worker(estimate_workers(labels, gold=gold))
    assert rows["constant"].is_spammer and rows["constant"].reason == "constant"
    assert rows["random"].is_spammer and rows["random"].reason == "uniform"
    good = [r for w, r in rows.items() if w.startswith("good")]
    assert not any(r.is_spammer for r in good)
    assert all(r.spammer_score > 0.3 for r in good)  # (0.8 - 0.1)^2 = 0.49 in expectation
    assert rows["constant"].spammer_score < 0.02 and rows["random"].spammer_score < 0.04
    assert {r.source for r in rows.values()} == {"gold"}


def test_spammers_flagged_from_inference_without_gold() -> None:
    labels, _ = simulate(seed=11)
    # A crude estimator: posteriors of an everyone-is-0.7 one-coin model (soft majority vote).
    crude = WorkerModel.one_coin([0, 1, 2], [1 / 3] * 3, {}, default_skill=0.7)
    batch = decide_batch(labels, worker_model=crude)
    est = SimpleNamespace(task_ids_=batch.task_ids, classes_=batch.classes, probas_=batch.probas)
    rows = by_worker(estimate_workers(labels, estimator=est))
    assert rows["constant"].is_spammer and rows["random"].is_spammer
    assert not any(r.is_spammer for w, r in rows.items() if w.startswith("good"))
    assert {r.source for r in rows.values()} == {"inference"}


def test_sources_and_combined_counts() -> None:
    labels = pd.DataFrame(
        {"task": [1, 2, 3, 3, 4], "worker": ["g", "g", "i", "g", "n"], "label": ["a"] * 5}
    )
    est = SimpleNamespace(
        task_ids_=np.array([2, 3]), classes_=np.array(["a", "b"]), probas_=[[0.5, 0.5], [1, 0]]
    )
    rows = by_worker(estimate_workers(labels, gold={1: "a"}, estimator=est, min_labels=1))
    assert (rows["g"].source, rows["i"].source, rows["n"].source) == ("both", "inference", "none")
    # g: gold right (1) + task 2 (0.5) + task 3 (1.0) = 2.5 of 3 -> Beta(3, 1) mean 0.75
    assert rows["g"].accuracy == pytest.approx(0.75)
    assert (rows["g"].n_labels, rows["g"].n_gold) == (3, 1)
    assert np.isnan(rows["n"].accuracy) and not rows["n"].is_spammer


def test_gold_interval_covers_true_accuracy() -> None:
    rng = np.random.default_rng(5)
    n_workers, n_gold = 400, 30
    true_acc = rng.uniform(0.5, 0.97, n_workers)
    gold = {t: 0 for t in range(n_gold)}
    correct = rng.random((n_workers, n_gold)) < true_acc[:, None]
    labels = {
        "task": np.tile(np.arange(n_gold), n_workers),
        "worker": np.repeat(np.arange(n_workers), n_gold),
        "label": np.where(correct, 0, 1).ravel(),
    }
    table = gold_accuracy(labels, gold, level=0.95)
    covered = (table.ci_low <= true_acc) & (true_acc <= table.ci_high)
    assert covered.mean() >= 0.9  # Jeffreys intervals are close to nominal (0.95)
    assert np.all(table.n_gold == n_gold)


def test_intervals_shrink_with_more_labels() -> None:
    n = np.array([10, 40, 160, 640])
    _, low, high = beta_interval(0.8 * n, n)
    widths = high - low
    assert np.all(np.diff(widths) < 0)
    mean, low0, _ = beta_interval([0], [0])
    assert np.isnan(mean[0]) and np.isnan(low0[0])


def test_raykar_yu_closed_forms() -> None:
    sens, spec = 0.9, 0.7
    assert raykar_yu_score([[sens, 1 - sens], [1 - spec, spec]]) == pytest.approx(
        (sens + spec - 1) ** 2
    )
    a, k = 0.6, 4
    b = (1 - a) / (k - 1)
    sym = np.full((k, k), b) + (a - b) * np.eye(k)
    assert raykar_yu_score(sym) == pytest.approx((a - b) ** 2)
    constant = np.tile([1.0, 0.0, 0.0], (3, 1))
    assert raykar_yu_score(constant) == pytest.approx(0.0)
    assert raykar_yu_score(np.eye(3)[[2, 0, 1]]) == pytest.approx(1.0)  # permuted: informative


def test_expected_confusion_counts_and_label_counts() -> None:
    coded = encode({"task": [0, 0, 1], "worker": ["u", "v", "u"], "label": ["x", "y", "y"]})
    truth = np.array([[0.75, 0.25], [0.0, 1.0]])
    counts = expected_confusion_counts(coded, truth)
    assert counts[0] == pytest.approx(np.array([[0.75, 0.0], [0.25, 1.0]]))  # worker u
    assert counts[1] == pytest.approx(np.array([[0.0, 0.75], [0.0, 0.25]]))  # worker v
    table = estimate_workers(coded, gold={1: "y"})
    assert table.label_counts.tolist() == [[1, 1], [0, 1]]
    assert np.allclose(table.confusions.sum(axis=2), 1.0)


def test_constant_worker_flagged_without_any_truth() -> None:
    labels = {
        "task": np.r_[np.arange(30), np.arange(30)],
        "worker": ["lazy"] * 30 + ["busy"] * 30,
        "label": ["a"] * 30 + ["b", "a"] * 15,
    }
    rows = by_worker(estimate_workers(labels))
    assert rows["lazy"].is_spammer and rows["lazy"].reason == "constant"
    assert not rows["busy"].is_spammer
    assert np.isnan(rows["lazy"].spammer_score)


def test_with_a_fitted_dawid_skene() -> None:
    from steelyard.quality import dawid_skene as ds_module

    labels, gold = simulate(seed=21)
    est = ds_module.DawidSkene().fit(labels)
    half_gold = {t: y for t, y in gold.items() if t % 2 == 0}
    rows = by_worker(estimate_workers(labels, gold=half_gold, estimator=est))
    assert rows["constant"].is_spammer and rows["random"].is_spammer
    good = [r for w, r in rows.items() if w.startswith("good")]
    assert not any(r.is_spammer for r in good)
    assert {r.source for r in good} == {"both"}
    # 20 workers, 95% intervals around a true 0.8 (inference counts are a little optimistic)
    assert np.mean([r.ci_low < 0.8 < r.ci_high for r in good]) >= 0.8
