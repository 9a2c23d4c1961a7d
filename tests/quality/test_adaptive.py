"""Adaptive redundancy: hand-worked posteriors, stopping bounds, and posterior invariants."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.quality.adaptive import (
    WorkerModel,
    decide,
    decide_batch,
    next_label_value,
    one_coin_confusion,
)

SYM_08 = [[0.8, 0.2], [0.2, 0.8]]


def symmetric_model(prior: tuple[float, float] = (0.5, 0.5)) -> WorkerModel:
    return WorkerModel.from_confusions(
        ["A", "B"], list(prior), {"w1": SYM_08, "w2": SYM_08}, default_confusion=SYM_08
    )


def test_hand_worked_posterior_after_a_a_b() -> None:
    # 0.5*0.8*0.8*0.2 : 0.5*0.2*0.2*0.8 = 0.128 : 0.032, so P(A) = 0.8 exactly.
    d = decide([("w1", "A"), ("w2", "A"), ("w3", "B")], worker_model=symmetric_model())
    assert d.label == "A"
    assert d.posterior["A"] == pytest.approx(0.8)
    assert d.posterior["B"] == pytest.approx(0.2)
    assert d.confidence == pytest.approx(0.8)
    assert (d.done, d.reason, d.n_labels) == (False, "need_more", 3)


def test_hand_worked_posterior_with_skewed_prior() -> None:
    # 0.25*0.8 / (0.25*0.8 + 0.75*0.2) = 0.2 / 0.35
    d = decide([("w1", "A")], worker_model=symmetric_model((0.25, 0.75)))
    assert d.posterior["A"] == pytest.approx(0.2 / 0.35)
    assert d.label == "A"


def test_prior_alone_when_no_labels() -> None:
    d = decide([], worker_model=symmetric_model((0.25, 0.75)))
    assert d.posterior == pytest.approx({"A": 0.25, "B": 0.75})
    assert (d.done, d.reason, d.label) == (False, "below_min", "B")


def test_done_when_confident() -> None:
    model = WorkerModel.one_coin(["x", "y"], [0.5, 0.5], {"a": 0.9, "b": 0.9})
    one = decide([("a", "x")], worker_model=model)
    two = decide([("a", "x"), ("b", "x")], worker_model=model)
    assert (one.done, one.reason) == (False, "need_more")
    assert two.confidence == pytest.approx(81 / 82)
    assert (two.done, two.reason, two.label) == (True, "confident", "x")


def test_perfect_worker_single_label_is_enough() -> None:
    model = WorkerModel.from_confusions(
        [0, 1, 2], [1 / 3] * 3, {"ace": np.eye(3)}, default_confusion=np.full((3, 3), 1 / 3)
    )
    d = decide([("ace", 2)], worker_model=model, min_labels=1, target_confidence=0.99)
    assert (d.done, d.reason, d.label) == (True, "confident", 2)
    # The floor keeps the other classes possible: one slip must never mean certainty.
    assert 0.99 < d.confidence < 1.0


def test_min_labels_respected_even_when_confident() -> None:
    model = WorkerModel.from_confusions(["a", "b"], [0.5, 0.5], {"ace": np.eye(2)})
    d = decide([("ace", "a")], worker_model=model, min_labels=2)
    assert d.confidence > 0.99
    assert (d.done, d.reason) == (False, "below_min")


def test_max_labels_stops_an_undecided_task() -> None:
    pairs = [("w1", "A"), ("w2", "B"), ("w1", "A"), ("w2", "B")]
    assert decide(pairs, worker_model=symmetric_model(), max_labels=5).reason == "need_more"
    d = decide(pairs, worker_model=symmetric_model(), max_labels=4)
    assert (d.done, d.reason) == (True, "max_labels")
    assert d.confidence == pytest.approx(0.5)


def test_bad_arguments_raise() -> None:
    model = symmetric_model()
    with pytest.raises(ValueError, match="classes"):
        decide([("w1", "C")], worker_model=model)
    with pytest.raises(ValueError, match="min_labels"):
        decide([], worker_model=model, min_labels=3, max_labels=2)
    with pytest.raises(ValueError, match="target_confidence"):
        decide([], worker_model=model, target_confidence=0.0)
    with pytest.raises(ValueError, match="classes"):
        WorkerModel.from_confusions(["a"], [1.0], {"w": [[1.0]]})


def test_batch_matches_single_task_decisions() -> None:
    rng = np.random.default_rng(7)
    k, n_workers = 3, 6
    conf = rng.dirichlet(np.ones(k), size=(n_workers, k)) + 2 * np.eye(k)
    model = WorkerModel.from_confusions(
        ["r", "g", "b"], [0.2, 0.3, 0.5], conf / conf.sum(-1, keepdims=True), np.arange(n_workers)
    )
    n = 200
    data = {
        "task": rng.integers(0, 40, n),
        "worker": rng.integers(0, n_workers + 2, n),  # ids 6, 7 are unseen: default matrix
        "label": rng.choice(["r", "g", "b"], n),
    }
    batch = decide_batch(data, worker_model=model, min_labels=2, max_labels=6)
    for i, task in enumerate(batch.task_ids):
        rows = data["task"] == task
        single = decide(
            zip(data["worker"][rows], data["label"][rows], strict=True),
            worker_model=model,
            min_labels=2,
            max_labels=6,
        )
        assert batch.probas[i] == pytest.approx([single.posterior[c] for c in "rgb"])
        assert (batch.labels[i], batch.reason[i], bool(batch.done[i])) == (
            single.label,
            single.reason,
            single.done,
        )


def test_from_estimator_confusions_skills_and_shrinkage() -> None:
    est = SimpleNamespace(
        classes_=np.array([0, 1]),
        worker_ids_=np.array(["few", "many"]),
        task_ids_=np.arange(41),
        probas_=np.tile([0.5, 0.5], (41, 1)),
        priors_=np.array([0.5, 0.5]),
        confusions_=np.array([np.eye(2), [[0.7, 0.3], [0.3, 0.7]]]),
    )
    plain = WorkerModel.from_estimator(est)
    assert plain.confusion("few")[0, 0] == pytest.approx(1.0, abs=2e-3)
    labels = {
        "task": np.r_[0, np.arange(1, 41)],
        "worker": ["few"] + ["many"] * 40,
        "label": np.zeros(41, dtype=int),
    }
    shrunk = WorkerModel.from_estimator(est, labels=labels, strength=2.0)
    # "few" gave one label: its rows move most of the way to the pooled matrix.
    assert shrunk.confusion("few")[0, 0] < 0.8
    assert shrunk.confusion("many")[0, 0] == pytest.approx(0.7, abs=0.01)
    assert shrunk.confusion("nobody") == pytest.approx(shrunk.default_confusion)

    skill_est = SimpleNamespace(
        classes_=np.array(["a", "b", "c"]),
        worker_ids_=np.array(["u"]),
        task_ids_=np.arange(2),
        probas_=np.array([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2]]),
        skills_=np.array([0.7]),
    )
    model = WorkerModel.from_estimator(skill_est)
    assert model.confusion("u") == pytest.approx(one_coin_confusion(0.7, 3))
    assert model.priors == pytest.approx([0.4, 0.4, 0.2])


def test_next_label_value_matches_brute_force() -> None:
    model = WorkerModel.one_coin(["a", "b", "c"], [0.5, 0.3, 0.2], {}, default_skill=0.75)
    labels = [("x", "a"), ("y", "b")]
    now = decide(labels, worker_model=model)
    value = next_label_value(
        [now.posterior[c] for c in "abc"], worker_model=model, target_confidence=0.8
    )
    q = np.array([now.posterior[c] for c in "abc"]) @ model.default_confusion
    outcomes = [decide([*labels, ("z", c)], worker_model=model) for c in "abc"]
    assert value.p_done[0] == pytest.approx(
        sum(q[i] for i, o in enumerate(outcomes) if o.confidence >= 0.8)
    )
    assert value.p_flip[0] == pytest.approx(
        sum(q[i] for i, o in enumerate(outcomes) if o.label != now.label)
    )
    expected_after = sum(q[i] * o.confidence for i, o in enumerate(outcomes))
    assert value.expected_gain[0] == pytest.approx(expected_after - now.confidence)


# ---- properties -------------------------------------------------------------------------


@st.composite
def models_and_labels(draw: st.DrawFn) -> tuple[WorkerModel, list[tuple[int, int]]]:
    k = draw(st.integers(2, 4))
    n_workers = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Dirichlet rows plus a diagonal boost: every worker better than random (column-dominant).
    raw = rng.dirichlet(np.ones(k), size=(n_workers, k)) + np.eye(k)
    model = WorkerModel.from_confusions(
        list(range(k)),
        rng.dirichlet(np.ones(k)),
        raw / raw.sum(-1, keepdims=True),
        list(range(n_workers)),
    )
    pairs = draw(st.lists(st.tuples(st.integers(0, n_workers), st.integers(0, k - 1)), max_size=12))
    return model, pairs


@settings(max_examples=60, deadline=None)
@given(models_and_labels())
def test_posterior_is_a_distribution(case: tuple[WorkerModel, list[tuple[int, int]]]) -> None:
    model, pairs = case
    d = decide(pairs, worker_model=model)
    probs = np.array(list(d.posterior.values()))
    assert probs.sum() == pytest.approx(1.0)
    assert np.all(probs >= 0)
    assert d.confidence == pytest.approx(probs.max())


@settings(max_examples=60, deadline=None)
@given(models_and_labels(), st.randoms(use_true_random=False))
def test_label_order_does_not_matter(
    case: tuple[WorkerModel, list[tuple[int, int]]], rnd: random.Random
) -> None:
    model, pairs = case
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    a, b = decide(pairs, worker_model=model), decide(shuffled, worker_model=model)
    assert list(a.posterior.values()) == pytest.approx(list(b.posterior.values()))


@settings(max_examples=80, deadline=None)
@given(models_and_labels(), st.integers(0, 4), st.integers(0, 3))
def test_agreeing_label_never_lowers_confidence(
    case: tuple[WorkerModel, list[tuple[int, int]]], worker: int, label: int
) -> None:
    model, pairs = case
    label %= len(model.classes)
    before = decide(pairs, worker_model=model).posterior[label]
    after = decide([*pairs, (worker, label)], worker_model=model).posterior[label]
    assert after >= before - 1e-12


def test_with_a_fitted_dawid_skene() -> None:
    from steelyard.quality import dawid_skene as ds_module

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 150)
    skill = {"good1": 0.9, "good2": 0.85, "good3": 0.8, "coin": 0.5}
    rows = [
        (t, w, int(truth[t] if rng.random() < s else 1 - truth[t]))
        for t in range(150)
        for w, s in skill.items()
    ]
    data = {
        "task": [r[0] for r in rows],
        "worker": [r[1] for r in rows],
        "label": [r[2] for r in rows],
    }
    est = ds_module.DawidSkene().fit(data)
    model = WorkerModel.from_estimator(est, labels=data)
    good = decide([("good1", 1), ("good2", 1)], worker_model=model)
    coin = decide([("coin", 1), ("coin", 1)], worker_model=model)
    assert good.label == 1 and good.done
    assert good.confidence > coin.confidence
    assert abs(coin.confidence - 0.5) < 0.2  # the coin-flipper barely moves the prior
