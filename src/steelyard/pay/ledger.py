"""Writing and reading the ledger: every entry with its two postings, in one statement each;
balances as sums. Nothing is ever updated or deleted here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from steelyard.config import Settings
from steelyard.db.base import new_id
from steelyard.errors import ValidationError
from steelyard.pay.models import ORGANIZATION, WORKER, PayEntry, PayOrgSettings, PayPosting
from steelyard.projects.pay_settings import currency_code, to_minor


@dataclass(frozen=True, slots=True)
class NewEntry:
    user_id: str
    type: str
    amount_minor: int
    currency: str
    reason: str
    source_kind: str
    source_id: str
    period: str
    occurred_at: datetime
    project_id: str | None = None
    active_seconds: float = 0.0


def post(session: Session, org_id: str, entries: Sequence[NewEntry], now: datetime) -> int:
    """Append ``entries``, each with its worker and organization postings (summing to zero);
    returns how many were new. The unique source index skips an entry already written."""
    if not entries:
        return 0
    rows: list[dict[str, object]] = []
    legs: list[dict[str, object]] = []
    for e in entries:
        entry_id = new_id()
        rows.append(
            {
                "id": entry_id,
                "org_id": org_id,
                "user_id": e.user_id,
                "project_id": e.project_id,
                "type": e.type,
                "amount_minor": e.amount_minor,
                "currency": e.currency,
                "reason": e.reason,
                "source_kind": e.source_kind,
                "source_id": e.source_id,
                "period": e.period,
                "active_seconds": e.active_seconds,
                "occurred_at": e.occurred_at,
                "created_at": now,
            }
        )
        common = {"entry_id": entry_id, "org_id": org_id, "currency": e.currency}
        legs.append(
            {"id": new_id(), **common, "account": WORKER, "user_id": e.user_id}
            | {"amount_minor": e.amount_minor}
        )
        legs.append(
            {"id": new_id(), **common, "account": ORGANIZATION, "user_id": None}
            | {"amount_minor": -e.amount_minor}
        )
    # An entry already written (by an earlier run, or one running at the same time) is left as
    # it is, and so are its postings: the same work is never paid twice.
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(cast(Table, PayEntry.__table__))
        .on_conflict_do_nothing(
            index_elements=["org_id", "type", "source_kind", "source_id", "user_id"]
        )
        .returning(cast(Table, PayEntry.__table__).c.id)
    )
    written = set(session.scalars(statement, rows))
    legs = [leg for leg in legs if leg["entry_id"] in written]
    if legs:
        # Core executemany: the ORM's bulk path splits rows at each NULL ``user_id`` (every
        # other posting), one statement a row.
        session.execute(insert(cast(Table, PayPosting.__table__)), legs)
    return len(written)


@dataclass(frozen=True, slots=True)
class OrgPay:
    """An organization's currency and hourly floor (minor units)."""

    currency: str
    floor_minor: int


def org_pay(session: Session, org_id: str, settings: Settings) -> OrgPay:
    """The organization's currency (its own, else ``STEELYARD_WAGE_CURRENCY``) and floor:
    ``STEELYARD_MIN_HOURLY_WAGE`` in that currency's minor units, or the organization's own
    floor when higher (a lower one is never used)."""
    own = session.get(PayOrgSettings, org_id)
    currency = currency_code(
        (own.currency if own and own.currency else None) or settings.wage_currency,
        "STEELYARD_WAGE_CURRENCY",
    )
    floor = to_minor(settings.min_hourly_wage, currency)
    if own is not None and own.min_hourly_minor is not None:
        floor = max(floor, own.min_hourly_minor)
    return OrgPay(currency, floor)


def set_org_pay(
    session: Session,
    org_id: str,
    settings: Settings,
    *,
    currency: str | None,
    floor_minor: int | None,
) -> OrgPay:
    """Set an organization's currency and/or hourly floor (refused below the global floor)."""
    own = session.get(PayOrgSettings, org_id) or PayOrgSettings(org_id=org_id)
    if currency is not None:
        code = currency_code(currency, "currency")
        if code != own.currency and floor_minor is None:
            # A floor in another currency's minor units means nothing in this one.
            own.min_hourly_minor = None
        own.currency = code
    if floor_minor is not None:
        base = to_minor(settings.min_hourly_wage, own.currency or settings.wage_currency)
        if floor_minor < base:
            raise ValidationError(
                f"min_hourly_minor may only raise the floor ({base}).", field="min_hourly_minor"
            )
        own.min_hourly_minor = floor_minor
    session.add(own)
    session.flush()
    return org_pay(session, org_id, settings)


def balance(session: Session, org_id: str, user_id: str | None) -> int:
    """A worker's balance (``user_id``), or the organization's liability (``None``)."""
    stmt = select(func.coalesce(func.sum(PayPosting.amount_minor), 0)).where(
        PayPosting.org_id == org_id
    )
    if user_id is None:
        stmt = stmt.where(PayPosting.account == ORGANIZATION)
    else:
        stmt = stmt.where(PayPosting.account == WORKER, PayPosting.user_id == user_id)
    return int(session.scalar(stmt) or 0)
