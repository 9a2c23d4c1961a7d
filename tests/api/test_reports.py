"""Reports for operators and customers, through real HTTP: progress, a task's labels, agreement
and the worker table; who may read them, and what each environment sees."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.workflow import agreement_report
from steelyard.workflow.models import Assignment
from tests.api.helpers import auth, login, make_worker
from tests.conftest import Org

CATEGORIES = ["cat", "dog", "bird"]
REPORTS = ("progress", "agreement", "workers")


def native_404(r: httpx.Response, field: str) -> None:
    assert r.status_code == 404, (r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == "not_found" and error["field"] == field, error


@dataclass
class Shop:
    """An organization's categorization project with batches, tasks and two workers' labels."""

    http: httpx.Client
    db: Database
    org: Org

    def key(self, env: str = "live") -> httpx.BasicAuth:
        return auth(self.org.test_key if env == "test" else self.org.live_key)

    def ok(self, method: str, path: str, env: str = "live", **kwargs: Any) -> Any:
        r = self.http.request(method, path, auth=self.key(env), **kwargs)
        assert r.status_code == 200, (method, path, r.status_code, r.text)
        return r.json()

    def project(self, name: str, env: str = "live", kind: str = "categorization") -> str:
        params = {"categories": CATEGORIES} if kind == "categorization" else None
        self.ok("POST", "/v1/projects", env, json={"type": kind, "name": name, "params": params})
        return name

    def batch(self, project: str, name: str, env: str = "live") -> str:
        self.ok("POST", "/v1/batches", env, json={"project": project, "name": name})
        return name

    def task(self, project: str, batch: str | None = None, env: str = "live") -> str:
        body: dict[str, Any] = {"project": project, "attachment": f"text {uuid.uuid4().hex}"}
        if batch:
            body["batch"] = batch
        return str(self.ok("POST", "/v1/task/categorization", env, json=body)["task_id"])

    def worker(self, role: str = "annotator") -> tuple[str, dict[str, str]]:
        email = make_worker(self.db, self.org.org_id, role=role)
        return email, login(self.http, email)

    def label(self, worker: dict[str, str], project: str, category: str) -> str:
        """The worker leases the project's next task and labels it; returns the task id."""
        lease = self.http.post("/api/work/next", params={"project": project}, headers=worker)
        assert lease.status_code == 200, lease.text
        done = self.http.post(
            f"/api/work/{lease.json()['assignment_id']}/submit",
            json={"response": {"category": category}},
            headers=worker,
        )
        assert done.status_code == 200, done.text
        return str(done.json()["task_id"])


@pytest.fixture
def shop(http: httpx.Client, db: Database, org: Org) -> Shop:
    return Shop(http, db, org)


def _as_key_basic(key: str) -> dict[str, Any]:
    return {"auth": auth(key)}


