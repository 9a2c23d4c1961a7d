"""Review (issue 8, items 1 and 6), through real HTTP: a task whose labels are in waits for a
reviewer when its project's ``params.review`` says so (all, a deterministic sample, or when the
labels disagree); a reviewer who did not label it takes it with a lease and accepts, fixes or
rejects it; the review queue and the progress counts show it; the task completes exactly once,
with exactly one completion callback."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest
from scaleapi.tasks import TaskType
from sqlalchemy import delete, select, update

from steelyard.accounts import security
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.jobs.runner import JobRunner
from steelyard.tasks.models import Task
from steelyard.workflow import review
from steelyard.workflow.aggregation import aggregate
from steelyard.workflow.models import Review
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, name
from tests.conftest import LiveServer, Org

CATEGORIES = ["cat", "dog", "bird"]
CALLBACK = "http://127.0.0.1:9/cb"
REASON = "The picture shows a dog, not a cat: look at the ears."


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


class Ops:
    """An organization's customer (API key), workers and reviewers, over HTTP."""

    def __init__(self, http: httpx.Client, db: Database, org: Org, hashed: str) -> None:
        self.http, self.db, self.org, self.hashed = http, db, org, hashed

    @property
    def key(self) -> httpx.BasicAuth:
        return auth(self.org.live_key)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        if "headers" not in kwargs:
            kwargs.setdefault("auth", self.key)
        r = self.http.request(method, path, **kwargs)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def project(self, review_setting: dict[str, Any] | None, k: int = 1) -> str:
        project = name("rev")
        params: dict[str, Any] = {"categories": CATEGORIES}
        if k > 1:
            params |= {"pipeline": "consensus_task", "consensus_attempts": k}
        if review_setting is not None:
            params["review"] = review_setting
        body = {"type": "categorization", "name": project, "params": params}
        self.ok("POST", "/v1/projects", json=body)
        return project

    def task(self, project: str) -> str:
        body = {"project": project, "attachment": "a picture", "callback_url": CALLBACK}
        return str(self.ok("POST", "/v1/task/categorization", json=body)["task_id"])

    def person(self, role: str = "annotator") -> tuple[str, dict[str, str]]:
        email = make_worker(self.db, self.org.org_id, role=role, password_hash=self.hashed)
        return email, login(self.http, email)

    def label(self, worker: dict[str, str], project: str, category: str) -> dict[str, Any]:
        """The worker labels the project's next task; returns the submit's answer."""
        lease = self.ok("POST", "/api/work/next", params={"project": project}, headers=worker)
        return dict(
            self.ok(
                "POST",
                f"/api/work/{lease['assignment_id']}/submit",
                json={"response": {"category": category}},
                headers=worker,
            )
        )

    def next_review(self, reviewer: dict[str, str], project: str) -> httpx.Response:
        return self.http.post("/api/review/next", params={"project": project}, headers=reviewer)

    def decide(
        self, reviewer: dict[str, str], review_id: str, decision: str, body: Any = None
    ) -> httpx.Response:
        return self.http.post(f"/api/review/{review_id}/{decision}", json=body, headers=reviewer)

    def get(self, task_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/v1/task/{task_id}"))

    def callbacks(self, task_id: str) -> Counter[str]:
        with self.db.unit_of_work(write=False) as s:
            payloads = s.scalars(
                select(Job.payload).where(
                    Job.org_id == self.org.org_id, Job.kind == outbox.TASK_CALLBACK
                )
            ).all()
        return Counter(str(p["event"]) for p in payloads if p["task_id"] == task_id)

    def counts(self, project: str) -> dict[str, int]:
        return dict(self.ok("GET", f"/api/projects/{project}/progress")["review"])

    def queue(self, project: str, **params: Any) -> dict[str, Any]:
        return dict(self.ok("GET", f"/api/projects/{project}/review-queue", params=params))


@pytest.fixture
def ops(http: httpx.Client, db: Database, org: Org, password_hash: str) -> Ops:
    yield Ops(http, db, org, password_hash)
    # Nothing listens at CALLBACK: the queued callbacks are counted, then dropped.
    with db.unit_of_work() as s:
        s.execute(delete(Job).where(Job.org_id == org.org_id, Job.kind == outbox.TASK_CALLBACK))


def _error(r: httpx.Response, status: int, field: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    error = body["error"]
    if isinstance(error, dict):
        assert error["field"] == field, error
    else:
        assert field in error, body


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("all", "params.review"),
        ({"mode": "some"}, "params.review.mode"),
        ({}, "params.review.mode"),
        ({"mode": "sampled", "fraction": 1.5}, "params.review.fraction"),
        ({"mode": "sampled", "fraction": 0}, "params.review.fraction"),
        ({"mode": "sampled", "fraction": True}, "params.review.fraction"),
        ({"mode": "disagreement", "agreement_below": "0.5"}, "params.review.agreement_below"),
        ({"mode": "sampled", "agreement_below": 0.5}, "params.review.agreement_below"),
        ({"mode": "all", "fraction": 0.5}, "params.review.fraction"),
        ({"mode": "all", "who": "me"}, "params.review.who"),
    ],
)
def test_bad_review_settings_are_refused_naming_the_field(
    ops: Ops, setting: Any, field: str
) -> None:
    body = {"type": "categorization", "name": name("bad"), "params": {"review": setting}}
    r = ops.http.post("/v1/projects", json=body, auth=ops.key)
    _error(r, 400, field)
    assert ops.http.get(f"/v1/projects/{body['name']}", auth=ops.key).status_code == 404


