"""The offer ``next`` shows (``pay.view.offer``) reads the estimate from an index walk, not a
scan of the project's history; the sweep's "already paid" probe is the unique source index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from steelyard.db.engine import Database
from steelyard.pay import view
from steelyard.pay.models import PIECE_RATE, PayEntry
from tests import plans


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    yield from plans.migrated_sqlite(tmp_path_factory)


_plan = plans.sqlite_plan


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
