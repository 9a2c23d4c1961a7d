from __future__ import annotations

import copy
from typing import Any

import pytest

from steelyard.errors import ValidationError
from steelyard.tasktypes.imageannotation import ImageAnnotation

from .helpers import invalid

SPEC = ImageAnnotation()
IMAGE = "https://example.com/street.jpg"


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attachment": IMAGE,
        "attachment_type": "image",
        "geometries": {
            "box": {
                "objects_to_annotate": [
                    "car",
                    {"choice": "Vehicle", "subchoices": ["Truck", "Bus"]},
                ],
                "min_width": 5,
                "min_height": 4,
            },
            "polygon": {"objects_to_annotate": ["road"], "min_vertices": 4, "max_vertices": 6},
            "point": {"objects_to_annotate": ["headlight"]},
        },
        "annotation_attributes": {
            "occlusion": {
                "description": "How hidden?",
                "choices": ["0%", "50%", "100%"],
                "conditions": {"label_condition": {"label": ["car", "Vehicle"]}},
            },
            "speed": {
                "type": "number",
                "min": 0,
                "max": 120,
                "conditions": {"attribute_conditions": [{"occlusion": "0%"}]},
            },
        },
    }
    base.update(overrides)
    return base


def box(**overrides: Any) -> dict[str, Any]:
    ann: dict[str, Any] = {
        "type": "box",
        "label": "car",
        "left": 1,
        "top": 2,
        "width": 10,
        "height": 10,
        "attributes": {"occlusion": "50%"},
    }
    ann.update(overrides)
    return ann


# -- params --------------------------------------------------------------------------------


def test_valid_params_round_trip_unchanged() -> None:
    sent = params()
    kept = copy.deepcopy(sent)
    assert SPEC.validate_params(sent) == kept
    assert sent == kept  # the caller's dict is never touched


def test_attachment_type_defaults_to_image_and_extra_keys_stay() -> None:
    sent = params(extra_thing={"x": 1})
    del sent["attachment_type"]
    out = SPEC.validate_params(sent)
    assert out["attachment_type"] == "image"
    assert out["extra_thing"] == {"x": 1}
    assert "attachment_type" not in sent


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.png",
        "https://example.com/a.png?x=1",
        "data:image/png;base64,iVBORw0KGgo=",
        "steelyard://0123456789abcdef01234567",
    ],
)
def test_image_urls_accepted(url: str) -> None:
    assert SPEC.validate_params(params(attachment=url))["attachment"] == url


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "not a url", "example.com/a.png", "data:text/plain,hi", 5, ""],
)
def test_bad_attachment_is_rejected(url: Any) -> None:
    with invalid("attachment"):
        SPEC.validate_params(params(attachment=url))


@pytest.mark.parametrize("key", ["attachment", "geometries"])
def test_required_keys(key: str) -> None:
    sent = params()
    del sent[key]
    with invalid(key) as info:
        SPEC.validate_params(sent)
    assert "required" in info.value.message


def test_attachment_type_must_be_image() -> None:
    with invalid("attachment_type"):
        SPEC.validate_params(params(attachment_type="video"))


def test_params_must_be_an_object() -> None:
    with pytest.raises(ValidationError):
        SPEC.validate_params([])  # type: ignore[arg-type]


BOX = {"objects_to_annotate": ["car"]}


