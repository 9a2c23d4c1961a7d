"""Simulated crowds with known structure: the generator, and what each method must get right.

Floors are the accuracies measured on these seeds (bench/aggregation.py's simulated part) less
a margin, so a regression of a few tasks fails; the structural checks say *why* a method should
do well (a spammer gets a low skill, a class-swapping worker is used, not outvoted).
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from steelyard.quality import selection
from steelyard.quality import simulate as simulate_module
from steelyard.quality.categorical import make
from steelyard.quality.selection import HeldOutSelection
from steelyard.quality.simulate import FAMILIES, simulate


@pytest.mark.parametrize("module", [simulate_module, selection])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def accuracy(name: str, family: str, seed: int = 0) -> float:
    c = simulate(family, seed)
    m = make(name).fit(c.table())
    pred = np.full(len(c.truth), -1)
    pred[np.asarray(m.task_ids_, dtype=np.int64)] = m.labels_
    return float(np.mean(pred == c.truth))


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_crowd_and_shapes(family: str) -> None:
    a, b, other = simulate(family, 1), simulate(family, 1), simulate(family, 2)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.truth, b.truth)
    assert not np.array_equal(a.labels, other.labels)
    assert a.tasks.shape == a.workers.shape == a.labels.shape
    assert a.labels.min() >= 0 and a.labels.max() < a.n_classes
    assert set(np.unique(a.tasks).tolist()) == set(range(len(a.truth)))
    pairs = a.tasks * 10_000 + a.workers
    assert len(np.unique(pairs)) == len(pairs)  # a worker labels a task at most once


def test_families_have_their_structure() -> None:
    sparse = simulate("sparse", 0)
    per_worker = np.bincount(sparse.workers)
    assert np.median(per_worker[per_worker > 0]) <= 5 and per_worker.max() >= 40
    dense = simulate("dense", 0)
    assert np.all(np.bincount(dense.workers) == len(dense.truth))  # everyone labels everything
    imb = simulate("imbalanced", 0)
    assert np.bincount(imb.truth, minlength=3)[2] / len(imb.truth) < 0.1
    with pytest.raises(ValueError, match="unknown crowd family"):
        simulate("nope")


def test_spammers_get_low_skills() -> None:
    c = simulate("spammers", 0)
    m = make("default").fit(c.table())
    # a uniform or constant spammer agrees with the truth about half the time (K = 2)
    agree = np.array(
        [np.mean(c.labels[c.workers == w] == c.truth[c.tasks[c.workers == w]]) for w in range(30)]
    )
    spam, good = agree < 0.6, agree > 0.8
    assert m.skills_[spam].max() < m.skills_[good].min()


def test_full_matrices_use_class_swapping_workers() -> None:
    # one-coin models can only outvote a swapped worker; confusion matrices read it backwards
    for seed in range(3):
        assert accuracy("default", "adversaries", seed) > accuracy("onecoin", "adversaries", seed)
        assert accuracy("default", "adversaries", seed) > accuracy("mv", "adversaries", seed) + 0.1


def test_selection_shrinks_hard_where_a_rare_class_is_missed() -> None:
    c = simulate("imbalanced", 0)
    m = HeldOutSelection().fit(c.table())
    assert m.selected_ in ("bayes_ds_16", "bayes_ds_64")
    assert accuracy("default", "imbalanced") > accuracy("bayes_ds", "imbalanced") + 0.05


@pytest.mark.parametrize(
    ("family", "floor"),
    [
        ("spammers", 0.80),
        ("sparse", 0.87),
        ("adversaries", 0.93),
        ("correlated", 0.62),
        ("imbalanced", 0.80),
        ("dense", 0.98),
    ],
)
def test_default_accuracy_floors(family: str, floor: float) -> None:
    got = np.mean([accuracy("default", family, s) for s in range(3)])
    assert got >= floor, f"{family}: {got:.4f}"


def test_selection_scores_and_parameters() -> None:
    c = simulate("dense", 0)
    m = HeldOutSelection(candidates=("bayes_ds", "onecoin", "ds")).fit(c.table())
    assert set(m.scores_) == {"bayes_ds", "onecoin", "ds"}
    assert m.selected_ == max(m.scores_, key=m.scores_.__getitem__)
    assert all(s < 0 for s in m.scores_.values())  # mean log-probabilities of labels
    # a dense panel of workers with asymmetric confusions: one-coin predicts labels worst
    assert m.scores_["onecoin"] < m.scores_["bayes_ds"]
    assert m.confusions_.shape == (8, 4, 4)
    with pytest.raises(ValueError, match="candidates"):
        HeldOutSelection(candidates=("glad",)).fit(c.table())
    with pytest.raises(ValueError, match="folds"):
        HeldOutSelection(folds=1).fit(c.table())
