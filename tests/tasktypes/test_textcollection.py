from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steelyard.tasktypes.textcollection import TextCollection

from .helpers import invalid

SPEC = TextCollection()

GENRE = {
    "type": "category",
    "field_id": "genre",
    "title": "Genres",
    "choices": [
        {
            "label": "Hip-Hop",
            "value": "hip-hop",
            "subchoices": [{"label": "Rap", "value": "rap"}, {"label": "Trap", "value": "trap"}],
        },
        {"label": "Rock", "value": "rock", "hint": "guitars"},
        "jazz",
    ],
    "min_choices": 1,
    "max_choices": 2,
    "required": True,
}
WHY = {
    "type": "text",
    "field_id": "why",
    "title": "Why rap?",
    "min_characters": 3,
    "max_characters": 20,
    "required": True,
    "conditions": [{"genre": "rap"}],
}
PEOPLE = {
    "type": "field_set",
    "field_id": "people",
    "title": "Performers",
    "max_responses_required": 3,
    "fields": [
        {"type": "text", "field_id": "name", "title": "Name", "required": True},
        {"type": "number", "field_id": "age", "title": "Age", "min": 0, "max": 120, "step": 1},
        {"type": "datetime", "field_id": "born", "title": "Born"},
        {"type": "boolean", "field_id": "lead", "title": "Lead?"},
    ],
}


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attachments": [
            {"type": "text", "content": "# A song\n\nlyrics..."},
            {"type": "audio", "content": "https://example.com/song.mp3", "forms": ["why"]},
        ],
        "fields": [copy.deepcopy(GENRE), copy.deepcopy(WHY), copy.deepcopy(PEOPLE)],
    }
    base.update(overrides)
    return base


def test_valid_params_round_trip_unchanged() -> None:
    sent = params(extra="kept")
    kept = copy.deepcopy(sent)
    assert SPEC.validate_params(sent) == kept
    assert sent == kept


@pytest.mark.parametrize("key", ["attachments", "fields"])
def test_required_keys(key: str) -> None:
    sent = params()
    del sent[key]
    with invalid(key):
        SPEC.validate_params(sent)


def field(**overrides: Any) -> dict[str, Any]:
    return {"type": "text", "field_id": "f", "title": "F", **overrides}


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"attachments": []}, "attachments"),
        ({"attachments": ["hello"]}, "attachments.0"),
        ({"attachments": [{"type": "hologram", "content": "x"}]}, "attachments.0.type"),
        ({"attachments": [{"content": "x"}]}, "attachments.0.type"),
        ({"attachments": [{"type": "text"}]}, "attachments.0.content"),
        ({"attachments": [{"type": "image", "content": "not a url"}]}, "attachments.0.content"),
        ({"attachments": [{"type": "pdf", "content": "ftp://x/y.pdf"}]}, "attachments.0.content"),
        (
            {"attachments": [{"type": "text", "content": "x", "forms": ["nope"]}]},
            "attachments.0.forms.0",
        ),
        ({"fields": []}, "fields"),
        ({"fields": {"f": "x"}}, "fields"),
        ({"fields": [field(type="essay")]}, "fields.0.type"),
        ({"fields": [field(field_id="")]}, "fields.0.field_id"),
        ({"fields": [{"type": "text", "title": "F"}]}, "fields.0.field_id"),
        ({"fields": [{"type": "text", "field_id": "f"}]}, "fields.0.title"),
        ({"fields": [field(), field()]}, "fields.1.field_id"),
        ({"fields": [field(required="yes")]}, "fields.0.required"),
        ({"fields": [field(min_characters=-1)]}, "fields.0.min_characters"),
        ({"fields": [field(min_characters=5, max_characters=4)]}, "fields.0.max_characters"),
        ({"fields": [field(min_responses_required=0)]}, "fields.0.min_responses_required"),
        ({"fields": [field(max_responses_required=101)]}, "fields.0.max_responses_required"),
        (
            {"fields": [field(min_responses_required=3, max_responses_required=2)]},
            "fields.0.max_responses_required",
        ),
        ({"fields": [field(type="number", min=3, max=1)]}, "fields.0.max"),
        ({"fields": [field(type="number", step=-1)]}, "fields.0.step"),
        ({"fields": [field(type="category")]}, "fields.0.choices"),
        ({"fields": [field(type="category", choices=[])]}, "fields.0.choices"),
        (
            {"fields": [field(type="category", choices=[{"label": "A"}])]},
            "fields.0.choices.0.value",
        ),
        (
            {"fields": [field(type="category", choices=[{"value": "a"}])]},
            "fields.0.choices.0.label",
        ),
        (
            {"fields": [field(type="category", choices=[{"label": "A", "value": [1]}])]},
            "fields.0.choices.0.value",
        ),
        ({"fields": [field(type="category", choices=["a", "a"])]}, "fields.0.choices.1"),
        (
            {"fields": [field(type="category", choices=["a"], min_choices=2, max_choices=3)]},
            "fields.0.min_choices",
        ),
        (
            {"fields": [field(type="category", choices=["a", "b"], min_choices=2)]},
            "fields.0.max_choices",
        ),
        ({"fields": [field(type="field_set")]}, "fields.0.fields"),
        (
            {"fields": [field(type="field_set", fields=[field(field_id="f")])]},
            "fields.0.fields.0.field_id",
        ),
        ({"fields": [field(conditions={"g": "x"})]}, "fields.0.conditions"),
        ({"fields": [field(conditions=[{"g": "x"}])]}, "fields.0.conditions.0.g"),
        ({"fields": [field(conditions=[{"f": "x"}])]}, "fields.0.conditions.0.f"),
        (
            {"fields": [field(), field(field_id="g", conditions=[{"f": []}])]},
            "fields.1.conditions.0.f",
        ),
        ({"fields": [field(), field(field_id="g", conditions=[{}])]}, "fields.1.conditions.0"),
    ],
)
def test_bad_params_name_the_field(overrides: dict[str, Any], where: str) -> None:
    with invalid(where):
        SPEC.validate_params(params(**overrides))


