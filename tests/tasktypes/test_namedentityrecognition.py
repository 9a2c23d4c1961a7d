from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.tasktypes.namedentityrecognition import NamedEntityRecognition

from .helpers import invalid

SPEC = NamedEntityRecognition()
TEXT = "Ada Lovelace met Charles Babbage in London."
#       0123456789012345678901234567890123456789012


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "text": TEXT,
        "labels": [
            {"name": "entity", "description": "Anything named"},
            {"name": "person", "parent": "entity"},
            "place",
        ],
        "allow_overlap": False,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def span(start: int, end: int, label: str = "person", **extra: Any) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label, **extra}


def test_valid_params_round_trip_unchanged() -> None:
    sent = params(extra=1)
    kept = copy.deepcopy(sent)
    assert SPEC.validate_params(sent) == kept
    assert sent == kept


def test_defaults() -> None:
    out = SPEC.validate_params({"attachment": TEXT, "labels": ["person"]})
    assert out == {
        "attachment": TEXT,
        "labels": ["person"],
        "attachment_type": "text",
        "allow_overlap": False,
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"text": None}, "text"),
        ({"text": ""}, "text"),
        ({"text": 5}, "text"),
        ({"text": None, "attachment": TEXT, "attachment_type": "image"}, "attachment_type"),
        ({"text": None, "attachment": ""}, "attachment"),
        ({"labels": None}, "labels"),
        ({"labels": []}, "labels"),
        ({"labels": ["a", "a"]}, "labels.1"),
        ({"labels": ["a", {"name": "a"}]}, "labels.1"),
        ({"labels": [{"description": "no name"}]}, "labels.0.name"),
        ({"labels": [3]}, "labels.0"),
        ({"labels": [{"name": "a", "parent": "b"}]}, "labels.0.parent"),
        ({"labels": [{"name": "a", "parent": "a"}]}, "labels.0.parent"),
        ({"allow_overlap": "no"}, "allow_overlap"),
    ],
)
def test_bad_params_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with invalid(field):
        SPEC.validate_params(params(**overrides))


def test_good_response_fills_text() -> None:
    p = SPEC.validate_params(params())
    out = SPEC.validate_response(
        p, {"annotations": [span(0, 12), span(36, 42, "place", text="London")]}
    )
    assert out["annotations"][0]["text"] == "Ada Lovelace"
    assert SPEC.validate_response(p, {"annotations": []}) == {"annotations": []}


@pytest.mark.parametrize(
    ("annotations", "field"),
    [
        ([span(-1, 3)], "annotations.0.start"),
        ([span(len(TEXT), len(TEXT) + 1)], "annotations.0.start"),
        ([span(3, 3)], "annotations.0.end"),
        ([span(3, len(TEXT) + 1)], "annotations.0.end"),
        ([span(1.5, 3)], "annotations.0.start"),  # type: ignore[arg-type]
        ([{"end": 3, "label": "person"}], "annotations.0.start"),
        ([span(0, 3, "animal")], "annotations.0.label"),
        ([{"start": 0, "end": 3}], "annotations.0.label"),
        ([span(0, 12, text="Ada")], "annotations.0.text"),
        ([span(17, 32), span(0, 12), span(4, 20)], "annotations.2"),
        (["Ada"], "annotations.0"),
    ],
)
def test_bad_spans_name_the_field(annotations: list[Any], field: str) -> None:
    with invalid(field):
        SPEC.validate_response(SPEC.validate_params(params()), {"annotations": annotations})


def test_overlap_allowed_when_asked() -> None:
    p = SPEC.validate_params(params(allow_overlap=True))
    SPEC.validate_response(p, {"annotations": [span(0, 12), span(4, 12, "entity")]})


def test_response_needs_annotations() -> None:
    with invalid("annotations"):
        SPEC.validate_response(SPEC.validate_params(params()), {"spans": []})


@settings(max_examples=100, deadline=None)
@given(
    st.text(min_size=1, max_size=60).filter(str.strip),
    st.lists(
        st.text(alphabet="abcxyz", min_size=1, max_size=4), min_size=1, max_size=4, unique=True
    ),
    st.booleans(),
    st.integers(0, 2**32),
)
def test_synthetic_response_is_always_valid(
    text: str, labels: list[str], overlap: bool, seed: int
) -> None:
    p = SPEC.validate_params({"text": text, "labels": labels, "allow_overlap": overlap})
    response = SPEC.synthetic_response(p, random.Random(seed))
    assert 1 <= len(response["annotations"]) <= 3
    assert SPEC.validate_response(p, response) == response


# -- nested labels (Scale's NERLabel ``children``) ------------------------------------------

NESTED = [
    "person",
    {"name": "ORG", "description": "An organization", "children": [{"name": "COMPANY"}, "NGO"]},
    {"name": "place", "children": [{"name": "city", "children": [{"name": "capital"}]}]},
]


def test_children_are_labels_a_span_may_carry() -> None:
    p = SPEC.validate_params(params(labels=NESTED))
    assert p["labels"] == NESTED  # echoed as sent
    for label in ("COMPANY", "NGO", "capital", "ORG"):
        out = SPEC.validate_response(p, {"annotations": [span(0, 12, label)]})
        assert out["annotations"][0]["label"] == label
    with invalid("annotations.0.label"):
        SPEC.validate_response(p, {"annotations": [span(0, 12, "animal")]})


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ([{"name": "ORG", "children": "COMPANY"}], "labels.0.children"),
        ([{"name": "ORG", "children": []}], "labels.0.children"),
        ([{"name": "ORG", "children": [{"description": "no name"}]}], "labels.0.children.0.name"),
        ([{"name": "ORG", "children": [7]}], "labels.0.children.0"),
        ([{"name": "ORG", "children": ["ORG"]}], "labels.0.children.0"),
        (["NGO", {"name": "ORG", "children": ["NGO"]}], "labels.1.children.0"),
        (
            [{"name": "ORG", "children": [{"name": "x", "description": 3}]}],
            "labels.0.children.0.description",
        ),
    ],
)
def test_bad_children_name_the_field(labels: list[Any], field: str) -> None:
    with invalid(field):
        SPEC.validate_params(params(labels=labels))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32))
def test_synthetic_responses_draw_on_child_labels(seed: int) -> None:
    p = SPEC.validate_params(params(labels=NESTED, allow_overlap=True))
    response = SPEC.synthetic_response(p, random.Random(seed))
    assert SPEC.validate_response(p, response) == response


def test_synthetic_responses_use_children() -> None:
    p = SPEC.validate_params(params(labels=[{"name": "ORG", "children": ["COMPANY"]}]))
    used = {
        a["label"]
        for seed in range(40)
        for a in SPEC.synthetic_response(p, random.Random(seed))["annotations"]
    }
    assert used == {"ORG", "COMPANY"}
