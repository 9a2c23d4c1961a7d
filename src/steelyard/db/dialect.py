"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.orm import Session

# One statement both databases understand (SQLite ≥ 3.24 and PostgreSQL share the upsert
# syntax). Written as text because it runs on every task create and status change, and building
# and cache-keying the equivalent dialect construct each time cost more than the SQL itself.
_INCREMENT = text(
    "INSERT INTO task_counts (org_id, is_test, project_id, batch_id, type, status, n) "
    "VALUES (:org_id, :is_test, :project_id, :batch_id, :type, :status, :n) "
    "ON CONFLICT (org_id, is_test, project_id, batch_id, type, status) "
    "DO UPDATE SET n = task_counts.n + excluded.n"
)
_MOVE = text(
    "INSERT INTO task_counts (org_id, is_test, project_id, batch_id, type, status, n) "
    "VALUES (:org_id, :is_test, :project_id, :batch_id, :type, :left, -1), "
    "(:org_id, :is_test, :project_id, :batch_id, :type, :entered, 1) "
    "ON CONFLICT (org_id, is_test, project_id, batch_id, type, status) "
    "DO UPDATE SET n = task_counts.n + excluded.n RETURNING status, n"
)


def increment_count(session: Session, key: dict[str, Any], delta: int) -> None:
    """``task_counts[key].n += delta``, creating the row when missing (an atomic upsert).

    Run on the session's connection: the ORM adds nothing to a text statement but its cost.
    """
    session.connection().execute(_INCREMENT, {**key, "n": delta})


def move_count(session: Session, key: dict[str, Any], left: str, entered: str) -> int:
    """One task of scope ``key`` moved from status ``left`` to ``entered``: both counters in one
    statement (one round trip while their rows are locked, on PostgreSQL); returns how many
    ``left`` has now."""
    rows = session.connection().execute(_MOVE, {**key, "left": left, "entered": entered})
    return next(int(n) for status, n in rows if status == left)


def skip_locked(session: Session, stmt: Select[Any]) -> Select[Any]:
    """Row-lock what ``stmt`` selects, skipping rows other transactions hold (PostgreSQL).

    SQLite has no row locks; write transactions there are serialised by ``BEGIN IMMEDIATE``.
    """
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt
