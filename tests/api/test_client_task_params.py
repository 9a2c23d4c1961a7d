"""A task's own params win over its project's (the project's are defaults), for every type,
and a worker's answer is checked against the task's effective params (defect 12 of issue 7).

Tasks are created with the real ``scaleapi`` client under a live key and labeled through the
worker API, as a labeler's browser would.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import scaleapi
from scaleapi.tasks import TaskType

from steelyard.accounts import security
from steelyard.db.engine import Database
from tests.api.helpers import IMAGE, PASSWORD, client, login, make_worker, name
from tests.conftest import LiveServer, Org

PROJECT_BOXES = {"box": {"objects_to_annotate": ["car", "truck"], "min_width": 5}}
BOX = {"left": 10, "top": 20, "width": 30, "height": 40}
LINE = {"vertices": [{"x": 1, "y": 2}, {"x": 30, "y": 40}]}
POLYGON = {"vertices": [{"x": 1, "y": 2}, {"x": 30, "y": 40}, {"x": 5, "y": 60}]}
POINT = {"x": 12, "y": 34}


@pytest.fixture
def worker(http: httpx.Client, org: Org, db: Database) -> dict[str, str]:
    # Hashed here, outside the transaction that stores the worker.
    hashed = security.hash_password(PASSWORD)
    return login(http, make_worker(db, org.org_id, password_hash=hashed))


def _lease(http: httpx.Client, worker: dict[str, str], project: str) -> dict[str, Any]:
    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _submit(
    http: httpx.Client, worker: dict[str, str], lease: dict[str, Any], response: dict[str, Any]
) -> httpx.Response:
    return http.post(
        f"/api/work/{lease['assignment_id']}/submit", json={"response": response}, headers=worker
    )


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text)
    assert r.json()["error"]["field"] == field, r.json()


def _project(c: scaleapi.ScaleClient, task_type: TaskType, **params: Any) -> str:
    project = name("proj")
    c.create_project(project, task_type, params=params)
    return project


# -- legacy image types: the task's objects_to_annotate beat the project's geometries -------


LEGACY = [
    (TaskType.Annotation, "box", BOX),
    (TaskType.PolygonAnnotation, "polygon", POLYGON),
    (TaskType.LineAnnotation, "line", LINE),
    (TaskType.PointAnnotation, "point", POINT),
]


@pytest.mark.parametrize(
    ("task_type", "kind", "shape"), LEGACY, ids=[t.value for t, _, _ in LEGACY]
)
def test_legacy_objects_to_annotate_win_over_project_geometries(
    server: LiveServer,
    org: Org,
    http: httpx.Client,
    worker: dict[str, str],
    task_type: TaskType,
    kind: str,
    shape: dict[str, Any],
) -> None:
    c = client(server, org.live_key)
    project = _project(
        c,
        TaskType.ImageAnnotation,
        geometries={kind: {"objects_to_annotate": ["car", "truck"]}},
    )
    task = c.create_task(task_type, project=project, attachment=IMAGE, objects_to_annotate=["bus"])
    assert task.params["objects_to_annotate"] == ["bus"]  # echoed as sent
    assert task.params["geometries"] == {kind: {"objects_to_annotate": ["bus"]}}

    lease = _lease(http, worker, project)
    car = {"type": kind, "label": "car", **shape}
    _refused(_submit(http, worker, lease, {"annotations": [car]}), "response.annotations.0.label")
    bus = {**car, "label": "bus"}
    assert _submit(http, worker, lease, {"annotations": [bus]}).status_code == 200
    assert c.get_task(task.id).response["annotations"][0]["label"] == "bus"


def test_legacy_keys_override_the_project_geometry_key_by_key(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    """The project's box options stay defaults: only the keys the task sends replace them."""
    c = client(server, org.live_key)
    project = _project(c, TaskType.ImageAnnotation, geometries=PROJECT_BOXES)
    task = c.create_task(
        TaskType.Annotation, project=project, attachment=IMAGE, objects_to_annotate=["bus"]
    )
    assert task.params["geometries"] == {"box": {"objects_to_annotate": ["bus"], "min_width": 5}}
    lease = _lease(http, worker, project)
    narrow = {"type": "box", "label": "bus", **BOX, "width": 2}  # under the project's min_width
    _refused(
        _submit(http, worker, lease, {"annotations": [narrow]}), "response.annotations.0.width"
    )


