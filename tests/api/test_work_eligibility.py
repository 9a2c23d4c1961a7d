"""``POST /api/work/next`` through HTTP: only tasks of projects and batches the worker may work
on (Studio assignments and project groups, set with the ``scaleapi`` client), in work order
(Studio batch priority, then task priority, then age), narrowed by ``?project=``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import scaleapi
from scaleapi.tasks import TaskType

from steelyard.accounts import security
from steelyard.db.engine import Database
from tests.api.helpers import PASSWORD, client, login, make_worker, name
from tests.conftest import LiveServer, Org


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def _worker(http: httpx.Client, db: Database, org: Org, hashed: str) -> tuple[str, Any]:
    email = make_worker(db, org.org_id, password_hash=hashed)
    return email, login(http, email)


def _project(c: scaleapi.ScaleClient, *, studio: bool = False) -> str:
    project = name("work")
    c.create_project(project, TaskType.Categorization, studio=studio)
    return project


def _task(c: scaleapi.ScaleClient, project: str, **kwargs: Any) -> str:
    task = c.create_task(
        TaskType.Categorization,
        project=project,
        attachment="a picture",
        attachment_type="text",
        categories=["cat", "dog"],
        **kwargs,
    )
    return str(task.id)


def _batch(c: scaleapi.ScaleClient, project: str) -> str:
    batch = name("batch")
    c.create_batch(project, batch)
    return batch


def _next(http: httpx.Client, worker: Any, project: str | None = None) -> httpx.Response:
    params = {"project": project} if project else {}
    return http.post("/api/work/next", params=params, headers=worker)


def _take(http: httpx.Client, worker: Any, project: str | None = None) -> tuple[str, str]:
    """The next task's id and its assignment's id."""
    r = _next(http, worker, project)
    assert r.status_code == 200, r.text
    return r.json()["task"]["task_id"], r.json()["assignment_id"]


def _skip(http: httpx.Client, worker: Any, assignment: str) -> None:
    r = http.post(f"/api/work/{assignment}/skip", headers=worker)
    assert r.status_code == 200, r.text


def _drain_order(http: httpx.Client, worker: Any, project: str | None = None) -> list[str]:
    """Every task the worker is offered, in order (each skipped so the next one comes)."""
    seen = []
    while (r := _next(http, worker, project)).status_code == 200:
        seen.append(r.json()["task"]["task_id"])
        _skip(http, worker, r.json()["assignment_id"])
        assert len(seen) < 50, seen
    assert r.status_code == 204, r.text
    return seen


def test_assigned_project_is_only_for_its_workers_and_unassigned_one_for_all(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    closed, open_ = _project(c), _project(c)
    (x_email, x), (_, y) = (_worker(http, db, org, password_hash) for _ in range(2))
    # The closed project's task is the older one: age alone would hand it out first.
    closed_task = _task(c, closed)
    open_task = _task(c, open_)
    c.add_studio_assignments([x_email], [closed])

    assert _drain_order(http, y) == [open_task]
    refused = _next(http, y, closed)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["field"] == "project" and closed in error["message"], error

    task, lease = _take(http, x)
    assert task == closed_task  # assigned to it, and it is the oldest
    released = http.post(f"/api/work/{lease}/release", headers=x)
    assert released.status_code == 200, released.text

    # A project whose assignments are all removed is open to every worker again.
    c.remove_studio_assignments([x_email], [closed])
    assert _take(http, y)[0] == closed_task


def test_group_restricted_batch_is_only_for_its_groups_members(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    project = _project(c, studio=True)
    (x_email, x), (y_email, y), (_, z) = (_worker(http, db, org, password_hash) for _ in range(3))
    restricted, free = _batch(c, project), _batch(c, project)
    restricted_task = _task(c, project, batch=restricted)
    free_task = _task(c, project, batch=free)
    c.create_project_group(project, [x_email], "day shift")
    c.create_project_group(project, [y_email], "night shift")
    c.assign_studio_batches(restricted, ["day shift", "night shift"])
    # A Studio batch waits in staging until finalized: nothing to hand out yet.
    assert _next(http, z).status_code == 204
    c.finalize_batch(restricted)
    c.finalize_batch(free)

    assert _drain_order(http, z) == [free_task]  # in neither group
    assert _drain_order(http, x, project) == [restricted_task, free_task]
    assert _drain_order(http, y) == [restricted_task, free_task]  # either group will do
    # Out of the night shift: the batch is the day shift's only.
    c.update_project_group(project, "night shift", [], [y_email])
    c.assign_studio_batches(free, ["night shift"])  # a group with no members: closed to all
    _, w = _worker(http, db, org, password_hash)
    assert _next(http, w).status_code == 204


def test_batch_priority_beats_task_priority_beats_age(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    project = _project(c, studio=True)
    b1, b2, b3, b4 = (_batch(c, project) for _ in range(4))
    a = _task(c, project, batch=b1, priority=30)
    b = _task(c, project, batch=b2, priority=10)
    cc = _task(c, project, batch=b2, priority=30)
    d = _task(c, project, batch=b2, priority=10)
    e = _task(c, project, batch=b3, priority=20)
    f = _task(c, project, batch=b4, priority=40)
    g = _task(c, project, batch=b1, priority=30)
    for batch in (b1, b2, b3, b4):
        c.finalize_batch(batch)
    c.set_studio_batches_priorities([b2, b3])
    _, worker = _worker(http, db, org, password_hash)
    # b2 (rank 1): by task priority, then age; b3 (rank 2); then the unprioritized b4 and b1
    # together, by task priority (f), then age (a before g).
    assert _drain_order(http, worker) == [cc, b, d, e, f, a, g]

    c.reset_studio_batches_priorities()
    _, other = _worker(http, db, org, password_hash)
    assert _drain_order(http, other) == [f, a, cc, g, e, b, d]


def test_project_narrows_past_another_projects_prioritized_batch(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    urgent_project, project = _project(c, studio=True), _project(c, studio=True)
    urgent = _batch(c, urgent_project)
    urgent_task = _task(c, urgent_project, batch=urgent, priority=50)
    batch = _batch(c, project)
    mine = _task(c, project, batch=batch)
    loose = _task(c, project)  # a task of no batch: after prioritized batches, by its age
    c.finalize_batch(urgent)
    c.finalize_batch(batch)
    c.set_studio_batches_priorities([urgent])
    _, x = _worker(http, db, org, password_hash)
    _, y = _worker(http, db, org, password_hash)
    assert _drain_order(http, x, project) == [mine, loose]
    assert _drain_order(http, y) == [urgent_task, mine, loose]
    missing = _next(http, y, "no-such-project")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["field"] == "project", missing.text