def test_review_settings_are_echoed_and_updated(ops: Ops) -> None:
    project = ops.project({"mode": "sampled", "fraction": 0.3}, k=2)
    params = ops.ok("GET", f"/v1/projects/{project}")["params"]
    assert params["review"] == {"mode": "sampled", "fraction": 0.3}
    # A pipeline change replaces the redundancy settings and keeps the review.
    ops.ok("POST", f"/v1/projects/{project}/setParams", json={"pipeline": "standard_task"})
    params = ops.ok("GET", f"/v1/projects/{project}")["params"]
    assert params["review"] == {"mode": "sampled", "fraction": 0.3}
    assert "consensus_attempts" not in params
    ops.ok("POST", f"/v1/projects/{project}/setParams", json={"review": {"mode": "all"}})
    assert ops.ok("GET", f"/v1/projects/{project}")["params"]["review"] == {"mode": "all"}
    r = ops.http.post(
        f"/v1/projects/{project}/setParams",
        json={"review": {"mode": "disagreement", "agreement_below": 2}},
        auth=ops.key,
    )
    _error(r, 400, "params.review.agreement_below")
    # Tasks created now wait for review (the setting a task records at create).
    task_id = ops.task(project)
    _, worker = ops.person()
    assert ops.label(worker, project, "cat")["status"] == "pending"
    assert ops.queue(project)["items"][0]["task_id"] == task_id


def test_review_settings_through_the_scaleapi_client(ops: Ops, server: LiveServer) -> None:
    c = client(server, ops.org.live_key)
    project = name("client")
    setting = {"mode": "disagreement", "agreement_below": 0.75}
    made = c.create_project(
        project, TaskType.Categorization, params={"categories": CATEGORIES, "review": setting}
    )
    assert made.params["review"] == setting
    updated = c.update_project(project, review={"mode": "sampled", "fraction": 0.1})
    assert updated.params["review"] == {"mode": "sampled", "fraction": 0.1}
    assert c.get_project(project).params["review"] == {"mode": "sampled", "fraction": 0.1}
    with pytest.raises(ScaleInvalidRequest, match=r"params\.review\.mode"):
        c.update_project(project, review={"mode": "often"})


# --- modes -------------------------------------------------------------------------------------


def test_without_review_a_task_completes_at_once(ops: Ops) -> None:
    for setting in (None, {"mode": "none"}):
        project = ops.project(setting)
        task_id = ops.task(project)
        _, worker = ops.person()
        assert ops.label(worker, project, "cat")["status"] == "completed"
        assert ops.get(task_id)["status"] == "completed"
        assert ops.callbacks(task_id) == {"completed": 1}
        _, reviewer = ops.person("reviewer")
        assert ops.next_review(reviewer, project).status_code == 204
        assert ops.counts(project) == dict.fromkeys(
            ("awaiting", "in_review", "accepted", "fixed", "rejected"), 0
        )


