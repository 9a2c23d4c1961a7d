"""A customer's audit rejection sends a live task back for rework (issue 8, item 3), through the
``scaleapi`` client and HTTP: other workers label it again, seeing the audit's comment; the
workers who labeled it are not offered it again; it completes again from the fresh labels only,
with a second completion callback, the rejected answer kept in ``prior_responses``, and its
batch reopened and completed again. An acceptance changes nothing but the audit record."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from scaleapi import ScaleClient
from scaleapi.tasks import TaskReviewStatus, TaskStatus, TaskType
from sqlalchemy import delete, select

from steelyard.accounts import security
from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.tasks.models import Task
from steelyard.workflow.aggregation import aggregate
from steelyard.workflow.models import Label
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, name
from tests.conftest import LiveServer, Org

#: Nothing listens here: callback jobs are counted, and a runner that picks one fails at once.
CALLBACK = "http://127.0.0.1:9/cb"
COMMENT = "Wrong: the picture shows a dog."


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def _project(c: ScaleClient, k: int) -> str:
    project = name("audit")
    params = {"pipeline": "consensus_task", "consensus_attempts": k} if k > 1 else {}
    c.create_project(project, TaskType.Categorization, params=params)
    return project


def _task(c: ScaleClient, project: str, batch: str) -> str:
    task = c.create_task(
        TaskType.Categorization,
        project=project,
        batch=batch,
        callback_url=CALLBACK,
        attachment="a picture",
        attachment_type="text",
        categories=["cat", "dog", "bird"],
    )
    return str(task.id)


def _batch(c: ScaleClient, project: str) -> str:
    batch = name("b")
    c.create_batch(project, batch)
    c.finalize_batch(batch)
    return batch


def _label(
    http: httpx.Client, worker: dict[str, str], project: str, category: str
) -> dict[str, Any]:
    """The worker takes the project's next task, labels it ``category``; returns the lease."""
    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert r.status_code == 200, r.text
    lease = r.json()
    s = http.post(
        f"/api/work/{lease['assignment_id']}/submit",
        json={"response": {"category": category}},
        headers=worker,
    )
    assert s.status_code == 200, s.text
    return dict(lease)


def _nothing_for(http: httpx.Client, worker: dict[str, str], project: str) -> bool:
    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    return r.status_code == 204


def _workers(http: httpx.Client, db: Database, org: Org, n: int, hashed: str) -> list[Any]:
    return [login(http, make_worker(db, org.org_id, password_hash=hashed)) for _ in range(n)]


def _callbacks(db: Database, org: Org, task_id: str) -> Counter[str]:
    with db.unit_of_work(write=False) as s:
        payloads = s.scalars(
            select(Job.payload).where(Job.org_id == org.org_id, Job.kind == outbox.TASK_CALLBACK)
        ).all()
    return Counter(str(p["event"]) for p in payloads if p["task_id"] == task_id)


def _drop_callbacks(db: Database, org: Org) -> None:
    with db.unit_of_work() as s:
        s.execute(delete(Job).where(Job.org_id == org.org_id, Job.kind == outbox.TASK_CALLBACK))


