"""Bradley-Terry-Davidson with annotator reliability, and the per-task choice aggregator."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from steelyard.quality.ranking import BradleyTerry, aggregate_choice


def simulate(
    seed: int,
    n_items: int = 20,
    n_comparisons: int = 2000,
    nu: float = 0.5,
    spammers: int = 1,
) -> tuple[pd.DataFrame, np.ndarray]:
    """5 annotators following the Davidson model, plus ``spammers`` clicking at random."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1.2, n_items)
    annotators = np.array([f"good{i}" for i in range(5)] + [f"spam{i}" for i in range(spammers)])
    first = rng.integers(0, n_items, n_comparisons)
    second = (first + rng.integers(1, n_items, n_comparisons)) % n_items  # never the same
    who = annotators[rng.integers(0, len(annotators), n_comparisons)]
    pa, pb = np.exp(strength[first]), np.exp(strength[second])
    probs = np.column_stack([pa, pb, nu * np.sqrt(pa * pb)])
    probs /= probs.sum(axis=1, keepdims=True)
    spam = np.char.startswith(who, "spam")
    probs[spam] = 1 / 3
    outcome_code = (rng.random(n_comparisons)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    frame = pd.DataFrame(
        {
            "annotator": who,
            "item_a": [f"r{i}" for i in first],
            "item_b": [f"r{i}" for i in second],
            "outcome": np.array(["a", "b", "tie"])[np.minimum(outcome_code, 2)],
        }
    )
    return frame, strength


def fitted_strengths(model: BradleyTerry, n_items: int) -> np.ndarray:
    return np.array([model.score_of(f"r{i}") for i in range(n_items)])


def test_recovers_the_ordering_and_the_tie_parameter() -> None:
    frame, strength = simulate(0, spammers=0)
    model = BradleyTerry().fit(frame)
    assert model.converged_
    rho = spearmanr(fitted_strengths(model, 20), strength).statistic
    assert rho > 0.95
    assert model.tie_parameter_ == pytest.approx(0.5, abs=0.1)
    assert model.scores_.mean() == pytest.approx(0.0, abs=1e-9)
    best = f"r{int(np.argmax(strength))}"
    assert model.ranking()[0] == best


def test_pair_probabilities_follow_the_davidson_formula() -> None:
    frame, _ = simulate(1, n_comparisons=600, spammers=0)
    model = BradleyTerry().fit(frame)
    pa, pb, pt = model.pair_probabilities("r0", "r1")
    assert pa + pb + pt == pytest.approx(1.0)
    sa, sb, nu = model.score_of("r0"), model.score_of("r1"), model.tie_parameter_
    d = math.exp(sa) + math.exp(sb) + nu * math.exp((sa + sb) / 2)
    assert (pa, pb, pt) == pytest.approx((math.exp(sa) / d, math.exp(sb) / d, 1 - (pa + pb)))
    assert model.pair_probabilities("r1", "r0") == pytest.approx((pb, pa, pt))
    with pytest.raises(KeyError):
        model.pair_probabilities("r0", "nope")


def test_unreliable_annotator_is_down_weighted() -> None:
    frame, strength = simulate(2, spammers=1)
    model = BradleyTerry().fit(frame)
    reliability = dict(zip(model.annotator_ids_, model.reliabilities_, strict=True))
    assert reliability["spam0"] < 0.3
    assert min(v for k, v in reliability.items() if k.startswith("good")) > 0.85
    spam_rows = (frame["annotator"] == "spam0").to_numpy()
    assert model.posteriors_[spam_rows].mean() < 0.5 < model.posteriors_[~spam_rows].mean()
    # with two spammers, modelling reliability ranks better than ignoring it
    frame, strength = simulate(3, n_comparisons=1200, spammers=3)
    with_rel = spearmanr(fitted_strengths(BradleyTerry().fit(frame), 20), strength).statistic
    plain = BradleyTerry(fit_reliability=False).fit(frame)
    assert np.all(plain.reliabilities_ == 1.0)
    without = spearmanr(fitted_strengths(plain, 20), strength).statistic
    assert with_rel > without


def test_ties_without_davidson_count_half_and_no_ties_means_plain_bt() -> None:
    frame = pd.DataFrame(
        {
            "annotator": ["u"] * 4,
            "item_a": ["x", "x", "x", "x"],
            "item_b": ["y", "y", "y", "y"],
            "outcome": ["a", "a", "tie", "tie"],
        }
    )
    plain = BradleyTerry(ties="none", fit_reliability=False, regularization=0.0).fit(frame)
    # 3 wins of 4 for x: p = 0.75, so s_x - s_y = log 3
    assert plain.score_of("x") - plain.score_of("y") == pytest.approx(math.log(3), abs=1e-4)
    assert plain.tie_parameter_ == 0.0 and plain.pair_probabilities("x", "y")[2] == 0.0
    assert BradleyTerry(fit_reliability=False).fit(frame).tie_parameter_ > 0
    balanced = pd.concat([frame, frame.assign(outcome=["b", "a", "tie", "tie"])])
    fit = BradleyTerry(fit_reliability=False, regularization=0.0).fit(balanced)
    # 3 a-wins, 1 b-win, 4 ties: Davidson MLE has P(tie) = 1/2 at the observed frequencies
    assert fit.pair_probabilities("x", "y")[2] == pytest.approx(0.5, abs=0.02)


def test_disconnected_groups_and_perfect_winners_stay_finite() -> None:
    frame = pd.DataFrame(
        {
            "annotator": ["u"] * 6,
            "item_a": ["a", "a", "a", "p", "p", "q"],
            "item_b": ["b", "b", "b", "q", "q", "p"],
            "outcome": ["a", "a", "a", "a", "a", "b"],
        }
    )
    model = BradleyTerry().fit(frame)
    assert np.all(np.isfinite(model.scores_))
    assert model.score_of("a") > model.score_of("b")
    assert model.score_of("p") > model.score_of("q")


def test_preferences_one_per_compared_pair() -> None:
    frame = pd.DataFrame(
        {
            "annotator": ["u", "v", "u", "v", "w"],
            "item_a": ["p1_r1", "p1_r2", "p2_r1", "p2_r1", "p2_r2"],
            "item_b": ["p1_r2", "p1_r1", "p2_r2", "p2_r2", "p2_r1"],
            "outcome": ["a", "b", "b", "b", "a"],
        }
    )
    prefs = BradleyTerry().fit(frame).preferences()
    assert [(p.item_a, p.item_b, p.preferred, p.n_comparisons) for p in prefs] == [
        ("p1_r1", "p1_r2", "p1_r1", 2),
        ("p2_r1", "p2_r2", "p2_r2", 3),
    ]
    assert all(0.5 < p.probability < 1.0 for p in prefs)
    assert prefs[0].p_tie == 0.0  # no ties in the data: plain Bradley-Terry


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="outcome"):
        BradleyTerry().fit(
            {"annotator": ["u"], "item_a": ["x"], "item_b": ["y"], "outcome": ["maybe"]}
        )
    with pytest.raises(ValueError, match="itself"):
        BradleyTerry().fit(annotators=["u"], items_a=["x"], items_b=["x"], outcomes=["a"])


def test_aggregate_choice_by_hand() -> None:
    two = aggregate_choice([("u", "x"), ("v", "x"), ("w", "y")])
    # K = 2, r = .7: P(right vote) = .85; x: .85 * .85 * .15, y: .15 * .15 * .85 -> .85
    assert two.chosen == "x" and two.probability == pytest.approx(0.85)
    three = aggregate_choice([("u", "x"), ("v", "x"), ("w", "y")], options=["x", "y", "z"])
    # K = 3: right .8, wrong .1 -> x .064, y .008, z .001
    assert three.probability == pytest.approx(0.064 / 0.073)
    assert three.probabilities["z"] == pytest.approx(0.001 / 0.073)
    # a known spammer's vote carries no information
    spam = aggregate_choice(
        [("u", "x"), ("s", "y"), ("s2", "y")], reliabilities={"s": 0.0, "s2": 0.0}
    )
    assert spam.chosen == "x" and spam.probability == pytest.approx(0.85)
    with pytest.raises(ValueError):
        aggregate_choice([("u", "x")])
    with pytest.raises(ValueError):
        aggregate_choice([("u", "q")], options=["x", "y"])
