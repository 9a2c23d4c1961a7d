"""Scenario 10, v2 half: the official client's v2 API (Bearer auth, pydantic-validated shapes)."""

from __future__ import annotations

import httpx
import pytest
import scaleapi
from scaleapi.api_client.v2 import (
    BatchOperationRequest,
    BatchStatus,
    CreateBatchRequest,
    SetBatchMetadataRequest,
    SetTaskMetadataRequest,
    TaskStatus,
)
from scaleapi.api_client.v2.exceptions import (
    BadRequestException,
    NotFoundException,
    UnauthorizedException,
)

from tests.api.helpers import image_project, image_task, name, scale_error
from tests.conftest import LiveServer, Org


def v2_client(server: LiveServer, key: str) -> scaleapi.ScaleClient:
    c = scaleapi.ScaleClient(key, source="pytest", api_instance_url=server.v1)
    c.v2.api_client.configuration.host = server.url
    return c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_v2_tasks_match_v1(server: LiveServer, org: Org, http: httpx.Client) -> None:
    c = v2_client(server, org.test_key)
    project = image_project(c)
    batch = name("b")
    c.create_batch(project, batch)
    ids = [image_task(c, batch=batch).id for _ in range(3)]
    image_task(c, project=project)  # outside the batch

    v1_ids = [t.id for t in c.get_tasks(project_name=project)]
    v2_tasks = list(c.v2_get_tasks(project_name=project))
    assert [t.task_id for t in v2_tasks] == v1_ids
    assert len(v1_ids) == 4
    assert all(t.status == TaskStatus.COMPLETED for t in v2_tasks)  # test key: done at once
    assert [t.task_id for t in c.v2_get_tasks(batch_name=batch, limit=2)] == ids

    page = c.v2.get_tasks(project_name=project, limit=3)
    assert len(page.tasks) == 3 and page.next_token
    rest = c.v2.get_tasks(project_name=project, limit=3, next_token=page.next_token)
    assert len(rest.tasks) == 1 and rest.next_token is None
    assert c.v2.get_tasks(project_name=project, status=TaskStatus.PENDING).tasks == []

    one = c.v2.get_task(task_id=ids[0], expand=["project", "batch"])
    assert one.project.actual_instance.name == project
    assert one.batch.actual_instance.name == batch
    assert one.threads == [] and one.completed_at is not None
    plain = c.v2.get_task(task_id=ids[0])
    assert plain.project.actual_instance == one.project.actual_instance.id

    raw = http.get("/v2/task", params={"task_id": ids[0]}, headers=bearer(org.test_key)).json()
    assert raw["response"] == c.get_task(ids[0]).response  # the v1 response rides along


def test_v2_set_task_metadata_deep_merges(server: LiveServer, org: Org) -> None:
    c = v2_client(server, org.test_key)
    task = image_task(c, project=image_project(c), metadata={"a": {"x": 1, "y": 2}, "k": "v"})
    merged = c.v2.set_task_metadata(
        SetTaskMetadataRequest(task_id=task.id, metadata={"a": {"y": 3, "z": 4}}, merge=True)
    )
    assert merged.metadata == {"a": {"x": 1, "y": 3, "z": 4}, "k": "v"}
    assert c.get_task(task.id).metadata == merged.metadata  # v1 agrees
    replaced = c.v2.set_task_metadata(
        SetTaskMetadataRequest(task_id=task.id, metadata={"only": True})
    )
    assert replaced.metadata == {"only": True}


def test_v2_batches_create_get_list_metadata(server: LiveServer, org: Org) -> None:
    c = v2_client(server, org.test_key)
    project = image_project(c)
    first = name("b")
    created = c.v2.create_batch(
        CreateBatchRequest(name=first, project_name=project, staging_batch=True, metadata={"m": 1})
    )
    assert created.status == BatchStatus.STAGING and created.metadata == {"m": 1}
    got = c.v2.get_batch(batch_name=first)
    assert got.id == created.id and got.status in set(BatchStatus)
    assert c.v2.get_batch(batch_id=created.id, expand=["project"]).project.actual_instance.name == (
        project
    )
    finalized = c.v2.finalize_batch(BatchOperationRequest(batch_name=first))
    assert finalized.status == BatchStatus.IN_PROGRESS

    project_id = c.v2.get_project(project_name=project).id
    second = c.v2.create_batch(CreateBatchRequest(name=name("b"), project_id=project_id))
    assert second.status == BatchStatus.IN_PROGRESS
    page = c.v2.get_batches(project_name=project, limit=1)
    assert [b.id for b in page.batches] == [created.id] and page.next_token
    rest = c.v2.get_batches(project_name=project, limit=1, next_token=page.next_token)
    assert [b.id for b in rest.batches] == [second.id] and rest.next_token is None
    assert c.v2.get_batches(project_name=project, status=BatchStatus.STAGING).batches == []

    c.v2.set_batch_metadata(
        SetBatchMetadataRequest(batch_id=created.id, metadata={"n": {"a": 1}}, merge=True)
    )
    merged = c.v2.set_batch_metadata(
        SetBatchMetadataRequest(batch_name=first, metadata={"n": {"b": 2}}, merge=True)
    )
    assert merged.metadata == {"m": 1, "n": {"a": 1, "b": 2}}
    assert c.get_batch(first).metadata == merged.metadata  # v1 agrees