def test_field_type_spellings() -> None:
    fields = [
        field(type="FieldSet", fields=[field(field_id="a"), field(field_id="b")]),
        field(field_id="s", type="select", choices=["x"]),
    ]
    SPEC.validate_params(params(attachments=[{"type": "text", "content": "x"}], fields=fields))


# -- responses -----------------------------------------------------------------------------

GOOD = {
    "genre": ["rap", "rock"],
    "why": "the beat",
    "people": [{"name": "Ann", "age": 30, "born": "1994-02-03", "lead": True}, {"name": "Bo"}],
}


def test_good_response() -> None:
    p = SPEC.validate_params(params())
    assert SPEC.validate_response(p, {"annotations": copy.deepcopy(GOOD)}) == {"annotations": GOOD}
    # hidden fields are not required; a lone category value counts as one choice
    assert SPEC.validate_response(p, {"annotations": {"genre": "jazz"}}) == {
        "annotations": {"genre": ["jazz"]}
    }


@pytest.mark.parametrize(
    ("answers", "where"),
    [
        ({}, "annotations.genre"),
        ({"genre": []}, "annotations.genre"),
        ({"genre": ["rap"]}, "annotations.why"),
        ({"genre": ["rap"], "why": "   "}, "annotations.why"),
        ({"genre": ["rap"], "why": "ab"}, "annotations.why"),
        ({"genre": ["rap"], "why": "x" * 21}, "annotations.why"),
        ({"genre": ["rap"], "why": 5}, "annotations.why"),
        ({"genre": ["hip-hop"]}, "annotations.genre.0"),
        ({"genre": ["rap", "rock", "jazz"]}, "annotations.genre"),
        ({"genre": ["rock", "rock"]}, "annotations.genre.1"),
        ({"genre": [True]}, "annotations.genre.0"),
        ({"genre": ["rock"], "tempo": 3}, "annotations.tempo"),
        ({"genre": ["rock"], "people": {"name": "A"}}, "annotations.people"),
        ({"genre": ["rock"], "people": [{"name": "A"}] * 4}, "annotations.people"),
        ({"genre": ["rock"], "people": [{"age": 3}]}, "annotations.people.0.name"),
        ({"genre": ["rock"], "people": [{"name": "A", "age": 130}]}, "annotations.people.0.age"),
        ({"genre": ["rock"], "people": [{"name": "A", "age": 3.5}]}, "annotations.people.0.age"),
        ({"genre": ["rock"], "people": [{"name": "A", "age": "3"}]}, "annotations.people.0.age"),
        (
            {"genre": ["rock"], "people": [{"name": "A", "born": "yesterday"}]},
            "annotations.people.0.born",
        ),
        (
            {"genre": ["rock"], "people": [{"name": "A", "lead": "yes"}]},
            "annotations.people.0.lead",
        ),
        ({"genre": ["rock"], "people": [{"name": "A", "x": 1}]}, "annotations.people.0.x"),
    ],
)
def test_bad_answers_name_the_field(answers: dict[str, Any], where: str) -> None:
    with invalid(where):
        SPEC.validate_response(SPEC.validate_params(params()), {"annotations": answers})


def test_response_needs_annotations() -> None:
    p = SPEC.validate_params(params())
    with invalid("annotations"):
        SPEC.validate_response(p, {"genre": ["rock"]})
    with invalid("annotations"):
        SPEC.validate_response(p, {"annotations": [["rock"]]})