def _as_key_bearer(key: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {key}"}}


# --- progress -------------------------------------------------------------------------------


def test_progress_counts_by_status_overall_and_per_batch(shop: Shop) -> None:
    project = shop.project("shapes")
    first, second = shop.batch(project, "first"), shop.batch(project, "second")
    for _ in range(3):
        shop.task(project, first)
    shop.task(project, second)
    loose = shop.task(project)
    _, worker = shop.worker()
    labeled = shop.label(worker, project, "cat")  # the oldest pending task: in "first"
    shop.ok("POST", f"/v1/task/{loose}/cancel")

    r = shop.http.get(f"/api/projects/{project}/progress", auth=shop.key())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["project"] == project
    assert body["counts"] == {"pending": 3, "completed": 1, "canceled": 1, "error": 0}
    assert body["total"] == 5
    rows = {b["batch"]: b for b in body["batches"]}
    assert [b["batch"] for b in body["batches"]] == ["first", "second", None]
    assert rows["first"]["counts"] == {"pending": 2, "completed": 1, "canceled": 0, "error": 0}
    assert rows["first"]["total"] == 3 and rows["first"]["batch_status"] == "in_progress"
    assert rows["second"]["counts"]["pending"] == 1 and rows["second"]["total"] == 1
    assert rows[None]["counts"]["canceled"] == 1 and rows[None]["batch_status"] is None
    # The counters agree with the tasks themselves, as Scale's list sees them.
    listed = shop.ok("GET", "/v1/tasks", params={"project": project, "status": "pending"})
    assert listed["total"] == 3
    assert labeled in {t["task_id"] for t in shop.ok("GET", "/v1/tasks")["docs"]}


def test_an_empty_project_has_zero_counts(shop: Shop) -> None:
    project = shop.project("empty")
    body = shop.ok("GET", f"/api/projects/{project}/progress")
    assert body == {
        "project": project,
        "counts": {"pending": 0, "completed": 0, "canceled": 0, "error": 0},
        "total": 0,
        "batches": [],
        "review": {"awaiting": 0, "in_review": 0, "accepted": 0, "fixed": 0, "rejected": 0},
    }


def test_test_and_live_environments_report_apart(shop: Shop) -> None:
    """A project name can exist in both environments: each key sees its own."""
    shop.project("twin")
    shop.project("twin", env="test")
    for _ in range(3):
        shop.task("twin")
    shop.task("twin", env="test")  # completes at once with a synthetic response
    live = shop.ok("GET", "/api/projects/twin/progress")
    test = shop.ok("GET", "/api/projects/twin/progress", env="test")
    assert live["counts"]["pending"] == 3 and live["total"] == 3
    assert test["counts"]["completed"] == 1 and test["total"] == 1
    # An operator's session is the live environment.
    _, manager = shop.worker("manager")
    r = shop.http.get("/api/projects/twin/progress", headers=manager)
    assert r.status_code == 200 and r.json()["total"] == 3, r.text
    # A project only in the live environment is unknown to the test key, and the other way.
    shop.project("only-live")
    native_404(shop.http.get("/api/projects/only-live/workers", auth=shop.key("test")), "name")
    shop.project("only-test", env="test")
    native_404(shop.http.get("/api/projects/only-test/agreement", auth=shop.key()), "name")


# --- labels ---------------------------------------------------------------------------------


def test_labels_of_a_task_in_submission_order(shop: Shop) -> None:
    project = shop.project("pets")
    task = shop.task(project)
    pending = shop.task(project)
    email, worker = shop.worker()
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert shop.label(worker, project, "dog") == task

    labels = shop.ok("GET", f"/api/tasks/{task}/labels")
    assert len(labels) == 1
    (label,) = labels
    assert set(label) == {"worker", "response", "submitted_at", "superseded"}
    assert label["worker"] == email
    assert label["superseded"] is False
    assert label["response"] == {"category": "dog"}
    at = datetime.fromisoformat(label["submitted_at"].replace("Z", "+00:00"))
    assert before < at < datetime.now(UTC) + timedelta(seconds=1)
    assert label["submitted_at"].endswith("Z")
    assert shop.ok("GET", f"/api/tasks/{pending}/labels") == []
    # A live task is not the test environment's, and the other way round.
    native_404(shop.http.get(f"/api/tasks/{task}/labels", auth=shop.key("test")), "task_id")
    test_task = shop.task(shop.project("pets", env="test"), env="test")
    assert shop.ok("GET", f"/api/tasks/{test_task}/labels", env="test") == []
    native_404(shop.http.get(f"/api/tasks/{test_task}/labels", auth=shop.key()), "task_id")
    native_404(shop.http.get("/api/tasks/nope/labels", auth=shop.key()), "task_id")


# --- who may read ---------------------------------------------------------------------------


def _paths(project: str, task: str) -> list[str]:
    return [f"/api/projects/{project}/{report}" for report in REPORTS] + [
        f"/api/tasks/{task}/labels"
    ]


def test_every_report_takes_a_key_basic_or_bearer_and_an_operators_session(
    shop: Shop, http: httpx.Client
) -> None:
    project = shop.project("access")
    task = shop.task(project)
    credentials: dict[str, dict[str, Any]] = {
        "Basic live key": _as_key_basic(shop.org.live_key),
        "Bearer live key": _as_key_bearer(shop.org.live_key),
        # Basic with the key as username and an empty password, written out by hand.
        "raw Basic": {
            "headers": {
                "Authorization": "Basic "
                + base64.b64encode(f"{shop.org.live_key}:".encode()).decode()
            }
        },
    }
    for role in ("manager", "admin", "owner"):
        credentials[f"{role} session"] = {"headers": shop.worker(role)[1]}
    answers: dict[str, list[Any]] = {}
    for who, kwargs in credentials.items():
        for path in _paths(project, task):
            r = http.get(path, **kwargs)
            assert r.status_code == 200, (who, path, r.status_code, r.text)
            answers.setdefault(path, []).append(r.json())
    # The same answer whoever asks (all of them see the live environment).
    for path, seen in answers.items():
        assert all(s == seen[0] for s in seen), (path, seen)


def test_reports_refuse_annotators_reviewers_and_no_credential(
    shop: Shop, http: httpx.Client
) -> None:
    project = shop.project("refuse")
    task = shop.task(project)
    for role in ("annotator", "reviewer"):
        _, headers = shop.worker(role)
        for path in _paths(project, task):
            r = http.get(path, headers=headers)
            assert r.status_code == 403, (role, path, r.status_code, r.text)
            assert role in r.json()["error"]["message"], r.text
    for path in _paths(project, task):
        r = http.get(path)
        assert r.status_code == 401, (path, r.text)
        message = r.json()["error"]["message"]
        assert "API key" in message and "POST /api/auth/login" in message, message
        bad = http.get(path, auth=auth("live_" + "0" * 32))
        assert bad.status_code == 401, (path, bad.text)


def test_another_organization_gets_404_for_every_report(
    shop: Shop, http: httpx.Client, other_org: Org
) -> None:
    project = shop.project("private")
    _, worker = shop.worker()
    shop.task(project)
    task = shop.label(worker, project, "bird")
    other = Shop(http, shop.db, other_org)
    _, their_manager = other.worker("manager")
    for kwargs in (
        _as_key_basic(other_org.live_key),
        _as_key_bearer(other_org.live_key),
        {"headers": their_manager},
    ):
        for path in _paths(project, task):
            r = http.get(path, **kwargs)
            native_404(r, "task_id" if "/tasks/" in path else "name")
    # Still there for its owner.
    assert shop.ok("GET", f"/api/tasks/{task}/labels")[0]["response"] == {"category": "bird"}


def test_unknown_project_names_the_field(shop: Shop) -> None:
    for report in REPORTS:
        r = shop.http.get(f"/api/projects/no-such-project/{report}", auth=shop.key())
        native_404(r, "name")
        assert "no-such-project" in r.json()["error"]["message"]


def test_project_names_with_a_slash(shop: Shop) -> None:
    project = shop.project("team/a")
    shop.task(project)
    body = shop.ok("GET", "/api/projects/team%2Fa/progress")
    assert body["project"] == "team/a" and body["total"] == 1


# --- the worker table -----------------------------------------------------------------------


def test_worker_table(shop: Shop, db: Database) -> None:
    project = shop.project("crew")
    for _ in range(4):
        shop.task(project)
    ann, ann_headers = shop.worker()
    bob, bob_headers = shop.worker()
    idle, idle_headers = shop.worker()
    shop.label(ann_headers, project, "cat")
    shop.label(ann_headers, project, "dog")
    shop.label(bob_headers, project, "cat")
    # Bob skips the next one, which goes to the third worker, who lets the lease run out.
    passed = shop.http.post("/api/work/next", params={"project": project}, headers=bob_headers)
    assert passed.status_code == 200, passed.text
    skip = f"/api/work/{passed.json()['assignment_id']}/skip"
    assert shop.http.post(skip, headers=bob_headers).status_code == 200
    lease = shop.http.post("/api/work/next", params={"project": project}, headers=idle_headers)
    assert lease.status_code == 200, lease.text
    with db.unit_of_work() as session:
        session.execute(
            update(Assignment)
            .where(Assignment.id == lease.json()["assignment_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=5))
        )

    body = shop.ok("GET", f"/api/projects/{project}/workers")
    assert body["project"] == project
    rows = {row["worker"]: row for row in body["workers"]}
    assert body["workers"][0]["worker"] == ann  # most labels first
    assert set(rows) == {ann, bob, idle}
    assert (rows[ann]["labels"], rows[ann]["assignments"], rows[ann]["expired"]) == (2, 2, 0)
    assert (rows[bob]["labels"], rows[bob]["assignments"], rows[bob]["expired"]) == (1, 2, 0)
    assert (rows[ann]["skipped"], rows[bob]["skipped"], rows[idle]["skipped"]) == (0, 1, 0)
    assert (rows[idle]["labels"], rows[idle]["assignments"], rows[idle]["expired"]) == (0, 1, 1)
    assert rows[ann]["mean_active_seconds"] >= 0.0
    assert rows[idle]["mean_active_seconds"] is None
    for row in rows.values():  # no gold answered (tests/api/test_worker_quality.py has some)
        assert (row["gold_accuracy"], row["gold_answered"], row["gold_interval"]) == (None, 0, None)
        assert row["pause"] is None
    assert any("gold" in note for note in body["notes"])
    # A project of the same organization with no work yet has an empty table.
    assert shop.ok("GET", f"/api/projects/{shop.project('quiet')}/workers")["workers"] == []


# --- agreement ------------------------------------------------------------------------------


def test_agreement_over_http_with_one_label_per_task(shop: Shop) -> None:
    """Today a task completes on its first label, so no task has two answers: every statistic is
    null, and the answer says why. (The statistics: tests/workflow/test_agreement_report.py.)"""
    project = shop.project("agree")
    for _ in range(2):
        shop.task(project)
    _, worker = shop.worker()
    shop.label(worker, project, "cat")
    shop.label(worker, project, "dog")
    body = shop.ok("GET", f"/api/projects/{project}/agreement")
    assert body["computed"] is True and body["reason"] is None
    assert (body["labels"], body["truncated"], body["type"]) == (2, False, "categorization")
    (question,) = body["questions"]
    assert question["question"] == "category"
    assert (question["labels"], question["tasks"], question["tasks_with_two_or_more"]) == (2, 2, 0)
    assert question["krippendorff_alpha"] is None and question["fleiss_kappa"] is None
    assert any("two answers" in n for n in question["notes"]), question


def test_agreement_is_not_computed_for_other_task_types(shop: Shop) -> None:
    project = shop.project("boxes", kind="imageannotation")
    body = shop.ok("GET", f"/api/projects/{project}/agreement")
    assert body["computed"] is False
    assert "categorical" in body["reason"] and "imageannotation" in body["reason"]
    assert body["questions"] == []


def test_agreement_reads_the_newest_tasks_up_to_the_cap(shop: Shop, db: Database) -> None:
    """Past the cap the newest tasks' labels are kept, whole, and ``truncated`` says so."""
    project = shop.project("capped")
    tasks = [shop.task(project) for _ in range(4)]
    _, worker = shop.worker()
    answers = ["cat", "dog", "bird", "cat"]
    assert [shop.label(worker, project, a) for a in answers] == tasks  # oldest first
    actor = Actor(org_id=shop.org.org_id, is_test=False, kind="api_key", role="admin")
    with db.unit_of_work(write=False) as session:
        capped = agreement_report.read_labels(session, actor, project, cap=2)
        whole = agreement_report.read_labels(session, actor, project, cap=4)
    assert (capped.labels, capped.truncated) == (2, True)
    assert capped.questions["category"].values == ["cat", "bird"]  # the two newest tasks
    assert (whole.labels, whole.truncated) == (4, False)
    assert sorted(whole.questions["category"].values) == sorted(answers)
    report = shop.ok("GET", f"/api/projects/{project}/agreement")
    assert (report["labels"], report["truncated"]) == (4, False)
    assert report["cap"] == agreement_report.MAX_LABELS