@pytest.mark.parametrize("k", [1, 3])
def test_a_rejection_sends_the_task_to_other_workers_with_the_comment(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str, k: int
) -> None:
    c = client(server, org.live_key)
    key = auth(org.live_key)
    project = _project(c, k)
    batch = name("b")
    c.create_batch(project, batch)
    task_id = _task(c, project, batch)
    c.finalize_batch(batch)
    first, second = (_workers(http, db, org, k, password_hash) for _ in range(2))
    for w in first:
        lease = _label(http, w, project, "cat")
        assert lease["task"]["task_id"] == task_id
        assert "rework" not in lease["task"]
    done = c.get_task(task_id)
    assert done.status == TaskStatus.Completed.value
    assert done.response == {"category": "cat"}
    assert http.get(f"/v1/batches/{batch}/status", auth=key).json()["status"] == "completed"
    assert _callbacks(db, org, task_id) == {"completed": 1}

    assert c.audit_task(task_id, accepted=False, comments=COMMENT) is None
    back = c.get_task(task_id).as_dict()
    assert back["status"] == "pending"
    assert "response" not in back and "completed_at" not in back and "confidence" not in back
    assert back["prior_responses"] == [{"category": "cat"}]
    assert back["customer_review_status"] == "rejected"
    assert back["customer_review_comments"] == [COMMENT]
    assert [(a["audit_result"], a["comments"]) for a in back["audits"]] == [("rejected", COMMENT)]
    # The audit's own callback, as before rework existed.
    assert _callbacks(db, org, task_id) == {"completed": 1, "audit": 1}
    # The batch is open again and the counters moved with the task.
    status = http.get(f"/v1/batches/{batch}/status", auth=key).json()
    assert (status["status"], status["pending"], status["completed"]) == ("in_progress", 1, 0)
    assert c.get_tasks_count(project_name=project, status=TaskStatus.Pending) == 1
    assert c.get_tasks_count(project_name=project, status=TaskStatus.Completed) == 0
    rejected = c.get_tasks(project_name=project, review_status=TaskReviewStatus.Rejected)
    assert [t.id for t in rejected] == [task_id]

    # Those who labeled it are not offered it again.
    for w in first:
        assert _nothing_for(http, w, project)
    for i, w in enumerate(second):
        lease = _label(http, w, project, "dog")
        assert lease["task"]["task_id"] == task_id
        assert lease["task"]["rework"] == {"audit_comment": COMMENT}
        # Only what labeling needs: no audit record, no earlier answer.
        assert not {"audits", "prior_responses", "response"} & set(lease["task"])
        expected = "completed" if i == k - 1 else "pending"
        assert c.get_task(task_id).status == expected

    again = c.get_task(task_id).as_dict()
    # The fresh labels decide (with k = 1 the rejected "cat" would otherwise tie with "dog").
    assert again["response"] == {"category": "dog"}
    assert again["prior_responses"] == [{"category": "cat"}]
    # Reworked: a new answer awaiting the customer's review; the rejection stays in the audits.
    assert again["customer_review_status"] == "pending"
    assert list(c.get_tasks(project_name=project, review_status=TaskReviewStatus.Rejected)) == []
    pending = c.get_tasks(project_name=project, review_status=TaskReviewStatus.Pending)
    assert [t.id for t in pending] == [task_id]
    assert [a["audit_result"] for a in again["audits"]] == ["rejected"]
    # The labels report marks the rejected labels; agreement counts the fresh ones only.
    labels = http.get(f"/api/tasks/{task_id}/labels", auth=key).json()
    assert [x["superseded"] for x in labels] == [True] * k + [False] * k
    agreement = http.get(f"/api/projects/{project}/agreement", auth=key).json()
    assert agreement["labels"] == k
    assert "completed_at" in again
    with db.unit_of_work(write=False) as s:
        seq, params = s.execute(select(Task.seq, Task.params).where(Task.task_id == task_id)).one()
        labels = s.execute(
            select(Label.user_id, Label.response, Label.superseded)
            .where(Label.task_seq == seq)
            .order_by(Label.created_at, Label.id)
        ).all()
        counters = s.execute(
            select(Task.labels_done, Task.labels_needed, Task.leases_open).where(Task.seq == seq)
        ).one()
    assert [sup for *_, sup in labels] == [True] * k + [False] * k
    fresh = aggregate("categorization", params, [(u, r) for u, r, sup in labels if not sup])
    assert again["response"] == fresh.response
    assert again["confidence"] == pytest.approx(fresh.confidence)
    assert tuple(counters) == (2 * k, 2 * k, 0)
    # One completion callback per completion.
    assert _callbacks(db, org, task_id) == {"completed": 2, "audit": 1}
    assert http.get(f"/v1/batches/{batch}/status", auth=key).json()["status"] == "completed"
    assert c.get_tasks_count(project_name=project, status=TaskStatus.Completed) == 1
    assert c.get_tasks_count(project_name=project, status=TaskStatus.Pending) == 0
    _drop_callbacks(db, org)


