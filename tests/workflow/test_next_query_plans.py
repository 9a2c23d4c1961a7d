"""The hot queries of ``POST /api/work/next`` are answered from indexes, in ``seq`` order.

Next runs on every worker's every task at a million tasks: the candidate must come from the
pending tasks' index in order (no ``SCAN tasks``, no ``TEMP B-TREE``), "has this worker
labeled or skipped it" must be an index probe per candidate, and the held-lease and expired-
lease lookups must be index seeks (the expiry one on the partial index of active assignments,
which only a literal ``'active'`` can use). SQLite's plans are deterministic even on empty tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.workflow import leases
from steelyard.workflow.models import Assignment

USER = "u" * 24
ACTOR = Actor(org_id="o" * 24, is_test=False, kind="user", role="annotator", user_id=USER)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


def _plan(db: Database, stmt: Any) -> str:
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        return " | ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))


@pytest.mark.parametrize(
    ("project_id", "index"),
    [(None, "ix_tasks_scope_status_seq"), ("p" * 24, "ix_tasks_project_status_seq")],
)
def test_next_candidate_walks_pending_tasks_in_order(
    db: Database, project_id: str | None, index: str
) -> None:
    with db.unit_of_work(write=False) as s:
        stmt = leases._candidates(s, ACTOR, USER, project_id)
    plan = _plan(db, stmt)
    assert "SCAN tasks" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert f"INDEX {index} " in plan, plan
    # One probe per candidate on (task, worker, status), not a scan of the worker's history.
    assert "INDEX ix_assignments_task_user (task_seq=? AND user_id=? AND status=?)" in plan, plan


def test_held_lease_is_an_index_seek(db: Database) -> None:
    stmt = select(Assignment).where(
        Assignment.user_id == USER,
        Assignment.status == leases.ACTIVE,
        Assignment.org_id == ACTOR.org_id,
    )
    plan = _plan(db, stmt)
    # (user_id, status) or the partial unique index on the active rows: a seek either way.
    assert "SCAN" not in plan, plan
    assert "(user_id=?" in plan, plan


def test_expired_leases_are_found_by_the_expiry_index(db: Database) -> None:
    stmt = (
        select(Assignment.id)
        .where(Assignment.status == leases.ACTIVE, Assignment.expires_at <= NOW)
        .order_by(Assignment.expires_at)
        .limit(leases.RECLAIM_BATCH)
    )
    plan = _plan(db, stmt)
    assert "ix_assignments_active_expiry" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