def test_legacy_project_defaults_and_task_geometries(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    """A legacy project's top-level keys are defaults too; a task's own geometries beat them."""
    c = client(server, org.live_key)
    project = _project(c, TaskType.Annotation, objects_to_annotate=["car", "truck"], min_width=5)
    default = c.create_task(TaskType.Annotation, project=project, attachment=IMAGE)
    assert default.params["geometries"] == {
        "box": {"objects_to_annotate": ["car", "truck"], "min_width": 5}
    }
    own = c.create_task(
        TaskType.Annotation,
        project=project,
        attachment=IMAGE,
        geometries={"box": {"objects_to_annotate": ["bus"]}},
    )
    assert own.params["geometries"] == {"box": {"objects_to_annotate": ["bus"]}}
    c.cancel_task(default.id)
    lease = _lease(http, worker, project)
    assert lease["task"]["task_id"] == own.id
    car = {"type": "box", "label": "car", **BOX}
    _refused(_submit(http, worker, lease, {"annotations": [car]}), "response.annotations.0.label")


# -- every other type: the worker's answer must fit the task's own list ---------------------


#: type → (project params, the task's own params, an answer from the project's list only,
#: the field that answer is refused on, an answer from the task's list)
CASES: dict[str, tuple[TaskType, dict[str, Any], dict[str, Any], Any, str, Any]] = {
    "imageannotation": (
        TaskType.ImageAnnotation,
        {"geometries": PROJECT_BOXES},
        {"attachment": IMAGE, "geometries": {"box": {"objects_to_annotate": ["bus"]}}},
        {"annotations": [{"type": "box", "label": "car", **BOX}]},
        "response.annotations.0.label",
        {"annotations": [{"type": "box", "label": "bus", **BOX}]},
    ),
    "categorization": (
        TaskType.Categorization,
        {"categories": ["cat", "dog"], "category_ids": {"cat": "c1"}},
        {"attachment": "a bird", "attachment_type": "text", "categories": ["bird", "fish"]},
        {"category": "cat"},
        "response.category",
        {"category": "bird"},
    ),
    "categorization-taxonomies": (
        TaskType.Categorization,
        {"categories": ["cat", "dog"]},
        {
            "attachment": "a bird",
            "attachment_type": "text",
            "taxonomies": {"animal": {"type": "category", "choices": ["bird", "fish"]}},
        },
        {"taxonomies": {"animal": ["cat"]}},
        "response.taxonomies.animal.0",
        {"taxonomies": {"animal": ["fish"]}},
    ),
    "namedentityrecognition": (
        TaskType.NamedEntityRecognition,
        {"labels": ["person", "place"]},
        {"text": "Ada met Charles.", "labels": ["org"]},
        {"annotations": [{"start": 0, "end": 3, "label": "person"}]},
        "response.annotations.0.label",
        {"annotations": [{"start": 0, "end": 3, "label": "org"}]},
    ),
    "comparison": (
        TaskType.Comparison,
        {"choices": ["first", "second", "tie"]},
        {"attachments": ["one", "two"], "choices": ["left", "right"]},
        {"choice": "tie"},
        "response.choice",
        {"choice": "left"},
    ),
    "textcollection": (
        TaskType.TextCollection,
        {
            "fields": [
                {"type": "category", "field_id": "tone", "title": "Tone", "choices": ["calm"]}
            ]
        },
        {
            "attachments": [{"type": "text", "content": "hello"}],
            "fields": [
                {"type": "category", "field_id": "mood", "title": "Mood", "choices": ["happy"]}
            ],
        },
        {"annotations": {"tone": "calm"}},
        "response.annotations.tone",
        {"annotations": {"mood": "happy"}},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_answers_are_checked_against_the_tasks_own_params(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str], case: str
) -> None:
    task_type, defaults, own, foreign, field, fitting = CASES[case]
    c = client(server, org.live_key)
    project = _project(c, task_type, **defaults)
    task = c.create_task(task_type, project=project, **own)
    lease = _lease(http, worker, project)
    assert lease["task"]["task_id"] == task.id
    r = _submit(http, worker, lease, foreign)
    assert r.status_code == 422, (r.status_code, r.text)
    assert r.json()["error"]["field"].startswith(field), r.json()
    assert c.get_task(task.id).status == "pending"
    done = _submit(http, worker, lease, fitting)
    assert done.status_code == 200, done.text
    assert c.get_task(task.id).status == "completed"


@pytest.mark.parametrize("case", list(CASES))
def test_test_mode_answers_fit_the_tasks_own_params(
    server: LiveServer, org: Org, case: str
) -> None:
    """The synthetic response of a test task is drawn from the task's params, not the project's."""
    task_type, defaults, own, _, _, _ = CASES[case]
    c = client(server, org.test_key)
    project = _project(c, task_type, **defaults)
    for _ in range(5):
        task = c.create_task(task_type, project=project, **own)
        assert task.status == "completed"
        assert not set(_strings(task.response)) & PROJECT_ONLY, task.response


#: Labels and choices that only the projects above offer.
PROJECT_ONLY = {"car", "truck", "cat", "dog", "person", "place", "first", "second", "tie", "calm"}


def _strings(value: Any) -> list[str]:
    """Every string value in a JSON document (keys left out)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
