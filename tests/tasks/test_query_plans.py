"""Every list filter the Scale client sends is answered from an index, in ``seq`` order.

A page at a million tasks must not scan the table or sort it; SQLite's plan says so plainly
(``SCAN tasks`` or ``USE TEMP B-TREE FOR ORDER BY`` would be the failures).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.tasks import repository

ACTOR = Actor(org_id="o" * 24, is_test=False, kind="api_key", role="admin")

#: The index each shape must use: the one that reads only the rows of the page.
SHAPES = {
    "all": repository.TaskFilters(),
    "project": repository.TaskFilters(project_id="p" * 24),
    "project+status": repository.TaskFilters(project_id="p" * 24, status="pending"),
    "batch": repository.TaskFilters(batch_id="b" * 24),
    "batch+status": repository.TaskFilters(batch_id="b" * 24, status="completed"),
    "status": repository.TaskFilters(status="pending"),
    "project+tags": repository.TaskFilters(project_id="p" * 24, tags=["x"]),
}


EXPECTED = {
    "all": "ix_tasks_scope_seq",
    "project": "ix_tasks_project_seq",
    "project+status": "ix_tasks_project_status_seq",
    "batch": "ix_tasks_batch_seq",
    "batch+status": "ix_tasks_batch_status_seq",
    "status": "ix_tasks_scope_status_seq",
    # Driven from the tag: a rare tag is found without reading the project's tasks.
    "project+tags": "ix_task_tags_tag",
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A fresh SQLite database: its plans are deterministic even on an empty table."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.mark.parametrize("shape", SHAPES)
def test_page_uses_an_index_in_order(db: Database, shape: str) -> None:
    stmt = repository.page_statement(ACTOR, SHAPES[shape], after=10, limit=101)
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        plan = " | ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "SCAN tasks" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert f"INDEX {EXPECTED[shape]} " in plan, plan  # USING INDEX or USING COVERING INDEX
