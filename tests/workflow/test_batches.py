"""``workflow.batches``: every change after which a batch may be complete completes it, once,
with its callback queued in the same transaction; a batch that is not in progress waits."""

from __future__ import annotations

import threading
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
from steelyard.tasks import service as tasks_service
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


def _seqs(db: Database, task_ids: list[str]) -> list[int]:
    with db.unit_of_work(write=False) as s:
        stmt = select(Task.task_id, Task.seq).where(Task.task_id.in_(task_ids))
        rows = {task_id: seq for task_id, seq in s.execute(stmt)}
    return [rows[t] for t in task_ids]


def test_a_worker_completing_the_last_task_completes_the_batch_only_then(db: Database) -> None:
    """``complete_pending_task`` (a worker's submit) looks at the batch only when the task's
    pending counter reaches zero, and then completes it."""
    actor = _org(db)
    _batch(db, actor)
    seqs = _seqs(db, _add_tasks(db, actor, 3))
    for i, seq in enumerate(seqs):
        assert _state(db, actor) == ("in_progress", 0)
        with db.unit_of_work() as s:
            batches.complete_pending_task(s, seq, {"category": "good"}, LATER, confidence=0.8)
            # Only the last completion loads (and locks) the batch row.
            loaded = [o for o in s.identity_map.values() if isinstance(o, Batch)]
            assert bool(loaded) is (i == len(seqs) - 1)
    assert _state(db, actor) == ("completed", 1)
    with db.unit_of_work(write=False) as s:
        batch = projects.get_batch(s, actor, "b")
        assert batch_counts(s, batch) == {"pending": 0, "completed": 3, "error": 0, "canceled": 0}
        task = s.scalars(select(Task).where(Task.seq == seqs[0])).one()
        assert (task.status, task.response, task.confidence) == (
            "completed",
            {"category": "good"},
            0.8,
        )
        assert task.completed_at == LATER


def test_the_last_two_counters_zeroed_at_once_still_complete_the_batch(db: Database) -> None:
    """A batch whose tasks count under two counter rows (two task types): two transactions
    each complete the last pending task of one row at once. The first to lock the batch sees
    the other's task still pending; the second counts after the first committed, and completes
    the batch: exactly once, with one callback."""
    actor = _org(db)
    _batch(db, actor)
    first, second = _seqs(db, _add_tasks(db, actor, 2))
    with db.unit_of_work() as s:
        # The second task under another type's counter (as a legacy alias would be counted).
        task = s.scalars(select(Task).where(Task.seq == second)).one()
        tasks_service.count_task(s, task, -1)
        task.type = "comparison"
        tasks_service.count_task(s, task, +1)
    one = db.session()
    batches.complete_pending_task(one, first, {"category": "good"}, LATER)
    # ``one`` holds the batch row (PostgreSQL) or the write lock (SQLite) until it commits.
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with db.session() as two, two.begin():
                batches.complete_pending_task(two, second, {"category": "bad"}, LATER)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive(), "the second completion should wait for the first's lock"
    assert _state(db, actor) == ("in_progress", 0)
    one.commit()
    one.close()
    thread.join(timeout=30)
    assert not errors, errors
    assert _state(db, actor) == ("completed", 1)
