"""What the query-plan tests share: a migrated SQLite database (empty: the planner must choose
the index from the schema alone) and the plan SQLite gives a statement, one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade


def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


def sqlite_plan(db: Database, stmt: Any) -> str:
    """``EXPLAIN QUERY PLAN`` of ``stmt`` with its values inlined, the steps joined by ``|``."""
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        return " | ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