def test_sampled_review_takes_the_tasks_whose_id_hashes_into_the_sample(ops: Ops) -> None:
    project = ops.project({"mode": "sampled", "fraction": 0.5})
    tasks = [ops.task(project) for _ in range(20)]
    _, worker = ops.person()
    answers = {ops.label(worker, project, "cat")["task_id"] for _ in tasks}
    assert answers == set(tasks)
    expected = {t for t in tasks if review.sampled(t, 0.5)}
    # A sample of 20 at one half: neither empty nor everything (a 2-in-a-million chance).
    assert 0 < len(expected) < len(tasks)
    waiting = {x["task_id"] for x in ops.queue(project)["items"]}
    assert waiting == expected
    assert {x["reason"] for x in ops.queue(project)["items"]} == {"sampled"}
    for t in tasks:
        assert ops.get(t)["status"] == ("pending" if t in expected else "completed")
        assert ops.callbacks(t) == ({} if t in expected else {"completed": 1})
    assert ops.counts(project)["awaiting"] == len(expected)


def test_sampling_is_deterministic_and_uniform() -> None:
    ids = [f"task-{i}" for i in range(4000)]
    first = [review.sampled(i, 0.2) for i in ids]
    assert first == [review.sampled(i, 0.2) for i in ids]
    assert 0.17 < sum(first) / len(ids) < 0.23
    assert not any(review.sampled(i, 0.0) for i in ids[:100])
    assert all(review.sampled(i, 1.0) for i in ids[:100])
    # A larger fraction samples a superset: raising it never drops a reviewed task.
    assert all(review.sampled(i, 0.5) for i, s in zip(ids, first, strict=True) if s)


def test_disagreement_review_takes_the_tasks_below_the_agreement(ops: Ops) -> None:
    project = ops.project({"mode": "disagreement", "agreement_below": 0.8}, k=2)
    params = {"categories": CATEGORIES}
    agree = aggregate("categorization", params, [("a", {"category": "cat"})] * 2)
    split = aggregate(
        "categorization", params, [("a", {"category": "cat"}), ("b", {"category": "dog"})]
    )
    assert agree.confidence >= 0.8 > split.confidence  # what the test relies on
    same, differ = ops.task(project), ops.task(project)
    (_, w1), (_, w2) = ops.person(), ops.person()
    ops.label(w1, project, "cat")
    ops.label(w1, project, "cat")
    assert ops.label(w2, project, "cat")["status"] == "completed"
    assert ops.label(w2, project, "dog")["status"] == "pending"
    assert ops.get(same)["status"] == "completed"
    assert ops.get(differ)["status"] == "pending"
    (item,) = ops.queue(project)["items"]
    assert (item["task_id"], item["reason"]) == (differ, "disagreement")
    assert item["candidate"] == split.response
    assert item["confidence"] == pytest.approx(split.confidence)


# --- decisions ---------------------------------------------------------------------------------


def _waiting(ops: Ops, k: int = 2) -> tuple[str, str, list[tuple[str, dict[str, str]]]]:
    """A project reviewing all its tasks, with one task labeled "cat" by ``k`` workers."""
    project = ops.project({"mode": "all"}, k=k)
    task_id = ops.task(project)
    workers = [ops.person() for _ in range(k)]
    for i, (_, w) in enumerate(workers):
        answer = ops.label(w, project, "cat")
        assert (answer["task_id"], answer["status"]) == (task_id, "pending"), (i, answer)
    return project, task_id, workers


