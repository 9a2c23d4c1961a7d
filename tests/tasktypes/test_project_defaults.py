"""Project params as defaults: how each type merges them under a task's own params
(``merge_params``) and how it checks them on their own (``validate_defaults``)."""

from __future__ import annotations

from typing import Any

import pytest

from steelyard.tasktypes import registry

from .helpers import invalid

IMAGE = "https://example.com/car.jpg"
BOXES = {"box": {"objects_to_annotate": ["car", "truck"], "min_width": 5, "can_rotate": True}}


def effective(
    type_name: str, defaults: dict[str, Any], own: dict[str, Any], alias: str | None = None
) -> dict[str, Any]:
    """What a task created as ``type_name`` with ``own`` in a project with ``defaults`` holds."""
    spec = registry.get(type_name)
    alias = alias if alias is not None else (type_name if type_name in spec.aliases else None)
    return spec.validate_params(spec.merge_params(defaults, own, alias=alias), alias=alias)


# -- merge_params ---------------------------------------------------------------------------


def test_a_task_key_replaces_the_projects_whole() -> None:
    own = {"attachment": IMAGE, "geometries": {"point": {"objects_to_annotate": ["wheel"]}}}
    assert effective("imageannotation", {"geometries": BOXES}, own)["geometries"] == {
        "point": {"objects_to_annotate": ["wheel"]}
    }
    assert (
        effective("imageannotation", {"geometries": BOXES}, {"attachment": IMAGE})["geometries"]
        == BOXES
    )


@pytest.mark.parametrize(
    ("alias", "kind"),
    [
        ("annotation", "box"),
        ("polygonannotation", "polygon"),
        ("lineannotation", "line"),
        ("pointannotation", "point"),
    ],
)
def test_legacy_keys_beat_project_geometries(alias: str, kind: str) -> None:
    defaults = {"geometries": {kind: {"objects_to_annotate": ["car"]}, "ellipse": BOXES["box"]}}
    out = effective(alias, defaults, {"attachment": IMAGE, "objects_to_annotate": ["bus"]})
    assert out["geometries"] == {kind: {"objects_to_annotate": ["bus"]}}
    assert out["objects_to_annotate"] == ["bus"]


def test_legacy_keys_keep_the_projects_other_options_for_that_geometry() -> None:
    out = effective(
        "annotation", {"geometries": BOXES}, {"attachment": IMAGE, "objects_to_annotate": ["bus"]}
    )
    assert out["geometries"] == {
        "box": {"objects_to_annotate": ["bus"], "min_width": 5, "can_rotate": True}
    }
    out = effective("annotation", {"geometries": BOXES}, {"attachment": IMAGE, "min_width": 9})
    assert out["geometries"]["box"] == {
        "objects_to_annotate": ["car", "truck"],
        "min_width": 9,
        "can_rotate": True,
    }


def test_legacy_task_without_its_own_keys_takes_the_project_geometries() -> None:
    out = effective("annotation", {"geometries": BOXES}, {"attachment": IMAGE})
    assert out["geometries"] == BOXES
    legacy_project = {"objects_to_annotate": ["car"], "min_height": 3}
    out = effective("annotation", legacy_project, {"attachment": IMAGE})
    assert out["geometries"] == {"box": {"objects_to_annotate": ["car"], "min_height": 3}}
    own = {"attachment": IMAGE, "geometries": {"box": {"objects_to_annotate": ["bus"]}}}
    assert effective("annotation", legacy_project, own)["geometries"] == own["geometries"]


def test_categorization_task_question_replaces_the_projects() -> None:
    defaults: dict[str, Any] = {
        "categories": ["cat", "dog"],
        "category_ids": {"cat": "c1"},
        "allow_multiple": True,
    }
    own: dict[str, Any] = {"attachment": "x", "attachment_type": "text", "categories": ["bird"]}
    out = effective("categorization", defaults, own)
    assert out["categories"] == ["bird"] and "category_ids" not in out
    assert out["allow_multiple"] is True  # not part of the question: still a default
    taxonomies = {"animal": {"type": "category", "choices": ["bird"]}}
    own = {"attachment": "x", "attachment_type": "text", "taxonomies": taxonomies}
    out = effective("categorization", defaults, own)
    assert "categories" not in out and out["taxonomies"] == taxonomies
    out = effective("categorization", defaults, {"attachment": "x", "attachment_type": "text"})
    assert out["categories"] == ["cat", "dog"] and out["category_ids"] == {"cat": "c1"}


def test_ner_task_text_replaces_the_projects() -> None:
    defaults = {"text": "project text", "labels": ["person"]}
    out = effective("namedentityrecognition", defaults, {"attachment": "task text"})
    assert out["attachment"] == "task text" and "text" not in out
    assert effective("namedentityrecognition", defaults, {})["text"] == "project text"