def test_multiple_responses_and_not_conditions() -> None:
    fields = [
        {"type": "boolean", "field_id": "ok", "title": "OK?", "required": True},
        field(
            field_id="notes",
            required=True,
            min_responses_required=2,
            max_responses_required=3,
            conditions=[{"not": {"ok": True}}],
        ),
    ]
    p = SPEC.validate_params(params(attachments=[{"type": "text", "content": "x"}], fields=fields))
    SPEC.validate_response(p, {"annotations": {"ok": True}})
    SPEC.validate_response(p, {"annotations": {"ok": False, "notes": ["a", "b"]}})
    with invalid("annotations.notes"):
        SPEC.validate_response(p, {"annotations": {"ok": False}})
    with invalid("annotations.notes"):
        SPEC.validate_response(p, {"annotations": {"ok": False, "notes": "a"}})
    with invalid("annotations.notes"):
        SPEC.validate_response(p, {"annotations": {"ok": False, "notes": ["a"]}})
    with invalid("annotations.notes.1"):
        SPEC.validate_response(p, {"annotations": {"ok": False, "notes": ["a", 2]}})


# -- synthetic -----------------------------------------------------------------------------

IDS = st.text(alphabet="abcdefghijkl", min_size=1, max_size=5)


@st.composite
def unit_field(draw: st.DrawFn, field_id: str, earlier: list[dict[str, Any]]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["text", "number", "datetime", "boolean", "category"]))
    spec: dict[str, Any] = {
        "type": kind,
        "field_id": field_id,
        "title": field_id,
        "required": draw(st.booleans()),
    }
    if draw(st.booleans()):
        low = draw(st.integers(1, 3))
        spec.update(
            min_responses_required=low, max_responses_required=low + draw(st.integers(0, 3))
        )
    if kind == "text":
        least = draw(st.integers(0, 20))
        spec.update(min_characters=least, max_characters=least + draw(st.integers(1, 30)))
    elif kind == "number":
        low = draw(st.integers(-50, 50))
        spec.update(
            min=low,
            max=low + draw(st.integers(0, 10)),
            step=draw(st.sampled_from([None, 0.5, 1, 3])),
        )
    elif kind == "category":
        values = draw(st.lists(IDS, min_size=1, max_size=6, unique=True))
        choices: list[Any] = [{"label": v.upper(), "value": v} for v in values]
        if len(choices) > 2 and draw(st.booleans()):
            choices = [
                {"label": "group", "value": "group-parent", "subchoices": choices[:2]},
                *choices[2:],
            ]
        least = draw(st.integers(0, len(values)))
        spec.update(
            choices=choices, min_choices=least, max_choices=max(least, 1) + draw(st.integers(0, 2))
        )
    categories = [f for f in earlier if f["type"] == "category"]
    depend = draw(st.booleans())
    if categories and depend:
        other = draw(st.sampled_from(categories))
        wanted = draw(st.sampled_from([c["value"] for c in other["choices"]]))
        alternatives = [
            {other["field_id"]: wanted},
            {"not": {other["field_id"]: {"choices": [wanted]}}},
        ]
        spec["conditions"] = draw(st.lists(st.sampled_from(alternatives), min_size=1, max_size=2))
    return spec


@st.composite
def form(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(IDS, min_size=1, max_size=6, unique=True))
    fields: list[dict[str, Any]] = []
    for field_id in ids:
        if draw(st.integers(0, 5)) == 0:
            children = [draw(unit_field(f"{field_id}-{i}", [])) for i in range(2)]
            fields.append(
                {"type": "field_set", "field_id": field_id, "title": "set", "fields": children}
            )
        else:
            fields.append(draw(unit_field(field_id, fields)))
    return fields


@settings(max_examples=150, deadline=None)
@given(form(), st.integers(0, 2**32))
def test_synthetic_response_is_always_valid(fields: list[dict[str, Any]], seed: int) -> None:
    p = SPEC.validate_params({"attachments": [{"type": "text", "content": "x"}], "fields": fields})
    for offset in range(3):
        response = SPEC.synthetic_response(p, random.Random(seed + offset))
        assert SPEC.validate_response(p, response) == response


@pytest.mark.parametrize(
    ("conditions", "field_path"),
    [
        ([], "fields.1.conditions"),
        ([[]], "fields.1.conditions.0"),
        ([{"f": [{}]}], "fields.1.conditions.0.f.0"),
        ([{"f": None}], "fields.1.conditions.0.f"),
        ([{"f": {"values": ["a"]}}], "fields.1.conditions.0.f.choices"),
    ],
)
def test_bad_condition_values(conditions: Any, field_path: str) -> None:
    fields = [field(), field(field_id="g", conditions=conditions)]
    with invalid(field_path):
        SPEC.validate_params(params(attachments=[{"type": "text", "content": "x"}], fields=fields))


def test_nested_or_conditions() -> None:
    fields = [
        {"type": "category", "field_id": "kind", "title": "Kind", "choices": ["a", "b", "c"]},
        field(field_id="why", required=True, conditions=[[{"kind": "a"}, {"kind": ["b"]}]]),
    ]
    p = SPEC.validate_params(params(attachments=[{"type": "text", "content": "x"}], fields=fields))
    SPEC.validate_response(p, {"annotations": {"kind": ["c"]}})
    for kind in ("a", "b"):
        with invalid("annotations.why"):
            SPEC.validate_response(p, {"annotations": {"kind": [kind]}})
