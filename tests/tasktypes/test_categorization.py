from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.tasktypes.categorization import Categorization

from .helpers import invalid

SPEC = Categorization()


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attachment": "I loved this film!",
        "attachment_type": "text",
        "categories": ["positive", "negative", "neutral"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_params_round_trip_unchanged() -> None:
    sent = params(category_ids={"positive": "p1"}, allow_multiple=False, extra=[1])
    kept = copy.deepcopy(sent)
    assert SPEC.validate_params(sent) == kept
    assert sent == kept


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        ("some words", "text"),
        ("https://example.com/cat.png", "image"),
        ("steelyard://abc", "image"),
    ],
)
def test_attachment_type_default_follows_the_attachment(attachment: str, expected: str) -> None:
    assert (
        SPEC.validate_params(params(attachment=attachment, attachment_type=None))["attachment_type"]
        == expected
    )


def test_url_types_need_urls() -> None:
    SPEC.validate_params(params(attachment="https://example.com", attachment_type="website"))
    with invalid("attachment"):
        SPEC.validate_params(params(attachment="just words", attachment_type="image"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"attachment": None}, "attachment"),
        ({"attachment": ""}, "attachment"),
        ({"attachment": 5}, "attachment"),
        ({"attachment_type": "hologram"}, "attachment_type"),
        ({"categories": None}, "categories"),
        ({"categories": []}, "categories"),
        ({"categories": "positive"}, "categories"),
        ({"categories": ["a", "a"]}, "categories.1"),
        ({"categories": ["a", 2]}, "categories.1"),
        ({"allow_multiple": "yes"}, "allow_multiple"),
        ({"category_ids": ["x"]}, "category_ids"),
        ({"category_ids": {"happy": "h"}}, "category_ids.happy"),
        ({"taxonomies": {}}, "taxonomies"),
        ({"taxonomies": {"t": {"choices": []}}}, "taxonomies.t.choices"),
        ({"taxonomies": {"t": {}}}, "taxonomies.t.choices"),
        ({"taxonomies": {"t": {"type": "text", "choices": ["a"]}}}, "taxonomies.t.type"),
        (
            {"taxonomies": {"t": {"choices": ["a"], "allow_multiple": 1}}},
            "taxonomies.t.allow_multiple",
        ),
    ],
)
def test_bad_params_name_the_field(overrides: dict[str, Any], field: str) -> None:
    sent = params(**overrides)
    for key, value in overrides.items():
        if value is None:
            sent.pop(key, None)
    with invalid(field):
        SPEC.validate_params(sent)


def test_taxonomies_alone_are_enough() -> None:
    sent = params(
        categories=None, taxonomies={"sentiment": {"type": "category", "choices": ["pos", "neg"]}}
    )
    assert SPEC.validate_params(sent) == sent


def test_single_category_response() -> None:
    p = SPEC.validate_params(params())
    assert SPEC.validate_response(p, {"category": "neutral"}) == {"category": "neutral"}
    for bad in ("happy", ["positive"], None):
        with invalid("category"):
            SPEC.validate_response(p, {} if bad is None else {"category": bad})


def test_multiple_category_response() -> None:
    p = SPEC.validate_params(params(allow_multiple=True))
    SPEC.validate_response(p, {"category": ["positive", "neutral"]})
    with invalid("category"):
        SPEC.validate_response(p, {"category": []})
    with invalid("category"):
        SPEC.validate_response(p, {"category": "positive"})
    with invalid("category.1"):
        SPEC.validate_response(p, {"category": ["positive", "happy"]})
    with invalid("category.1"):
        SPEC.validate_response(p, {"category": ["positive", "positive"]})


def test_taxonomy_response() -> None:
    taxonomies = {
        "tone": {"choices": ["calm", "angry"]},
        "topics": {"choices": ["a", "b", "c"], "allow_multiple": True},
    }
    p = SPEC.validate_params(params(categories=None, taxonomies=taxonomies))
    out = SPEC.validate_response(p, {"taxonomies": {"tone": "calm", "topics": ["a", "c"]}})
    assert out == {"taxonomies": {"tone": ["calm"], "topics": ["a", "c"]}}
    cases = [
        ({}, "taxonomies"),
        ({"taxonomies": {"tone": ["calm"]}}, "taxonomies.topics"),
        ({"taxonomies": {"tone": ["calm", "angry"], "topics": ["a"]}}, "taxonomies.tone"),
        ({"taxonomies": {"tone": ["sad"], "topics": ["a"]}}, "taxonomies.tone.0"),
        ({"taxonomies": {"tone": ["calm"], "topics": ["a"], "mood": ["x"]}}, "taxonomies.mood"),
    ]
    for response, field in cases:
        with invalid(field):
            SPEC.validate_response(p, response)


def test_response_must_be_an_object() -> None:
    with invalid(None):
        SPEC.validate_response(SPEC.validate_params(params()), "positive")


WORDS = st.text(alphabet="abcdefg", min_size=1, max_size=5)


@st.composite
def categorization_params(draw: st.DrawFn) -> dict[str, Any]:
    sent: dict[str, Any] = {"attachment": "text to sort"}
    if draw(st.booleans()):
        sent["categories"] = draw(st.lists(WORDS, min_size=1, max_size=5, unique=True))
        sent["allow_multiple"] = draw(st.booleans())
    if "categories" not in sent or draw(st.booleans()):
        names = draw(st.lists(WORDS, min_size=1, max_size=3, unique=True))
        sent["taxonomies"] = {
            name: {
                "choices": draw(st.lists(WORDS, min_size=1, max_size=4, unique=True)),
                "allow_multiple": draw(st.booleans()),
            }
            for name in names
        }
    return sent


@settings(max_examples=100, deadline=None)
@given(categorization_params(), st.integers(0, 2**32))
def test_synthetic_response_is_always_valid(sent: dict[str, Any], seed: int) -> None:
    p = SPEC.validate_params(sent)
    response = SPEC.synthetic_response(p, random.Random(seed))
    assert SPEC.validate_response(p, response) == response
