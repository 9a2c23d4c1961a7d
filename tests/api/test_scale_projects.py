"""Scenario 1 (project lifecycle) with the real ``scaleapi`` client, plus names in paths."""

from __future__ import annotations

import httpx
import pytest
import scaleapi
from scaleapi.exceptions import (
    ScaleDuplicateResource,
    ScaleInvalidRequest,
    ScaleNotEnabled,
    ScaleResourceNotFound,
)
from scaleapi.tasks import TaskType

from tests.api.helpers import BOXES, IMAGE, auth, client, image_task, name, scale_error
from tests.conftest import LiveServer, Org


def test_project_lifecycle(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    created = c.create_project("p1", TaskType.ImageAnnotation, params={"instruction": "Box cars"})
    assert created.name == "p1"
    assert created.type == "imageannotation"
    assert created.version == 0

    got = c.get_project("p1")
    assert got.version == 0
    assert got.instruction == "Box cars"
    assert len(got.as_dict()["param_history"]) == 1

    updated = c.update_project("p1", instruction="Box cars and trucks")
    assert updated.version == 1
    assert updated.instruction == "Box cars and trucks"
    again = c.get_project("p1")
    assert again.version == 1
    assert [h["version"] for h in again.as_dict()["param_history"]] == [0, 1]

    assert "p1" in [p.name for p in c.projects()]
    assert "p1" in [p.name for p in c.get_projects()]

    with pytest.raises(ScaleDuplicateResource) as dup:
        c.create_project("p1", TaskType.ImageAnnotation)
    assert "p1" in dup.value.message
    with pytest.raises(ScaleResourceNotFound):
        c.get_project("nope")
    with pytest.raises(ScaleResourceNotFound):
        c.update_project("nope", instruction="x")


def test_set_params_keeps_earlier_params_and_versions(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    c.create_project("geo", TaskType.ImageAnnotation, params={"geometries": BOXES})
    c.update_project("geo", instruction="Now with instructions")
    c.update_project("geo", instruction="Third version")
    project = c.get_project("geo")
    assert project.version == 2
    assert project.params["geometries"] == BOXES
    assert project.instruction == "Third version"


@pytest.mark.parametrize("project_name", ["team a/cars", "50%/off", "a b+c?d#e&f=g", "ünï/cødé"])
def test_names_with_slashes_and_spaces_round_trip(
    server: LiveServer, org: Org, project_name: str
) -> None:
    c = client(server, org.test_key)
    c.create_project(project_name, TaskType.ImageAnnotation, params={"instruction": "one"})
    assert c.get_project(project_name).name == project_name
    assert c.update_project(project_name, instruction="two").version == 1
    assert c.get_project(project_name).instruction == "two"
    # the name also works as a filter value and inside task bodies
    task = image_task(c, project=project_name)
    assert task.project == project_name
    assert [t.id for t in c.get_tasks(project_name=project_name)] == [task.id]


def test_project_defaults_merge_under_task_params(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    c.create_project(
        "defaults",
        TaskType.ImageAnnotation,
        params={"instruction": "Project says", "geometries": BOXES},
    )
    # The task omits geometries (taken from the project) and appends the project instruction.
    task = c.create_task(
        TaskType.ImageAnnotation, project="defaults", attachment=IMAGE, instruction="Task says"
    )
    assert task.params["geometries"] == BOXES
    assert task.instruction.index("Task says") < task.instruction.index("Project says")
    # Task-level params win over the project's.
    points = {"point": {"objects_to_annotate": ["wheel"]}}
    task2 = c.create_task(
        TaskType.ImageAnnotation, project="defaults", attachment=IMAGE, geometries=points
    )
    assert task2.params["geometries"] == points


def test_task_type_must_match_project(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    c.create_project("cats", TaskType.Categorization)
    with pytest.raises(ScaleInvalidRequest) as info:
        image_task(c, project="cats")
    assert "project" in info.value.message.lower()


def test_unsupported_project_type_is_not_enabled(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    with pytest.raises(ScaleNotEnabled):
        c.create_project(name(), TaskType.LidarSegmentation)
    assert c.projects() == []


def test_task_template(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    fields = [{"type": "text", "field_id": "summary", "title": "Summary"}]
    c.create_project("tc", TaskType.TextCollection, params={"fields": fields})
    template = c.get_project("tc").get_template()
    assert template.id
    assert template.version == 0
    assert isinstance(template.template_variables, dict)
    c.create_project("img", TaskType.ImageAnnotation)
    with pytest.raises(ScaleInvalidRequest):
        c.get_project_template("img")
    with pytest.raises(ScaleResourceNotFound):
        c.get_project_template("missing")


def test_raw_wire_shapes(http: httpx.Client, org: Org) -> None:
    key = auth(org.test_key)
    r = http.post(
        "/v1/projects",
        json={
            "type": "imageannotation",
            "name": "raw",
            "params": None,
            "rapid": False,
            "studio": False,
            "datasetId": None,
        },
        auth=key,
    )
    assert r.status_code == 200, r.text  # never 201: the client treats anything else as failure
    doc = r.json()
    assert {"name", "type", "param_history", "created_at", "id"} <= set(doc)
    assert doc["param_history"][0]["version"] == 0
    listed = http.get("/v1/projects", auth=key)
    assert listed.status_code == 200
    assert isinstance(listed.json(), list)  # a bare array, not an envelope
    scale_error(
        http.post("/v1/projects", json={"type": "imageannotation", "name": "raw"}, auth=key),
        409,
        "raw",
    )
    scale_error(http.get("/v1/projects/nope", auth=key), 404, "nope")
    scale_error(http.post("/v1/projects", json={"type": "imageannotation"}, auth=key), 400, "name")
    scale_error(http.post("/v1/projects", json={"name": "x"}, auth=key), 400, "type")
    scale_error(
        http.post(
            "/v1/projects", json={"name": "x", "type": "imageannotation", "params": [1]}, auth=key
        ),
        400,
        "params",
    )
    scale_error(
        http.post("/v1/projects/raw/setParams", json=["not", "an", "object"], auth=key), 400, "body"
    )


def test_set_params_with_encoded_slash_via_raw_http(http: httpx.Client, org: Org) -> None:
    key = auth(org.test_key)
    r = http.post("/v1/projects", json={"type": "imageannotation", "name": "x/y z"}, auth=key)
    assert r.status_code == 200, r.text
    r = http.post("/v1/projects/x%2Fy%20z/setParams", json={"instruction": "hi"}, auth=key)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    # A literal (unencoded) slash is a different path: no project "x" has a "y z" sub-resource.
    assert http.get("/v1/projects/x/y z", auth=key).status_code == 404
    assert http.get("/v1/projects/x%2fy%20z", auth=key).json()["name"] == "x/y z"


def test_test_and_live_projects_are_separate(server: LiveServer, org: Org) -> None:
    test = client(server, org.test_key)
    live = client(server, org.live_key)
    test.create_project("shared-name", TaskType.ImageAnnotation, params={"instruction": "test"})
    with pytest.raises(ScaleResourceNotFound):
        live.get_project("shared-name")
    assert live.projects() == []
    # the same name is free in the other environment
    live.create_project("shared-name", TaskType.ImageAnnotation, params={"instruction": "live"})
    assert live.get_project("shared-name").instruction == "live"
    assert test.get_project("shared-name").instruction == "test"


def test_other_organizations_projects_are_invisible(
    server: LiveServer, org: Org, other_org: Org
) -> None:
    mine = client(server, org.live_key)
    mine.create_project("private", TaskType.ImageAnnotation)
    other = client(server, other_org.live_key)
    with pytest.raises(ScaleResourceNotFound):
        other.get_project("private")
    with pytest.raises(ScaleResourceNotFound):
        other.update_project("private", instruction="hijack")
    assert other.projects() == []
    with pytest.raises(ScaleResourceNotFound):
        image_task(other, project="private")
    # the other organization may use the same name for its own project
    other.create_project("private", TaskType.ImageAnnotation)
    assert mine.get_project("private").version == 0


def test_base_url_with_a_trailing_slash_works(server: LiveServer, org: Org) -> None:
    c = scaleapi.ScaleClient(org.test_key, api_instance_url=server.v1 + "/")
    c.create_project("team a/cars", TaskType.ImageAnnotation)
    assert c.get_project("team a/cars").name == "team a/cars"
    assert [p.name for p in c.projects()] == ["team a/cars"]
