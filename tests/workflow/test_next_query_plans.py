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

import pytest
from sqlalchemy import select

from steelyard.accounts.schemas import Actor
from steelyard.db.engine import Database
from steelyard.workflow import completion, eligibility, leases
from steelyard.workflow.models import Assignment
from tests import plans

USER = "u" * 24
ACTOR = Actor(org_id="o" * 24, is_test=False, kind="user", role="annotator", user_id=USER)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    yield from plans.migrated_sqlite(tmp_path_factory)


_plan = plans.sqlite_plan


SCOPES = {
    "open": ((), (), ()),
    # Blocked projects, excluded batches and prioritized batches: the NOT IN lists and the
    # one-batch walks must not turn the walk into a scan or a sort.
    "restricted": (("x" * 24,), ("b" * 24, "c" * 24), ("d" * 24, "e" * 24)),
}


@pytest.mark.parametrize("scope_name", sorted(SCOPES))
@pytest.mark.parametrize(
    ("project_id", "index"),
    [(None, "ix_tasks_pending_order"), ("p" * 24, "ix_tasks_project_pending_order")],
)
def test_next_candidates_walk_pending_tasks_in_work_order(
    db: Database, project_id: str | None, index: str, scope_name: str
) -> None:
    blocked, excluded, prioritized = SCOPES[scope_name]
    scope = eligibility.WorkScope(project_id, blocked, excluded, prioritized)
    with db.unit_of_work(write=False) as s:
        statements = eligibility.candidates(s, ACTOR, USER, scope)
    assert len(statements) == len(prioritized) + 1
    plans = [_plan(db, stmt.params(params)) for stmt, params in statements]
    # Each prioritized batch on its own, in (priority DESC, seq) order, then the rest.
    expected = ["INDEX ix_tasks_batch_pending_order (org_id=? AND is_test=? AND batch_id=?)"] * len(
        prioritized
    ) + [f"INDEX {index} "]
    for plan, wanted in zip(plans, expected, strict=True):
        assert "SCAN tasks" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert wanted in plan, plan
        # One probe per candidate on (task, worker, status), not a scan of the worker's history.
        assert "INDEX ix_assignments_task_user (task_seq=? AND user_id=? AND status=?)" in plan, (
            plan
        )


def test_work_scope_reads_only_the_open_batches(db: Database) -> None:
    """The per-call scope queries are seeks: the organization's restricted projects, and its
    open batches (status index), never every batch it ever had."""
    with db.unit_of_work(write=False) as s:
        scope = eligibility.work_scope(s, ACTOR, USER, None)
        assert scope == eligibility.WorkScope(None, (), (), ())
    project_plan, batch_plan = (
        _plan(db, stmt) for stmt in eligibility.scope_statements(ACTOR, USER, None)
    )
    assert "SCAN studio_assignments" not in project_plan, project_plan
    assert "INDEX ix_batches_scope_status (org_id=? AND is_test=? AND status=?)" in batch_plan, (
        batch_plan
    )
    assert "SCAN studio_batch_groups" not in batch_plan, batch_plan


@pytest.mark.parametrize("project_id", [None, "p" * 24])
def test_the_workers_pauses_are_an_index_seek(db: Database, project_id: str | None) -> None:
    """Read on every next: the worker's blocking pauses, by (org, status) per status."""
    plan = _plan(db, eligibility.paused_statement(ACTOR, USER, project_id))
    assert "SCAN" not in plan, plan
    assert "ix_worker_pauses_org_status (org_id=? AND status=?)" in plan, plan


def test_held_lease_is_an_index_seek(db: Database) -> None:
    plan = _plan(db, leases.HELD.params(p_user_id=USER, p_org_id=ACTOR.org_id))
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


def test_gold_lookups_are_index_probes(db: Database) -> None:
    """What ``next`` adds for gold and qualification: the organization's projects with them
    (on every next: a probe of the partial index, nothing read for an organization without
    them) and the worker's held quality lease."""
    from steelyard.workflow import qualification
    from steelyard.workflow.models import QualityAnswer

    plan = _plan(db, qualification.QUALITY_PROJECTS.params(org_id=ACTOR.org_id))
    assert "INDEX ix_projects_quality (org_id=? AND is_test=?)" in plan, plan
    held = select(QualityAnswer.id).where(
        QualityAnswer.user_id == USER, QualityAnswer.status == leases.ACTIVE
    )
    assert "ux_quality_answers_user_active" in _plan(db, held)


def test_submit_reads_its_assignment_and_task_by_primary_key(db: Database) -> None:
    """The submit's one read (assignment joined to its task) and the reads of the labels a
    completing submit aggregates are seeks, whatever the size of the tables."""
    target = completion._TARGET.params(assignment_id="a" * 24, org_id=ACTOR.org_id, user_id=USER)
    plan = _plan(db, target)
    assert "SCAN" not in plan, plan
    assert "assignments USING INDEX sqlite_autoindex_assignments_1 (id=?)" in plan, plan
    assert "tasks USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    labels = _plan(db, completion._LABELS.params(task_seq=1))
    assert "SCAN labels" not in labels, labels