def test_accept_completes_with_the_candidate(ops: Ops) -> None:
    project, task_id, workers = _waiting(ops)
    waiting = ops.get(task_id)
    assert waiting["status"] == "pending"
    assert not {"response", "confidence", "completed_at"} & set(waiting)
    assert ops.callbacks(task_id) == {}
    assert ops.counts(project)["awaiting"] == 1
    # Nobody can label it any more.
    _, late = ops.person()
    assert (
        ops.http.post("/api/work/next", params={"project": project}, headers=late).status_code
        == 204
    )

    _, reviewer = ops.person("reviewer")
    offer = ops.next_review(reviewer, project)
    assert offer.status_code == 200, offer.text
    view = offer.json()
    assert view["task"]["task_id"] == task_id and view["reason"] == "all"
    assert view["candidate"] == {"category": "cat"}
    assert 0 < view["confidence"] <= 1
    assert [x["worker"] for x in view["labels"]] == [e for e, _ in workers]
    assert all(x["response"] == {"category": "cat"} and x["submitted_at"] for x in view["labels"])
    assert view["status"] == "active" and view["lease_expires_at"]
    # Asking again returns the same lease; one reviewer per task at a time.
    assert ops.next_review(reviewer, project).json()["review_id"] == view["review_id"]
    _, other = ops.person("manager")
    assert ops.next_review(other, project).status_code == 204
    assert ops.counts(project) == {
        "awaiting": 0,
        "in_review": 1,
        "accepted": 0,
        "fixed": 0,
        "rejected": 0,
    }

    done = ops.decide(reviewer, view["review_id"], "accept")
    assert done.status_code == 200, done.text
    assert done.json()["decision"] == "accepted" and done.json()["task_status"] == "completed"
    assert done.json()["active_seconds"] >= 0
    task = ops.get(task_id)
    assert task["status"] == "completed"
    assert task["response"] == {"category": "cat"}
    assert task["confidence"] == pytest.approx(view["confidence"])
    assert task["prior_responses"] == []
    assert ops.callbacks(task_id) == {"completed": 1}
    assert ops.counts(project)["accepted"] == 1 and ops.counts(project)["in_review"] == 0
    assert ops.queue(project)["items"] == []
    # Decided once: a second decision is refused and changes nothing.
    again = ops.decide(reviewer, view["review_id"], "accept")
    _error(again, 409, "review_id")
    assert ops.callbacks(task_id) == {"completed": 1}
    with ops.db.unit_of_work(write=False) as s:
        row = s.scalar(select(Review).where(Review.id == view["review_id"]))
        assert row is not None
        assert (row.status, row.decided_at is not None, row.active_seconds is not None) == (
            "accepted",
            True,
            True,
        )


def test_fix_completes_with_the_reviewers_response(ops: Ops) -> None:
    _, task_id, _ = _waiting(ops)
    _, reviewer = ops.person("admin")
    view = ops.next_review(reviewer, "").json()
    assert view["task"]["task_id"] == task_id
    bad = ops.decide(reviewer, view["review_id"], "fix", {"response": {"category": "horse"}})
    _error(bad, 422, "response.category")
    _error(ops.decide(reviewer, view["review_id"], "fix", {"answer": 1}), 422, "response")
    assert ops.get(task_id)["status"] == "pending"  # nothing written

    fixed = ops.decide(reviewer, view["review_id"], "fix", {"response": {"category": "dog"}})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["decision"] == "fixed"
    task = ops.get(task_id)
    assert task["status"] == "completed"
    assert task["response"] == {"category": "dog"}
    assert task["prior_responses"] == [{"category": "cat"}]
    assert "confidence" not in task  # a person decided it, not the aggregator
    assert ops.callbacks(task_id) == {"completed": 1}
    with ops.db.unit_of_work(write=False) as s:
        row = s.scalar(select(Review).where(Review.id == view["review_id"]))
        assert row is not None and row.response == {"category": "dog"}


