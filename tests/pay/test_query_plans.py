"""The offer ``next`` shows (``pay.view.offer``) reads the estimate from an index walk, not a
scan of the project's history; the sweep's "already paid" probe is the unique source index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.pay import view
from steelyard.pay.models import PIECE_RATE, PayEntry


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


def test_the_estimate_walks_the_project_index_in_order(db: Database) -> None:
    plan = _plan(db, view.estimate_statement("p" * 24))
    assert "ix_pay_entries_project (project_id=? AND type=?)" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


def test_the_paid_probe_is_the_unique_source_index(db: Database) -> None:
    stmt = select(PayEntry.id).where(
        PayEntry.org_id == "o" * 24,
        PayEntry.type == PIECE_RATE,
        PayEntry.source_kind == "label",
        PayEntry.source_id == "l" * 24,
    )
    plan = _plan(db, stmt)
    assert "ux_pay_entries_source" in plan and "SCAN" not in plan, plan