def test_v2_pause_resume_cancel(server: LiveServer, org: Org) -> None:
    c = v2_client(server, org.live_key)  # live key: tasks stay pending
    project = image_project(c)
    batch = name("b")
    c.v2.create_batch(CreateBatchRequest(name=batch, project_name=project))
    ids = [image_task(c, batch=batch).id for _ in range(2)]

    paused = c.v2.pause_batch(BatchOperationRequest(batch_name=batch))
    assert paused.batch is not None and paused.batch.status == BatchStatus.PAUSED
    assert paused.message
    with pytest.raises(BadRequestException):
        c.v2.pause_batch(BatchOperationRequest(batch_name=batch))  # only from in_progress
    assert {c.get_task(i).status for i in ids} == {"pending"}

    resumed = c.v2.resume_batch(BatchOperationRequest(batch_name=batch))
    assert resumed.batch is not None and resumed.batch.status == BatchStatus.IN_PROGRESS
    with pytest.raises(BadRequestException):
        c.v2.resume_batch(BatchOperationRequest(batch_name=batch))

    cancelled = c.v2.cancel_batch(BatchOperationRequest(batch_name=batch))
    assert cancelled.batch is not None and cancelled.batch.status == BatchStatus.CANCELLED
    assert "2" in (cancelled.message or "")
    assert c.v2.get_batch(batch_name=batch).status == BatchStatus.CANCELLED
    assert {c.get_task(i).status for i in ids} == {"canceled"}  # v1 sees them canceled
    v2_statuses = {t.status for t in c.v2_get_tasks(batch_name=batch)}
    assert v2_statuses == {TaskStatus.CANCELED}
    with pytest.raises(BadRequestException):
        c.v2.cancel_batch(BatchOperationRequest(batch_name=batch))
    page = c.v2.get_batches(project_name=project, status=BatchStatus.CANCELLED)
    assert [b.name for b in page.batches] == [batch]


def test_v2_projects(server: LiveServer, org: Org) -> None:
    c = v2_client(server, org.test_key)
    project = image_project(c)
    listed = {p.name: p for p in c.v2.get_projects().projects}
    assert project in listed
    one = c.v2.get_project(project_name=project)
    assert one.id == listed[project].id and one.types == ["imageannotation"]
    assert c.v2.get_project(project_id=one.id).name == project


def test_v2_errors(server: LiveServer, org: Org, http: httpx.Client) -> None:
    c = v2_client(server, org.test_key)
    with pytest.raises(NotFoundException):
        c.v2.get_task(task_id="nope")
    with pytest.raises(NotFoundException):
        c.v2.get_batch(batch_name="nope")
    with pytest.raises(NotFoundException):
        c.v2.get_project(project_name="nope")
    with pytest.raises(UnauthorizedException):
        v2_client(server, "test_wrong").v2.get_projects()

    h = bearer(org.test_key)
    scale_error(http.get("/v2/task", headers=h), 400, "task_id")
    scale_error(http.get("/v2/task", params={"task_id": "nope"}, headers=h), 404, "nope")
    scale_error(http.get("/v2/batch", headers=h), 400, "batch_id")
    scale_error(http.get("/v2/tasks", params={"expand": "owner"}, headers=h), 400, "expand")
    scale_error(http.get("/v2/tasks", params={"status": "done"}, headers=h), 400, "status")
    scale_error(http.get("/v2/tasks", params={"limit": 101}, headers=h), 400, "limit")
    scale_error(http.get("/v2/tasks", params={"next_token": "zz"}, headers=h), 400, "next_token")
    scale_error(http.get("/v2/batches", params={"status": "done"}, headers=h), 400, "status")
    scale_error(http.post("/v2/task/metadata", json={"task_id": "x"}, headers=h), 400, "metadata")
    scale_error(http.post("/v2/batch", json={"name": "b"}, headers=h), 400, "project_id")
    scale_error(http.get("/v2/projects"), 401)
