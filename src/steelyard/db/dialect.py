"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from steelyard.tasks.models import TaskCount


def increment_count(session: Session, key: dict[str, Any], delta: int) -> None:
    """``task_counts[key].n += delta``, creating the row when missing (an atomic upsert)."""
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    stmt = insert(TaskCount).values(**key, n=delta)
    stmt = stmt.on_conflict_do_update(
        index_elements=[
            TaskCount.org_id,
            TaskCount.is_test,
            TaskCount.project_id,
            TaskCount.batch_id,
            TaskCount.type,
            TaskCount.status,
        ],
        set_={"n": TaskCount.n + delta},
    )
    session.execute(stmt)


def skip_locked(session: Session, stmt: Select[Any]) -> Select[Any]:
    """Row-lock what ``stmt`` selects, skipping rows other transactions hold (PostgreSQL).

    SQLite has no row locks; write transactions there are serialised by ``BEGIN IMMEDIATE``.
    """
    if _dialect(session) == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name