@pytest.mark.parametrize(
    ("geometries", "field"),
    [
        ([BOX], "geometries"),
        ({}, "geometries"),
        ({"cuboid": BOX}, "geometries.cuboid"),
        ({"box": []}, "geometries.box"),
        ({"box": {}}, "geometries.box.objects_to_annotate"),
        ({"box": {"objects_to_annotate": []}}, "geometries.box.objects_to_annotate"),
        ({"box": {"objects_to_annotate": "car"}}, "geometries.box.objects_to_annotate"),
        ({"box": {"objects_to_annotate": [5]}}, "geometries.box.objects_to_annotate.0"),
        ({"box": {"objects_to_annotate": ["car", "car"]}}, "geometries.box.objects_to_annotate.1"),
        (
            {"box": {"objects_to_annotate": [{"display": "x"}]}},
            "geometries.box.objects_to_annotate.0.choice",
        ),
        (
            {"box": {"objects_to_annotate": [{"choice": "v", "subchoices": ["a", "v"]}]}},
            "geometries.box.objects_to_annotate.0.subchoices.1",
        ),
        ({"box": {**BOX, "min_width": -1}}, "geometries.box.min_width"),
        ({"box": {**BOX, "min_height": "five"}}, "geometries.box.min_height"),
        ({"box": {**BOX, "min_height": "-5"}}, "geometries.box.min_height"),
        ({"box": {**BOX, "min_width": True}}, "geometries.box.min_width"),
        ({"box": {**BOX, "can_rotate": "yes"}}, "geometries.box.can_rotate"),
        ({"box": {**BOX, "integer_pixels": 1}}, "geometries.box.integer_pixels"),
        ({"polygon": {**BOX, "min_vertices": 2}}, "geometries.polygon.min_vertices"),
        ({"polygon": {**BOX, "max_vertices": 2.5}}, "geometries.polygon.max_vertices"),
        (
            {"polygon": {**BOX, "min_vertices": 5, "max_vertices": 4}},
            "geometries.polygon.max_vertices",
        ),
        ({"line": {**BOX, "min_vertices": 1}}, "geometries.line.min_vertices"),
    ],
)
def test_bad_geometries_name_the_field(geometries: Any, field: str) -> None:
    with invalid(field):
        SPEC.validate_params(params(geometries=geometries, annotation_attributes=None))


def test_every_geometry_is_accepted() -> None:
    geometries = {
        kind: {"objects_to_annotate": ["a"]}
        for kind in ("box", "polygon", "line", "point", "ellipse")
    }
    assert (
        SPEC.validate_params(params(geometries=geometries, annotation_attributes=None))[
            "geometries"
        ]
        == geometries
    )


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ([], "annotation_attributes"),
        ({"a": {"type": "colour", "choices": ["x"]}}, "annotation_attributes.a.type"),
        ({"a": {"description": "no choices"}}, "annotation_attributes.a.choices"),
        ({"a": {"choices": []}}, "annotation_attributes.a.choices"),
        ({"a": {"choices": ["x", "x"]}}, "annotation_attributes.a.choices.1"),
        ({"a": {"type": "number", "min": 5, "max": 1}}, "annotation_attributes.a.max"),
        ({"a": {"type": "number", "step": 0}}, "annotation_attributes.a.step"),
        ({"a": {"type": "linear_scale", "max": 5}}, "annotation_attributes.a.min"),
        (
            {"a": {"choices": ["x"], "conditions": {"label_condition": {"label": "boat"}}}},
            "annotation_attributes.a.conditions.label_condition.label",
        ),
        (
            {"a": {"choices": ["x"], "conditions": {"label_condition": {}}}},
            "annotation_attributes.a.conditions.label_condition.label",
        ),
        (
            {"a": {"choices": ["x"], "conditions": {"attribute_conditions": [{"b": "x"}]}}},
            "annotation_attributes.a.conditions.attribute_conditions.0",
        ),
        (
            {"a": {"choices": ["x"], "conditions": {"attribute_conditions": {"b": "x"}}}},
            "annotation_attributes.a.conditions.attribute_conditions",
        ),
    ],
)
def test_bad_attributes_name_the_field(attributes: Any, field: str) -> None:
    with invalid(field):
        SPEC.validate_params(params(annotation_attributes=attributes))


# -- legacy endpoints ----------------------------------------------------------------------

LEGACY_CASES = [
    (
        "annotation",
        {"min_width": 3, "min_height": 2, "with_labels": True},
        "box",
        {"min_width": 3, "min_height": 2},
    ),
    ("polygonannotation", {"min_vertices": 4}, "polygon", {"min_vertices": 4}),
    ("lineannotation", {"max_vertices": 8}, "line", {"max_vertices": 8}),
    ("pointannotation", {}, "point", {}),
]


@pytest.mark.parametrize(("alias", "extra", "kind", "options"), LEGACY_CASES)
def test_legacy_params_become_geometries(
    alias: str, extra: dict[str, Any], kind: str, options: dict[str, Any]
) -> None:
    sent = {"attachment": IMAGE, "objects_to_annotate": ["car", "bus"], **extra}
    out = SPEC.validate_params(sent, alias=alias)
    assert out["geometries"] == {kind: {"objects_to_annotate": ["car", "bus"], **options}}
    assert {k: out[k] for k in sent} == sent  # the original top-level keys stay
    assert "geometries" not in sent