def test_reject_sends_the_task_back_to_other_workers_with_the_reason(ops: Ops) -> None:
    project, task_id, first = _waiting(ops)
    _, reviewer = ops.person("owner")
    view = ops.next_review(reviewer, project).json()
    _error(ops.decide(reviewer, view["review_id"], "reject", {}), 422, "reason")
    _error(ops.decide(reviewer, view["review_id"], "reject", {"reason": "  "}), 422, "reason")

    r = ops.decide(reviewer, view["review_id"], "reject", {"reason": REASON})
    assert r.status_code == 200, r.text
    assert (r.json()["decision"], r.json()["task_status"]) == ("rejected", "pending")
    assert ops.get(task_id)["status"] == "pending"
    assert ops.callbacks(task_id) == {}
    # The labels are superseded: marked in the labels report, left out of agreement.
    labels = ops.ok("GET", f"/api/tasks/{task_id}/labels")
    assert [x["superseded"] for x in labels] == [True, True]
    assert ops.ok("GET", f"/api/projects/{project}/agreement")["labels"] == 0
    # Those who labeled it are not offered it again; others are, with the reason.
    for _, w in first:
        assert (
            ops.http.post("/api/work/next", params={"project": project}, headers=w).status_code
            == 204
        )
    second = [ops.person() for _ in range(2)]
    for _, w in second:
        lease = ops.ok("POST", "/api/work/next", params={"project": project}, headers=w)
        assert lease["task"]["task_id"] == task_id
        assert lease["task"]["rework"] == {"review_comment": REASON}
        submitted = ops.ok(
            "POST",
            f"/api/work/{lease['assignment_id']}/submit",
            json={"response": {"category": "dog"}},
            headers=w,
        )
        assert submitted["status"] == "pending"
    labels = ops.ok("GET", f"/api/tasks/{task_id}/labels")
    assert [x["superseded"] for x in labels] == [True, True, False, False]
    assert ops.ok("GET", f"/api/projects/{project}/agreement")["labels"] == 2
    # Reviewed again (the project reviews all): the fresh labels' answer is the candidate.
    again = ops.next_review(reviewer, project).json()
    assert again["review_id"] != view["review_id"]
    assert again["candidate"] == {"category": "dog"}
    assert [x["worker"] for x in again["labels"]] == [e for e, _ in second]
    assert "rework" in again["task"]
    assert ops.decide(reviewer, again["review_id"], "accept").status_code == 200
    task = ops.get(task_id)
    assert (task["status"], task["response"]) == ("completed", {"category": "dog"})
    assert "customer_review_status" not in task  # a reviewer is not the customer
    assert ops.callbacks(task_id) == {"completed": 1}
    assert ops.counts(project) == {
        "awaiting": 0,
        "in_review": 0,
        "accepted": 1,
        "fixed": 0,
        "rejected": 1,
    }
    # Completed: the labelers' view no longer carries the rework note.
    with ops.db.unit_of_work(write=False) as s:
        assert s.scalar(select(Task.rework).where(Task.task_id == task_id)) is None


# --- who may review ----------------------------------------------------------------------------


def test_a_labeler_never_reviews_their_own_task(ops: Ops) -> None:
    project = ops.project({"mode": "all"})
    task_id = ops.task(project)
    # A reviewer may label too (reviewers are workers), but not review what they labeled.
    _, both = ops.person("reviewer")
    ops.label(both, project, "cat")
    assert ops.next_review(both, project).status_code == 204
    _, other = ops.person("reviewer")
    assert ops.next_review(other, project).json()["task"]["task_id"] == task_id


def test_only_reviewers_managers_admins_and_owners_review(ops: Ops) -> None:
    """An annotator is refused (the other roles review in the tests above: reviewer, manager,
    admin, owner)."""
    project, _, _ = _waiting(ops, k=1)
    _, annotator = ops.person("annotator")
    r = ops.next_review(annotator, project)
    assert r.status_code == 403, r.text
    _, reviewer = ops.person("reviewer")
    view = ops.next_review(reviewer, project).json()
    for decision, body in (
        ("accept", None),
        ("fix", {"response": {"category": "dog"}}),
        ("reject", {"reason": "no"}),
        ("heartbeat", None),
        ("release", None),
    ):
        assert ops.decide(annotator, view["review_id"], decision, body).status_code == 403
    # An API key is not a reviewer: the review routes take a person's session.
    r = ops.http.post("/api/review/next", params={"project": project}, auth=ops.key)
    assert r.status_code == 401, r.text
    # Another reviewer cannot decide a review leased to someone else.
    _, other = ops.person("manager")
    _error(ops.decide(other, view["review_id"], "accept"), 409, "review_id")
    assert ops.decide(reviewer, view["review_id"], "accept").status_code == 200


# --- leases ------------------------------------------------------------------------------------


