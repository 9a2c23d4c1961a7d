"""``workflow.batches``: every change after which a batch may be complete completes it, once,
with its callback queued in the same transaction; a batch that is not in progress waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.db.engine import Database
from steelyard.jobs import outbox
from steelyard.jobs.models import Job
from steelyard.projects import batch_control
from steelyard.projects import service as projects
from steelyard.projects.models import Batch
from steelyard.tasks import create
from steelyard.tasks.models import Task
from steelyard.tasks.repository import batch_counts
from steelyard.workflow import batches

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
CALLBACK = "https://example.com/batch-done"


def _org(db: Database, *, is_test: bool = False) -> Actor:
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"batches-{new_id()}").org
        actor = Actor(org_id=org.id, is_test=is_test, kind="api_key", role="admin")
        projects.create_project(s, actor, {"name": "p", "type": "categorization"}, NOW)
    return actor


def _batch(db: Database, actor: Actor, name: str = "b", *, staging: bool = False) -> None:
    body = {"project": "p", "name": name, "callback": CALLBACK, "staging_batch": staging}
    with db.unit_of_work() as s:
        projects.create_batch(s, actor, body, NOW)


def _add_tasks(db: Database, actor: Actor, n: int, batch: str = "b") -> list[str]:
    ids = []
    with db.unit_of_work() as s:
        for i in range(n):
            body = {
                "batch": batch,
                "attachment": f"text {i}",
                "attachment_type": "text",
                "categories": ["good", "bad"],
            }
            new = create.read_new_task("categorization", body)
            defaults = create.task_defaults(s, actor, new)
            checked = create.check_new_task(new, defaults, is_test=actor.is_test)
            ids.append(batches.insert_task(s, actor, new, checked, NOW).task.task_id)
    return ids


def _state(db: Database, actor: Actor, name: str = "b") -> tuple[str, int]:
    """The batch's status and how many callbacks it has queued."""
    with db.unit_of_work(write=False) as s:
        batch = projects.get_batch(s, actor, name)
        jobs = s.scalars(
            select(Job).where(Job.org_id == actor.org_id, Job.kind == outbox.BATCH_CALLBACK)
        ).all()
        return batch.status, sum(1 for j in jobs if j.payload == {"batch_id": batch.id})


def test_completing_the_last_pending_task_completes_the_batch(db: Database) -> None:
    actor = _org(db)
    _batch(db, actor)
    first, second = _add_tasks(db, actor, 2)
    with db.unit_of_work() as s:
        task = s.scalars(select(Task).where(Task.task_id == first)).one()
        batches.complete_task(s, task, {"category": "good"}, LATER, confidence=0.9)
    assert _state(db, actor) == ("in_progress", 0)
    with db.unit_of_work() as s:
        task = s.scalars(select(Task).where(Task.task_id == second)).one()
        batches.complete_task(s, task, {"category": "bad"}, LATER)
    assert _state(db, actor) == ("completed", 1)
    with db.unit_of_work(write=False) as s:
        batch = projects.get_batch(s, actor, "b")
        assert batch.completed_at == LATER
        assert batch_counts(s, batch) == {"pending": 0, "completed": 2, "error": 0, "canceled": 0}


def test_canceling_the_last_pending_task_completes_the_batch(db: Database) -> None:
    actor = _org(db)
    _batch(db, actor)
    first, second = _add_tasks(db, actor, 2)
    with db.unit_of_work() as s:
        batches.cancel_task(s, actor, first, clear_unique_id=False, now=LATER)
    assert _state(db, actor) == ("in_progress", 0)
    with db.unit_of_work() as s:
        batches.cancel_task(s, actor, second, clear_unique_id=False, now=LATER)
    assert _state(db, actor) == ("completed", 1)


def test_a_test_task_completes_its_batch_as_it_is_created(db: Database) -> None:
    actor = _org(db, is_test=True)
    _batch(db, actor)
    _add_tasks(db, actor, 1)
    assert _state(db, actor) == ("completed", 1)
    # Another task reopens the batch, and completing at once completes it again: a second
    # callback, as in Scale.
    _add_tasks(db, actor, 1)
    assert _state(db, actor) == ("completed", 2)


def test_a_paused_batch_completes_on_resume_not_before(db: Database) -> None:
    actor = _org(db)
    _batch(db, actor)
    (only,) = _add_tasks(db, actor, 1)
    with db.unit_of_work() as s:
        batch_control.pause(s, actor, projects.get_batch(s, actor, "b", for_update=True), NOW)
    with db.unit_of_work() as s:
        batches.cancel_task(s, actor, only, clear_unique_id=False, now=LATER)
    assert _state(db, actor) == ("paused", 0)
    with db.unit_of_work() as s:
        batches.resume_batch(s, actor, projects.get_batch(s, actor, "b", for_update=True), LATER)
    assert _state(db, actor) == ("completed", 1)


def test_a_staging_batch_completes_on_finalize_not_before(db: Database) -> None:
    actor = _org(db)
    _batch(db, actor, staging=True)
    (only,) = _add_tasks(db, actor, 1)
    with db.unit_of_work() as s:
        batches.cancel_task(s, actor, only, clear_unique_id=False, now=LATER)
    assert _state(db, actor) == ("staging", 0)
    with db.unit_of_work() as s:
        assert batches.finalize_batch(s, actor, "b", LATER).status == "completed"
    assert _state(db, actor) == ("completed", 1)
    with db.unit_of_work() as s:  # finalize is idempotent and completes nothing twice
        assert batches.finalize_batch(s, actor, "b", LATER).status == "completed"
    assert _state(db, actor) == ("completed", 1)


def test_an_empty_batch_is_not_complete(db: Database) -> None:
    actor = _org(db)
    _batch(db, actor, staging=True)
    with db.unit_of_work() as s:
        assert batches.finalize_batch(s, actor, "b", LATER).status == "in_progress"
    assert _state(db, actor) == ("in_progress", 0)


def test_canceling_a_batch_cancels_its_pending_tasks_and_never_completes_it(
    db: Database,
) -> None:
    actor = _org(db)
    _batch(db, actor)
    first, _, _ = _add_tasks(db, actor, 3)
    with db.unit_of_work() as s:
        task = s.scalars(select(Task).where(Task.task_id == first)).one()
        batches.complete_task(s, task, {"category": "good"}, LATER)
    with db.unit_of_work() as s:
        batch = projects.get_batch(s, actor, "b", for_update=True)
        batch, n = batches.cancel_batch(s, actor, batch, LATER)
        assert n == 2
    assert _state(db, actor) == ("canceled", 0)
    with db.unit_of_work(write=False) as s:
        batch = s.scalars(select(Batch).where(Batch.org_id == actor.org_id)).one()
        assert batch_counts(s, batch) == {"pending": 0, "completed": 1, "error": 0, "canceled": 2}
