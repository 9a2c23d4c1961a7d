"""Gold and qualification through HTTP: settings through the ``scaleapi`` client, training
tasks first with feedback, live tasks only after passing, failing and retaking, hidden gold at
the project's rate in the shape of live work, heartbeat/release/skip/expiry on quality leases,
and the workers' project list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from scaleapi.tasks import TaskType
from sqlalchemy import func, select, update

from steelyard.accounts import security
from steelyard.clock import Clock
from steelyard.db.engine import Database
from steelyard.jobs.runner import JobRunner
from steelyard.workflow.models import Assignment, QualityAnswer
from tests.api.helpers import PASSWORD, client, login, make_worker, name, scale_error
from tests.conftest import LiveServer, Org

CATEGORIES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def _worker(http: httpx.Client, db: Database, org: Org, hashed: str) -> dict[str, str]:
    return login(http, make_worker(db, org.org_id, password_hash=hashed))


def _project(server: LiveServer, org: Org, **params: Any) -> str:
    project = name("gold")
    client(server, org.live_key).create_project(
        project, TaskType.Categorization, params={"instruction": "Pick the animal.", **params}
    )
    return project


def _live(server: LiveServer, org: Org, project: str, n: int) -> list[str]:
    c = client(server, org.live_key)
    return [
        str(
            c.create_task(
                TaskType.Categorization,
                project=project,
                attachment=f"live {i}",
                attachment_type="text",
                categories=CATEGORIES,
            ).id
        )
        for i in range(n)
    ]


def _quality(http: httpx.Client, org: Org, kind: str, project: str, answers: list[str]) -> None:
    for i, answer in enumerate(answers):
        r = http.post(
            f"/v1/{kind}_tasks/categorization",
            auth=(org.live_key, ""),
            json={
                "project": project,
                "attachment": f"{kind} {i}",
                "attachment_type": "text",
                "categories": CATEGORIES,
                "expected_response": {"category": answer},
            },
        )
        assert r.status_code == 200, r.text


def _next(http: httpx.Client, worker: dict[str, str], project: str | None = None) -> Any:
    r = http.post("/api/work/next", params={"project": project} if project else {}, headers=worker)
    assert r.status_code in (200, 204), r.text
    return r.json() if r.status_code == 200 else None


def _submit(http: httpx.Client, worker: dict[str, str], offer: Any, category: str) -> Any:
    r = http.post(
        f"/api/work/{offer['assignment_id']}/submit",
        json={"response": {"category": category}},
        headers=worker,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _expected(db: Database, assignment_id: str) -> str:
    from steelyard.tasks.models import QualityTask

    with db.unit_of_work(write=False) as s:
        item = s.scalar(
            select(QualityTask)
            .join(QualityAnswer, QualityAnswer.quality_task_id == QualityTask.id)
            .where(QualityAnswer.id == assignment_id)
        )
        assert item is not None
        return str(item.expected_response["category"])


def test_settings_through_the_client_are_checked_and_echoed(
    server: LiveServer, http: httpx.Client, org: Org
) -> None:
    c = client(server, org.live_key)
    project = name("gold")
    created = c.create_project(
        project,
        TaskType.Categorization,
        params={"gold_rate": 0.1, "qualification": {"pass_mark": 0.8, "tasks": 2}},
    )
    assert created.params["gold_rate"] == 0.1
    assert created.params["qualification"] == {"pass_mark": 0.8, "tasks": 2}
    # A pipeline change keeps the gold settings (they are not redundancy).
    updated = c.update_project(project, pipeline="consensus_task", consensus_attempts=3)
    assert updated.params["gold_rate"] == 0.1 and updated.params["consensus_attempts"] == 3
    task = c.create_task(
        TaskType.Categorization,
        project=project,
        attachment="x",
        attachment_type="text",
        categories=CATEGORIES,
    )
    assert "gold_rate" not in task.params and "qualification" not in task.params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"gold_rate": 0.9}, "params.gold_rate"),
        ({"gold_rate": "0.1"}, "params.gold_rate"),
        ({"qualification": {"pass_mark": 0}}, "params.qualification.pass_mark"),
        ({"qualification": {"pass_mark": 0.8, "tasks": 0}}, "params.qualification.tasks"),
        (
            {"qualification": {"pass_mark": 0.8, "max_attempts": True}},
            "params.qualification.max_attempts",
        ),
        ({"qualification": {"pass_mark": 0.8, "retries": 2}}, "params.qualification.retries"),
        ({"qualification": 0.8}, "params.qualification"),
    ],
)
def test_bad_gold_settings_are_400_naming_the_field(
    http: httpx.Client, org: Org, params: dict[str, Any], field: str
) -> None:
    r = http.post(
        "/v1/projects",
        auth=(org.live_key, ""),
        json={"type": "categorization", "name": name("bad"), "params": params},
    )
    assert field in scale_error(r, 400)


def test_qualification_first_then_live_work(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _project(server, org, qualification={"pass_mark": 0.5, "tasks": 2})
    _quality(http, org, "training", project, ["cat", "dog", "bird"])
    _live(server, org, project, 2)
    worker = _worker(http, db, org, password_hash)
    listed = {p["name"]: p for p in http.get("/api/work/projects", headers=worker).json()}
    assert listed[project]["qualification"]["status"] == "not_started"
    assert listed[project]["qualification"]["required"] == 2

    # Training first, even without ?project=, one at a time, in creation order.
    first = _next(http, worker)
    assert first["training"]["status"] == "not_started"
    assert first["task"]["params"]["attachment"] == "training 0"
    assert set(first["task"]) == {"task_id", "type", "instruction", "params", "project"}
    again = _next(http, worker)
    assert again["assignment_id"] == first["assignment_id"]
    wrong = _submit(http, worker, first, "dog")
    assert wrong["feedback"] == {
        "expected_response": {"category": "cat"},
        "score": 0.0,
        "correct": False,
    }
    assert wrong["qualification"]["status"] == "in_progress"
    second = _next(http, worker, project)
    assert second["task"]["params"]["attachment"] == "training 1"
    right = _submit(http, worker, second, "dog")
    assert right["feedback"]["correct"] is True
    # Mean 0.5 over the 2 required: passed, and live work follows.
    assert right["qualification"]["status"] == "passed"
    live = _next(http, worker)
    assert "training" not in live and live["task"]["params"]["attachment"].startswith("live")
    listed = {p["name"]: p for p in http.get("/api/work/projects", headers=worker).json()}
    assert listed[project]["qualification"]["status"] == "passed"
    assert listed[project]["qualification"]["score"] == 0.5


def test_failed_qualification_keeps_live_work_away_and_may_be_retaken(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _project(server, org, qualification={"pass_mark": 1.0, "max_attempts": 2})
    _quality(http, org, "training", project, ["cat"])
    _live(server, org, project, 1)
    worker = _worker(http, db, org, password_hash)
    offer = _next(http, worker, project)
    failed = _submit(http, worker, offer, "bird")
    assert failed["qualification"]["status"] == "failed"
    assert failed["qualification"]["attempts_left"] == 1
    # No live task of the project without a pass; without ?project= no retake is forced.
    assert _next(http, worker) is None
    retake = _next(http, worker, project)
    assert retake["training"]["attempt"] == 2
    assert _submit(http, worker, retake, "bird")["qualification"]["attempts_left"] == 0
    r = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert r.status_code == 403 and r.json()["error"]["field"] == "project"
    assert "did not pass" in r.json()["error"]["message"]
    listed = {p["name"]: p for p in http.get("/api/work/projects", headers=worker).json()}
    assert listed[project]["qualification"]["status"] == "failed"
    # Another worker who passes gets the live task.
    other = _worker(http, db, org, password_hash)
    _submit(http, other, _next(http, other, project), "cat")
    assert _next(http, other, project)["task"]["params"]["attachment"] == "live 0"


def test_gold_is_served_at_the_rate_and_looks_like_live_work(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _project(server, org, gold_rate=0.25)
    _quality(http, org, "evaluation", project, ["cat"] * 10)
    live_ids = set(_live(server, org, project, 30))
    worker = _worker(http, db, org, password_hash)
    served: list[bool] = []
    shapes = set()
    for _ in range(24):
        offer = _next(http, worker)
        assert offer is not None
        task = offer["task"]
        shapes.add(
            (
                tuple(sorted(offer)),
                tuple(sorted(task)),
                tuple(sorted(task["params"])),
                task["instruction"],
                task["project"],
                len(task["task_id"]),
            )
        )
        is_gold = offer["task"]["task_id"] not in live_ids
        served.append(is_gold)
        answer = _submit(http, worker, offer, "cat")
        assert set(answer) == {"assignment_id", "task_id", "status", "submitted_at"}
        assert answer["task_id"] == offer["task"]["task_id"]
        assert answer["status"] == "completed"
    assert len(shapes) == 1
    # 24 items at 0.25: six gold, to within one.
    assert 5 <= sum(served) <= 7
    with db.unit_of_work(write=False) as s:
        rows = s.execute(
            select(QualityAnswer.status, QualityAnswer.score, QualityAnswer.correct).where(
                QualityAnswer.org_id == org.org_id,
                QualityAnswer.kind == "evaluation",
                QualityAnswer.status == "submitted",
            )
        ).all()
    assert len(rows) == sum(served)
    assert all(r.score == 1.0 and r.correct for r in rows)


@pytest.mark.parametrize(
    ("params", "live_status"),
    [
        # One label per task, but every task waits for a reviewer: live labels say pending.
        ({"review": {"mode": "all"}}, "pending"),
        # A single label's confidence (0.8) is below agreement_below: it waits for review.
        ({"review": {"mode": "disagreement", "agreement_below": 0.9}}, "pending"),
        # Adaptive from one label, and one label is confident enough: live labels complete.
        (
            {
                "pipeline": "consensus_task",
                "redundancy": {"min": 1, "max": 3, "target_confidence": 0.7},
            },
            "completed",
        ),
        (
            {
                "pipeline": "consensus_task",
                "redundancy": {"min": 1, "max": 3, "target_confidence": 0.9},
            },
            "pending",
        ),
    ],
)
def test_a_gold_answer_says_what_a_live_label_would(
    server: LiveServer,
    http: httpx.Client,
    db: Database,
    org: Org,
    password_hash: str,
    params: dict[str, Any],
    live_status: str,
) -> None:
    """The submit answer never tells gold from live work: under review or adaptive redundancy
    a gold answer says what a live task's first label would (it once said ``completed``
    whenever the project asked for one label, and ``pending`` otherwise)."""
    project = _project(server, org, gold_rate=0.5, **params)
    _quality(http, org, "evaluation", project, ["cat"] * 6)
    live_ids = set(_live(server, org, project, 6))
    worker = _worker(http, db, org, password_hash)
    statuses: dict[bool, set[str]] = {True: set(), False: set()}
    for _ in range(8):
        offer = _next(http, worker)
        assert offer is not None
        statuses[offer["task"]["task_id"] not in live_ids].add(
            _submit(http, worker, offer, "cat")["status"]
        )
    assert statuses == {False: {live_status}, True: {live_status}}


def test_no_gold_without_live_work_and_each_gold_item_once(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _project(server, org, gold_rate=0.5)
    _quality(http, org, "evaluation", project, ["dog", "cat"])
    worker = _worker(http, db, org, password_hash)
    # No live task: nothing at all, not gold.
    assert _next(http, worker) is None
    live_ids = set(_live(server, org, project, 8))
    gold_seen: list[str] = []
    for _ in range(8):
        offer = _next(http, worker)
        if offer is None:
            break
        if offer["task"]["task_id"] not in live_ids:
            gold_seen.append(offer["task"]["task_id"])
        _submit(http, worker, offer, "cat")
    # Two gold items in all, each once, however often gold came due.
    assert len(gold_seen) == 2 and len(set(gold_seen)) == 2


def test_heartbeat_release_skip_and_expiry_on_gold(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    # Every item is gold while gold is left (rate 0.5 with the phase; force with many tries).
    project = _project(server, org, gold_rate=0.5)
    _quality(http, org, "evaluation", project, ["cat", "dog"])
    live_ids = set(_live(server, org, project, 6))
    worker = _worker(http, db, org, password_hash)
    offer = _next(http, worker)
    while offer["task"]["task_id"] in live_ids:
        _submit(http, worker, offer, "cat")
        offer = _next(http, worker)
    gold_task = offer["task"]["task_id"]
    aid = offer["assignment_id"]
    beat = http.post(f"/api/work/{aid}/heartbeat", headers=worker)
    assert beat.status_code == 200 and beat.json()["status"] == "active"
    released = http.post(f"/api/work/{aid}/release", headers=worker)
    assert released.json()["status"] == "released"
    assert (
        http.post(
            f"/api/work/{aid}/submit", json={"response": {"category": "cat"}}, headers=worker
        ).status_code
        == 409
    )
    # Expiry: take a lease, move it into the past, and let the reaper reclaim it.
    with db.unit_of_work() as s:
        s.execute(
            update(QualityAnswer)
            .where(QualityAnswer.id == aid)
            .values(status="active", expires_at=datetime.now(UTC) - timedelta(seconds=5))
        )
    runner = JobRunner(db, server.settings, clock=Clock())
    assert runner.reap_leases(force=True) >= 1
    with db.unit_of_work(write=False) as s:
        assert s.scalar(select(QualityAnswer.status).where(QualityAnswer.id == aid)) == "expired"
    # Skip: the item never comes back to this worker.
    skipped_any = False
    for _ in range(10):
        offer = _next(http, worker)
        if offer is None:
            break
        if offer["task"]["task_id"] not in live_ids:
            r = http.post(f"/api/work/{offer['assignment_id']}/skip", headers=worker)
            assert r.json()["status"] == "skipped"
            skipped_any = True
            continue
        _submit(http, worker, offer, "cat")
    assert skipped_any
    assert gold_task


def test_one_lease_per_worker_across_live_and_gold(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _project(server, org, gold_rate=0.5)
    _quality(http, org, "evaluation", project, ["cat"] * 3)
    _live(server, org, project, 3)
    worker = _worker(http, db, org, password_hash)
    first = _next(http, worker)
    for _ in range(3):
        assert _next(http, worker)["assignment_id"] == first["assignment_id"]
    assert _active_leases(db, first["assignment_id"]) == 1


def _active_leases(db: Database, assignment_id: str) -> int:
    """The active leases (live and quality) of the worker holding ``assignment_id``."""
    with db.unit_of_work(write=False) as s:
        user = s.scalar(
            select(Assignment.user_id).where(Assignment.id == assignment_id)
        ) or s.scalar(select(QualityAnswer.user_id).where(QualityAnswer.id == assignment_id))
        live = s.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(Assignment.user_id == user, Assignment.status == "active")
        )
        gold = s.scalar(
            select(func.count())
            .select_from(QualityAnswer)
            .where(QualityAnswer.user_id == user, QualityAnswer.status == "active")
        )
        return int(live or 0) + int(gold or 0)


def test_a_quality_lease_is_the_holders_only_and_training_is_not_skipped(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    project = _project(server, org, qualification={"pass_mark": 0.5})
    _quality(http, org, "training", project, ["cat"])
    worker, other = (_worker(http, db, org, password_hash) for _ in range(2))
    offer = _next(http, worker)
    aid = offer["assignment_id"]
    unknown = http.post("/api/work/000000000000000000000000/heartbeat", headers=other)
    for path in ("heartbeat", "release", "skip", "submit"):
        body = {"response": {"category": "cat"}} if path == "submit" else None
        r = http.post(f"/api/work/{aid}/{path}", json=body, headers=other)
        # Someone else's quality lease looks exactly like an assignment that does not exist.
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == unknown.json()["error"]["code"]
    r = http.post(f"/api/work/{aid}/skip", headers=worker)
    assert r.status_code == 409 and "release" in r.json()["error"]["message"]
    bad = http.post(
        f"/api/work/{aid}/submit", json={"response": {"category": "horse"}}, headers=worker
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "response.category"
    assert _submit(http, worker, offer, "cat")["feedback"]["correct"] is True
    # Nothing more to train on, and no live task: nothing to do.
    assert _next(http, worker) is None


def test_the_pay_offer_comes_with_gold_and_live_items_alike(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    """``next`` shows the rate before the worker starts (issue 10), on every item: a ``pay``
    present on live items and missing on gold would tell gold apart."""
    pay = {"piece_rate_minor": 12, "currency": "USD"}
    project = _project(server, org, gold_rate=0.5, pay=pay)
    _quality(http, org, "evaluation", project, ["cat"] * 4)
    live_ids = set(_live(server, org, project, 6))
    worker = _worker(http, db, org, password_hash)
    kinds = set()
    for _ in range(8):
        offer = _next(http, worker)
        assert offer is not None
        kinds.add(offer["task"]["task_id"] in live_ids)
        assert offer["pay"] == {"rate_minor": 12, "currency": "USD", "estimated_seconds": None}
        _submit(http, worker, offer, "cat")
    assert kinds == {True, False}  # both kinds were served, each with the offer
    # A project without pay settings shows none.
    plain = _project(server, org)
    _live(server, org, plain, 1)
    offer = _next(http, worker, plain)
    assert offer is not None and "pay" not in offer
