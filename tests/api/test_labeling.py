"""The labeling path: a worker signs in, leases the next task, submits; the customer sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from steelyard.db.engine import Database
from steelyard.tasks.models import Task
from steelyard.workflow.models import Assignment
from tests.api.helpers import (
    BOXES,
    PASSWORD,
    auth,
    client,
    image_project,
    image_task,
    login,
    make_worker,
)
from tests.conftest import LiveServer, Org

BOX = {"type": "box", "label": "car", "left": 10, "top": 20, "width": 30, "height": 40}


def native_error(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field"}, err
    if field is not None:
        assert err["field"] is not None and err["field"].startswith(field), err
        if status == 422:  # validation messages start with the field they blame
            assert field.split(".")[0] in err["message"], err
    return dict(err)


@pytest.fixture
def worker(http: httpx.Client, org: Org, db: Database) -> dict[str, str]:
    return login(http, make_worker(db, org.org_id))


def _next(http: httpx.Client, headers: dict[str, str], **params: str) -> httpx.Response:
    return http.post("/api/work/next", params=params, headers=headers)


def test_next_submit_and_the_customer_sees_it(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    c = client(server, org.live_key)
    image_project(c, "p1")
    c.create_batch("p1", "b1")
    task = image_task(c, project="p1", batch="b1")
    r = _next(http, worker)
    assert r.status_code == 200, r.text
    lease = r.json()
    assert set(lease) >= {"assignment_id", "task", "lease_expires_at"}
    assert lease["task"]["task_id"] == task.id
    assert lease["task"]["params"]["geometries"] == BOXES
    expires = datetime.fromisoformat(lease["lease_expires_at"].replace("Z", "+00:00"))
    assert (
        datetime.now(UTC)
        < expires
        < datetime.now(UTC) + timedelta(seconds=server.settings.lease_seconds + 5)
    )

    done = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": [BOX]}},
        headers=worker,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert done.json()["task_id"] == task.id

    seen = c.get_task(task.id)
    assert seen.status == "completed"
    assert seen.response["annotations"][0]["label"] == "car"
    assert seen.response["annotations"][0]["width"] == 30
    assert seen.completed_at
    assert c.get_batch("b1").status == "completed"  # its only task is done
    assert [t.id for t in c.get_tasks(project_name="p1", status=None)] == [task.id]
    assert _next(http, worker).status_code == 204


def test_invalid_response_is_422_naming_the_field(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    c = client(server, org.live_key)
    task = image_task(c)
    lease = _next(http, worker).json()
    url = f"/api/work/{lease['assignment_id']}/submit"
    native_error(
        http.post(
            url, json={"response": {"annotations": [{**BOX, "label": "plane"}]}}, headers=worker
        ),
        422,
        "response.annotations.0.label",
    )
    native_error(
        http.post(
            url, json={"response": {"annotations": [{**BOX, "width": "wide"}]}}, headers=worker
        ),
        422,
        "response.annotations.0.width",
    )
    native_error(http.post(url, json={"response": "nothing"}, headers=worker), 422, "response")
    native_error(http.post(url, json={"answer": {}}, headers=worker), 422, "response")
    native_error(http.post(url, json=[1], headers=worker), 422, "response")
    native_error(
        http.post(url, content=b"{", headers={**worker, "Content-Type": "application/json"}),
        422,
        "body",
    )
    assert c.get_task(task.id).status == "pending"
    # the lease survives a bad submission
    assert http.post(url, json={"response": {"annotations": []}}, headers=worker).status_code == 200
    assert c.get_task(task.id).status == "completed"
    native_error(http.post(url, json={"response": {"annotations": []}}, headers=worker), 409)


def test_nothing_available_is_204(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    r = _next(http, worker)
    assert r.status_code == 204
    assert r.content == b""
    # test-key tasks complete at once and canceled ones are gone
    image_task(client(server, org.test_key))
    live = client(server, org.live_key)
    live.cancel_task(image_task(live).id)
    assert _next(http, worker).status_code == 204


def test_project_filter(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    c = client(server, org.live_key)
    image_project(c, "first")
    image_project(c, "second")
    image_task(c, project="first")
    wanted = image_task(c, project="second")
    r = _next(http, worker, project="second")
    assert r.status_code == 200
    assert r.json()["task"]["task_id"] == wanted.id
    http.post(
        f"/api/work/{r.json()['assignment_id']}/submit",
        json={"response": {"annotations": []}},
        headers=worker,
    )
    assert _next(http, worker, project="second").status_code == 204
    assert _next(http, worker, project="first").json()["task"]["project"] == "first"
    native_error(_next(http, worker, project="missing"), 404, "project")


def test_held_lease_comes_back(
    server: LiveServer, org: Org, http: httpx.Client, db: Database, worker: dict[str, str]
) -> None:
    c = client(server, org.live_key)
    image_project(c, "p1")
    first, second = image_task(c, project="p1"), image_task(c, project="p1")
    lease = _next(http, worker).json()
    again = _next(http, worker).json()
    assert again["assignment_id"] == lease["assignment_id"]
    assert again["task"]["task_id"] == lease["task"]["task_id"] == first.id
    assert _next(http, worker, project="p1").json()["assignment_id"] == lease["assignment_id"]
    # another worker gets the other task, then nothing
    other = login(http, make_worker(db, org.org_id))
    assert _next(http, other).json()["task"]["task_id"] == second.id
    assert _next(http, login(http, make_worker(db, org.org_id))).status_code == 204


def test_expired_lease_goes_to_someone_else(
    server: LiveServer, org: Org, http: httpx.Client, db: Database, worker: dict[str, str]
) -> None:
    c = client(server, org.live_key)
    task = image_task(c)
    lease = _next(http, worker).json()
    past = datetime.now(UTC) - timedelta(seconds=1)
    with db.unit_of_work() as session:
        session.execute(update(Task).where(Task.task_id == task.id).values(lease_expires_at=past))
        session.execute(
            update(Assignment)
            .where(Assignment.id == lease["assignment_id"])
            .values(expires_at=past)
        )
    other = login(http, make_worker(db, org.org_id))
    taken = _next(http, other).json()
    assert taken["task"]["task_id"] == task.id
    late = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": []}},
        headers=worker,
    )
    # The lease was lost, not used: unlike a repeated submit, this one is not "done".
    assert native_error(late, 409)["code"] == "invalid_state"
    ok = http.post(
        f"/api/work/{taken['assignment_id']}/submit",
        json={"response": {"annotations": [BOX]}},
        headers=other,
    )
    assert ok.status_code == 200
    assert len(c.get_task(task.id).response["annotations"]) == 1


@pytest.mark.parametrize("labels_needed", [1, 2])
def test_a_repeated_submit_is_stored_once(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str], labels_needed: int
) -> None:
    """The labeling app resends a submit whose answer it never got (the network cut after the
    server stored it): the repeat stores nothing and says so with its own code, whether the
    task completed (one label) or still waits for others (two)."""
    c = client(server, org.live_key)
    params = {"pipeline": "consensus_task", "consensus_attempts": labels_needed}
    project = image_project(c, **(params if labels_needed > 1 else {}))
    task = image_task(c, project=project)
    lease = _next(http, worker, project=project).json()
    url = f"/api/work/{lease['assignment_id']}/submit"
    first = http.post(url, json={"response": {"annotations": [BOX]}}, headers=worker)
    assert first.status_code == 200, first.text
    for _ in range(2):
        again = http.post(url, json={"response": {"annotations": [BOX]}}, headers=worker)
        err = native_error(again, 409, "assignment_id")
        assert err["code"] == "already_submitted", err
    labels = http.get(f"/api/tasks/{task.id}/labels", auth=auth(org.live_key))
    assert labels.status_code == 200, labels.text
    assert len(labels.json()) == 1


def test_canceled_while_leased(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    c = client(server, org.live_key)
    task = image_task(c)
    lease = _next(http, worker).json()
    c.cancel_task(task.id)
    r = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": []}},
        headers=worker,
    )
    native_error(r, 409)
    assert c.get_task(task.id).status == "canceled"
    assert _next(http, worker).status_code == 204


def test_workers_stay_in_their_organization(
    server: LiveServer,
    org: Org,
    other_org: Org,
    http: httpx.Client,
    db: Database,
    worker: dict[str, str],
) -> None:
    image_task(client(server, org.live_key))
    outsider = login(http, make_worker(db, other_org.org_id))
    assert _next(http, outsider).status_code == 204
    lease = _next(http, worker).json()
    r = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": []}},
        headers=outsider,
    )
    native_error(r, 404, "assignment_id")
    # a colleague cannot submit someone else's assignment either
    colleague = login(http, make_worker(db, org.org_id))
    r = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": []}},
        headers=colleague,
    )
    native_error(r, 404, "assignment_id")
    native_error(_next(http, outsider, project="anything"), 404, "project")


def test_auth_on_the_native_api(
    server: LiveServer, org: Org, http: httpx.Client, db: Database
) -> None:
    email = make_worker(db, org.org_id)
    native_error(
        http.post("/api/auth/login", json={"email": email, "password": "wrong password"}), 401
    )
    native_error(
        http.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}),
        401,
    )
    native_error(http.post("/api/auth/login", json={"email": email}), 422, "password")
    assert (
        http.post(
            "/api/auth/login", json={"email": email.upper(), "password": PASSWORD}
        ).status_code
        == 200
    )
    missing = native_error(http.post("/api/work/next"), 401)
    # The worker API talks about signing in, not about API keys.
    assert "POST /api/auth/login" in missing["message"], missing
    assert "API key" not in missing["message"], missing
    native_error(http.post("/api/work/next", headers={"Authorization": "Bearer not-a-token"}), 401)
    # an API key is not a worker: 401, the credential is of the wrong kind for this API
    for headers in ({"Authorization": f"Bearer {org.live_key}"}, {}):
        wrong = native_error(
            http.post(
                "/api/work/next", headers=headers, auth=None if headers else auth(org.live_key)
            ),
            401,
        )
        assert "session token" in wrong["message"], wrong


def test_every_role_that_labels_can_take_work(
    server: LiveServer, org: Org, http: httpx.Client, db: Database
) -> None:
    c = client(server, org.live_key)
    tasks = [image_task(c) for _ in range(2)]
    got = set()
    for role in ("reviewer", "manager"):
        r = _next(http, login(http, make_worker(db, org.org_id, role=role)))
        assert r.status_code == 200, (role, r.text)
        got.add(r.json()["task"]["task_id"])
    assert got == {t.id for t in tasks}


def test_staging_batches_wait_for_finalize(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    """Tasks of a batch still in staging are not worked on until the batch is finalized."""
    from scaleapi.tasks import TaskType

    c = client(server, org.live_key)
    c.create_project("studio", TaskType.ImageAnnotation, params={"geometries": BOXES}, studio=True)
    c.create_batch("studio", "staged")
    task = c.create_task(
        TaskType.ImageAnnotation, batch="staged", attachment="https://example.com/a.jpg"
    )
    assert _next(http, worker).status_code == 204
    assert _next(http, worker, project="studio").status_code == 204
    c.finalize_batch("staged")
    r = _next(http, worker)
    assert r.status_code == 200
    assert r.json()["task"]["task_id"] == task.id


def test_a_new_task_reopens_a_completed_batch(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    from scaleapi.tasks import TaskType

    c = client(server, org.live_key)
    c.create_project("reopen", TaskType.ImageAnnotation, params={"geometries": BOXES})
    c.create_batch("reopen", "b")
    c.create_task(TaskType.ImageAnnotation, batch="b", attachment="https://example.com/a.jpg")
    c.finalize_batch("b")
    lease = _next(http, worker, project="reopen").json()
    r = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"annotations": [BOX]}},
        headers=worker,
    )
    assert r.status_code == 200, r.text
    assert c.get_batch("b").status == "completed"
    c.create_task(TaskType.ImageAnnotation, batch="b", attachment="https://example.com/b.jpg")
    assert c.get_batch("b").status == "in_progress"


def test_paused_batches_wait_and_cancelled_batches_take_no_tasks(
    server: LiveServer, org: Org, http: httpx.Client, worker: dict[str, str]
) -> None:
    """v2 pause keeps a batch's tasks from workers until resume; cancel closes the batch."""
    from scaleapi.tasks import TaskStatus, TaskType

    c = client(server, org.live_key)
    c.create_project("paused", TaskType.ImageAnnotation, params={"geometries": BOXES})
    c.create_batch("paused", "b")
    task = c.create_task(
        TaskType.ImageAnnotation, batch="b", attachment="https://example.com/a.jpg"
    )
    bearer = {"authorization": f"Bearer {org.live_key}"}
    assert http.post("/v2/batch/pause", json={"batch_name": "b"}, headers=bearer).status_code == 200
    assert _next(http, worker).status_code == 204
    assert (
        http.post("/v2/batch/resume", json={"batch_name": "b"}, headers=bearer).status_code == 200
    )
    r = _next(http, worker)
    assert r.status_code == 200 and r.json()["task"]["task_id"] == task.id

    c.create_batch("paused", "gone")
    c.create_task(TaskType.ImageAnnotation, batch="gone", attachment="https://example.com/c.jpg")
    c.create_task(TaskType.ImageAnnotation, batch="gone", attachment="https://example.com/d.jpg")
    assert (
        http.post("/v2/batch/cancel", json={"batch_name": "gone"}, headers=bearer).status_code
        == 200
    )
    refused = http.post(
        "/v1/task/imageannotation",
        auth=(org.live_key, ""),
        json={"batch": "gone", "attachment": "https://example.com/b.jpg"},
    )
    assert refused.status_code == 400 and refused.json()["field"] == "batch"
    counts = http.get("/v1/batches/gone/status", auth=(org.live_key, "")).json()
    assert (counts["pending"], counts["canceled"]) == (0, 2)
    assert c.get_tasks_count(batch_name="gone", status=TaskStatus.Canceled) == 2
