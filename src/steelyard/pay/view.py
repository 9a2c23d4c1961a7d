"""What a worker sees of pay: the offer shown with each item (``offer``) and their earnings
(``earnings``): per project the rates, the estimated time per item and their own effective
hourly; entries by type; each period's active time, earnings and top-up; their balance."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steelyard.accounts.schemas import Actor
from steelyard.errors import Forbidden
from steelyard.pay import rules
from steelyard.pay.ledger import balance
from steelyard.pay.models import EARNING_TYPES, PIECE_RATE, TYPES, PayEntry
from steelyard.projects import pay_settings
from steelyard.projects.models import Project, current_params

#: The estimate is the median active time of the project's most recent completed items.
ESTIMATE_SAMPLE = 101


def estimated_seconds(session: Session, project_id: str) -> float | None:
    """Median active seconds of the project's recent paid items (``None`` before any)."""
    seconds = list(
        session.scalars(
            select(PayEntry.active_seconds)
            .where(
                PayEntry.project_id == project_id,
                PayEntry.type == PIECE_RATE,
                PayEntry.source_kind != "review",
            )
            .order_by(PayEntry.occurred_at.desc())
            .limit(ESTIMATE_SAMPLE)
        )
    )
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


def earnings(session: Session, actor: Actor) -> dict[str, Any]:
    """The signed-in worker's pay in their organization, from the ledger."""
    if actor.kind != "user" or actor.user_id is None:
        raise Forbidden("Earnings are a worker's own: sign in.")
    user_id = actor.user_id
    mine = (PayEntry.org_id == actor.org_id, PayEntry.user_id == user_id)
    by_type = dict.fromkeys(TYPES, 0)
    currency = None
    for kind, cur, total in session.execute(
        select(PayEntry.type, PayEntry.currency, func.sum(PayEntry.amount_minor))
        .where(*mine)
        .group_by(PayEntry.type, PayEntry.currency)
    ):
        by_type[kind] += int(total or 0)
        currency = cur
    per_project = session.execute(
        select(
            PayEntry.project_id,
            func.count(),
            func.sum(PayEntry.active_seconds),
            func.sum(PayEntry.amount_minor),
        )
        .where(*mine, PayEntry.type.in_(EARNING_TYPES), PayEntry.project_id.is_not(None))
        .group_by(PayEntry.project_id)
    ).all()
    projects = []
    for project_id, items, seconds, earned in per_project:
        row = session.execute(
            select(Project.name, Project.param_history).where(
                Project.id == project_id, Project.org_id == actor.org_id
            )
        ).first()
        if row is None or project_id is None:
            continue
        rates = pay_settings.read(current_params(row.param_history))
        projects.append(
            {
                "project": row.name,
                "rate_minor": rates.piece_rate_minor if rates else None,
                "hourly_rate_minor": rates.hourly_rate_minor if rates else None,
                "review_rate_minor": rates.review_rate_minor if rates else None,
                "currency": rates.currency if rates else currency,
                "estimated_seconds": estimated_seconds(session, project_id),
                "items": int(items),
                "active_seconds": round(float(seconds or 0.0), 3),
                "earned_minor": int(earned or 0),
                "effective_hourly_minor": rules.effective_hourly(
                    int(earned or 0), float(seconds or 0.0)
                ),
            }
        )
    periods: dict[str, dict[str, Any]] = {}
    for period, kind, seconds, amount in session.execute(
        select(
            PayEntry.period,
            PayEntry.type,
            func.sum(PayEntry.active_seconds),
            func.sum(PayEntry.amount_minor),
        )
        .where(*mine)
        .group_by(PayEntry.period, PayEntry.type)
    ):
        p = periods.setdefault(
            period,
            {"period": period, "active_seconds": 0.0, "earned_minor": 0, "top_up_minor": 0},
        )
        p["active_seconds"] += float(seconds or 0.0)
        if kind in EARNING_TYPES:
            p["earned_minor"] += int(amount or 0)
        elif kind == "minimum_top_up":
            p["top_up_minor"] += int(amount or 0)
    for p in periods.values():
        p["active_seconds"] = round(p["active_seconds"], 3)
        p["effective_hourly_minor"] = rules.effective_hourly(
            p["earned_minor"] + p["top_up_minor"], p["active_seconds"]
        )
    return {
        "currency": currency,
        "balance_minor": balance(session, actor.org_id, user_id),
        "by_type": by_type,
        "projects": sorted(projects, key=lambda p: str(p["project"])),
        "periods": [periods[k] for k in sorted(periods)],
    }
