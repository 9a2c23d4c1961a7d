"""Gold scores: one measure per kind of answer, each 1 for the expected answer itself, symmetric,
in [0, 1]; and every registered task type names a measure that exists."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.quality import gold_scores
from steelyard.quality.gold_scores import SCORERS, is_correct, score
from steelyard.tasktypes import registry

LABELS = ["car", "person", "tree"]


def test_every_task_type_names_a_measure() -> None:
    for type_name in registry.names():
        assert registry.get(type_name).scorer in SCORERS, type_name


# --- categorization ----------------------------------------------------------------------------


def test_single_choice_is_exact() -> None:
    assert score("choice", {"category": "cat"}, {"category": "cat"}) == 1.0
    assert score("choice", {"category": "dog"}, {"category": "cat"}) == 0.0
    assert is_correct("choice", 1.0) and not is_correct("choice", 0.99)


def test_multiple_choice_is_jaccard() -> None:
    assert score("choice", {"category": ["a", "b"]}, {"category": ["b", "c"]}) == pytest.approx(
        1 / 3
    )
    assert score("choice", {"category": ["b", "a"]}, {"category": ["a", "b"]}) == 1.0


def test_taxonomies_are_averaged() -> None:
    expected = {"taxonomies": {"colour": ["red"], "size": ["big", "tall"]}}
    response = {"taxonomies": {"colour": ["red"], "size": ["big"]}}
    assert score("choice", response, expected) == pytest.approx((1 + 0.5) / 2)


# --- image annotation ---------------------------------------------------------------------------


def _box(left: float, top: float, label: str = "car", w: float = 10, h: float = 10) -> Any:
    return {"type": "box", "label": label, "left": left, "top": top, "width": w, "height": h}


def test_boxes_match_by_iou_and_label_f1() -> None:
    expected = {"annotations": [_box(0, 0), _box(100, 100, "person")]}
    # One box slightly moved (IoU 0.68), one with the wrong label, one extra.
    response = {"annotations": [_box(1, 1), _box(100, 100, "tree"), _box(300, 300)]}
    assert score("objects", response, expected) == pytest.approx(2 * 1 / (2 + 3))
    # Moved too far (IoU < 0.5): no match.
    assert score("objects", {"annotations": [_box(6, 6)]}, {"annotations": [_box(0, 0)]}) == 0.0
    assert score("objects", {"annotations": []}, {"annotations": []}) == 1.0


def test_polygons_match_by_polygon_iou() -> None:
    square = [{"x": 0, "y": 0}, {"x": 10, "y": 0}, {"x": 10, "y": 10}, {"x": 0, "y": 10}]
    shifted = [{"x": v["x"] + 1, "y": v["y"]} for v in square]
    far = [{"x": v["x"] + 50, "y": v["y"]} for v in square]
    poly = {"type": "polygon", "label": "tree"}
    expected = {"annotations": [{**poly, "vertices": square}]}
    assert score("objects", {"annotations": [{**poly, "vertices": shifted}]}, expected) == 1.0
    assert score("objects", {"annotations": [{**poly, "vertices": far}]}, expected) == 0.0


def test_points_match_by_equal_coordinates() -> None:
    point = {"type": "point", "label": "car", "x": 3.0, "y": 4.0}
    assert score("objects", {"annotations": [point]}, {"annotations": [point]}) == 1.0
    moved = {**point, "x": 5.0}
    assert score("objects", {"annotations": [moved]}, {"annotations": [point]}) == 0.0


# --- named entities, text, comparison -----------------------------------------------------------


def test_spans_f1() -> None:
    expected = {
        "annotations": [
            {"start": 0, "end": 4, "label": "ORG"},
            {"start": 9, "end": 14, "label": "LOC"},
        ]
    }
    response = {
        "annotations": [
            {"start": 0, "end": 4, "label": "ORG"},
            {"start": 9, "end": 13, "label": "LOC"},
        ]
    }
    assert score("spans", response, expected) == pytest.approx(0.5)
    assert is_correct("spans", 0.8) and not is_correct("spans", 0.5)


def test_text_fields_normalized() -> None:
    expected = {"annotations": {"name": "Ada  Lovelace", "tags": ["x", "y"], "year": 1815}}
    response = {"annotations": {"name": " ada lovelace", "tags": ["y", "x"], "year": 1816}}
    assert score("fields", response, expected) == pytest.approx(2 / 3)
    # A field only one side answered counts against.
    assert score("fields", {"annotations": {}}, {"annotations": {"a": "1"}}) == 0.0


def test_comparison_preference() -> None:
    assert score("preference", {"choice": "A"}, {"choice": "A"}) == 1.0
    assert score("preference", {"choice": "B"}, {"choice": "A"}) == 0.0
    both = {"choice": "A", "annotations": {"why": "clearer"}}
    assert score("preference", {**both, "annotations": {"why": "other"}}, both) == 0.5


# --- properties ---------------------------------------------------------------------------------

_coord = st.floats(min_value=0, max_value=500, allow_nan=False, allow_infinity=False)
_size = st.floats(min_value=1, max_value=100, allow_nan=False, allow_infinity=False)
_boxes = st.lists(
    st.builds(
        lambda left, top, w, h, label: _box(left, top, label, w, h),
        _coord,
        _coord,
        _size,
        _size,
        st.sampled_from(LABELS),
    ),
    max_size=6,
)
_spans = st.lists(
    st.builds(
        lambda start, n, label: {"start": start, "end": start + n, "label": label},
        st.integers(0, 100),
        st.integers(1, 20),
        st.sampled_from(["PER", "ORG"]),
    ),
    max_size=6,
)
_answers: dict[str, Any] = {
    "choice": st.one_of(
        st.builds(lambda c: {"category": c}, st.sampled_from(LABELS)),
        st.builds(lambda c: {"category": c}, st.lists(st.sampled_from(LABELS), unique=True)),
    ),
    "objects": st.builds(lambda a: {"annotations": a}, _boxes),
    "spans": st.builds(lambda a: {"annotations": a}, _spans),
    "fields": st.builds(
        lambda a: {"annotations": a},
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(max_size=5), max_size=3),
    ),
    "preference": st.builds(lambda c: {"choice": c}, st.sampled_from(["A", "B", "tie"])),
}


@pytest.mark.parametrize("scorer", sorted(SCORERS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_an_answer_scores_one_against_itself_and_scores_are_symmetric(
    scorer: str, data: st.DataObject
) -> None:
    a = data.draw(_answers[scorer])
    b = data.draw(_answers[scorer])
    assert score(scorer, a, a) == pytest.approx(1.0)
    assert is_correct(scorer, score(scorer, a, a))
    ab, ba = score(scorer, a, b), score(scorer, b, a)
    assert 0.0 <= ab <= 1.0
    assert ab == pytest.approx(ba)


def test_f1_of_nothing_is_agreement() -> None:
    assert gold_scores.f1_matched(0, 0, 0) == 1.0
    assert gold_scores.f1_matched(0, 1, 0) == 0.0
