"""A worker's accuracy on gold, its interval, the pause rule, gold confusion, model estimate."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from steelyard.quality.adaptive import WorkerModel
from steelyard.quality.gold import (
    falls_short,
    gold_accuracy,
    gold_confusion,
    model_estimate,
    pause_bound,
)


def test_jeffreys_interval_matches_the_beta_posterior_quantiles() -> None:
    acc = gold_accuracy(7, 20)
    assert acc.accuracy == pytest.approx(0.35)
    assert acc.low == pytest.approx(stats.beta.ppf(0.025, 7.5, 13.5))
    assert acc.high == pytest.approx(stats.beta.ppf(0.975, 7.5, 13.5))
    assert (acc.level, acc.method) == (0.95, "jeffreys")


def test_nothing_answered_says_nothing() -> None:
    acc = gold_accuracy(0, 0)
    assert (acc.accuracy, acc.low, acc.high) == (None, None, None)
    assert not falls_short(acc, min_accuracy=0.99, min_gold=0)


@pytest.mark.parametrize(("correct", "answered"), [(-1, 3), (4, 3), (0, -1)])
def test_impossible_counts_are_refused(correct: int, answered: int) -> None:
    with pytest.raises(ValueError):
        gold_accuracy(correct, answered)


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=200, deadline=None)
def test_interval_holds_the_observed_share_and_narrows(pair: tuple[int, int]) -> None:
    correct, answered = pair
    acc = gold_accuracy(correct, answered)
    assert acc.low is not None and acc.high is not None and acc.accuracy is not None
    assert 0.0 <= acc.low <= acc.accuracy <= acc.high <= 1.0
    # Four times the answers at the same share: a narrower interval.
    more = gold_accuracy(4 * correct, 4 * answered)
    assert more.high is not None and more.low is not None
    assert more.high - more.low < acc.high - acc.low


@given(st.integers(1, 120), st.floats(0.05, 0.95), st.integers(1, 50))
@settings(max_examples=60, deadline=None)
def test_pausing_is_monotone_in_right_answers(n: int, threshold: float, min_gold: int) -> None:
    """More right answers never turn "not paused" into "paused"; fewer answers than min_gold
    never pause."""
    paused = [
        falls_short(gold_accuracy(c, n), min_accuracy=threshold, min_gold=min_gold)
        for c in range(n + 1)
    ]
    assert all(a >= b for a, b in itertools.pairwise(paused))
    if n < min_gold:
        assert not any(paused)


@pytest.mark.parametrize(
    ("correct", "answered", "paused"),
    [
        (3, 10, True),  # 30% of 10: clearly below 0.7
        (5, 10, False),  # 50% of 10: could still be a 0.7 worker's bad luck
        (15, 30, False),  # 50% of 30: not yet certain enough
        (12, 30, True),  # 40% of 30: certain
        (6, 9, False),  # below min_gold
        (0, 9, False),  # below min_gold, however bad
        (7, 10, False),  # at the threshold
    ],
)
def test_the_pause_rule_at_a_threshold_of_0_7(correct: int, answered: int, paused: bool) -> None:
    acc = gold_accuracy(correct, answered)
    assert falls_short(acc, min_accuracy=0.7, min_gold=10) is paused


def test_the_pause_bound_is_the_99_percent_upper_end() -> None:
    acc = gold_accuracy(12, 30)
    assert pause_bound(acc) == pytest.approx(stats.beta.ppf(0.995, 12.5, 18.5))
    assert acc.high is not None and pause_bound(acc) > acc.high  # stricter than what is shown
    assert pause_bound(gold_accuracy(0, 0)) is None


@functools.cache
def _short(correct: int, answered: int, threshold: float) -> bool:
    return falls_short(gold_accuracy(correct, answered), min_accuracy=threshold, min_gold=10)


def _ever_paused(accuracy: float, threshold: float, *, workers: int, answers: int) -> float:
    """The share of simulated workers paused at some check, one check after each answer."""
    rng = np.random.default_rng(2026)
    right = np.cumsum(rng.random((workers, answers)) < accuracy, axis=1)
    paused = 0
    for row in right:
        paused += any(_short(int(row[n - 1]), n, threshold) for n in range(10, answers + 1))
    return paused / workers


def test_a_worker_at_the_threshold_is_rarely_ever_paused() -> None:
    """Fairness over repeated checks: a worker whose true accuracy equals the threshold is
    paused at some point of 200 checked answers about 5% of the time (a 95% interval would
    pause them about 19% of the time; a rule on the observed share nearly always)."""
    assert _ever_paused(0.7, 0.7, workers=600, answers=200) < 0.08


def test_weak_workers_are_caught() -> None:
    assert _ever_paused(0.5, 0.7, workers=300, answers=100) > 0.9  # measured 0.95
    assert _ever_paused(0.4, 0.7, workers=300, answers=40) > 0.9


def test_gold_confusion_counts_expected_against_given() -> None:
    confusion = gold_confusion(
        [("cat", "cat"), ("cat", "dog"), ("cat", "dog"), ("dog", "dog"), ("bird", "cat")]
    )
    assert confusion.classes == ["bird", "cat", "dog"]
    assert confusion.counts == [[0, 1, 0], [0, 1, 2], [0, 0, 1]]
    assert confusion.errors() == [("cat", "dog", 2), ("bird", "cat", 1)]
    assert gold_confusion([]).classes == []


def test_model_estimate_is_the_prior_weighted_diagonal() -> None:
    model = WorkerModel.from_confusions(
        ["a", "b"],
        [0.25, 0.75],
        {"w1": [[0.9, 0.1], [0.3, 0.7]], "w2": [[0.5, 0.5], [0.5, 0.5]]},
        default_confusion=[[0.8, 0.2], [0.2, 0.8]],
    )
    one = model_estimate(model, "w1")
    assert one.fitted and one.classes == ["a", "b"]
    assert one.accuracy == pytest.approx(0.25 * 0.9 + 0.75 * 0.7, abs=1e-3)
    assert one.confusion[0][0] == pytest.approx(0.9, abs=1e-3)
    unseen = model_estimate(model, "someone")
    assert not unseen.fitted
    assert unseen.accuracy == pytest.approx(0.8, abs=1e-3)