def test_a_review_lease_is_extended_released_and_reclaimed_when_expired(
    ops: Ops, server: LiveServer, settings: Settings
) -> None:
    project, task_id, _ = _waiting(ops, k=1)
    (_, first), (_, second) = ops.person("reviewer"), ops.person("reviewer")
    view = ops.next_review(first, project).json()
    beat = ops.decide(first, view["review_id"], "heartbeat")
    assert beat.status_code == 200 and beat.json()["lease_expires_at"] >= view["lease_expires_at"]
    # Released: back in the queue, and another reviewer takes it.
    released = ops.decide(first, view["review_id"], "release")
    assert released.json()["status"] == "awaiting"
    assert ops.next_review(second, project).json()["review_id"] == view["review_id"]
    _error(ops.decide(first, view["review_id"], "accept"), 409, "review_id")

    # The lease runs out; the job runner's reaper puts it back in the queue.
    past = datetime.now(UTC) - timedelta(seconds=1)
    with ops.db.unit_of_work() as s:
        s.execute(update(Review).where(Review.id == view["review_id"]).values(expires_at=past))
    assert JobRunner(ops.db, settings, clock=Clock()).reap_leases(force=True) >= 1
    with ops.db.unit_of_work(write=False) as s:
        row = s.scalar(select(Review).where(Review.id == view["review_id"]))
        assert row is not None and (row.status, row.reviewer_id) == ("awaiting", None)
    assert ops.counts(project)["awaiting"] == 1
    _error(ops.decide(second, view["review_id"], "accept"), 409, "review_id")
    assert ops.next_review(first, project).json()["review_id"] == view["review_id"]
    assert ops.decide(first, view["review_id"], "accept").status_code == 200
    assert ops.callbacks(task_id) == {"completed": 1}


def test_an_expired_review_lease_is_reclaimed_by_the_next_reviewer_too(ops: Ops) -> None:
    project, _, _ = _waiting(ops, k=1)
    (_, first), (_, second) = ops.person("reviewer"), ops.person("reviewer")
    view = ops.next_review(first, project).json()
    assert ops.next_review(second, project).status_code == 204
    past = datetime.now(UTC) - timedelta(seconds=1)
    with ops.db.unit_of_work() as s:
        s.execute(update(Review).where(Review.id == view["review_id"]).values(expires_at=past))
    assert ops.next_review(second, project).json()["review_id"] == view["review_id"]


def test_a_task_canceled_while_waiting_leaves_the_queue(ops: Ops) -> None:
    project, task_id, _ = _waiting(ops, k=1)
    ops.ok("POST", f"/v1/task/{task_id}/cancel")
    assert ops.queue(project)["items"] == []
    assert ops.counts(project)["awaiting"] == 0
    _, reviewer = ops.person("reviewer")
    assert ops.next_review(reviewer, project).status_code == 204


# --- the queue ---------------------------------------------------------------------------------


def test_the_review_queue_is_oldest_first_and_keyset_paged(ops: Ops) -> None:
    project = ops.project({"mode": "all"})
    tasks = [ops.task(project) for _ in range(5)]
    _, worker = ops.person()
    for _ in tasks:
        ops.label(worker, project, "bird")
    page = ops.queue(project, limit=2)
    seen = [x["task_id"] for x in page["items"]]
    while page["next_token"]:
        page = ops.queue(project, limit=2, next_token=page["next_token"])
        seen += [x["task_id"] for x in page["items"]]
    assert seen == tasks  # labeled in task order, so waiting in task order
    item = ops.queue(project, limit=1)["items"][0]
    assert item["candidate"] == {"category": "bird"} and item["reason"] == "all"
    assert item["in_review"] is False and item["waiting_since"]
    _error(
        ops.http.get(
            f"/api/projects/{project}/review-queue",
            params={"next_token": "yesterday"},
            auth=ops.key,
        ),
        422,
        "next_token",
    )
    # Operators read it with their session; annotators may not.
    _, manager = ops.person("manager")
    r = ops.http.get(f"/api/projects/{project}/review-queue", headers=manager)
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    r = ops.http.get(f"/api/projects/{project}/review-queue", headers=worker)
    assert r.status_code == 403
    r = ops.http.get("/api/projects/nope/review-queue", auth=ops.key)
    _error(r, 404, "name")
