"""The workflow engine through HTTP: consensus projects set with the ``scaleapi`` client, three
workers labeling one task, heartbeat, release, skip, expiry, and the completed task's
response and confidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest
from scaleapi.tasks import TaskType
from sqlalchemy import select, update

from steelyard.accounts import security
from steelyard.db.engine import Database
from steelyard.tasks.models import Task
from steelyard.workflow.aggregation import aggregate
from steelyard.workflow.models import Assignment, Label
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, name
from tests.conftest import LiveServer, Org

CATEGORIES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def _workers(http: httpx.Client, db: Database, org: Org, n: int, hashed: str) -> list[Any]:
    return [login(http, make_worker(db, org.org_id, password_hash=hashed)) for _ in range(n)]


def _consensus_project(server: LiveServer, org: Org, k: int) -> str:
    c = client(server, org.live_key)
    project = name("consensus")
    c.create_project(
        project,
        TaskType.Categorization,
        params={"pipeline": "consensus_task", "consensus_attempts": k},
    )
    return project


def _task(server: LiveServer, org: Org, project: str) -> str:
    c = client(server, org.live_key)
    task = c.create_task(
        TaskType.Categorization,
        project=project,
        attachment="a picture",
        attachment_type="text",
        categories=CATEGORIES,
    )
    return str(task.id)


def _next(http: httpx.Client, worker: Any, project: str | None = None) -> httpx.Response:
    params = {"project": project} if project else {}
    return http.post("/api/work/next", params=params, headers=worker)


def _submit(http: httpx.Client, worker: Any, assignment: str, category: str) -> httpx.Response:
    return http.post(
        f"/api/work/{assignment}/submit",
        json={"response": {"category": category}},
        headers=worker,
    )


def test_scaleapi_client_sets_consensus_params(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    project = name("consensus")
    created = c.create_project(
        project,
        TaskType.Categorization,
        params={"pipeline": "consensus_task", "consensus_attempts": 3},
    )
    assert created.params["pipeline"] == "consensus_task"
    assert created.params["consensus_attempts"] == 3
    updated = c.update_project(project, consensus_attempts=5)
    assert updated.params["consensus_attempts"] == 5
    # Back to one label per task: the earlier attempts go with the pipeline they belonged to.
    standard = c.update_project(project, pipeline="standard_task")
    assert "consensus_attempts" not in standard.params
    # The settings are not passed down as a task's params.
    task = c.create_task(
        TaskType.Categorization,
        project=project,
        attachment="x",
        attachment_type="text",
        categories=CATEGORIES,
    )
    assert "pipeline" not in task.params and "consensus_attempts" not in task.params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pipeline": "fast_task"}, "params.pipeline"),
        ({"pipeline": "consensus_task"}, "params.consensus_attempts"),
        ({"pipeline": "consensus_task", "consensus_attempts": 0}, "params.consensus_attempts"),
        ({"pipeline": "consensus_task", "consensus_attempts": "3"}, "params.consensus_attempts"),
        ({"pipeline": "standard_task", "consensus_attempts": 3}, "params.consensus_attempts"),
        (
            {"pipeline": "consensus_task", "redundancy": {"min": 3, "max": 2}},
            "params.redundancy.max",
        ),
        (
            {
                "pipeline": "consensus_task",
                "redundancy": {"min": 1, "max": 3, "target_confidence": 1.5},
            },
            "params.redundancy.target_confidence",
        ),
    ],
)
def test_bad_workflow_params_are_400_naming_the_field(
    server: LiveServer, http: httpx.Client, org: Org, params: dict[str, Any], field: str
) -> None:
    body = {"name": name(), "type": "categorization", "params": params}
    r = http.post("/v1/projects", json=body, auth=auth(org.live_key))
    assert r.status_code == 400, r.text
    assert field in r.json()["error"], r.text
    # The same settings through setParams (the client's update_project).
    c = client(server, org.live_key)
    project = name()
    c.create_project(project, TaskType.Categorization)
    with pytest.raises(ScaleInvalidRequest) as info:
        c.update_project(project, **params)
    assert field in str(info.value)


def test_three_workers_label_a_k3_task_and_it_completes_with_a_confidence(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _consensus_project(server, org, 3)
    task_id = _task(server, org, project)
    workers = _workers(http, db, org, 4, password_hash)
    leases = []
    for w in workers[:3]:
        r = _next(http, w, project)
        assert r.status_code == 200, r.text
        assert r.json()["task"]["task_id"] == task_id
        leases.append(r.json()["assignment_id"])
    # Three leases on a task that needs three labels: the fourth worker gets nothing.
    assert _next(http, workers[3], project).status_code == 204
    # Asking again returns the lease already held.
    again = _next(http, workers[0], project)
    assert again.json()["assignment_id"] == leases[0]
    answers = ["cat", "dog", "cat"]
    statuses = []
    for w, lease, answer in zip(workers, leases, answers, strict=False):
        r = _submit(http, w, lease, answer)
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
    assert statuses == ["pending", "pending", "completed"]
    # A worker who labeled it is not offered it again (and it is done anyway).
    assert _next(http, workers[0], project).status_code == 204
    got = http.get(f"/v1/task/{task_id}", auth=auth(org.live_key)).json()
    assert got["status"] == "completed"
    assert got["response"] == {"category": "cat"}
    # What the aggregator gives on the stored labels.
    with db.unit_of_work(write=False) as s:
        seq, params = s.execute(select(Task.seq, Task.params).where(Task.task_id == task_id)).one()
        stored = s.execute(
            select(Label.user_id, Label.response)
            .where(Label.task_seq == seq)
            .order_by(Label.created_at, Label.id)
        ).all()
    expected = aggregate("categorization", params, [(u, r) for u, r in stored])
    assert got["response"] == expected.response
    assert 0.5 < got["confidence"] < 1.0
    assert got["confidence"] == pytest.approx(expected.confidence)


def test_one_label_task_completes_with_the_default_confidence(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    project = name("standard")
    c.create_project(project, TaskType.Categorization)
    task_id = _task(server, org, project)
    (worker,) = _workers(http, db, org, 1, password_hash)
    lease = _next(http, worker, project).json()["assignment_id"]
    assert _submit(http, worker, lease, "dog").json()["status"] == "completed"
    got = http.get(f"/v1/task/{task_id}", auth=auth(org.live_key)).json()
    assert got["response"] == {"category": "dog"}
    # One vote by a worker of reliability 0.7 among three choices: 0.7 + 0.3 / 3.
    assert got["confidence"] == pytest.approx(0.8)


def test_heartbeat_release_and_skip(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _consensus_project(server, org, 1)
    task_id = _task(server, org, project)
    a, b = _workers(http, db, org, 2, password_hash)
    first = _next(http, a, project).json()
    beat = http.post(f"/api/work/{first['assignment_id']}/heartbeat", headers=a)
    assert beat.status_code == 200, beat.text
    assert beat.json()["status"] == "active"
    assert beat.json()["lease_expires_at"] >= first["lease_expires_at"]
    # Another worker cannot touch it (404, as for any object not theirs).
    for action in ("heartbeat", "release", "skip", "submit"):
        r = http.post(
            f"/api/work/{first['assignment_id']}/{action}",
            json={"response": {"category": "cat"}},
            headers=b,
        )
        assert r.status_code == 404, (action, r.text)
    released = http.post(f"/api/work/{first['assignment_id']}/release", headers=a)
    assert released.status_code == 200 and released.json()["status"] == "released"
    # Once released it cannot be submitted, heartbeated or released again.
    # (409, the native API's answer to a state that forbids the call.)
    assert _submit(http, a, first["assignment_id"], "cat").status_code == 409
    again = http.post(f"/api/work/{first['assignment_id']}/release", headers=a)
    assert again.status_code == 409 and again.json()["error"]["field"] == "assignment_id"
    beat = http.post(f"/api/work/{first['assignment_id']}/heartbeat", headers=a)
    assert beat.status_code == 409
    # Released: it may be offered to the same worker again.
    second = _next(http, a, project).json()
    assert second["task"]["task_id"] == task_id
    assert second["assignment_id"] != first["assignment_id"]
    skipped = http.post(f"/api/work/{second['assignment_id']}/skip", headers=a)
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    # Skipped: never offered to that worker again, still to others.
    assert _next(http, a, project).status_code == 204
    other = _next(http, b, project).json()
    assert other["task"]["task_id"] == task_id
    assert _submit(http, b, other["assignment_id"], "bird").json()["status"] == "completed"


def test_an_expired_lease_is_reclaimed_for_the_next_worker(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _consensus_project(server, org, 1)
    task_id = _task(server, org, project)
    a, b = _workers(http, db, org, 2, password_hash)
    held = _next(http, a, project).json()["assignment_id"]
    assert _next(http, b, project).status_code == 204
    past = datetime.now(UTC) - timedelta(seconds=5)
    with db.unit_of_work() as s:
        s.execute(update(Assignment).where(Assignment.id == held).values(expires_at=past))
    # B's next reclaims the expired lease and takes its slot.
    taken = _next(http, b, project)
    assert taken.status_code == 200 and taken.json()["task"]["task_id"] == task_id
    with db.unit_of_work(write=False) as s:
        assert s.scalar(select(Assignment.status).where(Assignment.id == held)) == "expired"
    r = _submit(http, a, held, "cat")
    assert r.status_code == 409 and r.json()["error"]["field"] == "assignment_id"
    assert http.post(f"/api/work/{held}/heartbeat", headers=a).status_code == 409
    # A's next call takes nothing: the one slot is B's.
    assert _next(http, a, project).status_code == 204


def test_one_lease_per_worker_across_projects(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    first, second = _consensus_project(server, org, 2), _consensus_project(server, org, 2)
    _task(server, org, first)
    _task(server, org, second)
    (w,) = _workers(http, db, org, 1, password_hash)
    held = _next(http, w, first).json()
    # Asking within another project still answers with the lease held.
    assert _next(http, w, second).json()["assignment_id"] == held["assignment_id"]
    with db.unit_of_work(write=False) as s:
        active = s.scalars(
            select(Assignment.id).where(
                Assignment.org_id == org.org_id, Assignment.status == "active"
            )
        ).all()
    assert active == [held["assignment_id"]]


def test_adaptive_redundancy_asks_for_labels_until_confident(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    """min 1, max 3, target 0.9 with three choices: one label (0.8) is not enough; two that
    agree (0.97) are; two that disagree (0.47) ask for the third, where it stops at max."""
    c = client(server, org.live_key)
    project = name("adaptive")
    redundancy = {"min": 1, "max": 3, "target_confidence": 0.9}
    created = c.create_project(
        project,
        TaskType.Categorization,
        params={"pipeline": "consensus_task", "redundancy": redundancy},
    )
    assert created.params["redundancy"] == redundancy
    agreed, split = _task(server, org, project), _task(server, org, project)
    a, b, d = _workers(http, db, org, 3, password_hash)

    def label(worker: Any, task_id: str, category: str) -> str:
        r = _next(http, worker, project)
        assert r.status_code == 200 and r.json()["task"]["task_id"] == task_id, r.text
        return str(_submit(http, worker, r.json()["assignment_id"], category).json()["status"])

    assert label(a, agreed, "cat") == "pending"  # 0.8 < 0.9: one more label opens
    assert label(b, agreed, "cat") == "completed"
    first = http.get(f"/v1/task/{agreed}", auth=auth(org.live_key)).json()
    assert first["confidence"] == pytest.approx(0.64 / 0.66)
    assert label(a, split, "cat") == "pending"
    assert label(b, split, "dog") == "pending"
    assert label(d, split, "bird") == "completed"  # at max: completes however unsure
    last = http.get(f"/v1/task/{split}", auth=auth(org.live_key)).json()
    assert last["response"] == {"category": "cat"} and last["confidence"] == pytest.approx(1 / 3)
    with db.unit_of_work(write=False) as s:
        needed = s.execute(
            select(Task.task_id, Task.labels_needed, Task.labels_done).where(
                Task.task_id.in_([agreed, split])
            )
        ).all()
    assert sorted(needed) == sorted([(agreed, 2, 2), (split, 3, 3)])
