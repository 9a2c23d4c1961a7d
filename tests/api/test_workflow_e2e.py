"""Issue 8's end-to-end check, through HTTP and the ``scaleapi`` client, as customers and
workers drive it: a consensus project (k = 3) with hidden gold, a qualification, review on
disagreement and worker quality, from task creation to the final callbacks.

1. Workers qualify on training tasks with feedback; one fails and gets no live work.
2. The qualified ones drain the batch; gold comes at the project's rate in the shape of live
   work; a worker who answers gold badly is paused with a reason, appeals, and a manager lifts
   the pause.
3. The tasks whose labels disagree wait for a reviewer (pending to the customer), who accepts
   one, fixes one and rejects one; the rejected one is relabeled by other workers who see the
   reason.
4. The customer rejects a completed task in an audit; other workers relabel it, seeing the
   comment.
5. The callbacks the job runner delivers: exactly one per completion, each carrying the
   response and confidence the engine's aggregator gives on the stored labels that count (or
   the reviewer's decision).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from scaleapi import ScaleClient
from scaleapi.tasks import TaskStatus, TaskType
from sqlalchemy import select

from steelyard.accounts import security
from steelyard.accounts.models import User
from steelyard.db.engine import Database
from steelyard.projects.models import Project
from steelyard.workflow import worker_models
from steelyard.workflow.aggregation import aggregate
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, name
from tests.conftest import LiveServer, Org

CATEGORIES = ["cat", "dog", "bird"]
K = 3
GOLD_RATE = 0.34
AGREEMENT_BELOW = 0.9
AUDIT_COMMENT = "Wrong: the picture shows a dog."
REVIEW_REASON = "Look again: the animal is a bird."
#: The live tasks and the answers their labels will carry, in order: unanimous ones complete
#: at once; three-way splits (confidence 1/3) wait for review.
PLAN: list[list[str]] = [
    ["cat"] * K,
    ["cat", "dog", "bird"],
    ["dog"] * K,
    ["dog", "bird", "cat"],
    ["bird"] * K,
    ["bird", "cat", "dog"],
    ["cat"] * K,
    ["dog"] * K,
]
SPLIT = {i for i, answers in enumerate(PLAN) if len(set(answers)) > 1}
TRAINING = ["cat", "dog"]
GOLD = ["cat", "dog", "bird", "cat", "dog", "bird", "cat", "dog", "bird", "cat"]


@dataclass
class Receiver:
    """Records every POST to it and answers 200."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.bodies.append(json.loads(raw))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield state
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@dataclass
class Worker:
    email: str
    headers: dict[str, str]
    #: Per item served in the project (training aside): whether it was gold.
    served: list[bool] = field(default_factory=list)


