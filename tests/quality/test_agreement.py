"""Agreement statistics against textbook examples and the ``krippendorff`` package."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from steelyard.quality.agreement import (
    Level,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    reliability_matrix,
    value_counts,
)

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units
# example with missing values; his published values are nominal .743, interval .849, ratio .797
# (ordinal .815 from the same procedure).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]

# Fleiss' kappa worked example (10 subjects, 14 raters, 5 categories) as in Fleiss (1971)'s
# method and its standard textbook presentation: P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def long_from_counts(table: list[list[int]]) -> pd.DataFrame:
    rows = []
    for unit, counts in enumerate(table):
        rater = 0
        for category, n in enumerate(counts):
            for _ in range(n):
                rows.append({"task": unit, "worker": rater, "label": f"c{category}"})
                rater += 1
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("level", "expected"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_published_example(level: Level, expected: float) -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


@settings(max_examples=40, deadline=None)
@given(
    matrix=arrays(
        np.float64,
        st.tuples(st.integers(2, 5), st.integers(2, 12)),
        elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, 8.0, NAN]),
    ),
    level=st.sampled_from(["nominal", "ordinal", "interval", "ratio"]),
)
def test_krippendorff_matches_reference(matrix: np.ndarray, level: Level) -> None:
    present = ~np.isnan(matrix)
    pairable = present.sum(axis=0) >= 2
    assume(pairable.any())
    assume(len(np.unique(matrix[:, pairable][present[:, pairable]])) >= 2)
    ours = krippendorff_alpha(matrix, level)
    with np.errstate(all="ignore"):
        reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    if np.isnan(reference):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(reference, abs=1e-9)


def test_krippendorff_long_table_and_string_labels() -> None:
    long = pd.DataFrame(
        {
            "task": [1, 1, 1, 2, 2, 3, 3, 3],
            "worker": ["a", "b", "c", "a", "b", "a", "b", "c"],
            "label": ["x", "x", "y", "y", "y", "x", "x", "x"],
        }
    )
    numeric = [[0, 1, 0], [0, 1, 0], [1, NAN, 0]]  # raters x units, x=0 y=1
    assert krippendorff_alpha(long) == pytest.approx(krippendorff_alpha(numeric))
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(long, "interval")


def test_krippendorff_degenerate() -> None:
    assert math.isnan(krippendorff_alpha([[1, 1], [1, 1]]))  # no variation at all
    assert math.isnan(krippendorff_alpha([[1, NAN], [NAN, 2]]))  # nothing pairable


def test_reliability_matrix_and_counts() -> None:
    rm = reliability_matrix(
        {"task": ["u1", "u2", "u2"], "worker": ["a", "a", "b"], "label": ["x", "y", "y"]}
    )
    assert rm.codes.shape == (2, 2)
    assert list(rm.values) == ["x", "y"]
    counts, _ = value_counts(rm)
    assert counts.tolist() == [[1, 0], [0, 2]]


def test_cohen_kappa_textbook() -> None:
    # 50 proposals: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o .7, p_e .5, kappa .4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_weighted_by_hand() -> None:
    # O has ones at (1,1) (2,2) (3,2) (3,3) (1,3); margins a = 2,1,2, b = 1,2,2, N = 5.
    # unweighted: (0.6 - 8/25) / (1 - 8/25) = 7/17
    # linear:    1 - 1.5 / 2.3  = 8/23
    # quadratic: 1 - 1.25 / 1.75 = 2/7
    a, b = [1, 2, 3, 3, 1], [1, 2, 2, 3, 3]
    assert cohen_kappa(a, b) == pytest.approx(7 / 17)
    assert cohen_kappa(a, b, weights="linear") == pytest.approx(8 / 23)
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(2 / 7)


def test_cohen_kappa_missing_and_categories() -> None:
    assert cohen_kappa(["y", None, "n"], ["y", "n", "n"]) == pytest.approx(1.0)
    # an unused category changes nothing unweighted but widens the linear weights' scale
    assert cohen_kappa([1, 2], [1, 2], categories=[1, 2, 3]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cohen_kappa([1, 4], [1, 2], categories=[1, 2, 3])
    assert math.isnan(cohen_kappa(["y", "y"], ["y", "y"]))


def test_fleiss_textbook_example() -> None:
    assert fleiss_kappa(FLEISS_TABLE, counts=True) == pytest.approx(0.2099, abs=1e-4)
    # the same ratings as a long table
    assert fleiss_kappa(long_from_counts(FLEISS_TABLE)) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_by_hand_and_percent_agreement() -> None:
    # units (2,0) (0,2) (1,1): P_u = 1, 1, 0 -> P-bar 2/3; p = .5,.5 -> P_e .5; kappa 1/3
    assert fleiss_kappa([[2, 0], [0, 2], [1, 1]], counts=True) == pytest.approx(1 / 3)
    matrix = [[1, 1, 2], [1, 2, 2]]  # raters x units: agree, disagree, agree
    assert percent_agreement(matrix) == pytest.approx(2 / 3)
    assert fleiss_kappa(matrix) == pytest.approx(1 / 3)
    assert math.isnan(percent_agreement([[1, NAN], [NAN, 2]]))