def test_scale_client_legacy_payload_with_string_numbers() -> None:
    # As sent by scaleapi's own tests (test_annotation_ok): numbers as strings.
    sent = {
        "attachment_type": "image",
        "attachment": "http://i.imgur.com/v4cBreD.jpg",
        "min_width": "30",
        "min_height": "30",
        "objects_to_annotate": ["baby cow", "big cow"],
        "with_labels": True,
    }
    out = SPEC.validate_params(sent, alias="annotation")
    assert out["geometries"]["box"]["min_width"] == "30"  # echoed as sent
    small = {"label": "big cow", "left": 0, "top": 0, "width": 29, "height": 40}
    with invalid("annotations.0.width"):
        SPEC.validate_response(out, {"annotations": [small]})
    SPEC.validate_response(out, {"annotations": [{**small, "width": 30}]})


def test_missing_attachment_is_reported_before_legacy_keys() -> None:
    with invalid("attachment"):
        SPEC.validate_params({"attachment_type": "image"}, alias="annotation")


def test_legacy_errors_name_the_top_level_key() -> None:
    with invalid("min_width"):
        SPEC.validate_params(
            {"attachment": IMAGE, "objects_to_annotate": ["a"], "min_width": -3}, alias="annotation"
        )
    with invalid("objects_to_annotate"):
        SPEC.validate_params({"attachment": IMAGE}, alias="pointannotation")
    with invalid("with_labels"):
        SPEC.validate_params(
            {"attachment": IMAGE, "objects_to_annotate": ["a"], "with_labels": "no"},
            alias="annotation",
        )


def test_legacy_endpoint_with_geometries_keeps_them() -> None:
    sent = params()
    assert SPEC.validate_params(sent, alias="annotation")["geometries"] == sent["geometries"]


def test_legacy_response_without_type_or_label() -> None:
    out = SPEC.validate_params(
        {"attachment": IMAGE, "objects_to_annotate": ["car"], "with_labels": False},
        alias="annotation",
    )
    response = SPEC.validate_response(
        out, {"annotations": [{"left": 0, "top": 0, "width": 3, "height": 3}]}
    )
    assert response["annotations"][0]["type"] == "box"
    legacy = SPEC.validate_params(
        {"attachment": IMAGE, "objects_to_annotate": ["car"]}, alias="annotation"
    )
    with invalid("annotations.0.label"):
        SPEC.validate_response(
            legacy, {"annotations": [{"left": 0, "top": 0, "width": 3, "height": 3}]}
        )


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ("https://example.com/a.png", "context_attachments"),
        ([{"attachment": "nope"}], "context_attachments.0.attachment"),
        ([{}], "context_attachments.0.attachment"),
        (["ftp://x"], "context_attachments.0"),
        ([5], "context_attachments.0"),
    ],
)
def test_context_attachments(context: Any, field: str) -> None:
    ok = [{"attachment": "https://example.com/map.png"}, "https://example.com/b.png"]
    assert SPEC.validate_params(params(context_attachments=ok))["context_attachments"] == ok
    with invalid(field):
        SPEC.validate_params(params(context_attachments=context))


def test_malformed_url_is_a_validation_error() -> None:
    with invalid("attachment"):
        SPEC.validate_params(params(attachment="http://[::1"))


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        (
            {"label_condition": {"label": []}},
            "annotation_attributes.a.conditions.label_condition.label",
        ),
        (
            {"label_condition": {"label": [{}]}},
            "annotation_attributes.a.conditions.label_condition.label.0",
        ),
        (
            {"label_condition": {"label": None}},
            "annotation_attributes.a.conditions.label_condition.label",
        ),
        (
            {"attribute_conditions": [{"b": {"x": 1}}]},
            "annotation_attributes.a.conditions.attribute_conditions.0.b",
        ),
    ],
)
def test_bad_condition_values(conditions: dict[str, Any], field: str) -> None:
    attributes = {"a": {"choices": ["x"], "conditions": conditions}, "b": {"choices": ["x"]}}
    with invalid(field):
        SPEC.validate_params(params(annotation_attributes=attributes))