@dataclass
class Scenario:
    """What the customer created, and what the test drives the workers to answer."""

    http: httpx.Client
    project: str
    key: httpx.BasicAuth
    live: list[str]
    gold_answer: dict[str, str]
    #: Live task id → the next answers its labels are to carry.
    answers: dict[str, list[str]]
    shapes: set[tuple[Any, ...]] = field(default_factory=set)
    #: Live task id → the workers (emails) who labeled it, in order, every round.
    labeled_by: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: Live task id → the ``rework`` notes its labelers were shown.
    rework_seen: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def next(self, worker: Worker) -> httpx.Response:
        return self.http.post(
            "/api/work/next", params={"project": self.project}, headers=worker.headers
        )

    def work_one(
        self, worker: Worker, *, gold_wrong: bool = False, refused: list[Any] | None = None
    ) -> bool | None:
        """The worker takes and answers one item; ``None`` when there is nothing for them,
        else whether it was gold. A 403 (paused, unqualified) fails the test unless
        ``refused`` is given: it gets the error body."""
        r = self.next(worker)
        if r.status_code == 403 and refused is not None:
            refused.append(r.json())
            return None
        assert r.status_code in (200, 204), r.text
        if r.status_code == 204:
            return None
        offer = r.json()
        assert "training" not in offer
        task = offer["task"]
        task_id = task["task_id"]
        is_gold = task_id not in self.live
        if is_gold:
            right = self.gold_answer[task["params"]["attachment"]]
            answer = next(c for c in CATEGORIES if c != right) if gold_wrong else right
        else:
            answer = self.answers[task_id].pop(0)
            self.labeled_by[task_id].append(worker.email)
            self.rework_seen[task_id].append(task.get("rework"))
        if "rework" not in task:
            self.shapes.add(
                (
                    tuple(sorted(offer)),
                    tuple(sorted(task)),
                    tuple(sorted(task["params"])),
                    task["instruction"],
                    task["project"],
                    len(task_id),
                )
            )
        s = self.http.post(
            f"/api/work/{offer['assignment_id']}/submit",
            json={"response": {"category": answer}},
            headers=worker.headers,
        )
        assert s.status_code == 200, s.text
        body = s.json()
        assert set(body) == {"assignment_id", "task_id", "status", "submitted_at"}, body
        assert body["task_id"] == task_id
        if is_gold:
            # Gold answers as a live label that is not the task's last does.
            assert body["status"] == "pending"
        worker.served.append(is_gold)
        return is_gold

    def drain(self, workers: list[Worker]) -> None:
        """Round robin until a whole round finds nothing for anyone."""
        while True:
            took = [self.work_one(w) for w in workers]
            if all(t is None for t in took):
                return

    def labels(self, task_id: str) -> list[dict[str, Any]]:
        r = self.http.get(f"/api/tasks/{task_id}/labels", auth=self.key)
        assert r.status_code == 200, r.text
        return list(r.json())


def _user_ids(db: Database, emails: list[str]) -> dict[str, str]:
    with db.unit_of_work(write=False) as s:
        rows = s.execute(select(User.email, User.id).where(User.email.in_(emails))).all()
    return {email: uid for email, uid in rows}


def _outcomes(
    db: Database, org: Org, project: str, labels: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], float | None]]:
    """What the engine may have given on these (counting) labels: the type's aggregator, and,
    when the project's worker model has been fitted by now (the job runner fits it in the
    background once there are enough labels), the outcome under it."""
    users = _user_ids(db, [x["worker"] for x in labels])
    pairs = [(users[x["worker"]], x["response"]) for x in labels]
    params = {"categories": CATEGORIES}
    plain = aggregate("categorization", params, pairs)
    found = [(plain.response, plain.confidence)]
    project_id = _project_id(db, org, project)
    with db.unit_of_work(write=False) as s:
        model = worker_models.parse(worker_models.stored(s, project_id))
    if model is not None:
        under = worker_models.categorical_outcome(
            model, pairs, target_confidence=None, max_labels=K
        )
        if under is not None:
            found.append((under.response, under.confidence))
    return found


def _project_id(db: Database, org: Org, project: str) -> str:
    with db.unit_of_work(write=False) as s:
        found = s.scalar(
            select(Project.id).where(Project.org_id == org.org_id, Project.name == project)
        )
    assert found is not None
    return str(found)


def _fit_worker_model(db: Database, org: Org, project: str) -> None:
    project_id = _project_id(db, org, project)
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        if worker_models.stored(s, project_id) is None:
            assert (org.org_id, project_id) in worker_models.due(s, now)
            worker_models.enqueue_due(s, [(org.org_id, project_id)], now)

    def fitted() -> bool:
        with db.unit_of_work(write=False) as s:
            return worker_models.parse(worker_models.stored(s, project_id)) is not None

    wait_for(fitted)


def _matches(callback: dict[str, Any], outcomes: list[tuple[dict[str, Any], float | None]]) -> bool:
    got = (callback["response"], callback["task"].get("confidence"))
    return any(
        got[0] == response and got[1] is not None and got[1] == pytest.approx(confidence)
        for response, confidence in outcomes
    )


