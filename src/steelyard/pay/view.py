"""What a worker sees of pay: the offer shown with each item (``offer``) and their earnings
(``earnings``): per project the rates, the estimated time per item and their own effective
hourly; entries by type; each period's active time, earnings and top-up; their balance and
what is pending (completed, not yet in the ledger). Reads only."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.config import Settings
from steelyard.errors import Forbidden
from steelyard.pay import rules
from steelyard.pay.ledger import balance, org_pay
from steelyard.pay.models import EARNING_TYPES, MINIMUM_TOP_UP, PIECE_RATE, TYPES, PayEntry
from steelyard.pay.sweep import pending
from steelyard.projects import pay_settings
from steelyard.projects.models import Project, current_params

#: The estimate is the median active time of the project's most recent completed items.
ESTIMATE_SAMPLE = 101


def estimate_statement(project_id: str) -> Select[Any]:
    """The project's most recent items' active seconds: a walk of ``ix_pay_entries_project``
    backwards, ``ESTIMATE_SAMPLE`` rows at most, however long its history."""
    return (
        select(PayEntry.active_seconds)
        .where(
            PayEntry.project_id == project_id,
            PayEntry.type == PIECE_RATE,
            PayEntry.source_kind != "review",
        )
        .order_by(PayEntry.occurred_at.desc())
        .limit(ESTIMATE_SAMPLE)
    )


def estimated_seconds(session: Session, project_id: str) -> float | None:
    """Median active seconds of the project's recent paid items (``None`` before any)."""
    seconds = list(session.scalars(estimate_statement(project_id)))
    return round(statistics.median(seconds), 1) if seconds else None


def offer(session: Session, project_id: str) -> dict[str, Any] | None:
    """``{"rate_minor", "currency", "estimated_seconds"}`` for an item of the project, or
    ``None`` for a project without pay settings: what ``next`` shows before the worker starts.
    Two indexed reads (the project's params and its recent entries)."""
    history = session.scalar(select(Project.param_history).where(Project.id == project_id))
    settings = pay_settings.read(current_params(history)) if history else None
    if settings is None:
        return None
    return {
        "rate_minor": settings.piece_rate_minor,
        "currency": settings.currency,
        "estimated_seconds": estimated_seconds(session, project_id),
    }


#: How long ``next`` reuses a project's offer: a rate change or a moved median shows within it.
OFFER_SECONDS = 10.0
_offers: dict[str, tuple[float, dict[str, Any] | None]] = {}
_offers_lock = threading.Lock()


def cached_offer(session: Session, project_id: str) -> dict[str, Any] | None:
    """``offer``, reused for ``OFFER_SECONDS`` per project: ``next`` runs inside the write
    transaction, where decoding the project's params history and walking its recent entries
    on every call would hold the write lock for every worker."""
    now = time.monotonic()
    with _offers_lock:
        hit = _offers.get(project_id)
    if hit is not None and hit[0] > now:
        return None if hit[1] is None else dict(hit[1])
    found = offer(session, project_id)
    with _offers_lock:
        if len(_offers) > 10_000:  # a bound, not an eviction policy: offers are tiny
            _offers.clear()
        _offers[project_id] = (now + OFFER_SECONDS, found)
    return None if found is None else dict(found)


def earnings(session: Session, actor: Actor, settings: Settings, now: datetime) -> dict[str, Any]:
    """The signed-in worker's pay in their organization: the ledger, plus their completed work
    not yet swept into it (``pending_minor``; written at the next sweep or period close)."""
    if actor.kind != "user" or actor.user_id is None:
        raise Forbidden("Earnings are a worker's own: sign in.")
    user_id = actor.user_id
    org = org_pay(session, actor.org_id, settings)
    rows: list[tuple[str, str | None, str, int, float, int]] = [
        (kind, project_id, period, int(n), float(seconds or 0.0), int(amount or 0))
        for kind, project_id, period, n, seconds, amount in session.execute(
            select(
                PayEntry.type,
                PayEntry.project_id,
                PayEntry.period,
                func.count(),
                func.sum(PayEntry.active_seconds),
                func.sum(PayEntry.amount_minor),
            )
            .where(PayEntry.org_id == actor.org_id, PayEntry.user_id == user_id)
            .group_by(PayEntry.type, PayEntry.project_id, PayEntry.period)
        )
    ]
    waiting = pending(session, actor.org_id, org, now, user_id)
    rows += [(e.type, e.project_id, e.period, 1, e.active_seconds, e.amount_minor) for e in waiting]
    by_type = dict.fromkeys(TYPES, 0)
    per_project: dict[str, list[float]] = {}
    periods: dict[str, dict[str, Any]] = {}
    for kind, project_id, period, n, seconds, amount in rows:
        by_type[kind] += amount
        p = periods.setdefault(
            period,
            {"period": period, "active_seconds": 0.0, "earned_minor": 0, "top_up_minor": 0},
        )
        p["active_seconds"] += seconds
        if kind == MINIMUM_TOP_UP:
            p["top_up_minor"] += amount
        elif kind in EARNING_TYPES:
            p["earned_minor"] += amount
            if project_id is not None:
                totals = per_project.setdefault(project_id, [0, 0.0, 0])
                totals[0] += n
                totals[1] += seconds
                totals[2] += amount
    projects = []
    for project_id, (items, seconds, earned) in per_project.items():
        row = session.execute(
            select(Project.name, Project.param_history).where(
                Project.id == project_id, Project.org_id == actor.org_id
            )
        ).first()
        if row is None:
            continue
        rates = pay_settings.read(current_params(row.param_history))
        projects.append(
            {
                "project": row.name,
                "rate_minor": rates.piece_rate_minor if rates else None,
                "hourly_rate_minor": rates.hourly_rate_minor if rates else None,
                "review_rate_minor": rates.review_rate_minor if rates else None,
                "currency": rates.currency if rates else org.currency,
                "estimated_seconds": estimated_seconds(session, project_id),
                "items": int(items),
                "active_seconds": round(seconds, 3),
                "earned_minor": int(earned),
                "effective_hourly_minor": rules.effective_hourly(int(earned), seconds),
            }
        )
    for p in periods.values():
        p["active_seconds"] = round(p["active_seconds"], 3)
        p["effective_hourly_minor"] = rules.effective_hourly(
            p["earned_minor"] + p["top_up_minor"], p["active_seconds"]
        )
    return {
        "currency": org.currency,
        "balance_minor": balance(session, actor.org_id, user_id),
        "pending_minor": sum(e.amount_minor for e in waiting),
        "by_type": by_type,
        "projects": sorted(projects, key=lambda p: str(p["project"])),
        "periods": [periods[k] for k in sorted(periods)],
    }