# -- validate_defaults ----------------------------------------------------------------------


PARTIAL_OK: list[tuple[str, dict[str, Any]]] = [
    ("imageannotation", {}),
    ("imageannotation", {"geometries": BOXES}),
    (
        "imageannotation",
        {
            "annotation_attributes": {
                "a": {"choices": ["x"], "conditions": {"label_condition": {"label": "car"}}}
            }
        },
    ),
    ("annotation", {"objects_to_annotate": ["car"], "with_labels": False}),
    ("annotation", {"min_width": 3}),
    ("categorization", {"attachment_type": "image"}),
    ("categorization", {"allow_multiple": True}),
    ("categorization", {"categories": ["a", "b"], "category_ids": {"a": 1}}),
    ("comparison", {"choices": ["A", "B"]}),
    ("comparison", {"attachment_type": "image"}),
    ("textcollection", {"fields": [{"type": "text", "field_id": "f", "title": "F"}]}),
    ("textcollection", {"attachments": [{"type": "text", "content": "x", "forms": ["f"]}]}),
    ("namedentityrecognition", {"labels": [{"name": "ORG", "children": ["NGO"]}]}),
    ("namedentityrecognition", {"allow_overlap": True}),
]


@pytest.mark.parametrize(("type_name", "params"), PARTIAL_OK)
def test_partial_defaults_are_accepted_unchanged(type_name: str, params: dict[str, Any]) -> None:
    spec = registry.get(type_name)
    alias = type_name if type_name in spec.aliases else None
    assert spec.validate_defaults(params, alias=alias) == params


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("imageannotation", {"attachment": 42}, "attachment"),
    ("imageannotation", {"attachment_type": "text"}, "attachment_type"),
    (
        "imageannotation",
        {"geometries": {"box": {"min_width": "wide"}}},
        "geometries.box.objects_to_annotate",
    ),
    (
        "imageannotation",
        {"geometries": {"box": {"objects_to_annotate": ["c"], "min_width": -1}}},
        "geometries.box.min_width",
    ),
    ("imageannotation", {"geometries": {"blob": {}}}, "geometries.blob"),
    ("imageannotation", {"geometries": []}, "geometries"),
    (
        "imageannotation",
        {"annotation_attributes": {"a": {"type": "colour"}}},
        "annotation_attributes.a.type",
    ),
    (
        "imageannotation",
        {
            "geometries": BOXES,
            "annotation_attributes": {
                "a": {"choices": ["x"], "conditions": {"label_condition": {"label": "bus"}}}
            },
        },
        "annotation_attributes.a.conditions.label_condition.label",
    ),
    ("imageannotation", {"with_labels": "yes"}, "with_labels"),
    ("imageannotation", {"context_attachments": "x"}, "context_attachments"),
    ("annotation", {"min_width": "wide"}, "min_width"),
    ("annotation", {"objects_to_annotate": []}, "objects_to_annotate"),
    ("polygonannotation", {"min_vertices": 1}, "min_vertices"),
    ("categorization", {"categories": ["a", "a"]}, "categories.1"),
    ("categorization", {"categories": "a"}, "categories"),
    ("categorization", {"allow_multiple": 1}, "allow_multiple"),
    ("categorization", {"category_ids": {"a": 1}}, "category_ids"),
    ("categorization", {"categories": ["a"], "category_ids": {"b": 1}}, "category_ids.b"),
    ("categorization", {"taxonomies": {}}, "taxonomies"),
    ("categorization", {"attachment_type": "hologram"}, "attachment_type"),
    ("comparison", {"attachments": ["only one"]}, "attachments"),
    ("comparison", {"choices": ["A"]}, "choices"),
    ("comparison", {"fields": "x"}, "fields"),
    ("textcollection", {"fields": []}, "fields"),
    ("textcollection", {"attachments": [{"type": "text"}]}, "attachments.0.content"),
    (
        "textcollection",
        {
            "fields": [{"type": "text", "field_id": "f", "title": "F"}],
            "attachments": [{"type": "text", "content": "x", "forms": ["g"]}],
        },
        "attachments.0.forms.0",
    ),
    ("namedentityrecognition", {"labels": []}, "labels"),
    (
        "namedentityrecognition",
        {"labels": [{"name": "a", "children": [{"name": "a"}]}]},
        "labels.0.children.0",
    ),
    ("namedentityrecognition", {"text": 3}, "text"),
    ("namedentityrecognition", {"allow_overlap": "no"}, "allow_overlap"),
]


@pytest.mark.parametrize(("type_name", "params", "field"), BAD)
def test_bad_defaults_name_the_field(type_name: str, params: dict[str, Any], field: str) -> None:
    spec = registry.get(type_name)
    alias = type_name if type_name in spec.aliases else None
    with invalid(field):
        spec.validate_defaults(params, alias=alias)
