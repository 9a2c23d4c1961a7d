"""The sweep on SQLite and PostgreSQL: a label, a gold answer and a review are each paid once at
the project's rates; a sweep racing another pays nothing twice; an early close moves later
work to the next period; an organization's own floor may only be higher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import ValidationError
from steelyard.pay import rules
from steelyard.pay.ledger import org_pay, post, set_org_pay
from steelyard.pay.models import PIECE_RATE, PayEntry, PayPosting
from steelyard.pay.periods import close_period
from steelyard.pay.sweep import completed_work, entry_for, paid_projects, sweep
from tests.api.helpers import name
from tests.api.quality_helpers import answer_gold, categorization_project, gold_item
from tests.api.quality_helpers import project_id as project_id_of
from tests.api.quality_helpers import user_id as user_id_of
from tests.api.test_review import Ops

PAY = {"piece_rate_minor": 7, "currency": "USD", "review_rate_minor": 3}


def _entries(db: Database, org_id: str) -> list[PayEntry]:
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(PayEntry).where(PayEntry.org_id == org_id)))


def _sweep(db: Database, settings: Settings, org_id: str) -> int:
    now = datetime.now(UTC) + timedelta(seconds=1)
    with db.unit_of_work() as session:
        return sweep(session, org_id, org_pay(session, org_id, settings), now, now)


def test_labels_gold_answers_and_reviews_are_paid_once(ops: Ops, settings: Settings) -> None:
    project = name("pay")
    categorization_project(ops.http, ops.org.live_key, project, review={"mode": "all"}, pay=PAY)
    ops.task(project)
    worker_email, worker = ops.person()
    _, reviewer = ops.person("reviewer")
    ops.label(worker, project, "cat")
    offer = ops.next_review(reviewer, project)
    assert offer.status_code == 200, offer.text
    assert ops.decide(reviewer, offer.json()["review_id"], "accept").status_code == 200
    item = gold_item(ops.http, ops.org.live_key, project)
    pid = project_id_of(ops.db, ops.org.org_id, project)
    worker_id = user_id_of(ops.db, worker_email)
    answer_gold(ops.db, ops.org.org_id, pid, item, worker_id, "dog", "cat")
    # An unpaid project's work is not in the ledger.
    other = name("unpaid")
    categorization_project(ops.http, ops.org.live_key, other)
    ops.task(other)
    ops.label(worker, other, "cat")

    assert _sweep(ops.db, settings, ops.org.org_id) == 3
    assert _sweep(ops.db, settings, ops.org.org_id) == 0
    entries = _entries(ops.db, ops.org.org_id)
    kinds = sorted((e.source_kind, e.amount_minor) for e in entries)
    assert kinds == [("label", 7), ("quality_answer", 7), ("review", 3)]
    assert {e.project_id for e in entries} == {pid}
    # Gold looks like live work to the worker.
    assert len({e.reason for e in entries if e.source_kind != "review"}) == 1
    assert all(e.type == PIECE_RATE and e.period == rules.week_of(e.occurred_at) for e in entries)
    with ops.db.unit_of_work(write=False) as session:
        legs = session.execute(
            select(PayPosting.entry_id, func.sum(PayPosting.amount_minor), func.count())
            .where(PayPosting.org_id == ops.org.org_id)
            .group_by(PayPosting.entry_id)
        ).all()
    assert len(legs) == 3 and all(total == 0 and n == 2 for _, total, n in legs)


def test_a_sweep_racing_another_pays_nothing_twice(ops: Ops, settings: Settings) -> None:
    project = name("pay")
    categorization_project(ops.http, ops.org.live_key, project, pay=PAY)
    _, worker = ops.person()
    for _ in range(3):
        ops.task(project)
        ops.label(worker, project, "cat")
    now = datetime.now(UTC) + timedelta(seconds=1)
    # One run reads the unpaid work, another writes it all first, then the first writes.
    with ops.db.unit_of_work(write=False) as session:
        org = org_pay(session, ops.org.org_id, settings)
        projects = paid_projects(session, ops.org.org_id)
        late = [
            entry_for(w, projects[w.project_id], org, {})
            for w in completed_work(session, ops.org.org_id, list(projects), now)
        ]
    assert len(late) == 3
    assert _sweep(ops.db, settings, ops.org.org_id) == 3
    with ops.db.unit_of_work() as session:
        assert post(session, ops.org.org_id, late, now) == 0
    with ops.db.unit_of_work(write=False) as session:
        postings = session.scalar(select(func.count()).where(PayPosting.org_id == ops.org.org_id))
    assert len(_entries(ops.db, ops.org.org_id)) == 3 and postings == 6


def test_work_after_an_early_close_counts_in_the_next_week(ops: Ops, settings: Settings) -> None:
    project = name("pay")
    categorization_project(ops.http, ops.org.live_key, project, pay=PAY)
    _, worker = ops.person()
    ops.task(project)
    ops.label(worker, project, "cat")
    now = datetime.now(UTC)
    with ops.db.unit_of_work() as session:
        closed = close_period(session, ops.org.org_id, settings, now)
    assert closed.ends_at == now and len(closed.workers) == 1
    ops.task(project)
    ops.label(worker, project, "dog")
    assert _sweep(ops.db, settings, ops.org.org_id) == 1
    periods = sorted(e.period for e in _entries(ops.db, ops.org.org_id) if e.type == PIECE_RATE)
    assert periods == [closed.period, rules.next_week(closed.period)]


def test_an_organizations_floor_may_only_be_higher(
    db: Database, settings: Settings, ops: Ops
) -> None:
    with db.unit_of_work() as session:
        with pytest.raises(ValidationError) as info:
            set_org_pay(session, ops.org.org_id, settings, currency=None, floor_minor=1499)
        assert info.value.field == "min_hourly_minor"
    with db.unit_of_work() as session:
        raised = set_org_pay(session, ops.org.org_id, settings, currency=None, floor_minor=2000)
    assert raised.floor_minor == 2000 and raised.currency == "USD"
    with db.unit_of_work(write=False) as session:
        assert org_pay(session, ops.org.org_id, settings).floor_minor == 2000


def test_each_item_is_paid_at_the_rate_in_force_when_completed(
    ops: Ops, settings: Settings
) -> None:
    project = name("pay")
    categorization_project(ops.http, ops.org.live_key, project, pay=PAY)
    _, worker = ops.person()
    ops.task(project)
    ops.label(worker, project, "cat")
    raised = {**PAY, "piece_rate_minor": 9}
    ops.ok("POST", f"/v1/projects/{project}/setParams", json={"pay": raised})
    ops.task(project)
    ops.label(worker, project, "cat")
    assert _sweep(ops.db, settings, ops.org.org_id) == 2
    entries = sorted(_entries(ops.db, ops.org.org_id), key=lambda e: e.occurred_at)
    assert [e.amount_minor for e in entries] == [7, 9]
