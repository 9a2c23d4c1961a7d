"""End to end, on SQLite and PostgreSQL: a project whose piece rate is below the floor for slow
workers; three workers of different speeds label through the API under a fake clock; closing
the period tops the slow ones up so everyone's effective hourly is at least the floor, and
closing it again adds nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from steelyard.accounts import security
from steelyard.api.app import create_app
from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.pay import rules, view
from steelyard.pay.ledger import balance
from steelyard.pay.models import MINIMUM_TOP_UP, PIECE_RATE, PayEntry, PayPosting
from steelyard.pay.payouts import create_payouts
from steelyard.pay.periods import close_period
from steelyard.projects.models import Project
from steelyard.workflow.models import Label
from tests.api.helpers import PASSWORD, auth, login, make_worker
from tests.api.serving import serving_app
from tests.conftest import Org

#: 10 cents an item: 36.00 an hour at 10 s, 12.00 at 30 s, 6.00 at 60 s; the floor is 15.00.
PIECE = 10
SPEEDS = {"fast": 10, "medium": 30, "slow": 60}
ITEMS = 5
FLOOR = 1500


def _start() -> datetime:
    """The real now (so the shared server's reaper, on the real clock, never takes these
    leases), moved to the next Monday when the work would run into another week."""
    now = datetime.now(UTC)
    if rules.week_of(now) != rules.week_of(now + timedelta(hours=2)):
        return rules.week_bounds(rules.week_of(now + timedelta(hours=2)))[0] + timedelta(hours=1)
    return now


def _project(http: httpx.Client, org: Org, params: dict[str, Any]) -> str:
    project = f"pay-{uuid.uuid4().hex[:8]}"
    r = http.post(
        "/v1/projects",
        json={"name": project, "type": "categorization", "params": params},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["params"]["pay"] == params["pay"]
    return project


@pytest.mark.parametrize(
    ("pay", "field"),
    [
        ({"currency": "USD"}, "params.pay.piece_rate_minor"),
        ({"piece_rate_minor": -1, "currency": "USD"}, "params.pay.piece_rate_minor"),
        ({"piece_rate_minor": 1.5, "currency": "USD"}, "params.pay.piece_rate_minor"),
        ({"piece_rate_minor": 10}, "params.pay.currency"),
        ({"piece_rate_minor": 10, "currency": "DOLLARS"}, "params.pay.currency"),
        ({"piece_rate_minor": 10, "currency": "USD", "tip": 1}, "params.pay.tip"),
        (
            {"piece_rate_minor": 10, "currency": "USD", "hourly_rate_minor": "5"},
            "params.pay.hourly_rate_minor",
        ),
        ("10 cents", "params.pay"),
    ],
)
def test_bad_pay_settings_are_400_naming_the_field(
    http: httpx.Client, org: Org, pay: Any, field: str
) -> None:
    body = {"name": f"p-{uuid.uuid4().hex[:8]}", "type": "categorization", "params": {"pay": pay}}
    r = http.post("/v1/projects", json=body, auth=auth(org.live_key))
    assert r.status_code == 400, r.text
    assert field in r.json()["error"], r.text


def test_three_speeds_end_at_or_above_the_floor(settings: Settings, db: Database, org: Org) -> None:
    clock = FrozenClock(_start())
    app = create_app(settings, clock=clock, run_jobs=False, migrate=False)
    hashed = security.hash_password(PASSWORD)
    with serving_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        project = _project(http, org, {"pay": {"piece_rate_minor": PIECE, "currency": "USD"}})
        for _ in range(ITEMS * len(SPEEDS)):
            r = http.post(
                "/v1/task/categorization",
                json={
                    "project": project,
                    "attachment": "a picture",
                    "attachment_type": "text",
                    "categories": ["cat", "dog"],
                },
                auth=auth(org.live_key),
            )
            assert r.status_code == 200, r.text
        workers = {speed: make_worker(db, org.org_id, password_hash=hashed) for speed in SPEEDS}
        headers = {speed: login(http, email) for speed, email in workers.items()}
        for speed, seconds in SPEEDS.items():
            for _ in range(ITEMS):
                r = http.post("/api/work/next", params={"project": project}, headers=headers[speed])
                assert r.status_code == 200, r.text
                clock.advance(seconds)
                done = http.post(
                    f"/api/work/{r.json()['assignment_id']}/submit",
                    json={"response": {"category": "cat"}},
                    headers=headers[speed],
                )
                assert done.status_code == 200, done.text
        with db.unit_of_work() as session:
            project_id = session.scalar(
                select(Project.id).where(Project.org_id == org.org_id, Project.name == project)
            )
            assert project_id is not None
            # A label rejected later is still paid.
            rejected = session.scalars(
                select(Label.id).where(Label.org_id == org.org_id).limit(1)
            ).one()
            session.execute(update(Label).where(Label.id == rejected).values(superseded=True))
        # Before any sweep the worker already sees their completed work, as pending.
        before = http.get("/api/work/earnings", headers=headers["slow"]).json()
        assert before["pending_minor"] == ITEMS * PIECE and before["balance_minor"] == 0
        assert before["by_type"][PIECE_RATE] == ITEMS * PIECE
        assert before["projects"][0]["effective_hourly_minor"] == 600
        period = rules.week_of(clock.now())
        with db.unit_of_work() as session:
            first = close_period(session, org.org_id, settings, clock.now())
        assert first.period == period and first.floor_minor == FLOOR
        by_email = {email: w for email, w in first.workers}
        for speed, seconds in SPEEDS.items():
            w = by_email[workers[speed]]
            assert w.active_seconds == pytest.approx(ITEMS * seconds)
            assert w.earned_minor == ITEMS * PIECE
            assert w.effective_hourly_minor is not None and w.effective_hourly_minor >= FLOOR
        assert by_email[workers["fast"]].top_up_minor == 0
        # 5 min at 15.00/h is 1.25; 0.50 earned.
        assert by_email[workers["slow"]].top_up_minor == 125 - ITEMS * PIECE
        assert by_email[workers["medium"]].top_up_minor == 63 - ITEMS * PIECE
        with db.unit_of_work(write=False) as session:
            count = session.scalar(select(func.count()).where(PayEntry.org_id == org.org_id))
            assert count == ITEMS * len(SPEEDS) + 2
            assert (
                session.scalar(
                    select(func.count()).where(
                        PayEntry.org_id == org.org_id,
                        PayEntry.source_id == rejected,
                        PayEntry.type == PIECE_RATE,
                    )
                )
                == 1
            )
            # Double entry: the postings sum to zero; balances are the sums of the entries.
            total = session.scalar(
                select(func.sum(PayPosting.amount_minor)).where(PayPosting.org_id == org.org_id)
            )
            assert total == 0
            for email, w in first.workers:
                user_id = w.user_id
                entries = session.scalar(
                    select(func.sum(PayEntry.amount_minor)).where(
                        PayEntry.org_id == org.org_id, PayEntry.user_id == user_id
                    )
                )
                assert balance(session, org.org_id, user_id) == entries
                assert entries == w.earned_minor + w.top_up_minor, email
            assert balance(session, org.org_id, None) == -sum(
                w.earned_minor + w.top_up_minor for _, w in first.workers
            )
            offer = view.offer(session, project_id)
            assert offer == {"rate_minor": PIECE, "currency": "USD", "estimated_seconds": 30.0}
        # Closing twice adds nothing.
        with db.unit_of_work() as session:
            second = close_period(session, org.org_id, settings, clock.now(), period)
        assert second.to_doc() == first.to_doc()
        assert set(first.to_doc()["workers"][0]) == {
            "email",
            "active_seconds",
            "earned_minor",
            "top_up_minor",
            "effective_hourly_minor",
        }
        with db.unit_of_work(write=False) as session:
            again = session.scalar(select(func.count()).where(PayEntry.org_id == org.org_id))
        assert again == count
        # The slow worker sees the top-up and an effective hourly at the floor.
        mine = http.get("/api/work/earnings", headers=headers["slow"])
        assert mine.status_code == 200, mine.text
        body = mine.json()
        assert body["currency"] == "USD"
        assert body["by_type"][MINIMUM_TOP_UP] == 75
        assert body["by_type"][PIECE_RATE] == ITEMS * PIECE
        assert body["balance_minor"] == 125 and body["pending_minor"] == 0
        [row] = body["projects"]
        assert row["project"] == project and row["rate_minor"] == PIECE
        assert row["effective_hourly_minor"] == 600
        [p] = body["periods"]
        assert p["period"] == period and p["effective_hourly_minor"] >= FLOOR
        # Payouts zero the balances they pay; a second run adds nothing.
        with db.unit_of_work() as session:
            paid = create_payouts(session, org.org_id, period, clock.now())
        amounts = {p.email: p.csv_row()[1] for p in paid}
        assert amounts == {
            workers["fast"]: "0.50",
            workers["medium"]: "0.63",
            workers["slow"]: "1.25",
        }
        with db.unit_of_work() as session:
            again_paid = create_payouts(session, org.org_id, period, clock.now())
            assert again_paid == paid
            for _, w in first.workers:
                assert balance(session, org.org_id, w.user_id) == 0
            assert balance(session, org.org_id, None) == 0
