"""The refit check (``worker_models.due``, every 30 s in the job runner) reads only recent
labels and gold answers, by their time indexes: no scan of ``labels``, ``tasks`` or
``quality_answers``, whatever their size (before, it counted every label of every categorical
project each time: seconds at 10^6 tasks). Each recent label finds its task by primary key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.workflow import worker_models

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SINCE = NOW - timedelta(seconds=worker_models.LOOKBACK_SECONDS)
MARKS = {
    "none": {},
    # Projects fitted inside the window: their own watermark in a CASE, still one range scan.
    "watermarks": {"p" * 24: NOW - timedelta(seconds=60), "q" * 24: NOW - timedelta(seconds=5)},
}


#: ``sqlite_stat1`` rows as ``ANALYZE`` writes them on 10^6 tasks x 3 labels, all of them older
#: than the window. With such statistics SQLite flattened a plain CTE and scanned ``tasks``
#: (1.6 s at that size, as slow as counting everything); ``MATERIALIZED`` keeps the window first.
BIG_STATS = [
    ("tasks", None, "1000000"),
    ("tasks", "ix_tasks_scope_seq", "1000000 1000000 1000000 1"),
    ("tasks", "ix_tasks_project_seq", "1000000 1000000 1000000 1000000 1"),
    ("labels", "ix_labels_created", "3000000 3"),
    ("labels", "ix_labels_task", "3000000 3"),
    ("quality_answers", "ix_quality_answers_submitted", "300000 1"),
]


@pytest.fixture(scope="module", params=["empty", "big-stats"])
def sqlite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A fresh SQLite database: plans are deterministic on empty tables; and the same with the
    statistics of a large one (SQLite reads them at connect)."""
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    if request.param == "big-stats":
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("DELETE FROM sqlite_stat1"))
            for row in BIG_STATS:
                conn.execute(
                    text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (:t, :i, :s)"),
                    {"t": row[0], "i": row[1], "s": row[2]},
                )
        database.dispose()
        database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


def _plan(db: Database, stmt: Any) -> str:
    with db.engine.connect() as conn:
        if db.is_sqlite:
            sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
            rows = conn.execute(text("EXPLAIN QUERY PLAN " + sql))
            return " | ".join(str(row[-1]) for row in rows)
        # Bound, not inlined: a timestamp literal would reach PostgreSQL as text.
        compiled = stmt.compile(db.engine, compile_kwargs={"render_postcompile": True})
        # The suite's tables are small: make the planner show the index it can use.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        return " | ".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("marks", sorted(MARKS))
def test_recent_labels_and_gold_are_read_by_time_on_sqlite(sqlite: Database, marks: str) -> None:
    labels, gold = worker_models.recent_statements(SINCE, MARKS[marks])
    plan = _plan(sqlite, labels)
    # The only scan is of the materialized window itself.
    assert plan.replace("SCAN recent_labels", "").count("SCAN ") == 0, plan
    assert "MATERIALIZE recent_labels" in plan, plan
    assert "SEARCH labels USING INDEX ix_labels_created (created_at>?)" in plan, plan
    assert "SEARCH tasks USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    plan = _plan(sqlite, gold)
    assert plan.replace("SCAN recent_answers", "").count("SCAN ") == 0, plan
    assert "SEARCH quality_answers USING INDEX ix_quality_answers_submitted" in plan, plan


@pytest.mark.parametrize("marks", sorted(MARKS))
def test_recent_labels_and_gold_are_read_by_time_on_each_backend(db: Database, marks: str) -> None:
    """On the suite's databases (SQLite, and PostgreSQL when configured). The window starts
    after every row the session wrote, as at scale it holds a sliver of the tables: PostgreSQL
    then estimates it from the index's end, as it would in production."""
    since = datetime.now(UTC) + timedelta(days=1)
    shifted = {p: since + (m - SINCE) for p, m in MARKS[marks].items()}
    labels, gold = worker_models.recent_statements(since, shifted)
    plan = _plan(db, labels)
    if db.is_sqlite:
        assert "SCAN tasks" not in plan and "SCAN labels" not in plan, plan
        assert "ix_labels_created" in plan, plan
        return
    assert "Seq Scan" not in plan, plan
    # The window is materialized first, by its index; how the few dozen tasks of the suite's
    # database are then joined is the planner's call on its statistics (at scale, by key).
    assert "CTE recent_labels" in plan, plan
    assert "Scan on ix_labels_created" in plan or "Scan using ix_labels_created" in plan, plan
    plan = _plan(db, gold)
    assert "Seq Scan" not in plan and "ix_quality_answers_submitted" in plan, plan
