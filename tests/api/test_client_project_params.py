"""Project params are checked at ``create_project`` and ``update_project`` (defect 12 of issue 7):
a bad template is refused naming the field under ``params``, and nothing is stored, instead of
being accepted and then breaking every task created in the project."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest, ScaleResourceNotFound
from scaleapi.tasks import TaskType

from tests.api.helpers import BOXES, IMAGE, auth, client, name, scale_error
from tests.conftest import LiveServer, Org

#: type → (bad params, the field the refusal names)
BAD: list[tuple[TaskType, dict[str, Any], str]] = [
    (
        TaskType.ImageAnnotation,
        {"geometries": {"box": {"objects_to_annotate": ["car"], "min_width": "wide"}}},
        "params.geometries.box.min_width",
    ),
    (TaskType.ImageAnnotation, {"geometries": {"box": {}}}, "params.geometries.box"),
    (TaskType.ImageAnnotation, {"attachment": "not a url"}, "params.attachment"),
    (TaskType.Annotation, {"objects_to_annotate": "car"}, "params.objects_to_annotate"),
    (TaskType.PolygonAnnotation, {"max_vertices": 1}, "params.max_vertices"),
    (TaskType.Categorization, {"categories": ["a", "a"]}, "params.categories.1"),
    (TaskType.Categorization, {"category_ids": {"a": "1"}}, "params.category_ids"),
    (TaskType.Comparison, {"choices": ["only"]}, "params.choices"),
    (TaskType.TextCollection, {"fields": [{"type": "text"}]}, "params.fields.0"),
    (
        TaskType.NamedEntityRecognition,
        {"labels": [{"name": "ORG", "children": "COMPANY"}]},
        "params.labels.0.children",
    ),
    (TaskType.ImageAnnotation, {"instruction": ["not", "text"]}, "params.instruction"),
]


@pytest.mark.parametrize(("task_type", "params", "field"), BAD, ids=[b[2] for b in BAD])
def test_create_project_refuses_bad_params_and_stores_nothing(
    server: LiveServer,
    org: Org,
    http: httpx.Client,
    task_type: TaskType,
    params: dict[str, Any],
    field: str,
) -> None:
    c = client(server, org.live_key)
    project = name("proj")
    with pytest.raises(ScaleInvalidRequest) as info:
        c.create_project(project, task_type, params=params)
    assert field in info.value.message
    with pytest.raises(ScaleResourceNotFound):
        c.get_project(project)
    r = http.post(
        "/v1/projects",
        json={"name": project, "type": task_type.value, "params": params},
        auth=auth(org.live_key),
    )
    scale_error(r, 400, field)
    assert r.json()["field"].startswith(field), r.json()
    assert c.projects() == []


@pytest.mark.parametrize(("task_type", "params", "field"), BAD, ids=[b[2] for b in BAD])
def test_update_project_refuses_bad_params_and_keeps_the_version(
    server: LiveServer,
    org: Org,
    task_type: TaskType,
    params: dict[str, Any],
    field: str,
) -> None:
    c = client(server, org.live_key)
    project = name("proj")
    c.create_project(project, task_type, params={"instruction": "Label it"})
    with pytest.raises(ScaleInvalidRequest) as info:
        c.update_project(project, **params)
    assert field in info.value.message
    kept = c.get_project(project)
    assert kept.version == 0
    assert len(kept.as_dict()["param_history"]) == 1


def test_a_refused_update_leaves_task_creation_working(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    project = name("proj")
    c.create_project(project, TaskType.ImageAnnotation, params={"geometries": BOXES})
    with pytest.raises(ScaleInvalidRequest):
        c.update_project(project, geometries={"box": {"objects_to_annotate": []}})
    task = c.create_task(TaskType.ImageAnnotation, project=project, attachment=IMAGE)
    assert task.params["geometries"] == BOXES


#: Partial params a project may hold: defaults for what its tasks leave out.
PARTIAL: list[tuple[TaskType, dict[str, Any], dict[str, Any]]] = [
    (TaskType.ImageAnnotation, {"geometries": BOXES}, {"attachment": IMAGE}),
    (
        TaskType.ImageAnnotation,
        {"annotation_attributes": {"occluded": {"choices": ["yes", "no"]}}},
        {"attachment": IMAGE, "geometries": BOXES},
    ),
    (
        TaskType.Annotation,
        {"min_width": 4, "with_labels": True},
        {
            "attachment": IMAGE,
            "objects_to_annotate": ["car"],
        },
    ),
    (TaskType.Categorization, {"categories": ["yes", "no"]}, {"attachment": "Is it?"}),
    (TaskType.Comparison, {"choices": ["A", "B", "tie"]}, {"attachments": ["one", "two"]}),
    (
        TaskType.TextCollection,
        {"fields": [{"type": "text", "field_id": "summary", "title": "Summary"}]},
        {"attachments": [{"type": "text", "content": "An article"}]},
    ),
    (
        TaskType.NamedEntityRecognition,
        {"labels": [{"name": "ORG", "children": [{"name": "COMPANY"}]}]},
        {"text": "Acme hired Ada."},
    ),
]


@pytest.mark.parametrize(
    ("task_type", "defaults", "own"), PARTIAL, ids=[p[0].value for p in PARTIAL]
)
def test_partial_params_are_defaults_for_tasks(
    server: LiveServer,
    org: Org,
    task_type: TaskType,
    defaults: dict[str, Any],
    own: dict[str, Any],
) -> None:
    c = client(server, org.test_key)
    project = name("proj")
    created = c.create_project(project, task_type, params=defaults)
    assert created.params == {**defaults, "version": 0, "created_at": created.params["created_at"]}
    assert c.update_project(project, instruction="Now with words").version == 1
    task = c.create_task(task_type, project=project, **own)
    assert task.status == "completed"
    for key, value in defaults.items():
        assert task.params[key] == value, key
