"""The reports' queries read through indexes (as ``test_query_plans.py`` does for task pages).

Progress reads ``task_counts`` by its primary key's (org, env, project) prefix: a few rows per
batch whatever the number of tasks. The worker table and the agreement sample are driven from
the project's task index into the assignments' and labels' task indexes; the agreement sample
comes out in that index's order, so its ``LIMIT`` stops the read without sorting the project.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.workflow import agreement_report, reports

ACTOR = Actor(org_id="o" * 24, is_test=False, kind="api_key", role="admin")
PROJECT = "p" * 24

SHAPES: dict[str, Any] = {
    "progress": lambda: reports.progress_statement(ACTOR, PROJECT),
    "workers": lambda: reports.workers_statement(ACTOR, PROJECT, datetime.now(UTC)),
    "agreement": lambda: agreement_report.labels_statement(ACTOR, PROJECT, 100_001),
}
#: Each table the query reads, and the index it must read it by (SQLite's names).
EXPECTED = {
    "progress": {"task_counts": "sqlite_autoindex_task_counts_1"},
    "workers": {
        "tasks": "ix_tasks_project_status_seq",
        "assignments": "ix_assignments_task",
    },
    "agreement": {"tasks": "ix_tasks_project_seq", "labels": "ix_labels_task"},
}


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A fresh SQLite database: its plans are deterministic even on empty tables."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


def _plan(db: Database, stmt: Any, prefix: str) -> str:
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        if not db.is_sqlite:
            # The suite's tables are small: make the planner show the index it can use rather
            # than the scan it would rightly prefer on a few rows.
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # this transaction only
        return " | ".join(str(row[-1]) for row in conn.execute(text(prefix + sql)))


@pytest.mark.parametrize("shape", SHAPES)
def test_report_reads_through_indexes(sqlite: Database, shape: str) -> None:
    plan = _plan(sqlite, SHAPES[shape](), "EXPLAIN QUERY PLAN ")
    assert "SCAN " not in plan, plan
    for table, index in EXPECTED[shape].items():
        assert f"SEARCH {table} USING " in plan and f"INDEX {index} " in plan, plan
    if shape == "progress":
        # The whole (org, env, project) prefix, not just the organization.
        assert "(org_id=? AND is_test=? AND project_id=?)" in plan, plan
    if shape == "agreement":
        assert "TEMP B-TREE" not in plan, plan  # in index order: the LIMIT ends the read


def test_progress_reads_the_counters_by_key_on_each_backend(db: Database) -> None:
    """On the suite's databases (SQLite, and PostgreSQL when configured), tables not empty."""
    if db.is_sqlite:
        plan = _plan(db, SHAPES["progress"](), "EXPLAIN QUERY PLAN ")
        assert "SEARCH task_counts USING INDEX sqlite_autoindex_task_counts_1 " in plan, plan
        assert "(org_id=? AND is_test=? AND project_id=?)" in plan, plan
        return
    plan = _plan(db, SHAPES["progress"](), "EXPLAIN ")
    assert "Index Scan using pk_task_counts on task_counts" in plan, plan
    condition = plan.split("Index Cond:")[1].split("|")[0]
    assert "org_id" in condition and "is_test" in condition and "project_id" in condition, plan
    assert "Seq Scan" not in plan, plan
