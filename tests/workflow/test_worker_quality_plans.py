"""The pause check runs inside a gold submit's write: its reads are index seeks, never a scan of
the project's gold answers or pauses (SQLite's plans are deterministic even on empty tables)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from steelyard.db.engine import Database
from steelyard.workflow import worker_quality
from tests import plans

ORG, PROJECT, USER = "o" * 24, "p" * 24, "u" * 24


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    yield from plans.migrated_sqlite(tmp_path_factory)


_plan = plans.sqlite_plan


@pytest.mark.parametrize("since", [None, datetime(2026, 11, 30, tzinfo=UTC)])
def test_a_workers_gold_answers_are_a_seek(db: Database, since: datetime | None) -> None:
    stmt = worker_quality.gold_answers_statement(ORG, PROJECT, USER, since, 200)
    plan = _plan(db, stmt)
    assert "SCAN" not in plan, plan
    assert (
        "ix_quality_answers_project_user (project_id=? AND user_id=? AND kind=? AND status=?)"
        in plan
    ), plan


def test_the_last_lift_is_a_seek(db: Database) -> None:
    stmt = worker_quality.last_lift_statement(ORG, PROJECT, USER)
    plan = _plan(db, stmt)
    assert "SCAN" not in plan, plan
    assert "ix_worker_pauses_org_status (org_id=? AND status=?)" in plan, plan


def test_the_blocking_pause_is_a_seek(db: Database) -> None:
    plan = _plan(db, worker_quality.blocking_pause_statement(ORG, PROJECT, USER))
    assert "SCAN" not in plan, plan
    assert "ix_worker_pauses_org_status (org_id=? AND status=?)" in plan, plan
