from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.tasktypes.comparison import Comparison, default_choices

from .helpers import invalid

SPEC = Comparison()
QUALITY = {
    "type": "number",
    "field_id": "quality",
    "title": "How good is the better answer?",
    "min": 1,
    "max": 7,
    "required": True,
}


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attachments": ["Answer one", {"type": "text", "content": "Answer two"}],
        "attachment_type": "text",
        "choices": ["A", "B", "tie"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_params_round_trip_unchanged() -> None:
    sent = params(fields=[copy.deepcopy(QUALITY)], extra={"k": 1})
    kept = copy.deepcopy(sent)
    assert SPEC.validate_params(sent) == kept
    assert sent == kept


def test_defaults_fill_only_what_is_missing() -> None:
    out = SPEC.validate_params({"attachments": ["one", "two", "three"]})
    assert out == {
        "attachments": ["one", "two", "three"],
        "attachment_type": "text",
        "choices": ["A", "B", "C"],
    }
    only_fields = SPEC.validate_params(params(choices=None, fields=[QUALITY]))
    assert "choices" not in only_fields


def test_default_choices_past_z() -> None:
    assert default_choices(28)[-3:] == ["Z", "27", "28"]


def test_url_attachments() -> None:
    SPEC.validate_params(
        params(
            attachment_type="image",
            attachments=["https://a.example/1.png", "https://a.example/2.png"],
        )
    )
    with invalid("attachments.1"):
        SPEC.validate_params(
            params(attachment_type="image", attachments=["https://a.example/1.png", "two"])
        )
    with invalid("attachments.0.content"):
        SPEC.validate_params(params(attachments=[{"type": "video", "content": "clip"}, "two"]))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"attachments": None}, "attachments"),
        ({"attachments": "one"}, "attachments"),
        ({"attachments": ["only one"]}, "attachments"),
        ({"attachments": ["one", 2]}, "attachments.1"),
        ({"attachments": ["one", ""]}, "attachments.1"),
        ({"attachments": ["one", {"type": "text"}]}, "attachments.1.content"),
        ({"attachments": ["one", {"type": "smell", "content": "x"}]}, "attachments.1.type"),
        ({"attachment_type": "smell"}, "attachment_type"),
        ({"choices": []}, "choices"),
        ({"choices": ["A"]}, "choices"),
        ({"choices": ["A", "A"]}, "choices.1"),
        ({"choices": ["A", None]}, "choices.1"),
        ({"fields": []}, "fields"),
        ({"fields": [{"type": "number", "field_id": "q"}]}, "fields.0.title"),
    ],
)
def test_bad_params_name_the_field(overrides: dict[str, Any], field: str) -> None:
    sent = params(**overrides)
    with invalid(field):
        SPEC.validate_params(sent)


def test_choice_response() -> None:
    p = SPEC.validate_params(params())
    assert SPEC.validate_response(p, {"choice": "tie"}) == {"choice": "tie"}
    for response in ({}, {"choice": "C"}, {"choice": ["A"]}):
        with invalid("choice"):
            SPEC.validate_response(p, response)


def test_choice_and_fields_response() -> None:
    p = SPEC.validate_params(params(fields=[QUALITY]))
    SPEC.validate_response(p, {"choice": "A", "annotations": {"quality": 5}})
    with invalid("annotations"):
        SPEC.validate_response(p, {"choice": "A"})
    with invalid("annotations.quality"):
        SPEC.validate_response(p, {"choice": "A", "annotations": {}})
    with invalid("annotations.quality"):
        SPEC.validate_response(p, {"choice": "A", "annotations": {"quality": 8}})
    with invalid(None):
        SPEC.validate_response(p, None)


@st.composite
def comparison_params(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(2, 5))
    sent: dict[str, Any] = {"attachments": [f"answer {i}" for i in range(count)]}
    if draw(st.booleans()):
        sent["choices"] = draw(
            st.lists(
                st.text(min_size=1, max_size=4).filter(str.strip),
                min_size=2,
                max_size=4,
                unique=True,
            )
        )
    if draw(st.booleans()):
        sent["fields"] = [
            QUALITY,
            {"type": "text", "field_id": "why", "title": "Why?", "max_characters": 50},
        ]
    return sent


@settings(max_examples=60, deadline=None)
@given(comparison_params(), st.integers(0, 2**32))
def test_synthetic_response_is_always_valid(sent: dict[str, Any], seed: int) -> None:
    p = SPEC.validate_params(sent)
    response = SPEC.synthetic_response(p, random.Random(seed))
    assert response
    assert SPEC.validate_response(p, response) == response