def _create(c: ScaleClient, receiver: Receiver) -> tuple[str, str, list[str], dict[str, str]]:
    project = name("e2e")
    created = c.create_project(
        project,
        TaskType.Categorization,
        params={
            "instruction": "Which animal is it?",
            "pipeline": "consensus_task",
            "consensus_attempts": K,
            "gold_rate": GOLD_RATE,
            "qualification": {"pass_mark": 1.0, "tasks": len(TRAINING)},
            "review": {"mode": "disagreement", "agreement_below": AGREEMENT_BELOW},
            "worker_quality": {"min_accuracy": 0.9, "min_gold": 2},
        },
    )
    assert created.params["consensus_attempts"] == K
    for i, answer in enumerate(TRAINING):
        c.create_training_task(
            TaskType.Categorization,
            project=project,
            attachment=f"training {i}",
            attachment_type="text",
            categories=CATEGORIES,
            expected_response={"category": answer},
        )
    gold_answer = {}
    for i, answer in enumerate(GOLD):
        c.create_evaluation_task(
            TaskType.Categorization,
            project=project,
            attachment=f"photo g{i}",
            attachment_type="text",
            categories=CATEGORIES,
            expected_response={"category": answer},
        )
        gold_answer[f"photo g{i}"] = answer
    batch = name("b")
    c.create_batch(project, batch, callback=receiver.url)
    live = [
        str(
            c.create_task(
                TaskType.Categorization,
                project=project,
                batch=batch,
                callback_url=receiver.url,
                attachment=f"photo {i}",
                attachment_type="text",
                categories=CATEGORIES,
            ).id
        )
        for i in range(len(PLAN))
    ]
    c.finalize_batch(batch)
    return project, batch, live, gold_answer


def _qualify(http: httpx.Client, project: str, worker: Worker, *, right: bool) -> None:
    listed = {p["name"]: p for p in http.get("/api/work/projects", headers=worker.headers).json()}
    assert listed[project]["qualification"]["status"] == "not_started"
    for i, expected in enumerate(TRAINING):
        # Training first, even without ?project=.
        r = http.post("/api/work/next", headers=worker.headers)
        assert r.status_code == 200, r.text
        offer = r.json()
        assert offer["training"]["required"] == len(TRAINING)
        assert offer["task"]["params"]["attachment"] == f"training {i}"
        answer = expected if right else next(c for c in CATEGORIES if c != expected)
        s = http.post(
            f"/api/work/{offer['assignment_id']}/submit",
            json={"response": {"category": answer}},
            headers=worker.headers,
        )
        assert s.status_code == 200, s.text
        assert s.json()["feedback"] == {
            "expected_response": {"category": expected},
            "score": 1.0 if right else 0.0,
            "correct": right,
        }
    status = "passed" if right else "failed"
    assert s.json()["qualification"]["status"] == status
    listed = {p["name"]: p for p in http.get("/api/work/projects", headers=worker.headers).json()}
    assert listed[project]["qualification"]["status"] == status


def _held(sc: Scenario) -> dict[str, dict[str, Any]]:
    """The review queue: task id -> its item."""
    r = sc.http.get(f"/api/projects/{sc.project}/review-queue", auth=sc.key)
    assert r.status_code == 200, r.text
    return {x["task_id"]: x for x in r.json()["items"]}


def _tasks(receiver: Receiver) -> list[dict[str, Any]]:
    return [b for b in receiver.received() if "task" in b]


def _batches(receiver: Receiver) -> list[dict[str, Any]]:
    return [b for b in receiver.received() if "task" not in b]


def _completions(receiver: Receiver) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in receiver.received():
        if "task" in body and body["task"]["status"] == "completed":
            out[body["task_id"]].append(body)
    return out


