"""``create_task`` inserts with Core. A live task comes back as a ``TaskRow`` holding what
was stored; a test-mode task is attached to the session fully loaded, and completed at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, select

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.db.base import new_id
from steelyard.db.engine import Database
from steelyard.projects import service as projects
from steelyard.tasks import create
from steelyard.tasks.models import Task, TaskCount, TaskRow, TaskTag

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BODY = {
    "project": "p",
    "attachment": "Great product.",
    "attachment_type": "text",
    "categories": ["good", "bad"],
    "unique_id": "u-1",
    "tags": ["a", "b"],
    "metadata": {"k": 1},
}


def _actor(db: Database, *, is_test: bool) -> Actor:
    with db.unit_of_work() as s:
        org = accounts.create_organization(s, f"create-{new_id()}").org
        actor = Actor(org_id=org.id, is_test=is_test, kind="api_key", role="admin")
        projects.create_project(s, actor, {"name": "p", "type": "categorization"}, NOW)
    return actor


def test_a_task_row_has_every_column_of_a_task_in_order() -> None:
    # repository.page builds TaskRows positionally from the columns in this order.
    assert list(TaskRow.__slots__) == [attr.key for attr in inspect(Task).column_attrs]


def test_live_task_is_inserted_tagged_and_counted(db: Database) -> None:
    actor = _actor(db, is_test=False)
    with db.unit_of_work() as s:
        created = create.create_task(s, actor, "categorization", BODY, NOW)
        task = created.task
        assert isinstance(task, TaskRow)
        assert (created.project_name, created.batch_name) == ("p", None)
    with db.unit_of_work(write=False) as s:
        stored = s.scalars(select(Task).where(Task.task_id == task.task_id)).one()
        for column in TaskRow.__slots__:
            assert getattr(stored, column) == getattr(task, column), column
        assert stored.metadata_ == {"k": 1} and stored.tags == ["a", "b"]
        assert stored.audits == [] and stored.response is None
        tags = s.scalars(select(TaskTag.tag).where(TaskTag.task_seq == task.seq)).all()
        assert sorted(tags) == ["a", "b"]
        counts = s.scalars(
            select(TaskCount.n).where(TaskCount.org_id == actor.org_id, TaskCount.batch_id == "")
        ).all()
        assert counts == [1]


def test_two_tasks_do_not_share_their_list_columns(db: Database) -> None:
    actor = _actor(db, is_test=False)
    with db.unit_of_work() as s:
        one = create.create_task(s, actor, "categorization", {**BODY, "unique_id": "a"}, NOW)
        two = create.create_task(s, actor, "categorization", {**BODY, "unique_id": "b"}, NOW)
        one.task.audits.append({"x": 1})
        assert two.task.audits == []


def test_test_mode_task_completes_in_the_same_transaction(db: Database) -> None:
    actor = _actor(db, is_test=True)
    with db.unit_of_work() as s:
        task = create.create_task(s, actor, "categorization", BODY, NOW).task
        state = inspect(task)
        assert state.persistent and not state.unloaded and not state.expired_attributes
    with db.unit_of_work(write=False) as s:
        stored = s.scalars(select(Task).where(Task.task_id == task.task_id)).one()
        assert stored.status == "completed"
        assert stored.response is not None and stored.response["category"] in ("good", "bad")
        counts = s.scalars(
            select(TaskCount.status).where(TaskCount.org_id == actor.org_id, TaskCount.n > 0)
        ).all()
        assert counts == ["completed"]