def test_an_acceptance_only_records_the_audit(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    project = _project(c, 1)
    batch = name("b")
    c.create_batch(project, batch)
    task_id = _task(c, project, batch)
    c.finalize_batch(batch)
    worker, other = _workers(http, db, org, 2, password_hash)
    _label(http, worker, project, "bird")
    before = c.get_task(task_id).as_dict()

    r = http.post(
        f"/v1/task/{task_id}/audit",
        json={"accepted": True, "comments": "fine"},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    after = c.get_task(task_id).as_dict()
    assert after["status"] == "completed"
    assert after["customer_review_status"] == "accepted"
    assert [a["audit_result"] for a in after["audits"]] == ["accepted"]
    unchanged = ("response", "confidence", "completed_at", "prior_responses")
    assert {f: after.get(f) for f in unchanged} == {f: before.get(f) for f in unchanged}
    assert _nothing_for(http, other, project)
    status = http.get(f"/v1/batches/{batch}/status", auth=auth(org.live_key)).json()
    assert status["status"] == "completed"
    assert _callbacks(db, org, task_id) == {"completed": 1, "audit": 1}
    _drop_callbacks(db, org)


def test_a_fixed_rejection_and_a_test_task_are_not_reworked(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    live = client(server, org.live_key)
    project = _project(live, 1)
    batch = name("b")
    live.create_batch(project, batch)
    task_id = _task(live, project, batch)
    live.finalize_batch(batch)
    worker, other = _workers(http, db, org, 2, password_hash)
    _label(http, worker, project, "bird")
    # A rejection that brings the right answer needs no rework.
    r = http.post(
        f"/v1/task/{task_id}/audit",
        json={"accepted": False, "response": {"category": "dog"}},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    fixed = r.json()
    assert (fixed["status"], fixed["customer_review_status"]) == ("completed", "fixed")
    assert fixed["response"] == {"category": "dog"}
    assert fixed["prior_responses"] == [{"category": "bird"}]
    assert _nothing_for(http, other, project)

    # A test task is complete from its creation and never served: the rejection is recorded.
    sandbox = client(server, org.test_key)
    test_project = _project(sandbox, 1)
    test_task = sandbox.create_task(
        TaskType.Categorization,
        project=test_project,
        attachment="x",
        attachment_type="text",
        categories=["cat", "dog"],
    )
    sandbox.audit_task(test_task.id, accepted=False, comments="no")
    got = sandbox.get_task(test_task.id).as_dict()
    assert (got["status"], got["customer_review_status"]) == ("completed", "rejected")
    assert got["prior_responses"] == []
    _drop_callbacks(db, org)


def test_a_second_rejection_needs_yet_other_workers(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    project = _project(c, 1)
    task_id = _task(c, project, _batch(c, project))
    a, b, third = _workers(http, db, org, 3, password_hash)
    _label(http, a, project, "cat")
    c.audit_task(task_id, accepted=False, comments="not a cat")
    # A task being reworked is pending: it cannot be audited until it completes again.
    r = http.post(f"/v1/task/{task_id}/audit", json={"accepted": False}, auth=auth(org.live_key))
    assert r.status_code == 400 and "pending" in r.text
    _label(http, b, project, "bird")
    c.audit_task(task_id, accepted=False, comments="not a bird either")
    assert _nothing_for(http, a, project) and _nothing_for(http, b, project)
    lease = _label(http, third, project, "dog")
    assert lease["task"]["rework"] == {"audit_comment": "not a bird either"}
    done = c.get_task(task_id).as_dict()
    assert (done["status"], done["response"]) == ("completed", {"category": "dog"})
    assert done["prior_responses"] == [{"category": "cat"}, {"category": "bird"}]
    assert _callbacks(db, org, task_id) == {"completed": 3, "audit": 2}
    _drop_callbacks(db, org)


def test_an_adaptive_rework_asks_for_fresh_labels_until_confident(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    """min 1, max 3, target 0.9: two agreeing labels complete a task. After a rejection the
    fresh round starts again at one label (0.8, not enough) and stops at two that agree."""
    c = client(server, org.live_key)
    project = name("adaptive")
    redundancy = {"min": 1, "max": 3, "target_confidence": 0.9}
    c.create_project(
        project,
        TaskType.Categorization,
        params={"pipeline": "consensus_task", "redundancy": redundancy},
    )
    task_id = _task(c, project, _batch(c, project))
    a, b, d, e = _workers(http, db, org, 4, password_hash)
    _label(http, a, project, "cat")
    _label(http, b, project, "cat")
    assert c.get_task(task_id).status == TaskStatus.Completed.value
    c.audit_task(task_id, accepted=False, comments="it barks")
    _label(http, d, project, "dog")
    assert c.get_task(task_id).status == TaskStatus.Pending.value  # one fresh label: 0.8
    _label(http, e, project, "dog")
    done = c.get_task(task_id).as_dict()
    # Two cats and two dogs would tie; the fresh round alone is as confident as the first was.
    assert (done["status"], done["response"]) == ("completed", {"category": "dog"})
    assert done["confidence"] == pytest.approx(0.64 / 0.66)
    with db.unit_of_work(write=False) as s:
        counters = s.execute(
            select(Task.labels_done, Task.labels_needed, Task.labels_max).where(
                Task.task_id == task_id
            )
        ).one()
    assert tuple(counters) == (4, 4, 5)
    _drop_callbacks(db, org)