def test_a_consensus_project_from_creation_to_the_last_callback(
    server: LiveServer,
    http: httpx.Client,
    db: Database,
    org: Org,
    receiver: Receiver,
    password_hash: str,
) -> None:
    c = client(server, org.live_key)
    project, batch, live, gold_answer = _create(c, receiver)
    sc = Scenario(
        http,
        project,
        auth(org.live_key),
        live,
        gold_answer,
        {task_id: list(PLAN[i]) for i, task_id in enumerate(live)},
    )

    def person(role: str = "annotator") -> Worker:
        email = make_worker(db, org.org_id, role=role, password_hash=password_hash)
        return Worker(email, login(http, email))

    # --- 1. qualification ---------------------------------------------------------------------
    workers = [person() for _ in range(6)]
    failing = person()
    reviewer = person("reviewer")
    manager = person("manager")
    for w in workers:
        _qualify(http, project, w, right=True)
    _qualify(http, project, failing, right=False)
    r = sc.next(failing)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["field"] == "project"
    assert http.post("/api/work/next", headers=failing.headers).status_code == 204

    # --- 2. drain, gold, a pause and its appeal -------------------------------------------------
    sloppy = workers[0]
    # The sloppy worker goes first and gets every check question wrong until paused.
    refused: list[Any] = []
    while not refused:
        assert sc.work_one(sloppy, gold_wrong=True, refused=refused) is not None or refused
    assert refused[0]["error"]["field"] == "project"
    assert sum(sloppy.served) == 2  # min_gold answers, both wrong
    # Nothing of the project without ?project= either, live or gold.
    assert http.post("/api/work/next", headers=sloppy.headers).status_code == 204
    mine = {q["project"]: q for q in http.get("/api/work/quality", headers=sloppy.headers).json()}[
        project
    ]
    pause = mine["pause"]
    assert pause["status"] == "paused" and pause["reason"]
    assert len(mine["mistakes"]) == 2
    r = http.post(
        f"/api/work/pauses/{pause['id']}/appeal",
        json={"appeal": "I misread the categories."},
        headers=sloppy.headers,
    )
    assert r.status_code == 200, r.text
    # Someone else decides: not the worker, not the API key.
    lift = {"decision": "lift", "comment": "Retrained."}
    for who in (sloppy.headers, None):
        r = http.post(
            f"/api/pauses/{pause['id']}/decide",
            json=lift,
            headers=who,
            auth=None if who else sc.key,
        )
        assert r.status_code == 403, r.text
    appealed = http.get("/api/pauses", params={"status": "appealed"}, headers=manager.headers)
    assert [p["id"] for p in appealed.json()] == [pause["id"]]
    r = http.post(f"/api/pauses/{pause['id']}/decide", json=lift, headers=manager.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "lifted" and r.json()["decided_by"] == manager.email
    mine = {q["project"]: q for q in http.get("/api/work/quality", headers=sloppy.headers).json()}[
        project
    ]
    assert mine["pause"] is None or mine["pause"]["status"] == "lifted", mine["pause"]

    sc.drain(workers)
    # Gold looked like live work, and came at the rate to within one per worker.
    assert len(sc.shapes) == 1, sc.shapes
    for w in workers:
        assert abs(sum(w.served) - GOLD_RATE * len(w.served)) <= 1, (w.email, w.served)
    assert sum(sum(w.served) for w in workers) > 0
    for task_id in live:
        assert len(sc.labeled_by[task_id]) == K
        assert len(set(sc.labeled_by[task_id])) == K
    # Those whose labels disagree wait for a reviewer, pending to the customer; the rest are
    # complete. The engine's confidence decides: a three-way split is far below the threshold
    # under the default vote or a worker model (should the runner have fitted one by now),
    # a unanimous task above it unless a fitted model says its workers are not to be trusted.
    held = _held(sc)
    assert {live[i] for i in SPLIT} <= set(held)
    for task_id in live:
        task = c.get_task(task_id).as_dict()
        if task_id in held:
            assert task["status"] == TaskStatus.Pending.value
            assert "response" not in task and held[task_id]["reason"] == "disagreement"
            assert held[task_id]["confidence"] < AGREEMENT_BELOW
        else:
            assert task["status"] == TaskStatus.Completed.value
            assert task["confidence"] >= AGREEMENT_BELOW

    # The project's worker model, fitted by the job runner as it would be in the background
    # (asked now rather than at its next half-minute check): the reworked rounds below
    # complete under it.
    _fit_worker_model(db, org, project)

    # --- 3. review ------------------------------------------------------------------------------
    #: Task id -> the reviewer's decisions on it, in order, with the item they were shown.
    decided: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)

    def review(*decisions: str) -> None:
        """The reviewer takes the queue in order: ``decisions`` first, then accepts the rest."""
        todo = list(decisions)
        while True:
            r = http.post("/api/review/next", params={"project": project}, headers=reviewer.headers)
            assert r.status_code in (200, 204), r.text
            if r.status_code == 204:
                assert not todo
                return
            item = r.json()
            task_id = item["task"]["task_id"]
            # Never one who labeled it; the labels the candidate came from, oldest first.
            assert reviewer.email not in sc.labeled_by[task_id]
            rounds = len(sc.labeled_by[task_id]) // K
            assert [x["worker"] for x in item["labels"]] == sc.labeled_by[task_id][-K:]
            assert rounds >= 1 and item["reason"] == "disagreement"
            assert item["confidence"] < AGREEMENT_BELOW
            decision = todo.pop(0) if todo else "accept"
            body: dict[str, Any] = {}
            if decision == "fix":
                body = {"response": {"category": "bird"}}
            elif decision == "reject":
                body = {"reason": REVIEW_REASON}
            r = http.post(
                f"/api/review/{item['review_id']}/{decision}", json=body, headers=reviewer.headers
            )
            assert r.status_code == 200, r.text
            decided[task_id].append((decision, item))

    review("accept", "fix", "reject")
    (rejected,) = (t for t, d in decided.items() if d[-1][0] == "reject")
    (fixed,) = (t for t, d in decided.items() if d[-1][0] == "fix")
    assert c.get_task(rejected).status == TaskStatus.Pending.value
    fixed_task = c.get_task(fixed).as_dict()
    assert fixed_task["response"] == {"category": "bird"}
    assert fixed_task["prior_responses"] == [decided[fixed][0][1]["candidate"]]
    assert "confidence" not in fixed_task or fixed_task["confidence"] is None

    first_labelers = list(sc.labeled_by[rejected])
    sc.answers[rejected] = ["bird"] * K
    sc.drain(workers)
    assert set(sc.labeled_by[rejected][K:]).isdisjoint(first_labelers)
    assert sc.rework_seen[rejected][K:] == [{"review_comment": REVIEW_REASON}] * K
    # Under the fitted model (and its calibrator, from the gold answered so far) even a
    # unanimous round may fall below the threshold: then it waits for review once more.
    review()
    assert c.get_task(rejected).status == TaskStatus.Completed.value

    # --- 4. the customer's audit ----------------------------------------------------------------
    audited = next(t for t in live if t not in decided)
    wait_for(lambda: audited in _completions(receiver))
    # Its batch completed with its last task (the rejected one's rework): one batch callback.
    (done,) = wait_for(lambda: _batches(receiver))
    assert (done["name"], done["status"], done["completed"], done["pending"]) == (
        batch,
        "completed",
        len(live),
        0,
    )
    first_answer = c.get_task(audited).response
    c.audit_task(audited, accepted=False, comments=AUDIT_COMMENT)
    assert c.get_task(audited).status == TaskStatus.Pending.value
    sc.answers[audited] = ["dog"] * K
    sc.drain(workers)
    assert set(sc.labeled_by[audited][K:]).isdisjoint(sc.labeled_by[audited][:K])
    assert sc.rework_seen[audited][K:] == [{"audit_comment": AUDIT_COMMENT}] * K
    review()
    final = c.get_task(audited).as_dict()
    assert final["status"] == "completed" and final["response"] == {"category": "dog"}
    assert final["prior_responses"] == [first_answer]

    # --- 5. completions and their callbacks -----------------------------------------------------
    rounds = Counter({task_id: 1 for task_id in live})
    rounds[audited] += 1
    wait_for(lambda: {t: len(b) for t, b in _completions(receiver).items()} == dict(rounds))
    wait_for(lambda: len(_batches(receiver)) >= 2)
    time.sleep(0.3)  # nothing more comes
    completions = _completions(receiver)
    assert {t: len(b) for t, b in completions.items()} == dict(rounds)
    audits = [b for b in _tasks(receiver) if b["task"]["status"] != "completed"]
    assert [b["task_id"] for b in audits] == [audited]
    assert http.get(f"/v1/batches/{batch}/status", auth=sc.key).json()["status"] == "completed"
    # The audit reopened the batch; it completed again with the rework, and said so once more.
    assert [(b["status"], b["completed"]) for b in _batches(receiver)] == [
        ("completed", len(live))
    ] * 2

    for task_id in live:
        labels = sc.labels(task_id)
        counting = [x for x in labels if not x["superseded"]]
        assert len(counting) == K
        last = completions[task_id][-1]
        assert last["response"] == c.get_task(task_id).response
        decision = decided[task_id][-1] if task_id in decided else ("none", {})
        if decision[0] == "fix":
            assert last["response"] == {"category": "bird"}
            assert last["task"].get("confidence") is None
            continue
        outcomes = _outcomes(db, org, project, counting)
        if task_id in (rejected, audited):
            # Relabeled after the model was fitted: under it.
            outcomes = outcomes[1:]
        assert _matches(last, outcomes), (task_id, last, outcomes)
        if decision[0] == "accept":
            assert (last["response"], last["task"]["confidence"]) == (
                decision[1]["candidate"],
                pytest.approx(decision[1]["confidence"]),
            )
    # The audited task's first completion came from the labels its rejection superseded.
    superseded = [x for x in sc.labels(audited) if x["superseded"]]
    first = completions[audited][0]
    assert first["response"] == first_answer
    assert _matches(first, _outcomes(db, org, project, superseded))

    # The reports agree: the review's decisions, the labels that count, each worker's gold.
    progress = http.get(f"/api/projects/{project}/progress", auth=sc.key).json()
    assert progress["counts"]["completed"] == progress["total"] == len(live)
    made = Counter(d for ds in decided.values() for d, _ in ds)
    assert (made["fix"], made["reject"]) == (1, 1) and made["accept"] >= 1
    assert progress["review"] == {
        "awaiting": 0,
        "in_review": 0,
        "accepted": made["accept"],
        "fixed": 1,
        "rejected": 1,
    }
    agreement = http.get(f"/api/projects/{project}/agreement", auth=sc.key).json()
    assert agreement["labels"] == K * len(live)
    table = {
        w["worker"]: w
        for w in http.get(f"/api/projects/{project}/workers", auth=sc.key).json()["workers"]
    }
    for w in workers:
        row = table[w.email]
        assert row["labels"] == len(w.served) - sum(w.served)
        assert row["pause"] is None
        if w is not sloppy:  # the sloppy worker's record restarted at the lift
            assert (row["gold_answered"], row["gold_accuracy"]) == (sum(w.served), 1.0)
    assert table[sloppy.email]["gold_accuracy"] == 1.0


