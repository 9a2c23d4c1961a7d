"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

from typing import Any, Literal, overload

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
_INCREMENT_RETURNING = text(_INCREMENT.text + " RETURNING n")


@overload
def increment_count(
    session: Session, key: dict[str, Any], delta: int, *, returning: Literal[False] = False
) -> None: ...
@overload
def increment_count(
    session: Session, key: dict[str, Any], delta: int, *, returning: Literal[True]
) -> int: ...
def increment_count(
    session: Session, key: dict[str, Any], delta: int, *, returning: bool = False
) -> int | None:
    """``task_counts[key].n += delta``, creating the row when missing (an atomic upsert);
    with ``returning``, the row's new ``n``.

    Run on the session's connection: the ORM adds nothing to a text statement but its cost.
    """
    conn = session.connection()
    if returning:
        return int(conn.execute(_INCREMENT_RETURNING, {**key, "n": delta}).scalar_one())
    conn.execute(_INCREMENT, {**key, "n": delta})
    return None


def skip_locked(session: Session, stmt: Select[Any]) -> Select[Any]:
    """Row-lock what ``stmt`` selects, skipping rows other transactions hold (PostgreSQL).

    SQLite has no row locks; write transactions there are serialised by ``BEGIN IMMEDIATE``.
    """
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt
