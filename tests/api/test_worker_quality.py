"""Worker quality through real HTTP: the setting, the pause below the threshold (and not above,
nor before ``min_gold``), what a paused worker gets from ``next``, their own record, the appeal,
the decision by someone else, the lift, the worker table, and scoping to org and self."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from steelyard.db.engine import Database
from steelyard.quality.adaptive import WorkerModel
from steelyard.workflow import worker_models, worker_quality
from tests.api.helpers import auth, login, make_worker
from tests.api.quality_helpers import (
    CATEGORIES,
    answer_gold,
    categorization_project,
    gold_item,
    project_id,
    user_id,
)
from tests.conftest import Org

SETTING = {"min_accuracy": 0.7, "min_gold": 4}


@dataclass
class Floor:
    """An organization with a project that pauses below 70% on gold (from 4 answers), one
    without a setting, gold items in the first, and signed-in workers."""

    http: httpx.Client
    db: Database
    org: Org
    strict: str = ""
    open: str = ""
    strict_id: str = ""
    items: list[str] = field(default_factory=list)

    def worker(self, role: str = "annotator") -> tuple[str, dict[str, str]]:
        email = make_worker(self.db, self.org.org_id, role=role)
        return user_id(self.db, email), login(self.http, email)

    def answer(self, user: str, given: str, item: int, now: datetime | None = None) -> str | None:
        return answer_gold(
            self.db, self.org.org_id, self.strict_id, self.items[item], user, given, "cat", now
        )

    def task(self, project: str) -> str:
        r = self.http.post(
            "/v1/task/categorization",
            json={"project": project, "attachment": f"t {uuid.uuid4().hex[:8]}"},
            auth=auth(self.org.live_key),
        )
        assert r.status_code == 200, r.text
        return str(r.json()["task_id"])

    def quality(self, headers: dict[str, str], project: str | None = None) -> list[Any]:
        params = {"project": project} if project else {}
        r = self.http.get("/api/work/quality", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return list(r.json())

    def ops(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers=headers, **kw)


@pytest.fixture
def floor(http: httpx.Client, db: Database, org: Org) -> Floor:
    f = Floor(http, db, org)
    f.strict, f.open = f"strict-{uuid.uuid4().hex[:6]}", f"open-{uuid.uuid4().hex[:6]}"
    categorization_project(http, org.live_key, f.strict, worker_quality=SETTING)
    categorization_project(http, org.live_key, f.open)
    f.strict_id = project_id(db, org.org_id, f.strict)
    f.items = [gold_item(http, org.live_key, f.strict) for _ in range(8)]
    return f


def _pause_down(f: Floor, user: str) -> str:
    """Four wrong answers: paused on the fourth (min_gold), not before."""
    for i in range(3):
        assert f.answer(user, "dog", i) is None
    pause = f.answer(user, "dog", 3)
    assert pause is not None
    return pause


# --- the setting -------------------------------------------------------------------------


def test_the_setting_is_checked_and_echoed(http: httpx.Client, org: Org) -> None:
    name = f"wq-{uuid.uuid4().hex[:6]}"
    made = categorization_project(http, org.live_key, name, worker_quality=SETTING)
    assert made["params"]["worker_quality"] == SETTING
    for bad, where in [
        ({"min_accuracy": 1.5}, "params.worker_quality.min_accuracy"),
        ({"min_accuracy": True}, "params.worker_quality.min_accuracy"),
        ({"min_gold": 5}, "params.worker_quality.min_accuracy"),
        ({"min_accuracy": 0.7, "min_gold": 0}, "params.worker_quality.min_gold"),
        ({"min_accuracy": 0.7, "min_gold": 20, "window": 10}, "params.worker_quality.window"),
        ({"min_accuracy": 0.7, "threshold": 1}, "params.worker_quality.threshold"),
        ("high", "params.worker_quality"),
    ]:
        r = http.post(
            "/v1/projects",
            json={
                "type": "categorization",
                "name": f"bad-{uuid.uuid4().hex[:6]}",
                "params": {"categories": ["a", "b"], "worker_quality": bad},
            },
            auth=auth(org.live_key),
        )
        assert r.status_code == 400, (bad, r.text)
        assert where in r.json()["error"], (bad, r.json())
        # And on update (setParams), the same.
        r = http.post(
            f"/v1/projects/{name}/setParams",
            json={"worker_quality": bad},
            auth=auth(org.live_key),
        )
        assert r.status_code == 400 and where in r.json()["error"], (bad, r.text)
    # A pipeline sent later keeps the setting; a new setting replaces it whole.
    r = http.post(
        f"/v1/projects/{name}/setParams",
        json={"pipeline": "consensus_task", "consensus_attempts": 2},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["params"]["worker_quality"] == SETTING
    r = http.post(
        f"/v1/projects/{name}/setParams",
        json={"worker_quality": {"min_accuracy": 0.8}},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["params"]["worker_quality"] == {"min_accuracy": 0.8}
    assert r.json()["params"]["consensus_attempts"] == 2


# --- the pause ----------------------------------------------------------------------------


def test_pause_opens_below_the_threshold_only_from_min_gold(floor: Floor) -> None:
    poor, _ = floor.worker()
    good, _ = floor.worker()
    middling, _ = floor.worker()
    pause = _pause_down(floor, poor)
    for i in range(6):
        assert floor.answer(good, "cat", i) is None
    # Half right of six: perhaps a 70% worker's bad luck, so not paused.
    for i in range(6):
        assert floor.answer(middling, "cat" if i % 2 else "bird", i) is None
    assert pause
    # In a project with no setting nobody is paused, however wrong.
    open_id = project_id(floor.db, floor.org.org_id, floor.open)
    for _ in range(6):
        item = gold_item(floor.http, floor.org.live_key, floor.open)
        assert (
            answer_gold(floor.db, floor.org.org_id, open_id, item, middling, "dog", "cat") is None
        )


def test_a_paused_worker_gets_nothing_from_that_project(floor: Floor) -> None:
    worker, headers = floor.worker()
    other, other_headers = floor.worker()
    strict_task = floor.task(floor.strict)
    open_task = floor.task(floor.open)
    pause = _pause_down(floor, worker)

    r = floor.http.post("/api/work/next", params={"project": floor.strict}, headers=headers)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["field"] == "project"
    assert "paused" in error["message"] and floor.strict in error["message"]
    assert "check questions" in error["message"]  # the reason itself
    assert pause in error["message"]  # where to appeal
    # Without ?project= they get the other project's task, never the strict one's.
    r = floor.http.post("/api/work/next", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["task"]["task_id"] == open_task
    released = floor.http.post(f"/api/work/{r.json()['assignment_id']}/release", headers=headers)
    assert released.status_code == 200
    # Someone else still gets the strict project's task.
    r = floor.http.post("/api/work/next", params={"project": floor.strict}, headers=other_headers)
    assert r.status_code == 200 and r.json()["task"]["task_id"] == strict_task
    assert other


def test_the_worker_sees_their_record_mistakes_and_pause(floor: Floor) -> None:
    worker, headers = floor.worker()
    someone, someone_headers = floor.worker()
    labeled = floor.task(floor.open)
    lease = floor.http.post("/api/work/next", params={"project": floor.open}, headers=headers)
    assert lease.status_code == 200 and lease.json()["task"]["task_id"] == labeled
    done = floor.http.post(
        f"/api/work/{lease.json()['assignment_id']}/submit",
        json={"response": {"category": "cat"}},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    pause = _pause_down(floor, worker)
    # Answered while paused (a lease taken before): counted, and no second pause.
    assert floor.answer(worker, "cat", 4) is None
    assert floor.answer(worker, "bird", 5) is None
    floor.answer(someone, "cat", 0)

    mine = {p["project"]: p for p in floor.quality(headers)}
    assert set(mine) == {floor.strict, floor.open}
    assert mine[floor.open]["labels"] == 1 and mine[floor.open]["gold"]["answered"] == 0
    assert mine[floor.open]["threshold"] is None and mine[floor.open]["pause"] is None
    strict = mine[floor.strict]
    gold = strict["gold"]
    assert (gold["answered"], gold["correct"]) == (6, 1)
    assert gold["accuracy"] == pytest.approx(1 / 6)
    assert 0.0 < gold["interval"]["low"] < 1 / 6 < gold["interval"]["high"] < 0.7
    assert gold["interval"]["method"] == "jeffreys" and gold["interval"]["level"] == 0.95
    assert strict["threshold"] == SETTING
    # Confusion on gold: expected (rows) against given (columns).
    confusion = strict["confusion"]["category"]
    assert confusion["classes"] == ["bird", "cat", "dog"]
    assert confusion["counts"] == [[0, 0, 0], [1, 1, 4], [0, 0, 0]]
    assert strict["model_estimate"] is None  # no worker model fitted yet
    # The pause, with its reason, evidence and how to appeal.
    shown = strict["pause"]
    assert shown["id"] == pause and shown["status"] == "paused"
    assert "1 of 6" not in shown["reason"]  # the pause rests on what was known then
    assert "0 of 4" in shown["reason"] and "70%" in shown["reason"]
    evidence = shown["evidence"]
    assert (evidence["answered"], evidence["correct"], evidence["min_accuracy"]) == (4, 0, 0.7)
    assert evidence["interval"]["high"] < evidence["pause_bound"]["high"] < 0.7
    assert evidence["pause_bound"]["level"] == 0.99 and evidence["since"] is None
    # The worker sees their answers by the assignment ids they were shown, not the items' ids.
    assert len(evidence["items"]) == 4 and all("item" not in i for i in evidence["items"])
    shown_ids = {m["assignment_id"] for m in strict["mistakes"]}
    assert {i["answer_id"] for i in evidence["items"]} <= shown_ids
    assert pause in shown["how_to_appeal"]
    # The gold items they got wrong, as they saw them, with the right answer.
    wrong = strict["mistakes"]
    assert len(wrong) == 5
    # Each under the task_id this worker was shown (derived per worker), never the item's own.
    shown_task_ids = {m["task"]["task_id"] for m in wrong}
    assert len(shown_task_ids) == 5 and not shown_task_ids & set(floor.items)
    first = wrong[-1]
    assert first["task"]["type"] == "categorization"
    assert first["task"]["params"]["categories"] == ["cat", "dog", "bird"]
    assert "expected_response" not in first["task"] and "metadata" not in first["task"]
    assert first["right_answer"] == {"category": "cat"}
    assert first["your_answer"] == {"category": "dog"}
    # ?project= narrows; someone else sees only their own record.
    assert [p["project"] for p in floor.quality(headers, floor.strict)] == [floor.strict]
    theirs = floor.quality(someone_headers)
    assert [p["project"] for p in theirs] == [floor.strict]
    assert theirs[0]["gold"]["answered"] == 1 and theirs[0]["pause"] is None
    assert theirs[0]["mistakes"] == []


def test_appeal_and_a_decision_by_someone_else_lift_the_pause(floor: Floor) -> None:
    worker, headers = floor.worker("manager")  # a manager can be paused too
    _, colleague = floor.worker()
    _, manager = floor.worker("manager")
    _, annotator = floor.worker()
    floor.task(floor.strict)
    pause = _pause_down(floor, worker)

    appeal = f"/api/work/pauses/{pause}/appeal"
    r = floor.http.post(appeal, json={"appeal": ""}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "appeal", r.text
    r = floor.http.post(appeal, json={"appeal": "The images were blurry."}, headers=colleague)
    assert r.status_code == 404 and r.json()["error"]["field"] == "pause_id", r.text
    r = floor.http.post(appeal, json={"appeal": "The images were blurry."}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "appealed" and r.json()["appealed_at"]
    r = floor.http.post(appeal, json={"appeal": "Again."}, headers=headers)
    assert r.status_code == 409 and "appealed" in r.json()["error"]["message"], r.text

    # Operators list the appeals; an annotator may not.
    listed = floor.http.get("/api/pauses", params={"status": "appealed"}, headers=manager)
    assert listed.status_code == 200, listed.text
    row = next(p for p in listed.json() if p["id"] == pause)
    assert {i["item"] for i in row["evidence"]["items"]} == set(floor.items[:4])  # operators
    assert row["project"] == floor.strict and row["appeal"] == "The images were blurry."
    assert row["evidence"]["answered"] == 4 and row["decided_by"] is None
    keyed = floor.http.get(
        "/api/pauses", params={"project": floor.strict}, auth=auth(floor.org.live_key)
    )
    assert [p["id"] for p in keyed.json()] == [pause]
    assert floor.http.get("/api/pauses", params={"status": "paused"}, headers=manager).json() == []
    r = floor.http.get("/api/pauses", params={"status": "gone"}, headers=manager)
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"
    assert floor.http.get("/api/pauses", headers=annotator).status_code == 403

    decide = f"/api/pauses/{pause}/decide"
    # The worker cannot decide their own pause, nor an API key (no person), nor an annotator.
    r = floor.http.post(decide, json={"decision": "lift"}, headers=headers)
    assert r.status_code == 403 and "other than" in r.json()["error"]["message"], r.text
    r = floor.http.post(decide, json={"decision": "lift"}, auth=auth(floor.org.live_key))
    assert r.status_code == 403, r.text
    assert floor.http.post(decide, json={"decision": "lift"}, headers=annotator).status_code == 403
    r = floor.http.post(decide, json={"decision": "uphold"}, headers=manager)
    assert r.status_code == 422 and r.json()["error"]["field"] == "comment", r.text
    r = floor.http.post(decide, json={"decision": "pardon"}, headers=manager)
    assert r.status_code == 422 and r.json()["error"]["field"] == "decision", r.text
    r = floor.http.post(
        decide, json={"decision": "lift", "comment": "Blurry batch."}, headers=manager
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "lifted" and body["decided_at"] and body["decision"] == "Blurry batch."
    assert body["decided_by"] != body["worker"]
    # Decided once: a second decision finds it lifted.
    r = floor.http.post(decide, json={"decision": "uphold", "comment": "no"}, headers=manager)
    assert r.status_code == 409, r.text

    # Back to work in that project ...
    r = floor.http.post("/api/work/next", params={"project": floor.strict}, headers=headers)
    assert r.status_code == 200, r.text
    # ... and the window restarted: the old answers do not count, so it takes min_gold fresh
    # ones to pause again.
    later = datetime.now(UTC) + timedelta(seconds=1)
    for i in range(3):
        assert floor.answer(worker, "dog", 4 + i, later + timedelta(seconds=i)) is None
    mine = floor.quality(headers, floor.strict)[0]
    assert mine["gold"]["answered"] == 3 and mine["gold"]["since"] is not None
    assert mine["pause"] is None
    assert floor.answer(worker, "dog", 7, later + timedelta(seconds=5)) is not None


def test_an_upheld_pause_keeps_blocking_until_lifted(floor: Floor) -> None:
    worker, headers = floor.worker()
    _, manager = floor.worker("manager")
    pause = _pause_down(floor, worker)
    decide = f"/api/pauses/{pause}/decide"
    # Upholding waits for the worker's appeal.
    r = floor.http.post(
        decide, json={"decision": "uphold", "comment": "Too many errors."}, headers=manager
    )
    assert r.status_code == 409, r.text
    floor.http.post(f"/api/work/pauses/{pause}/appeal", json={"appeal": "Please."}, headers=headers)
    r = floor.http.post(
        decide, json={"decision": "uphold", "comment": "Too many errors."}, headers=manager
    )
    assert r.status_code == 200 and r.json()["status"] == "upheld", r.text
    r = floor.http.post("/api/work/next", params={"project": floor.strict}, headers=headers)
    assert r.status_code == 403 and r.json()["error"]["field"] == "project"
    shown = floor.quality(headers, floor.strict)[0]["pause"]
    assert shown["status"] == "upheld" and shown["decision"] == "Too many errors."
    assert "how_to_appeal" not in shown
    # Gold answered meanwhile opens no second pause.
    assert floor.answer(worker, "dog", 4) is None
    r = floor.http.post(decide, json={"decision": "lift"}, headers=manager)
    assert r.status_code == 200 and r.json()["status"] == "lifted"
    (earlier,) = r.json()["evidence"]["earlier_decisions"]  # the uphold stays on the record
    assert (earlier["status"], earlier["decision"]) == ("upheld", "Too many errors.")
    floor.task(floor.strict)
    assert (
        floor.http.post(
            "/api/work/next", params={"project": floor.strict}, headers=headers
        ).status_code
        == 200
    )


def test_the_worker_table_shows_gold_and_pauses(floor: Floor) -> None:
    worker, _ = floor.worker()
    good, _ = floor.worker()
    _pause_down(floor, worker)
    for i in range(5):
        floor.answer(good, "cat", i)
    body = floor.http.get(f"/api/projects/{floor.strict}/workers", auth=auth(floor.org.live_key))
    assert body.status_code == 200, body.text
    rows = {r["worker"]: r for r in body.json()["workers"]}
    assert len(rows) == 2
    paused = next(r for r in rows.values() if r["pause"] == "paused")
    fine = next(r for r in rows.values() if r["pause"] is None)
    assert (paused["gold_answered"], paused["gold_accuracy"]) == (4, 0.0)
    assert paused["gold_interval"][0] == 0.0 and paused["gold_interval"][1] < 0.7
    assert (fine["gold_answered"], fine["gold_accuracy"]) == (5, 1.0)
    assert fine["gold_interval"][1] == 1.0
    assert paused["labels"] == 0
    assert any("Jeffreys" in note for note in body.json()["notes"])
    # The test environment has no workers, gold or pauses.
    r = floor.http.get(f"/api/projects/{floor.strict}/workers", auth=auth(floor.org.test_key))
    assert r.status_code == 404  # the project is live-only


def test_another_organization_sees_nothing(floor: Floor, other_org: Org) -> None:
    worker, headers = floor.worker()
    pause = _pause_down(floor, worker)
    outsider = login(floor.http, make_worker(floor.db, other_org.org_id))
    their_manager = login(floor.http, make_worker(floor.db, other_org.org_id, role="manager"))
    r = floor.http.post(f"/api/work/pauses/{pause}/appeal", json={"appeal": "x"}, headers=outsider)
    assert r.status_code == 404
    r = floor.http.post(
        f"/api/pauses/{pause}/decide", json={"decision": "lift"}, headers=their_manager
    )
    assert r.status_code == 404
    assert floor.http.get("/api/pauses", headers=their_manager).json() == []
    assert floor.http.get("/api/pauses", auth=auth(other_org.live_key)).json() == []
    assert floor.http.get("/api/work/quality", headers=outsider).json() == []
    r = floor.http.get("/api/work/quality", params={"project": floor.strict}, headers=outsider)
    assert r.status_code == 404 and r.json()["error"]["field"] == "project"
    # The pause is untouched.
    assert floor.quality(headers, floor.strict)[0]["pause"]["status"] == "paused"


def test_a_new_threshold_applies_to_the_gold_already_answered(floor: Floor) -> None:
    poor, headers = floor.worker()
    good, _ = floor.worker()
    open_id = project_id(floor.db, floor.org.org_id, floor.open)
    for _ in range(5):
        item = gold_item(floor.http, floor.org.live_key, floor.open)
        assert answer_gold(floor.db, floor.org.org_id, open_id, item, poor, "dog", "cat") is None
        assert answer_gold(floor.db, floor.org.org_id, open_id, item, good, "cat", "cat") is None
    assert floor.quality(headers, floor.open)[0]["pause"] is None
    r = floor.http.post(
        f"/v1/projects/{floor.open}/setParams",
        json={"worker_quality": SETTING},
        auth=auth(floor.org.live_key),
    )
    assert r.status_code == 200, r.text
    shown = floor.quality(headers, floor.open)[0]["pause"]
    assert shown is not None and shown["status"] == "paused"
    assert shown["evidence"]["answered"] == 5
    listed = floor.http.get(
        "/api/pauses", params={"project": floor.open}, auth=auth(floor.org.live_key)
    )
    assert [p["evidence"]["correct"] for p in listed.json()] == [0]  # only the poor worker


def test_two_deciders_at_once_one_wins(floor: Floor) -> None:
    """Each transition is a compare-and-set on the status it leaves: of two managers deciding
    the same appeal at the same moment, one decides and the other is told it was decided
    meanwhile (even a lift, which could follow an uphold: nobody decides on a state they did
    not see)."""
    deciders = [floor.worker("manager")[1] for _ in range(2)]
    for decisions in (("uphold", "uphold"), ("lift", "lift"), ("lift", "uphold")):
        worker, headers = floor.worker()
        pause = _pause_down(floor, worker)
        r = floor.http.post(
            f"/api/work/pauses/{pause}/appeal", json={"appeal": "please"}, headers=headers
        )
        assert r.status_code == 200, r.text
        barrier = threading.Barrier(2)

        def decide(
            who: dict[str, str],
            decision: str,
            pause_id: str = pause,
            barrier: threading.Barrier = barrier,
        ) -> tuple[int, str]:
            barrier.wait()
            r = floor.http.post(
                f"/api/pauses/{pause_id}/decide",
                json={"decision": decision, "comment": "looked at it"},
                headers=who,
            )
            return r.status_code, decision

        with ThreadPoolExecutor(2) as pool:
            results = sorted(pool.map(decide, deciders, decisions))
        shown = floor.quality(headers, floor.strict)[0]["pause"]
        if [code for code, _ in results] == [200, 200]:
            # Not a race after all (the barrier only starts them together): an uphold that
            # landed first may later be lifted, as a decision on what the lifter then saw.
            assert set(decisions) == {"lift", "uphold"}, results
            assert shown is None  # lifted: no blocking pause left
            continue
        assert [code for code, _ in results] == [200, 409], results
        expected = {"lift": "lifted", "uphold": "upheld"}[results[0][1]]
        assert (shown["status"] if shown else "lifted") == expected


def test_one_open_pause_per_worker_and_project(floor: Floor) -> None:
    """Two checks that both found the worker short open one pause: the second insert meets the
    partial unique index and does nothing (on PostgreSQL through ON CONFLICT's inference of
    that partial index)."""
    worker, _ = floor.worker()
    now = datetime.now(UTC)
    with floor.db.unit_of_work() as session:
        first = worker_quality.open_pause(
            session, floor.org.org_id, floor.strict_id, worker, reason="r", evidence={}, now=now
        )
        second = worker_quality.open_pause(
            session, floor.org.org_id, floor.strict_id, worker, reason="r", evidence={}, now=now
        )
        assert first is not None and second is None
        # Closed pauses do not count: once lifted, a new one may open.
        first.status = "lifted"
        session.flush()
        third = worker_quality.open_pause(
            session, floor.org.org_id, floor.strict_id, worker, reason="r", evidence={}, now=now
        )
        assert third is not None and third.id != first.id


def test_the_project_models_estimate_is_shown_beside_gold(floor: Floor) -> None:
    """Where the project's worker model is fitted, the worker sees its estimate of them too,
    labelled as the model's (all labels), not gold; a worker the fit did not see gets the
    pooled default, and says so."""
    seen, headers = floor.worker()
    _, unseen_headers = floor.worker()
    floor.answer(seen, "cat", 0)
    model = WorkerModel.from_confusions(
        CATEGORIES,
        [0.5, 0.3, 0.2],
        {seen: [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]},
        default_confusion=np.full((3, 3), 1 / 3),
    )
    with floor.db.unit_of_work() as session:
        worker_models.write(
            session, floor.org.org_id, floor.strict_id, model, 40, datetime.now(UTC)
        )
    estimate = floor.quality(headers, floor.strict)[0]["model_estimate"]
    assert estimate["fitted_on_you"] is True and "not gold" in estimate["source"]
    assert estimate["classes"] == CATEGORIES
    assert estimate["accuracy"] == pytest.approx(0.5 * 0.9 + 0.3 * 0.8 + 0.2 * 0.6, abs=1e-3)
    assert estimate["confusion"][0][0] == pytest.approx(0.9, abs=1e-3)
    # No labels, gold or pause anywhere: nothing listed, unless the project is asked for.
    assert floor.quality(unseen_headers) == []
    other = floor.quality(unseen_headers, floor.strict)
    assert other[0]["gold"]["answered"] == 0 and other[0]["gold"]["accuracy"] is None
    assert other[0]["model_estimate"]["fitted_on_you"] is False
    assert other[0]["model_estimate"]["accuracy"] == pytest.approx(1 / 3, abs=1e-3)