def test_a_completion_callback_retried_after_an_audit_still_reports_the_completion(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, password_hash: str
) -> None:
    c = client(server, org.live_key)
    project = name("cb")
    c.create_project(project, TaskType.Categorization)
    posts: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            with lock:
                posts.append(body)
                first = len(posts) == 1
            if first:
                # The customer rejects the answer while the completion callback is in flight;
                # the receiver then fails, so the runner retries that callback.
                r = httpx.post(
                    f"{server.url}/v1/task/{body['task_id']}/audit",
                    json={"accepted": False, "comments": AUDIT_COMMENT},
                    auth=auth(org.live_key),
                )
                assert r.status_code == 200, r.text
            self.send_response(500 if first else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        task = c.create_task(
            TaskType.Categorization,
            project=project,
            callback_url=f"http://127.0.0.1:{srv.server_address[1]}/hook",
            attachment="photo",
            attachment_type="text",
            categories=CATEGORIES,
        )
        worker = Worker("", login(http, make_worker(db, org.org_id, password_hash=password_hash)))
        offer = http.post("/api/work/next", headers=worker.headers).json()
        r = http.post(
            f"/api/work/{offer['assignment_id']}/submit",
            json={"response": {"category": "cat"}},
            headers=worker.headers,
        )
        assert r.json()["status"] == "completed"
        # The completion callback twice (failed, then retried) and the audit's.
        wait_for(lambda: len(posts) >= 3)
        time.sleep(0.3)
    finally:
        srv.shutdown()
        srv.server_close()
    reports = [(p["task"]["status"], p["response"]) for p in posts if p["task_id"] == task.id]
    assert len(reports) == 3
    # Both attempts of the completion callback report the completion.
    assert reports.count(("completed", {"category": "cat"})) == 2, reports
