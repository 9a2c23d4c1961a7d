"""Tasks with the real client: create/read, scenario 4 (cancel), errors, auth and isolation."""

from __future__ import annotations

import httpx
import pytest
import scaleapi
from scaleapi.exceptions import (
    ScaleException,
    ScaleInvalidRequest,
    ScaleNotEnabled,
    ScaleResourceNotFound,
    ScaleUnauthorized,
)
from scaleapi.tasks import TaskStatus, TaskType

from tests.api.helpers import BOXES, IMAGE, auth, client, image_project, image_task, scale_error
from tests.conftest import LiveServer, Org


def test_create_and_get_test_task(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    task = image_task(c, project="p1", attachment_type="image", instruction="Box every car")
    doc = task.as_dict()
    assert doc["type"] == "imageannotation"
    assert doc["status"] == "completed"  # test keys complete at once
    assert doc["project"] == "p1"
    assert doc["is_test"] is True
    assert doc["params"]["attachment"] == IMAGE
    assert doc["params"]["attachment_type"] == "image"
    assert doc["params"]["geometries"] == BOXES
    assert doc["metadata"] == {}
    assert doc["tags"] == []
    assert "unique_id" not in doc
    assert doc["instruction"] == "Box every car"
    assert doc["created_at"].endswith("Z") and doc["completed_at"].endswith("Z")
    assert isinstance(doc["response"]["annotations"], list)
    fetched = c.get_task(task.id)
    assert fetched.as_dict() == doc
    task.refresh()
    assert task.status == "completed"


def test_live_task_stays_pending(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    task = image_task(c)  # no project: Scale allows it
    assert task.status == "pending"
    assert task.is_test is False
    doc = c.get_task(task.id).as_dict()
    assert "response" not in doc
    assert "completed_at" not in doc
    assert "project" not in doc


def test_cancel_semantics(server: LiveServer, org: Org) -> None:
    """Scenario 4: only pending tasks cancel; a second cancel is a 400, never a 409."""
    c = client(server, org.live_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1")
    t1 = image_task(c, project="p1", batch="b1")
    t2 = image_task(c, project="p1", batch="b1")
    canceled = c.cancel_task(t1.id)
    assert canceled.status == "canceled"
    with pytest.raises(
        ScaleInvalidRequest
    ) as info:  # not ScaleDuplicateResource, not AttributeError
        c.cancel_task(t1.id)
    assert t1.id in info.value.message
    with pytest.raises(ScaleInvalidRequest):
        c.cancel_task(t1.id, clear_unique_id=True)
    assert [t.task_id for t in c.tasks(status="canceled").docs] == [t1.id]
    assert [t.id for t in c.get_tasks(project_name="p1", status=TaskStatus.Pending)] == [t2.id]
    status = c.batch_status("b1")
    assert (status["canceled"], status["pending"]) == (1, 1)
    t2.cancel()
    assert c.get_task(t2.id).status == "canceled"


def test_cancel_completed_task_is_invalid(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    task = image_task(c)
    with pytest.raises(ScaleInvalidRequest):
        c.cancel_task(task.id)
    assert c.get_task(task.id).status == "completed"


def test_unknown_things(server: LiveServer, org: Org) -> None:
    c = client(server, org.test_key)
    with pytest.raises(ScaleResourceNotFound):
        c.get_task("000000000000000000000000")
    with pytest.raises(ScaleResourceNotFound):
        c.cancel_task("nope")
    with pytest.raises(ScaleResourceNotFound):
        c.audit_task("nope", True)
    with pytest.raises(ScaleResourceNotFound):
        c.set_task_metadata("nope", {})
    with pytest.raises(ScaleResourceNotFound):
        c.set_task_tags("nope", ["a"])
    with pytest.raises(ScaleResourceNotFound):
        c.clear_task_unique_id("nope")
    with pytest.raises(ScaleResourceNotFound):
        c.update_task_unique_id("nope", "u")
    with pytest.raises(ScaleResourceNotFound):
        image_task(c, project="no-such-project")
    with pytest.raises(ScaleResourceNotFound):
        c.tasks(project="no-such-project")
    with pytest.raises(ScaleNotEnabled):
        c.create_task(TaskType.LidarSegmentation, attachment=IMAGE)
    with pytest.raises(ScaleNotEnabled):
        c.create_task(TaskType.VideoCuboidAnnotation, attachment=IMAGE)


@pytest.mark.parametrize("key", ["test_0000000000000000000000000000", "live_nope", "garbage"])
def test_wrong_key_is_unauthorized(server: LiveServer, key: str) -> None:
    c = scaleapi.ScaleClient(key, api_instance_url=server.v1)
    with pytest.raises(ScaleUnauthorized):
        c.batches()
    with pytest.raises(ScaleUnauthorized):
        image_task(c)
    with pytest.raises(ScaleUnauthorized):
        c.projects()


def test_missing_or_malformed_auth_is_401(http: httpx.Client, org: Org) -> None:
    scale_error(http.get("/v1/tasks"), 401)
    scale_error(http.get("/v1/tasks", headers={"Authorization": "Basic !!!notbase64"}), 401)
    scale_error(http.get("/v1/tasks", headers={"Authorization": "Basic Og=="}), 401)  # ":"
    scale_error(http.get("/v1/tasks", headers={"Authorization": "Digest abc"}), 401)
    scale_error(http.get("/v1/projects", auth=auth("live_" + "0" * 48)), 401)
    # the key also works as a Bearer token (the v2 client's scheme)
    r = http.get("/v1/projects", headers={"Authorization": f"Bearer {org.test_key}"})
    assert r.status_code == 200 and r.json() == []


def test_empty_key_is_refused_by_the_client(server: LiveServer) -> None:
    with pytest.raises(ScaleException):
        scaleapi.ScaleClient("", api_instance_url=server.v1)


def test_success_is_always_200_and_json(http: httpx.Client, org: Org) -> None:
    """The client accepts only 200; walk every v1 endpoint with raw HTTP."""
    key = auth(org.live_key)
    json_ct = {"Content-Type": "application/json"}

    def ok(r: httpx.Response) -> object:
        assert r.status_code == 200, (r.request.method, r.request.url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json")
        return r.json()

    ok(http.post("/v1/projects", json={"type": "imageannotation", "name": "p1"}, auth=key))
    ok(http.get("/v1/projects", auth=key))
    ok(http.get("/v1/projects/p1", auth=key))
    ok(http.post("/v1/projects/p1/setParams", json={"instruction": "x"}, auth=key))
    ok(http.post("/v1/batches", json={"project": "p1", "name": "b1", "callback": ""}, auth=key))
    ok(http.get("/v1/batches", auth=key))
    ok(http.get("/v1/batches/b1", auth=key))
    ok(http.get("/v1/batches/b1/status", auth=key))
    ok(http.post("/v1/batches/b1/setMetadata", json={"a": 1}, auth=key))
    body = {
        "project": "p1",
        "batch": "b1",
        "attachment": IMAGE,
        "geometries": BOXES,
        "unique_id": "u1",
    }
    task = ok(http.post("/v1/task/imageannotation", json=body, auth=key))
    assert isinstance(task, dict)
    tid = task["task_id"]
    ok(http.get(f"/v1/task/{tid}", auth=key))
    ok(http.get("/v1/tasks", auth=key))
    ok(http.post(f"/v1/task/{tid}/setMetadata", json={"m": 1}, auth=key))
    ok(http.post(f"/v1/task/{tid}/tags", json=["a", "b"], auth=key))
    ok(http.put(f"/v1/task/{tid}/tags", json=["c"], auth=key))
    ok(http.request("DELETE", f"/v1/task/{tid}/tags", json=["a"], auth=key))
    ok(http.post(f"/v1/task/{tid}/unique_id", json={"unique_id": "u2"}, auth=key))
    # body-less calls with Content-Type: application/json, exactly as the client sends them
    ok(http.request("DELETE", f"/v1/task/{tid}/unique_id", headers=json_ct, auth=key))
    ok(http.post(f"/v1/task/{tid}/cancel?clear_unique_id=true", headers=json_ct, auth=key))
    ok(http.post("/v1/batches/b1/finalize", headers=json_ct, auth=key))
    ok(http.post("/v1/batches/b1/finalize", headers=json_ct, content=b"", auth=key))
    ok(http.get("/v1/teams", auth=key))


def test_error_bodies_have_scale_shape(http: httpx.Client, org: Org) -> None:
    key = auth(org.test_key)
    scale_error(http.get("/v1/task/nope", auth=key), 404, "nope")
    scale_error(http.get("/v1/no/such/route", auth=key), 404)
    scale_error(
        http.post("/v1/task/lidarsegmentation", json={"attachment": IMAGE}, auth=key),
        402,
        "lidarsegmentation",
    )
    scale_error(
        http.post("/v1/task/imageannotation", json={"geometries": BOXES}, auth=key),
        400,
        "attachment",
    )
    scale_error(http.get("/v1/tasks", params={"limit": 0}, auth=key), 400, "limit")
    scale_error(http.get("/v1/tasks", params={"limit": 101}, auth=key), 400, "limit")
    scale_error(http.get("/v1/tasks", params={"limit": "ten"}, auth=key), 400, "limit")
    scale_error(http.get("/v1/tasks", params={"next_token": "!!"}, auth=key), 400, "next_token")
    scale_error(http.patch("/v1/projects", json={}, auth=key), 405)


def test_409_only_where_the_client_can_take_it(http: httpx.Client, org: Org) -> None:
    """On body-less task paths the client evaluates ``body.get`` on a 409 and crashes."""
    key = auth(org.live_key)
    body = {"attachment": IMAGE, "geometries": BOXES, "unique_id": "dup"}
    first = http.post("/v1/task/imageannotation", json=body, auth=key).json()
    scale_error(http.post("/v1/task/imageannotation", json=body, auth=key), 409, first["task_id"])
    other = http.post(
        "/v1/task/imageannotation", json={**body, "unique_id": "other"}, auth=key
    ).json()
    scale_error(
        http.post(f"/v1/task/{other['task_id']}/unique_id", json={"unique_id": "dup"}, auth=key),
        409,
        first["task_id"],
    )
    tid = first["task_id"]
    assert http.post(f"/v1/task/{tid}/cancel", auth=key).status_code == 200
    # every further conflict on a task path is a 400
    scale_error(http.post(f"/v1/task/{tid}/cancel", auth=key), 400, "canceled")
    scale_error(http.post(f"/v1/task/{tid}/cancel?clear_unique_id=true", auth=key), 400)
    scale_error(http.post(f"/v1/task/{tid}/audit", json={"accepted": True}, auth=key), 400)


def test_tasks_of_the_other_environment_are_invisible(server: LiveServer, org: Org) -> None:
    live = client(server, org.live_key)
    test = client(server, org.test_key)
    live_task = image_task(live, unique_id="same")
    test_task = image_task(test, unique_id="same")  # unique_id namespaces are separate too
    for c, foreign in ((test, live_task.id), (live, test_task.id)):
        with pytest.raises(ScaleResourceNotFound):
            c.get_task(foreign)
        with pytest.raises(ScaleResourceNotFound):
            c.cancel_task(foreign)
        with pytest.raises(ScaleResourceNotFound):
            c.set_task_metadata(foreign, {"x": 1})
        with pytest.raises(ScaleResourceNotFound):
            c.add_task_tags(foreign, ["x"])
    assert [t.task_id for t in test.tasks().docs] == [test_task.id]
    assert [t.task_id for t in live.tasks().docs] == [live_task.id]
    assert test.tasks(unique_id="same").docs[0].task_id == test_task.id
    assert live.tasks(unique_id="same").docs[0].task_id == live_task.id
    assert live.get_task(live_task.id).status == "pending"


def test_tasks_of_other_organizations_are_invisible(
    server: LiveServer, org: Org, other_org: Org
) -> None:
    mine = client(server, org.live_key)
    image_project(mine, "p1")
    mine.create_batch("p1", "b1")
    task = image_task(mine, project="p1", batch="b1", unique_id="u1", tags=["t"])
    other = client(server, other_org.live_key)
    for call in (
        lambda: other.get_task(task.id),
        lambda: other.cancel_task(task.id),
        lambda: other.audit_task(task.id, True),
        lambda: other.update_task_unique_id(task.id, "mine-now"),
        lambda: other.clear_task_unique_id(task.id),
        lambda: other.set_task_metadata(task.id, {"x": 1}),
        lambda: other.set_task_tags(task.id, []),
        lambda: other.add_task_tags(task.id, ["x"]),
        lambda: other.delete_task_tags(task.id, ["t"]),
        lambda: other.tasks(project="p1"),
        lambda: other.tasks(batch="b1"),
        lambda: image_task(other, batch="b1"),
    ):
        with pytest.raises(ScaleResourceNotFound):
            call()
    assert other.tasks().total == 0
    assert other.tasks(unique_id="u1").docs == []
    assert other.tasks(tags=["t"]).docs == []
    image_task(other, unique_id="u1")  # unique_id is per organization
    after = mine.get_task(task.id)
    assert (after.status, after.unique_id, after.tags, after.metadata) == (
        "pending",
        "u1",
        ["t"],
        {},
    )
