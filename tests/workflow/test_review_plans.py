"""The review queries are answered from indexes: a reviewer's next walks the waiting reviews in
age order (no scan of the reviews or the tasks, no sort), the held-lease and expiry lookups are
seeks, and the progress counts read the project's part of one index. SQLite's plans are
deterministic even on empty tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.workflow import review
from steelyard.workflow.models import Review
from tests import plans

USER = "u" * 24
ACTOR = Actor(org_id="o" * 24, is_test=False, kind="user", role="reviewer", user_id=USER)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    yield from plans.migrated_sqlite(tmp_path_factory)


_plan = plans.sqlite_plan


@pytest.mark.parametrize(
    ("project_id", "index"),
    [(None, "ix_reviews_org_status"), ("p" * 24, "ix_reviews_project_status")],
)
def test_next_review_walks_the_waiting_reviews_in_order(
    db: Database, project_id: str | None, index: str
) -> None:
    plan = _plan(db, review.candidate_statement(ACTOR, USER, project_id))
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert "SCAN" not in plan.replace(f"SCAN reviews USING INDEX {index}", ""), plan
    # "Did this reviewer label it": a probe of the labels' (task, user) index.
    assert "ux_labels_task_user" in plan, plan


def test_held_review_and_expired_reviews_are_seeks(db: Database) -> None:
    held = select(Review).where(
        Review.reviewer_id == USER, Review.status == review._ACTIVE, Review.org_id == ACTOR.org_id
    )
    plan = _plan(db, held)
    assert "ix_reviews_reviewer_active" in plan, plan
    expired = (
        select(Review.id)
        .where(Review.status == review._ACTIVE, Review.expires_at <= NOW)
        .order_by(Review.expires_at)
        .limit(review.RECLAIM_BATCH)
    )
    plan = _plan(db, expired)
    assert "ix_reviews_active_expiry" in plan and "TEMP B-TREE" not in plan, plan


def test_decided_counts_read_the_projects_part_of_one_index(db: Database) -> None:
    stmt = (
        select(Review.status, func.count())
        .where(
            Review.org_id == ACTOR.org_id,
            Review.project_id == "p" * 24,
            Review.status.in_(review.DECISIONS),
        )
        .group_by(Review.status)
    )
    plan = _plan(db, stmt)
    assert "ix_reviews_project_status" in plan, plan
    assert "SCAN reviews" not in plan.replace("SCAN reviews USING INDEX", ""), plan
