"""Scenario 9 (task types and their validation) through the real client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest, ScaleNotEnabled, ScaleResourceNotFound
from scaleapi.tasks import TaskType

from tests.api.helpers import IMAGE, auth, client, image_project, image_task, scale_error
from tests.conftest import LiveServer, Org

FIELDS = [
    {"type": "text", "field_id": "summary", "title": "Summary", "required": True},
    {
        "type": "category",
        "field_id": "tone",
        "title": "Tone",
        "choices": ["calm", "angry"],
        "required": True,
    },
]
ATTRIBUTES = {"occluded": {"type": "category", "description": "Hidden?", "choices": ["yes", "no"]}}

#: type → (params that create a valid task, the key that is required)
VALID: dict[TaskType, tuple[dict[str, Any], str]] = {
    TaskType.Categorization: (
        {
            "attachment": "I love it",
            "attachment_type": "text",
            "categories": ["positive", "negative"],
        },
        "attachment",
    ),
    TaskType.TextCollection: (
        {"attachments": [{"type": "text", "content": "Some article"}], "fields": FIELDS},
        "attachments",
    ),
    TaskType.Comparison: (
        {
            "attachments": ["first answer", "second answer"],
            "attachment_type": "text",
            "choices": ["A", "B", "tie"],
        },
        "attachments",
    ),
    TaskType.NamedEntityRecognition: (
        {"text": "Ada Lovelace was born in London.", "labels": ["person", "place"]},
        "text",
    ),
    TaskType.ImageAnnotation: (
        {
            "attachment": IMAGE,
            "attachment_type": "image",
            "geometries": {"box": {"objects_to_annotate": ["car"]}},
        },
        "attachment",
    ),
}


@pytest.mark.parametrize("task_type", list(VALID), ids=lambda t: t.value)
def test_supported_types_echo_params_and_complete(
    server: LiveServer, org: Org, task_type: TaskType
) -> None:
    c = client(server, org.test_key)
    params, _ = VALID[task_type]
    task = c.create_task(task_type, instruction="Do it", **params)
    assert task.type == task_type.value
    for key, value in params.items():
        assert task.params[key] == value, key
    assert task.status == "completed"
    assert isinstance(task.response, dict) and task.response
    # live: pending, no response
    live = c if False else client(server, org.live_key)
    pending = live.create_task(task_type, **params)
    assert pending.status == "pending"
    assert "response" not in pending.as_dict()


@pytest.mark.parametrize("task_type", list(VALID), ids=lambda t: t.value)
def test_missing_required_param_is_400_naming_it(
    server: LiveServer, org: Org, http: httpx.Client, task_type: TaskType
) -> None:
    c = client(server, org.test_key)
    params, required = VALID[task_type]
    broken = {k: v for k, v in params.items() if k != required}
    with pytest.raises(ScaleInvalidRequest) as info:
        c.create_task(task_type, **broken)
    assert required in info.value.message
    r = http.post(f"/v1/task/{task_type.value}", json=broken, auth=auth(org.test_key))
    body = scale_error(r, 400, required)
    assert r.json().get("field", required).startswith(required), body
    assert c.tasks().total == 0


def test_categorization_response(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    params, _ = VALID[TaskType.Categorization]
    task = c.create_task(TaskType.Categorization, **params)
    assert task.response["category"] in ("positive", "negative")


def test_comparison_and_textcollection_responses(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    comparison = c.create_task(TaskType.Comparison, **VALID[TaskType.Comparison][0])
    assert comparison.response["choice"] in ("A", "B", "tie")
    collected = c.create_task(TaskType.TextCollection, **VALID[TaskType.TextCollection][0])
    answers = collected.response["annotations"]
    assert isinstance(answers["summary"], str)
    assert set(answers) >= {"summary", "tone"}


def test_image_annotation_response_shape(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "boxes")
    task = image_task(
        c,
        project="boxes",
        geometries={
            "box": {"objects_to_annotate": ["car", "truck"], "min_width": 5, "min_height": 5}
        },
        annotation_attributes=ATTRIBUTES,
    )
    annotations = c.get_task(task.id).response["annotations"]
    assert annotations, "the synthetic response draws at least one box"
    uuids = set()
    for a in annotations:
        assert a["type"] == "box"
        assert a["label"] in ("car", "truck")
        for key in ("left", "top", "width", "height"):
            assert isinstance(a[key], (int, float)), key
        assert a["width"] >= 5 and a["height"] >= 5
        assert a["attributes"]["occluded"] in ("yes", "no")
        uuids.add(a["uuid"])
    assert len(uuids) == len(annotations)


def test_legacy_annotation_type(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    task = c.create_task(
        TaskType.Annotation, attachment=IMAGE, objects_to_annotate=["car"], with_labels=True
    )
    assert task.type == "annotation"
    assert task.params["objects_to_annotate"] == ["car"]
    assert all(a["type"] == "box" for a in task.response["annotations"])


@pytest.mark.parametrize(
    "task_type",
    [
        TaskType.LidarSegmentation,
        TaskType.SensorFusion,
        TaskType.VideoCuboidAnnotation,
        TaskType.Chat,
    ],
    ids=lambda t: t.value,
)
def test_unsupported_types_are_not_enabled(
    server: LiveServer, org: Org, task_type: TaskType
) -> None:
    c = client(server, org.test_key)
    with pytest.raises(ScaleNotEnabled) as info:
        c.create_task(task_type, attachment=IMAGE)
    assert task_type.value in info.value.message
    with pytest.raises(ScaleNotEnabled):
        c.create_project(f"p-{task_type.value}", task_type)


def test_invalid_type_params_name_the_field(http: httpx.Client, org: Org) -> None:
    key = auth(org.test_key)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("imageannotation", {"attachment": IMAGE}, "geometries"),
        (
            "imageannotation",
            {"attachment": IMAGE, "geometries": {"box": {"objects_to_annotate": "car"}}},
            "geometries.box.objects_to_annotate",
        ),
        ("imageannotation", {"attachment": IMAGE, "geometries": {"blob": {}}}, "geometries"),
        (
            "imageannotation",
            {"attachment": 42, "geometries": {"box": {"objects_to_annotate": ["c"]}}},
            "attachment",
        ),
        ("categorization", {"attachment": "x", "attachment_type": "text"}, "categories"),
        (
            "categorization",
            {"attachment": "x", "attachment_type": "text", "categories": ["a", "a"]},
            "categories",
        ),
        ("comparison", {"attachments": ["only one"]}, "attachments"),
        ("textcollection", {"attachments": [{"type": "text", "content": "x"}]}, "fields"),
        ("namedentityrecognition", {"text": "abc"}, "labels"),
    ]
    for type_name, body, field in cases:
        r = http.post(f"/v1/task/{type_name}", json=body, auth=key)
        scale_error(r, 400, field.split(".")[0])
        assert r.json().get("field", field).startswith(field.split(".")[0]), (type_name, r.json())
    assert http.get("/v1/tasks", params={"limit": 1}, auth=key).json()["total"] == 0


def test_evaluation_and_training_tasks(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    image_project(c, "gold", geometries={"box": {"objects_to_annotate": ["car"]}})
    expected = {
        "annotations": [
            {"type": "box", "label": "car", "left": 1, "top": 2, "width": 30, "height": 40}
        ]
    }
    evaluation = c.create_evaluation_task(
        TaskType.ImageAnnotation, project="gold", attachment=IMAGE, expected_response=expected
    )
    assert evaluation.id
    assert evaluation.expected_response["annotations"][0]["label"] == "car"
    training = c.create_training_task(
        TaskType.ImageAnnotation, project="gold", attachment=IMAGE, expected_response=expected
    )
    assert training.id and training.id != evaluation.id
    # gold tasks are not customer tasks
    assert c.tasks(project="gold").total == 0
    with pytest.raises(ScaleInvalidRequest) as info:
        c.create_evaluation_task(TaskType.ImageAnnotation, project="gold", attachment=IMAGE)
    assert "expected_response" in info.value.message
    bad = {
        "annotations": [
            {"type": "box", "label": "plane", "left": 1, "top": 2, "width": 3, "height": 4}
        ]
    }
    with pytest.raises(ScaleInvalidRequest) as info:
        c.create_training_task(
            TaskType.ImageAnnotation, project="gold", attachment=IMAGE, expected_response=bad
        )
    assert "expected_response" in info.value.message
    with pytest.raises(ScaleResourceNotFound):
        c.create_evaluation_task(
            TaskType.ImageAnnotation, project="nope", attachment=IMAGE, expected_response=expected
        )
    with pytest.raises(ScaleNotEnabled):
        c.create_evaluation_task(TaskType.LidarSegmentation, project="gold", expected_response={})
