"""imageannotation: validating and normalizing responses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .helpers import invalid
from .test_imageannotation import SPEC, box, params

# -- responses -----------------------------------------------------------------------------


def test_good_response_is_normalized() -> None:
    p = SPEC.validate_params(params())
    given_uuid = "11111111-2222-4333-8444-555555555555"
    polygon = {
        "type": "polygon",
        "label": "road",
        "vertices": [{"x": 0, "y": 0}, {"x": 5, "y": 0}, {"x": 5, "y": 5}, {"x": 0, "y": 5}],
    }
    point = {"type": "point", "label": "headlight", "x": 3.5, "y": 4, "uuid": given_uuid}
    out = SPEC.validate_response(p, {"annotations": [box(), polygon, point], "extra": 1})
    first, second, third = out["annotations"]
    assert uuid.UUID(first["uuid"]).version == 4
    assert second["attributes"] == {}
    assert third["uuid"] == given_uuid
    assert out["extra"] == 1
    assert SPEC.validate_response(p, {"annotations": []}) == {"annotations": []}


def test_attribute_conditions_decide_what_is_required() -> None:
    p = SPEC.validate_params(params())
    # occlusion applies to cars and to every subchoice of Vehicle ...
    SPEC.validate_response(
        p, {"annotations": [box(label="Truck", attributes={"occlusion": "100%"})]}
    )
    # ... and speed only once occlusion is 0%.
    with invalid("annotations.0.attributes.speed"):
        SPEC.validate_response(p, {"annotations": [box(attributes={"occlusion": "0%"})]})
    SPEC.validate_response(p, {"annotations": [box(attributes={"occlusion": "0%", "speed": 40})]})


@pytest.mark.parametrize(
    ("annotation", "field"),
    [
        ([], "annotations.0"),
        (box(type=None), "annotations.0.type"),
        (box(type="ellipse"), "annotations.0.type"),
        (box(label="boat"), "annotations.0.label"),
        (box(label="Vehicle"), "annotations.0.label"),
        (box(label=None), "annotations.0.label"),
        (box(width=4), "annotations.0.width"),
        (box(height=3.9), "annotations.0.height"),
        (box(width=-10), "annotations.0.width"),
        (box(left="1"), "annotations.0.left"),
        (box(top=None), "annotations.0.top"),
        (box(rotation=0.5), "annotations.0.rotation"),
        (box(uuid=5), "annotations.0.uuid"),
        (box(attributes={}), "annotations.0.attributes.occlusion"),
        (box(attributes={"occlusion": "30%"}), "annotations.0.attributes.occlusion"),
        (box(attributes={"occlusion": "0%", "speed": 121}), "annotations.0.attributes.speed"),
        (box(attributes={"occlusion": "0%", "speed": 1.5}), "annotations.0.attributes.speed"),
        (box(attributes={"occlusion": "0%", "colour": "red"}), "annotations.0.attributes.colour"),
        (box(attributes=["0%"]), "annotations.0.attributes"),
        (
            {"type": "polygon", "label": "road", "vertices": [{"x": 0, "y": 0}] * 3},
            "annotations.0.vertices",
        ),
        (
            {"type": "polygon", "label": "road", "vertices": [{"x": 0, "y": 0}] * 7},
            "annotations.0.vertices",
        ),
        (
            {"type": "polygon", "label": "road", "vertices": [{"x": 0}] * 4},
            "annotations.0.vertices.0.y",
        ),
        ({"type": "polygon", "label": "road"}, "annotations.0.vertices"),
        ({"type": "point", "label": "headlight", "y": 1}, "annotations.0.x"),
    ],
)
def test_bad_annotations_name_the_field(annotation: Any, field: str) -> None:
    p = SPEC.validate_params(params())
    if isinstance(annotation, dict):
        annotation = {k: v for k, v in annotation.items() if v is not None}
    with invalid(field):
        SPEC.validate_response(p, {"annotations": [annotation]})


def test_box_options() -> None:
    geometries = {"box": {"objects_to_annotate": ["a"], "can_rotate": True, "integer_pixels": True}}
    p = SPEC.validate_params(params(geometries=geometries, annotation_attributes=None))
    ok = {"label": "a", "left": 1, "top": 2.0, "width": 3, "height": 4, "rotation": 0.3}
    SPEC.validate_response(p, {"annotations": [ok]})
    with invalid("annotations.0.left"):
        SPEC.validate_response(p, {"annotations": [{**ok, "left": 1.5}]})
    with invalid("annotations.0.vertices"):
        SPEC.validate_response(p, {"annotations": [{**ok, "vertices": [{"x": 1, "y": 1}]}]})


def test_ellipse_needs_four_points() -> None:
    p = SPEC.validate_params(
        params(geometries={"ellipse": {"objects_to_annotate": ["a"]}}, annotation_attributes=None)
    )
    SPEC.validate_response(p, {"annotations": [{"label": "a", "vertices": [{"x": 1, "y": 1}] * 4}]})
    with invalid("annotations.0.vertices"):
        SPEC.validate_response(
            p, {"annotations": [{"label": "a", "vertices": [{"x": 1, "y": 1}] * 3}]}
        )


@pytest.mark.parametrize(
    ("response", "field"), [([], None), ({}, "annotations"), ({"annotations": {}}, "annotations")]
)
def test_response_shape(response: Any, field: str | None) -> None:
    with invalid(field):
        SPEC.validate_response(SPEC.validate_params(params()), response)


def test_attribute_value_kinds() -> None:
    attributes = {
        "tags": {"choices": ["x", "y"], "allow_multiple": True},
        "depth": {"type": "number", "min": 1},
        "heading": {"type": "angle"},
        "note": {"type": "text", "required": False},
    }
    p = SPEC.validate_params(params(annotation_attributes=attributes))
    good = {"tags": ["x", "y"], "depth": 3, "heading": 359.5}
    SPEC.validate_response(p, {"annotations": [box(attributes=good)]})
    for key, value in (("tags", []), ("tags", ["z"]), ("depth", 0), ("heading", 361), ("note", 4)):
        with invalid(f"annotations.0.attributes.{key}"):
            SPEC.validate_response(p, {"annotations": [box(attributes={**good, key: value})]})
